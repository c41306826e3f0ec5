"""The decisions the sync and async httpx transports share; only their awaiting differs.

Everything here is plain: which request goes to which URL, what counts as a
failure, which outcome may be retried, how the sticky cookie travels. The
transports in :mod:`balancekit.drivers.httpx` call these and do the I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any, Protocol

import httpx

from ..health import HealthState
from ..lease import Lease
from ..pool import Pool
from ..retry import RetryBudget
from ..validate import check_count, show
from ._address import split_server
from ._validate import check_methods, check_statuses

__all__ = [
    "CONNECT_ERRORS",
    "IDEMPOTENT_METHODS",
    "RETRY_ALL",
    "RETRY_CONNECT",
    "RETRY_ERRORS",
    "RETRY_NONE",
    "Budget",
    "Rules",
    "default_classify",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
"""RFC 9110's idempotent methods: the ones retried by default."""

RETRY_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,  # connect, read, write and pool timeouts
    httpx.NetworkError,  # refused, reset, broken pipe
    httpx.RemoteProtocolError,  # the server closed the connection without an answer
)
"""Exceptions after which an idempotent request may be retried on another server."""

CONNECT_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout)
"""Failures to connect: the request was never sent, so any method may be retried
(Envoy's ``connect-failure`` retry policy, gRPC's transparent retry)."""

RETRY_NONE, RETRY_CONNECT, RETRY_ALL = 0, 1, 2
"""What a request may be retried after: nothing (its body cannot be sent again),
a failure to connect only (a method not in ``retry_methods``), or any
retryable error or status."""


_new_request = httpx.Request.__new__
_new_headers = httpx.Headers.__new__


def _rows_as_expected() -> bool:
    """Whether this httpx keeps its headers as the rows the fast Host swap writes
    (``_list`` of ``(name, lower-case name, value)`` and ``_encoding``): private
    fields, so a version that changes them gets the public path instead."""
    try:
        probe = httpx.Headers({"Host": "a"})
        copy = _new_headers(httpx.Headers)
        copy._list = [(b"Host", b"host", b"b")]
        copy._encoding = probe.encoding
        return probe._list == [(b"Host", b"host", b"a")] and dict(copy) == {"host": "b"}
    except Exception:  # any shape we do not know
        return False


_FAST_HOST = _rows_as_expected()

HeaderRow = tuple[bytes, bytes, bytes]
"""A row of ``httpx.Headers``: the name as given, the name lower-cased, the value."""

_URL_CACHE = 1024
"""Target URLs kept, per transport."""


class Budget(Protocol):
    """What a retry budget offers (:class:`balancekit.RetryBudget`)."""

    def deposit(self) -> None: ...

    def try_withdraw(self) -> bool: ...


def default_classify(response: httpx.Response) -> bool:
    """A 5xx answer is a failure of the server; anything else (4xx included) a success."""
    return response.status_code < 500


