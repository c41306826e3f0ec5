"""UtilizationRoundRobin: weighted round robin on the load the servers report (gRFC A58).

gRPC's ``weighted_round_robin`` policy, without gRPC: servers report their
queries per second, utilization and errors per second (in ORCA load reports,
response trailers or any side channel); the client turns each report into a
weight and picks with gRPC's static stride scheduler (:mod:`._stride`).

Weights, as A58 defines them:

- a report gives ``weight = qps / (utilization + eps / qps * error_penalty)``
  (the penalty only when ``eps > 0``); a report with ``qps`` or
  ``utilization`` of 0 is ignored;
- a server's weight counts once it has reported for ``blackout`` seconds
  (from its first report since it had none), and stops counting when its
  last report is ``expiration`` seconds old (then the blackout starts again
  with its next report);
- the scheduler re-reads the weights at most once every ``update_period``
  seconds (lazily, at the first pick after the period: no timer); a server
  without a counting weight gets the mean of the others', and with fewer
  than two servers or no weight at all the picks are plain round robin.
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Iterable
from typing import Any

from ..clock import Clock
from ..errors import UnknownServer
from ..validate import check_positive, check_range
from ._stride import MAX_WEIGHT, stride_pick, stride_weights
from .base import Balancer, Member, Servers

__all__ = ["MIN_UPDATE_PERIOD", "UtilizationRoundRobin"]

MIN_UPDATE_PERIOD = 0.1
"""The shortest ``update_period``; a shorter one is raised to it, as gRPC does."""

_F32 = struct.Struct("f")


class _Report:
    """A server's latest report: its weight and when its run of reports began."""

    __slots__ = ("since", "updated", "weight")

    def __init__(self) -> None:
        self.weight = 0.0
        self.since: float | None = None  # None: no run of reports under way
        self.updated = -math.inf

    def usable(self, now: float, blackout: float, expiration: float) -> float:
        """The weight to schedule by now, 0 if none (ends an expired run, as gRPC)."""
        if now - self.updated >= expiration:
            self.since = None
            return 0.0
        if self.since is None or (blackout > 0 and now - self.since < blackout):
            return 0.0
        return self.weight

    def __repr__(self) -> str:
        return f"_Report(weight={self.weight!r}, since={self.since!r}, updated={self.updated!r})"


