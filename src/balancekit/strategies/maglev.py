"""Maglev hashing: a prime-sized lookup table filled from per-server permutations.

Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer"
(NSDI 2016). Every server owns a permutation of the ``M`` table slots, given by
an ``(offset, skip)`` pair: slot ``(offset + j * skip) mod M`` is its ``j``-th
preference (``M`` prime, so every skip in ``[1, M)`` visits every slot). The
servers take turns claiming their next preferred slot that is still free until
the table is full; a key goes to ``table[h(key) mod M]``, h its xxhash.

:func:`populate` is that fill, a pure function over explicit ``(offset, skip)``
pairs so the paper's worked example can be checked directly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any

from ..clock import Clock
from ..hashing import hash_bytes, hash_key, hash_server
from ..validate import check_int, check_seed
from ._compat import check_compat, request_hash
from ._envoy import envoy_hash, maglev_owners, normalised
from .base import Balancer, Member, Servers

__all__ = ["MAX_TABLE_SIZE", "MIN_SLOTS_PER_SERVER", "Maglev", "is_prime", "populate"]

MAX_TABLE_SIZE = 5_000_011
"""The largest table (Envoy's limit too): 40 MB of slots, enough for 50,000 servers."""

MIN_SLOTS_PER_SERVER = 10
"""``Maglev`` refuses a table with fewer entries than this per server of weight > 0.

Below it, equal servers' shares differ by more than 10 % and a removal
reshuffles many entries of the servers that stayed; the paper recommends 100."""


def is_prime(n: int) -> bool:
    """Whether ``n`` is prime (deterministic Miller-Rabin, exact below 3.3e24).

    >>> [p for p in range(20) if is_prime(p)]
    [2, 3, 5, 7, 11, 13, 17, 19]
    >>> is_prime(65537), is_prime(65536)
    (True, False)

    Complexity: O(log(n)^3) bit operations.
    """
    if n < 2:
        return False
    bases = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
    for p in bases:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for a in bases:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime_at_least(n: int) -> int:
    """The smallest prime >= ``n``. O(g sqrt(n)) for a prime gap g."""
    while not is_prime(n):
        n += 1
    return n


def populate(
    preferences: Sequence[tuple[int, int]],
    table_size: int,
    weights: Sequence[float] | None = None,
) -> list[int]:
    """Fill a Maglev lookup table; entry ``j`` is the index of the backend owning slot ``j``.

    ``preferences[i]`` is backend ``i``'s ``(offset, skip)``. Backends take
    turns in index order, each claiming the next free slot of its permutation.

    With ``weights``, every backend takes a first turn at time 0, then its
    ``k``-th turn (``k >= 1``) at time ``(k + 0.5) * max(weights) / weights[i]``
    (ties in index order): the heaviest backends move once per round, one of
    half that weight every other round. A backend whose fair share is ``x``
    entries gets ``max(1, round(x))`` of them, give or take the one turn cut
    off when the table fills (Webster's apportionment, with every backend
    guaranteed an entry). Equal weights are exactly the paper's round robin,
    so entry counts differ by at most 1.

    >>> populate([(3, 4), (0, 2), (3, 1)], 7)
    [1, 0, 1, 0, 2, 2, 0]
    >>> populate([(3, 4), (3, 1)], 7)
    [0, 0, 0, 0, 1, 1, 1]
    >>> populate([(0, 1), (1, 1)], 7, weights=[1, 2]).count(1)
    5

    Complexity: O(M log M) expected probes (plus O(M log n) heap steps when
    weights differ), for ``n`` backends and table size ``M``: about 9 probes
    per slot at M = 65,537 and n = 1,000, 12 at M = 1,000,003 and n = 10,000.
    docs/strategies/maglev.md gives the measured rebuild times.

    Raises:
        ValueError: ``table_size`` not prime, more backends than slots, an
            offset or skip out of range, or weights not positive and finite
            or not one per backend.
    """
    size = table_size
    if not is_prime(size):
        raise ValueError(f"table_size must be a prime number, got {size!r}")
    count = len(preferences)
    if count > size:
        raise ValueError(f"{count} backends cannot share a table of {size} slots")
    for offset, skip in preferences:
        if not (0 <= offset < size and 1 <= skip < size):
            raise ValueError(
                f"(offset, skip) must be in [0, {size}) x [1, {size}), got {(offset, skip)}"
            )
    if weights is not None:
        if len(weights) != count:
            raise ValueError(
                f"weights must give one weight per backend, got {len(weights)} for {count}"
            )
        for weight in weights:
            if not (math.isfinite(weight) and weight > 0):
                raise ValueError(f"weights must be finite numbers > 0, got {weight!r}")
        if len(set(weights)) == 1:
            weights = None
    if not count:
        return []
    owner = [0] * size
    # The probes read a byte per slot, not the owner list: at a million slots
    # the list's int objects are scattered and every probe would miss the cache.
    taken = bytearray(size)
    nexts = [offset for offset, _ in preferences]
    skips = [skip for _, skip in preferences]
    turns = _round_robin(count, size) if weights is None else _weighted_turns(weights, size)
    for i in turns:
        # Walk this backend's permutation past the slots others already hold.
        slot = nexts[i]
        skip = skips[i]
        while taken[slot]:
            slot += skip
            if slot >= size:
                slot -= size
        taken[slot] = 1
        owner[slot] = i
        slot += skip
        nexts[i] = slot - size if slot >= size else slot
    return owner


def _round_robin(count: int, size: int) -> list[int]:
    """The backend of each of the ``size`` turns of an unweighted fill."""
    rounds, rest = divmod(size, count)
    return list(range(count)) * rounds + list(range(rest))


def _weighted_turns(weights: Sequence[float], size: int) -> list[int]:
    """The backend of each of the ``size`` turns of a weighted fill (see :func:`populate`).

    Backend ``i``'s turns come at times 0 and ``(k + 0.5) * step[i]`` for
    ``k >= 1``; the fill takes the first ``size`` of all of them in (time,
    index) order. Rather than merge them one turn at a time through a heap,
    every turn up to a time that surely comes after the last one taken is
    listed and sorted, in C. O(M log M).
    """
    heaviest = max(weights)
    steps = [heaviest / weight for weight in weights]
    # By time T every backend has had at least T / step - 0.5 turns, so by
    # T = (size + n) * heaviest / sum(weights) more than size turns are due.
    horizon = (size + len(weights)) * heaviest / math.fsum(weights)
    due: list[tuple[float, int]] = [(0.0, i) for i in range(len(weights))]
    for i, step in enumerate(steps):
        # Each time from its turn number, not accumulated: no drift over many turns.
        last = min(size, math.ceil(horizon / step) + 1)
        due += zip([(k + 0.5) * step for k in range(1, last + 1)], itertools.repeat(i))
    due.sort()
    return [i for _, i in due[:size]]


class Maglev(Balancer):
    """Maglev consistent hashing: O(1) lookups in a prime-sized table.

    Each server of weight > 0 owns a share of the ``table_size`` entries
    proportional to its weight (equal weights: counts differ by at most one);
    a key's server is ``table[hash(key) % table_size]``. Servers are filled
    in sorted id order, so placement does not depend on insertion order.
    A membership change rebuilds the table, and most entries keep their
    server: few keys move.

    >>> lb = Maglev(["a", "b", "c"], table_size=101)
    >>> lb.get_server("user-42") == lb.get_server("user-42")
    True
    >>> lb.table_size, lb.seed
    (101, 0)

    ``table_size`` should be much larger than the number of servers ``n``:
    the paper recommends ``M >= 100 * n``, and ``M >= MIN_SLOTS_PER_SERVER * n``
    (10 entries per server of weight > 0) is enforced.

    Complexity: ``get_server`` and ``acquire`` O(1) (plus O(len(key)) to
    hash the key); a membership or weight change O(M log M).

    Thread safety: ``get_server`` takes no lock; it reads the current table,
    which is never modified once built: a rebuild builds a new table and swaps
    it in with one assignment, so a concurrent reader sees the old or the new
    table, never a mix. ``acquire`` and membership changes use the lock.

    Raises:
        ValueError: ``table_size`` is not prime, or it has fewer than
            ``MIN_SLOTS_PER_SERVER`` entries per server of weight > 0 (also
            from ``add_server`` and ``set_weight``, which then change
            nothing); ``seed`` outside [0, 2**64).
        TypeError: ``table_size`` or ``seed`` is not an ``int``.

    ``compat="envoy"`` builds Envoy's Maglev table instead (``docs/compat.md``):
    Envoy's offsets, skips and weighted fill, with no minimum of entries per
    server; a ``str`` key is hashed with XXH64 as Envoy hashes a header, an
    ``int`` key in [0, 2**64) is the request hash itself, and ``seed`` does
    not apply.
    """

    requires_key = True

    def __init__(
        self,
        servers: Servers = (),
        *,
        table_size: int = 65537,
        seed: int = 0,
        compat: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        # Envoy's limit: a larger table costs memory (8 bytes a slot) for no gain.
        check_int("table_size", table_size, 2, MAX_TABLE_SIZE)
        if not is_prime(table_size):
            raise ValueError(f"table_size must be a prime number, got {table_size!r}")
        self._size = table_size
        self._seed = check_seed(seed)
        self._compat = check_compat(compat, ("envoy",))
        if self._compat is not None and seed != 0:
            raise ValueError("seed does not apply with compat='envoy'")
        self._table: list[str] = []
        self._live: frozenset[str] = frozenset()
        super().__init__(servers, clock=clock)
        if self._compat is not None:
            # The default get_server is the hot path and stays free of a compat
            # test: an Envoy table answers with its own lookup, set on the instance.
            self.get_server = self._get_envoy  # type: ignore[method-assign]

    @property
    def compat(self) -> str | None:
        """The system this table agrees with (``"envoy"``), or ``None``."""
        return self._compat

    def _get_envoy(self, key: Any = None, exclude: Iterable[str] = ()) -> str:
        """``get_server`` with ``compat="envoy"``: ``table[h % table_size]``, h Envoy's hash."""
        if exclude:
            with self._lock:
                return self._pick(key, exclude).server
        table = self._table
        h = envoy_hash(key.encode()) if type(key) is str else request_hash(key, envoy_hash)
        if table:
            return table[h % self._size]
        raise self._unavailable()

    @property
    def table_size(self) -> int:
        """The number of table entries ``M`` (a prime)."""
        return self._size

    @property
    def seed(self) -> int:
        """The hash seed for keys and server permutations."""
        return self._seed

    def _rebuild(self) -> None:
        if self._compat is not None:
            hosts = normalised({s: m.weight for s, m in self._members.items()})
            names = [server for server, _ in hosts]
            owners = maglev_owners(names, [weight for _, weight in hosts], self._size)
            self._table = [names[i] for i in owners]
            self._live = frozenset(names)
            return
        live = sorted((m.server, m.weight) for m in self._members.values() if m.weight > 0)
        size = self._size
        self._check_room(len(live))
        names = [server for server, _ in live]
        preferences = [
            (
                hash_server(name, 0, self._seed) % size,
                hash_server(name, 1, self._seed) % (size - 1) + 1,
            )
            for name in names
        ]
        owners = populate(preferences, size, [weight for _, weight in live])
        # One assignment publishes the new table to lock-free readers.
        self._table = list(map(names.__getitem__, owners))
        self._live = frozenset(names)

    def _check_room(self, live: int) -> None:
        size = self._size
        if self._compat is None and live * MIN_SLOTS_PER_SERVER > size:
            raise ValueError(
                f"table_size {size} is too small for {live} servers of weight > 0: "
                f"Maglev needs at least {MIN_SLOTS_PER_SERVER} entries per server and the "
                f"paper recommends 100; use a prime such as {_prime_at_least(100 * live)}"
            )

    def _admit(self, weights: Mapping[str, float]) -> None:
        self._check_room(sum(1 for weight in weights.values() if weight > 0))

    def _reweighted(self, member: Member, old: float) -> None:
        try:
            self._rebuild()
        except ValueError:
            member.weight = old  # the base class has already stored the new weight
            raise

    def get_server(self, key: Any = None, exclude: Iterable[str] = ()) -> str:
        """The server for ``key``: ``table[hash(key) % table_size]``, without the lock.

        With ``exclude``, the owner of the first entry from there on
        (``+1, +2, ...``, wrapping) that is not excluded. Entries are dealt
        out in turns, so the next entry's owner is spread over the other
        servers about in proportion to their weights; the order is a fixed
        one per key and independent of insertion order. Unlike the ring's,
        it is not where the key would go if the excluded servers left (that
        rebuilds the table).

        Complexity: O(1) plus O(len(key)); with ``exclude``, about
        ``n / (n - k)`` entries read for ``k`` of ``n`` equal servers excluded.

        Raises:
            TypeError: no key, or a key that is not ``str``, ``bytes`` or ``int``;
                a bad ``exclude`` (see :meth:`Balancer.get_server`).
            NoServerAvailable: no server has a weight > 0.
        """
        if exclude:
            with self._lock:
                return self._pick(key, exclude).server
        table = self._table
        digest = hash_bytes(key.encode(), self._seed) if type(key) is str else self._hash_other(key)
        if table:
            return table[digest % self._size]
        raise self._unavailable()

    def _hash_other(self, key: object) -> int:
        if key is None:
            raise TypeError("Maglev needs a key (str, bytes or int) for every pick, got None")
        return hash_key(key, self._seed)

    def _choose(self, key: Any) -> Member:
        # get_server takes no lock, so calling it under ours is safe.
        return self._members[self.get_server(key)]

    def _choose_other(self, key: Any, exclude: Set[str]) -> Member | None:
        table = self._table
        if self._compat is not None:  # start where the Envoy lookup would answer
            digest = envoy_hash(key.encode()) if type(key) is str else request_hash(key, envoy_hash)
        elif type(key) is str:
            digest = hash_bytes(key.encode(), self._seed)
        else:
            digest = self._hash_other(key)
        if self._live <= exclude:
            return None
        size = self._size
        slot = digest % size
        # Ends: a server not excluded owns at least one entry.
        while table[slot] in exclude:
            slot = slot + 1 if slot + 1 < size else 0
        return self._members[table[slot]]

    def _options(self) -> dict[str, object]:
        if self._compat is not None:
            return {"table_size": self._size, "compat": self._compat}
        return {"table_size": self._size, "seed": self._seed}

    def _check(self) -> None:
        super()._check()
        table = self._table
        live = {s: m.weight for s, m in self._members.items() if m.weight > 0}
        assert len(table) == (self._size if live else 0), (len(table), self._size)
        counts: dict[str, int] = {}
        for server in table:
            counts[server] = counts.get(server, 0) + 1
        if len(live) <= self._size:  # only an Envoy table may hold more servers than slots
            assert set(counts) == set(live), (sorted(counts), sorted(live))
        assert sum(counts.values()) == len(table)
        if live and len(set(live.values())) == 1:
            assert max(counts.values()) - min(counts.values()) <= 1, counts
