"""The strategies, one module each, all behind :class:`~.base.Balancer`."""

from .base import Balancer
from .jump import JumpHash
from .least_load import LeastConnections, PowerOfTwoChoices
from .maglev import Maglev
from .rendezvous import Rendezvous
from .response_time import LeastResponseTime
from .round_robin import RoundRobin, WeightedRoundRobin

__all__ = [
    "Balancer",
    "JumpHash",
    "LeastConnections",
    "LeastResponseTime",
    "Maglev",
    "PowerOfTwoChoices",
    "Rendezvous",
    "RoundRobin",
    "WeightedRoundRobin",
]
