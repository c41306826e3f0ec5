"""The Pool owns the operation: one lock, one clock reading, events after the lock, batches."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from balancekit import (
    Drainer,
    HealthState,
    HealthTracker,
    LeastConnections,
    Maglev,
    ManualClock,
    Pool,
    RoundRobin,
    StateChange,
    StickySession,
)


def in_thread(action: Callable[[], object], timeout: float = 10.0) -> None:
    """Run ``action`` in a thread and fail (instead of hanging) if it does not return."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), "deadlock: the call did not return"
    if errors:
        raise errors[0]


class CountingClock(ManualClock):
    """A ManualClock that counts how often it is read."""

    __slots__ = ("reads",)

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return super().__call__()


# -- callbacks run after every lock is released ----------------------------------------


def test_a_subscriber_that_reads_the_pool_does_not_deadlock() -> None:
    # The reproduction: a health callback calls pool.stats() while a
    # release ejects a server.
    clock = ManualClock()
    pool = Pool(RoundRobin(["a", "b"]), health=HealthTracker(consecutive_failures=1), clock=clock)
    assert pool.health is not None
    seen: list[dict[str, Any]] = []
    pool.health.subscribe(lambda change: seen.append(pool.stats()))
    lease = pool.acquire()
    in_thread(lambda: lease.release(ok=False))
    assert len(seen) == 1 and seen[0][lease.server].health is HealthState.EJECTED


def test_on_change_may_call_any_method_and_sees_nested_changes_in_order() -> None:
    clock = ManualClock()
    log: list[StateChange] = []

    def on_change(change: StateChange) -> None:
        log.append(change)
        if change.server == "a" and change.new.name == "DRAINED":
            pool.drain("b", 0.0)  # a change caused from inside a callback
            pool.acquire().release()

    pool = Pool(RoundRobin(["a", "b", "c"]), on_change=on_change, clock=clock)
    in_thread(lambda: pool.drain("a", 0.0))
    assert [(c.server, c.new.name) for c in log] == [("a", "DRAINED"), ("b", "DRAINED")]


def test_on_change_gets_every_change_once_in_order() -> None:
    clock = ManualClock()
    log: list[StateChange] = []
    tracker = HealthTracker(interval=5.0, timeout=2.0, consecutive_failures=2, base_ejection=10.0)
    drainer = Drainer(timeout=3.0)
    pool = Pool(
        RoundRobin(["a", "b", "c", "d"]),
        health=tracker,
        drainer=drainer,
        on_change=log.append,
        clock=clock,
    )
    health_seen: list[StateChange] = []
    drain_seen: list[StateChange] = []
    tracker.subscribe(health_seen.append)
    drainer.subscribe(drain_seen.append)
    returned: list[StateChange] = []
    polled: list[StateChange] = []

    held = pool.acquire()  # keeps "a" busy
    assert held.server == "a"
    returned.append(pool.drain("a"))  # DRAINING, deadline at 3
    for _ in range(2):  # "b" is ejected by its traffic (a release returns no change)
        for lease in [pool.acquire() for _ in range(3)]:
            lease.release(ok=lease.server != "b")
    due = pool.due_checks()  # probes start; "c" will time out at 2
    for server in due:
        if server != "c":
            change = pool.record_check(server, True)
            if change is not None:
                returned.append(change)
    clock.advance(2.5)
    polled += pool.poll()  # the ejection of "b" (from a release) and c's timeout
    clock.advance(1.0)
    polled += pool.poll()  # a's drain deadline (one lease still open)
    clock.advance(10.0)
    polled += pool.poll()  # nothing: b came back with its probe
    held.release()

    assert len(log) == len(set(map(id, log))) >= 4
    assert sorted(log, key=lambda c: c.at) == log  # in time order
    assert {id(c) for c in returned + polled} == {id(c) for c in log}  # each one, once
    assert health_seen == [c for c in log if isinstance(c.new, HealthState)]
    assert drain_seen == [c for c in log if c not in health_seen]
    kinds = [(c.server, c.new.name) for c in log]
    # b's passing probe ends its ejection (Envoy's rule, on by default).
    assert kinds == [("a", "DRAINING"), ("b", "EJECTED"), ("b", "HEALTHY"), ("a", "DRAINED")]
    assert [c.in_flight for c in log if c.server == "a"] == [0, 1]  # one lease cut at 3
    pool._check()


def test_components_share_the_pools_lock() -> None:
    pool = Pool(RoundRobin(["a"]), health=HealthTracker())
    assert pool.health is not None
    assert pool.health._lock is pool._lock and pool.drainer._lock is pool._lock


