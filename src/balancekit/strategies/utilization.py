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
import operator
import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..clock import Clock
from ..errors import UnknownServer
from ..validate import check_positive, check_range, check_time
from ._stride import (
    BLOCK_LANES,
    MAX_WEIGHT,
    SEQUENCE_LIMIT,
    StrideBlocks,
    stride_weights,
)
from .base import Balancer, Member, Servers
from .round_robin import _ATOMIC_NEXT

__all__ = ["MIN_UPDATE_PERIOD", "UtilizationRoundRobin"]

MIN_UPDATE_PERIOD = 0.1
"""The shortest ``update_period``; a shorter one is raised to it, as gRPC does."""

_F32 = struct.Struct("f")
_MINUS_INFINITY = -math.inf


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

    Complexity: ``get_server`` and ``acquire`` O(1) amortized: a pick is the
    next entry of a block of picks, and a block (the picks of up to
    ``BLOCK_LANES`` = 8,192 sequence numbers of gRPC's scheduler, whole
    generations) is computed when the last one is used, in big-int
    operations and a :func:`itertools.compress` of about 13 ns a sequence
    number (see :class:`._stride.StrideBlocks`); the first block after new
    weights costs O(n) more. ``report`` O(1); re-reading the weights O(n),
    at most once per ``update_period``; unchanged weights keep the blocks
    going.

    Thread safety: ``get_server`` takes the lock only to re-read the weights
    or to compute the next block; otherwise a pick is one ``next()`` on an
    iterator over the block's picks (atomic under CPython's global
    interpreter lock; on a free-threaded build ``get_server`` takes the
    lock), after one clock read and two comparisons. A pick racing
    with a re-reading of the weights may take one sequence number the new
    schedule takes again, as concurrent picks in gRPC may.

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
        self._rotation: list[Member] = []
        self._names: tuple[str, ...] = ()
        # The scheduler's integer weights, or None for the round-robin fallback.
        self._weights: tuple[int, ...] | None = None
        self._blocks: StrideBlocks[str] | None = None
        self._generations = 1  # of the next block: doubles up to the most
        # The picks of the block being handed out, and an iterator over them that
        # a lock-free pick advances: one next() (atomic under the GIL) reads and
        # counts; a new block replaces the iterator whole.
        self._block: Sequence[str] = []
        self._picks: Iterator[str] = iter(self._block)
        # Where the block began: (from the scheduler?, its first sequence number,
        # its lanes (1: picked), the sequence number after it, the round-robin
        # turn). gRPC's sequence is an atomic uint32 that wraps at 2**32; the
        # fallback's turn counts on without a bound.
        self._origin: tuple[bool, int, bytes, int, int] = (False, 0, b"", 0, 0)
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
        now = check_time(self._clock())
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
        now = check_time(self._clock())
        if now - report.updated >= self._expiration or report.since is None:
            return 0.0
        if self._blackout > 0 and now - report.since < self._blackout:
            return 0.0
        return report.weight

    # -- picking ----------------------------------------------------------------

    def get_server(self, key: Any = None, exclude: Iterable[str] = ()) -> str:
        """The next server of the schedule. O(1) amortized; the key is ignored.

        With ``exclude`` (servers already tried) the schedule goes on past
        them, as a gRPC retry makes a new pick.

        Raises:
            NoServerAvailable: no server has a weight > 0.
            TypeError: a bad ``exclude``, or the clock returned no number.
            ValueError: the clock returned NaN or an infinity; nothing changes.
        """
        if exclude:
            return Balancer.get_server(self, key, exclude)
        # Through a local: self._clock() is a LOAD_METHOD, which CPython 3.11 does not
        # specialize for an instance attribute (about 6 ns more a pick).
        clock = self._clock
        now = clock()
        try:
            # Two comparisons pass the usual reading, a float before the next
            # re-reading is due. NaN, infinities and None (a TypeError) fail
            # them and go the slow way to check_time, as do a due re-reading
            # and a used-up block. A reading of another number type below the
            # due time (an int, a bool, a Decimal) passes as its value; the
            # next call that goes the slow way checks it. A type test here
            # would cost a pick about 8 ns more.
            if now < self._due and now > _MINUS_INFINITY:
                return next(self._picks)
        except (TypeError, StopIteration):
            pass
        now = check_time(now)  # a broken reading refuses before anything changes
        with self._lock:
            if now >= self._due:
                self._refresh(now)
            return self._next().server

    if not _ATOMIC_NEXT:  # pragma: no cover - a free-threaded build: next() is not atomic
        get_server = Balancer.get_server  # every pick under the lock

    def _choose(self, key: Any) -> Member:
        now = check_time(self._clock())
        if now >= self._due:
            self._refresh(now)
        return self._next()

    def _next(self) -> Member:
        """The next pick, computing blocks as they are used up (under the lock)."""
        while True:
            pick = next(self._picks, None)
            if pick is not None:
                return self._members[pick]
            if not self._rotation:
                raise self._unavailable()
            scheduled, first, _, end, turn = self._origin
            if scheduled:
                self._start_block(end, turn)
            else:
                self._start_block(first, turn + len(self._block))

    def _start_block(self, sequence: int, turn: int) -> None:
        """The picks from ``sequence`` on (the scheduler's) or from ``turn`` (the fallback's)."""
        blocks = self._blocks
        if blocks is None:
            names = self._names
            n = len(names)
            at = turn % n
            picks: Sequence[str] = (names * (BLOCK_LANES // n + 2))[at : at + max(n, BLOCK_LANES)]
            self._origin = (False, sequence, b"", sequence, turn)
        else:
            generations = self._generations
            picks, lanes, end = blocks.block(sequence, generations)
            self._generations = min(2 * generations, blocks.most_generations)
            self._origin = (True, sequence, lanes, end, turn)
        self._block = picks
        self._picks = iter(picks)

    def _position(self) -> tuple[int, int]:
        """(The sequence number, the fallback's turn) after the picks handed out. O(block)."""
        picks = self._block
        count = len(picks) - operator.length_hint(self._picks)
        scheduled, first, lanes, _, turn = self._origin
        if not scheduled:
            return first, turn + count
        if count == 0:
            return first, turn
        # The scheduler's next try is the sequence number after the last pick's.
        last = next(itertools.islice(itertools.compress(itertools.count(), lanes), count - 1, None))
        return (first + last + 1) % SEQUENCE_LIMIT, turn

    def _refresh(self, now: float, *, changed: bool = False) -> None:
        """Re-read every server's weight (under the lock); new weights start a new
        schedule where the sequence stands. O(n)."""
        blackout, expiration = self._blackout, self._expiration
        usable = [self._reports[m.server].usable(now, blackout, expiration) for m in self._rotation]
        weights = stride_weights(usable)
        self._due = now + self._period
        if weights == self._weights and not changed:
            return  # the same schedule: its picks go on
        sequence, turn = self._position()
        self._weights = weights
        self._blocks = None if weights is None else StrideBlocks(weights, self._names)
        self._generations = 1  # a small first block: the weights may change again soon
        self._origin = (False, sequence, b"", sequence, turn)
        self._block = []
        self._picks = iter(self._block)

    def _reweighted(self, member: Member, old: float) -> None:
        now = self._time()  # a broken reading refuses before anything changes
        if old == 0 < member.weight:
            # Back in the rotation (e.g. healthy again): its blackout starts over,
            # as gRPC restarts it when a connection returns to READY.
            self._reports[member.server].since = None
        self._rebuild_at(now)

    def _rebuild(self) -> None:
        self._rebuild_at(self._time())

    def _rebuild_at(self, now: float) -> None:
        reports = self._reports
        self._reports = {s: reports.get(s) or _Report() for s in self._members}
        self._rotation = [m for m in self._members.values() if m.weight > 0]
        self._names = tuple(m.server for m in self._rotation)
        self._refresh(now, changed=True)

    def _options(self) -> dict[str, object]:
        return {
            "blackout": self._blackout,
            "expiration": self._expiration,
            "error_penalty": self._penalty,
            "update_period": self._period,
        }

    def _check(self) -> None:
        super()._check()
        rotation, names, weights = self._rotation, self._names, self._weights
        assert names == tuple(m.server for m in rotation)
        assert set(self._reports) == set(self._members)
        assert rotation == [m for m in self._members.values() if m.weight > 0]
        assert weights is None or len(weights) == len(rotation) >= 2
        assert weights is None or all(1 <= w <= MAX_WEIGHT for w in weights)
        assert (self._blocks is None) == (weights is None)
        assert set(self._block) <= set(names)
        scheduled, first, lanes, end, _ = self._origin
        assert not scheduled or (weights is not None and sum(lanes) == len(self._block))
        assert 0 <= first < SEQUENCE_LIMIT and 0 <= end < SEQUENCE_LIMIT
