"""Probes for the health-check runners: TCP connect and HTTP status, sync and async.

A :class:`Probe` serves both runners: ``check(server, timeout)`` in a
thread, ``check_async(server, timeout)`` in asyncio; the runner passes the
tracker's timeout. Called as ``probe(server)`` it uses its own ``timeout``.
Public names are re-exported by :mod:`balancekit.drivers.checks`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ..validate import check_positive
from ._address import split_server
from ._validate import check_method, check_statuses

if TYPE_CHECKING:
    import httpx

__all__ = ["HTTPProbe", "Probe", "TCPProbe", "http_probe", "tcp_probe"]


class Probe(abc.ABC):
    """A probe usable by both runners: ``check`` in a thread, ``check_async`` in asyncio.

    The runners pass the tracker's timeout as ``timeout``; called as
    ``probe(server)`` it uses its own ``timeout``.
    """

    timeout: float

    def __call__(self, server: str) -> bool:
        return self.check(server, self.timeout)

    @abc.abstractmethod
    def check(self, server: str, timeout: float) -> bool:
        """Probe ``server`` within ``timeout`` seconds; ``True`` when it passes."""

    @abc.abstractmethod
    async def check_async(self, server: str, timeout: float) -> bool:
        """The same probe, awaited."""

    def close(self) -> None:  # noqa: B027 - optional: most probes hold nothing
        """Release the connections the sync probe keeps (the runner calls this at stop)."""

    async def aclose(self) -> None:  # noqa: B027 - optional: most probes hold nothing
        """Release the connections the async probe keeps (the runner calls this at stop)."""


class TCPProbe(Probe):
    """Passes when a TCP connection to the server's host and port opens in time."""

    def __init__(self, timeout: float = 2.0) -> None:
        self.timeout = check_positive("timeout", timeout)

    def check(self, server: str, timeout: float) -> bool:
        _, host, port = split_server(server)
        with socket.create_connection((host, port), timeout=timeout):
            return True

    async def check_async(self, server: str, timeout: float) -> bool:
        _, host, port = split_server(server)
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.close()
        with contextlib.suppress(OSError):  # a reset at once: the connection did open
            await writer.wait_closed()
        return True

    def __repr__(self) -> str:
        return f"TCPProbe(timeout={self.timeout!r})"


class HTTPProbe(Probe):
    """Passes when ``method path`` answers with an accepted status in time.

    Server ids are base URLs; a bare ``"host:port"`` is taken as ``http://``.
    One httpx client per mode is kept (connections are reused between probes)
    until :meth:`close` / :meth:`aclose`.
    """

    def __init__(
        self,
        path: str = "/health",
        *,
        method: str = "GET",
        statuses: Iterable[int] = (200,),
        headers: Mapping[str, str] | None = None,
        timeout: float = 2.0,
    ) -> None:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"path must be a str starting with '/', got {path!r}")
        checked_method = check_method("method", method)
        accepted = check_statuses("statuses", statuses, empty=False)
        import httpx  # the httpx extra is needed only by this probe

        self._httpx = httpx
        self.path = path
        self.method = checked_method
        self.statuses = accepted
        self.headers = dict(headers or {})
        self.timeout = check_positive("timeout", timeout)
        self._client: httpx.Client | None = None
        self._async_client: httpx.AsyncClient | None = None
        self._lock = threading.Lock()

    def _url(self, server: str) -> str:
        base = server if "://" in server else f"http://{server}"
        return base.rstrip("/") + self.path

    def check(self, server: str, timeout: float) -> bool:
        with self._lock:
            if self._client is None:
                self._client = self._httpx.Client(headers=self.headers)
            client = self._client
        response = client.request(self.method, self._url(server), timeout=timeout)
        return response.status_code in self.statuses

    async def check_async(self, server: str, timeout: float) -> bool:
        if self._async_client is None:
            self._async_client = self._httpx.AsyncClient(headers=self.headers)
        response = await self._async_client.request(self.method, self._url(server), timeout=timeout)
        return response.status_code in self.statuses

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        client, self._async_client = self._async_client, None
        if client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return (
            f"HTTPProbe({self.path!r}, method={self.method!r}, statuses={self.statuses!r}, "
            f"timeout={self.timeout!r})"
        )


def http_probe(
    path: str = "/health",
    *,
    method: str = "GET",
    statuses: Iterable[int] = (200,),
    headers: Mapping[str, str] | None = None,
    timeout: float = 2.0,
) -> HTTPProbe:
    """An HTTP probe: ``method path`` must answer with a status in ``statuses``.

    The default accepts 200 only, as Envoy's HTTP health check does; pass
    ``statuses=range(200, 400)`` to accept any 2xx or 3xx. Redirects are not
    followed. ``timeout`` applies when the probe is called directly; the
    runners use the tracker's. Needs the ``httpx`` extra.

    >>> http_probe("/ready", statuses=range(200, 300))
    HTTPProbe('/ready', method='GET', statuses=range(200, 300), timeout=2.0)

    Raises:
        ValueError: ``path`` does not start with ``/``, a method that is no
            RFC 9110 token, a bad timeout;
            ``statuses`` empty or holding a status outside [100, 599] (such a
            probe could never pass).
        TypeError: ``statuses`` is not a collection of ints, ``method`` not a str.
    """
    return HTTPProbe(path, method=method, statuses=statuses, headers=headers, timeout=timeout)


def tcp_probe(*, timeout: float = 2.0) -> TCPProbe:
    """A TCP probe: passes when a connection to the server opens.

    Server ids are ``"host:port"`` or base URLs.

    >>> tcp_probe(timeout=0.5)
    TCPProbe(timeout=0.5)

    Raises:
        ValueError, TypeError: a bad ``timeout``.
    """
    return TCPProbe(timeout)
