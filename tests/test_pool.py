from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Mapping

import pytest

from balancekit import (
    ConsistentHash,
    DuplicateServer,
    LeastConnections,
    Maglev,
    ManualClock,
    NoServerAvailable,
    RoundRobin,
    UnknownServer,
)
from balancekit.drain import Drainer, DrainState
from balancekit.health import HealthState, HealthTracker
from balancekit.pool import RAMP_STEPS, Pool
from balancekit.sticky import StickySession
from balancekit.strategies.base import Balancer

from .strategies.contract import KEYS, STRATEGIES


def make(
    servers: object = ("a", "b", "c", "d"),
    *,
    strategy: type[Balancer] = RoundRobin,
    health: bool = True,
    sticky: bool = False,
    **options: object,
) -> tuple[Pool, ManualClock]:
    clock = ManualClock()
    tracker = (
        HealthTracker(interval=5.0, timeout=2.0, unhealthy_threshold=3, healthy_threshold=2)
        if health
        else None
    )
    session = StickySession("s3cret") if sticky else None
    pool = Pool(strategy(servers), health=tracker, sticky=session, clock=clock, **options)  # type: ignore[arg-type]
    return pool, clock


def picks(pool: Pool, count: int = 40) -> Counter[str]:
    seen: Counter[str] = Counter()
    for i in range(count):
        with pool.acquire(KEYS[i % len(KEYS)]) as lease:
            seen[lease.server] += 1
    return seen


def fail_checks(pool: Pool, server: str, times: int = 3) -> None:
    for _ in range(times):
        pool.record_check(server, False)


# -- basics ---------------------------------------------------------------------


def test_acquire_release_and_stats() -> None:
    pool, clock = make(health=False)
    lease = pool.acquire()
    clock.advance(0.2)
    lease.release(ok=False)
    assert lease.release() is False  # idempotent through the pool too
    with pool.acquire() as other:
        clock.advance(0.1)
    stats = pool.stats()
    assert stats[lease.server].requests == 1 and stats[lease.server].errors == 1
    assert stats[lease.server].latency_mean == pytest.approx(0.2)
    assert stats[other.server].latency_max == pytest.approx(0.1)
    assert all(s.in_flight == 0 for s in stats.values())
    assert stats["a"].drain is DrainState.ACTIVE and stats["a"].health is None
    pool._check()


def test_membership_changes_reach_every_component() -> None:
    pool, _ = make(sticky=True)
    pool.add_server("e", weight=2)
    assert "e" in pool and "e" in pool.strategy and "e" in pool.drainer
    assert pool.health is not None and "e" in pool.health
    assert pool.sticky is not None and "e" in pool.sticky
    assert pool.servers["e"] == 2.0
    pool.remove_server("e")
    assert "e" not in pool and "e" not in pool.strategy and "e" not in pool.health
    pool._check()


def test_bad_membership_input_changes_nothing() -> None:
    pool, _ = make()
    before = (dict(pool.servers), dict(pool.strategy.servers))
    with pytest.raises(DuplicateServer):
        pool.add_server("a")
    with pytest.raises(ValueError, match="weight"):
        pool.add_server("z", weight=-1)
    with pytest.raises(TypeError, match="server"):
        pool.add_server(5)  # type: ignore[arg-type]
    with pytest.raises(UnknownServer):
        pool.remove_server("z")
    with pytest.raises(KeyError):
        pool.set_weight("z", 1)
    with pytest.raises(ValueError, match="weight"):
        pool.set_weight("a", math.nan)
    assert (dict(pool.servers), dict(pool.strategy.servers)) == before
    pool._check()


def test_a_weight_the_strategy_refuses_changes_nothing() -> None:
    # Maglev needs a slot per server of weight > 0; a ring caps its points.
    clock = ManualClock()
    pool = Pool(Maglev(["a", "b"], table_size=31), health=HealthTracker(), clock=clock)
    pool.add_server("c")
    snapshot = (dict(pool.servers), dict(pool.strategy.servers))
    with pytest.raises(ValueError, match="table_size 31 is too small for 4 servers"):
        pool.add_server("d")
    assert (dict(pool.servers), dict(pool.strategy.servers)) == snapshot
    assert pool.health is not None and "d" not in pool.health and "d" not in pool.drainer
    ring = Pool(ConsistentHash(["a", "b"], vnodes=160), clock=clock)
    with pytest.raises(ValueError, match="points"):
        ring.set_weight("a", 10_000)
    with pytest.raises(ValueError, match="points"):
        ring.add_server("c", weight=10_000)
    assert dict(ring.servers) == dict(ring.strategy.servers) == {"a": 1.0, "b": 1.0}
    assert ring.acquire("k").server in {"a", "b"}
    pool._check()
    ring._check()


