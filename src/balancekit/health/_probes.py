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

import heapq
import random
from collections.abc import Iterator, Mapping
from typing import Generic, Protocol, TypeVar

from ..validate import check_count, check_number, check_positive

__all__ = ["Probed", "Probes"]


class Probed(Protocol):
    """What the schedule needs of a server's record."""

    name: str
    next_probe: float  # when its next probe is due
    probe_seq: int  # the sequence number of its one live heap entry


R = TypeVar("R", bound=Probed)


class Probes(Generic[R]):
    """The active-check options, validated, and the heap of each server's next probe.

    Heap entries are ``(due time, sequence number, record)``. An entry is
    live only while its number is its record's ``probe_seq`` and the record
    is still the tracked one for its name, so rescheduling or removing a
    server never searches the heap: stale entries are dropped when they
    surface. Sequence numbers come from the caller, unique across all its
    heaps, and order probes due at the same time.

    >>> from types import SimpleNamespace
    >>> probes = Probes(interval=5.0, timeout=2.0, unhealthy_threshold=3,
    ...                 healthy_threshold=2, jitter=0.0)
    >>> rec = SimpleNamespace(name="a", next_probe=0.0, probe_seq=-1)
    >>> probes.schedule(rec, 0.0, seq=1, rng=random.Random(0))
    >>> servers = {"a": rec}
    >>> probes.next_due(servers)
    0.0
    >>> [r.name for r in probes.pop_due(0.0, servers)], probes.next_due(servers)
    (['a'], None)

    Complexity: ``schedule`` O(log n); ``pop_due`` O(log n) per entry popped;
    ``next_due`` O(log n) amortised; ``shift`` and ``scheduled`` O(n). Not
    locked: the tracker that owns it calls it under its own lock.

    Raises:
        TypeError, ValueError: a bad option, naming the option and the value
            (checked in the order of the arguments).
    """

    __slots__ = (
        "_heap",
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
    ) -> None:
        self.interval = check_positive("interval", interval)
        self.timeout = check_positive("timeout", timeout)
        if self.timeout >= self.interval:
            raise ValueError(f"timeout must be < interval ({interval!r}), got {timeout!r}")
        self.unhealthy_threshold = check_count("unhealthy_threshold", unhealthy_threshold)
        self.healthy_threshold = check_count("healthy_threshold", healthy_threshold)
        self.jitter = check_number("jitter", jitter)
        if not 0 <= self.jitter < self.interval:
            raise ValueError(f"jitter must be in [0, interval ({interval!r})), got {jitter!r}")
        self._heap: list[tuple[float, int, R]] = []

    def schedule(self, rec: R, base: float, seq: int, rng: random.Random) -> None:
        """Make ``rec``'s next probe due at ``base`` plus a random offset in ``[0, jitter]``.

        Any earlier entry of ``rec`` stops being live. O(log n).
        """
        offset = rng.uniform(0.0, self.jitter) if self.jitter else 0.0
        rec.next_probe = base + offset
        rec.probe_seq = seq
        heapq.heappush(self._heap, (rec.next_probe, seq, rec))

    def pop_due(self, now: float, servers: Mapping[str, object]) -> Iterator[R]:
        """Pop and yield the live records due at or before ``now``, in schedule order.

        The caller may :meth:`schedule` a yielded record before taking the
        next one; an entry made due again at once is yielded again.
        O(log n) per entry popped.
        """
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, rec = heapq.heappop(heap)
            if self._live(seq, rec, servers):
                yield rec

    def next_due(self, servers: Mapping[str, object]) -> float | None:
        """When the earliest live probe is due, ``None`` if none. O(log n) amortised."""
        heap = self._heap
        while heap and not self._live(heap[0][1], heap[0][2], servers):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def shift(self, delta: float) -> None:
        """Move every due time by ``delta`` seconds (a new clock). O(n)."""
        # A constant shift keeps heap order.
        self._heap = [(at + delta, seq, rec) for at, seq, rec in self._heap]

    def scheduled(self, servers: Mapping[str, object]) -> list[str]:
        """The names of the records with a live entry, one per entry (for invariants). O(n)."""
        return [rec.name for _, seq, rec in self._heap if self._live(seq, rec, servers)]

    @staticmethod
    def _live(seq: int, rec: R, servers: Mapping[str, object]) -> bool:
        return rec.probe_seq == seq and servers.get(rec.name) is rec

    def __repr__(self) -> str:
        return (
            f"Probes(interval={self.interval!r}, timeout={self.timeout!r}, "
            f"unhealthy_threshold={self.unhealthy_threshold!r}, "
            f"healthy_threshold={self.healthy_threshold!r}, jitter={self.jitter!r}, "
            f"entries={len(self._heap)})"
        )
