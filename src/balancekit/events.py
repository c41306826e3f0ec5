"""The one event type: a server changed state.

Health (:class:`~balancekit.health.HealthState`) and administration
(:class:`~balancekit.drain.DrainState`) are separate state machines; both
report their transitions as :class:`StateChange` values returned by the call
that caused them or by a later ``poll()``. Nothing is logged by the library.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["StateChange"]


@dataclass(frozen=True, slots=True)
class StateChange:
    """``server`` went from ``old`` to ``new`` at clock time ``at``.

    ``in_flight`` is the number of leases still open at that moment; it is
    non-zero only when a drain reached its deadline, so that the caller knows
    how many requests to force-close.

    >>> import enum
    >>> class S(enum.Enum):
    ...     UP = "up"
    ...     DOWN = "down"
    >>> StateChange("a", S.UP, S.DOWN, 12.5)
    StateChange(server='a', old=<S.UP: 'up'>, new=<S.DOWN: 'down'>, at=12.5, in_flight=0)
    """

    server: str
    old: enum.Enum
    new: enum.Enum
    at: float
    in_flight: int = 0
