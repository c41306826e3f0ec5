"""PriorityPool and priority_loads against Envoy's priority-level tables and tests."""

from __future__ import annotations

import doctest
import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit import (
    HealthTracker,
    Maglev,
    ManualClock,
    NoServerAvailable,
    Pool,
    PriorityPool,
    RoundRobin,
)
from balancekit.priority import priority_loads

NO_PANIC = [0.0, 0.0, 0.0]


def percent_loads(*healthy_percents: int) -> list[int]:
    """Loads for levels of 100 servers each, ``p`` of them healthy, panic disabled."""
    n = len(healthy_percents)
    return priority_loads(list(healthy_percents), [100] * n, panic_thresholds=NO_PANIC[:n])


# -- Envoy's documentation tables (which leave panic mode aside) -----------------------


@pytest.mark.parametrize(
    ("p0", "expected"),
    [(100, [100, 0]), (72, [100, 0]), (71, [99, 1]), (50, [70, 30]), (25, [35, 65]), (0, [0, 100])],
)
def test_doc_table_two_levels_backup_healthy(p0: int, expected: list[int]) -> None:
    assert percent_loads(p0, 100) == expected


@pytest.mark.parametrize(
    ("p0", "p1", "expected"),
    [
        (100, 100, [100, 0]),
        (72, 72, [100, 0]),
        (71, 71, [99, 1]),
        (50, 50, [70, 30]),
        (25, 100, [35, 65]),
        (25, 25, [50, 50]),
    ],
)
def test_doc_table_two_levels(p0: int, p1: int, expected: list[int]) -> None:
    assert percent_loads(p0, p1) == expected


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ((100, 100, 100), [100, 0, 0]),
        ((72, 72, 100), [100, 0, 0]),
        ((71, 71, 100), [99, 1, 0]),
        ((50, 50, 100), [70, 30, 0]),
        ((25, 100, 100), [35, 65, 0]),
        ((25, 25, 100), [35, 35, 30]),
        # The page says 36/36/28; Envoy's code (distributeLoad) gives the rounding
        # remainder of 2 to the first healthy level, so Envoy itself answers 37/35/28.
        ((25, 25, 20), [37, 35, 28]),
    ],
)
def test_doc_table_three_levels(levels: tuple[int, int, int], expected: list[int]) -> None:
    assert percent_loads(*levels) == expected


# -- Envoy's load_balancer_impl tests (default panic threshold 50 %) -------------------


@pytest.mark.parametrize(
    ("healthy", "total", "expected"),
    [
        # GentleFailover
        ([1, 1], [1, 1], [100, 0]),
        ([1, 1], [2, 2], [70, 30]),
        ([1, 2], [4, 2], [35, 65]),
        ([1, 1], [4, 4], [50, 50]),
        # PrioritySelection: total panic, by number of servers
        ([0, 0], [1, 1], [50, 50]),
        ([0, 0], [1, 2], [34, 66]),
        ([0, 0, 1], [1, 2, 1], [0, 0, 100]),
        # GentleFailoverWithExtraLevels
        ([1, 1, 1], [1, 1, 1], [100, 0, 0]),
        ([1, 1, 1], [2, 2, 2], [70, 30, 0]),
        ([1, 2, 1], [4, 2, 2], [35, 65, 0]),
        ([1, 1, 1], [4, 4, 4], [35, 35, 30]),
        ([1, 1, 1], [5, 5, 5], [34, 33, 33]),
        ([0, 0, 5], [5, 5, 5], [0, 0, 100]),
        ([0, 0, 4], [5, 5, 5], [0, 0, 100]),
        ([0, 0, 2], [5, 5, 5], [34, 33, 33]),
        ([0, 0, 0], [5, 3, 2], [50, 30, 20]),
        ([0, 2, 1], [5, 6, 3], [37, 42, 21]),
        ([0, 0, 0], [3, 3, 3], [34, 33, 33]),
        ([0, 0, 0], [0, 6, 3], [0, 67, 33]),
    ],
)
def test_envoy_unit_tests(healthy: list[int], total: list[int], expected: list[int]) -> None:
    assert priority_loads(healthy, total) == expected


def test_envoy_overprovisioning_factor() -> None:
    assert priority_loads([2, 2], [4, 4]) == [70, 30]
    assert priority_loads([2, 2], [4, 4], overprovisioning_factor=1.0) == [50, 50]


def test_no_health_and_no_panic_gives_level_zero_everything() -> None:
    assert priority_loads([0, 0], [3, 3], panic_thresholds=[0, 0]) == [100, 0]


# -- properties ----------------------------------------------------------------------

