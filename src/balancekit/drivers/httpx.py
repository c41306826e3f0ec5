"""Balanced httpx transports: a Pool chooses the server of every request.

>>> import balancekit as bk, httpx
>>> from balancekit.drivers.httpx import BalancedTransport
>>> pool = bk.Pool(bk.LeastResponseTime(["http://10.0.0.1:8080", "http://10.0.0.2:8080"]))
>>> client = httpx.Client(transport=BalancedTransport(pool), base_url="http://service")
>>> client.close()

Server ids are base URLs (http or https): the pool's members are checked
when the transport is made, a member added later at its first request. A
request's scheme, host and port (and its Host header) are replaced by the
chosen server's; the path and query stay. Each server gets its own inner
transport (its own pooled connections).

- **Leases**: the lease stays open until the response is closed, so a
  streamed body counts as in flight; ``client.get()`` closes the response
  once the body is read. An exception anywhere releases it.
- **Outcomes**: a connection error, a timeout or a 5xx is a failure of the
  server, a 4xx a success; ``classify(response) -> bool`` overrides the
  verdict on responses. The Pool's health tracker sees every outcome.
- **Retries**: up to ``attempts`` tries in all, each on a server not tried
  yet for this request (``exclude=``), only for ``retry_methods`` (the
  idempotent ones), only after a connection error, a timeout or a status in
  ``retry_statuses``, and only while the ``retry_budget`` allows. One
  exception: a failure to *connect* (``httpx.ConnectError``,
  ``httpx.ConnectTimeout``) is retried for every method, a POST included,
  since the request was never sent (as Envoy's ``connect-failure`` and
  gRPC's transparent retries). When retries run out the caller gets the
  last response or exception, unchanged.
- **Timeouts**: httpx's timeout for the request applies to each try; one
  that expires is a failure. A request the caller cancels (or interrupts)
  releases its lease abandoned (``ok=None``): no verdict on the server.
- **Sticky sessions**: with a ``StickySession`` in the pool, the cookie is
  read from the request and set on the response (``HttpOnly``,
  ``SameSite=Lax``, ``Secure`` for an https request); an httpx client's
  cookie jar sends it back. ``key(request)`` picks the hash key for hash strategies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from ..lease import Lease
from ..pool import Pool
from ._http_rules import IDEMPOTENT_METHODS, Budget, Rules
from ._lease_stream import (
    AsyncLeaseStream,
    LeaseStream,
    adiscard,
    async_stream,
    discard,
    end_lease,
    sync_stream,
)

__all__ = ["AsyncBalancedTransport", "BalancedTransport"]

SyncTransportOption = httpx.BaseTransport | Callable[[str], httpx.BaseTransport] | None
AsyncTransportOption = httpx.AsyncBaseTransport | Callable[[str], httpx.AsyncBaseTransport] | None


class _Transports:
    """One inner transport per server, made on first use; closed together."""

    def __init__(self, option: object, default: Callable[[], Any], kind: type) -> None:
        self._shared: Any
        self._factory: Callable[[str], Any] | None
        if option is None:
            self._shared, self._factory = None, lambda server: default()
        elif isinstance(option, kind):
            self._shared, self._factory = option, None
        elif callable(option):
            self._shared, self._factory = None, option
        else:
            raise TypeError(
                f"transport must be None, an {kind.__name__} or a factory(server), got {option!r}"
            )
        self._by_server: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, server: str) -> Any:
        if self._shared is not None:
            return self._shared
        transport = self._by_server.get(server)
        if transport is None:
            with self._lock:
                transport = self._by_server.get(server)
                if transport is None:
                    assert self._factory is not None
                    transport = self._by_server[server] = self._factory(server)
        return transport

    def __repr__(self) -> str:
        shared = "" if self._shared is None else f"shared={self._shared!r}, "
        return f"_Transports({shared}servers={sorted(self._by_server)!r})"

    def all(self) -> list[Any]:
        with self._lock:
            made = list(self._by_server.values())
            self._by_server.clear()
        return made if self._shared is None else [self._shared]


class BalancedTransport(httpx.BaseTransport):
    """An httpx transport that sends each request to a server chosen by ``pool``.

    Args:
        pool: the :class:`~balancekit.Pool`; its server ids are base URLs.
        attempts: tries in all per request (1: no retry).
        retry_budget: a :class:`~balancekit.RetryBudget` paying for retries; a
            fresh one by default (shared by all requests of this transport).
        retry_methods: methods that may be retried after any retryable error or
            status (default: the idempotent ones); any method is retried after
            a failure to connect. Names are RFC 9110 tokens, upper-cased.
        retry_statuses: statuses after which a retry is tried.
        key: ``key(request)`` gives the hash key (hash strategies need one).
        classify: ``classify(response) -> bool``, the verdict on a response
            (default: below 500 is a success).
        transport: the inner transport: one shared ``httpx.BaseTransport``, or
            a factory ``transport(server)`` called once per server (default:
            an ``httpx.HTTPTransport()`` per server).

    Complexity: per request the pool's acquire and release plus O(headers);
    one acquire per try.

    Raises:
        TypeError, ValueError: a bad option, naming it and its value; a pool
            member that is not an http(s) base URL, naming it.
    """

    def __init__(
        self,
        pool: Pool,
        *,
        attempts: int = 3,
        retry_budget: Budget | None = None,
        retry_methods: Iterable[str] = IDEMPOTENT_METHODS,
        retry_statuses: Iterable[int] = (502, 503, 504),
        key: Callable[[httpx.Request], Any] | None = None,
        classify: Callable[[httpx.Response], bool] | None = None,
        transport: SyncTransportOption = None,
    ) -> None:
        self._rules = Rules(
            pool,
            attempts=attempts,
            retry_budget=retry_budget,
            retry_methods=retry_methods,
            retry_statuses=retry_statuses,
            key=key,
            classify=classify,
        )
        self._transports = _Transports(transport, httpx.HTTPTransport, httpx.BaseTransport)

    @property
    def pool(self) -> Pool:
        """The pool choosing the servers."""
        return self._rules.pool

    @property
    def retry_budget(self) -> Budget:
        """The retry budget."""
        return self._rules.budget

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        rules = self._rules
        key, cookie, mode = rules.start(request)
        tried: list[str] = []
        lease: Lease | None = rules.pool.acquire(key, cookie=cookie, exclude=tried)
        while lease is not None:
            server = lease.server
            tried.append(server)
            target = _target(rules, request, lease)
            try:
                response: httpx.Response = self._transports.get(server).handle_request(target)
            except BaseException as error:
                end_lease(lease, error)
                if rules.retry_error(mode, len(tried), error):
                    lease = rules.next_lease(key, cookie, tried)
                    if lease is not None:
                        continue
                raise
            try:
                ok = rules.finish(request, response, lease, cookie)
                retry = None
                if rules.retry_response(mode, len(tried), response):
                    retry = rules.next_lease(key, cookie, tried)
            except BaseException as error:
                response.close()
                end_lease(lease, error)
                raise
            if retry is None:
                response.stream = LeaseStream(sync_stream(response), lease, ok)
                return response
            try:
                discard(response)
            except BaseException:
                retry.release(ok=None)
                raise
            finally:
                lease.release(ok=ok)
            lease = retry
        raise AssertionError("unreachable: the loop returns or raises")

    def close(self) -> None:
        for transport in self._transports.all():
            transport.close()

    def __repr__(self) -> str:
        return f"BalancedTransport({self._rules.pool!r}, {self._rules!r})"


class AsyncBalancedTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of :class:`BalancedTransport`: same options, same rules.

    The default inner transport is an ``httpx.AsyncHTTPTransport()`` per
    server. A cancelled request (``asyncio.CancelledError``) releases its
    lease abandoned.
    """

    def __init__(
        self,
        pool: Pool,
        *,
        attempts: int = 3,
        retry_budget: Budget | None = None,
        retry_methods: Iterable[str] = IDEMPOTENT_METHODS,
        retry_statuses: Iterable[int] = (502, 503, 504),
        key: Callable[[httpx.Request], Any] | None = None,
        classify: Callable[[httpx.Response], bool] | None = None,
        transport: AsyncTransportOption = None,
    ) -> None:
        self._rules = Rules(
            pool,
            attempts=attempts,
            retry_budget=retry_budget,
            retry_methods=retry_methods,
            retry_statuses=retry_statuses,
            key=key,
            classify=classify,
        )
        self._transports = _Transports(
            transport, httpx.AsyncHTTPTransport, httpx.AsyncBaseTransport
        )

    @property
    def pool(self) -> Pool:
        """The pool choosing the servers."""
        return self._rules.pool

    @property
    def retry_budget(self) -> Budget:
        """The retry budget."""
        return self._rules.budget

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        rules = self._rules
        key, cookie, mode = rules.start(request)
        tried: list[str] = []
        lease: Lease | None = rules.pool.acquire(key, cookie=cookie, exclude=tried)
        while lease is not None:
            server = lease.server
            tried.append(server)
            target = _target(rules, request, lease)
            try:
                inner = self._transports.get(server)
                response: httpx.Response = await inner.handle_async_request(target)
            except BaseException as error:
                end_lease(lease, error)
                if rules.retry_error(mode, len(tried), error):
                    lease = rules.next_lease(key, cookie, tried)
                    if lease is not None:
                        continue
                raise
            try:
                ok = rules.finish(request, response, lease, cookie)
                retry = None
                if rules.retry_response(mode, len(tried), response):
                    retry = rules.next_lease(key, cookie, tried)
            except BaseException as error:
                await response.aclose()
                end_lease(lease, error)
                raise
            if retry is None:
                response.stream = AsyncLeaseStream(async_stream(response), lease, ok)
                return response
            try:
                await adiscard(response)
            except BaseException:
                retry.release(ok=None)
                raise
            finally:
                lease.release(ok=ok)
            lease = retry
        raise AssertionError("unreachable: the loop returns or raises")

    async def aclose(self) -> None:
        for transport in self._transports.all():
            await transport.aclose()

    def __repr__(self) -> str:
        return f"AsyncBalancedTransport({self._rules.pool!r}, {self._rules!r})"


def _target(rules: Rules, request: httpx.Request, lease: Lease) -> httpx.Request:
    """The request for the lease's server.

    A server id that is no http(s) URL (a member added after the transport
    was made, by ``pool.update`` say) raises a ``ValueError`` naming it, and
    its lease is released as a *failure*: the server can serve no request
    through this transport, so its health should count it (passive ejection
    then takes it out of rotation), where an abandoned lease would leave it
    picked again and again. The request was not sent; it is not retried, so
    the misconfiguration reaches the caller.
    """
    try:
        return rules.target(request, lease.server)
    except BaseException as error:
        end_lease(lease, error)  # an interrupt meanwhile: abandoned
        raise
