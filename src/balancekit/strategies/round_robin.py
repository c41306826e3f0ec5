"""Round robin and nginx's smooth weighted round robin."""

from __future__ import annotations

import heapq
import itertools
import math
import operator
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Set
from typing import Any

from .base import Balancer, Member

__all__ = ["RoundRobin", "WeightedRoundRobin"]

_MAX_PERIOD = 1 << 16
"""The longest repeating sequence kept for O(1) picks (one reference per pick)."""

_REBASE_STEPS = 1 << 20
"""Picks between re-basings of the class engine, so float magnitudes stay small."""

_ATOMIC_NEXT: bool = getattr(sys, "_is_gil_enabled", lambda: True)()
"""Whether ``next()`` on an ``itertools`` iterator is atomic (it is under the GIL)."""

_Entry = tuple[float, int]
"""A class heap entry: (minus the server's base value, rotation index). Numbers
only, so the collector stops tracking the entries: a rebuild of 100,000 servers
does not make every later collection walk 100,000 more objects."""


class RoundRobin(Balancer):
    """Exact rotation over the servers of weight > 0, in insertion order.

    Weights only decide membership of the rotation (0 = skip); for weighted
    rotation use :class:`WeightedRoundRobin`. The key is ignored.

    >>> lb = RoundRobin(["a", "b", "c"])
    >>> [lb.get_server() for _ in range(4)]
    ['a', 'b', 'c', 'a']

    Complexity: ``get_server`` and ``acquire`` O(1); membership changes O(n).

    Thread safety: ``get_server`` takes no lock. The rotation is an
    :func:`itertools.cycle`, whose ``next`` is one indivisible step under
    CPython's global interpreter lock, so concurrent callers still share
    every full cycle exactly (on a free-threaded build, ``get_server``
    takes the lock instead). A change publishes a new cycle in one
    assignment; a call running meanwhile answers from the old rotation or
    the new one.
    """

    def _rebuild(self) -> None:
        rotation = [m for m in self._members.values() if m.weight > 0]
        old: list[Member] = getattr(self, "_rotation", [])
        # The rotation goes on from the old one's next position.
        start = old.index(next(self._turns)) % len(rotation) if old and rotation else 0
        self._rotation = rotation
        self._turns: Iterator[Member] = itertools.cycle(rotation[start:] + rotation[:start])

    def get_server(self, key: Any = None, exclude: Iterable[str] = ()) -> str:
        """The next server of the rotation outside ``exclude``; lock-free without it. O(1).

        Raises:
            NoServerAvailable: no member has a weight > 0.
            TypeError: a bad ``exclude`` (see :meth:`Balancer.get_server`).
        """
        if exclude or not _ATOMIC_NEXT:
            return super().get_server(key, exclude)
        try:
            return next(self._turns).server
        except StopIteration:  # an empty rotation
            raise self._unavailable() from None

    def _choose(self, key: Any) -> Member:
        try:
            return next(self._turns)
        except StopIteration:
            raise self._unavailable() from None

    def _choose_other(self, key: Any, exclude: Set[str]) -> Member | None:
        # The rotation goes on past the excluded servers, as nginx skips the
        # peers a request already tried; a full turn without a match leaves
        # the rotation where it was. O(n) at worst.
        turns = self._turns
        for _ in range(len(self._rotation)):
            member = next(turns)
            if member.server not in exclude:
                return member
        return None