class Rules:
    """The options of a balanced transport, checked, and the decisions they make.

    Complexity: every method O(1) but :meth:`target`, O(headers).

    Raises:
        TypeError, ValueError: a bad option, naming it and its value.
    """

    def __init__(
        self,
        pool: Pool,
        *,
        attempts: int,
        retry_budget: Budget | None,
        retry_methods: Iterable[str],
        retry_statuses: Iterable[int],
        key: Callable[[httpx.Request], Any] | None,
        classify: Callable[[httpx.Response], bool] | None,
    ) -> None:
        if not isinstance(pool, Pool):
            raise TypeError(f"pool must be a Pool, got {pool!r}")
        self.pool = pool
        self.attempts = check_count("attempts", attempts)
        if retry_budget is not None and not (
            callable(getattr(retry_budget, "deposit", None))
            and callable(getattr(retry_budget, "try_withdraw", None))
        ):
            raise TypeError(f"retry_budget must be a RetryBudget, got {retry_budget!r}")
        self.budget: Budget = RetryBudget() if retry_budget is None else retry_budget
        self.retry_methods = check_methods("retry_methods", retry_methods)
        statuses = check_statuses("retry_statuses", retry_statuses, empty=True)
        self.retry_statuses = frozenset(statuses)
        for name, value in (("key", key), ("classify", classify)):
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be None or a callable, got {value!r}")
        self.key = key
        self.classify = default_classify if classify is None else classify
        sticky = pool.sticky
        self.cookie_name = None if sticky is None else sticky.cookie_name
        self.cookie_max_age = None if sticky is None else sticky.ttl
        self._bases: dict[str, tuple[str, str, int | None]] = {}
        self._urls: dict[tuple[str, bytes, bytes], tuple[httpx.URL, HeaderRow]] = {}
        for server in pool.servers:  # members added later are checked at their first request
            self._base(server)

    # -- one request ---------------------------------------------------------------

    def start(self, request: httpx.Request) -> tuple[Any, str | None, int]:
        """``(hash key, sticky cookie, retry mode)`` for a new request; deposits in the
        budget. The mode is ``RETRY_ALL``, ``RETRY_CONNECT`` or ``RETRY_NONE``."""
        self.budget.deposit()
        key = None if self.key is None else self.key(request)
        cookie = None if self.cookie_name is None else read_cookie(request, self.cookie_name)
        if not isinstance(request.stream, httpx.ByteStream):  # a body read once: never again
            mode = RETRY_NONE
        elif request.method in self.retry_methods:
            mode = RETRY_ALL
        else:
            mode = RETRY_CONNECT
        return key, cookie, mode

    def next_lease(self, key: Any, cookie: str | None, tried: Collection[str]) -> Lease | None:
        """A lease for a retry, or ``None`` when no server is left (keep the last outcome).

        In panic the pool spreads first tries over unhealthy servers too; a
        retry goes to a healthy server not tried yet when there is one (O(n)
        then, a rare path), so it is not spent on another known-bad server.
        """
        pool = self.pool
        exclude = tried
        if pool.health is not None and pool.panic:
            exclude = _healthy_first(pool, tried)
        try:
            return pool.acquire(key, cookie=cookie, exclude=exclude)
        except LookupError:  # NoServerAvailable: every server went out meanwhile
            return None

    def target(self, request: httpx.Request, server: str) -> httpx.Request:
        """``request`` sent to ``server``: its scheme, host and port (and Host header)."""
        url, host = self._target_url(request.url, server)
        # The Host header replaced in a copy of the header rows, as
        # ``headers.copy()`` then ``headers["Host"] = ...`` would do, at half
        # their cost; a request without one Host header takes that general path.
        old = request.headers
        rows = [host if row[1] == b"host" else row for row in old._list] if _FAST_HOST else []
        if rows.count(host) == 1:
            headers: httpx.Headers = _new_headers(httpx.Headers)
            headers._list = rows
            headers._encoding = old.encoding
        else:
            headers = old.copy()
            headers["Host"] = host[2].decode("ascii")
        # A copy of the request with two fields replaced: Request() would copy
        # the headers a second time and re-check the method and URL, a third of
        # this call's cost; the request keeps its state in its __dict__.
        target: httpx.Request = _new_request(httpx.Request)
        fields = target.__dict__
        fields.update(request.__dict__)
        fields["url"] = url
        fields["headers"] = headers
        fields["extensions"] = dict(request.extensions)
        return target

    def _target_url(self, url: httpx.URL, server: str) -> tuple[httpx.URL, HeaderRow]:
        """The URL for ``server`` and its Host header row."""
        # Parsing a URL costs more than the rest of a try together, and clients
        # repeat their paths: keep the recent ones (bounded, cleared when full).
        cache_key = (server, url.raw_path, url.userinfo)
        found = self._urls.get(cache_key)
        if found is None:
            scheme, host, port = self._base(server)
            target = url.copy_with(scheme=scheme, host=host, port=port)
            found = (target, (b"Host", b"host", target.netloc))
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            self._urls[cache_key] = found
        return found

    def retry_response(self, mode: int, attempt: int, response: httpx.Response) -> bool:
        """Whether to retry after ``response``; withdraws from the budget when yes.

        Only in ``RETRY_ALL`` mode: an answer means the request was sent.
        """
        return (
            mode == RETRY_ALL
            and attempt < self.attempts
            and response.status_code in self.retry_statuses
            and self._withdraw()
        )

    def retry_error(self, mode: int, attempt: int, error: BaseException) -> bool:
        """Whether to retry after ``error``; withdraws from the budget when yes.

        ``RETRY_ALL``: any of ``RETRY_ERRORS``; ``RETRY_CONNECT``: a failure to
        connect only (``CONNECT_ERRORS``), after which nothing was sent. A
        read timeout or a connection closed mid-exchange may follow a request
        the server received, so it is retried only for ``retry_methods``.
        """
        if mode == RETRY_ALL:
            retryable = isinstance(error, RETRY_ERRORS)
        else:
            retryable = mode == RETRY_CONNECT and isinstance(error, CONNECT_ERRORS)
        return retryable and attempt < self.attempts and self._withdraw()

    def finish(
        self, request: httpx.Request, response: httpx.Response, lease: Lease, cookie: str | None
    ) -> bool:
        """Set the sticky cookie on ``response`` to ``request``; return whether it is a success."""
        if lease.cookie is not None and lease.cookie != cookie:
            secure = request.url.scheme == "https"
            items = [
                *response.headers.multi_items(),
                ("set-cookie", self._set_cookie(lease.cookie, secure)),
            ]
            response.headers = httpx.Headers(items)
        return bool(self.classify(response))

    def _withdraw(self) -> bool:
        return self.budget.try_withdraw()

    def _set_cookie(self, value: str, secure: bool) -> str:
        # SameSite=Lax: a route cookie needs no cross-site POST, and browsers
        # treat a cookie without SameSite inconsistently. Secure when the
        # client asked over https (the URL its cookie jar keys on), so the
        # cookie never travels in clear where it came encrypted.
        parts = [f"{self.cookie_name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
        if secure:
            parts.append("Secure")
        if self.cookie_max_age is not None:
            parts.append(f"Max-Age={int(self.cookie_max_age)}")
        return "; ".join(parts)

    def _base(self, server: str) -> tuple[str, str, int | None]:
        """``(scheme, host, port)`` of a server id, which must be an http(s) base URL.

        Raises:
            ValueError: naming the id.
        """
        base = self._bases.get(server)
        if base is None:
            base = self._bases[server] = _parse_base(server)
        return base

    def __repr__(self) -> str:
        return (
            f"attempts={self.attempts}, retry_budget={self.budget!r}, "
            f"retry_methods={sorted(self.retry_methods)!r}, "
            f"retry_statuses={sorted(self.retry_statuses)!r}, key={self.key!r}"
        )


def _parse_base(server: str) -> tuple[str, str, int | None]:
    try:
        url = httpx.URL(server) if "://" in server else None
        split_server(server)  # a port in range, IPv6 brackets closed
    except (httpx.InvalidURL, ValueError):
        url = None
    if (
        url is None
        or url.scheme not in ("http", "https")
        or not url.host
        # A path, a user or a query would be dropped from every request: refused.
        or url.path not in ("", "/")
        or url.userinfo
        or url.query
        or url.fragment
    ):
        raise ValueError(
            "server ids must be base URLs such as 'http://10.0.0.1:8080' "
            f"(http or https; no path, user or query), got {show(server)}"
        )
    return url.scheme, url.host, url.port


def _healthy_first(pool: Pool, tried: Collection[str]) -> Collection[str]:
    """Servers to exclude so that a retry lands on a healthy, untried one; ``tried``
    alone when there is none (then panic's choice stands). O(n)."""
    stats = pool.stats()
    healthy = {
        server
        for server, stat in stats.items()
        if stat.health is HealthState.HEALTHY and stat.effective_weight > 0 and server not in tried
    }
    if not healthy:
        return tried
    return [server for server in stats if server not in healthy]


def read_cookie(request: httpx.Request, name: str) -> str | None:
    """The value of cookie ``name`` in ``request``'s Cookie headers, or ``None``. O(header)."""
    for header in request.headers.get_list("cookie"):
        for pair in header.split(";"):
            found, sep, value = pair.strip().partition("=")
            if sep and found == name:
                return value.strip().strip('"')
    return None
