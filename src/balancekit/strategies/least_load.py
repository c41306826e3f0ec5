"""Load-aware picks by open leases: least connections and power of two choices."""

from __future__ import annotations

import random
from typing import Any

from ..clock import Clock
from .base import Balancer, Member, Servers
from .indexed_heap import IndexedHeap

__all__ = ["LeastConnections", "PowerOfTwoChoices"]


class LeastConnections(Balancer):
    """The server with the fewest open leases per unit of weight.

    ``load(server)`` is ``in_flight / weight``; every pick is a server of
    minimum load among those of weight > 0. Among equal loads the server
    picked least recently goes first, so an idle pool rotates like round
    robin instead of always answering with the same server. ``get_server``
    counts as a pick for that rotation but opens no lease. The key is
    ignored.

    >>> lb = LeastConnections({"a": 2, "b": 1})
    >>> first = lb.acquire()        # all idle: a (insertion order breaks the tie)
    >>> second = lb.acquire()       # a is at 1/2, b at 0/1: b
    >>> third = lb.acquire()        # a 1/2 < b 1/1: a
    >>> [first.server, second.server, third.server]
    ['a', 'b', 'a']
    >>> first.release(); lb.load("a")
    True
    0.5

    Complexity: servers live in an indexed binary heap keyed by
    ``(load, last pick)``, so ``get_server``, ``acquire``, a release and
    every membership or weight change are O(log n); ``load`` and
    ``in_flight`` O(1); memory O(n).
    """

    def _rebuild(self) -> None:
        self._tick = 0
        self._heap: IndexedHeap[Member, tuple[float, int]] = IndexedHeap()
        for member in self._members.values():
            if member.weight > 0:
                self._push(member)

    def _push(self, member: Member) -> None:
        self._tick += 1
        self._heap.push(member, (member.in_flight / member.weight, self._tick))

    def _choose(self, key: Any) -> Member:
        if not self._heap:
            raise self._unavailable()
        return self._heap.peek()

    def get_server(self, key: Any = None) -> str:
        """The least loaded server, without counting a request. O(log n).

        The pick moves the server behind its equals, so repeated calls
        rotate among the servers that tie for the minimum.

        Raises:
            NoServerAvailable: no member has a weight > 0.
        """
        with self._lock:
            member = self._choose(key)
            self._tick += 1
            self._heap.update(member, (member.in_flight / member.weight, self._tick))
            return member.server

    def _acquired(self, member: Member, now: float) -> None:
        # One sift for both changes: the load went up and it is the newest pick.
        # A server pinned by a Pool may have weight 0 and so be outside the heap.
        if member in self._heap:
            self._tick += 1
            self._heap.update(member, (member.in_flight / member.weight, self._tick))

    def _released(self, member: Member, latency: float, ok: bool, now: float) -> None:
        heap = self._heap
        if member in heap:
            heap.update(member, (member.in_flight / member.weight, heap.key(member)[1]))

    def _added(self, member: Member) -> None:
        if member.weight > 0:
            self._push(member)

    def _removed(self, member: Member) -> None:
        if member in self._heap:
            self._heap.remove(member)

    def _reweighted(self, member: Member, old: float) -> None:
        heap = self._heap
        if member.weight == 0:
            heap.remove(member)  # old > 0 here: set_weight ignores no-op changes
        elif member in heap:
            heap.update(member, (member.in_flight / member.weight, heap.key(member)[1]))
        else:
            self._push(member)

    def _check(self) -> None:
        """Assert the base invariants, heap order and that keys match loads."""
        super()._check()
        heap = self._heap
        heap._check()
        expected = {m for m in self._members.values() if m.weight > 0}
        assert set(heap) == expected, (set(heap), expected)
        ticks = set()
        for member in expected:
            load, tick = heap.key(member)
            assert load == member.in_flight / member.weight, (member, load)
            assert 0 < tick <= self._tick, (member, tick, self._tick)
            ticks.add(tick)
        assert len(ticks) == len(expected), "two servers share a tie-break tick"


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
        eligible = self._eligible
        n = len(eligible)
        if n < 2:
            if n:
                return eligible[0]
            raise self._unavailable()
        randrange = self._rng.randrange
        i = randrange(n)
        # Draw the second from the n - 1 others: distinct, and still uniform.
        j = randrange(n - 1)
        if j >= i:
            j += 1
        first, second = eligible[i], eligible[j]
        if second.in_flight / second.weight < first.in_flight / first.weight:
            return second
        return first

    def _check(self) -> None:
        """Assert the base invariants and that the draw list is current."""
        super()._check()
        expected = [m for m in self._members.values() if m.weight > 0]
        assert self._eligible == expected, (self._eligible, expected)
