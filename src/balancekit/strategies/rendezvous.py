"""Rendezvous (highest random weight) hashing: every server bids for every key.

Thaler and Ravishankar, "Using name-based mappings to increase hit rates"
(1998). Each server scores each key with a hash of the pair; the highest score
wins. Removing a server moves only its keys, each to the server that scored
second; adding one moves only the keys it now outbids everyone for. Weights
use the logarithmic method (Schindelhauer and Schomaker, 2005): with ``u`` the
pair hash mapped into (0, 1), the score ``-w / ln(u)`` makes a server win a
share of keys proportional to its weight ``w``.

The pair hash: the key is hashed once to 64 bits; then, per server, those 8
bytes are hashed again with XXH3-64 seeded by the server's own precomputed
64-bit hash. XXH3 keyed by a seed is a strong 64-bit mixer, and one C call per
server is cheaper in CPython than any mixer written in Python. Scores tie with
probability about 2**-50; a tie goes to the larger server id.
"""

from __future__ import annotations

import heapq
import math
from itertools import repeat
from operator import rshift
from typing import Any

from ..clock import Clock
from ..hashing import hash_bytes, hash_key, hash_server
from .base import Balancer, Member, Servers

__all__ = ["Rendezvous"]

_SEED_LIMIT = 1 << 64
_TWO_52 = float(1 << 52)


class _Snapshot:
    """The servers of weight > 0, sorted by id, with what scoring them needs."""

    __slots__ = ("names", "seeds", "weights")

    def __init__(self, names: tuple[str, ...], seeds: tuple[int, ...], weights: tuple[float, ...]):
        self.names = names
        self.seeds = seeds
        # None when all weights are equal: the winner is then the largest hash,
        # found without computing a logarithm per server.
        self.weights: tuple[float, ...] | None = weights if len(set(weights)) > 1 else None

    def __repr__(self) -> str:
        seeds = dict(zip(self.names, self.seeds, strict=True))
        return f"_Snapshot({seeds!r}, weights={self.weights!r})"


class Rendezvous(Balancer):
    """Highest-random-weight hashing, weighted, with ranked replicas.

    ``get_server(key)`` is the server with the highest score for ``key``;
    ``get_n_servers(key, n)`` the ``n`` highest, in order: the second is where
    the key goes if the first leaves. Placement depends only on the server ids,
    weights, ``seed`` and key, never on insertion order or the process.

    >>> lb = Rendezvous(["a", "b", "c"])
    >>> first = lb.get_server("user-42")
    >>> lb.get_n_servers("user-42", 3)[0] == first
    True
    >>> lb.remove_server(lb.get_n_servers("user-42", 2)[1])
    >>> lb.get_server("user-42") == first
    True

    Complexity: ``get_server`` and ``acquire`` O(n) per pick (every server is
    scored), which suits pools of up to a few hundred servers;
    ``get_n_servers`` O(n log k) for ``k`` replicas; a membership or weight
    change O(n log n).

    Thread safety: ``get_server`` and ``get_n_servers`` take no lock; they read
    one snapshot object, which a change replaces with one assignment.

    Raises:
        TypeError, ValueError: ``seed`` is not an int in [0, 2**64).
    """

    requires_key = True

    def __init__(self, servers: Servers = (), *, seed: int = 0, clock: Clock | None = None) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int in [0, 2**64), got {seed!r}")
        if not 0 <= seed < _SEED_LIMIT:
            raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
        self._seed = seed
        self._snap = _Snapshot((), (), ())
        super().__init__(servers, clock=clock)

    @property
    def seed(self) -> int:
        """The hash seed for keys and servers."""
        return self._seed

    def _rebuild(self) -> None:
        live = sorted((m.server, m.weight) for m in self._members.values() if m.weight > 0)
        names = tuple(server for server, _ in live)
        seeds = tuple(hash_server(name, 0, self._seed) for name in names)
        self._snap = _Snapshot(names, seeds, tuple(weight for _, weight in live))

    def _key_digest(self, key: object) -> bytes:
        if type(key) is str:
            digest = hash_bytes(key.encode(), self._seed)
        elif key is None:
            raise TypeError("Rendezvous needs a key (str, bytes or int) for every pick, got None")
        else:
            digest = hash_key(key, self._seed)
        return digest.to_bytes(8, "little")

    def get_server(self, key: Any = None) -> str:
        """The server with the highest score for ``key``, without the lock.

        Complexity: O(n) plus O(len(key)).

        Raises:
            TypeError: no key, or a key that is not ``str``, ``bytes`` or ``int``.
            NoServerAvailable: no server has a weight > 0.
        """
        snap = self._snap
        digest = self._key_digest(key)
        if not snap.names:
            raise self._unavailable()
        hashes = map(hash_bytes, repeat(digest), snap.seeds)
        if snap.weights is None:
            # Equal weights: -w / ln(u) grows with u, and u with the top 52 bits.
            return max(zip(map(rshift, hashes, repeat(12)), snap.names, strict=True))[1]
        return max(zip(_scores(hashes, snap.weights), snap.names, strict=True))[1]

    def get_n_servers(self, key: Any, n: int) -> list[str]:
        """The ``min(n, servers of weight > 0)`` highest-scoring servers, best first.

        The first is ``get_server(key)``; if it leaves, the key moves to the
        second, and so on.

        >>> Rendezvous(["a", "b"]).get_n_servers("k", 5) in (["a", "b"], ["b", "a"])
        True

        Complexity: O(n_servers log n) plus O(len(key)).

        Raises:
            TypeError: ``n`` is not an ``int``, or a bad key (as ``get_server``).
            ValueError: ``n`` < 1.
            NoServerAvailable: no server has a weight > 0.
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int >= 1, got {n!r}")
        if n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        snap = self._snap
        digest = self._key_digest(key)
        if not snap.names:
            raise self._unavailable()
        hashes = map(hash_bytes, repeat(digest), snap.seeds)
        if snap.weights is None:
            ranked = heapq.nlargest(
                n, zip(map(rshift, hashes, repeat(12)), snap.names, strict=True)
            )
        else:
            ranked = heapq.nlargest(n, zip(_scores(hashes, snap.weights), snap.names, strict=True))
        return [name for _, name in ranked]

    def _choose(self, key: Any) -> Member:
        # get_server takes no lock, so calling it under ours is safe.
        return self._members[self.get_server(key)]

    def _options(self) -> dict[str, object]:
        return {"seed": self._seed}

    def _check(self) -> None:
        super()._check()
        snap = self._snap
        live = sorted(s for s, m in self._members.items() if m.weight > 0)
        assert list(snap.names) == live, (snap.names, live)
        assert snap.seeds == tuple(hash_server(s, 0, self._seed) for s in live)
        if snap.weights is not None:
            assert snap.weights == tuple(self._members[s].weight for s in live)
        else:
            assert len({self._members[s].weight for s in live}) <= 1


def _scores(hashes: Any, weights: tuple[float, ...]) -> list[float]:
    """``-w / ln(u)`` per server, with ``u`` as :func:`~balancekit.hashing.unit_interval`."""
    log = math.log
    return [-w / log(((h >> 12) + 0.5) / _TWO_52) for h, w in zip(hashes, weights, strict=True)]
