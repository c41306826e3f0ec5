from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from balancekit.hashing import hash_key
from balancekit.sim import SimulationResult, compare, simulate
from balancekit.sim.engine import render_key
from balancekit.sim.scenario import (
    CacheSpec,
    DrainSpec,
    FailureSpec,
    HealthSpec,
    KeySpec,
    Scenario,
    ServerSpec,
    ServiceSpec,
    TraceRow,
)
from balancekit.strategies.base import Balancer, Member
from balancekit.strategies.registry import (
    UnknownStrategy,
    kebab,
    make_strategy,
    strategy_names,
)

from .strategies.contract import STRATEGIES

NO_HEALTH = HealthSpec(enabled=False)


def servers(count: int, **options: Any) -> tuple[ServerSpec, ...]:
    return tuple(ServerSpec(f"s{i}", **options) for i in range(count))


def trace(times: list[float], service: float = 0.1) -> tuple[TraceRow, ...]:
    return tuple(TraceRow(t, None, service) for t in times)


def latencies(result: SimulationResult) -> tuple[float, ...]:
    return (result.latency_p50, result.latency_p95, result.latency_p99, result.latency_max)


# -- names ------------------------------------------------------------------------


def test_every_strategy_class_has_its_kebab_name() -> None:
    names = strategy_names()
    assert {kebab(cls.__name__) for cls in STRATEGIES} == set(names)
    assert all(kebab(cls.__name__) == name for name, cls in names.items())
    assert list(names)[:5] == [
        "round-robin",
        "weighted-round-robin",
        "least-connections",
        "power-of-two-choices",
        "least-response-time",
    ]
    assert kebab("IPHash") == "ip-hash" and kebab("BoundedLoadHash") == "bounded-load-hash"


def test_unknown_strategy_lists_the_known_ones() -> None:
    scenario = Scenario(servers(2), rate=1.0, requests=3)
    for call in (
        lambda: simulate(scenario, "fastest"),
        lambda: compare(scenario, ["round-robin", "fastest"]),
        lambda: make_strategy("fastest", {"a": 1.0}, clock=lambda: 0.0, rng=None),  # type: ignore[arg-type]
    ):
        with pytest.raises(UnknownStrategy) as info:
            call()
        assert isinstance(info.value, KeyError)
        assert str(info.value).startswith("unknown strategy 'fastest'; choose from: round-robin,")
    with pytest.raises(TypeError, match="strategy must be a name or a Balancer subclass"):
        simulate(scenario, 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="concrete"):
        simulate(scenario, Balancer)


def test_keys_render_as_distinct_ipv4_addresses() -> None:
    assert render_key(0) == "10.0.0.0"
    assert render_key(256 * 256 + 257) == "10.1.1.1"
    assert len({render_key(i) for i in range(70_000)}) == 70_000


# -- hand-computable cases -------------------------------------------------------


def test_one_server_never_queueing_has_the_service_time_as_latency() -> None:
    scenario = Scenario(
        servers(1), trace=trace([0.2 * i for i in range(20)]), health=NO_HEALTH, seed=3
    )
    result = simulate(scenario, "round-robin")
    assert (result.requests, result.completed, result.errors) == (20, 20, 0)
    for value in (*latencies(result), result.latency_mean):
        assert value == pytest.approx(0.1)
    assert result.elapsed == pytest.approx(3.9)  # the last arrives at 3.8
    assert result.throughput == pytest.approx(20 / 3.9)


def test_one_server_queueing_grows_by_the_arrival_gap() -> None:
    # Service 0.1 s, an arrival every 0.05 s: the server is busy from 0 on, so
    # request i ends at 0.1 (i + 1) and waited 0.1 + 0.05 i in all.
    scenario = Scenario(servers(1), trace=trace([0.05 * i for i in range(10)]), health=NO_HEALTH)
    result = simulate(scenario, "least-connections")
    expected = [0.1 + 0.05 * i for i in range(10)]
    assert result.latency_max == pytest.approx(expected[-1])
    assert result.latency_p50 == pytest.approx(expected[4])  # nearest rank: the 5th of 10
    assert result.latency_p95 == pytest.approx(expected[9])
    assert result.latency_mean == pytest.approx(sum(expected) / 10)
    assert result.elapsed == pytest.approx(1.0)


def test_capacity_two_absorbs_the_same_stream_and_speed_divides_service() -> None:
    times = [0.05 * i for i in range(10)]
    two_slots = Scenario(servers(1, capacity=2), trace=trace(times), health=NO_HEALTH)
    assert latencies(simulate(two_slots, "round-robin")) == pytest.approx((0.1,) * 4)
    fast = Scenario(servers(1, speed=2.5), trace=trace(times), health=NO_HEALTH)
    assert latencies(simulate(fast, "round-robin")) == pytest.approx((0.04,) * 4)