def test_a_weight_that_only_recovery_would_reach_is_refused_up_front() -> None:
    # With "c" ejected three servers are live, but its return would make four.
    clock = ManualClock()
    tracker = HealthTracker(consecutive_failures=1, max_ejected_percent=100)
    pool = Pool(Maglev(["a", "b", "c"], table_size=31), health=tracker, clock=clock)
    key = next(k for k in KEYS if pool.strategy.get_server(k) == "c")
    pool.acquire(key).release(ok=False)
    assert not pool.is_eligible("c")
    with pytest.raises(ValueError, match="table_size 31 is too small for 4 servers"):
        pool.add_server("d")
    clock.advance(60.0)
    assert pool.is_eligible("c") and "d" not in pool
    pool._check()


class Picky(RoundRobin):
    """A user's strategy that may refuse weights and does not say so in advance."""

    refuse = False

    def set_weight(self, server: str, weight: float) -> None:
        if self.refuse and weight > 0:
            raise ValueError(f"weight {weight!r} refused for {server!r}")
        super().set_weight(server, weight)

    def set_weights(self, weights: Mapping[str, float]) -> None:
        refused = [server for server, weight in weights.items() if weight > 0]
        if self.refuse and refused:
            raise ValueError(f"weights refused for {refused!r}")
        super().set_weights(weights)


def test_a_refusal_nobody_foresaw_is_undone_or_retried() -> None:
    clock = ManualClock()
    strategy = Picky(["a", "b", "c"])
    pool = Pool(strategy, health=HealthTracker(), sticky=StickySession("k"), clock=clock)
    strategy.refuse = True
    with pytest.raises(ValueError, match="refused"):
        pool.add_server("d")  # undone everywhere
    assert "d" not in pool and "d" not in strategy and pool.sticky and "d" not in pool.sticky
    fail_checks(pool, "a")
    strategy.refuse = True
    with pytest.raises(ValueError, match="refused"):  # "a" recovers: its weight is refused
        for _ in range(2):
            pool.record_check("a", True)
    with pytest.raises(ValueError, match="refused for 'a'"):
        pool.drain("b", 0.0)  # "a" is still refused, but the drain of "b" applies
    assert pool.strategy.servers["b"] == 0.0
    with pytest.raises(ValueError, match="refused"):
        pool.acquire()  # each call retries
    strategy.refuse = False
    assert pool.is_eligible("a") and not pool.is_eligible("b")  # the next call redid it
    pool._check()


def test_component_callbacks_may_read_panic_without_deadlock() -> None:
    clock = ManualClock()
    drainer = Drainer()
    pool = Pool(RoundRobin(["a", "b"]), drainer=drainer, clock=clock)
    seen: list[bool] = []
    drainer.subscribe(lambda change: seen.append(pool.panic))  # runs inside pool.drain
    worker = threading.Thread(target=pool.drain, args=("a", 0.0), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive() and seen == [False]


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("slow_start", -1, ValueError),
        ("slow_start", math.inf, ValueError),
        ("slow_start", "10", TypeError),
        ("slow_start_aggression", 0, ValueError),
        ("slow_start_min_weight_percent", 101, ValueError),
        ("panic_threshold", 1.5, ValueError),
        ("panic_threshold", True, TypeError),
    ],
)
def test_bad_options(option: str, value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=option):
        Pool(RoundRobin(["a"]), **{option: value})  # type: ignore[arg-type]


def test_strategy_must_be_a_balancer() -> None:
    with pytest.raises(TypeError, match="strategy"):
        Pool(["a", "b"])  # type: ignore[arg-type]


def test_components_share_one_clock() -> None:
    clock = ManualClock()
    tracker = HealthTracker()
    pool = Pool(RoundRobin(["a"]), health=tracker, clock=clock)
    assert pool.clock is clock and tracker.clock is clock and pool.drainer.clock is clock
    assert pool.strategy.clock is clock
    with pytest.raises(ValueError, match="clock"):
        Pool(RoundRobin(["a"]), health=HealthTracker(clock=ManualClock()), clock=clock)
    # Without a pool clock the components' explicit one is adopted by all.
    own = ManualClock()
    pool = Pool(RoundRobin(["a"], clock=own), health=HealthTracker())
    assert pool.clock is own and pool.health is not None and pool.health.clock is own


# -- health -----------------------------------------------------------------------


