"""UtilizationRoundRobin and gRPC's static stride scheduler (gRFC A58)."""

from __future__ import annotations

import doctest
import math
import random
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit import ManualClock, NoServerAvailable, UnknownServer, UtilizationRoundRobin
from balancekit.strategies._stride import (
    BLOCK_LANES,
    MAX_WEIGHT,
    SEQUENCE_LIMIT,
    StrideBlocks,
    stride_pick,
    stride_weights,
)
from balancekit.strategies.base import Balancer
from balancekit.strategies.utilization import MIN_UPDATE_PERIOD

from .contract import run_in_threads


def scheduler_picks(weights: list[float], count: int) -> list[int]:
    """``count`` picks of gRPC's scheduler over ``weights``, sequence from 0."""
    scaled = stride_weights(weights)
    assert scaled is not None
    picks: list[int] = []
    # Bounded: every backend is picked at least once per MAX_WEIGHT generations.
    for sequence in range(count * len(scaled) * MAX_WEIGHT):
        index = stride_pick(scaled, sequence)
        if index is not None:
            picks.append(index)
            if len(picks) == count:
                return picks
    raise AssertionError(f"only {len(picks)} picks of {count}")


def tally(picks: list[int], n: int) -> list[int]:
    counts = Counter(picks)
    return [counts[i] for i in range(n)]


def balancer(weights: list[float], **options: float) -> tuple[UtilizationRoundRobin, ManualClock]:
    """A balancer whose servers s0, s1, ... reported ``weights`` (0: no report)."""
    clock = ManualClock()
    lb = UtilizationRoundRobin(
        [f"s{i}" for i in range(len(weights))], blackout=0, clock=clock, **options
    )
    for i, weight in enumerate(weights):
        if weight:
            lb.report(f"s{i}", qps=weight, utilization=1.0)
    clock.advance(lb.update_period)
    return lb, clock


def lb_picks(lb: UtilizationRoundRobin, count: int) -> list[int]:
    return [int(lb.get_server()[1:]) for _ in range(count)]


# -- gRPC's scheduler tests, as known answers ---------------------------------------


@pytest.mark.parametrize("weights", [[], [0], [0, 0, 0, 0], [1]])
def test_no_scheduler(weights: list[float]) -> None:
    assert stride_weights(weights) is None


@pytest.mark.parametrize(
    ("weights", "count", "expected"),
    [
        ([1, 2, 3], 6, [1, 2, 3]),  # PicksAreWeightedExactly
        ([3, 0, 1], 6, [3, 2, 1]),  # ZeroWeightUsesMean
        ([81] + [1] * 19, 69, [50] + [1] * 19),  # MaxIsClampedForHighRatio
        ([100, 1e-10], 201, [200, 1]),  # MinIsClampedForHighRatio
    ],
)
def test_grpc_pick_counts(weights: list[float], count: int, expected: list[int]) -> None:
    assert tally(scheduler_picks(weights, count), len(weights)) == expected
    lb, _ = balancer(weights)
    assert tally(lb_picks(lb, count), len(weights)) == expected
    lb._check()


def test_all_weights_equal_is_round_robin() -> None:
    picks = scheduler_picks([300, 300, 0], 1003)
    assert sorted(picks[:3]) == [0, 1, 2]
    assert picks == picks[:3] * 334 + picks[:1]
    lb, _ = balancer([300, 300, 0])
    assert lb_picks(lb, 1003) == picks


def test_largest_is_picked_every_generation() -> None:
    picks = scheduler_picks([1, 2, 3], MAX_WEIGHT * 2)  # mean 2: one pass over all sequences
    assert picks.count(2) == MAX_WEIGHT


def test_picks_are_deterministic_and_rebuilds_give_the_same_picks() -> None:
    first, _ = balancer([1, 2, 3])
    second, _ = balancer([1, 2, 3])
    assert lb_picks(first, 100) == lb_picks(second, 100) == scheduler_picks([1, 2, 3], 100)


@settings(max_examples=4, deadline=None)
@given(st.lists(st.floats(0.01, 100), min_size=2, max_size=3))
def test_counts_over_a_full_cycle_equal_the_scaled_weights(weights: list[float]) -> None:
    scaled = stride_weights(weights)
    assert scaled is not None
    n = len(scaled)
    counts = [0] * n
    for sequence in range(n * MAX_WEIGHT):
        index = stride_pick(scaled, sequence)
        if index is not None:
            counts[index] += 1
    assert counts == list(scaled)
    # and the scaled weights keep the proportions, to within rounding
    top = max(weights)
    for weight, got in zip(weights, scaled, strict=True):
        if top / weight <= 10:  # not clamped
            assert got == pytest.approx(weight / top * MAX_WEIGHT, abs=1)


