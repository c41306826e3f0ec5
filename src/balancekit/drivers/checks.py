"""Health-check runners: the I/O loop that a Pool's active health checks ask for.

A :class:`~balancekit.Pool` with a :class:`~balancekit.HealthTracker` says which
probes are due (``pool.due_checks()``) and when to look again
(``pool.next_deadline()``); it never probes anything itself. The runners here
do that work: :class:`HealthChecker` in a thread, :class:`AsyncHealthChecker`
as an asyncio task. Both run the due probes concurrently (at most
``concurrency`` at once), give each the tracker's ``timeout``, report each
result with ``pool.record_check(server, ok)`` and sleep until the next
deadline, waking at once when stopped.

A probe is any callable ``probe(server) -> bool`` (a coroutine function for
the async runner). One that raises, or answers after the tracker's timeout,
is a failure; the loop goes on. :func:`http_probe` and :func:`tcp_probe`
build probes that work with both runners::

    with HealthChecker(pool, http_probe("/health")):
        ...  # the pool's health follows its servers

Complexity: each round costs ``due_checks()`` plus one task per due probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

from ..errors import UnknownServer
from ..pool import Pool
from ..validate import check_count
from ._probes import HTTPProbe, Probe, TCPProbe, http_probe, tcp_probe
from ._thread_loop import ThreadLoop

__all__ = [
    "AsyncHealthChecker",
    "HTTPProbe",
    "HealthChecker",
    "Probe",
    "TCPProbe",
    "http_probe",
    "tcp_probe",
]

SyncProbe = Callable[[str], bool]
AsyncProbe = Callable[[str], Awaitable[bool]]

_MAX_SLEEP = 0.5
"""Longest nap between rounds: a server added meanwhile is probed within this."""
_MIN_SLEEP = 0.005
"""Shortest nap when a deadline has passed but nothing is due (no busy loop)."""


class _Runner:
    """What both runners share: options, counters, the deadline arithmetic."""

    def __init__(self, pool: Pool, probe: object, concurrency: int) -> None:
        if not isinstance(pool, Pool):
            raise TypeError(f"pool must be a Pool, got {pool!r}")
        if pool.health is None:
            raise ValueError("a health checker needs a Pool created with health=HealthTracker(...)")
        if not callable(probe):
            raise TypeError(f"probe must be a callable probe(server) -> bool, got {probe!r}")
        self._pool = pool
        self._timeout = pool.health.timeout
        self._concurrency = check_count("concurrency", concurrency)
        self.probes = 0  # probes started
        self.failures = 0  # probes that answered False, raised or were late
        self.errors = 0  # probes that raised (counted in failures too)
        self.last_error: BaseException | None = None
        self._counting = threading.Lock()  # probes of the thread runner end in many threads

    def _count(self, *, failures: int = 0, error: BaseException | None = None) -> None:
        with self._counting:
            self.failures += failures
            if error is not None:
                self.errors += 1
                self.last_error = error

    @property
    def pool(self) -> Pool:
        """The pool whose health this runner keeps."""
        return self._pool

    def _finish(self, server: str, started: float, ok: bool) -> None:
        """Report a finished probe, unless it was late: the tracker counted that failure."""
        if self._pool.clock() - started >= self._timeout:
            self._count(failures=1)  # late: the tracker's timeout already said failure
            return
        if not ok:
            self._count(failures=1)
        with contextlib.suppress(UnknownServer):  # removed from the pool while probed
            self._pool.record_check(server, ok)

    def _failed(self, error: BaseException) -> bool:
        self._count(error=error)
        return False

    def _pause(self) -> float:
        """Seconds to sleep before the next round."""
        pool = self._pool
        deadline = pool.next_deadline()  # it applies what time has brought first
        if deadline is None:
            return _MAX_SLEEP
        return min(max(deadline - pool.clock(), _MIN_SLEEP), _MAX_SLEEP)

    def _describe(self, running: bool) -> str:
        return (
            f"({self._pool!r}, concurrency={self._concurrency}, "
            f"{'running' if running else 'stopped'}, probes={self.probes}, "
            f"failures={self.failures}, errors={self.errors})"
        )


class HealthChecker(_Runner):
    """Runs a Pool's active health probes in a background thread.

    >>> import balancekit as bk
    >>> pool = bk.Pool(bk.RoundRobin(["127.0.0.1:9"]), health=bk.HealthTracker())
    >>> with HealthChecker(pool, tcp_probe()) as checker:
    ...     checker.running
    True
    >>> checker.running
    False

    Args:
        pool: a Pool with a HealthTracker.
        probe: ``probe(server) -> bool``, or a :class:`Probe`.
        concurrency: most probes running at once; more wait their turn.

    A probe still running when its server is due again is not started twice
    (the tracker counts the timeout). ``probes``, ``failures`` and ``errors``
    count what happened; ``last_error`` keeps the last exception a probe raised.

    Raises:
        TypeError, ValueError: a bad argument, or a pool without health checks.
    """

    def __init__(self, pool: Pool, probe: SyncProbe | Probe, *, concurrency: int = 16) -> None:
        super().__init__(pool, probe, concurrency)
        self._probe = probe
        self._loop = ThreadLoop("HealthChecker", "balancekit-health", self._run)
        self._running: set[str] = set()  # servers with a probe started or queued, any run
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the thread is running."""
        return self._loop.running

    def start(self) -> None:
        """Start the thread.

        Raises:
            RuntimeError: it is already running.
        """
        self._loop.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread and wait up to ``timeout`` seconds for it; no error if stopped.

        Probes still running finish in the background and are not recorded;
        a server whose probe is still running is not probed again by a new
        :meth:`start` until that probe ends. Even with a short ``timeout`` the
        stopped thread starts no new round, so a restart never runs two loops.

        Raises:
            TypeError, ValueError: ``timeout`` is not ``None`` or a number >= 0
                (then the thread runs on).
        """
        self._loop.stop(timeout)

    def _run(self, stop: threading.Event) -> None:
        executor = ThreadPoolExecutor(self._concurrency, thread_name_prefix="balancekit-probe")
        try:
            while not stop.is_set():
                for server in self._pool.due_checks():
                    if stop.is_set():
                        break  # the tracker times the rest out, as for any stop
                    with self._lock:
                        if server in self._running:
                            continue
                        self._running.add(server)
                    self.probes += 1
                    started = self._pool.clock()
                    future = executor.submit(self._one, server, started, stop)
                    # Done or cancelled by the shutdown below: either way the server
                    # may be probed again (a cancelled probe never runs _one).
                    future.add_done_callback(functools.partial(self._forget, server))
                stop.wait(self._pause())
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            if isinstance(self._probe, Probe):
                # Not under a run started since: it uses the same probe.
                self._loop.unless_running(self._probe.close)

    def _forget(self, server: str, future: Future[None]) -> None:
        with self._lock:
            self._running.discard(server)

    def _one(self, server: str, started: float, stop: threading.Event) -> None:
        if stop.is_set():
            return
        remaining = self._timeout - (self._pool.clock() - started)
        if remaining <= 0:
            self._count(failures=1)  # waited too long for a free slot
            return
        try:
            probe = self._probe
            ok = probe.check(server, remaining) if isinstance(probe, Probe) else probe(server)
            ok = bool(ok)
        except Exception as error:
            ok = self._failed(error)
        if not stop.is_set():
            self._finish(server, started, ok)

    def __enter__(self) -> HealthChecker:
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
        return f"HealthChecker{self._describe(self.running)}"


class AsyncHealthChecker(_Runner):
    """Runs a Pool's active health probes as an asyncio task.

    ``start()`` and ``stop()`` are coroutines; ``async with`` runs the checker
    for the block. Each probe runs in its own task under
    ``asyncio.wait_for(..., tracker timeout)``, so a hung probe is cancelled.

    Args:
        pool: a Pool with a HealthTracker.
        probe: a coroutine function ``probe(server) -> bool``, or a :class:`Probe`.
        concurrency: most probes running at once; more wait their turn.

    Raises:
        TypeError, ValueError: a bad argument, or a pool without health checks.
    """

    def __init__(self, pool: Pool, probe: AsyncProbe | Probe, *, concurrency: int = 16) -> None:
        super().__init__(pool, probe, concurrency)
        if not isinstance(probe, Probe) and not inspect.iscoroutinefunction(probe):
            raise TypeError(f"probe must be a coroutine function or a Probe, got {probe!r}")
        self._probe = probe
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def running(self) -> bool:
        """Whether the task is running."""
        return self._task is not None

    async def start(self) -> None:
        """Start the task in the running event loop.

        Raises:
            RuntimeError: it is already running.
        """
        if self._task is not None:
            raise RuntimeError("AsyncHealthChecker is already running")
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(self._stop), name="balancekit-health")

    async def stop(self) -> None:
        """Stop the task, cancelling the probes still running; no error if stopped."""
        task, self._task = self._task, None
        if task is None:
            return
        assert self._stop is not None
        self._stop.set()
        await task

    async def _run(self, stop: asyncio.Event) -> None:
        gate = asyncio.Semaphore(self._concurrency)
        try:
            while not stop.is_set():
                for server in self._pool.due_checks():
                    if server not in self._tasks:
                        self.probes += 1
                        started = self._pool.clock()
                        self._tasks[server] = asyncio.create_task(self._one(server, started, gate))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._pause())
        finally:
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if isinstance(self._probe, Probe):
                await self._probe.aclose()

    async def _one(self, server: str, started: float, gate: asyncio.Semaphore) -> None:
        try:
            async with gate:
                remaining = self._timeout - (self._pool.clock() - started)
                if remaining <= 0:
                    self._count(failures=1)  # waited too long for a free slot
                    return
                try:
                    ok = bool(await asyncio.wait_for(self._call(server, remaining), remaining))
                except asyncio.TimeoutError:
                    self._count(failures=1)  # the tracker times it out on its own
                    return
                except Exception as error:
                    ok = self._failed(error)
            self._finish(server, started, ok)
        finally:
            self._tasks.pop(server, None)

    def _call(self, server: str, timeout: float) -> Awaitable[Any]:
        probe = self._probe
        if isinstance(probe, Probe):
            return probe.check_async(server, timeout)
        return probe(server)

    async def __aenter__(self) -> AsyncHealthChecker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"AsyncHealthChecker{self._describe(self.running)}"
