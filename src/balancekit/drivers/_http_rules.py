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
from ..validate import check_count
from ._validate import check_statuses

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_ERRORS",
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


_new_request = httpx.Request.__new__

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
        if isinstance(retry_methods, str):
            raise TypeError(
                f"retry_methods must be a collection of method names, got {retry_methods!r}"
            )
        self.retry_methods = frozenset(str(m).upper() for m in retry_methods)
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
        self._urls: dict[tuple[str, bytes, bytes], tuple[httpx.URL, str]] = {}

    # -- one request ---------------------------------------------------------------

    def start(self, request: httpx.Request) -> tuple[Any, str | None, bool]:
        """``(hash key, sticky cookie, may retry)`` for a new request; deposits in the budget."""
        self.budget.deposit()
        key = None if self.key is None else self.key(request)
        cookie = None if self.cookie_name is None else read_cookie(request, self.cookie_name)
        retryable = request.method in self.retry_methods and isinstance(
            request.stream,
            httpx.ByteStream,  # a body that can be sent again
        )
        return key, cookie, retryable

    def acquire(self, key: Any, cookie: str | None, tried: Collection[str]) -> Lease:
        """A lease on a server, preferring those not in ``tried``."""
        return self.pool.acquire(key, cookie=cookie, exclude=tried)

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
            return self.acquire(key, cookie, exclude)
        except LookupError:  # NoServerAvailable: every server went out meanwhile
            return None

    def target(self, request: httpx.Request, server: str) -> httpx.Request:
        """``request`` sent to ``server``: its scheme, host and port (and Host header)."""
        url, host = self._target_url(request.url, server)
        headers = request.headers.copy()
        headers["Host"] = host
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

    def _target_url(self, url: httpx.URL, server: str) -> tuple[httpx.URL, str]:
        """The URL for ``server`` and its Host header."""
        # Parsing a URL costs more than the rest of a try together, and clients
        # repeat their paths: keep the recent ones (bounded, cleared when full).
        cache_key = (server, url.raw_path, url.userinfo)
        found = self._urls.get(cache_key)
        if found is None:
            scheme, host, port = self._base(server)
            target = url.copy_with(scheme=scheme, host=host, port=port)
            found = (target, target.netloc.decode("ascii"))
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            self._urls[cache_key] = found
        return found

    def retry_response(self, retryable: bool, attempt: int, response: httpx.Response) -> bool:
        """Whether to retry after ``response``; withdraws from the budget when yes."""
        return (
            retryable
            and attempt < self.attempts
            and response.status_code in self.retry_statuses
            and self._withdraw()
        )

    def retry_error(self, retryable: bool, attempt: int, error: BaseException) -> bool:
        """Whether to retry after ``error``; withdraws from the budget when yes."""
        return (
            retryable
            and attempt < self.attempts
            and isinstance(error, RETRY_ERRORS)
            and self._withdraw()
        )

    def finish(self, response: httpx.Response, lease: Lease, cookie: str | None) -> bool:
        """Set the sticky cookie on ``response``; return whether it is a success."""
        if lease.cookie is not None and lease.cookie != cookie:
            items = [
                *response.headers.multi_items(),
                ("set-cookie", self._set_cookie(lease.cookie)),
            ]
            response.headers = httpx.Headers(items)
        return bool(self.classify(response))

    def _withdraw(self) -> bool:
        return self.budget.try_withdraw()

    def _set_cookie(self, value: str) -> str:
        parts = [f"{self.cookie_name}={value}", "Path=/", "HttpOnly"]
        if self.cookie_max_age is not None:
            parts.append(f"Max-Age={int(self.cookie_max_age)}")
        return "; ".join(parts)

    def _base(self, server: str) -> tuple[str, str, int | None]:
        base = self._bases.get(server)
        if base is None:
            url = httpx.URL(server) if "://" in server else None
            if url is None or url.scheme not in ("http", "https") or not url.host:
                raise ValueError(
                    f"server ids must be base URLs such as 'http://10.0.0.1:8080', got {server!r}"
                )
            base = self._bases[server] = (url.scheme, url.host, url.port)
        return base

    def __repr__(self) -> str:
        return (
            f"attempts={self.attempts}, retry_budget={self.budget!r}, "
            f"retry_methods={sorted(self.retry_methods)!r}, "
            f"retry_statuses={sorted(self.retry_statuses)!r}, key={self.key!r}"
        )


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
