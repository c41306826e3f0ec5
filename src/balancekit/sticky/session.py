"""StickySession: keep a client on its server by cookie, source IP or session id.

Three kinds of affinity, one object:

- **Cookie**: :meth:`StickySession.cookie_for` makes a cookie value naming a
  server by an opaque token, signed with HMAC-SHA256; :meth:`server_from_cookie`
  turns it back into the server, or into ``None`` for anything that is not a
  valid, unexpired cookie of a current member. It never raises for a ``str``,
  ``bytes`` or ``None`` cookie: a client controls that input.
- **Source IP**: :meth:`server_for_ip` ranks the eligible servers by
  rendezvous hashing of the normalised address, so a client keeps its server
  while that server stays eligible, and removing a server moves only its
  clients.
- **Route table**: :meth:`bind`, :meth:`route` and :meth:`forget` map an
  application's session ids to servers in a
  :class:`~balancekit.sticky.route_store.RouteStore` (bounded, expiring).

The cookie format and its signatures are in :mod:`balancekit.sticky._cookie`.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence

from ..clock import Clock, monotonic
from ..errors import DuplicateServer, NoServerAvailable, UnknownServer
from ..hashing import hash_bytes, ip_key
from ..validate import check_callable, check_count, check_seed, check_server, check_time
from ._cookie import TOKEN_BYTES, CookieCodec, check_cookie_name, parse_secrets
from .route_store import MemoryRouteStore, RouteStore, check_ttl

__all__ = ["StickySession"]


class _Member:
    """A member's derived values: its token under each secret, its HRW seed, its cookie."""

    __slots__ = ("cookie", "seed", "server", "tokens")

    def __init__(self, server: str, tokens: tuple[bytes, ...], seed: int) -> None:
        self.server = server
        self.tokens = tokens  # tokens[i] is the token under secret i
        self.seed = seed  # seeds the rendezvous score of this server
        self.cookie: str | None = None  # cached when cookies never expire

    def __repr__(self) -> str:
        # The server id is fine to show here; the tokens are not secret either,
        # but they would only clutter a failing test's output.
        return f"_Member({self.server!r}, tokens={len(self.tokens)}, seed={self.seed})"


