from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest

import balancekit as bk
from balancekit.drivers.httpx import AsyncBalancedTransport

from .backends import Backend, free_port

T = TypeVar("T")


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(make(), 20.0)  # no test hangs

    return asyncio.run(bounded())


def client_for(pool: bk.Pool, **options: object) -> httpx.AsyncClient:
    transport = AsyncBalancedTransport(pool, **options)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://service", timeout=2.0)


@pytest.fixture
def three(backends: Callable[..., Backend]) -> list[Backend]:
    return [backends(name) for name in ("a", "b", "c")]


def test_requests_retries_and_posts(three: list[Backend]) -> None:
    a, b, c = three
    pool = bk.Pool(bk.RoundRobin([x.url for x in three]))

    async def main() -> list[tuple[int, str]]:
        async with client_for(pool) as client:
            seen = [(r.status_code, r.text) for r in [await client.get("/x") for _ in range(3)]]
            a.status = 503
            post = await client.post("/w", content=b"data")  # at a: not retried
            get = await client.get("/r")  # b (the rotation moved on)
            get2 = await client.get("/r")  # c
            get3 = await client.get("/r")  # a fails, retried on b
            return [*seen, *[(r.status_code, r.text) for r in (post, get, get2, get3)]]

    assert run(main) == [
        (200, "a /x"),
        (200, "b /x"),
        (200, "c /x"),
        (503, "a /w"),
        (200, "b /r"),
        (200, "c /r"),
        (200, "b /r"),
    ]
    assert pool.stats()[a.url].errors == 2 and all(s.in_flight == 0 for s in pool.stats().values())
    assert c.hits["GET /r"] == 1 and b.hits["GET /r"] == 2


def test_a_streamed_response_holds_its_lease(backends: Callable[..., Backend]) -> None:
    a = backends("a")
    pool = bk.Pool(bk.LeastConnections([a.url]))

    async def main() -> list[int]:
        counts = []
        async with client_for(pool) as client:
            async with client.stream("GET", "/stream") as response:
                counts.append(pool.stats()[a.url].in_flight)
                chunks = response.aiter_raw()
                await chunks.__anext__()
                counts.append(pool.stats()[a.url].in_flight)
                a.release_stream.set()
                async for _ in chunks:
                    pass
            counts.append(pool.stats()[a.url].in_flight)
        return counts

    assert run(main) == [1, 1, 0]


def test_connection_errors_retry_then_raise(backends: Callable[..., Backend]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    live = backends("live")
    pool = bk.Pool(bk.RoundRobin([dead, live.url]), panic_threshold=0.0)
    only_dead = bk.Pool(bk.RoundRobin([dead]), panic_threshold=0.0)

    async def main() -> str:
        async with client_for(pool) as client:
            text = (await client.get("/x")).text
        async with client_for(only_dead) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get("/x")
        return text

    assert run(main) == "live /x"
    assert pool.stats()[dead].errors == 1 and only_dead.stats()[dead].errors == 3


def test_a_cancelled_request_releases_its_lease(backends: Callable[..., Backend]) -> None:
    a = backends("a")
    a.hang.set()
    pool = bk.Pool(bk.LeastConnections([a.url]))

    async def main() -> int:
        async with client_for(pool) as client:
            task = asyncio.create_task(client.get("/x"))
            for _ in range(200):  # bounded: 2 s
                if pool.stats()[a.url].in_flight:
                    break
                await asyncio.sleep(0.01)
            held = pool.stats()[a.url].in_flight
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            a.hang.clear()
            return held

    assert run(main) == 1
    stats = pool.stats()[a.url]
    assert (stats.in_flight, stats.requests, stats.errors, stats.abandoned) == (0, 1, 0, 1)


def test_per_try_timeouts_are_failures_and_retried(backends: Callable[..., Backend]) -> None:
    hung, live = backends("hung"), backends("live")
    hung.hang.set()
    tracker = bk.HealthTracker(consecutive_failures=2, max_ejected_percent=50)
    pool = bk.Pool(bk.RoundRobin([hung.url, live.url]), health=tracker)

    async def main() -> list[str]:
        transport = AsyncBalancedTransport(pool)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://service", timeout=0.1
        ) as client:
            return [(await client.get("/x")).text for _ in range(4)]

    try:
        assert run(main) == ["live /x"] * 4
    finally:
        hung.hang.clear()
    assert pool.stats()[hung.url].health is bk.HealthState.EJECTED
    assert pool.stats()[hung.url].errors == 2


def test_bad_transport_option() -> None:
    pool = bk.Pool(bk.RoundRobin(["http://10.0.0.1:80"]))
    with pytest.raises(TypeError, match="transport must be None, an AsyncBaseTransport"):
        AsyncBalancedTransport(pool, transport=httpx.HTTPTransport())  # type: ignore[arg-type]
    assert repr(AsyncBalancedTransport(pool)).startswith("AsyncBalancedTransport(Pool(")


def test_a_post_is_retried_after_a_failed_connect_but_not_after_a_503(
    backends: Callable[..., Backend],
) -> None:
    refused = f"http://127.0.0.1:{free_port()}"
    live, failing = backends("live"), backends("failing")
    failing.status = 503
    pool = bk.Pool(bk.RoundRobin([refused, live.url]))
    answered = bk.Pool(bk.RoundRobin([failing.url, live.url]))

    async def main() -> tuple[list[str], int]:
        async with client_for(pool) as client:
            texts = [(await client.post(f"/w/{i}", content=b"x")).text for i in range(10)]
        async with client_for(answered) as client:
            status = (await client.post("/f", content=b"x")).status_code
        return texts, status

    texts, status = run(main)
    assert texts == [f"live /w/{i}" for i in range(10)]  # every POST succeeds, sent once
    assert [live.hits[f"POST /w/{i}"] for i in range(10)] == [1] * 10
    assert status == 503 and live.hits["POST /f"] == 0  # it was answered: not retried


def test_a_member_added_later_that_is_not_a_url_fails_its_request_as_a_failure(
    backends: Callable[..., Backend],
) -> None:
    live = backends("live")
    pool = bk.Pool(bk.RoundRobin([live.url]))

    async def main() -> list[str]:
        seen = []
        async with client_for(pool) as client:
            pool.update([live.url, "10.0.0.9:80"])
            for _ in range(2):
                try:
                    seen.append((await client.get("/x")).text)
                except ValueError as error:
                    seen.append(str(error))
        return seen

    seen = run(main)
    assert "live /x" in seen and any("got '10.0.0.9:80'" in text for text in seen)
    stats = pool.stats()["10.0.0.9:80"]
    assert (stats.in_flight, stats.errors, stats.abandoned) == (0, 1, 0)