def test_scaling_rounds_halves_away_from_zero_as_c() -> None:
    # 3 x 65535 / 10 = 19660.5: C's lround gives 19661, Python's round() 19660.
    assert stride_weights([10, 3]) == (65535, 19661)


# -- weights from reports ------------------------------------------------------------


def test_weight_is_qps_over_utilization_plus_error_penalty() -> None:
    clock = ManualClock()
    lb = UtilizationRoundRobin(["a", "b"], blackout=0, error_penalty=2.0, clock=clock)
    lb.report("a", qps=100, utilization=0.5, eps=10)  # 100 / (0.5 + 10/100 * 2)
    assert lb.reported_weight("a") == pytest.approx(100 / 0.7, rel=1e-6)
    lb.report("b", qps=100, utilization=0.5)
    assert lb.reported_weight("b") == 200
    no_penalty = UtilizationRoundRobin(["a"], blackout=0, error_penalty=0, clock=clock)
    no_penalty.report("a", qps=100, utilization=0.5, eps=50)
    assert no_penalty.reported_weight("a") == 200


def test_reports_without_qps_or_utilization_are_ignored() -> None:
    lb = UtilizationRoundRobin(["a"], blackout=0, clock=ManualClock())
    lb.report("a", qps=10, utilization=1)
    lb.report("a", qps=0, utilization=1)
    lb.report("a", qps=10, utilization=0)
    assert lb.reported_weight("a") == 10


def test_blackout_and_expiration() -> None:
    clock = ManualClock()
    lb = UtilizationRoundRobin(["a", "b"], clock=clock)  # blackout 10 s, expiration 180 s
    lb.report("a", qps=30, utilization=1)
    lb.report("b", qps=10, utilization=1)
    clock.advance(9.5)
    assert lb.reported_weight("a") == 0  # still in its blackout
    assert lb_picks_named(lb, 4) == "abab"  # no weights yet: round robin
    clock.advance(0.5)
    assert lb.reported_weight("a") == 30
    assert lb_picks_named(lb, 4) == "abab"  # the weights were last read at 9.5
    clock.advance(0.5)
    lb.get_server()  # re-reads: a now 3x b
    assert Counter(lb_picks_named(lb, 400)) == {"a": 300, "b": 100}
    clock.advance(180)  # no report for 180 s: both expire
    assert lb.reported_weight("a") == lb.reported_weight("b") == 0
    lb.get_server()  # the re-reading that ends their runs
    lb.report("a", qps=30, utilization=1)
    lb.report("b", qps=10, utilization=1)
    assert lb.reported_weight("a") == 0  # a new blackout from this report
    clock.advance(10)
    assert lb.reported_weight("a") == 30


def lb_picks_named(lb: UtilizationRoundRobin, count: int) -> str:
    return "".join(lb.get_server() for _ in range(count))


def test_weights_are_reread_at_most_once_per_period() -> None:
    clock = ManualClock()
    lb = UtilizationRoundRobin(["a", "b"], blackout=0, update_period=5, clock=clock)
    lb.report("a", qps=1000, utilization=1)
    lb.report("b", qps=1, utilization=1)
    clock.advance(4.9)
    assert lb_picks_named(lb, 4) == "abab"  # the scheduler still has no weights
    clock.advance(0.1)
    assert Counter(lb_picks_named(lb, 100))["a"] >= 90
    assert UtilizationRoundRobin(update_period=0.01).update_period == MIN_UPDATE_PERIOD


def test_a_server_without_a_weight_gets_the_mean() -> None:
    lb, _ = balancer([3, 0, 1])
    assert tally(lb_picks(lb, 600), 3) == [300, 200, 100]


def test_membership() -> None:
    clock = ManualClock()
    lb = UtilizationRoundRobin(["a", "b", "c"], blackout=0, clock=clock)
    for server in "abc":
        lb.report(server, qps=10, utilization=1)
    lb.set_weight("c", 0)  # out of the rotation
    assert set(lb_picks_named(lb, 10)) == {"a", "b"}
    lb.remove_server("b")
    with pytest.raises(UnknownServer):
        lb.reported_weight("b")
    lb.add_server("b")
    assert lb.reported_weight("b") == 0  # a server that comes back starts without a weight
    lb._check()
    lb.remove_server("a")
    lb.remove_server("b")
    lb.remove_server("c")
    with pytest.raises(NoServerAvailable):
        lb.get_server()


def test_one_server_and_no_reports_are_round_robin() -> None:
    assert lb_picks_named(UtilizationRoundRobin(["a"]), 3) == "aaa"
    assert lb_picks_named(UtilizationRoundRobin(["a", "b", "c"]), 6) == "abcabc"