def test_failed_active_checks_take_a_server_out_and_successes_bring_it_back() -> None:
    pool, _ = make()
    assert pool.record_check("b", False) is None
    assert pool.record_check("b", False) is None
    change = pool.record_check("b", False)
    assert change is not None and change.new is HealthState.UNHEALTHY
    assert not pool.is_eligible("b")
    assert "b" not in picks(pool)
    pool.record_check("b", True)
    change = pool.record_check("b", True)
    assert change is not None and change.new is HealthState.HEALTHY
    assert picks(pool)["b"] == 10
    pool._check()


def test_record_check_needs_a_tracker() -> None:
    pool, _ = make(health=False)
    with pytest.raises(ValueError, match="HealthTracker"):
        pool.record_check("a", True)
    assert pool.due_checks() == []


def test_passive_ejection_from_real_traffic_and_return() -> None:
    clock = ManualClock()
    tracker = HealthTracker(consecutive_failures=2, base_ejection=30.0, max_ejected_percent=50)
    pool = Pool(RoundRobin(["a", "b", "c", "d"]), health=tracker, clock=clock)
    for _ in range(2):
        lease = pool.acquire()
        while lease.server != "a":
            lease.release()
            lease = pool.acquire()
        lease.release(ok=False)
    changes = pool.poll()
    assert [(c.server, c.new) for c in changes] == [("a", HealthState.EJECTED)]
    assert "a" not in picks(pool)
    clock.advance(29.999)
    assert pool.poll() == []
    clock.advance(0.001)
    assert [(c.server, c.new) for c in pool.poll()] == [("a", HealthState.HEALTHY)]
    assert "a" in picks(pool)


def test_an_ejection_ends_for_acquire_alone_after_other_changes() -> None:
    # A membership change between the ejection and its end must not make the
    # pool forget when the ejection ends: acquire() alone brings the server back.
    clock = ManualClock()
    tracker = HealthTracker(consecutive_failures=1, base_ejection=10.0, max_ejected_percent=50)
    pool = Pool(LeastConnections(["a", "b", "c", "d"]), health=tracker, clock=clock)
    pool.acquire().release()  # the pool settles: nothing to wake for
    first = pool.acquire()
    first.release(ok=False)
    assert pool.strategy.servers[first.server] == 0.0
    pool.add_server("e")
    pool.set_weight("b" if first.server != "b" else "c", 2)
    clock.advance(10.0)
    pool.acquire().release()
    assert pool.strategy.servers[first.server] == 1.0


def test_readings_catch_up_with_the_clock_without_poll() -> None:
    # An ejection that ends, seen through stats(), is_eligible() and panic alone.
    clock = ManualClock()
    tracker = HealthTracker(consecutive_failures=1, base_ejection=10.0, max_ejected_percent=100)
    pool = Pool(RoundRobin(["a", "b"]), health=tracker, clock=clock)
    pool.acquire().release(ok=False)  # "a" is ejected: 1 healthy of 2 is not below half
    pool.acquire().release(ok=False)  # "b" too: panic
    assert pool.panic and pool.is_eligible("a")
    clock.advance(10.0)
    assert not pool.panic  # both ejections have ended
    assert pool.stats()["a"].health is HealthState.HEALTHY and pool.is_eligible("b")
    assert [c.new for c in pool.poll()] == [HealthState.EJECTED] * 2 + [HealthState.HEALTHY] * 2


def test_probe_timeouts_are_reported_by_poll() -> None:
    pool, clock = make()
    assert sorted(pool.due_checks()) == ["a", "b", "c", "d"]
    for server in "bcd":
        pool.record_check(server, True)
    changes: list[object] = []
    for _ in range(3):  # three probes of "a" that never report
        clock.advance(2.0)
        changes += pool.poll()
        clock.advance(3.0)
        for server in pool.due_checks():
            if server != "a":
                pool.record_check(server, True)
    assert [(c.server, c.new) for c in changes] == [("a", HealthState.UNHEALTHY)]  # type: ignore[attr-defined]
    assert not pool.is_eligible("a")


# -- panic ------------------------------------------------------------------------


def test_panic_strictly_below_the_threshold() -> None:
    pool, _ = make()
    fail_checks(pool, "a")
    fail_checks(pool, "b")
    assert not pool.panic  # 2 of 4 healthy = 0.5, not strictly below 0.5
    assert set(picks(pool)) == {"c", "d"}
    fail_checks(pool, "c")
    assert pool.panic  # 1 of 4
    assert set(picks(pool)) == {"a", "b", "c", "d"}
    pool.record_check("c", True)
    pool.record_check("c", True)
    assert not pool.panic
    assert set(picks(pool)) == {"c", "d"}


