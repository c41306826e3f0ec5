"""balancekit: load-balancing algorithms for Python.

Public names are re-exported here; nothing is defined in this module.
"""

from ._version import __version__
from .clock import Clock, ManualClock
from .errors import BalancekitError, DuplicateServer, NoServerAvailable, UnknownServer
from .events import StateChange
from .lease import Lease
from .strategies import Balancer, RoundRobin

__all__ = [
    "BalancekitError",
    "Balancer",
    "Clock",
    "DuplicateServer",
    "Lease",
    "ManualClock",
    "NoServerAvailable",
    "RoundRobin",
    "StateChange",
    "UnknownServer",
    "__version__",
]
