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


def check_server(server: object) -> str:
    """Validate a server id: a non-empty ``str``.

    >>> check_server("10.0.0.1:80")
    '10.0.0.1:80'
    >>> check_server(80)
    Traceback (most recent call last):
    ...
    TypeError: server must be a non-empty str, got 80
    """
    if not isinstance(server, str):
        raise TypeError(f"server must be a non-empty str, got {server!r}")
    if not server:
        raise ValueError("server must be a non-empty str, got ''")
    try:
        server.encode()
    except UnicodeEncodeError:
        # A lone surrogate cannot be hashed as UTF-8: refuse it at the door.
        raise ValueError(f"server must be valid Unicode text, got {server!r}") from None
    return server


MAX_WEIGHT = 1e9
"""The largest weight. Weights are relative, so this costs nothing, and it keeps
sums of weights (and the smooth round robin's running values) finite and exact
enough: without it two weights of 1.7e308 would sum to infinity."""


def check_weight(weight: object) -> float:
    """Validate a weight: a finite number in [0, ``MAX_WEIGHT``], ``bool`` excluded.

    >>> check_weight(2)
    2.0
    >>> check_weight(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: weight must be a finite number >= 0, got nan
    >>> check_weight(2e9)
    Traceback (most recent call last):
    ...
    ValueError: weight must be at most 1e+09, got 2000000000.0
    """
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise TypeError(f"weight must be a finite number >= 0, got {weight!r}")
    if not 0 <= weight < math.inf:  # NaN fails every comparison
        raise ValueError(f"weight must be a finite number >= 0, got {weight!r}")
    if weight > MAX_WEIGHT:  # compared before float(): a huge int would overflow it
        raise ValueError(f"weight must be at most {MAX_WEIGHT:g}, got {weight!r}")
    return float(weight)


def parse_servers(servers: object) -> dict[str, float]:
    """Validate a constructor's ``servers`` argument into ``{id: weight}``.

    >>> parse_servers(["a", "b"])
    {'a': 1.0, 'b': 1.0}
    >>> parse_servers({"a": 2})
    {'a': 2.0}
    >>> parse_servers(["a", "a"])
    Traceback (most recent call last):
    ...
    balancekit.errors.DuplicateServer: server 'a' is already a member

    Raises:
        TypeError: a bare string (which would iterate as characters), a
            non-iterable, a non-str id or a non-numeric weight.
        ValueError: an empty id, a bad weight or a repeated id.
    """
    if isinstance(servers, (str, bytes)):
        raise TypeError(f"servers must be an iterable of ids or a mapping, got {servers!r}")
    if isinstance(servers, Mapping):
        pairs: Iterable[tuple[object, object]] = servers.items()
    elif isinstance(servers, Iterable):
        pairs = ((server, 1) for server in servers)
    else:
        raise TypeError(f"servers must be an iterable of ids or a mapping, got {servers!r}")
    parsed: dict[str, float] = {}
    for server, weight in pairs:
        name = check_server(server)
        if name in parsed:
            raise DuplicateServer(name)
        parsed[name] = check_weight(weight)
    return parsed


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
            TypeError, ValueError: a bad weight; nothing changes.
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
            self._reweighted(member, old)

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
        self, owner: LeaseOwner, key: Any, server: str | None, exclude: Iterable[str] = ()
    ) -> Lease:
        """Count a lease for ``owner`` on ``server``, or on the choice for ``key``.

        A Pool opens leases through this so that its own ``_release`` sees
        them first (then calls ours) and so that a sticky client can be
        pinned to its server, even one the strategy would no longer choose.
        """
        now = self._clock()
        with self._lock:
            if server is None:
                member = self._pick(key, exclude) if exclude else self._choose(key)
            else:
                found = self._members.get(server)
                if found is None:
                    raise UnknownServer(server)
                member = found
            member.in_flight += 1
            self._acquired(member, now)
        return Lease(owner, member.server, now, member)

    def _release(self, lease: Lease, ok: bool | None) -> bool:
        now = self._clock()
        with self._lock:
            if lease._done:
                return False
            lease._done = True
            lease.ok = ok
            # Nothing here may raise before the count settles: a clock that
            # gave None, NaN or infinity leaves no latency, not a lease counted.
            latency: float | None
            try:
                latency = now - lease.started
            except TypeError:
                latency = None
            if latency is not None and latency - latency != 0:
                latency = None
            lease.latency = latency
            member = lease.token
            if isinstance(member, Member) and self._members.get(member.server) is member:
                member.in_flight -= 1
                self._released(member, latency, ok, now)
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
