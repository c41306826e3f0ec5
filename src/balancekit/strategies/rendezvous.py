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

Among servers of equal weight the score grows with the pair hash, so only the
largest hash of each weight class needs a logarithm: a pick costs one C hash
call per server plus one logarithm per distinct weight.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Set
from itertools import repeat
from typing import Any

from ..clock import Clock
from ..hashing import hash_bytes, hash_server, key_bytes
from ..validate import check_seed
from .base import Balancer, Member, Servers

__all__ = ["Rendezvous"]

_TWO_52 = float(1 << 52)


class _Snapshot:
    """The servers of weight > 0 grouped by weight, each group sorted by id.

    ``classes`` holds ``(start, end, -weight)``: ``names[start:end]`` share
    that weight, so their pair hashes form one slice of the hash list.
    """

    __slots__ = ("classes", "names", "seeds")

    def __init__(self, live: list[tuple[str, float]], seed: int) -> None:
        ordered = sorted(live, key=lambda pair: (pair[1], pair[0]))
        self.names = tuple(server for server, _ in ordered)
        self.seeds = tuple(hash_server(server, 0, seed) for server in self.names)
        classes: list[tuple[int, int, float]] = []
        for i, (_, weight) in enumerate(ordered):
            if classes and classes[-1][2] == -weight:
                classes[-1] = (classes[-1][0], i + 1, -weight)
            else:
                classes.append((i, i + 1, -weight))
        self.classes = tuple(classes)

    def __repr__(self) -> str:
        weights = {n: -w for s, e, w in self.classes for n in self.names[s:e]}
        return f"_Snapshot({weights!r})"


def _score(pair_hash: int, negative_weight: float) -> float:
    """``-w / ln(u)`` with ``u`` as :func:`~balancekit.hashing.unit_interval`."""
    return negative_weight / math.log(((pair_hash >> 12) + 0.5) / _TWO_52)


def _ranked(snap: _Snapshot, data: bytes, n: int) -> list[str]:
    """The ``min(n, servers)`` highest-scoring servers of ``snap`` for key bytes ``data``."""
    hashes = list(map(hash_bytes, repeat(data), snap.seeds))
    # The n best of each weight class (by hash, then smaller id) hold the n best overall.
    candidates = []
    for start, end, negative_weight in snap.classes:
        top = heapq.nlargest(n, zip(hashes[start:end], range(-start, -end, -1), strict=True))
        candidates += [(_score(h, negative_weight), h, -i) for h, i in top]
    candidates.sort(key=lambda c: (-c[0], -c[1], snap.names[c[2]]))
    return [snap.names[i] for _, _, i in candidates[:n]]


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
    hashed; one logarithm per distinct weight), which suits pools of up to a
    few hundred servers; ``get_n_servers`` O(n log k) for ``k`` replicas; a
    membership or weight change O(n log n).

    Thread safety: ``get_server`` and ``get_n_servers`` take no lock; they read
    one snapshot object, which a change replaces with one assignment.

    Raises:
        TypeError, ValueError: ``seed`` is not an int in [0, 2**64).
    """

    requires_key = True

    def __init__(self, servers: Servers = (), *, seed: int = 0, clock: Clock | None = None) -> None:
        self._seed = check_seed(seed)
        self._snap = _Snapshot([], seed)
        super().__init__(servers, clock=clock)

    @property
    def seed(self) -> int:
        """The seed of the server hashes, which in turn seed each key's hash."""
        return self._seed

    def _rebuild(self) -> None:
        live = [(m.server, m.weight) for m in self._members.values() if m.weight > 0]
        self._snap = _Snapshot(live, self._seed)

    @staticmethod
    def _key_bytes(key: object) -> bytes:
        if key is None:
            raise TypeError("Rendezvous needs a key (str, bytes or int) for every pick, got None")
        return key_bytes(key)

    def get_server(self, key: Any = None, exclude: Iterable[str] = ()) -> str:
        """The server with the highest score for ``key``, without the lock.

        With ``exclude``, the highest-scoring server not excluded: the next
        one of ``get_n_servers(key, ...)``, which is where the key would go
        if the excluded servers left.

        Complexity: O(n) plus O(len(key)); O(n log k) with ``k`` excluded.

        Raises:
            TypeError: no key, or a key that is not ``str``, ``bytes`` or ``int``;
                a bad ``exclude`` (see :meth:`Balancer.get_server`).
            NoServerAvailable: no server has a weight > 0.
        """
        if exclude:
            with self._lock:
                return self._pick(key, exclude).server
        snap = self._snap
        data = key.encode() if type(key) is str else self._key_bytes(key)
        names = snap.names
        if not names:
            raise self._unavailable()
        hashes = list(map(hash_bytes, repeat(data), snap.seeds))
        if len(snap.classes) == 1:
            # One weight: the largest hash wins; index() takes the smaller id on a tie.
            return names[hashes.index(max(hashes))]
        best_score, best_hash, best_name = -math.inf, -1, ""
        for start, end, negative_weight in snap.classes:
            part = hashes[start:end]
            top = max(part)
            name = names[start + part.index(top)]
            score = _score(top, negative_weight)
            if (score, top) > (best_score, best_hash) or (
                (score, top) == (best_score, best_hash) and name < best_name
            ):
                best_score, best_hash, best_name = score, top, name
        return best_name

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
        return _ranked(snap, data, n)

    def _choose_other(self, key: Any, exclude: Set[str]) -> Member | None:
        snap = self._snap
        data = self._key_bytes(key)
        met = sum(1 for server in snap.names if server in exclude)
        if met == len(snap.names):
            return None
        # Of the met + 1 best, at least one is not excluded.
        ranked = _ranked(snap, data, met + 1)
        return next(self._members[s] for s in ranked if s not in exclude)

    def _choose(self, key: Any) -> Member:
        # get_server takes no lock, so calling it under ours is safe.
        return self._members[self.get_server(key)]

    def _options(self) -> dict[str, object]:
        return {"seed": self._seed}

    def _check(self) -> None:
        super()._check()
        snap = self._snap
        live = {s: m.weight for s, m in self._members.items() if m.weight > 0}
        assert sorted(snap.names) == sorted(live), (snap.names, live)
        assert snap.seeds == tuple(hash_server(s, 0, self._seed) for s in snap.names)
        position = 0
        for start, end, negative_weight in snap.classes:
            assert start == position < end, snap.classes
            group = snap.names[start:end]
            assert list(group) == sorted(group), group
            assert all(live[s] == -negative_weight for s in group), (group, live)
            position = end
        assert position == len(snap.names)
        assert len({w for _, _, w in snap.classes}) == len(snap.classes)