def test_acquire_counts_in_flight() -> None:
    lb, _ = balancer([1, 3])
    with lb.acquire() as lease:
        assert lb.in_flight(lease.server) == 1
    assert lb.in_flight("s0") == lb.in_flight("s1") == 0


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("figures", "error", "match"),
    [
        ({"qps": -1, "utilization": 1}, ValueError, "qps must be a finite number >= 0, got -1"),
        ({"qps": 1, "utilization": math.nan}, ValueError, "utilization must be a finite number"),
        ({"qps": 1, "utilization": 1, "eps": -2}, ValueError, "eps must be a finite number"),
        ({"qps": math.inf, "utilization": 1}, ValueError, "qps must be a finite number"),
        ({"qps": "1", "utilization": 1}, TypeError, "qps must be a number, got '1'"),
        ({"qps": 1, "utilization": True}, TypeError, "utilization must be a number"),
    ],
)
def test_bad_reports_change_nothing(figures: dict[str, object], error: type, match: str) -> None:
    lb = UtilizationRoundRobin(["a"], blackout=0, clock=ManualClock())
    lb.report("a", qps=5, utilization=1)
    with pytest.raises(error, match=match):
        lb.report("a", **figures)  # type: ignore[arg-type]
    assert lb.reported_weight("a") == 5


