"""The start/stop the thread runners share: one working run at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import balancekit as bk
from balancekit.drivers._thread_loop import ThreadLoop
from balancekit.drivers.checks import HealthChecker
from balancekit.drivers.dns import DNSDiscovery

from .backends import new_threads, wait_until


class Body:
    """A run that does one round, then waits for ``proceed`` (bounded) and loops
    until its stop event is set; it notes its rounds and, at its end, whether it
    could release the shared resource."""

    def __init__(self) -> None:
        self.proceed = threading.Event()
        self.rounds: dict[int, int] = {}
        self.released: list[int] = []
        self.loop = ThreadLoop("Body", "balancekit-test-loop", self.run)
        self.runs = 0

    def run(self, stop: threading.Event) -> None:
        self.runs += 1
        me = self.runs
        while not stop.is_set():
            self.rounds[me] = self.rounds.get(me, 0) + 1
            self.proceed.wait(5.0)  # held mid-round: the stop is missed until it returns
            stop.wait(0.01)
        self.loop.unless_running(lambda: self.released.append(me))


def test_a_run_stopped_mid_round_exits_at_its_next_check_and_leaves_the_resource() -> None:
    body = Body()
    body.loop.start()
    assert wait_until(lambda: body.rounds.get(1, 0) == 1)
    body.loop.stop(timeout=0)  # run 1 is held in its round
    body.loop.start()
    assert wait_until(lambda: body.rounds.get(2, 0) == 1)
    body.proceed.set()
    assert wait_until(lambda: body.rounds.get(2, 0) >= 5)
    assert body.rounds[1] == 1  # run 1 did no second round
    assert body.released == []  # run 2 still uses it
    body.loop.stop(timeout=2.0)
    assert body.released == [2] and not body.loop.running


def test_start_twice_is_an_error_and_stop_twice_is_nothing() -> None:
    body = Body()
    body.proceed.set()
    body.loop.start()
    try:
        with pytest.raises(RuntimeError, match="Body is already running"):
            body.loop.start()
        assert body.runs == 1 and "running" in repr(body.loop)
    finally:
        body.loop.stop(timeout=2.0)
    body.loop.stop()
    assert repr(body.loop) == "ThreadLoop('Body', 'balancekit-test-loop', stopped)"


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (-1, ValueError),
        (float("inf"), ValueError),
        (float("nan"), ValueError),
        (2e9, ValueError),  # beyond what a thread's join takes
        (10**400, ValueError),
        ("1", TypeError),
        (True, TypeError),
    ],
)
def test_a_bad_timeout_stops_nothing(timeout: object, error: type) -> None:
    body = Body()
    body.proceed.set()
    body.loop.start()
    try:
        with pytest.raises(
            error, match=r"timeout must be None or a finite number in \[0, 1e\+09\], got"
        ):
            body.loop.stop(timeout=timeout)  # type: ignore[arg-type]
        assert body.loop.running
        rounds = body.rounds[1]
        assert wait_until(lambda: body.rounds[1] > rounds)
    finally:
        body.loop.stop(timeout=2.0)


def health_checker() -> HealthChecker:
    tracker = bk.HealthTracker(interval=0.05, timeout=0.04)
    return HealthChecker(bk.Pool(bk.RoundRobin(["a"]), health=tracker), lambda server: True)


def dns_discovery() -> DNSDiscovery:
    return DNSDiscovery(bk.Pool(bk.RoundRobin(["a:1"])), "127.0.0.1", 80, interval=0.02)


@pytest.mark.parametrize(
    ("make", "name"),
    [(health_checker, "balancekit-health"), (dns_discovery, "balancekit-dns")],
    ids=["HealthChecker", "DNSDiscovery"],
)
def test_a_restart_after_a_short_stop_leaves_one_thread(make: Callable[[], Any], name: str) -> None:
    before = set(threading.enumerate())
    runner = make()
    try:
        for _ in range(3):
            runner.start()
            time.sleep(0.1)
            runner.stop(timeout=0)  # the thread is not waited for
        runner.start()
        time.sleep(0.3)
        assert len(new_threads(name, before)) == 1
    finally:
        runner.stop(timeout=2.0)
    assert wait_until(lambda: not new_threads(name, before), timeout=2.0)
