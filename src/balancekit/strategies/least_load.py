"""Load-aware picks: least connections, and power of d choices over open leases or peak EWMA."""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from collections.abc import Iterable, Set
from typing import Any

from ..clock import Clock
from ..errors import UnknownServer
from ..validate import check_instance, check_int, check_time
from ._peak_ewma import Estimate, carry_over, check_option
from .base import Balancer, Member, Servers
from .indexed_heap import IndexedHeap

__all__ = ["LeastConnections", "PowerOfTwoChoices"]


class LeastConnections(Balancer):
    """The server with the fewest open leases per unit of weight.

    ``load(server)`` is ``in_flight / weight``; every pick is a server of
    minimum load among those of weight > 0. Ties are served in turn: among
    equal loads, the server that has been at that load longest goes first,
    and a server that is picked, or whose load changes, joins the back of
    the queue for its new load. An idle pool therefore rotates like round
    robin instead of always answering with the same server. ``get_server``
    takes a turn in that rotation but opens no lease. The key is ignored.

    >>> lb = LeastConnections({"a": 2, "b": 1})
    >>> first = lb.acquire()        # all idle: a (insertion order breaks the tie)
    >>> second = lb.acquire()       # a is at 1/2, b at 0/1: b
    >>> third = lb.acquire()        # a 1/2 < b 1/1: a
    >>> [first.server, second.server, third.server]
    ['a', 'b', 'a']
    >>> first.release(); lb.load("a")
    True
    0.5

    Complexity: servers are grouped by load into *levels*, each a FIFO
    queue, and an :class:`~.indexed_heap.IndexedHeap` keeps the distinct
    loads in order. A pick, an acquire, a release and a membership or
    weight change move one server between levels: O(1) queue work plus
    O(log L) heap work, where L <= n is the number of distinct loads
    present (a handful in practice: with equal weights, the spread of open
    leases plus one). That is O(log n) at worst and nearly flat in n in
    practice, where one heap entry per server would pay O(log n) sifts on
    every acquire. ``load`` and ``in_flight`` O(1); memory O(n).
    """

    _incremental = True  # set_weights: a few servers move between levels
    _SPARE_LEVELS = 8
    """Empty levels kept for reuse: acquire/release pairs empty and refill the
    same level over and over, and creating it anew each time costs more."""

    def _rebuild(self) -> None:
        self._heap: IndexedHeap[float, float] = IndexedHeap()
        self._levels: dict[float, OrderedDict[Member, None]] = {}
        self._level_of: dict[Member, float] = {}
        self._spare: set[float] = set()
        for member in self._members.values():
            if member.weight > 0:
                self._move(member, None)

    def _move(self, member: Member, old: float | None) -> None:
        """Put ``member`` at the back of the level for its current load."""
        levels = self._levels
        if old is not None:
            queue = levels[old]
            del queue[member]
            if not queue:
                spare = self._spare
                spare.add(old)
                if len(spare) > self._SPARE_LEVELS:
                    for load in spare:
                        del levels[load]
                        self._heap.remove(load)
                    spare.clear()
        load = member.in_flight / member.weight
        target = levels.get(load)
        if target is None:
            levels[load] = target = OrderedDict()
            self._heap.push(load, load)
        elif not target:
            self._spare.discard(load)
        target[member] = None
        self._level_of[member] = load

    def _choose(self, key: Any) -> Member:
        heap, levels = self._heap, self._levels
        while levels:  # the heap holds the same loads; a dict answers faster
            load = heap.peek()
            queue = levels[load]
            if queue:
                return next(iter(queue))
            # An empty spare level reached the top: drop it for good.
            del levels[load]
            heap.remove(load)
            self._spare.discard(load)
        raise self._unavailable()

    def _choose_other(self, key: Any, exclude: Set[str]) -> Member | None:
        # Levels from the least load up; each in its queue order. O(k + log L)
        # for k excluded servers met on the way.
        levels = self._levels
        for load in self._heap.ascending():
            for member in levels[load]:
                if member.server not in exclude:
                    return member
        return None

    def get_server(self, key: Any = None, exclude: Iterable[str] = ()) -> str:
        """The least loaded server outside ``exclude``, without counting a request. O(log L).

        The pick goes to the back of its level, so repeated calls rotate
        among the servers that tie for the minimum.

        Raises:
            NoServerAvailable: no member has a weight > 0.
            TypeError: a bad ``exclude`` (see :meth:`Balancer.get_server`).
        """
        with self._lock:
            member = self._pick(key, exclude) if exclude else self._choose(key)
            self._levels[self._level_of[member]].move_to_end(member)
            return member.server

    def _acquired(self, member: Member, now: float) -> None:
        # A server pinned by a Pool may have weight 0 and so be in no level.
        old = self._level_of.get(member)
        if old is not None:
            self._move(member, old)

    def _released(self, member: Member, latency: float | None, ok: bool | None, now: float) -> None:
        old = self._level_of.get(member)
        if old is not None:
            self._move(member, old)

    def _added(self, member: Member) -> None:
        if member.weight > 0:
            self._move(member, None)

    def _removed(self, member: Member) -> None:
        old = self._level_of.pop(member, None)
        if old is not None:
            self._drop(member, old)

    def _reweighted(self, member: Member, old: float) -> None:
        level = self._level_of.get(member)
        if member.weight == 0:
            if level is not None:
                del self._level_of[member]
                self._drop(member, level)
        else:
            self._move(member, level)

    def _drop(self, member: Member, load: float) -> None:
        queue = self._levels[load]
        del queue[member]
        if not queue:
            del self._levels[load]
            self._heap.remove(load)
            self._spare.discard(load)

    def _check(self) -> None:
        """Assert the base invariants, heap order and that levels match loads."""
        super()._check()
        heap, levels = self._heap, self._levels
        heap._check()
        assert set(heap) == set(levels), (set(heap), set(levels))
        assert all(heap.key(load) == load for load in levels)
        assert self._spare == {load for load, queue in levels.items() if not queue}
        assert len(self._spare) <= self._SPARE_LEVELS, self._spare
        expected = {m for m in self._members.values() if m.weight > 0}
        assert set(self._level_of) == expected, (self._level_of, expected)
        assert sum(len(queue) for queue in levels.values()) == len(expected)
        for load, queue in levels.items():
            for member in queue:
                assert self._level_of[member] == load, (member, load)
                assert member.in_flight / member.weight == load, (member, load)