def test_panic_threshold_zero_never_panics() -> None:
    pool, _ = make(panic_threshold=0.0)
    for server in "abcd":
        fail_checks(pool, server)
    with pytest.raises(NoServerAvailable):
        pool.acquire()


# -- draining ---------------------------------------------------------------------


def test_drain_waits_for_the_last_lease() -> None:
    pool, _ = make(health=False)
    open_leases = [pool.acquire() for _ in range(8)]
    change = pool.drain("a", timeout=10)
    assert change.new is DrainState.DRAINING
    assert "a" not in picks(pool)
    on_a = [lease for lease in open_leases if lease.server == "a"]
    assert len(on_a) == 2
    on_a[0].release()
    assert pool.poll() == []
    on_a[1].release()
    changes = pool.poll()
    assert [(c.server, c.new, c.in_flight) for c in changes] == [("a", DrainState.DRAINED, 0)]
    assert pool.stats()["a"].drain is DrainState.DRAINED
    pool.cancel_drain("a")
    assert "a" in picks(pool)


def test_drain_deadline_reports_open_leases() -> None:
    pool, clock = make(health=False)
    leases = [pool.acquire() for _ in range(4)]
    pool.drain("b", timeout=5.0)
    clock.advance(4.999)
    assert pool.poll() == []
    clock.advance(0.001)
    changes = pool.poll()
    assert [(c.server, c.new, c.in_flight) for c in changes] == [("b", DrainState.DRAINED, 1)]
    for lease in leases:
        lease.release()  # late releases after the deadline must not corrupt counts
    assert pool.stats()["b"].in_flight == 0
    pool._check()


# -- slow start -------------------------------------------------------------------


def test_slow_start_follows_envoys_formula() -> None:
    pool, clock = make(["a"], health=False, slow_start=10.0)
    pool.add_server("b", weight=4)
    effective = lambda: pool.strategy.servers["b"]  # noqa: E731
    assert effective() == pytest.approx(4 * 0.1)  # max(1 s, t)/10 = 0.1 = the minimum
    clock.advance(4.99)
    pool.poll()
    assert effective() == pytest.approx(4 * 0.45)  # 0.499 quantised down to 0.45
    clock.advance(0.01)
    pool.poll()
    assert effective() == pytest.approx(4 * 0.5)
    clock.advance(4.99)
    pool.poll()
    assert effective() == pytest.approx(4 * 0.95)
    clock.advance(0.01)
    pool.poll()
    assert effective() == 4.0
    assert pool.stats()["a"].effective_weight == 1.0  # initial members never ramp
    assert pool.next_deadline() is None


def test_slow_start_ramps_with_acquire_alone() -> None:
    # A pool driven only by requests (no poll, no probes) must still ramp.
    pool, clock = make(["a"], health=False, slow_start=10.0)
    pool.acquire().release()  # the pool has settled: nothing to wake for
    pool.add_server("b", weight=4)
    assert pool.strategy.servers["b"] == pytest.approx(0.4)
    clock.advance(5.0)
    pool.acquire().release()
    assert pool.strategy.servers["b"] == pytest.approx(2.0)
    clock.advance(5.0)
    pool.acquire().release()
    assert pool.strategy.servers["b"] == 4.0
    pool.set_weight("b", 2)  # a weight change of a ramped server does not ramp again
    assert pool.strategy.servers["b"] == 2.0


def test_slow_start_aggression_and_minimum() -> None:
    pool, clock = make(
        ["a"],
        health=False,
        slow_start=100.0,
        slow_start_aggression=2.0,
        slow_start_min_weight_percent=30,
    )
    pool.add_server("b")
    assert pool.strategy.servers["b"] == pytest.approx(0.3)  # sqrt(0.01) = 0.1 < 30 %
    clock.advance(25)
    pool.poll()
    assert pool.strategy.servers["b"] == pytest.approx(0.5)  # sqrt(0.25)
    # The next step, 0.55, is reached when sqrt(t / 100) = 0.55.
    assert pool.next_deadline() == pytest.approx(100 * (0.5 + 1 / RAMP_STEPS) ** 2)


def test_recovered_server_ramps_up_again() -> None:
    pool, clock = make(slow_start=20.0)
    fail_checks(pool, "a")
    clock.advance(100)
    pool.record_check("a", True)
    pool.record_check("a", True)
    assert pool.strategy.servers["a"] == pytest.approx(0.1)
    clock.advance(10)
    pool.poll()
    assert pool.strategy.servers["a"] == pytest.approx(0.5)


# -- sticky -----------------------------------------------------------------------