def test_cache_hit_when_the_key_was_last_served_by_the_same_server() -> None:
    rows = tuple(TraceRow(t, key, 0.1) for t, key in [(0, "a"), (1, "a"), (2, "b"), (3, "a")])
    scenario = Scenario(servers(1), trace=rows, cache=CacheSpec(3.0), health=NO_HEALTH)
    result = simulate(scenario, "round-robin")
    assert result.cache_hit_ratio == 0.5  # miss, hit, miss, hit
    assert result.latency_max == pytest.approx(0.3) and result.latency_p50 == pytest.approx(0.1)
    # Alternating between two servers, no request finds its key where it was last served.
    rotated = Scenario(servers(2), trace=rows, cache=CacheSpec(3.0), health=NO_HEALTH)
    assert simulate(rotated, "round-robin").cache_hit_ratio == 0.25  # only the last "a"
    assert simulate(Scenario(servers(1), trace=rows), "round-robin").cache_hit_ratio is None


def test_round_robin_over_identical_servers_gives_equal_counts() -> None:
    scenario = Scenario(
        servers(4, capacity=2),
        rate=200.0,
        requests=400,
        service=ServiceSpec("exponential", mean=0.02),
        seed=11,
    )
    result = simulate(scenario, "round-robin")
    assert [s.requests for s in result.servers] == [100, 100, 100, 100]
    assert result.peak_to_mean == 1.0


def test_weighted_round_robin_follows_weights() -> None:
    specs = (ServerSpec("big", capacity=4, weight=3), ServerSpec("small", capacity=4, weight=1))
    scenario = Scenario(specs, rate=50.0, requests=400, service=ServiceSpec("fixed", mean=0.01))
    result = simulate(scenario, "weighted-round-robin")
    assert [s.requests for s in result.servers] == [300, 100]
    assert result.peak_to_mean == pytest.approx(1.0)


# -- failures and drains ------------------------------------------------------------


def test_a_failure_is_detected_routed_around_and_recovered() -> None:
    scenario = Scenario(
        servers(4, capacity=4),
        rate=100.0,
        duration=30.0,
        service=ServiceSpec("fixed", mean=0.02),
        failures=(FailureSpec("s1", at=5.0, until=15.0),),
        health=HealthSpec(interval=2.0, timeout=1.0, consecutive_failures=3),
        seed=5,
    )
    result = simulate(scenario, "round-robin")
    changes = [(t.server, t.old, t.new) for t in result.transitions]
    assert changes == [
        ("s1", "healthy", "ejected"),  # passive: three failed requests
        ("s1", "ejected", "unhealthy"),  # active: three failed probes, at 6, 8 and 10
        ("s1", "unhealthy", "healthy"),  # two good probes after recovery at 15
    ]
    ejected, unhealthy, healthy = (t.at for t in result.transitions)
    assert 5.0 < ejected < 5.2 and unhealthy == 10.0 and healthy == 18.0
    s1 = result.servers[1]
    assert s1.errors == result.errors == 3  # what it held at 5.0 failed too, none here
    others = [s.requests for s in result.servers if s.name != "s1"]
    assert s1.requests < min(others) * 0.8  # it missed its turns while out


def test_a_drain_stops_new_work_and_cuts_what_outlives_the_timeout() -> None:
    scenario = Scenario(
        servers(2, capacity=1),
        trace=(*trace([0.0, 0.1], 10.0), *trace([1.0, 2.0])),
        drains=(DrainSpec("s0", at=0.5, timeout=3.0),),
        health=NO_HEALTH,
    )
    result = simulate(scenario, "round-robin")
    assert [(t.at, t.server, t.new) for t in result.transitions] == [
        (0.5, "s0", "draining"),
        (3.5, "s0", "drained"),  # the deadline cut s0's 10 s request
    ]
    assert [s.requests for s in result.servers] == [1, 3]
    assert result.errors == 1 and result.servers[0].errors == 1
    assert result.completed == 3


# -- determinism ------------------------------------------------------------------

SMALL = Scenario(
    tuple(
        ServerSpec(f"s{i}", capacity=1 + i % 3, speed=0.5 + i / 4, weight=1 + i) for i in range(5)
    ),
    rate=150.0,
    requests=600,
    service=ServiceSpec("lognormal", mean=0.02, sigma=1.2),
    keys=KeySpec("zipf", universe=300, s=1.1),
    cache=CacheSpec(2.0),
    failures=(FailureSpec("s2", at=1.0, until=2.5),),
    drains=(DrainSpec("s4", at=3.0, timeout=0.5),),
    health=HealthSpec(interval=0.5, timeout=0.2, jitter=0.1),
    slow_start=1.0,
    seed=9,
)