_LOADS = ("in_flight", "peak_ewma")


class PowerOfTwoChoices(Balancer):
    """The least loaded of ``choices`` distinct servers drawn at random (two by default).

    Draws ``choices`` *different* servers uniformly among those of weight > 0
    (all of them, in random order, when there are no more) and keeps the one
    of lowest load, the first drawn on a tie. Sampling without replacement
    matters with few servers: drawing the same server twice would send it
    work whatever its load. The most loaded server is therefore never picked
    while another server is less loaded. The key is ignored.

    ``load`` says what is compared:

    - ``"in_flight"`` (default): open leases / weight, gRPC's
      ``least_request`` (``choices`` is its ``choice_count``, 2 to 10);
    - ``"peak_ewma"``: peak-EWMA latency x (open leases + 1) / weight, the
      load of :class:`~.response_time.LeastResponseTime` (same estimator,
      ``decay`` and ``default_rtt``), which is Finagle's and Linkerd's default
      balancer. Every sample counts, failures included, as in Finagle (no
      failure penalty: pair it with a HealthTracker to take failing servers
      out). An abandoned lease is a sample of its elapsed time; a server
      whose weight goes from 0 to positive restarts at ``default_rtt``.

    Why sample rather than take the global minimum: every client that reads
    the same minimum sends its next requests to the same server (herding),
    and a full scan costs O(n). Two random choices give an exponentially
    better maximum load than one (Mitzenmacher) and never pick the worst.

    Randomness comes from ``rng``, a :class:`random.Random` you may seed for
    reproducible runs; by default a fresh, OS-seeded ``random.Random()``.

    >>> import random
    >>> lb = PowerOfTwoChoices(["a", "b"], rng=random.Random(7))
    >>> busy = lb.acquire()
    >>> {lb.get_server() for _ in range(20)} == {"a", "b"} - {busy.server}
    True

    Complexity: ``get_server``, ``acquire`` and a release O(choices)
    (``choices`` random draws, a logarithm each for peak EWMA, which needs
    no clock read to compare: see :mod:`._peak_ewma`); with ``exclude``,
    O(n); membership and weight changes O(n); memory O(n).

    Raises:
        TypeError: ``rng`` is not a :class:`random.Random`; ``choices`` is not
            an ``int``; ``load`` is not a ``str``; ``decay`` or ``default_rtt``
            is not a number (``bool`` included).
        ValueError: ``choices`` outside [2, 10]; an unknown ``load``;
            ``decay`` not finite and > 0; ``default_rtt`` not finite and >= 0.
    """

    def __init__(
        self,
        servers: Servers = (),
        *,
        choices: int = 2,
        load: str = "in_flight",
        decay: float = 10.0,
        default_rtt: float = 0.030,
        rng: random.Random | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._choices = check_int("choices", choices, 2, 10)
        if not isinstance(load, str):
            raise TypeError(f"load must be one of {_LOADS}, got {load!r}")
        if load not in _LOADS:
            raise ValueError(f"load must be one of {_LOADS}, got {load!r}")
        self._decay = check_option("decay", decay, positive=True)
        self._default_rtt = check_option("default_rtt", default_rtt, positive=False)
        self._load = load
        check_instance("rng", rng, random.Random, optional=True)
        self._rng = rng or random.Random()
        # Peak EWMA only: the estimates. Their keys are compared at time 0:
        # log e + t_prev / decay + log((in_flight + 1) / weight), no clock read.
        self._estimates: dict[Member, Estimate] | None = {} if load == "peak_ewma" else None
        self._eligible: list[Member] = []
        super().__init__(servers, clock=clock)

    @property
    def rng(self) -> random.Random:
        """The source of the random draws."""
        return self._rng

    @property
    def choices(self) -> int:
        """How many distinct servers each pick compares."""
        return self._choices

    @property
    def load_metric(self) -> str:
        """``"in_flight"`` or ``"peak_ewma"``: what the pick compares."""
        return self._load

    @property
    def decay(self) -> float:
        """Peak EWMA: seconds for the estimate to fall to 1/e of itself without new samples."""
        return self._decay

    @property
    def default_rtt(self) -> float:
        """Peak EWMA: the estimate a server starts with, in seconds."""
        return self._default_rtt

    def _options(self) -> dict[str, object]:
        options: dict[str, object] = {"choices": self._choices, "load": self._load}
        if self._estimates is not None:
            options.update(decay=self._decay, default_rtt=self._default_rtt)
        return options

    def _rebuild(self) -> None:
        old = self._estimates
        # Peak EWMA dates fresh estimates: read the clock before anything changes, so a
        # broken reading (NaN, inf, None) raises with the balancer as it was.
        now = 0.0 if old is None else self._time()
        was = set(self._eligible)
        self._eligible = [m for m in self._members.values() if m.weight > 0]
        if old is None:
            return
        self._estimates = carry_over(old, self._members.values(), was, self._default_rtt, now)

    def _choose(self, key: Any, eligible: list[Member] | None = None) -> Member:
        # One method for both lists (not a helper call): this is the hot path.
        if eligible is None:
            eligible = self._eligible
        n = len(eligible)
        if n < 2:
            if n:
                return eligible[0]
            raise self._unavailable()
        estimates = self._estimates
        if self._choices == 2:
            # int(random() * k) is uniform on [0, k) to within k / 2**53, and
            # costs a fraction of randrange().
            random = self._rng.random
            i = int(random() * n)
            # Draw the second from the n - 1 others: distinct, and still uniform.
            j = int(random() * (n - 1))
            if j >= i:
                j += 1
            first, second = eligible[i], eligible[j]
            if estimates is None:
                if second.in_flight / second.weight < first.in_flight / first.weight:
                    return second
                return first
            decay = self._decay
            if estimates[second].log_key(0.0, decay) < estimates[first].log_key(0.0, decay):
                return second
            return first
        drawn = self._rng.sample(eligible, min(self._choices, n))
        if estimates is None:
            return min(drawn, key=lambda m: m.in_flight / m.weight)  # the first on a tie
        decay = self._decay
        return min(drawn, key=lambda m: estimates[m].log_key(0.0, decay))

    def _choose_other(self, key: Any, exclude: Set[str]) -> Member | None:
        # The same draw among the servers not excluded. O(n).
        others = [m for m in self._eligible if m.server not in exclude]
        if not others:
            return None
        return self._choose(key, others)

    def _released(self, member: Member, latency: float | None, ok: bool | None, now: float) -> None:
        estimates = self._estimates
        if estimates is not None and latency is not None:
            estimates[member].observe(latency, ok=ok, now=now, decay=self._decay, penalty=0.0)

    def load(self, server: str) -> float:
        """The figure compared: in-flight / weight, or for peak EWMA the decayed
        latency estimate x (in-flight + 1) / weight at the clock's now. O(1).

        A server of weight 0 has infinite load (it must get nothing).

        Raises:
            UnknownServer: the server is not a member.
        """
        if self._estimates is None:
            return super().load(server)
        now = check_time(self._clock())
        with self._lock:
            member = self._members.get(server)
            if member is None:
                raise UnknownServer(server)
            return self._estimates[member].load(now, self._decay)

    def _check(self) -> None:
        """Assert the base invariants, that the draw list is current and the estimates sane."""
        super()._check()
        expected = [m for m in self._members.values() if m.weight > 0]
        assert self._eligible == expected, (self._eligible, expected)
        if self._estimates is not None:
            assert set(self._estimates) == set(self._members.values())
            for member, est in self._estimates.items():
                assert est.member is member, (member, est)
                assert math.isfinite(est.rtt) and est.rtt >= 0 and math.isfinite(est.stamp), est
