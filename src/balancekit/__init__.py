"""balancekit: load-balancing algorithms for Python.

Public names are re-exported here; nothing is defined in this module.
``balancekit.quality``, ``balancekit.sim`` and ``balancekit.testing``
(which needs hypothesis) are imported on their own.
"""

from ._version import __version__
from .clock import Clock, ManualClock
from .drain import Drainer, DrainState
from .errors import (
    AllServersBusy,
    BalancekitError,
    DuplicateServer,
    NoServerAvailable,
    UnknownServer,
)
from .events import StateChange
from .health import (
    FailurePercentageEjection,
    HealthState,
    HealthTracker,
    SuccessRateEjection,
)
from .lease import Lease
from .pool import Pool, ServerStats
from .priority import PriorityPool
from .retry import RetryBudget
from .sticky import MemoryRouteStore, RouteStore, StickySession
from .strategies import (
    Balancer,
    BoundedLoadHash,
    ConsistentHash,
    IPHash,
    JumpHash,
    LeastConnections,
    LeastResponseTime,
    Maglev,
    PowerOfTwoChoices,
    Rendezvous,
    RoundRobin,
    UtilizationRoundRobin,
    WeightedRoundRobin,
)
from .subset import deterministic_subset

__all__ = [
    "AllServersBusy",
    "BalancekitError",
    "Balancer",
    "BoundedLoadHash",
    "Clock",
    "ConsistentHash",
    "DrainState",
    "Drainer",
    "DuplicateServer",
    "FailurePercentageEjection",
    "HealthState",
    "HealthTracker",
    "IPHash",
    "JumpHash",
    "Lease",
    "LeastConnections",
    "LeastResponseTime",
    "Maglev",
    "ManualClock",
    "MemoryRouteStore",
    "NoServerAvailable",
    "Pool",
    "PowerOfTwoChoices",
    "PriorityPool",
    "Rendezvous",
    "RetryBudget",
    "RoundRobin",
    "RouteStore",
    "ServerStats",
    "StateChange",
    "StickySession",
    "SuccessRateEjection",
    "UnknownServer",
    "UtilizationRoundRobin",
    "WeightedRoundRobin",
    "__version__",
    "deterministic_subset",
]