levels = st.lists(
    st.integers(0, 20).flatmap(lambda t: st.tuples(st.integers(0, t), st.just(t))),
    min_size=1,
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(levels, st.floats(0.5, 3.0), st.lists(st.floats(0, 1), min_size=5, max_size=5))
def test_loads_are_percents_summing_to_100(
    counts: list[tuple[int, int]], factor: float, thresholds: list[float]
) -> None:
    healthy = [h for h, _ in counts]
    total = [t for _, t in counts]
    loads = priority_loads(
        healthy, total, overprovisioning_factor=factor, panic_thresholds=thresholds[: len(counts)]
    )
    assert sum(loads) == 100
    assert all(0 <= load <= 100 for load in loads)


@settings(max_examples=300, deadline=None)
@given(levels)
def test_loads_follow_health_monotonically(counts: list[tuple[int, int]]) -> None:
    # Without panic mode, more healthy servers in a level never cost it load, and
    # never give load to the levels after it.
    healthy = [h for h, _ in counts]
    total = [t for _, t in counts]
    none = [0.0] * len(counts)
    for level, (h, t) in enumerate(counts):
        if h < t:
            better = healthy.copy()
            better[level] += 1
            before = priority_loads(healthy, total, panic_thresholds=none)
            after = priority_loads(better, total, panic_thresholds=none)
            assert after[level] >= before[level]
            assert sum(after[level + 1 :]) <= sum(before[level + 1 :])


# -- PriorityPool over real Pools -------------------------------------------------------


def make_level(clock: ManualClock, prefix: str, size: int, down: int = 0) -> Pool:
    servers = [f"{prefix}{i}" for i in range(size)]
    tracker = HealthTracker(servers, unhealthy_threshold=1, clock=clock)
    pool = Pool(RoundRobin(servers), health=tracker, clock=clock)
    for server in servers[:down]:
        pool.record_check(server, ok=False)
    return pool


def test_levels_read_their_pools_health() -> None:
    clock = ManualClock()
    primary = make_level(clock, "p", 4, down=2)
    backup = make_level(clock, "b", 4)
    pools = PriorityPool([primary, backup], rng=random.Random(3))
    assert pools.level_health() == [70, 100]
    assert pools.level_loads() == [0.7, 0.3]
    assert pools.level_panic() == [False, False]
    picks = Counter(pools.acquire().server[0] for _ in range(4000))
    assert 2600 < picks["p"] < 3000 and picks["p"] + picks["b"] == 4000
    primary.record_check("p2", ok=False)
    primary.record_check("p3", ok=False)  # level 0 fully down
    assert pools.level_loads() == [0.0, 1.0]
    assert {pools.acquire().server[0] for _ in range(200)} == {"b"}


def test_per_level_panic_and_total_panic() -> None:
    clock = ManualClock()
    primary = make_level(clock, "p", 4, down=3)
    backup = make_level(clock, "b", 4, down=3)
    pools = PriorityPool([primary, backup])
    assert pools.level_health() == [35, 35]
    assert pools.level_panic() == [True, True]
    assert pools.level_loads() == [0.5, 0.5]


def test_without_health_checks_a_level_is_healthy() -> None:
    clock = ManualClock()
    pools = PriorityPool([Pool(RoundRobin(["a"]), clock=clock), make_level(clock, "b", 1)])
    assert pools.level_loads() == [1.0, 0.0]
    assert pools.acquire().server == "a"


def test_a_level_that_cannot_serve_falls_through() -> None:
    clock = ManualClock()
    primary = make_level(clock, "p", 2)
    backup = make_level(clock, "b", 2)
    primary.drain("p0")
    primary.drain("p1")  # healthy but drained: the draw may still land on level 0
    pools = PriorityPool([primary, backup], rng=random.Random(0))
    assert pools.level_loads() == [1.0, 0.0]
    assert pools.acquire().server.startswith("b")


def test_nothing_left_raises() -> None:
    clock = ManualClock()
    primary = make_level(clock, "p", 1)
    primary.drain("p0")
    pools = PriorityPool([primary])
    with pytest.raises(NoServerAvailable):
        pools.acquire()


def test_the_seeded_draw_is_reproducible() -> None:
    clock = ManualClock()
    primary = make_level(clock, "p", 2, down=1)
    backup = make_level(clock, "b", 2)
    first = PriorityPool([primary, backup], rng=random.Random(9))
    draws = [first.acquire().server for _ in range(50)]
    primary2 = make_level(clock, "p", 2, down=1)
    backup2 = make_level(clock, "b", 2)
    second = PriorityPool([primary2, backup2], rng=random.Random(9))
    assert [second.acquire().server for _ in range(50)] == draws


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (([],), {}, ValueError, "at least one Pool"),
        (("pools",), {}, TypeError, "sequence of Pools"),
        (([1],), {}, TypeError, "levels must hold Pools, got 1"),
        ((None,), {}, TypeError, "sequence of Pools"),
    ],
)
def test_bad_levels(
    args: tuple[object, ...], kwargs: dict[str, object], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        PriorityPool(*args, **kwargs)  # type: ignore[arg-type]


def test_bad_options() -> None:
    pool = Pool(RoundRobin(["a"]))
    with pytest.raises(ValueError, match="must not repeat a Pool"):
        PriorityPool([pool, pool])
    with pytest.raises(
        ValueError, match="overprovisioning_factor must be a finite number > 0, got 0"
    ):
        PriorityPool([pool], overprovisioning_factor=0)
    with pytest.raises(TypeError, match="overprovisioning_factor must be a number"):
        PriorityPool([pool], overprovisioning_factor="1.4")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"rng must be a random\.Random"):
        PriorityPool([pool], rng=3)  # type: ignore[arg-type]


