"""Load-aware picks by open leases: least connections and power of two choices."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Iterable, Set
from typing import Any

from ..clock import Clock
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

    def _released(self, member: Member, latency: float, ok: bool, now: float) -> None:
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


class PowerOfTwoChoices(Balancer):
    """The less loaded of two distinct servers drawn at random.

    Draws two *different* servers uniformly among those of weight > 0 and
    keeps the one with the lower ``in_flight / weight`` (the first drawn on
    a tie, which is itself a fair coin). Sampling without replacement
    matters with few servers: drawing the same server twice would send it
    work whatever its load. With one eligible server, that server is chosen.
    The most loaded server is therefore never picked while another server
    is less loaded. The key is ignored.

    Randomness comes from ``rng``, a :class:`random.Random` you may seed for
    reproducible runs; by default a fresh, OS-seeded ``random.Random()``.

    >>> import random
    >>> lb = PowerOfTwoChoices(["a", "b"], rng=random.Random(7))
    >>> busy = lb.acquire()
    >>> {lb.get_server() for _ in range(20)} == {"a", "b"} - {busy.server}
    True

    Complexity: ``get_server``, ``acquire`` and a release O(1) (two random
    draws); membership and weight changes O(n); memory O(n).

    Raises:
        TypeError: ``rng`` is not a :class:`random.Random`.
    """

    def __init__(
        self,
        servers: Servers = (),
        *,
        rng: random.Random | None = None,
        clock: Clock | None = None,
    ) -> None:
        if rng is not None and not isinstance(rng, random.Random):
            raise TypeError(f"rng must be a random.Random, got {rng!r}")
        self._rng = random.Random() if rng is None else rng
        super().__init__(servers, clock=clock)

    @property
    def rng(self) -> random.Random:
        """The source of the random draws."""
        return self._rng

    def _rebuild(self) -> None:
        self._eligible = [m for m in self._members.values() if m.weight > 0]

    def _choose(self, key: Any) -> Member:
        return self._draw(self._eligible)

    def _draw(self, eligible: list[Member]) -> Member:
        n = len(eligible)
        if n < 2:
            if n:
                return eligible[0]
            raise self._unavailable()
        # int(random() * k) is uniform on [0, k) to within k / 2**53, and
        # costs a fraction of randrange().
        random = self._rng.random
        i = int(random() * n)
        # Draw the second from the n - 1 others: distinct, and still uniform.
        j = int(random() * (n - 1))
        if j >= i:
            j += 1
        first, second = eligible[i], eligible[j]
        if second.in_flight / second.weight < first.in_flight / first.weight:
            return second
        return first

    def _choose_other(self, key: Any, exclude: Set[str]) -> Member | None:
        # The same draw among the servers not excluded. O(n).
        others = [m for m in self._eligible if m.server not in exclude]
        if not others:
            return None
        return self._draw(others)

    def _check(self) -> None:
        """Assert the base invariants and that the draw list is current."""
        super()._check()
        expected = [m for m in self._members.values() if m.weight > 0]
        assert self._eligible == expected, (self._eligible, expected)
