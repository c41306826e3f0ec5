"""ConsistentHash: a hash ring with virtual nodes, bucketed by the top bits of the hash.

A server of weight ``w`` owns ``round(vnodes * w)`` points (at least one when
``w > 0``, none at weight 0); point ``i`` of server ``s`` sits at
``hash_server(s, i, seed)``. A key goes to the owner of the first point
strictly clockwise of ``hash_key(key, seed)``, wrapping past ``2**64``.

Layout. The ``P`` points live in ``B = 2**bits`` buckets (``B`` a power of
two near ``P / 8``): bucket ``j`` holds the points whose top ``bits`` bits
are ``j``, as a tuple of sorted positions and a tuple of their owners
followed by one more owner, the *successor*: the owner of the first
point after the bucket. A lookup is one shift, one list index and a bisect
over a handful of positions, all in one small object; a bisect over one
long sorted list jumps across memory and is slower at large ``P``.

Large rings are compact: from ``2**18`` points on (1,639 servers of 160
points), a bucket holds about 32 positions in an ``array('Q')`` of 8-byte
words instead of a tuple of int objects (40 bytes a point), so 10,000
servers take about 30 MB, not 100 MB; a lookup then bisects more positions,
each read from the array as a new int, and costs about 1.5x.

Changes are local: a point enters or leaves one bucket, and only when it
was the bucket's first point do the successors of the buckets just before
it change (a short run, since few buckets are empty). When ``P / B`` leaves
[2, 32] the points are re-bucketed to about 8 per bucket: like a list's
growth, O(P) once ``P`` has grown or shrunk fourfold, O(1) amortised per point.

Collisions. Two servers may hash a point to the same position. Both points
are kept, ordered by server id; the smaller id wins the position and the
other takes over when the winner leaves. Ordering by id (not by arrival)
keeps placement independent of insertion order.
"""

from __future__ import annotations

import itertools
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Set
from functools import partial
from typing import Any, TypeAlias, cast

from ..clock import Clock
from ..errors import UnknownServer
from ..hashing import hash_bytes, hash_key, hash_server
from ..validate import check_seed
from ._compat import check_compat
from ._envoy import MAX_RING_SIZE, EnvoyRingPoints
from ._ketama import KetamaPoints
from .base import Balancer, Member, Servers, check_weight

__all__ = ["MAX_POINTS", "ConsistentHash"]

MAX_POINTS = 1 << 20
"""The most points one server may own (``vnodes * weight``), to keep a ring in memory."""

_LOAD, _COMPACT_LOAD = 8, 32  # points per bucket after a re-bucketing: B <= P / load
_COMPACT = 1 << 18  # from this many points on, buckets are compact (arrays, 32 points)
Positions: TypeAlias = "tuple[int, ...] | array[int]"  # array[int]: a string before 3.12
"""A bucket's sorted positions: a tuple, or an ``array('Q')`` in a compact ring."""
Bucket = tuple[Positions, tuple[str, ...]]
"""(sorted positions, their owners + the successor owner)."""


def _load_for(points: int) -> int:
    """The points per bucket a re-bucketing aims at for a ring of ``points`` points."""
    return _COMPACT_LOAD if points >= _COMPACT else _LOAD