class UtilizationRoundRobin(Balancer):
    """Weighted round robin whose weights come from the servers' own load reports.

    >>> from balancekit import ManualClock
    >>> clock = ManualClock()
    >>> lb = UtilizationRoundRobin(["a", "b"], blackout=0, clock=clock)
    >>> lb.report("a", qps=100, utilization=0.5)     # weight 200
    >>> lb.report("b", qps=100, utilization=1.0)     # weight 100
    >>> _ = clock.advance(1.0)                       # the next pick re-reads weights
    >>> "".join(lb.get_server() for _ in range(9))
    'abaabaaba'

    Static weights only say whether a server takes traffic (0: it gets none);
    its share comes from its reports. A server whose weight goes from 0 back
    to positive (healthy again in a Pool) starts its blackout over. Servers
    are scheduled in insertion order, and the scheduler's sequence starts at
    0 on a new balancer, so the picks are reproducible. The key is ignored.

    Complexity: ``get_server`` and ``acquire`` O(1) expected (the scheduler
    skips a backend with probability ``1 - mean / max`` of the scaled
    weights, and the largest weight is capped at 10 x the mean); ``report``
    O(1); re-reading the weights O(n), at most once per ``update_period``.

    Thread safety: ``get_server`` takes the lock only to re-read the weights;
    the sequence is an atomic counter, as gRPC's.

    Raises:
        TypeError: an option is not a number.
        ValueError: ``blackout`` or ``error_penalty`` negative or not finite,
            ``expiration`` or ``update_period`` not finite and > 0.
    """

    def __init__(
        self,
        servers: Servers = (),
        *,
        blackout: float = 10.0,
        expiration: float = 180.0,
        error_penalty: float = 1.0,
        update_period: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self._blackout = check_range("blackout", blackout, 0.0)
        self._expiration = check_positive("expiration", expiration)
        self._penalty = check_range("error_penalty", error_penalty, 0.0)
        self._period = max(MIN_UPDATE_PERIOD, check_positive("update_period", update_period))
        self._reports: dict[str, _Report] = {}
        # gRPC's sequence is an atomic uint32: next() on an iterator is atomic, and
        # chained ranges wrap at 2**32 for free.
        self._sequence = itertools.chain.from_iterable(itertools.repeat(range(1 << 32)))
        self._turn = itertools.count()  # the round-robin fallback's counter
        # (rotation, its ids, the scheduler's weights or None): one tuple, swapped
        # whole, so a lock-free pick never mixes two versions.
        self._state: tuple[list[Member], tuple[str, ...], tuple[int, ...] | None] = ([], (), None)
        self._due = -math.inf
        super().__init__(servers, clock=clock)

    @property
    def blackout(self) -> float:
        """Seconds of reports before a server's weight counts."""
        return self._blackout

    @property
    def expiration(self) -> float:
        """Seconds after its last report that a server's weight stops counting."""
        return self._expiration

    @property
    def error_penalty(self) -> float:
        """How much an error per query weighs against a server, in utilization."""
        return self._penalty

    @property
    def update_period(self) -> float:
        """Seconds between re-readings of the weights (at least ``MIN_UPDATE_PERIOD``)."""
        return self._period

    def report(self, server: str, *, qps: float, utilization: float, eps: float = 0.0) -> None:
        """Record a load report from ``server``: queries/s, utilization, errors/s. O(1).

        ``utilization`` is the server's busy fraction (CPU, or an application
        figure); it may exceed 1. A report with ``qps`` or ``utilization`` of 0
        carries no weight and is ignored, as in gRPC.

        Raises:
            UnknownServer: the server is not a member.
            TypeError: a figure is not a number.
            ValueError: a figure is negative, NaN or infinite; nothing changes.
        """
        qps_ = check_range("qps", qps, 0.0)
        load = check_range("utilization", utilization, 0.0)
        errors = check_range("eps", eps, 0.0)
        report = self._reports.get(server)
        if report is None:
            raise UnknownServer(server)
        if qps_ <= 0 or load <= 0:
            return
        penalty = errors / qps_ * self._penalty if errors > 0 and self._penalty > 0 else 0.0
        weight: float = _F32.unpack(_F32.pack(qps_ / (load + penalty)))[0]  # a float in gRPC
        if weight == 0:  # too small for a float: no weight, as gRPC
            return
        now = self._clock()
        with self._lock:
            if report.since is None:
                report.since = now
            report.weight = weight
            report.updated = now

    def reported_weight(self, server: str) -> float:
        """The weight ``server``'s reports give it now; 0 if none counts yet. O(1).

        Raises:
            UnknownServer: the server is not a member.
        """
        report = self._reports.get(server)
        if report is None:
            raise UnknownServer(server)
        now = self._clock()
        if now - report.updated >= self._expiration or report.since is None:
            return 0.0
        if self._blackout > 0 and now - report.since < self._blackout:
            return 0.0
        return report.weight

    # -- picking ----------------------------------------------------------------

    def get_server(self, key: Any = None, exclude: Iterable[str] = ()) -> str:
        """The next server of the schedule. O(1) expected; the key is ignored.

        With ``exclude`` (servers already tried) the schedule goes on past
        them, as a gRPC retry makes a new pick.

        Raises:
            NoServerAvailable: no server has a weight > 0.
            TypeError: a bad ``exclude``.
        """
        if exclude:
            return super().get_server(key, exclude)
        now = self._clock()
        if now >= self._due:
            with self._lock:
                if now >= self._due:
                    self._refresh(now)
        _, names, weights = self._state
        if weights is None:
            return self._next().server
        n = len(weights)
        sequence = self._sequence
        while True:
            # stride_pick, inlined on the hot path with the constants spelled out
            # (32767 = MAX_WEIGHT // 2, 65535 = MAX_WEIGHT): a call saved is a fifth.
            s = next(sequence)
            index = s % n
            weight = weights[index]
            if (weight * (s // n) + index * 32767) % 65535 >= 65535 - weight:
                return names[index]

    def _choose(self, key: Any) -> Member:
        now = self._clock()
        if now >= self._due:
            self._refresh(now)
        return self._next()

    def _next(self) -> Member:
        rotation, _, weights = self._state
        if not rotation:
            raise self._unavailable()
        if weights is None:
            return rotation[next(self._turn) % len(rotation)]
        sequence = self._sequence
        while True:
            index = stride_pick(weights, next(sequence))
            if index is not None:
                return rotation[index]

    def _refresh(self, now: float) -> None:
        """Re-read every server's weight into a new scheduler (under the lock). O(n)."""
        rotation, names, _ = self._state
        blackout, expiration = self._blackout, self._expiration
        weights = [self._reports[m.server].usable(now, blackout, expiration) for m in rotation]
        self._state = (rotation, names, stride_weights(weights))
        self._due = now + self._period

    def _reweighted(self, member: Member, old: float) -> None:
        if old == 0 < member.weight:
            # Back in the rotation (e.g. healthy again): its blackout starts over,
            # as gRPC restarts it when a connection returns to READY.
            self._reports[member.server].since = None
        self._rebuild()

    def _rebuild(self) -> None:
        reports = self._reports
        self._reports = {s: reports.get(s) or _Report() for s in self._members}
        rotation = [m for m in self._members.values() if m.weight > 0]
        self._state = (rotation, tuple(m.server for m in rotation), None)
        self._refresh(self._clock())

    def _options(self) -> dict[str, object]:
        return {
            "blackout": self._blackout,
            "expiration": self._expiration,
            "error_penalty": self._penalty,
            "update_period": self._period,
        }

    def _check(self) -> None:
        super()._check()
        rotation, names, weights = self._state
        assert names == tuple(m.server for m in rotation)
        assert set(self._reports) == set(self._members)
        assert rotation == [m for m in self._members.values() if m.weight > 0]
        assert weights is None or len(weights) == len(rotation) >= 2
        assert weights is None or all(1 <= w <= MAX_WEIGHT for w in weights)
