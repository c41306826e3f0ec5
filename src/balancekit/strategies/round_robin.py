"""Round robin and nginx's smooth weighted round robin."""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Set
from typing import Any

from .base import Balancer, Member

__all__ = ["RoundRobin", "WeightedRoundRobin"]

_MAX_PERIOD = 1 << 16
"""The longest repeating sequence kept for O(1) picks (one reference per pick)."""

_REBASE_STEPS = 1 << 20
"""Picks between re-basings of the class engine, so float magnitudes stay small."""

_Entry = tuple[float, int, Member]
"""A class heap entry: (minus the server's base value, rotation index, member)."""


class RoundRobin(Balancer):
    """Exact rotation over the servers of weight > 0, in insertion order.

    Weights only decide membership of the rotation (0 = skip); for weighted
    rotation use :class:`WeightedRoundRobin`. The key is ignored.

    >>> lb = RoundRobin(["a", "b", "c"])
    >>> [lb.get_server() for _ in range(4)]
    ['a', 'b', 'c', 'a']

    Complexity: ``get_server`` and ``acquire`` O(1); membership changes O(n).
    Under concurrent callers every server still gets exactly its share.
    """

    def _rebuild(self) -> None:
        self._rotation = [m for m in self._members.values() if m.weight > 0]
        self._next = getattr(self, "_next", 0) % max(len(self._rotation), 1)

    def _choose(self, key: Any) -> Member:
        rotation = self._rotation
        if not rotation:
            raise self._unavailable()
        i = self._next
        self._next = i + 1 if i + 1 < len(rotation) else 0
        return rotation[i]

    def _choose_other(self, key: Any, exclude: Set[str]) -> Member | None:
        # The rotation goes on past the excluded servers, as nginx skips the
        # peers a request already tried. O(n) at worst.
        rotation = self._rotation
        count = len(rotation)
        start = self._next
        for step in range(count):
            i = (start + step) % count
            if rotation[i].server not in exclude:
                self._next = i + 1 if i + 1 < count else 0
                return rotation[i]
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
        with self._lock:
            return None if self._cycle is None else len(self._cycle)

    # -- state ------------------------------------------------------------------

    def _rebuild(self) -> None:
        carried = self._currents() if hasattr(self, "_rotation") else {}
        rotation = [m for m in self._members.values() if m.weight > 0]
        self._rotation = rotation
        # The weights as of this rebuild: by the next one, set_weight will
        # already have changed the member's, and the old state needs the old.
        self._weights = [m.weight for m in rotation]
        self._total = sum(self._weights)
        self._cycle: list[Member] | None = None
        self._pos = 0
        self._reset_engine([carried.get(m, 0.0) for m in rotation])
        self._period = _period(self._weights)
        self._record: list[Member] = []
        self._snapshot = self._values()

    def _reset_engine(self, values: list[float]) -> None:
        # Among servers of one weight every current value grows alike, so
        # their order changes only when one is picked: a heap per weight,
        # keyed by the value at step 0, answers "largest in the class".
        groups: dict[float, list[_Entry]] = {}
        for i, (member, value) in enumerate(zip(self._rotation, values, strict=True)):
            groups.setdefault(self._weights[i], []).append((-value, i, member))
        for heap in groups.values():
            heapq.heapify(heap)
        self._classes = list(groups.items())
        self._steps = 0

    def _values(self) -> list[float]:
        """Current values in rotation order (the state the nginx scan would hold)."""
        values = [0.0] * len(self._rotation)
        if self._cycle is not None:
            pos, total = self._pos, self._total
            picked = Counter(self._cycle[:pos])
            for i, member in enumerate(self._rotation):
                values[i] = self._snapshot[i] + pos * self._weights[i] - total * picked[member]
            return values
        steps = self._steps
        for weight, heap in self._classes:
            for neg_base, i, _ in heap:
                values[i] = steps * weight - neg_base
        return values

    def _currents(self) -> dict[Member, float]:
        return dict(zip(self._rotation, self._values(), strict=True))

    # -- picking ----------------------------------------------------------------

    def _choose(self, key: Any) -> Member:
        cycle = self._cycle
        if cycle is not None:
            pos = self._pos
            member = cycle[pos]
            pos += 1
            self._pos = pos if pos < len(cycle) else 0
            return member
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
        neg_base, index, member = best_heap[0]
        heapq.heapreplace(best_heap, (neg_base + self._total, index, member))
        if self._period:
            self._observe(member)
        if steps >= _REBASE_STEPS and self._cycle is None:
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
        self._cycle = None
        self._pos = 0
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
            self._cycle = record
            self._pos = 0
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
            for k, (_, i, member) in enumerate(heap):
                assert rotation[i] is member and member.weight == weight, (i, member, weight)
                assert k == 0 or not heap[k] < heap[(k - 1) >> 1], (weight, heap)
                seen.append(i)
        if self._cycle is None:
            assert sorted(seen) == list(range(len(rotation))), seen
            assert len(self._record) < (self._period or 1), len(self._record)
        else:
            assert len(self._cycle) == self._period and 0 <= self._pos < self._period
            share = self._total / self._period
            assert Counter(self._cycle) == {m: m.weight / share for m in rotation}


def _period(weights: list[float]) -> int:
    """``sum(w) / gcd(w)`` for integer weights within the replay limit, else 0."""
    if not weights or not all(w.is_integer() for w in weights):
        return 0
    ints = [int(w) for w in weights]
    period = sum(ints) // math.gcd(*ints)
    return period if period <= _MAX_PERIOD else 0