def _bits_for(points: int) -> int:
    """log2 of the bucket count for ``points`` points: 2**bits <= points / load."""
    return max(0, (points // _load_for(points)).bit_length() - 1)


def _with(positions: Positions, k: int, position: int) -> Positions:
    """A new ``positions`` with ``position`` inserted at ``k`` (never changed in place)."""
    if type(positions) is tuple:
        return (*positions[:k], position, *positions[k:])
    grown = array("Q", positions)
    grown.insert(k, position)
    return grown


def _without(positions: Positions, k: int) -> Positions:
    """A new ``positions`` without its ``k``-th (never changed in place)."""
    if type(positions) is tuple:
        return (*positions[:k], *positions[k + 1 :])
    shrunk = array("Q", positions)
    del shrunk[k]
    return shrunk


def _bucketize(positions: list[int], owners: list[str], bits: int) -> list[Bucket]:
    """Split sorted points (at least one) into ``2**bits`` buckets. O(P)."""
    starts = range(0, 1 << 64, 1 << (64 - bits))
    bounds = list(map(partial(bisect_left, positions), starts))
    bounds.append(len(positions))
    los, his = bounds[:-1], bounds[1:]
    points: Positions = array("Q", positions) if len(positions) >= _COMPACT else tuple(positions)
    # A bucket's successor is the owner of the next point: with the first owner
    # appended for the wrap, every bucket is two slices. All loops run in C.
    ring = (*owners, owners[0])
    # A slice of a tuple is a tuple, of an array an array (typeshed knows neither).
    chunks = cast("Iterator[Positions]", map(points.__getitem__, map(slice, los, his)))
    owner_runs = map(ring.__getitem__, map(slice, los, map((1).__add__, his)))
    return list(zip(chunks, owner_runs, strict=True))


def _check_vnodes(vnodes: object) -> int:
    if isinstance(vnodes, bool) or not isinstance(vnodes, int):
        raise TypeError(f"vnodes must be an int in [1, {MAX_POINTS}], got {vnodes!r}")
    if not 1 <= vnodes <= MAX_POINTS:
        raise ValueError(f"vnodes must be an int in [1, {MAX_POINTS}], got {vnodes!r}")
    return vnodes


class ConsistentHash(Balancer):
    """A consistent hash ring with virtual nodes; ``get_n_servers`` gives replicas.

    >>> ring = ConsistentHash(["a", "b", "c"])
    >>> ring.get_server("user-42")
    'a'
    >>> ring.get_n_servers("user-42", 2)
    ['a', 'c']
    >>> ring.remove_server("a")             # a's keys move to their next server
    >>> ring.get_server("user-42")
    'c'

    Keys are ``str``, ``bytes`` or ``int`` (``42`` and ``"42"`` are one key).
    Placement depends only on the server ids, weights, ``vnodes`` and
    ``seed``: not on insertion order, the process or the machine.

    Complexity: ``get_server`` and ``acquire`` O(1) expected (a bisect over
    about 8 to 16 positions, plus O(len(key)) to hash); adding, removing or
    reweighting a server of ``v`` points O(v) expected, never a rebuild
    (except an O(P) re-bucketing once ``P`` has grown or shrunk fourfold,
    amortised O(1) per point); building O(P log P) for ``P`` points.

    Thread safety: ``get_server`` takes no lock. Each bucket is an immutable
    object replaced by one assignment, and a re-bucketing publishes a whole
    new table at once, so a concurrent lookup reads every bucket as it was
    before or after a change: while ``add_server`` or ``remove_server`` runs,
    a key may get its server from before the change (even the server being
    removed) or from after it, nothing else. ``acquire``, ``get_n_servers``
    and membership changes hold the lock.

    Raises:
        TypeError: ``vnodes`` or ``seed`` is not an ``int``.
        ValueError: ``vnodes`` outside [1, 2**20], ``seed`` outside
            [0, 2**64), or a weight that would give a server more than
            ``MAX_POINTS`` points (also from ``add_server`` and
            ``set_weight``, which then change nothing).

    Compatible mappings (``docs/compat.md``): ``compat="ketama"`` places
    points as libmemcached's weighted ketama does and ``compat="envoy"`` as
    Envoy's ring hash (sized by ``min_ring_size`` and ``max_ring_size``).
    There a key goes to the first point *at or after* its hash, a ``str``
    key is hashed as that system hashes one (MD5, XXH64) and an ``int`` key
    in [0, 2**64) is the request hash itself; ``vnodes`` and ``seed`` do not
    apply (``ValueError`` if given), and a change of membership or weight
    moves only the points whose count changed.
    """

    requires_key = True
    _incremental = True  # set_weights: a few servers move their own points

    def __init__(
        self,
        servers: Servers = (),
        *,
        vnodes: int = 160,
        seed: int = 0,
        compat: str | None = None,
        min_ring_size: int = 1024,
        max_ring_size: int = MAX_RING_SIZE,
        clock: Clock | None = None,
    ) -> None:
        self._vnodes = _check_vnodes(vnodes)
        self._seed = check_seed(seed)
        self._compat = _compat_points(compat, vnodes, seed, min_ring_size, max_ring_size)
        self._counts: dict[str, int] = {}  # points per server that has any
        self._points = 0
        self._table: list[Bucket] = [((), ())]
        self._shift = 64
        self._load = _LOAD
        self._index: tuple[list[Bucket], int] = (self._table, self._shift)
        super().__init__(servers, clock=clock)
        if self._compat is not None:
            # The default get_server is the hot path and stays free of a compat
            # test: a compat ring answers with its own lookup, set on the instance.
            self.get_server = self._compat.lookup(self)  # type: ignore[method-assign]

    @property
    def compat(self) -> str | None:
        """The system this ring agrees with (``"ketama"``, ``"envoy"``), or ``None``."""
        return None if self._compat is None else self._compat.name

    def positions(self, server: str) -> list[int]:
        """The positions of ``server``'s points, sorted: its continuum points. O(v log v).

        In the mapping's own hash space: 32-bit for ketama (as libmemcached's
        continuum holds them), 64-bit otherwise.

        >>> ring = ConsistentHash({"10.0.1.1:11211": 1}, compat="ketama")
        >>> points = ring.positions("10.0.1.1:11211")
        >>> len(points), points[0]
        (160, 17349376)

        Raises:
            UnknownServer: the server is not a member.
        """
        if server not in self._members:
            raise UnknownServer(server)
        found = self._place(server, 0, self._counts.get(server, 0))
        if self._compat is not None:
            found = list(map(self._compat.value, found))
        return sorted(found)

    @property
    def vnodes(self) -> int:
        """Points per unit of weight."""
        return self._vnodes

    @property
    def seed(self) -> int:
        """The hash seed for keys and points."""
        return self._seed

    def points(self, server: str) -> int:
        """How many points ``server`` owns on the ring. O(1).

        >>> ConsistentHash({"a": 1, "b": 0.5}, vnodes=10).points("b")
        5

        Raises:
            UnknownServer: the server is not a member.
        """
        if server not in self._members:
            raise UnknownServer(server)
        return self._counts.get(server, 0)

    # -- lookups ----------------------------------------------------------------

    def get_server(self, key: Any = None, exclude: Iterable[str] = ()) -> str:
        """The server owning the first point clockwise of ``key``; lock-free.

        With ``exclude``, the first server clockwise that is not excluded:
        the next one of ``get_n_servers(key, ...)``, which is where the key
        would go if the excluded servers left. That walk holds the lock.

        Complexity: O(1) expected plus O(len(key)); with ``exclude``, about
        ``(k + 1) * P / n`` points walked for ``k`` excluded servers met.

        Raises:
            NoServerAvailable: no server has a weight > 0.
            TypeError: no key, or a key that is not ``str``, ``bytes`` or ``int``;
                a bad ``exclude`` (see :meth:`Balancer.get_server`).
        """
        if exclude:
            with self._lock:
                return self._pick(key, exclude).server
        # The common case, a str, skips a call.
        h = hash_bytes(key.encode(), self._seed) if type(key) is str else self._hash(key)
        table, shift = self._index
        positions, owners = table[h >> shift]
        try:
            return owners[bisect_right(positions, h)]
        except IndexError:  # only the empty ring has a bucket without a successor
            raise self._unavailable() from None

    def get_n_servers(self, key: Any, n: int) -> list[str]:
        """The first ``min(n, servers with points)`` distinct servers clockwise of ``key``.

        The first is ``get_server(key)``; the second is where the key goes if
        the first is removed, and so on: use them as replicas.

        >>> ConsistentHash(["a", "b", "c"]).get_n_servers("user-42", 5)
        ['a', 'c', 'b']

        Complexity: O(points walked), about ``n * P / servers`` when equal
        weights; O(P) in the worst case.

        Raises:
            TypeError: ``n`` is not an ``int``, or a bad key (as ``get_server``).
            ValueError: ``n < 1``.
            NoServerAvailable: no server has a weight > 0.
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int >= 1, got {n!r}")
        if n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        h = self._hash(key)
        with self._lock:
            if not self._points:
                raise self._unavailable()
            want = min(n, len(self._counts))
            found: list[str] = []
            seen: set[str] = set()
            for server in self._walk(h):
                if server not in seen:
                    seen.add(server)
                    found.append(server)
                    if len(found) == want:
                        break
            return found

    def _hash(self, key: Any) -> int:
        if self._compat is not None:
            return self._compat.locate(key)
        if key is None:
            raise TypeError(f"{type(self).__name__} needs a key: a str, bytes or int")
        return hash_key(key, self._seed)

    def _owner(self, h: int) -> str:
        table, shift = self._index
        positions, owners = table[h >> shift]
        try:
            return owners[bisect_right(positions, h)]
        except IndexError:
            raise self._unavailable() from None

    def _choose(self, key: Any) -> Member:
        return self._members[self._owner(self._hash(key))]

    def _choose_other(self, key: Any, exclude: Set[str]) -> Member | None:
        h = self._hash(key)
        return self._members[server] if (server := self._next_owner(h, exclude)) else None

    def _next_owner(self, h: int, exclude: Set[str]) -> str | None:
        """The first owner clockwise of ``h`` outside ``exclude``; ``None`` if none."""
        total = len(self._counts)
        met: set[str] = set()
        for server in self._walk(h):
            if server not in exclude:
                return server
            met.add(server)
            if len(met) == total:
                break
        return None

    def _walk(self, h: int) -> Iterator[str]:
        """The owner of every point once, clockwise from position ``h``."""
        table, shift = self._index
        count = len(table)
        start = h >> shift
        positions, owners = table[start]
        first = bisect_right(positions, h)
        yield from owners[first : len(positions)]
        for step in range(1, count + 1):
            positions, owners = table[(start + step) % count]
            yield from owners[: len(positions) if step < count else first]

    # -- membership -------------------------------------------------------------

    def add_server(self, server: str, weight: float = 1) -> None:
        """Add a server: its ``round(vnodes * weight)`` points join the ring.

        Only keys that now land on its points move, all of them onto it.

        Complexity: O(v) expected for ``v`` new points.

        Raises:
            DuplicateServer: the server is already a member.
            TypeError, ValueError: a bad id or weight, or too many points; nothing changes.
        """
        self._point_count(check_weight(weight))
        super().add_server(server, weight)

    def set_weight(self, server: str, weight: float) -> None:
        """Change a server's weight: points ``i >= new count`` leave, or new ones join.

        Complexity: O(|new - old| points) expected.

        Raises:
            UnknownServer: the server is not a member.
            TypeError, ValueError: a bad weight or too many points; nothing changes.
        """
        self._point_count(check_weight(weight))
        super().set_weight(server, weight)

    def _admit(self, weights: Mapping[str, float]) -> None:
        for weight in weights.values():
            self._point_count(weight)

    def _point_count(self, weight: float) -> int:
        if weight <= 0 or self._compat is not None:  # a compat mapping counts all at once
            return 0
        exact = self._vnodes * weight
        if exact > MAX_POINTS:
            raise ValueError(
                f"weight {weight!r} x vnodes {self._vnodes} would give one server more than "
                f"{MAX_POINTS} points; use smaller weights or fewer vnodes"
            )
        return max(1, round(exact))

    def _expected_counts(self) -> dict[str, int]:
        """Points per server that has any, from the members' weights. O(n)."""
        if self._compat is not None:
            return self._compat.counts({s: m.weight for s, m in self._members.items()})
        counts = {}
        for server, member in self._members.items():
            count = self._point_count(member.weight)
            if count:
                counts[server] = count
        return counts

    def _place(self, server: str, start: int, stop: int) -> list[int]:
        """Positions of points ``start .. stop-1`` of ``server``. O(stop - start)."""
        if self._compat is not None:
            return self._compat.points(server, start, stop)
        seed = self._seed
        return [hash_server(server, i, seed) for i in range(start, stop)]

    def _rebuild(self) -> None:
        counts = self._expected_counts()
        self._counts = counts
        names = sorted(counts)
        # Sort (position, rank of the id) packed in one int: a shared position's
        # points end up in id order, as _insert places them.
        bits = max(1, (len(names) - 1).bit_length())
        packed: list[int] = []
        for rank, server in enumerate(names):
            packed.extend([p << bits | rank for p in self._place(server, 0, counts[server])])
        packed.sort()
        self._points = len(packed)
        owners = list(map(names.__getitem__, map(((1 << bits) - 1).__and__, packed)))
        self._publish(list(map(bits.__rrshift__, packed)), owners)

    def _publish(self, positions: list[int], owners: list[str]) -> None:
        """Bucket sorted points into a new table and swap it in with one assignment."""
        if positions:
            bits = _bits_for(len(positions))
            self._table = _bucketize(positions, owners, bits)
            self._shift = 64 - bits
        else:
            self._table = [((), ())]
            self._shift = 64
        self._load = _load_for(len(positions))
        self._index = (self._table, self._shift)

    def _added(self, member: Member) -> None:
        if self._compat is not None:
            self._recount()
            return
        self._resize(member.server, 0, self._point_count(member.weight))

    def _removed(self, member: Member) -> None:
        if self._compat is not None:
            self._recount()
            return
        self._resize(member.server, self._counts.get(member.server, 0), 0)

    def _reweighted(self, member: Member, old: float) -> None:
        if self._compat is not None:
            self._recount()
            return
        self._resize(
            member.server, self._counts.get(member.server, 0), self._point_count(member.weight)
        )

    def _recount(self) -> None:
        """Move only the points whose count changed, or rebuild if most did. O(changes).

        A compat mapping counts every server's points from all weights at once
        (a share of the total), so one change may resize several servers.
        """
        old = self._counts
        new = self._expected_counts()
        changed = {s for s in old.keys() | new.keys() if old.get(s, 0) != new.get(s, 0)}
        moves = sum(abs(old.get(s, 0) - new.get(s, 0)) for s in changed)
        if 2 * moves > self._points:
            self._rebuild()
            return
        for server in sorted(changed):
            self._resize(server, old.get(server, 0), new.get(server, 0))

    def _resize(self, server: str, old: int, new: int) -> None:
        """Give ``server`` points ``0 .. new-1`` instead of ``0 .. old-1``."""
        for position in self._place(server, old, new):
            self._insert(position, server)
        for position in self._place(server, new, old):
            self._delete(position, server)
        if new:
            self._counts[server] = new
        else:
            self._counts.pop(server, None)
        points = self._points
        buckets = len(self._table)
        load = self._load
        if points > 4 * load * buckets or (buckets > 1 and points < load // 4 * buckets):
            flat = list(itertools.chain.from_iterable(p for p, _ in self._table))
            owners = list(itertools.chain.from_iterable(o[: len(p)] for p, o in self._table))
            self._publish(flat, owners)

    def _insert(self, position: int, server: str) -> None:
        table = self._table
        if not self._points:  # the empty ring is one bucket without a successor
            table[0] = ((position,), (server, server))
            self._points = 1
            return
        j = position >> self._shift
        positions, owners = table[j]
        k = bisect_left(positions, position)
        while k < len(positions) and positions[k] == position and owners[k] < server:
            k += 1
        table[j] = (_with(positions, k, position), (*owners[:k], server, *owners[k:]))
        self._points += 1
        if k == 0:
            self._relink(j, server)

    def _delete(self, position: int, server: str) -> None:
        table = self._table
        if self._points == 1:
            self._points = 0
            self._publish([], [])
            return
        j = position >> self._shift
        positions, owners = table[j]
        k = bisect_left(positions, position)
        while owners[k] != server:  # collided points share a position
            k += 1
        rest = (*owners[:k], *owners[k + 1 :])
        table[j] = (_without(positions, k), rest)
        self._points -= 1
        if k == 0:
            self._relink(j, rest[0])  # the new first point, or the successor if none left

    def _relink(self, j: int, first: str) -> None:
        """Bucket ``j``'s first owner is now ``first``: fix the successors before it."""
        table = self._table
        count = len(table)
        for step in range(1, count + 1):
            i = (j - step) % count
            positions, owners = table[i]
            if positions:
                table[i] = (positions, (*owners[: len(positions)], first))
                return
            table[i] = (positions, (first,))

    # -- introspection ----------------------------------------------------------

    def _options(self) -> dict[str, object]:
        if isinstance(self._compat, EnvoyRingPoints):
            ring = self._compat
            return {"compat": "envoy", "min_ring_size": ring.min_ring_size,
                    "max_ring_size": ring.max_ring_size}  # fmt: skip
        if self._compat is not None:
            return {"compat": self._compat.name}
        return {"vnodes": self._vnodes, "seed": self._seed}

    def _check(self) -> None:
        """Assert the ring's invariants: buckets sorted, owners and counts match members."""
        super()._check()
        table, shift = self._index
        assert table is self._table and shift == self._shift
        count = len(table)
        assert count & (count - 1) == 0 and shift == 64 - (count.bit_length() - 1)
        expected = self._expected_counts()
        assert self._counts == expected, (self._counts, expected)
        want = sorted((p, s) for s, c in expected.items() for p in self._place(s, 0, c))
        have = [
            (p, o)
            for positions, owners in table
            for p, o in zip(positions, owners[:-1], strict=True)
        ]
        assert have == want, "ring points differ from the members' points"
        assert self._points == len(want)
        if not want:
            assert table == [((), ())]
            return
        # The layout (tuples, or compact arrays) is chosen at each re-bucketing.
        load = self._load
        assert count == 1 or load // 4 * count <= self._points <= 4 * load * count
        compact = load == _COMPACT_LOAD
        assert all(isinstance(p, array) == compact for p, _ in table)
        for j, (positions, owners) in enumerate(table):
            assert len(owners) == len(positions) + 1
            assert all(p >> shift == j for p in positions)
            # the successor is the owner of the first point after this bucket
            nxt = bisect_left(want, ((j + 1) << shift, ""))
            assert owners[-1] == want[nxt % len(want)][1], (j, owners[-1])


def _compat_points(
    compat: object, vnodes: int, seed: int, min_ring_size: int, max_ring_size: int
) -> KetamaPoints | EnvoyRingPoints | None:
    """The point placement of a ``compat`` mode, after checking its options. O(1)."""
    mode = check_compat(compat, ("ketama", "envoy"))
    if mode is not None and (vnodes != 160 or seed != 0):
        raise ValueError(f"vnodes and seed do not apply with compat={mode!r}")
    if mode == "envoy":
        return EnvoyRingPoints(min_ring_size, max_ring_size)
    if (min_ring_size, max_ring_size) != (1024, MAX_RING_SIZE):
        raise ValueError("min_ring_size and max_ring_size apply only with compat='envoy'")
    return None if mode is None else KetamaPoints()