def test_sticky_cookie_keeps_the_client_and_moves_it_when_down() -> None:
    pool, _ = make(sticky=True)
    first = pool.acquire()
    first.release()
    assert first.cookie is not None and first.moved is False
    for _ in range(10):
        with pool.acquire(cookie=first.cookie) as lease:
            assert lease.server == first.server and not lease.moved
            assert lease.cookie == first.cookie  # no expiry: the same cookie stays valid
    fail_checks(pool, first.server)
    with pool.acquire(cookie=first.cookie) as lease:
        assert lease.server != first.server
        assert lease.moved and lease.cookie is not None and lease.cookie != first.cookie
    with pool.acquire(cookie="forged.cookie") as lease:
        assert lease.moved and lease.cookie is not None


def test_cookies_of_a_retired_secret_are_honoured_and_re_signed() -> None:
    clock = ManualClock()
    old = Pool(RoundRobin(["a", "b"]), sticky=StickySession("old"), clock=clock)
    with old.acquire() as lease:
        pass
    assert lease.server == "a" and lease.cookie is not None
    # Rotation: the new secret signs, the old one is still accepted.
    rotated = Pool(RoundRobin(["a", "b"]), sticky=StickySession(["new", "old"]), clock=clock)
    rotated.acquire().release()  # the rotation alone would now pick "b"
    with rotated.acquire(cookie=lease.cookie) as again:
        assert again.server == "a" and not again.moved
    assert again.cookie is not None and again.cookie != lease.cookie
    # Once the old secret is dropped, the re-signed cookie still works.
    final = Pool(RoundRobin(["a", "b"]), sticky=StickySession("new"), clock=clock)
    final.acquire().release()
    with final.acquire(cookie=again.cookie) as last:
        assert last.server == "a" and not last.moved


def test_sticky_clients_may_reach_a_draining_server_until_its_deadline() -> None:
    clock = ManualClock()
    pool = Pool(
        RoundRobin(["a", "b"]),
        drainer=Drainer(timeout=10.0, sticky_until_deadline=True),
        sticky=StickySession("k"),
        clock=clock,
    )
    with pool.acquire() as lease:
        assert lease.server == "a" and lease.cookie is not None
    # Nothing is in flight on "a", yet its bound client may come back until the deadline.
    assert pool.drain("a").new is DrainState.DRAINING
    assert {pool.acquire().server for _ in range(4)} == {"b"}
    for _ in range(3):  # request after request, each released before the next
        clock.advance(3.0)
        with pool.acquire(cookie=lease.cookie) as again:
            assert again.server == "a" and not again.moved
    assert pool.poll() == []
    clock.advance(1.0)
    with pool.acquire(cookie=lease.cookie) as again:
        assert again.server == "b" and again.moved
    assert [(c.server, c.new) for c in pool.poll()] == [("a", DrainState.DRAINED)]


# -- every strategy ---------------------------------------------------------------


@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda cls: cls.__name__)
def test_pool_over_every_strategy(cls: type[Balancer]) -> None:
    pool, clock = make({f"s{i}": 1 + i % 2 for i in range(6)}, strategy=cls, slow_start=10)
    fail_checks(pool, "s1")
    pool.drain("s2")
    leases = [pool.acquire(key) for key in KEYS]
    assert not {lease.server for lease in leases} & {"s1", "s2"}
    pool.add_server("s9")
    clock.advance(3)
    leases += [pool.acquire(key) for key in KEYS]
    for i, lease in enumerate(leases):
        lease.release(ok=i % 11 != 0)
    stats = pool.stats()
    assert sum(s.requests for s in stats.values()) == 2 * len(KEYS)
    assert all(s.in_flight == 0 for s in stats.values())
    pool._check()


def test_session_ids_stick_through_the_route_table() -> None:
    pool, _ = make(sticky=True)
    with pool.acquire(session="alice") as first:
        pass
    for _ in range(5):
        with pool.acquire(session="alice") as lease:
            assert lease.server == first.server and not lease.moved
            assert lease.cookie == first.cookie  # no expiry: the same cookie stays valid
    fail_checks(pool, first.server)
    with pool.acquire(session="alice") as lease:
        assert lease.server != first.server and lease.moved
    with pool.acquire(session="alice") as again:
        assert again.server == lease.server and not again.moved
    with pool.acquire(session="bob") as fresh:
        assert not fresh.moved


def test_session_without_sticky_is_an_error() -> None:
    pool, _ = make(health=False)
    with pytest.raises(ValueError, match="StickySession"):
        pool.acquire(session="alice")
    assert all(s.in_flight == 0 for s in pool.stats().values())
    with pool.acquire(cookie="ignored") as lease:  # no sticky: cookies are ignored
        assert lease.cookie is None and not lease.moved