def test_same_seed_same_result_for_every_strategy() -> None:
    first = compare(SMALL)
    again = compare(SMALL)
    assert first == again
    assert json.dumps([r.to_dict() for r in first]) == json.dumps([r.to_dict() for r in again])
    assert [r.strategy for r in first] == list(strategy_names())
    assert len({r.requests for r in first}) == 1  # one request stream for all
    other = simulate(SMALL.with_seed(10), "least-connections")
    assert other.latency_p99 != first[2].latency_p99 and other.elapsed != first[2].elapsed


def test_compare_draws_the_stream_once_and_gives_what_simulate_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from balancekit.sim import draws, engine

    calls = []
    real = draws.requests

    def counted(scenario: Scenario) -> Any:
        calls.append(scenario.seed)
        return real(scenario)

    monkeypatch.setattr(draws, "requests", counted)
    names = ["round-robin", "least-response-time", "consistent-hash"]
    shared = compare(SMALL, names)
    assert calls == [SMALL.seed]  # one draw for the three runs
    alone = [simulate(SMALL, name) for name in names]
    assert shared == alone
    # Past the size shared in memory, each run draws its own: the same results.
    monkeypatch.setattr(engine, "SHARED_STREAM", 10)
    calls.clear()
    assert compare(SMALL, names) == alone
    assert calls == [SMALL.seed] * 3


def test_a_strategy_draws_no_request_randomness() -> None:
    # Power of two choices consumes random numbers; the stream must not shift.
    p2c, rr = compare(SMALL, ["power-of-two-choices", "round-robin"])
    assert p2c.requests == rr.requests and p2c.elapsed != rr.elapsed
    assert simulate(SMALL, "round-robin") == rr


# -- what queueing and hashing predict -------------------------------------------------


def test_heavy_tails_favour_load_aware_strategies() -> None:
    scenario = Scenario(
        servers(8),
        rate=110.0,  # 69 % utilisation of 8 single-slot servers
        requests=4000,
        service=ServiceSpec("lognormal", mean=0.05, sigma=1.5),
        health=NO_HEALTH,
        seed=1,
    )
    rr, *aware = compare(
        scenario,
        ["round-robin", "least-connections", "least-response-time", "power-of-two-choices"],
    )
    for result in aware:
        assert result.latency_p99 < 0.75 * rr.latency_p99, (result.strategy, result.latency_p99)


def test_bounded_loads_cap_the_hot_server_and_the_plain_ring_does_not() -> None:
    scenario = Scenario(
        servers(8, capacity=8),
        rate=400.0,
        requests=3000,
        service=ServiceSpec("exponential", mean=0.05),
        keys=KeySpec("zipf", universe=1000, s=1.5),  # key 0 is ~38 % of requests
        health=NO_HEALTH,
        seed=4,
    )
    ring, bounded = compare(scenario, ["consistent-hash", "bounded-load-hash"])
    assert ring.peak_to_mean > 2.5
    assert bounded.peak_to_mean < 1.6
    assert bounded.peak_to_mean < 0.5 * ring.peak_to_mean


class ModuloHash(Balancer):
    """``hash(key) % n`` over the servers of weight > 0: the textbook non-consistent hash."""

    requires_key = True

    def _rebuild(self) -> None:
        self._live = [m for m in self._members.values() if m.weight > 0]

    def _choose(self, key: Any) -> Member:
        if not self._live:
            raise self._unavailable()
        return self._live[hash_key(key) % len(self._live)]


def test_removing_a_server_moves_a_tenth_under_the_ring_and_most_under_modulo() -> None:
    scenario = Scenario(
        servers(10, capacity=4),
        rate=50.0,
        duration=25.0,
        service=ServiceSpec("fixed", mean=0.01),
        keys=KeySpec("uniform", universe=2000),
        failures=(FailureSpec("s3", at=5.0, until=20.0),),
        health=HealthSpec(interval=1.0, timeout=0.5),
        seed=2,
    )
    ring, modulo = compare(scenario, ["consistent-hash", ModuloHash])
    assert modulo.strategy == "modulo-hash"
    assert ring.keys_moved is not None and 0.05 < ring.keys_moved < 0.16
    assert modulo.keys_moved is not None and modulo.keys_moved > 0.8
    counts = Counter(t.server for t in ring.transitions)
    assert counts == {"s3": 3}  # ejected, unhealthy, healthy again
    assert simulate(scenario, "least-connections").keys_moved is None
