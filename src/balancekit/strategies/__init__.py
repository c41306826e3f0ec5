"""The strategies, one module each, all behind :class:`~.base.Balancer`."""

from .base import Balancer
from .bounded import BoundedLoadHash
from .ip_hash import IPHash
from .jump import JumpHash
from .least_load import LeastConnections, PowerOfTwoChoices
from .maglev import Maglev
from .rendezvous import Rendezvous
from .response_time import LeastResponseTime
from .ring import ConsistentHash
from .round_robin import RoundRobin, WeightedRoundRobin
from .utilization import UtilizationRoundRobin

__all__ = [
    "Balancer",
    "BoundedLoadHash",
    "ConsistentHash",
    "IPHash",
    "JumpHash",
    "LeastConnections",
    "LeastResponseTime",
    "Maglev",
    "PowerOfTwoChoices",
    "Rendezvous",
    "RoundRobin",
    "UtilizationRoundRobin",
    "WeightedRoundRobin",
]
