"""One healthy backend of three: the documented client loses no request.

Three real backends on 127.0.0.1: one good, one answering 503 to everything
(health checks included), and a port that refuses connections. With 1 of 3
healthy a Pool with the default ``panic_threshold`` (0.5) is in panic and
spreads first tries over all three; the client documented in README.md and
docs/http-client.md sets ``panic_threshold=0``, so every request goes to the
healthy backend once the health checker has seen the others fail. Without
that, retries still prefer the healthy backend: a request never spends a
retry on the second bad backend while the good one is untried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

import balancekit as bk
from balancekit.drivers.checks import AsyncHealthChecker, HealthChecker, http_probe
from balancekit.drivers.httpx import AsyncBalancedTransport, BalancedTransport

from .backends import Backend, free_port, wait_until

SIZES = [
    pytest.param(300, id="300-requests"),
    pytest.param(3_000, id="3000-requests", marks=pytest.mark.slow),
]


class OneOfThree:
    """A good backend, a 503 one and a refused port, as base URLs in that order."""

    def __init__(self, backends: Callable[..., Backend]) -> None:
        self.good = backends("good")
        self.failing = backends("failing")
        self.failing.status = self.failing.health_status = 503
        self.refused = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        self.servers = [self.good.url, self.failing.url, self.refused]

    def pool(self, strategy: type[bk.Balancer], **options: object) -> bk.Pool:
        # A probe may take most of a second on a loaded machine: the good backend must
        # not miss two of them (the bad ones fail at once: a 503, a refused port).
        tracker = bk.HealthTracker(interval=1.0, timeout=0.9, unhealthy_threshold=2)
        return bk.Pool(strategy(self.servers), health=tracker, **options)  # type: ignore[arg-type]

    @staticmethod
    def bad_ones_seen(pool: bk.Pool) -> bool:
        """Whether the pool's tracker has marked both bad servers unhealthy."""
        states = [stats.health for stats in pool.stats().values()]
        return states.count(bk.HealthState.HEALTHY) == 1


@pytest.mark.parametrize("strategy", [bk.LeastResponseTime, bk.RoundRobin])
@pytest.mark.parametrize("count", SIZES)
def test_the_documented_client_loses_no_request(
    backends: Callable[..., Backend], strategy: type[bk.Balancer], count: int
) -> None:
    scene = OneOfThree(backends)
    pool = scene.pool(strategy, panic_threshold=0)
    client = httpx.Client(transport=BalancedTransport(pool), base_url="http://api", timeout=2.0)
    failures: list[int | Exception] = []
    with client, HealthChecker(pool, http_probe("/health")):
        assert wait_until(lambda: scene.bad_ones_seen(pool), timeout=15.0)
        assert not pool.panic
        before = {server: stats.requests for server, stats in pool.stats().items()}
        for _ in range(count):
            try:
                response = client.get("/work")
                if response.status_code != 200:
                    failures.append(response.status_code)
            except httpx.HTTPError as error:
                failures.append(error)
        after = pool.stats()
    assert failures == []
    assert after[scene.good.url].requests - before[scene.good.url] == count
    assert after[scene.failing.url].requests == before[scene.failing.url]
    assert after[scene.refused].requests == before[scene.refused]
    assert scene.failing.requests == before[scene.failing.url]


def test_the_documented_async_client_loses_no_request(backends: Callable[..., Backend]) -> None:
    scene = OneOfThree(backends)
    pool = scene.pool(bk.RoundRobin, panic_threshold=0)
    failures: list[int | Exception] = []

    async def main() -> None:
        transport = AsyncBalancedTransport(pool)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://api", timeout=2.0) as client,
            AsyncHealthChecker(pool, http_probe("/health")),
        ):
            for _ in range(750):  # bounded: about 15 s at most
                if scene.bad_ones_seen(pool):
                    break
                await asyncio.sleep(0.02)

            async def worker() -> None:  # 10 workers of 30 requests: load one backend can take
                for _ in range(30):
                    try:
                        response = await client.get("/work")
                        if response.status_code != 200:
                            failures.append(response.status_code)
                    except httpx.HTTPError as error:
                        failures.append(error)

            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(10))), 20.0)

    asyncio.run(main())
    assert scene.bad_ones_seen(pool)
    assert failures == []


def test_in_panic_a_retry_goes_to_the_healthy_server(backends: Callable[..., Backend]) -> None:
    """attempts=2: the one retry must go to the good backend, never to the other bad one."""
    scene = OneOfThree(backends)
    pool = scene.pool(bk.RoundRobin)  # default panic_threshold: in panic with 1 of 3 healthy
    budget = bk.RetryBudget(ratio=2.0)  # room for every retry: the test is about where they go
    transport = BalancedTransport(pool, attempts=2, retry_budget=budget)
    client = httpx.Client(transport=transport, base_url="http://api", timeout=2.0)
    failures: list[int | Exception] = []
    with client, HealthChecker(pool, http_probe("/health")):
        assert wait_until(lambda: scene.bad_ones_seen(pool), timeout=15.0)
        assert pool.panic
        for _ in range(300):
            try:
                response = client.get("/work")
                if response.status_code != 200:
                    failures.append(response.status_code)
            except httpx.HTTPError as error:
                failures.append(error)
    stats = pool.stats()
    assert failures == []
    # panic still spreads first tries (the bad backends got some), and each
    # request that started on a bad one ended on the good one at its retry
    assert stats[scene.failing.url].requests + stats[scene.refused].requests > 0
    assert stats[scene.good.url].errors == 0


def test_with_every_server_unhealthy_a_retry_goes_anywhere_untried(
    backends: Callable[..., Backend],
) -> None:
    """No healthy server: panic's choice stands, and retries still avoid the tried ones."""
    scene = OneOfThree(backends)
    scene.good.health_status = 503  # answers requests, fails its checks
    pool = scene.pool(bk.RoundRobin)
    transport = BalancedTransport(pool, attempts=3, retry_budget=bk.RetryBudget(ratio=2.0))
    client = httpx.Client(transport=transport, base_url="http://api", timeout=2.0)
    with client, HealthChecker(pool, http_probe("/health")):
        assert wait_until(
            lambda: all(s.health is not bk.HealthState.HEALTHY for s in pool.stats().values()),
            timeout=5.0,
        )
        statuses = [client.get("/work").status_code for _ in range(30)]
    assert statuses == [200] * 30
