"""Clock faults are survivable on every clocked component.

A far jump (a resumed VM, a simulation skipping time) costs one step per
pending timer; a reading that is NaN, infinite or not a number raises a clear
error before any state changes. Every call that could hang runs in a thread
joined with a timeout.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import pytest

from balancekit import (
    Drainer,
    HealthState,
    HealthTracker,
    LeastConnections,
    LeastResponseTime,
    Pool,
    RoundRobin,
    StickySession,
)

BAD = [(math.nan, ValueError), (math.inf, ValueError), (-math.inf, ValueError), (None, TypeError)]


class Dial:
    """A clock that returns whatever it is set to, including garbage."""

    def __init__(self, value: object = 0.0) -> None:
        self.value = value

    def __call__(self) -> Any:
        return self.value


def bounded(action: Callable[[], object], timeout: float = 20.0) -> Any:
    """``action()``, failing the test (instead of hanging) when it takes more than ``timeout``."""
    result: list[object] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(action())
        except BaseException as error:
            errors.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), "the call hung"
    if errors:
        raise errors[0]
    return result[0]


# -- far jumps --------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [5.0, 1e-13])
def test_health_survives_a_jump_of_1e17_seconds(interval: float) -> None:
    clock = Dial(0.0)
    tracker = HealthTracker(
        [f"s{i}" for i in range(100)], interval=interval, timeout=interval / 2, clock=clock
    )
    assert len(bounded(tracker.due)) == 100
    tracker.observe("s0", False)
    clock.value = 1e17
    assert len(bounded(tracker.due)) == 100  # each server once, however many intervals passed
    assert bounded(tracker.poll) == []  # the timeouts: one failure each, below the threshold
    for _ in range(3):  # and again at the same instant: still one step per timer
        bounded(tracker.due)
        bounded(tracker.poll)
    assert tracker.state("s1") in (HealthState.HEALTHY, HealthState.UNHEALTHY)
    tracker._check()


def test_an_ejection_ends_after_a_jump() -> None:
    clock = Dial(0.0)
    tracker = HealthTracker(["a", "b"], consecutive_failures=1, clock=clock)
    tracker.observe("a", False)
    clock.value = 1e17
    assert [c.new for c in bounded(tracker.poll)] == [HealthState.HEALTHY]
    tracker._check()


def test_drains_end_after_a_jump() -> None:
    clock = Dial(0.0)
    drainer = Drainer([f"s{i}" for i in range(100)], clock=clock)
    for i in range(100):
        drainer.opened(f"s{i}")
        drainer.drain(f"s{i}", float(i))
    clock.value = 1e17
    changes = bounded(drainer.poll)
    assert [c.server for c in changes] == [f"s{i}" for i in range(100)]  # in deadline order
    drainer._check()


def test_a_pool_survives_a_jump() -> None:
    clock = Dial(0.0)
    servers = [f"s{i}" for i in range(50)]
    pool = Pool(
        LeastResponseTime(servers),
        health=HealthTracker(interval=1e-13, timeout=5e-14, consecutive_failures=1),
        slow_start=30.0,
        clock=clock,
    )
    pool.acquire().release(ok=False)
    pool.due_checks()
    clock.value = 1e17
    assert len(bounded(pool.due_checks)) == 50
    bounded(pool.poll)
    bounded(lambda: pool.acquire().release())
    assert bounded(pool.next_deadline) is not None
    pool._check()


# -- bad readings: a clear error before anything changes --------------------------------


@pytest.mark.parametrize(("reading", "error"), BAD)
def test_health_refuses_a_bad_reading(reading: object, error: type[Exception]) -> None:
    clock = Dial(0.0)
    tracker = HealthTracker(["a", "b"], consecutive_failures=1, clock=clock)
    tracker.due()
    before = repr(tracker)
    clock.value = reading
    for call in (
        tracker.due,
        tracker.poll,
        tracker.next_deadline,
        lambda: tracker.observe("a", False),
        lambda: tracker.record("a", False),
        lambda: tracker.add_server("c"),
        lambda: tracker.remove_server("a"),
    ):
        with pytest.raises(error, match="the clock must return"):
            call()
    assert repr(tracker) == before and "c" not in tracker and "a" in tracker
    clock.value = 1.0
    assert tracker.observe("a", False) is not None  # the ejection ends at a finite time
    assert tracker.next_deadline() is not None and math.isfinite(tracker.next_deadline() or 0)
    tracker._check()


@pytest.mark.parametrize(("reading", "error"), BAD)
def test_drainer_refuses_a_bad_reading(reading: object, error: type[Exception]) -> None:
    clock = Dial(0.0)
    drainer = Drainer(["a", "b"], clock=clock)
    drainer.opened("a")
    drainer.opened("b")
    drainer.drain("b")
    clock.value = reading
    for call in (lambda: drainer.drain("a"), drainer.poll, lambda: drainer.closed("b")):
        with pytest.raises(error, match="the clock must return"):
            call()
    assert drainer.is_active("a") and drainer.in_flight("b") == 1
    clock.value = 1.0
    drainer._check()


@pytest.mark.parametrize(("reading", "error"), BAD)
def test_sticky_refuses_a_bad_reading(reading: object, error: type[Exception]) -> None:
    clock = Dial(0.0)
    sticky = StickySession("k", ttl=60.0, clock=clock)
    sticky.add_server("a")
    cookie = sticky.cookie_for("a")
    sticky.bind("s", "a")
    clock.value = reading
    for call in (
        lambda: sticky.cookie_for("a"),
        lambda: sticky.server_from_cookie(cookie),
        lambda: sticky.route("s"),
        lambda: sticky.bind("t", "a"),
    ):
        with pytest.raises(error, match="the clock must return"):
            call()
    clock.value = 1.0
    assert sticky.route("s") == "a" and sticky.route("t") is None
    assert sticky.server_from_cookie(cookie) == "a"
    sticky._check()


@pytest.mark.parametrize(("reading", "error"), BAD)
def test_a_strategy_refuses_a_bad_reading_and_never_leaks_a_lease(
    reading: object, error: type[Exception]
) -> None:
    clock = Dial(0.0)
    lb = LeastResponseTime(["a", "b"], clock=clock)
    lease = lb.acquire()
    clock.value = reading
    for call in (lb.acquire, lambda: lb.load("a"), lambda: lb.add_server("c")):
        with pytest.raises(error, match="the clock must return"):
            call()
    assert "c" not in lb
    with pytest.raises(error, match="the clock must return"):
        lease.release()
    assert lease.released and lb.in_flight(lease.server) == 0  # settled all the same
    clock.value = 1.0
    assert math.isfinite(lb.load("a")) and math.isfinite(lb.load("b"))
    lb._check()


@pytest.mark.parametrize(("reading", "error"), BAD)
def test_a_pool_refuses_a_bad_reading(reading: object, error: type[Exception]) -> None:
    clock = Dial(0.0)
    pool = Pool(
        LeastConnections(["a", "b", "c"]),
        health=HealthTracker(consecutive_failures=1),
        sticky=StickySession("k", ttl=60.0),
        clock=clock,
    )
    lease = pool.acquire()
    before = pool.stats()
    clock.value = reading
    for call in (
        pool.acquire,
        pool.poll,
        pool.due_checks,
        pool.stats,
        lambda: pool.drain("b"),
        lambda: pool.record_check("b", False),
        lambda: pool.add_server("d"),
        lambda: pool.remove_server("c"),
        lambda: pool.set_weight("c", 5),
    ):
        with pytest.raises(error, match="the clock must return"):
            call()
    with pytest.raises(error, match="the clock must return"):
        lease.release(ok=False)
    clock.value = 1.0
    after = pool.stats()
    assert lease.released and after[lease.server].in_flight == 0
    assert {s: (x.drain, x.health, x.weight) for s, x in after.items()} == {
        s: (x.drain, x.health, x.weight) for s, x in before.items()
    }
    assert "d" not in pool
    pool._check()


def test_adopting_a_bad_clock_changes_nothing() -> None:
    tracker = HealthTracker(["a"])
    with pytest.raises(ValueError):
        Pool(RoundRobin(["a"]), health=tracker, clock=lambda: math.nan)
    assert tracker.next_deadline() is not None  # still on its own clock