def test_a_raising_callback_loses_no_change() -> None:
    log: list[str] = []

    def flaky(change: StateChange) -> None:
        if change.server == "a":
            raise RuntimeError("callback failed")
        log.append(change.server)

    pool = Pool(RoundRobin(["a", "b", "c"]), on_change=flaky, clock=ManualClock())
    with pytest.raises(RuntimeError):
        pool.drain("a", 0.0)
    assert pool.drainer.state("a").name == "DRAINED"  # the drain itself happened
    pool.drain("b", 0.0)
    assert log == ["b"]


def test_a_raising_on_change_still_reaches_the_components_subscribers() -> None:
    calls: list[StateChange] = []

    def raises_once(change: StateChange) -> None:
        calls.append(change)
        if len(calls) == 1:
            raise RuntimeError("on_change failed")

    health = HealthTracker(unhealthy_threshold=1)
    pool = Pool(RoundRobin(["a", "b"]), health=health, on_change=raises_once, clock=ManualClock())
    seen: list[StateChange] = []
    health.subscribe(seen.append)
    with pytest.raises(RuntimeError, match="on_change failed"):
        pool.record_check("a", False)
    assert health.state("a") is HealthState.UNHEALTHY  # the check itself happened
    assert len(calls) == 1 and seen == calls  # the subscriber got it too
    pool.record_check("b", False)  # nothing left over, nothing delivered twice
    assert [c.server for c in calls] == ["a", "b"] and seen == calls


# -- one clock reading per call ---------------------------------------------------------


@pytest.mark.parametrize("sticky", [False, True])
def test_acquire_and_release_read_the_clock_at_most_twice(sticky: bool) -> None:
    clock = CountingClock()
    pool = Pool(
        LeastConnections(["a", "b", "c"]),
        health=HealthTracker(),
        drainer=Drainer(),
        sticky=StickySession("k", ttl=60.0) if sticky else None,
        clock=clock,
    )
    cookie = pool.acquire().cookie
    for _ in range(3):
        clock.reads = 0
        with pool.acquire(cookie=cookie):
            pass
        assert clock.reads <= 2


def test_a_drain_of_many_servers_reads_the_clock_once_per_call() -> None:
    clock = CountingClock()
    servers = [f"s{i}" for i in range(100)]
    pool = Pool(RoundRobin(servers), health=HealthTracker(), clock=clock)
    for server in servers[:50]:
        clock.reads = 0
        pool.drain(server, 1.0)
        assert clock.reads == 1
    clock.advance(1.0)
    clock.reads = 0
    assert len(pool.poll()) == 0  # all were idle: DRAINED at once
    assert clock.reads == 1


def _strategies() -> list[tuple[str, Callable[[list[str]], Any]]]:
    from balancekit import PowerOfTwoChoices
    from balancekit.strategies.registry import strategy_names

    made: list[tuple[str, Callable[[list[str]], Any]]] = list(strategy_names().items())
    made.append(("p2c-peak-ewma", lambda s: PowerOfTwoChoices(s, load="peak_ewma")))
    return made


@pytest.mark.parametrize(("name", "make"), _strategies(), ids=[n for n, _ in _strategies()])
def test_membership_and_state_changes_read_the_clock_once(
    name: str, make: Callable[[list[str]], Any]
) -> None:
    # A server's weight going from 0 back to positive dates a fresh latency
    # estimate (LeastResponseTime, peak-EWMA P2C) or restarts a blackout
    # (UtilizationRoundRobin): the strategy takes the Pool's reading of the
    # call instead of reading the clock again.
    clock = CountingClock()
    pool = Pool(
        make(["a", "b", "c", "d"]),
        health=HealthTracker(unhealthy_threshold=1, healthy_threshold=1),
        clock=clock,
    )
    calls: list[tuple[str, Callable[[], object]]] = [
        ("drain", lambda: pool.drain("a")),
        ("cancel_drain", lambda: pool.cancel_drain("a")),
        ("add_server", lambda: pool.add_server("e")),
        ("set_weight", lambda: pool.set_weight("e", 3)),
        ("update", lambda: pool.update({"a": 1, "b": 1, "c": 1, "d": 1, "f": 2})),
        ("eject", lambda: pool.record_check("b", False)),
        ("recover", lambda: pool.record_check("b", True)),
        ("remove_server", lambda: pool.remove_server("f")),
    ]
    for what, call in calls:
        clock.advance(31.0)  # past any ejection
        clock.reads = 0
        call()
        assert clock.reads == 1, (name, what, clock.reads)
        if what in ("eject", "recover"):  # b's weight went to 0, then back
            assert pool.strategy.servers["b"] == (0 if what == "eject" else 1), (name, what)
    pool._check()


# -- batches -----------------------------------------------------------------------------


