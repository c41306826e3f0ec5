"""Jump consistent hash: no table, no ring, buckets numbered 0..n-1.

Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm" (2014).
A key's bucket is found by a pseudo-random walk that "jumps" forward through
bucket numbers; going from ``n`` to ``n + 1`` buckets moves exactly the keys
that now land in bucket ``n``, about ``1 / (n + 1)`` of them. Buckets are
numbers, so the servers are a list: bucket ``i`` is the ``i``-th server.
"""

from __future__ import annotations

from typing import Any

from ..clock import Clock
from ..hashing import hash_bytes, hash_key
from .base import Balancer, Member, Servers

__all__ = ["JumpHash", "jump_bucket"]

_MASK = (1 << 64) - 1
_MULTIPLIER = 2862933555777941757  # the 64-bit LCG step of the reference code
_TWO_31 = float(1 << 31)


def jump_bucket(key: int, buckets: int) -> int:
    """The bucket in ``[0, buckets)`` of a 64-bit ``key``, as the reference code computes it.

    >>> [jump_bucket(k, 100) for k in range(5)]
    [0, 55, 62, 8, 45]
    >>> jump_bucket(2, 100001)
    80343

    Complexity: O(log buckets) expected steps.

    Raises:
        ValueError: ``key`` outside [0, 2**64) or ``buckets`` < 1.
    """
    if not 0 <= key <= _MASK:
        raise ValueError(f"key must be an int in [0, 2**64), got {key!r}")
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets!r}")
    return _jump(key, buckets)


def _jump(key: int, buckets: int) -> int:
    # The reference computes the next candidate in double precision and
    # truncates it; Python floats are the same IEEE doubles, so it matches.
    bucket = -1
    candidate = 0
    while candidate < buckets:
        bucket = candidate
        key = (key * _MULTIPLIER + 1) & _MASK
        candidate = int((bucket + 1) * (_TWO_31 / ((key >> 33) + 1)))
    return bucket


class JumpHash(Balancer):
    """Jump consistent hashing over the servers of weight > 0, in insertion order.

    Bucket ``i`` is the ``i``-th server of weight > 0 in the order the servers
    were given and added. Order matters here, unlike in the other hash
    strategies, because jump hash maps keys to bucket *numbers*:

    - adding a server appends a bucket and moves only the keys that now land
      on it (about ``1 / n`` of them);
    - removing the *last* server moves only its keys;
    - removing any other server (or setting its weight to 0) renumbers every
      bucket after it, which moves most keys of those servers too. Remove and
      add servers at the end, or use :class:`~balancekit.strategies.maglev.Maglev`
      or :class:`~balancekit.strategies.rendezvous.Rendezvous` when servers
      leave from the middle.

    Jump hash is unweighted: any weight > 0 is one bucket, weight 0 takes the
    server out of the bucket list (renumbering, as a removal does).

    An ``int`` key in [0, 2**64) is the algorithm's 64-bit key unchanged, so
    results equal the reference implementation; other keys are hashed with
    XXH3-64 (seed 0) first. So ``42`` and ``"42"`` are different keys here.

    >>> lb = JumpHash([f"s{i}" for i in range(100)])
    >>> [lb.get_server(k) for k in range(4)]
    ['s0', 's55', 's62', 's8']

    Complexity: ``get_server`` and ``acquire`` O(log n) (plus O(len(key)));
    a membership or weight change O(n); memory O(n).

    Thread safety: ``get_server`` takes no lock; it reads the bucket tuple,
    which a change replaces with one assignment, never modifies.
    """

    requires_key = True

    def __init__(self, servers: Servers = (), *, clock: Clock | None = None) -> None:
        self._buckets: tuple[str, ...] = ()
        super().__init__(servers, clock=clock)

    @property
    def buckets(self) -> tuple[str, ...]:
        """The servers in bucket order (those of weight > 0). O(1)."""
        return self._buckets

    def _rebuild(self) -> None:
        self._buckets = tuple(m.server for m in self._members.values() if m.weight > 0)

    def get_server(self, key: Any = None) -> str:
        """The server for ``key``, without the lock.

        Complexity: O(log n) plus O(len(key)).

        Raises:
            TypeError: no key, or a key that is not ``str``, ``bytes`` or ``int``.
            NoServerAvailable: no server has a weight > 0.
        """
        buckets = self._buckets
        if type(key) is str:
            digest = hash_bytes(key.encode(), 0)
        elif type(key) is int and 0 <= key <= _MASK:
            digest = key
        else:
            digest = _hash_other(key)
        count = len(buckets)
        if not count:
            raise self._unavailable()
        # _jump inlined: the call costs a quarter of a lookup.
        bucket = -1
        candidate = 0
        while candidate < count:
            bucket = candidate
            digest = (digest * _MULTIPLIER + 1) & _MASK
            candidate = int((bucket + 1) * (_TWO_31 / ((digest >> 33) + 1)))
        return buckets[bucket]

    def _choose(self, key: Any) -> Member:
        # get_server takes no lock, so calling it under ours is safe.
        return self._members[self.get_server(key)]

    def _check(self) -> None:
        super()._check()
        live = [s for s, m in self._members.items() if m.weight > 0]
        assert list(self._buckets) == live, (self._buckets, live)


def _hash_other(key: object) -> int:
    if key is None:
        raise TypeError("JumpHash needs a key (str, bytes or int) for every pick, got None")
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= _MASK:
        return int(key)
    return hash_key(key, 0)
