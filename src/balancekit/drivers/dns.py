"""DNS discovery: resolve a name into servers and keep a Pool's membership current.

:func:`resolve` turns a host name and port into server ids with the system
resolver (``getaddrinfo``, so ``/etc/hosts`` and the resolver's own address
ordering apply). :class:`DNSDiscovery` resolves on demand (:meth:`refresh`)
and, once started, every ``interval`` seconds in a thread, handing each
result to ``pool.update(servers)``: new addresses join (and slow-start),
vanished ones drain. A resolution that fails, or finds no address, changes
nothing: the Pool keeps its last good membership, and the failure is
reported in the returned :class:`Resolution`, counted, passed to the
``on_error`` callback and logged (a warning on the ``balancekit.drivers.dns``
logger when a run of failures starts, an info line when the name resolves
again); it is never raised from the background thread.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

from ..events import StateChange
from ..validate import MAX_SECONDS, check_range, show
from ._address import join_server
from ._thread_loop import ThreadLoop
from ._validate import check_family, check_host

__all__ = ["DNSDiscovery", "Resolution", "resolve"]

_log = logging.getLogger(__name__)


def resolve(host: str, port: int, *, scheme: str | None = None, family: int = 0) -> list[str]:
    """The server ids of ``host``'s addresses, in the resolver's order, without repeats.

    Ids are ``"ip:port"``, or ``"scheme://ip:port"`` with a ``scheme``; an
    IPv6 address is put in brackets. ``family`` may restrict the answer to
    ``socket.AF_INET`` or ``socket.AF_INET6`` (0: both).

    >>> resolve("127.0.0.1", 8080, scheme="http")
    ['http://127.0.0.1:8080']
    >>> resolve("::1", 53, family=socket.AF_INET6)
    ['[::1]:53']

    Complexity: one ``getaddrinfo`` call (blocking: it may query DNS), then
    O(addresses).

    Raises:
        TypeError, ValueError: a bad argument, naming it and its value: a
            ``host`` that is neither an IP address nor a DNS name (a port,
            scheme or path in it included), a ``port`` outside [1, 65535], a
            ``scheme`` that is not letters, a ``family`` other than
            ``socket.AF_UNSPEC`` (0), ``AF_INET`` and ``AF_INET6``.
        OSError: (``socket.gaierror``) the name does not resolve.
    """
    _check_target(host, port, scheme, family)
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    found: dict[str, None] = {}
    for _, _, _, _, address in infos:
        found[join_server(str(address[0]), port, scheme)] = None
    return list(found)


def _check_target(host: object, port: object, scheme: object, family: object) -> None:
    check_host(host)
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int in [1, 65535], got {show(port)}")
    if not 0 < port < 65536:
        raise ValueError(f"port must be an int in [1, 65535], got {show(port)}")
    if scheme is not None and not isinstance(scheme, str):
        raise TypeError(f"scheme must be None or letters such as 'http', got {show(scheme)}")
    if scheme is not None and not scheme.isalpha():
        raise ValueError(f"scheme must be None or letters such as 'http', got {show(scheme)}")
    check_family(family)


class Updatable(Protocol):
    """What discovery needs of a pool: ``Pool.update``."""

    def update(self, servers: Iterable[str]) -> list[StateChange]: ...


@dataclass(frozen=True)
class Resolution:
    """What one :meth:`DNSDiscovery.refresh` found and did.

    ``servers`` is the answer (empty when it failed), ``changes`` what
    ``pool.update`` returned, ``error`` the failure (then the Pool was left
    as it was).
    """

    servers: tuple[str, ...]
    changes: tuple[StateChange, ...] = ()
    error: Exception | None = field(default=None)

    @property
    def ok(self) -> bool:
        """Whether the name resolved and the pool was updated."""
        return self.error is None


class DNSDiscovery:
    """Keeps a Pool's members equal to a host name's addresses.

    Args:
        pool: a :class:`~balancekit.Pool` (anything with ``update(servers)``).
        host: the name to resolve.
        port: the port of every server.
        scheme: ``"http"`` or ``"https"`` to make base-URL ids (for the httpx
            transport); ``None`` for ``"ip:port"`` ids.
        interval: seconds between two resolutions once started, in (0, 1e9].
        family: ``socket.AF_INET`` or ``socket.AF_INET6`` to keep one family;
            ``socket.AF_UNSPEC`` (0) both.
        on_error: ``on_error(error)``, called with the exception of every failed
            resolution, in the thread that resolved, after the failure is
            recorded; an exception it raises is logged, never propagated.

    ``refreshes`` and ``failures`` count resolutions, ``consecutive_failures``
    the failures since the last success; ``last`` is the latest
    :class:`Resolution`. A failure is also logged: a warning on the
    ``balancekit.drivers.dns`` logger at the first of a run of failures (the
    rest at debug level), an info line when the name resolves again.

    Raises:
        TypeError, ValueError: a bad argument, naming it and its value.
    """

    def __init__(
        self,
        pool: Updatable,
        host: str,
        port: int,
        *,
        scheme: str | None = None,
        interval: float = 30.0,
        family: int = 0,
        on_error: Callable[[Exception], object] | None = None,
    ) -> None:
        if not callable(getattr(pool, "update", None)):
            raise TypeError(f"pool must have an update(servers) method (a Pool), got {pool!r}")
        if on_error is not None and not callable(on_error):
            raise TypeError(f"on_error must be None or a callable(error), got {on_error!r}")
        _check_target(host, port, scheme, family)
        self._interval = check_range("interval", interval, 0.0, MAX_SECONDS, low_open=True)
        self._pool = pool
        self._host = host
        self._port = port
        self._scheme = scheme
        self._family = family
        self._loop = ThreadLoop("DNSDiscovery", "balancekit-dns", self._run)
        self._lock = threading.Lock()  # one refresh at a time
        self._on_error = on_error
        self.refreshes = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last: Resolution | None = None

    def refresh(self) -> Resolution:
        """Resolve now and update the pool; on failure leave it as it was.

        Returns the :class:`Resolution`; never raises for a resolution
        failure or a refused update (both are in ``error``, logged and handed
        to ``on_error``).
        """
        result = self._refresh(None)
        assert result is not None  # only a stopped run's refresh is skipped
        return result

    def _refresh(self, stop: threading.Event | None) -> Resolution | None:
        """:meth:`refresh`, skipped (``None``) when ``stop``, the event of a
        background run, is set by the time no other refresh runs."""
        with self._lock:
            if stop is not None and stop.is_set():
                return None
            self.refreshes += 1
            try:
                servers = resolve(self._host, self._port, scheme=self._scheme, family=self._family)
                if not servers:
                    raise OSError(f"{self._host!r} resolved to no address")
                changes = self._pool.update(servers)
                result = Resolution(tuple(servers), tuple(changes))
            except (OSError, ValueError, TypeError, LookupError) as error:
                self.failures += 1
                self.consecutive_failures += 1
                result = Resolution((), (), error)
                # One warning per outage, not one per interval: the counters keep the rest.
                level = logging.WARNING if self.consecutive_failures == 1 else logging.DEBUG
                _log.log(
                    level,
                    "resolving %r failed (%s: %s); the pool keeps its last good membership",
                    self._host,
                    type(error).__name__,
                    error,
                )
            else:
                if self.consecutive_failures:
                    _log.info(
                        "%r resolves again after %d failed resolutions",
                        self._host,
                        self.consecutive_failures,
                    )
                self.consecutive_failures = 0
            self.last = result
        # Outside the lock: the callback may call refresh() itself.
        if result.error is not None and self._on_error is not None:
            try:
                self._on_error(result.error)
            except Exception:
                _log.exception("on_error of DNSDiscovery(%r) raised", self._host)
        return result

    @property
    def running(self) -> bool:
        """Whether the background thread is running."""
        return self._loop.running

    def start(self) -> None:
        """Refresh now in a thread, then every ``interval`` seconds until :meth:`stop`.

        Raises:
            RuntimeError: it is already running.
        """
        self._loop.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread, waiting up to ``timeout`` seconds (a lookup in progress
        finishes first); no error if stopped.

        Even with a short ``timeout`` the stopped thread starts no new lookup
        (one in progress finishes and is applied), so a :meth:`start` right
        after never leaves two threads refreshing. ``on_error`` may call it
        (it then does not wait).

        Raises:
            TypeError, ValueError: ``timeout`` is not ``None`` or a number >= 0
                (then the thread runs on).
        """
        self._loop.stop(timeout)

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._refresh(stop)
            stop.wait(self._interval)

    @property
    def host(self) -> str:
        """The name resolved."""
        return self._host

    @property
    def port(self) -> int:
        """The servers' port."""
        return self._port

    @property
    def interval(self) -> float:
        """Seconds between resolutions once started."""
        return self._interval

    def __enter__(self) -> DNSDiscovery:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"DNSDiscovery({self._host!r}, {self._port!r}, scheme={self._scheme!r}, "
            f"interval={self._interval!r}, {'running' if self.running else 'stopped'}, "
            f"refreshes={self.refreshes}, failures={self.failures})"
        )
