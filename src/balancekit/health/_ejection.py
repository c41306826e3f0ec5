"""Passive outlier ejection: how long an ejection lasts, how it decays, how many may run.

A server that fails ``consecutive_failures`` real requests in a row is
ejected for ``min(base_ejection * k, max_ejection)`` seconds, ``k`` being
its ejection multiplier: one more each time it is ejected, one less for
every ``base_ejection`` seconds it then stays HEALTHY, so a flapping server
stays out longer each time and a recovered one is forgiven. At most
``max_ejected_percent`` of the servers are ejected at once, except that the
cap never blocks the first ejection (as in Envoy); 0 disables ejection.

This module keeps the numbers only. Whether an event ejects a server is
decided in :meth:`balancekit.health.HealthTracker._event`, the one
transition table, which asks :meth:`Ejection.allowed`.
"""

from __future__ import annotations

from ..validate import MAX_SECONDS, check_count, check_range

__all__ = ["Ejection"]


class Ejection:
    """The passive-ejection options, validated, and the number of servers ejected now.

    >>> ejection = Ejection(5, base_ejection=30.0, max_ejection=300.0, max_ejected_percent=10.0)
    >>> ejection.length(1), ejection.length(3), ejection.length(20)
    (30.0, 90.0, 300.0)
    >>> ejection.decayed(3, healthy_for=65.0)   # two whole bases spent healthy
    1
    >>> ejection.allowed(servers=4)     # the first ejection, whatever the cap
    True
    >>> ejection.ejected += 1
    >>> ejection.allowed(servers=4)     # a second one would be 50 % > 10 %
    False

    Complexity: every method O(1). Not locked: the tracker that owns it
    calls it under its own lock.

    Raises:
        TypeError, ValueError: a bad option, naming the option and the value
            (checked in the order of the arguments).
    """

    __slots__ = (
        "base_ejection",
        "consecutive_failures",
        "ejected",
        "max_ejected_percent",
        "max_ejection",
    )

    def __init__(
        self,
        consecutive_failures: int,
        base_ejection: float,
        max_ejection: float,
        max_ejected_percent: float,
    ) -> None:
        self.consecutive_failures = check_count("consecutive_failures", consecutive_failures)
        self.base_ejection = check_range(
            "base_ejection", base_ejection, 0.0, MAX_SECONDS, low_open=True
        )
        self.max_ejection = check_range(
            "max_ejection", max_ejection, 0.0, MAX_SECONDS, low_open=True
        )
        if self.max_ejection < self.base_ejection:
            raise ValueError(
                f"max_ejection must be >= base_ejection ({base_ejection!r}), got {max_ejection!r}"
            )
        self.max_ejected_percent = check_range(
            "max_ejected_percent", max_ejected_percent, 0.0, 100.0
        )
        self.ejected = 0  # servers EJECTED now; the tracker counts them in and out

    def allowed(self, servers: int) -> bool:
        """Whether one more of ``servers`` tracked servers may be ejected now. O(1)."""
        percent = self.max_ejected_percent
        if percent == 0:
            return False
        # As Envoy: the cap never prevents the first ejection.
        return self.ejected == 0 or (self.ejected + 1) * 100 <= percent * servers

    def decayed(self, ejections: int, healthy_for: float) -> int:
        """The multiplier ``ejections`` after ``healthy_for`` seconds HEALTHY. O(1)."""
        if not ejections:
            return ejections
        steps = int(healthy_for // self.base_ejection)
        return max(0, ejections - steps)

    def length(self, ejections: int) -> float:
        """Seconds an ejection lasts when it is the server's ``ejections``-th. O(1)."""
        return min(self.base_ejection * ejections, self.max_ejection)

    def __repr__(self) -> str:
        return (
            f"Ejection(consecutive_failures={self.consecutive_failures!r}, "
            f"base_ejection={self.base_ejection!r}, max_ejection={self.max_ejection!r}, "
            f"max_ejected_percent={self.max_ejected_percent!r}, ejected={self.ejected})"
        )