class CountingMaglev(Maglev):
    rebuilds = 0

    def _rebuild(self) -> None:
        self.rebuilds += 1
        super()._rebuild()


def test_entering_panic_at_200_maglev_servers_is_one_rebuild() -> None:
    clock = ManualClock()
    servers = [f"10.0.0.{i}" for i in range(200)]
    strategy = CountingMaglev(servers, table_size=5003)
    pool = Pool(strategy, health=HealthTracker(unhealthy_threshold=1), clock=clock)
    for server in servers[:100]:  # half unhealthy: 100/200 is not below 0.5
        pool.record_check(server, False)
    assert not pool.panic
    strategy.rebuilds = 0
    pool.record_check(servers[100], False)  # 99/200: panic, every weight changes
    assert pool.panic and strategy.rebuilds == 1
    assert all(w == 1.0 for w in strategy.servers.values())
    strategy.rebuilds = 0
    pool.record_check(servers[100], True)  # and back: one more
    pool.record_check(servers[100], True)
    assert not pool.panic and strategy.rebuilds == 1
    pool._check()


def test_a_broken_clock_on_release_still_settles_every_count() -> None:
    readings: list[object] = [0.0]
    pool = Pool(LeastConnections(["a", "b"]), health=HealthTracker(), clock=lambda: readings[-1])  # type: ignore[arg-type, return-value]
    lease = pool.acquire()
    readings.append(None)
    with pytest.raises(TypeError, match="the clock must return a number"):
        lease.release()
    readings.append(1.0)
    assert lease.released and pool.stats()[lease.server].in_flight == 0
    assert pool.strategy.in_flight(lease.server) == 0
    pool._check()


def test_a_call_on_a_component_directly_reaches_the_pools_weights() -> None:
    clock = ManualClock()
    log: list[StateChange] = []
    tracker = HealthTracker(consecutive_failures=1, base_ejection=10.0)
    pool = Pool(RoundRobin(["a", "b", "c"]), health=tracker, on_change=log.append, clock=clock)
    pool.drainer.drain("a", 0.0)  # not pool.drain
    assert not pool.is_eligible("a")
    tracker.observe("b", False)  # not a release: an ejection all the same
    assert not pool.is_eligible("b")
    clock.advance(10.0)
    assert [c.new for c in tracker.poll()] == [HealthState.HEALTHY]  # the tracker's poll
    assert pool.is_eligible("b")
    pool.drainer.cancel("a")
    assert pool.is_eligible("a")
    assert [(c.server, c.new.name) for c in log] == [
        ("a", "DRAINED"),
        ("b", "EJECTED"),
        ("b", "HEALTHY"),
        ("a", "ACTIVE"),
    ]
    pool._check()


def test_a_pool_and_its_components_make_no_reference_cycle() -> None:
    import gc

    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        pool = Pool(
            LeastConnections(["a", "b"]),
            health=HealthTracker(consecutive_failures=1),
            drainer=Drainer(),
            on_change=lambda change: None,
            clock=ManualClock(),
        )
        pool.acquire().release(ok=False)
        pool.drain("b")
        del pool
        assert gc.collect() == 0  # freed by reference counting alone
    finally:
        if enabled:
            gc.enable()


def test_threads_and_callbacks_that_call_back_never_deadlock() -> None:
    servers = [f"s{i}" for i in range(6)]
    seen: list[int] = []
    pool: Pool

    def on_change(change: StateChange) -> None:
        seen.append(len(pool.stats()))  # a callback that reads the pool

    pool = Pool(
        LeastConnections(servers),
        health=HealthTracker(consecutive_failures=2, base_ejection=0.001, max_ejected_percent=50),
        drainer=Drainer(timeout=0.01),
        on_change=on_change,
        max_in_flight=4,
    )
    errors: list[BaseException] = []

    def requests(seed: int) -> None:
        try:
            for i in range(400):
                try:
                    lease = pool.acquire()
                except LookupError:
                    continue
                lease.release(ok=(i + seed) % 7 != 0)
        except BaseException as error:
            errors.append(error)

    def admin() -> None:
        try:
            for i in range(200):
                server = servers[i % len(servers)]
                if pool.drainer.state(server).name == "ACTIVE":
                    pool.drain(server)
                else:
                    pool.cancel_drain(server)
                pool.poll()
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=requests, args=(n,), daemon=True) for n in range(4)]
    workers.append(threading.Thread(target=admin, daemon=True))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert not worker.is_alive(), "deadlock"
    assert not errors, errors
    assert seen  # changes were delivered, each with a consistent read of the pool
    assert all(row.in_flight == 0 for row in pool.stats().values())
    pool._check()
