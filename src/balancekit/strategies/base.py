"""Balancer: membership, locking and lease accounting shared by every strategy.

A strategy subclasses :class:`Balancer` and writes only what is its own:

- ``_rebuild()`` derives its lookup structure from ``self._members`` (called
  after every membership or weight change, under the lock). Strategies that
  can update incrementally override ``_added`` / ``_removed`` /
  ``_reweighted`` instead, whose default is to call ``_rebuild()``.
- ``_choose(key)`` returns the chosen :class:`Member` (under the lock) or
  raises :class:`~balancekit.errors.NoServerAvailable`.
- ``_choose_other(key, exclude)`` picks outside the servers already tried,
  in the strategy's own order, or returns ``None`` when every member of
  weight > 0 is excluded (the base class then ignores the exclusion). The
  default asks ``_choose`` again and falls back to the least loaded.
- Load-aware strategies override ``_acquired`` and ``_released`` to learn
  from leases; the base class already keeps ``Member.in_flight``.
- Options are validated and stored *before* calling ``Balancer.__init__`` and
  listed by ``_options()`` for ``repr``.

One ``threading.Lock`` guards every public method, so all of them may be
called from many threads at once. Hooks run under that lock and must not
call public methods.
"""

from __future__ import annotations

import abc
import math
import threading
from collections.abc import Iterable, Mapping, Set
from types import MappingProxyType
from typing import Any, ClassVar

from ..clock import Clock, monotonic
from ..errors import DuplicateServer, NoServerAvailable, UnknownServer
from ..lease import Lease, LeaseOwner
from ..validate import (
    MAX_WEIGHT,
    check_server,
    check_time,
    check_weight,
    check_weights,
    parse_servers,
)
from ._exclude import check_exclude, choose_other

__all__ = [
    "MAX_WEIGHT",
    "Balancer",
    "Member",
    "Servers",
    "check_server",
    "check_weight",
    "parse_servers",
]

Servers = Iterable[str] | Mapping[str, float]
"""Server ids (weight 1 each) or a mapping of server id to weight."""


class Member:
    """The per-server record: id, weight and open leases.

    A lease keeps a reference to the record it counted on, so releasing it
    after the server was removed (or removed and added again) changes no count.
    """

    __slots__ = ("in_flight", "server", "weight")

    def __init__(self, server: str, weight: float) -> None:
        self.server = server
        self.weight = weight
        self.in_flight = 0

    def __repr__(self) -> str:
        return f"Member({self.server!r}, weight={self.weight!r}, in_flight={self.in_flight})"