def test_properties_and_repr() -> None:
    pool = Pool(RoundRobin(["a"]))
    pools = PriorityPool([pool], overprovisioning_factor=1.25, rng=random.Random(1))
    assert pools.levels == (pool,)
    assert pools.overprovisioning_factor == 1.25
    assert isinstance(pools.rng, random.Random)
    assert "overprovisioning_factor=1.25, loads=[100])" in repr(pools)


def test_the_page_runs_as_written() -> None:
    page = Path(__file__).resolve().parents[1] / "docs" / "priority.md"
    failures, tried = doctest.testfile(str(page), module_relative=False)
    assert tried >= 10 and failures == 0


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (([], []), {}, ValueError, r"total must count the servers of at least one level, got \[\]"),
        (([3], [2]), {}, ValueError, r"healthy\[0\] must be an int in \[0, 2\], got 3"),
        (([1, -1], [2, 2]), {}, ValueError, r"healthy\[1\] must be an int in \[0, 2\], got -1"),
        (([0], [-2]), {}, ValueError, r"total\[0\] must be an int >= 0, got -2"),
        (([1.0], [2]), {}, TypeError, r"healthy\[0\] must be an int in \[0, 2\], got 1.0"),
        (([True], [2]), {}, TypeError, r"healthy\[0\] must be an int"),
        (([1], [2, 2]), {}, ValueError, r"healthy must have 2 items, got 1: \[1\]"),
        (("1", [2]), {}, TypeError, "healthy must be a sequence, got '1'"),
        (([1], None), {}, TypeError, "total must be a sequence, got None"),
        (([1], [2]), {"overprovisioning_factor": -1}, ValueError, "> 0, got -1"),
        (([1], [2]), {"overprovisioning_factor": math.nan}, ValueError, "> 0, got nan"),
        (([1], [2]), {"overprovisioning_factor": 0}, ValueError, "> 0, got 0"),
        (([1], [2]), {"overprovisioning_factor": "2"}, TypeError, "must be a number, got '2'"),
        (([1], [2]), {"panic_thresholds": [0.5, 0.5]}, ValueError, "must have 1 items, got 2"),
        (([1], [2]), {"panic_thresholds": [1.5]}, ValueError, r"panic_thresholds\[0\] .* 1.5"),
        (([1], [2]), {"panic_thresholds": [math.nan]}, ValueError, "in \\[0, 1\\], got nan"),
    ],
)
def test_priority_loads_refuses_bad_input(
    args: tuple[object, ...], kwargs: dict[str, object], error: type, match: str
) -> None:
    healthy: Any = args[0]
    total: Any = args[1]
    with pytest.raises(error, match=match):
        priority_loads(healthy, total, **kwargs)  # type: ignore[arg-type]
    # and the edges stay valid: empty levels, all healthy, thresholds 0 and 1
    assert priority_loads([0, 2], [0, 2], panic_thresholds=[0, 1]) == [0, 100]


def random_state_after_bad_input(pools: PriorityPool, **options: Any) -> None:
    before = pools.rng.getstate()
    with pytest.raises((TypeError, ValueError)):
        pools.acquire(**options)
    assert pools.rng.getstate() == before


def test_bad_acquire_arguments_leave_the_rng_where_it_was() -> None:
    clock = ManualClock()
    pools = PriorityPool(
        [make_level(clock, "p", 2, down=1), make_level(clock, "b", 2)], rng=random.Random(5)
    )
    random_state_after_bad_input(pools, exclude=5)
    random_state_after_bad_input(pools, exclude="p0")
    random_state_after_bad_input(pools, exclude=[1])
    random_state_after_bad_input(pools, session="s1")  # no StickySession: ValueError
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        pools.acquire(colour=1)  # type: ignore[call-arg]
    hashed = PriorityPool(
        [Pool(Maglev(["a"]), clock=clock), Pool(Maglev(["b"]), clock=clock)],
        rng=random.Random(5),
    )
    random_state_after_bad_input(hashed)  # no key for a hash strategy: TypeError
    # the draws after the errors are those of a fresh rng of the same seed
    fresh = PriorityPool(
        [make_level(clock, "p", 2, down=1), make_level(clock, "b", 2)], rng=random.Random(5)
    )
    assert [pools.acquire(exclude=["p0"]).server for _ in range(20)] == [
        fresh.acquire(exclude=["p0"]).server for _ in range(20)
    ]
    assert pools.acquire(key="k", exclude=set()).server in {"p0", "p1", "b0", "b1"}
