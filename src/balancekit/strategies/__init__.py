"""The strategies, one module each, all behind :class:`~.base.Balancer`."""

from .base import Balancer
from .round_robin import RoundRobin

__all__ = ["Balancer", "RoundRobin"]
