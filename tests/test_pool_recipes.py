"""The recipes of docs/pool.md run as written, on a ManualClock."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
from pathlib import Path
from typing import Any

import balancekit as bk
from balancekit.health import HealthState

DOC = Path(__file__).resolve().parents[1] / "docs" / "pool.md"


def recipe(title: str) -> dict[str, Any]:
    text = DOC.read_text()
    section = text[text.index(f"## Recipe: {title}") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)
    return namespace


def make_pool(clock: bk.ManualClock) -> bk.Pool:
    return bk.Pool(
        bk.LeastConnections(["a", "b", "c"]),
        health=bk.HealthTracker(interval=5.0, timeout=2.0, unhealthy_threshold=3),
        clock=clock,
    )


def test_threaded_recipe_takes_a_dead_server_out() -> None:
    ns = recipe("a threaded client pool")
    clock = bk.ManualClock()
    pool = make_pool(clock)
    stop = threading.Event()

    def wait(seconds: float) -> None:
        clock.advance(max(seconds, 0.001))
        if clock() > 60:
            stop.set()

    class Inline(concurrent.futures.Executor):
        """Runs each probe at once, so the test needs no real threads or time."""

        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            future.set_result(fn(*args, **kwargs))
            return future

    ns["run_health_checks"](pool, lambda server: server != "b", stop, wait, Inline())
    assert pool.stats()["b"].health is HealthState.UNHEALTHY
    assert {ns["call"](pool, None, lambda server, _: server) for _ in range(6)} == {"a", "c"}


def test_asyncio_recipe_takes_a_dead_server_out() -> None:
    ns = recipe("an asyncio client pool")
    clock = bk.ManualClock()
    pool = make_pool(clock)

    async def probe(server: str) -> bool:
        if server == "c":
            raise ConnectionRefusedError(server)
        return True

    async def sleep(seconds: float) -> None:
        for _ in range(10):  # let the probe tasks (and wait_for's inner task) finish
            await asyncio.sleep(0)
        clock.advance(max(seconds, 0.001))

    async def main() -> set[str]:
        await ns["health_task"](pool, probe, sleep, rounds=40)

        async def send(server: str, _: object) -> str:
            return server

        return {await ns["call"](pool, None, send) for _ in range(6)}

    assert asyncio.run(main()) == {"a", "b"}
    assert pool.stats()["c"].health is HealthState.UNHEALTHY
