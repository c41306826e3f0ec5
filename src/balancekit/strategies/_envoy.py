"""Envoy's ring hash and Maglev tables, for ``compat="envoy"`` on ConsistentHash and Maglev.

The facts these follow (Envoy's ``ring_hash_lb.cc``, ``maglev_lb.cc`` and
the thread-aware base that normalises weights, checked against their tests):

- Weights are normalised: ``w / sum(w)`` over the servers of weight > 0.
- Ring: ``scale = min(ceil(least * min_ring_size) / least, max_ring_size)``
  for the least normalised weight; walking the hosts in order with running
  sums, a host gets hashes until the running count reaches the running
  target ``sum(scale * weight)``. Point ``i`` of a host is the XXH64 (seed 0)
  of ``"<address>_<i>"``; a request hash goes to the first point at or after
  it, wrapping to the first.
- Maglev: hosts sorted by address; ``offset = XXH64(address) % M`` and
  ``skip = XXH64(address, seed=1) % (M - 1) + 1``. In iteration ``t = 1, 2,
  ...`` each host, in order, takes a turn if ``t * weight >= target`` and
  then adds the largest normalised weight to its ``target``; a turn claims
  the next free slot of its permutation. A request hash ``h`` goes to
  ``table[h % M]``.
- A ``str`` key is hashed as Envoy's hash policies hash a header value:
  XXH64 with seed 0 of its UTF-8 bytes.

Here the hosts go in id order (Envoy fills the ring in its host-set order,
which for a sorted host list is the same).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from typing import Any

import xxhash

from ..validate import check_int
from ._compat import LAST, Lookup, Ring, request_hash, ring_lookup

__all__ = ["MAX_RING_SIZE", "EnvoyRingPoints", "envoy_hash", "maglev_owners"]

MAX_RING_SIZE = 8388608
"""Envoy's largest ``maximum_ring_size`` (and its default)."""

envoy_hash = xxhash.xxh64_intdigest
"""``envoy_hash(data, seed=0) -> int``: Envoy's ``HashUtil::xxHash64``."""


def normalised(weights: Mapping[str, float]) -> list[tuple[str, float]]:
    """``(server, w / sum(w))`` for the servers of weight > 0, in id order. O(n log n).

    >>> normalised({"b": 3, "a": 1, "c": 0})
    [('a', 0.25), ('b', 0.75)]
    """
    live = sorted((server, weight) for server, weight in weights.items() if weight > 0)
    total = math.fsum(weight for _, weight in live)
    return [(server, weight / total) for server, weight in live]


class EnvoyRingPoints:
    """How a ring places Envoy's ring-hash points and looks up its request hashes."""

    __slots__ = ("max_ring_size", "min_ring_size")
    name = "envoy"
    shift = 0

    def __init__(self, min_ring_size: int = 1024, max_ring_size: int = MAX_RING_SIZE) -> None:
        low = check_int("min_ring_size", min_ring_size, 1, MAX_RING_SIZE)
        high = check_int("max_ring_size", max_ring_size, 1, MAX_RING_SIZE)
        if low > high:
            raise ValueError(f"min_ring_size must be <= max_ring_size, got {low} > {high}")
        self.min_ring_size = low
        self.max_ring_size = high

    def counts(self, weights: Mapping[str, float]) -> dict[str, int]:
        """Hashes per host, for all members' ``weights`` at once (Envoy's rule). O(n log n).

        >>> EnvoyRingPoints(6, 6).counts({"a": 1, "b": 2, "c": 3})
        {'a': 1, 'b': 2, 'c': 3}
        """
        hosts = normalised(weights)
        if not hosts:
            return {}
        least = min(weight for _, weight in hosts)
        scale = min(math.ceil(least * self.min_ring_size) / least, float(self.max_ring_size))
        counts = {}
        current = 0.0
        target = 0.0
        for server, weight in hosts:
            target += scale * weight
            # Envoy adds one hash at a time while current < target: current
            # ends at the first whole number >= target.
            count = max(0, math.ceil(target) - int(current))
            current += count
            if count:
                counts[server] = count
        return counts

    @staticmethod
    def points(server: str, start: int, stop: int) -> list[int]:
        """Positions of points ``start .. stop-1`` of ``server``. O(stop - start)."""
        return [envoy_hash(f"{server}_{i}".encode()) for i in range(start, stop)]

    @staticmethod
    def value(position: int) -> int:
        """The ring hash of a stored position (stored as is). O(1)."""
        return position

    @staticmethod
    def locate(key: Any) -> int:
        """Where the ring looks ``key`` up: after ``h - 1`` for its request hash ``h``. O(len).

        Raises:
            TypeError, ValueError: a bad key (see :func:`._compat.request_hash`).
        """
        h = envoy_hash(key.encode()) if type(key) is str else request_hash(key, envoy_hash)
        return h - 1 if h else LAST

    def lookup(self, ring: Ring) -> Lookup:
        """``ring``'s ``get_server``: the first point at or after the key's hash."""
        return ring_lookup(ring, self.locate)

    def __repr__(self) -> str:
        return f"EnvoyRingPoints({self.min_ring_size}, {self.max_ring_size})"


def _turns(weights: Sequence[float], size: int) -> list[int]:
    """The host of each turn of Envoy's weighted Maglev fill, ``size`` turns. O(M log n).

    A host's turn comes in the first iteration ``t`` (from 1) with
    ``t * weight >= target``; hosts of one iteration go in order. Envoy walks
    every host in every iteration; a heap of (iteration, host) visits only
    the turns taken, with the same floating-point tests, so a host of tiny
    weight costs nothing while it waits.
    """
    top = max(weights)
    targets = [0.0] * len(weights)
    heap = [(1, i) for i in range(len(weights))]
    turns: list[int] = []
    while len(turns) < size:
        t, i = heapq.heappop(heap)
        turns.append(i)
        targets[i] += top
        weight = weights[i]
        nxt = max(t + 1, math.ceil(targets[i] / weight))
        while nxt > t + 1 and (nxt - 1) * weight >= targets[i]:
            nxt -= 1  # the division rounded up past the first passing iteration
        while nxt * weight < targets[i]:
            nxt += 1
        heapq.heappush(heap, (nxt, i))
    return turns


def maglev_owners(servers: Sequence[str], weights: Sequence[float], size: int) -> list[int]:
    """Envoy's Maglev table over ``servers`` (in the order given) and normalised ``weights``.

    Entry ``j`` is the index of the server owning slot ``j``; ``size`` must
    be prime. A server may get no entry when there are more servers than
    slots, as in Envoy.

    >>> maglev_owners(["127.0.0.1:90", "127.0.0.1:91"], [0.5, 0.5], 7)
    [0, 1, 0, 1, 0, 1, 0]

    Complexity: O(M log n) turns plus O(M log M) expected probes.
    """
    if not servers:
        return []
    nexts = []
    skips = []
    for server in servers:
        data = server.encode()
        nexts.append(envoy_hash(data) % size)
        skips.append(envoy_hash(data, 1) % (size - 1) + 1)
    owner = [-1] * size
    for i in _turns(weights, size):
        slot = nexts[i]
        skip = skips[i]
        while owner[slot] >= 0:
            slot += skip
            if slot >= size:
                slot -= size
        owner[slot] = i
        slot += skip
        nexts[i] = slot - size if slot >= size else slot
    return owner