class StickySession:
    """Client affinity: signed cookies, source-IP hashing and a session route table.

    >>> from balancekit import ManualClock
    >>> clock = ManualClock()
    >>> sticky = StickySession("a long random secret", ttl=3600, clock=clock)
    >>> sticky.add_server("10.0.0.1:80")
    >>> cookie = sticky.cookie_for("10.0.0.1:80")
    >>> "10.0.0.1" in cookie, len(cookie)
    (False, 50)
    >>> sticky.server_from_cookie(cookie)
    '10.0.0.1:80'
    >>> sticky.server_from_cookie(cookie[:-1]) is None          # truncated
    True
    >>> clock.advance(3600)
    3600.0
    >>> sticky.server_from_cookie(cookie) is None              # expired
    True

    Args:
        secret: the HMAC key, or several for rotation: the first signs new
            cookies, every one verifies. Use at least 32 random bytes.
        ttl: seconds a cookie stays valid after it was issued, and a route
            table entry after its last use; ``None``: cookies never expire.
        cookie_name: the cookie's name (an RFC 6265 token); it is also bound
            into the signature.
        max_routes: the route table's size bound (default store only).
        store: a :class:`~balancekit.sticky.route_store.RouteStore`; by default a
            :class:`~balancekit.sticky.route_store.MemoryRouteStore` of ``max_routes``
            entries and ``ttl``. A given store applies its own bounds.
        seed: seeds source-IP hashing: processes that must agree use one seed.
        clock: times cookie expiry and route entries (monotonic seconds).
            Expiring cookies are only as portable as the clock: see
            docs/sticky.md.

    Complexity: ``cookie_for`` O(1) (one HMAC; cached when ``ttl`` is None);
    ``server_from_cookie`` O(s) HMACs for s secrets; ``server_for_ip`` O(n)
    for n eligible servers; route table calls cost the store's O(1);
    ``add_server`` O(s). Thread-safe: membership changes take a lock, lookups
    read dictionaries that a change updates entry by entry.

    Raises:
        ValueError: no secret, an empty secret, a bad ``ttl``,
            ``cookie_name``, ``max_routes`` or ``seed`` (a message never
            shows a secret).
        TypeError: an argument of the wrong type.
    """

    def __init__(
        self,
        secret: str | bytes | Sequence[str | bytes],
        *,
        ttl: float | None = None,
        cookie_name: str = "bk_route",
        max_routes: int = 10_000,
        store: RouteStore | None = None,
        seed: int = 0,
        clock: Clock | None = None,
    ) -> None:
        secrets = parse_secrets(secret)
        self._ttl = check_ttl(ttl)
        check_cookie_name(cookie_name)
        check_count("max_routes", max_routes)
        if store is not None and not isinstance(store, RouteStore):
            raise TypeError(f"store must be a RouteStore, got {store!r}")
        check_seed(seed)
        if clock is not None:
            check_callable("clock", clock)
        self._codec = CookieCodec(secrets, cookie_name)
        self._cookie_name = cookie_name
        self._max_routes = max_routes
        self._store: RouteStore = (
            MemoryRouteStore(max_routes, self._ttl) if store is None else store
        )
        self._seed = seed
        self._clock: Clock = monotonic if clock is None else clock
        self._clock_explicit = clock is not None
        self._lock = threading.Lock()
        self._members: dict[str, _Member] = {}
        # One reverse map per secret: a cookie's token is looked up under the
        # secret whose signature it carries.
        self._by_token: tuple[dict[bytes, _Member], ...] = tuple({} for _ in secrets)

    # -- membership -------------------------------------------------------------

    def add_server(self, server: str) -> None:
        """Make ``server`` a member that cookies may name. O(s) for s secrets.

        Raises:
            DuplicateServer: (a ``ValueError``) it is already a member.
            TypeError, ValueError: ``server`` is not a non-empty ``str``.
        """
        check_server(server)
        tokens = self._codec.tokens(server)
        member = _Member(server, tokens, hash_bytes(b"server:" + server.encode(), self._seed))
        if self._ttl is None:
            member.cookie = self._codec.encode(tokens[0], None)
        with self._lock:
            if server in self._members:
                raise DuplicateServer(server)
            for token, index in zip(tokens, self._by_token, strict=True):
                index[token] = member
            self._members[server] = member

    def remove_server(self, server: str) -> None:
        """Stop honouring cookies that name ``server``. O(s) for s secrets.

        Raises:
            UnknownServer: (a ``KeyError``) it is not a member.
        """
        with self._lock:
            member = self._members.pop(server, None) if isinstance(server, str) else None
            if member is None:
                raise UnknownServer(server)
            for token, index in zip(member.tokens, self._by_token, strict=True):
                if index.get(token) is member:
                    del index[token]

    @property
    def servers(self) -> tuple[str, ...]:
        """A snapshot of the members, in the order they were added. O(n)."""
        with self._lock:
            return tuple(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, server: object) -> bool:
        return server in self._members

    # -- cookies ----------------------------------------------------------------

    def cookie_for(self, server: str) -> str:
        """The cookie value that pins a client to ``server``. O(1).

        With a ``ttl`` the cookie expires ``ttl`` seconds from now on this
        session's clock; without one it never expires and is the same on
        every call (and in every process sharing the first secret).

        Raises:
            UnknownServer: (a ``KeyError``) ``server`` is not a member.
            TypeError, ValueError: the clock returned no finite number.
        """
        return self._cookie_for(server, None)

    def _cookie_for(self, server: str, now: float | None) -> str:
        """:meth:`cookie_for` at ``now`` (a Pool's reading), or at this clock's when ``None``."""
        member = self._members.get(server) if isinstance(server, str) else None
        if member is None:
            raise UnknownServer(server)
        if member.cookie is not None:
            return member.cookie
        assert self._ttl is not None  # only expiring cookies are not cached
        when = self._read_clock() if now is None else now
        return self._codec.encode(member.tokens[0], when + self._ttl)

    def server_from_cookie(self, cookie: str | bytes | None) -> str | None:
        """The member a valid cookie names, else ``None``; never raises for str/bytes/None.

        ``None`` is returned for a missing, malformed, non-canonical, forged,
        tampered, truncated or expired cookie, one signed by a secret no
        longer in the list, one made for another ``cookie_name``, one
        without expiry while this session has a ``ttl``, and one naming a
        server that is no longer a member. An expiring cookie is also
        rejected when its expiry is more than ``ttl`` ahead of this clock
        (it was made on another clock), so none lives longer than ``ttl``.

        >>> StickySession("k").server_from_cookie("definitely not a cookie") is None
        True

        Complexity: O(s) for s secrets, with a length check first, so an
        oversized value costs O(1). Signatures are compared in constant time.

        Raises:
            TypeError: ``cookie`` is not ``str``, ``bytes`` or ``None`` (a
                programming error, not a client's).
            TypeError, ValueError: the clock returned no finite number.
        """
        return self._server_from_cookie(cookie, None)

    def _server_from_cookie(self, cookie: str | bytes | None, now: float | None) -> str | None:
        """:meth:`server_from_cookie` at ``now``, or at this clock's reading when ``None``."""
        decoded = self._codec.decode(cookie)
        if decoded is None:
            return None
        index, token, expiry = decoded
        if expiry is None:
            if self._ttl is not None:  # made before a ttl was configured
                return None
        else:
            if now is None:
                now = self._read_clock()
            # `now < expiry` is false for NaN too; the upper bound catches a
            # cookie made on a clock far ahead of this one.
            if not now < expiry or (self._ttl is not None and expiry > now + self._ttl):
                return None
        member = self._by_token[index].get(token)
        if member is None or self._members.get(member.server) is not member:
            return None
        return member.server

    # -- source IP --------------------------------------------------------------

    def server_for_ip(self, address: object, eligible: Collection[str]) -> str:
        """The server for a client address, by rendezvous hashing over ``eligible``.

        The same address and set always give the same server, in any process
        with the same ``seed``; an IPv4-mapped IPv6 address is its IPv4
        client. Removing a server moves only the clients it had; adding one
        takes clients only for itself. The order of ``eligible`` does not
        matter and its servers need not be members.

        >>> sticky = StickySession("k")
        >>> first = sticky.server_for_ip("192.0.2.7", ["a", "b", "c"])
        >>> first == sticky.server_for_ip("::ffff:192.0.2.7", ["c", "b", "a"])
        True
        >>> rest = [s for s in ["a", "b", "c"] if s != first]
        >>> sticky.server_for_ip("192.0.2.7", rest) in rest
        True

        Complexity: O(n) for n eligible servers (two hashes per non-member).

        Raises:
            ValueError: ``address`` is not an IP address, or an empty server id.
            TypeError: ``address`` is neither a str nor an ``ipaddress``
                address; ``eligible`` is a str, not a collection, or holds a
                non-str.
            NoServerAvailable: (a ``LookupError``) ``eligible`` is empty.
        """
        point = hash_bytes(ip_key(address), self._seed).to_bytes(8, "big")
        if isinstance(eligible, (str, bytes)) or not isinstance(eligible, Collection):
            raise TypeError(f"eligible must be a collection of server ids, got {eligible!r}")
        members = self._members
        best_score = -1
        best = ""
        for server in eligible:
            member = members.get(server) if isinstance(server, str) else None
            if member is not None:
                seed = member.seed
            else:
                seed = hash_bytes(b"server:" + check_server(server).encode(), self._seed)
            score = hash_bytes(point, seed)
            # Ties (about 2**-64 per pair) go to the larger id, never to the order given.
            if score > best_score or (score == best_score and server > best):
                best_score, best = score, server
        if best_score < 0:
            raise NoServerAvailable(0, "no eligible server was given")
        return best

    # -- route table --------------------------------------------------------------

    def route(self, session_id: str) -> str | None:
        """The member bound to ``session_id``, or ``None``; a hit refreshes the binding.

        A binding to a server that is no longer a member reads as ``None``
        (it is live again if that server is re-added before it expires).

        Complexity: the store's ``get``, O(1) for the default store.

        Raises:
            TypeError, ValueError: ``session_id`` is not a non-empty ``str``.
        """
        _check_session(session_id)
        return self._route(session_id, self._read_clock())

    def _route(self, session_id: str, now: float) -> str | None:
        server = self._store.get(session_id, now)
        return server if server is not None and server in self._members else None

    def bind(self, session_id: str, server: str) -> None:
        """Bind ``session_id`` to member ``server``, replacing any binding.

        >>> sticky = StickySession("k", ttl=60)
        >>> sticky.add_server("a")
        >>> sticky.bind("session-1", "a")
        >>> sticky.route("session-1")
        'a'

        Complexity: the store's ``set``, O(1) for the default store.

        Raises:
            TypeError, ValueError: ``session_id`` or ``server`` is not a
                non-empty ``str``.
            UnknownServer: (a ``KeyError``) ``server`` is not a member.
        """
        _check_session(session_id)
        check_server(server)
        if server not in self._members:
            raise UnknownServer(server)
        self._store.set(session_id, server, self._read_clock())

    def _bind(self, session_id: str, server: str, now: float) -> None:
        """:meth:`bind` at a Pool's ``now``, for a member the Pool just chose."""
        self._store.set(session_id, server, now)

    def forget(self, session_id: str) -> None:
        """Drop the binding of ``session_id``; no error if there is none. O(1).

        Raises:
            TypeError, ValueError: ``session_id`` is not a non-empty ``str``.
        """
        _check_session(session_id)
        self._store.delete(session_id)

    # -- options ------------------------------------------------------------------

    @property
    def ttl(self) -> float | None:
        """Seconds a cookie (and an unused route) stays valid; ``None``: forever."""
        return self._ttl

    @property
    def cookie_name(self) -> str:
        """The name to set the cookie under."""
        return self._cookie_name

    @property
    def max_routes(self) -> int:
        """The default route store's size bound."""
        return self._max_routes

    @property
    def store(self) -> RouteStore:
        """The route table's store."""
        return self._store

    @property
    def seed(self) -> int:
        """The seed of source-IP hashing."""
        return self._seed

    @property
    def clock(self) -> Clock:
        """The clock that times cookie expiry and route entries."""
        return self._clock

    def _read_clock(self) -> float:
        # A broken clock (None, NaN) raises here, before any cookie or route depends on it.
        return check_time(self._clock())

    def _adopt_clock(self, clock: Clock) -> None:
        """Share a Pool's clock; a different explicit clock is a ``ValueError``."""
        if self._clock_explicit and self._clock is not clock:
            raise ValueError(
                f"StickySession has its own clock {self._clock!r}, not the pool's {clock!r}"
            )
        self._clock = clock

    def _check(self) -> None:
        """Assert the invariants: every member's tokens map back to it, and nothing else."""
        with self._lock:
            for index in self._by_token:
                assert len(index) == len(self._members), (len(index), len(self._members))
            for server, member in self._members.items():
                assert member.server == server, (server, member)
                assert len(member.tokens) == self._codec.key_count, member
                for token, index in zip(member.tokens, self._by_token, strict=True):
                    assert len(token) == TOKEN_BYTES and index[token] is member, member
                assert (member.cookie is None) == (self._ttl is not None), member
        check = getattr(self._store, "_check", None)
        if check is not None:
            check()

    def __repr__(self) -> str:
        servers = list(self._members)
        count = self._codec.key_count
        return (
            f"StickySession(<{count} secret{'s' if count > 1 else ''}>, ttl={self._ttl!r}, "
            f"cookie_name={self._cookie_name!r}, max_routes={self._max_routes}, "
            f"seed={self._seed}, servers={servers!r}, routes={len(self._store)})"
        )


def _check_session(session_id: object) -> None:
    if not isinstance(session_id, str):
        raise TypeError(f"session_id must be a non-empty str, got {session_id!r}")
    if not session_id:
        raise ValueError("session_id must be a non-empty str, got ''")