def test_report_from_an_unknown_server() -> None:
    lb = UtilizationRoundRobin(["a"])
    with pytest.raises(UnknownServer):
        lb.report("b", qps=1, utilization=1)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"blackout": -1}, ValueError, "blackout"),
        ({"expiration": 0}, ValueError, "expiration must be a finite number > 0, got 0"),
        ({"error_penalty": math.nan}, ValueError, "error_penalty"),
        ({"update_period": -1}, ValueError, "update_period"),
        ({"update_period": None}, TypeError, "update_period must be a number, got None"),
    ],
)
def test_bad_options(options: dict[str, object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        UtilizationRoundRobin(["a"], **options)  # type: ignore[arg-type]


def test_repr_and_options() -> None:
    lb = UtilizationRoundRobin({"a": 1}, blackout=5, expiration=60, error_penalty=0.5)
    assert repr(lb) == (
        "UtilizationRoundRobin({'a': 1.0}, blackout=5.0, expiration=60.0, "
        "error_penalty=0.5, update_period=1.0)"
    )
    assert (lb.blackout, lb.expiration, lb.error_penalty) == (5, 60, 0.5)
    assert "weight=0.0" in repr(lb._reports["a"])


def test_the_page_runs_as_written() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "strategies" / "utilization.md"
    failures, tried = doctest.testfile(str(page), module_relative=False)
    assert tried >= 8 and failures == 0


def test_in_a_pool_unhealthy_servers_leave_the_schedule() -> None:
    from balancekit import HealthTracker, Pool

    clock = ManualClock()
    lb = UtilizationRoundRobin(["a", "b", "c"], blackout=0, clock=clock)
    pool = Pool(lb, health=HealthTracker(["a", "b", "c"], unhealthy_threshold=1, clock=clock))
    for server, qps in (("a", 300), ("b", 100), ("c", 100)):
        lb.report(server, qps=qps, utilization=1.0)
    clock.advance(1.0)
    counts = Counter()
    for _ in range(500):
        with pool.acquire() as lease:
            counts[lease.server] += 1
    assert counts == {"a": 300, "b": 100, "c": 100}
    pool.record_check("a", ok=False)
    assert {pool.acquire().server for _ in range(50)} == {"b", "c"}
    lb._check()


def test_a_server_back_from_weight_zero_waits_out_a_new_blackout() -> None:
    clock = ManualClock()
    lb = UtilizationRoundRobin(["a", "b"], blackout=5, clock=clock)
    lb.report("a", qps=10, utilization=1)
    clock.advance(6)
    assert lb.reported_weight("a") == 10
    lb.set_weight("a", 0)  # e.g. unhealthy in a Pool
    lb.set_weight("a", 1)  # healthy again: its old reports wait a new blackout
    lb.report("a", qps=10, utilization=1)
    assert lb.reported_weight("a") == 0
    clock.advance(5)
    assert lb.reported_weight("a") == 10
    lb.set_weight("b", 2)  # a change between positive weights restarts nothing
    assert lb.reported_weight("a") == 10


# -- blocks of picks: the same sequence as the scheduler tried one by one ------------


def one_by_one(weights: tuple[int, ...], start: int, count: int) -> tuple[list[int], int]:
    """``count`` picks of :func:`stride_pick` from sequence ``start``, and the next start."""
    picks: list[int] = []
    sequence = start
    for _ in range(count * len(weights) * MAX_WEIGHT):  # bounded, as in scheduler_picks
        if len(picks) == count:
            break
        index = stride_pick(weights, sequence)
        sequence = (sequence + 1) % SEQUENCE_LIMIT
        if index is not None:
            picks.append(index)
    return picks, sequence


@pytest.mark.parametrize("seed", range(6))
def test_blocks_give_the_schedulers_picks_and_wrap_at_2_to_the_32(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(20):
        n = rng.randint(2, 30)
        floats = [rng.choice([rng.uniform(0.01, 100), 1.0, 3.0, 0.0]) for _ in range(n)]
        weights = stride_weights(floats) or tuple([1] * n)
        start = rng.choice([0, rng.randrange(SEQUENCE_LIMIT), SEQUENCE_LIMIT - rng.randint(1, 900)])
        blocks = StrideBlocks(weights, list(range(n)))
        picks: list[int] = []
        sequence, generations = start, 1
        for _ in range(1500):  # a block picks at least once unless it starts mid-generation
            if len(picks) >= 1500:
                break
            got, lanes, sequence = blocks.block(sequence, generations)
            assert len(got) == sum(lanes) and set(lanes) <= {0, 1}
            picks += got
            generations = min(2 * generations, blocks.most_generations)
        assert picks == one_by_one(weights, start, len(picks))[0], (weights, start)
    assert StrideBlocks((65535, 1), "ab").most_generations == BLOCK_LANES // 2
    assert StrideBlocks(tuple([9] * 5000), ["x"] * 5000).most_generations == 1
    with pytest.raises(ValueError, match="same length >= 1, got 2 and 1"):
        StrideBlocks((1, 2), "a")


class Reference:
    """The balancer as the scheduler one sequence number at a time: weights re-read
    at the first pick ``update_period`` after the last reading, the sequence going on."""

    def __init__(self, lb: UtilizationRoundRobin, clock: ManualClock) -> None:
        self.lb, self.clock = lb, clock
        self.sequence, self.turn, self.due = 0, 0, -math.inf
        self.weights: tuple[int, ...] | None = None

    def pick(self) -> str:
        names = [s for s, w in self.lb.servers.items() if w > 0]
        if self.clock() >= self.due:
            self.weights = stride_weights([self.lb.reported_weight(s) for s in names])
            self.due = self.clock() + self.lb.update_period
        if self.weights is None:
            self.turn += 1
            return names[(self.turn - 1) % len(names)]
        (index,), self.sequence = one_by_one(self.weights, self.sequence, 1)
        return names[index]


def test_picks_follow_the_scheduler_across_reports_and_refreshes() -> None:
    rng = random.Random(7)
    clock = ManualClock()
    servers = [f"s{i}" for i in range(7)]
    lb = UtilizationRoundRobin(servers, blackout=0, clock=clock)
    reference = Reference(lb, clock)
    for round_ in range(60):
        for _ in range(rng.choice([1, 5, 300, 3000])):  # long runs cross several blocks
            assert lb.get_server() == reference.pick()
        if round_ % 3:
            server = rng.choice(servers)
            lb.report(server, qps=rng.choice([50, 100, 400]), utilization=rng.choice([0.2, 1.0]))
        clock.advance(rng.choice([0.3, 0.6, 1.0]))
        lb._check()
    assert reference.weights is not None  # the scheduler was in use, not the fallback


def test_the_locked_pick_gives_the_lock_free_picks() -> None:
    # On a free-threaded build get_server is Balancer.get_server (every pick under
    # the lock, through _choose): the same schedule, across blocks and a refresh.
    locked, clock = balancer([1.0, 2.0, 3.0, 0.5])
    lock_free, other = balancer([1.0, 2.0, 3.0, 0.5])
    for _ in range(2):
        picks = [Balancer.get_server(locked) for _ in range(5000)]
        assert picks == [lock_free.get_server() for _ in range(5000)]
        locked.report("s0", qps=4.0, utilization=1.0)
        lock_free.report("s0", qps=4.0, utilization=1.0)
        clock.advance(1.0)
        other.advance(1.0)
    locked._check()


def test_lock_free_picks_are_exact_under_eight_threads() -> None:
    # Each pick is one next() on the block's iterator, atomic under the GIL: eight
    # threads together take exactly the picks one thread would, across blocks.
    lb, _ = balancer([1.0, 2.0, 3.0, 0.5, 2.5])
    twin, _ = balancer([1.0, 2.0, 3.0, 0.5, 2.5])
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def work(index: int) -> None:
        mine = Counter(lb.get_server() for _ in range(5000))
        with lock:
            counts.update(mine)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: picks interleave
    try:
        run_in_threads(work, 8)
    finally:
        sys.setswitchinterval(interval)
    assert counts == Counter(twin.get_server() for _ in range(8 * 5000))
    assert lb.get_server() == twin.get_server()  # and the schedule goes on alike
    lb._check()