class WeightedRoundRobin(Balancer):
    """nginx's smooth weighted round robin: heavy servers interleaved, not bunched.

    Every server of weight > 0 keeps a *current* value, 0 to begin with. Each
    pick adds every server's weight to its current value, chooses the largest
    (the earliest server in insertion order on a tie) and takes the total
    weight off the chosen one. Over any stretch of ``sum(weights)`` picks
    from the start, each server is chosen exactly its weight's worth of
    times, spread out as evenly as the weights allow. Weights may be
    fractions (a Pool ramping a server up during slow start sets them). The
    key is ignored.

    >>> lb = WeightedRoundRobin({"a": 5, "b": 1, "c": 1})
    >>> "".join(lb.get_server() for _ in range(14))
    'aabacaaaabacaa'

    Changes keep the rotation going rather than restarting it, as nginx
    does when a peer's weight changes at run time: the servers that stay
    keep their current values, a server that joins (or whose weight rises
    from 0) starts at 0, and one that leaves (or drops to weight 0) forgets
    its value. Restarting instead would hand the first picks after every
    change to the same heavy server, which starves the others when weights
    change often (as during slow start).

    Complexity: the rule above costs O(n) per pick when written as a scan.
    Here servers of equal weight share a heap (among them the order never
    changes except by being picked), so a pick costs O(d + log n) for d
    distinct weights. With integer weights the picks repeat with period
    ``P = sum(weights) / gcd(weights)``; once the balancer has seen the
    state come back after P picks (at most a few periods after a change)
    and P <= 65,536, it replays the recorded period: O(1) per pick,
    O(P) memory (see :attr:`period`). A membership or weight change costs
    O(n + P). Fractional weights give the same picks as the scan, up to
    floating-point rounding on exact ties.
    """

    @property
    def period(self) -> int | None:
        """Length of the recorded repeating sequence when picks are O(1), else ``None``.

        >>> lb = WeightedRoundRobin({"a": 4, "b": 2})
        >>> lb.period is None
        True
        >>> [lb.get_server() for _ in range(3)]
        ['a', 'b', 'a']
        >>> lb.period
        3
        """
        replay = self._replay
        return None if replay is None else len(replay[0])

    # -- state ------------------------------------------------------------------

    def _rebuild(self) -> None:
        carried = self._currents() if hasattr(self, "_rotation") else {}
        rotation = [m for m in self._members.values() if m.weight > 0]
        self._rotation = rotation
        # The weights as of this rebuild: by the next one, set_weight will
        # already have changed the member's, and the old state needs the old.
        self._weights = [m.weight for m in rotation]
        self._total = sum(self._weights)
        # The recorded period and the count of picks taken from it, once found.
        self._replay: tuple[list[Member], Iterator[int]] | None = None
        values = [carried.get(m, 0.0) for m in rotation]
        self._reset_engine(values)
        self._period = _period(self._weights)
        self._record: list[Member] = []
        self._snapshot = values  # what _values() reads back at step 0

    def _reset_engine(self, values: list[float]) -> None:
        # Among servers of one weight every current value grows alike, so
        # their order changes only when one is picked: a heap per weight,
        # keyed by the value at step 0, answers "largest in the class".
        # Indices sorted by weight, grouped, in C: no Python step per server
        # but the entry's creation.
        weights = self._weights
        entries = list(zip(map(operator.neg, values), range(len(values)), strict=True))
        order = sorted(range(len(weights)), key=weights.__getitem__)
        groups = {
            weight: [entries[i] for i in run]
            for weight, run in itertools.groupby(order, key=weights.__getitem__)
        }
        for heap in groups.values():
            heapq.heapify(heap)
        self._classes = list(groups.items())
        self._steps = 0

    def _values(self) -> list[float]:
        """Current values in rotation order (the state the nginx scan would hold)."""
        values = [0.0] * len(self._rotation)
        if self._replay is not None:
            # Reading the position takes a turn: fine, since every caller
            # (a change, an exclusion) starts the engine afresh from these values.
            cycle, turns = self._replay
            pos, total = next(turns) % len(cycle), self._total
            picked = Counter(cycle[:pos])
            for i, member in enumerate(self._rotation):
                values[i] = self._snapshot[i] + pos * self._weights[i] - total * picked[member]
            return values
        steps = self._steps
        for weight, heap in self._classes:
            for neg_base, i in heap:
                values[i] = steps * weight - neg_base
        return values

    def _currents(self) -> dict[Member, float]:
        return dict(zip(self._rotation, self._values(), strict=True))

    # -- picking ----------------------------------------------------------------

    def get_server(self, key: Any = None, exclude: Iterable[str] = ()) -> str:
        """The next server of the smooth rotation outside ``exclude``.

        Lock-free while the recorded period is replayed (O(1), as
        :class:`RoundRobin`: concurrent callers share every period exactly);
        otherwise one step of the engine under the lock.

        Raises:
            NoServerAvailable: no member has a weight > 0.
            TypeError: a bad ``exclude`` (see :meth:`Balancer.get_server`).
        """
        replay = self._replay
        if replay is None or exclude or not _ATOMIC_NEXT:
            return super().get_server(key, exclude)
        cycle, turns = replay
        return cycle[next(turns) % len(cycle)].server

    def _choose(self, key: Any) -> Member:
        replay = self._replay
        if replay is not None:
            cycle, turns = replay
            return cycle[next(turns) % len(cycle)]
        if not self._rotation:
            raise self._unavailable()
        steps = self._steps + 1
        self._steps = steps
        best_value = -math.inf
        best_index = 0
        best_heap: list[_Entry] = []
        for weight, heap in self._classes:
            top = heap[0]
            value = steps * weight - top[0]
            if value > best_value or (value == best_value and top[1] < best_index):
                best_value, best_index, best_heap = value, top[1], heap
        neg_base, index = best_heap[0]
        member = self._rotation[index]
        heapq.heapreplace(best_heap, (neg_base + self._total, index))
        if self._period:
            self._observe(member)
        if steps >= _REBASE_STEPS and self._replay is None:
            self._reset_engine(self._values())
        return member

    def _choose_other(self, key: Any, exclude: Set[str]) -> Member | None:
        # nginx's own rule for a retry: the peers already tried neither gain
        # their weight nor count in the total for this pick. The class engine
        # and any recorded period restart from the resulting values. O(n).
        rotation, weights = self._rotation, self._weights
        allowed = [i for i, m in enumerate(rotation) if m.server not in exclude]
        if not allowed:
            return None
        if len(allowed) == len(rotation):  # only ids outside the rotation: the usual pick
            return self._choose(key)
        values = self._values()
        best = allowed[0]
        total = 0.0
        for i in allowed:
            values[i] += weights[i]
            total += weights[i]
            if values[i] > values[best]:
                best = i
        values[best] -= total
        self._replay = None
        self._record = []
        self._snapshot = values
        self._reset_engine(values)
        return rotation[best]

    def _observe(self, member: Member) -> None:
        # Record one period of picks; if the state is back where the period
        # began, the sequence repeats from here on and the record is it.
        record = self._record
        record.append(member)
        if len(record) < self._period:
            return
        values = self._values()
        if values == self._snapshot:
            self._replay = (record, itertools.count())
        else:
            self._snapshot = values
            self._record = []

    def _check(self) -> None:
        """Assert the base invariants, the class heaps and the recorded period."""
        super()._check()
        rotation = self._rotation
        assert rotation == [m for m in self._members.values() if m.weight > 0], rotation
        assert self._total == sum(m.weight for m in rotation), self._total
        seen: list[int] = []
        for weight, heap in self._classes:
            for k, (_, i) in enumerate(heap):
                assert rotation[i].weight == weight, (i, rotation[i], weight)
                assert k == 0 or not heap[k] < heap[(k - 1) >> 1], (weight, heap)
                seen.append(i)
        if self._replay is None:
            assert sorted(seen) == list(range(len(rotation))), seen
            assert len(self._record) < (self._period or 1), len(self._record)
        else:
            cycle = self._replay[0]
            assert len(cycle) == self._period
            share = self._total / self._period
            assert Counter(cycle) == {m: m.weight / share for m in rotation}


def _period(weights: list[float]) -> int:
    """``sum(w) / gcd(w)`` for integer weights within the replay limit, else 0."""
    if not weights or not all(map(float.is_integer, weights)):
        return 0
    ints = list(map(int, weights))
    period = sum(ints) // math.gcd(*ints)
    return period if period <= _MAX_PERIOD else 0
