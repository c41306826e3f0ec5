"""The loops of docs/pool.md ("Your own loop") and docs/health.md ("Driving it") run as
written, on a ManualClock. The drivers' example of docs/pool.md runs against real
backends in tests/drivers/test_pool_docs.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import balancekit as bk
from balancekit.health import HealthState

DOCS = Path(__file__).resolve().parents[1] / "docs"


def snippet(doc: str, heading: str, defines: str) -> dict[str, Any]:
    """Run the python block under ``heading`` in ``doc`` that defines ``defines``."""
    text = (DOCS / doc).read_text()
    section = text[text.index(heading) :]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    code = next(block for block in blocks if f"def {defines}(" in block)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS / doc), "exec"), namespace)
    return namespace


def test_pool_loop_takes_a_dead_server_out_and_brings_it_back() -> None:
    check_round = snippet("pool.md", "## Your own loop", "check_round")["check_round"]
    clock = bk.ManualClock()
    pool = bk.Pool(
        bk.LeastConnections(["a", "b", "c"]),
        health=bk.HealthTracker(interval=5.0, timeout=2.0, unhealthy_threshold=3),
        panic_threshold=0.0,  # 1 healthy of 3 would otherwise be panic: traffic to all
        clock=clock,
    )
    dead = {"b"}

    def probe(server: str) -> bool:
        if server == "c":
            raise ConnectionRefusedError(server)  # a raising probe is a failed one
        return server not in dead

    for _ in range(40):
        clock.advance(max(check_round(pool, probe), 0.001))
    stats = pool.stats()
    assert stats["b"].health is HealthState.UNHEALTHY
    assert stats["c"].health is HealthState.UNHEALTHY
    assert {pool.acquire().server for _ in range(3)} == {"a"}
    dead.clear()
    for _ in range(40):
        clock.advance(max(check_round(pool, probe), 0.001))
    assert pool.stats()["b"].health is HealthState.HEALTHY


def test_health_loop_drives_a_tracker_on_its_own() -> None:
    check_round = snippet("health.md", "## Driving it", "check_round")["check_round"]
    clock = bk.ManualClock()
    tracker = bk.HealthTracker(["a", "b"], interval=5.0, timeout=2.0, clock=clock)
    pauses = []
    for _ in range(30):
        pause = check_round(tracker, lambda server: server == "a", clock)
        pauses.append(pause)
        clock.advance(max(pause, 0.001))
    assert tracker.state("a") is HealthState.HEALTHY
    assert tracker.state("b") is HealthState.UNHEALTHY
    assert max(pauses) <= 5.0  # it sleeps until the next probe, never past it
