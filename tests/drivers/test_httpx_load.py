"""Thousands of requests through a balanced client while backends misbehave.

Four real backends on 127.0.0.1: a normal one (~5 ms), a slow one (~80 ms),
one answering 503 to everything (health checks included) for the first
1.5 s, and one killed 0.4 s into the run. With the transport's default
options and a health checker, no request may fail to the caller, the killed
backend must get no new request from a second after its death, and every
lease must be released at the end.

Each run lasts until the timeline is over and at least ``least`` requests
were sent: 800 in the default run (about 2 s), 2,500 in the slow one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import httpx
import pytest

import balancekit as bk
from balancekit.drivers.checks import AsyncHealthChecker, HealthChecker, http_probe
from balancekit.drivers.httpx import AsyncBalancedTransport, BalancedTransport

from .backends import Backend

WORKERS = 8
MOST = 1_000  # requests per worker, at most: every loop is bounded
SIZES = [
    pytest.param(800, id="800-requests"),
    pytest.param(2_500, id="2500-requests", marks=pytest.mark.slow),
]
KILL_AT = 0.4
FLAKY_FOR = 1.5


class Scenario:
    """The backends, the pool, and a timeline run beside the requests."""

    def __init__(self, backends: Callable[..., Backend]) -> None:
        self.normal = backends("normal", 0.005)
        self.slow = backends("slow", 0.080)
        self.flaky = backends("flaky", 0.005)
        self.doomed = backends("doomed", 0.005)
        self.flaky.status = self.flaky.health_status = 503
        servers = [b.url for b in (self.normal, self.slow, self.flaky, self.doomed)]
        tracker = bk.HealthTracker(
            interval=0.2,
            timeout=0.15,
            unhealthy_threshold=2,
            healthy_threshold=1,
            consecutive_failures=3,
            max_ejected_percent=50,
        )
        self.pool = bk.Pool(bk.LeastResponseTime(servers), health=tracker)
        self.errors: list[BaseException | int] = []
        self.over = threading.Event()  # the timeline has run to its end
        self.sent = 0
        self.doomed_at_grace: int | None = None
        self.killed_at = 0.0

    def timeline(self, stop: threading.Event) -> None:
        started = time.monotonic()
        stop.wait(KILL_AT)
        self.doomed.kill()
        self.killed_at = time.monotonic() - started
        stop.wait(1.0)
        self.doomed_at_grace = self.pool.stats()[self.doomed.url].requests
        stop.wait(max(0.0, FLAKY_FOR - (time.monotonic() - started)))
        self.flaky.status = self.flaky.health_status = 200
        self.over.set()

    def more(self, least: int) -> bool:
        """Whether a worker should send another request (the caller counts it)."""
        return not self.over.is_set() or self.sent < least

    def check(self, least: int) -> None:
        stats = self.pool.stats()
        assert self.sent >= least and self.over.is_set()
        assert self.errors == [], self.errors[:5]
        assert self.doomed_at_grace is not None, "the run ended before the grace period"
        assert stats[self.doomed.url].requests == self.doomed_at_grace
        assert all(s.in_flight == 0 for s in stats.values()), stats
        # the slow backend is used, but far less than the normal one
        assert stats[self.normal.url].requests > 2 * stats[self.slow.url].requests


@pytest.mark.parametrize("least", SIZES)
def test_threads_with_a_health_checker(backends: Callable[..., Backend], least: int) -> None:
    scene = Scenario(backends)
    stop = threading.Event()
    lock = threading.Lock()
    client = httpx.Client(
        transport=BalancedTransport(scene.pool), base_url="http://service", timeout=2.0
    )

    def worker() -> None:
        for _ in range(MOST):
            with lock:
                if not scene.more(least):
                    return
                scene.sent += 1
            try:
                response = client.get("/work")
                if response.status_code != 200:
                    scene.errors.append(response.status_code)
            except Exception as error:
                scene.errors.append(error)

    with client, HealthChecker(scene.pool, http_probe("/health")):
        clock = threading.Thread(target=scene.timeline, args=(stop,))
        clock.start()
        threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30.0)
        clock.join(5.0)  # the timeline lasts FLAKY_FOR at most
        stop.set()
    scene.check(least)


@pytest.mark.parametrize("least", SIZES)
def test_asyncio_with_an_async_health_checker(backends: Callable[..., Backend], least: int) -> None:
    scene = Scenario(backends)
    stop = threading.Event()

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in range(MOST):
            if not scene.more(least):
                return
            scene.sent += 1
            try:
                response = await client.get("/work")
                if response.status_code != 200:
                    scene.errors.append(response.status_code)
            except Exception as error:
                scene.errors.append(error)

    async def main() -> None:
        clock = threading.Thread(target=scene.timeline, args=(stop,))
        transport = AsyncBalancedTransport(scene.pool)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://service") as client,
            AsyncHealthChecker(scene.pool, http_probe("/health")),
        ):
            clock.start()
            await asyncio.wait_for(asyncio.gather(*(worker(client) for _ in range(WORKERS))), 30.0)
            await asyncio.to_thread(clock.join, 5.0)
        stop.set()

    asyncio.run(main())
    scene.check(least)
