"""Jump consistent hash: no table, no ring, buckets numbered 0..n-1.

Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm" (2014).
A key's bucket is found by a pseudo-random walk that "jumps" forward through
bucket numbers; going from ``n`` to ``n + 1`` buckets moves exactly the keys
that now land in bucket ``n``, about ``1 / (n + 1)`` of them. Buckets are
numbers, so the servers are a list: bucket ``i`` is the ``i``-th server.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set
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


class _Buckets:
    """One immutable view of the buckets: every member in order, and which are live."""

    __slots__ = ("alive", "live", "names")

    def __init__(self, members: list[Member]) -> None:
        self.names = tuple(m.server for m in members)
        self.alive = tuple(m.weight > 0 for m in members)
        self.live = tuple(m.server for m in members if m.weight > 0)

    def __repr__(self) -> str:
        return f"_Buckets({self.names!r}, live={self.live!r})"


class JumpHash(Balancer):
    """Jump consistent hashing: bucket ``i`` is the ``i``-th server, in insertion order.

    Order matters here, unlike in the other hash strategies, because jump hash
    maps keys to bucket *numbers* ``0..n-1``:

    - adding a server appends a bucket and moves only the keys that now land
      on it (about ``1 / n`` of them);
    - removing the *last* server moves only its keys;
    - removing any other server renumbers every bucket after it, which moves
      most keys of those servers too. Remove servers from the end only, or
      take one out with ``set_weight(server, 0)`` instead (below), or use
      :class:`~balancekit.strategies.maglev.Maglev` or
      :class:`~balancekit.strategies.rendezvous.Rendezvous`.

    Jump hash is unweighted: every weight > 0 counts the same. A server of
    weight 0 keeps its bucket, so nothing is renumbered; a key that lands on
    it is redirected: it is hashed again with seeds 1, 2, ... up to 32 and
    jumped over all buckets until it lands on a live one (else, in very thin
    pools, it jumps over the live servers only). Only that server's keys move,
    and they come back when its weight does: this is what a Pool's health
    checks and draining rely on.

    An ``int`` key in [0, 2**64) is the algorithm's 64-bit key unchanged, so
    results equal the reference implementation; other keys are hashed with
    XXH3-64 (seed 0) first. So ``42`` and ``"42"`` are different keys here.

    >>> lb = JumpHash([f"s{i}" for i in range(100)])
    >>> [lb.get_server(k) for k in range(4)]
    ['s0', 's55', 's62', 's8']

    Complexity: ``get_server`` and ``acquire`` O(log n) (plus O(len(key)));
    times ``n / live`` expected attempts when servers have weight 0; a
    membership change O(n), a weight change O(1) unless it crosses 0, then
    O(n); memory O(n).

    Thread safety: ``get_server`` takes no lock; it reads one bucket view,
    which a change replaces with one assignment, never modifies.
    """

    requires_key = True

    def __init__(self, servers: Servers = (), *, clock: Clock | None = None) -> None:
        self._view = _Buckets([])
        super().__init__(servers, clock=clock)

    @property
    def buckets(self) -> tuple[str, ...]:
        """Every server in bucket order, weight 0 included. O(1)."""
        return self._view.names

    def _rebuild(self) -> None:
        self._view = _Buckets(list(self._members.values()))

    def _reweighted(self, member: Member, old: float) -> None:
        if (old > 0) != (member.weight > 0):  # other weights change nothing here
            self._rebuild()

    def get_server(self, key: Any = None, exclude: Iterable[str] = ()) -> str:
        """The server for ``key``, without the lock.

        With ``exclude``, the excluded servers are skipped as servers of
        weight 0 are: the answer is where the key would go if they had
        weight 0 (the key's own bucket, else the first live one along the
        key's rehash chain).

        Complexity: O(log n) plus O(len(key)); see the class for weight 0.

        Raises:
            TypeError: no key, or a key that is not ``str``, ``bytes`` or ``int``;
                a bad ``exclude`` (see :meth:`Balancer.get_server`).
            NoServerAvailable: no server has a weight > 0.
        """
        if exclude:
            with self._lock:
                return self._pick(key, exclude).server
        view = self._view
        if type(key) is str:  # _digest inlined, as _jump below
            digest = hash_bytes(key.encode(), 0)
        elif type(key) is int and 0 <= key <= _MASK:
            digest = key
        else:
            digest = _hash_other(key)
        if not view.live:
            raise self._unavailable()
        count = len(view.names)
        # _jump inlined: the call would cost a quarter of a lookup.
        state = digest
        bucket = -1
        candidate = 0
        while candidate < count:
            bucket = candidate
            state = (state * _MULTIPLIER + 1) & _MASK
            candidate = int((bucket + 1) * (_TWO_31 / ((state >> 33) + 1)))
        if view.alive[bucket]:
            return view.names[bucket]
        return _redirect(view.names, view.alive, view.live, digest)

    def _choose(self, key: Any) -> Member:
        # get_server takes no lock, so calling it under ours is safe.
        return self._members[self.get_server(key)]

    def _choose_other(self, key: Any, exclude: Set[str]) -> Member | None:
        view = self._view
        digest = _digest(key)
        if all(server in exclude for server in view.live):
            return None
        names, alive = view.names, view.alive
        bucket = _jump(digest, len(names))
        if alive[bucket] and names[bucket] not in exclude:
            return self._members[names[bucket]]
        live = [server for server in view.live if server not in exclude]
        return self._members[_redirect(names, alive, live, digest, exclude)]

    def _check(self) -> None:
        super()._check()
        view = self._view
        assert list(view.names) == list(self._members), (view.names, list(self._members))
        assert view.alive == tuple(self._members[s].weight > 0 for s in view.names)
        assert view.live == tuple(s for s in view.names if self._members[s].weight > 0)


_REDIRECTS = 32


def _redirect(
    names: tuple[str, ...],
    alive: tuple[bool, ...],
    live: Sequence[str],
    digest: int,
    exclude: Set[str] = frozenset(),
) -> str:
    """Where a key whose bucket is dead goes: the first live bucket of a rehash chain.

    Dead: weight 0, or in ``exclude``; ``live`` lists the others in bucket order.
    """
    data = digest.to_bytes(8, "little")
    count = len(names)
    for attempt in range(1, _REDIRECTS + 1):
        digest = hash_bytes(data, attempt)
        bucket = _jump(digest, count)
        if alive[bucket] and names[bucket] not in exclude:
            return names[bucket]
    # Nearly every bucket is dead: give up on stability for a bounded cost.
    return live[_jump(digest, len(live))]


def _digest(key: object) -> int:
    """The 64-bit jump key of ``key``: an int in [0, 2**64) as is, else its XXH3-64."""
    if type(key) is str:
        return hash_bytes(key.encode(), 0)
    if type(key) is int and 0 <= key <= _MASK:
        return key
    return _hash_other(key)


def _hash_other(key: object) -> int:
    if key is None:
        raise TypeError("JumpHash needs a key (str, bytes or int) for every pick, got None")
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= _MASK:
        return int(key)
    return hash_key(key, 0)
