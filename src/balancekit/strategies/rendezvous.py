"""Rendezvous (highest random weight) hashing: every server bids for every key.

Thaler and Ravishankar, "Using name-based mappings to increase hit rates"
(1998). Each server scores each key with a hash of the pair; the highest score
wins. Removing a server moves only its keys, each to the server that scored
second; adding one moves only the keys it now outbids everyone for. Weights
use the logarithmic method (Schindelhauer and Schomaker, 2005): with ``u`` the
pair hash mapped into (0, 1), the score ``-w / ln(u)`` makes a server win a
share of keys proportional to its weight ``w``.

The pair hash: per server, the key's bytes are hashed with XXH3-64 seeded by
that server's own precomputed 64-bit hash (``hash_server(id, 0, seed)``).
A seeded XXH3 is a well-mixed 64-bit function of (key, server), and looping
the C hash over the servers with ``map`` costs far less in CPython than
hashing the key once and mixing in Python. Scores tie with probability about
2**-50; a tie goes to the larger pair hash, then to the smaller server id.
"""

from __future__ import annotations

import heapq
import math
from itertools import repeat
from typing import Any

from ..clock import Clock
from ..hashing import hash_bytes, hash_server, key_bytes
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

    @staticmethod
    def _key_bytes(key: object) -> bytes:
        if key is None:
            raise TypeError("Rendezvous needs a key (str, bytes or int) for every pick, got None")
        return key_bytes(key)

    def get_server(self, key: Any = None) -> str:
        """The server with the highest score for ``key``, without the lock.

        Complexity: O(n) plus O(len(key)).

        Raises:
            TypeError: no key, or a key that is not ``str``, ``bytes`` or ``int``.
            NoServerAvailable: no server has a weight > 0.
        """
        snap = self._snap
        data = key.encode() if type(key) is str else self._key_bytes(key)
        names = snap.names
        if not names:
            raise self._unavailable()
        hashes = list(map(hash_bytes, repeat(data), snap.seeds))
        if snap.weights is None:
            # Equal weights: -w / ln(u) grows with u, and u with the hash, so
            # the largest hash wins (index() takes the smallest id on a tie).
            return names[hashes.index(max(hashes))]
        scores = _scores(hashes, snap.weights)
        best = max(scores)
        if scores.count(best) == 1:
            return names[scores.index(best)]
        return names[_ranked(scores, hashes, 1)[0]]

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
        data = self._key_bytes(key)
        if not snap.names:
            raise self._unavailable()
        hashes = list(map(hash_bytes, repeat(data), snap.seeds))
        scores = hashes if snap.weights is None else _scores(hashes, snap.weights)
        return [snap.names[i] for i in _ranked(scores, hashes, n)]

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


def _scores(hashes: list[int], weights: tuple[float, ...]) -> list[float]:
    """``-w / ln(u)`` per server, with ``u`` as :func:`~balancekit.hashing.unit_interval`."""
    log = math.log
    return [-w / log(((h >> 12) + 0.5) / _TWO_52) for h, w in zip(hashes, weights, strict=True)]


def _ranked(scores: list[float] | list[int], hashes: list[int], n: int) -> list[int]:
    """Indices of the ``n`` best: highest score, then highest hash, then lowest index."""
    best = heapq.nlargest(n, zip(scores, hashes, range(0, -len(hashes), -1), strict=True))
    return [-negated for _, _, negated in best]
