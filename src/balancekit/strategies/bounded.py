"""BoundedLoadHash: consistent hashing with bounded loads.

Mirrokni, Thorup and Zadimoghaddam, "Consistent Hashing with Bounded Loads"
(SODA 2018). Each server has a capacity that grows with the number of
requests in flight; a key goes to its ring server unless that server is
full, and then on clockwise to the first distinct server with room. Keys
keep their affinity while the load is even, and a hot key spills over to
its next servers instead of melting its first one.

With ``m`` leases in flight counting the one being placed, server ``i`` of
weight ``w_i`` may hold ``ceil(c * m * w_i / W)`` of them, where ``c`` is the
balance factor and ``W`` the total weight of the servers of weight > 0.
Since ``c >= 1`` these capacities add up to at least ``m``, so some server
always has room.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Set
from typing import Any

from ..clock import Clock
from ..errors import UnknownServer
from ..hashing import hash_bytes
from ..validate import check_range
from .base import Member, Servers
from .ring import ConsistentHash

__all__ = ["MAX_BALANCE_FACTOR", "BoundedLoadHash"]


MAX_BALANCE_FACTOR = 1e6
"""A larger factor bounds nothing (no server holds a million times its share) and,
near the float limit, overflows the capacity arithmetic of every pick."""


def _check_factor(value: object) -> float:
    return check_range("balance_factor", value, 1.0, MAX_BALANCE_FACTOR)


class BoundedLoadHash(ConsistentHash):
    """Consistent hashing where no server holds more than ``balance_factor`` x its share.

    >>> lb = BoundedLoadHash(["a", "b", "c", "d"], balance_factor=1.25)
    >>> lb.get_server("hot") == ConsistentHash(["a", "b", "c", "d"]).get_server("hot")
    True
    >>> leases = [lb.acquire("hot") for _ in range(8)]   # one hot key spills over
    >>> sorted(lb.in_flight(s) for s in "abcd")
    [0, 2, 3, 3]
    >>> lb.capacity("a")                          # ceil(1.25 * 9 * 1 / 4)
    3

    ``balance_factor`` ``c`` trades affinity for balance. ``c = 1`` gives
    perfectly even caps, every server at most ``ceil(m * w_i / W)``:
    maximal balance, but keys move off their server as soon as it is one
    request ahead. A large ``c`` behaves like the plain ring. The paper
    bounds the keys moved by a membership change as ``c = 1 + eps`` shrinks
    (about ``1 / eps**2`` per change); 1.25 is a middle ground.

    Loads come from leases: ``acquire`` checks the caps and counts,
    ``release`` uncounts. ``get_server`` counts nothing and answers where
    ``acquire`` would place the key now, so when nothing is in flight it
    maps every key exactly like :class:`ConsistentHash` with the same
    ``vnodes`` and ``seed``. Caps are checked only when a lease is placed:
    after releases lower ``m``, a server may hold more than the new cap
    until its leases finish; with no releases every server stays within
    its cap after every acquire. ``get_n_servers`` is the ring's, ignoring load.

    Complexity: ``get_server`` and ``acquire`` O(1) expected when the key's
    server has room, plus O(points walked) past full servers (at most O(P));
    membership changes as the ring plus O(n) to total the weights.

    Thread safety: every method holds the balancer's lock (lookups read loads).

    Raises:
        TypeError: ``balance_factor`` is not a number (``bool`` excluded), or
            as :class:`ConsistentHash`.
        ValueError: ``balance_factor`` is below 1 or not finite, or as
            :class:`ConsistentHash`.
    """

    def __init__(
        self,
        servers: Servers = (),
        *,
        balance_factor: float = 1.25,
        vnodes: int = 160,
        seed: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self._factor = _check_factor(balance_factor)
        self._in_flight_total = 0  # leases open on current members
        self._total_weight = 0.0  # of the members of weight > 0
        super().__init__(servers, vnodes=vnodes, seed=seed, clock=clock)

    @property
    def balance_factor(self) -> float:
        """``c``: a server may hold up to ``c`` times its weighted share of the leases."""
        return self._factor

    def capacity(self, server: str) -> int:
        """How many leases ``server`` may hold once the next lease is placed.

        That is ``ceil(c * (in flight + 1) * w / W)``; 0 for weight 0. O(1).

        Raises:
            UnknownServer: the server is not a member.
        """
        with self._lock:
            member = self._members.get(server)
            if member is None:
                raise UnknownServer(server)
            return self._cap(member.weight, self._in_flight_total + 1)

    def get_server(self, key: Any = None, exclude: Iterable[str] = ()) -> str:
        """Where ``acquire(key, exclude=exclude)`` would place the key now, without counting it.

        With ``exclude``, the first server clockwise that is neither
        excluded nor full (when nothing is in flight: the next of
        ``get_n_servers``); if every one not excluded is full, the least
        loaded of them.

        Complexity: O(1) expected while the key's server has room.

        Raises:
            NoServerAvailable: no server has a weight > 0.
            TypeError: no key, or a key that is not ``str``, ``bytes`` or ``int``;
                a bad ``exclude`` (see :meth:`Balancer.get_server`).
        """
        with self._lock:
            return (self._pick(key, exclude) if exclude else self._choose(key)).server

    def _cap(self, weight: float, m: int) -> int:
        if weight <= 0:
            return 0
        return math.ceil(self._factor * m * weight / self._total_weight)

    def _choose(self, key: Any) -> Member:
        h = hash_bytes(key.encode(), self._seed) if type(key) is str else self._hash(key)
        members = self._members
        owner = members[self._owner(h)]  # raises NoServerAvailable on an empty ring
        # An idle server always has room: its cap is at least 1.
        if not owner.in_flight:
            return owner
        m = self._in_flight_total + 1
        if owner.in_flight < self._cap(owner.weight, m):
            return owner
        return self._spill(h, frozenset(), m) or owner

    def _spill(self, h: int, exclude: Set[str], m: int) -> Member | None:
        """The first server clockwise of ``h`` outside ``exclude`` with room for
        lease number ``m``, else the least loaded of them; ``None`` if all are
        excluded. O(points walked)."""
        members = self._members
        seen: set[str] = set()
        # Only float rounding could fill every server; then take the least loaded.
        fallback: Member | None = None
        for server in self._walk(h):
            if server in seen:
                continue
            seen.add(server)
            if server not in exclude:
                member = members[server]
                if not member.in_flight or member.in_flight < self._cap(member.weight, m):
                    return member
                if fallback is None or (
                    member.in_flight * fallback.weight < fallback.in_flight * member.weight
                ):
                    fallback = member
            if len(seen) == len(self._counts):
                break
        return fallback

    def _choose_other(self, key: Any, exclude: Set[str]) -> Member | None:
        h = hash_bytes(key.encode(), self._seed) if type(key) is str else self._hash(key)
        return self._spill(h, exclude, self._in_flight_total + 1)

    # -- accounting -------------------------------------------------------------

    def _acquired(self, member: Member, now: float) -> None:
        self._in_flight_total += 1

    def _released(self, member: Member, latency: float | None, ok: bool | None, now: float) -> None:
        self._in_flight_total -= 1

    def _rebuild(self) -> None:
        super()._rebuild()
        self._in_flight_total = sum(m.in_flight for m in self._members.values())
        self._total_weight = self._weight_sum()

    def _added(self, member: Member) -> None:
        super()._added(member)
        self._total_weight = self._weight_sum()

    def _removed(self, member: Member) -> None:
        super()._removed(member)
        # Its open leases no longer count: releasing them later changes nothing.
        self._in_flight_total -= member.in_flight
        self._total_weight = self._weight_sum()

    def _reweighted(self, member: Member, old: float) -> None:
        super()._reweighted(member, old)
        self._total_weight = self._weight_sum()

    def _weight_sum(self) -> float:
        # fsum: the exact sum, not one that drifts with the order of changes
        return math.fsum(m.weight for m in self._members.values() if m.weight > 0)

    def _options(self) -> dict[str, object]:
        return {"balance_factor": self._factor, **super()._options()}

    def _check(self) -> None:
        """Assert the ring's invariants and that the load totals match the members."""
        super()._check()
        assert self._in_flight_total == sum(m.in_flight for m in self._members.values())
        assert self._total_weight == self._weight_sum()
