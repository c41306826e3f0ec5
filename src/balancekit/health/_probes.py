"""Active health checks: the probe options and when each server's next probe is due.

A server's first probe is due when it is added, plus a seeded offset in
``[0, jitter]``; each later one ``interval`` plus a fresh offset after the
previous one started, so the probes of many servers never come in storms. A
probe not answered within ``timeout`` counts as a failure;
``unhealthy_threshold`` failures in a row take a server down and
``healthy_threshold`` passes bring it back.

This module keeps the options and the schedule only. What a probe's result
(or its timeout) does to a server is decided in
:meth:`balancekit.health.HealthTracker._event`, the one transition table.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from .._machine import Timers
from ..validate import MAX_SECONDS, check_count, check_range

__all__ = ["PROBE", "Probed", "Probes"]

PROBE = 0
"""The timer kind of a server's next probe (its slot in ``timers``)."""


class Probed(Protocol):
    """What the schedule needs of a server's record."""

    name: str
    next_probe: float  # when its next probe is due
    timers: list[int]  # timers[PROBE]: its live heap entry


R = TypeVar("R", bound=Probed)


class Probes(Generic[R]):
    """The active-check options, validated, and each server's next probe (a timer heap).

    Every tracked server has exactly one live entry; rescheduling or
    removing a server never searches the heap (see :class:`~balancekit._machine.Timers`).
    Entry numbers come from the caller, shared across its heaps, and order
    probes due at the same time.

    >>> import itertools
    >>> from types import SimpleNamespace
    >>> probes = Probes(interval=5.0, timeout=2.0, unhealthy_threshold=3,
    ...                 healthy_threshold=2, jitter=0.0, seq=itertools.count())
    >>> rec = SimpleNamespace(name="a", next_probe=0.0, timers=[-1])
    >>> probes.schedule(rec, 0.0, rng=random.Random(0))
    >>> probes.next_due()
    0.0
    >>> [r.name for r in probes.pop_due(0.0)], probes.next_due()
    (['a'], None)

    Complexity: ``schedule`` O(log n) amortised; ``pop_due`` O(log n) per
    entry popped; ``next_due`` O(log n) amortised; ``shift`` O(n). Not
    locked: the tracker that owns it calls it under its own lock.

    Raises:
        TypeError, ValueError: a bad option, naming the option and the value
            (checked in the order of the arguments).
    """

    __slots__ = (
        "_timers",
        "healthy_threshold",
        "interval",
        "jitter",
        "timeout",
        "unhealthy_threshold",
    )

    def __init__(
        self,
        interval: float,
        timeout: float,
        unhealthy_threshold: int,
        healthy_threshold: int,
        jitter: float,
        seq: Iterator[int],
    ) -> None:
        self.interval = check_range("interval", interval, 0.0, MAX_SECONDS, low_open=True)
        self.timeout = check_range("timeout", timeout, 0.0, MAX_SECONDS, low_open=True)
        if self.timeout >= self.interval:
            raise ValueError(f"timeout must be < interval ({interval!r}), got {timeout!r}")
        self.unhealthy_threshold = check_count("unhealthy_threshold", unhealthy_threshold)
        self.healthy_threshold = check_count("healthy_threshold", healthy_threshold)
        self.jitter = check_range("jitter", jitter, 0.0)
        if not self.jitter < self.interval:
            raise ValueError(f"jitter must be in [0, interval ({interval!r})), got {jitter!r}")
        self._timers: Timers[R] = Timers(seq)

    def schedule(self, rec: R, base: float, rng: random.Random) -> None:
        """Make ``rec``'s next probe due at ``base`` plus a random offset in ``[0, jitter]``.

        Any earlier entry of ``rec`` stops being live. O(log n) amortised.
        """
        offset = rng.uniform(0.0, self.jitter) if self.jitter else 0.0
        rec.next_probe = base + offset
        self._timers.arm(rec, PROBE, rec.next_probe)

    def cancel(self, rec: R) -> None:
        """Forget ``rec``'s next probe (it is leaving). O(1)."""
        self._timers.disarm(rec, PROBE)

    def pop_due(self, now: float) -> list[R]:
        """The records due at or before ``now``, in schedule order, taken off the schedule.

        O(log n) per entry popped.
        """
        return [rec for _, _, rec in self._timers.pop_due(now)]

    def next_due(self) -> float | None:
        """When the earliest probe is due, ``None`` if none. O(log n) amortised."""
        return self._timers.next_at()

    def shift(self, delta: float) -> None:
        """Move every due time by ``delta`` seconds (a new clock). O(n)."""
        self._timers.shift(delta)

    def __len__(self) -> int:
        return len(self._timers)

    def _check(self) -> None:
        self._timers._check()

    def __repr__(self) -> str:
        return (
            f"Probes(interval={self.interval!r}, timeout={self.timeout!r}, "
            f"unhealthy_threshold={self.unhealthy_threshold!r}, "
            f"healthy_threshold={self.healthy_threshold!r}, jitter={self.jitter!r}, "
            f"{self._timers!r})"
        )
