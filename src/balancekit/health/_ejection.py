"""Passive outlier ejection: how long an ejection lasts, how it decays, how many may run.

A server that fails ``consecutive_failures`` real requests in a row is
ejected for ``min(base_ejection * k, max_ejection)`` seconds, ``k`` being
its ejection multiplier, as Envoy's ``ejection_time_backoff``: one more each
time it is ejected (until ``k * base_ejection`` reaches ``max_ejection +
base_ejection``, where Envoy stops it), one less for every whole
``interval`` (the tracker's ``outlier_interval``, Envoy's ``interval``)
after its ejection ended, so a flapping server stays out longer each time
and a recovered one is forgiven. At most ``max_ejected_percent`` of the
servers are ejected at once, except that the cap never blocks the first
ejection; 0 disables ejection.

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
    >>> ejection.decayed(3, unejected_for=25.0)   # two whole 10 s intervals since it ended
    1
    >>> ejection.grown(10), ejection.grown(11)    # 11 x 30 >= 300 + 30: no further
    (11, 11)
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
        "interval",
        "max_ejected_percent",
        "max_ejection",
    )

    def __init__(
        self,
        consecutive_failures: int,
        base_ejection: float,
        max_ejection: float,
        max_ejected_percent: float,
        interval: float = 10.0,
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
        # The multiplier's decay step (the tracker sets its outlier_interval here).
        self.interval = check_range("interval", interval, 0.0, MAX_SECONDS, low_open=True)
        self.ejected = 0  # servers EJECTED now; the tracker counts them in and out

    def allowed(self, servers: int) -> bool:
        """Whether one more of ``servers`` tracked servers may be ejected now. O(1)."""
        percent = self.max_ejected_percent
        if percent == 0:
            return False
        # The cap never prevents the first ejection: Envoy's always_eject_one_host (which
        # Envoy leaves off by default; there 10 % of fewer than 10 servers ejects none).
        return self.ejected == 0 or (self.ejected + 1) * 100 <= percent * servers

    def decayed(self, ejections: int, unejected_for: float) -> int:
        """The multiplier ``ejections`` after ``unejected_for`` seconds since its ejection ended.

        One less per whole ``interval``, never below 0: Envoy lowers it at
        every interval tick that finds the server not ejected and at least
        one interval past its unejection. O(1).
        """
        if not ejections or unejected_for < self.interval:
            return ejections
        return max(0, ejections - int(unejected_for // self.interval))

    def grown(self, ejections: int) -> int:
        """The multiplier after one more ejection. O(1).

        One more while ``ejections * base_ejection < max_ejection +
        base_ejection`` (Envoy's bound): past it the ejection length is
        capped anyway, and the multiplier stays small enough to decay back
        in a bounded time.
        """
        if ejections * self.base_ejection < self.max_ejection + self.base_ejection:
            return ejections + 1
        return ejections

    def length(self, ejections: int) -> float:
        """Seconds an ejection lasts when the server's multiplier is ``ejections``
        (see :meth:`decayed` and :meth:`grown`). O(1)."""
        return min(self.base_ejection * ejections, self.max_ejection)

    def __repr__(self) -> str:
        return (
            f"Ejection(consecutive_failures={self.consecutive_failures!r}, "
            f"base_ejection={self.base_ejection!r}, max_ejection={self.max_ejection!r}, "
            f"max_ejected_percent={self.max_ejected_percent!r}, interval={self.interval!r}, "
            f"ejected={self.ejected})"
        )