class Balancer(abc.ABC):
    """The interface every strategy implements.

    >>> from balancekit import RoundRobin
    >>> lb = RoundRobin(["a", "b"])
    >>> lb.add_server("c", weight=2)
    >>> sorted(lb.servers.items())
    [('a', 1.0), ('b', 1.0), ('c', 2.0)]
    >>> with lb.acquire() as lease:
    ...     lb.in_flight(lease.server)
    1
    >>> len(lb), "c" in lb
    (3, True)

    Complexity: membership changes cost the strategy's ``_rebuild`` (O(n)
    unless the strategy says otherwise); ``servers`` is O(n); ``len``,
    ``in``, ``in_flight`` and ``load`` are O(1).
    """

    requires_key: ClassVar[bool] = False
    """Hash strategies need a key for every pick (``TypeError`` without one)."""

    _given_now: float | None = None
    """While a Pool's batch runs (under the lock): the reading of the Pool's call,
    which hooks use instead of reading the clock again (see :meth:`_time`)."""

    _owned = False
    """Set when a Pool takes the strategy: a second Pool would fight over its weights."""

    _hooked: ClassVar[bool] = False
    """Whether the class overrides ``_acquired`` or ``_released``: the lease path
    skips two calls per request for the strategies that learn nothing from leases."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._hooked = cls._acquired is not Balancer._acquired or (
            cls._released is not Balancer._released
        )

    def __init__(self, servers: Servers = (), *, clock: Clock | None = None) -> None:
        members = parse_servers(servers)
        self._clock: Clock = monotonic if clock is None else clock
        self._clock_explicit = clock is not None
        self._lock = threading.Lock()
        self._members: dict[str, Member] = {
            server: Member(server, weight) for server, weight in members.items()
        }
        self._rebuild()

    # -- membership -------------------------------------------------------------

    def add_server(self, server: str, weight: float = 1) -> None:
        """Add a server with a weight (default 1).

        Raises:
            DuplicateServer: (a ``ValueError``) the server is already a member.
            TypeError, ValueError: a bad id or weight; nothing changes.
        """
        check_server(server)
        value = check_weight(weight)
        with self._lock:
            if server in self._members:
                raise DuplicateServer(server)
            member = Member(server, value)
            self._members[server] = member
            try:
                self._added(member)
            except BaseException:
                del self._members[server]
                self._rebuild()
                raise

    def remove_server(self, server: str) -> None:
        """Remove a server; its open leases may still be released safely.

        Raises:
            UnknownServer: (a ``KeyError``) the server is not a member.
        """
        with self._lock:
            member = self._members.pop(server, None)
            if member is None:
                raise UnknownServer(server)
            self._removed(member)

    def set_weight(self, server: str, weight: float) -> None:
        """Change a server's weight; 0 keeps it a member that gets no new work.

        Raises:
            UnknownServer: the server is not a member.
            TypeError, ValueError: a bad weight, or (clocked strategies) a broken
                clock reading; nothing changes.
        """
        value = check_weight(weight)
        with self._lock:
            member = self._members.get(server)
            if member is None:
                raise UnknownServer(server)
            old = member.weight
            if old == value:
                return
            member.weight = value
            try:
                self._reweighted(member, old)
            except BaseException:
                # As add_server: a hook that refuses (a broken clock reading) leaves
                # the balancer as it was.
                member.weight = old
                self._rebuild()
                raise

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """Change many weights at once: one rebuild (or one incremental pass) for the batch.

        The whole mapping is checked before anything changes; servers whose
        weight is already the one given are left alone.

        >>> from balancekit import RoundRobin
        >>> lb = RoundRobin(["a", "b", "c"])
        >>> lb.set_weights({"a": 0, "b": 2})
        >>> dict(lb.servers)
        {'a': 0.0, 'b': 2.0, 'c': 1.0}

        Complexity: one ``_rebuild`` for a batch of more than one change
        (strategies that update incrementally do so when the batch is small).

        Raises:
            UnknownServer: a server is not a member. TypeError, ValueError: not a
                mapping, or a bad weight. Nothing changes in any case, and a
                strategy that refuses the batch (Maglev's room) leaves every
                weight as it was.
        """
        self._set_weights(check_weights(weights))

    def _set_weights(self, parsed: dict[str, float], now: float | None = None) -> None:
        """:meth:`set_weights` of a batch already checked (a Pool's own, computed, at
        the ``now`` it read)."""
        with self._lock:
            self._given_now = now
            try:
                self._set_weights_locked(parsed)
            finally:
                self._given_now = None

    def _set_weights_locked(self, parsed: dict[str, float]) -> None:
        members = self._members
        for server in parsed:
            if server not in members:
                raise UnknownServer(server)
        changed = [
            (members[s], members[s].weight) for s, w in parsed.items() if members[s].weight != w
        ]
        if not changed:
            return
        for member, _ in changed:
            member.weight = parsed[member.server]
        try:
            self._reweighted_many(changed)
        except BaseException:
            for member, old in changed:
                member.weight = old
            self._rebuild()
            raise

    def _update_members(
        self,
        add: Mapping[str, float],
        remove: Iterable[str] = (),
        reweight: Mapping[str, float] = MappingProxyType({}),
        now: float | None = None,
    ) -> None:
        """Remove, add and reweight many servers as one change (a Pool's discovery step,
        at the ``now`` it read).

        The whole batch is checked before anything changes: ``add`` holds
        servers that are not members (or are also removed: a re-added server is
        a new member, its old leases no longer count), ``remove`` members, and
        ``reweight`` members that are not removed. Removals go first, then
        additions in the order given, then weights.

        >>> from balancekit import RoundRobin
        >>> lb = RoundRobin(["a", "b", "c"])
        >>> lb._update_members({"d": 2}, remove=["a"], reweight={"b": 0})
        >>> dict(lb.servers)
        {'b': 0.0, 'c': 1.0, 'd': 2.0}

        Complexity: one ``_rebuild`` for the batch; one hook for a batch of one,
        and one hook per change for a strategy that updates in place
        (``_incremental``) while the batch is under a quarter of the members.

        Raises:
            DuplicateServer: an added server is a member. UnknownServer: a removed
                or reweighted one is not. TypeError, ValueError: a bad id or
                weight, a server named twice; or the strategy refused the batch
                (Maglev's room). Nothing changes in any case.
        """
        added = check_weights(add)
        changes = check_weights(reweight)
        removing: list[str] = []
        for server in remove:
            removing.append(check_server(server))
        gone = set(removing)
        if len(gone) != len(removing):
            raise ValueError(f"remove names a server twice: {removing!r}")
        with self._lock:
            self._given_now = now
            try:
                self._update_members_locked(added, removing, gone, changes)
            finally:
                self._given_now = None

    def _update_members_locked(
        self,
        added: dict[str, float],
        removing: list[str],
        gone: set[str],
        changes: dict[str, float],
    ) -> None:
        members = self._members
        for server in removing:
            if server not in members:
                raise UnknownServer(server)
        for server in added:
            if server in members and server not in gone:
                raise DuplicateServer(server)
        for server in changes:
            if server not in members or server in gone:
                raise UnknownServer(server)
        changed = [(members[s], w) for s, w in changes.items() if members[s].weight != w]
        count = len(removing) + len(added) + len(changed)
        if not count:
            return
        # One hook per change only where each is cheaper than a share of a rebuild.
        one_by_one = count == 1 or (self._incremental and 4 * count < len(members))
        before = dict(members)
        olds = [(member, member.weight) for member, _ in changed]
        try:
            for server in removing:
                member = members.pop(server)
                if one_by_one:
                    self._removed(member)
            for server, weight in added.items():
                member = Member(server, weight)
                members[server] = member
                if one_by_one:
                    self._added(member)
            for member, weight in changed:
                old, member.weight = member.weight, weight
                if one_by_one:
                    self._reweighted(member, old)
            if not one_by_one:
                self._rebuild()
        except BaseException:
            for member, old in olds:
                member.weight = old
            members.clear()
            members.update(before)
            self._rebuild()
            raise

    @property
    def servers(self) -> Mapping[str, float]:
        """A read-only snapshot ``{server: weight}``, in insertion order. O(n)."""
        with self._lock:
            return MappingProxyType({s: m.weight for s, m in self._members.items()})

    @property
    def clock(self) -> Clock:
        """The clock that times leases."""
        return self._clock

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, server: object) -> bool:
        return server in self._members

    # -- picking ----------------------------------------------------------------

    def get_server(self, key: Any = None, exclude: Iterable[str] = ()) -> str:
        """Choose a server for ``key`` without counting a request.

        ``exclude`` holds servers already tried: none of them is chosen
        while a server of weight > 0 outside them exists; when every such
        server is excluded the exclusion is dropped (see each strategy for
        which server comes next).

        Raises:
            NoServerAvailable: (a ``LookupError``) no member has a weight > 0.
            TypeError: a hash strategy was given no key or a key of the wrong
                type; ``exclude`` is a ``str`` or holds a non-``str``.
        """
        with self._lock:
            return (self._pick(key, exclude) if exclude else self._choose(key)).server

    def acquire(self, key: Any = None, exclude: Iterable[str] = ()) -> Lease:
        """Choose a server and count one request in flight on it until release.

        Raises:
            NoServerAvailable, TypeError: as :meth:`get_server`.
        """
        return self._open(self, key, None, exclude)

    def _pick(self, key: Any, exclude: Iterable[str]) -> Member:
        """Choose for ``key`` outside ``exclude``, or ignoring it if it leaves nobody."""
        member = self._choose_other(key, check_exclude(exclude))
        return self._choose(key) if member is None else member

    def _open(
        self,
        owner: LeaseOwner,
        key: Any,
        server: str | None,
        exclude: Iterable[str] = (),
        now: float | None = None,
    ) -> Lease:
        """Count a lease for ``owner`` on ``server``, or on the choice for ``key``.

        A Pool opens leases through this so that its own ``_release`` sees
        them first (then calls ours) and so that a sticky client can be
        pinned to its server, even one the strategy would no longer choose.
        The Pool passes the ``now`` it read; alone, the strategy reads its clock.
        """
        if now is None:
            now = self._clock()
            if type(now) is not float or now - now != 0.0:  # the usual reading in one test
                now = check_time(now)
        with self._lock:
            if server is None:
                member = self._pick(key, exclude) if exclude else self._choose(key)
            else:
                found = self._members.get(server)
                if found is None:
                    raise UnknownServer(server)
                member = found
            member.in_flight += 1
            if self._hooked:
                self._acquired(member, now)
        return Lease(owner, member.server, now, member)

    def _release(self, lease: Lease, ok: bool | None, now: float | None = None) -> bool:
        if now is None:  # alone; a Pool passes the now it read (and checked)
            try:
                now = self._clock()
                if type(now) is not float or now - now != 0.0:  # the usual reading in one test
                    now = check_time(now)
            except (TypeError, ValueError):
                # A broken clock must not leak the lease: settle the count, then say
                # so (a lease already released stays a quiet no-op).
                if not self._settle(lease, ok):
                    return False
                raise
        # _settle's work with a latency, written out: this runs once per request.
        with self._lock:
            if lease._done:
                return False
            lease._done = True
            lease.ok = ok
            latency = lease.latency = now - lease.started
            member = lease.token
            if isinstance(member, Member) and self._members.get(member.server) is member:
                member.in_flight -= 1
                if self._hooked:
                    self._released(member, latency, ok, now)
            return True

    def _settle(self, lease: Lease, ok: bool | None) -> bool:
        """Release ``lease`` without a clock reading: the count settles, no latency
        is recorded, no sample taken (a Pool whose clock failed calls this)."""
        with self._lock:
            if lease._done:
                return False
            lease._done = True
            lease.ok = ok
            lease.latency = None
            member = lease.token
            if isinstance(member, Member) and self._members.get(member.server) is member:
                member.in_flight -= 1
                # No latency without a good reading; the hook still sees the count change.
                self._released(member, None, ok, lease.started)
            return True

    def in_flight(self, server: str) -> int:
        """Leases open on ``server``. O(1).

        Raises:
            UnknownServer: the server is not a member.
        """
        member = self._members.get(server)
        if member is None:
            raise UnknownServer(server)
        return member.in_flight

    def load(self, server: str) -> float:
        """The figure the strategy minimises; here in-flight / weight. O(1).

        A server of weight 0 has infinite load (it must get nothing).

        Raises:
            UnknownServer: the server is not a member.
        """
        member = self._members.get(server)
        if member is None:
            raise UnknownServer(server)
        return member.in_flight / member.weight if member.weight else math.inf

    # -- hooks for strategies ---------------------------------------------------

    @abc.abstractmethod
    def _rebuild(self) -> None:
        """Derive the lookup structure from ``self._members``."""

    @abc.abstractmethod
    def _choose(self, key: Any) -> Member:
        """Pick a member for ``key`` or raise ``NoServerAvailable``."""

    def _choose_other(self, key: Any, exclude: Set[str]) -> Member | None:
        """Pick a member of weight > 0 outside ``exclude`` for ``key``, or return
        ``None`` when every one is excluded. Strategies override this with
        their own order; the default is :func:`._exclude.choose_other`."""
        return choose_other(self, key, exclude)

    def _added(self, member: Member) -> None:
        self._rebuild()

    _incremental: ClassVar[bool] = False
    """Whether ``_reweighted`` updates in place (cheaper than a rebuild for a few servers)."""

    def _reweighted_many(self, changed: list[tuple[Member, float]]) -> None:
        """Weights changed (each member with its old weight): one change goes to
        ``_reweighted``; a batch is one ``_rebuild``, or, for an incremental
        strategy, one pass of ``_reweighted`` while it is under a quarter of the
        members (each change then costs less than a share of a rebuild)."""
        if len(changed) == 1 or (self._incremental and 4 * len(changed) < len(self._members)):
            for member, old in changed:
                self._reweighted(member, old)
        else:
            self._rebuild()

    def _removed(self, member: Member) -> None:
        self._rebuild()

    def _reweighted(self, member: Member, old: float) -> None:
        self._rebuild()

    def _admit(self, weights: Mapping[str, float]) -> None:
        """Raise ``ValueError`` if these weights, all at once, are more than this
        strategy can hold. The Pool asks before a membership or weight change,
        because health, drains and slow start later give any subset of its
        members any weight up to its configured one: what holds at full weight
        must hold then too. The default holds anything."""
        return

    def _acquired(self, member: Member, now: float) -> None:
        """A lease was opened on ``member`` (its in_flight already counts it)."""
        return

    def _released(self, member: Member, latency: float | None, ok: bool | None, now: float) -> None:
        """A lease on a current member closed (its in_flight already uncounted)
        after ``latency`` seconds, or ``None`` if the clock gave no usable
        reading; ``ok=None``: the lease was abandoned."""
        return

    def _time(self) -> float:
        """Now, for a membership or weight hook: the Pool's reading when the change is
        part of a Pool's call (one clock read per call), else this clock's, checked."""
        now = self._given_now
        return check_time(self._clock()) if now is None else now

    def _unavailable(self) -> NoServerAvailable:
        count = len(self._members)
        reason = "the balancer is empty" if not count else "every server has weight 0"
        return NoServerAvailable(count, reason)

    def _adopt_clock(self, clock: Clock) -> None:
        """Share a Pool's clock; a different explicit clock is a ``ValueError``."""
        if self._clock_explicit and self._clock is not clock:
            raise ValueError(
                f"{type(self).__name__} has its own clock {self._clock!r}, not the pool's {clock!r}"
            )
        self._clock = clock

    def _options(self) -> dict[str, object]:
        """Keyword options shown by ``repr``."""
        return {}

    def _check(self) -> None:
        """Assert the invariants every strategy keeps (tests call this)."""
        for server, member in self._members.items():
            assert member.server == server, (server, member)
            assert member.in_flight >= 0, member
            assert math.isfinite(member.weight) and member.weight >= 0, member

    def __repr__(self) -> str:
        weights = {s: m.weight for s, m in self._members.items()}
        options = "".join(f", {k}={v!r}" for k, v in self._options().items())
        return f"{type(self).__name__}({weights!r}{options})"
