"""Many seeds: Student's t intervals, the marks of the best and of ties, parallel runs."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import statistics
import threading
from pathlib import Path

import pytest

from balancekit.cli import main
from balancekit.sim._workers import run_in_processes
from balancekit.sim.scenario import KeySpec, Scenario, ServerSpec, ServiceSpec
from balancekit.sim.seeds import MAX_SEEDS, Figure, _mark, compare_seeds
from balancekit.sim.stats import Interval, interval, t_critical
from balancekit.strategies.round_robin import RoundRobin

# Two-sided 95 % (upper 0.975) critical values of Student's t, from the NIST/SEMATECH
# e-Handbook of Statistical Methods, table 1.3.6.7.2 (three decimals).
NIST_975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    20: 2.086,
    30: 2.042,
    100: 1.984,
}


@pytest.mark.parametrize(("df", "expected"), sorted(NIST_975.items()))
def test_t_critical_matches_the_published_table(df: int, expected: float) -> None:
    assert round(t_critical(0.95, df), 3) == expected


def test_t_critical_at_other_levels_and_its_limit() -> None:
    assert round(t_critical(0.99, 5), 3) == 4.032  # NIST, upper 0.995
    assert round(t_critical(0.80, 10), 3) == 1.372  # NIST, upper 0.90
    assert round(t_critical(0.998, 1), 3) == 318.309  # NIST, upper 0.999
    assert t_critical(0.95, 2000) == pytest.approx(1.96, abs=0.002)  # the normal's 1.960


@pytest.mark.parametrize(
    ("confidence", "df", "message"),
    [
        (0.0, 3, "confidence must be a number in (0, 1), got 0.0"),
        (1.0, 3, "confidence must be a number in (0, 1), got 1.0"),
        (0.95, 0, "df must be an integer >= 1, got 0"),
        (0.95, True, "df must be an integer >= 1, got True"),
    ],
)
def test_t_critical_refuses_bad_arguments(confidence: float, df: int, message: str) -> None:
    with pytest.raises(ValueError) as info:
        t_critical(confidence, df)
    assert str(info.value) == message


def test_interval_is_mean_plus_minus_t_times_the_standard_error() -> None:
    values = [4.0, 7.0, 5.0, 9.0, 6.0, 5.0]
    i = interval(values)
    half = 2.571 * statistics.stdev(values) / math.sqrt(6)  # t(0.975, 5) from the table
    assert i.mean == 6.0 and i.values == tuple(values)
    assert i.half_width == pytest.approx(half, rel=1e-3)
    assert (i.low, i.high) == pytest.approx((6.0 - half, 6.0 + half), rel=1e-3)
    assert interval([3.5]) == Interval(3.5, 3.5, 3.5, (3.5,))  # one value: no spread known
    with pytest.raises(ValueError, match="values must hold at least one number"):
        interval([])


def iv(mean: float, half: float) -> Interval:
    return Interval(mean, mean - half, mean + half, ())


def test_the_best_is_marked_and_overlapping_intervals_tie() -> None:
    intervals = [iv(10.0, 1.0), iv(11.5, 1.0), iv(14.0, 1.0), None]
    lowest = _mark(intervals, higher_is_better=False)
    marks = [(f.best, f.tied) for f in lowest]
    assert marks == [(True, False), (False, True), (False, False), (False, False)]
    assert lowest[3] == Figure(None)
    highest = _mark(intervals, higher_is_better=True)
    assert [(f.best, f.tied) for f in highest[:3]] == [(False, False)] * 2 + [(True, False)]
    # Equal means are all best; where everything ties, nothing is marked at all.
    equal = _mark([iv(5.0, 0.0), iv(5.0, 0.0), iv(6.0, 0.5)], higher_is_better=False)
    assert [f.best for f in equal] == [True, True, False] and not equal[2].tied
    alike = _mark([iv(5.0, 2.0), iv(6.0, 2.0)], higher_is_better=False)
    assert [(f.best, f.tied) for f in alike] == [(False, False), (False, False)]
    assert _mark([None, None], higher_is_better=True) == [Figure(None), Figure(None)]


HEAVY = Scenario(
    tuple(ServerSpec(f"s{i}", capacity=2) for i in range(3)),
    rate=40.0,
    requests=300,
    service=ServiceSpec("lognormal", mean=0.04, sigma=1.2),
    keys=KeySpec("uniform", universe=50),
    seed=11,
)


def test_intervals_narrow_as_seeds_grow() -> None:
    # A fixed scenario and fixed seeds: the same numbers every run, so no flake.
    widths = {}
    for seeds in (3, 8, 24):
        comparison = compare_seeds(HEAVY, ["least-connections"], seeds=seeds)
        (summary,) = comparison.strategies
        assert comparison.seeds == tuple(range(11, 11 + seeds)) and len(summary.runs) == seeds
        figure = summary.figures["latency_p99"]
        assert figure.interval is not None
        widths[seeds] = figure.interval.half_width
        values = [run.latency_p99 for run in summary.runs]
        assert figure.interval.values == tuple(values)
    # t x s / sqrt(n): here about 0.12 s at n = 3, 0.040 s at 8 and 0.028 s at 24
    assert widths[24] < widths[8] < widths[3]
    assert widths[24] < 0.5 * widths[3]


def test_parallel_runs_give_the_same_comparison() -> None:
    names = ["round-robin", "power-of-two-choices", "maglev"]
    alone = compare_seeds(HEAVY, names, seeds=3, jobs=1)
    together = compare_seeds(HEAVY, names, seeds=3, jobs=2)
    assert together == alone
    assert [s.strategy for s in together.strategies] == names


def test_jobs_two_and_one_print_identical_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "heavy.json"
    path.write_text(
        json.dumps(
            {
                "name": "heavy",
                "seed": 3,
                "rate": 40.0,
                "requests": 300,
                "service": {"distribution": "lognormal", "mean": 0.04, "sigma": 1.2},
                "servers": [{"name": "a", "capacity": 2}, {"name": "b"}, {"name": "c"}],
            }
        )
    )
    outputs = []
    for jobs in ("1", "2"):
        argv = ["compare", "--scenario", str(path), "--seeds", "4", "--jobs", jobs, "--json"]
        assert main(argv) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    document = json.loads(outputs[0])
    assert document["seeds"] == [3, 4, 5, 6] and len(document["strategies"]) >= 11


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"seeds": 0}, ValueError, "seeds must be an int >= 1, got 0"),
        ({"seeds": 2.0}, TypeError, "seeds must be an int >= 1, got 2.0"),
        ({"seeds": MAX_SEEDS + 1}, ValueError, "seeds must be at most 1000 (the limit per run)"),
        ({"jobs": True}, TypeError, "jobs must be an int >= 1, got True"),
        ({"jobs": 257}, ValueError, "jobs must be at most 256 (the limit of processes), got 257"),
    ],
)
def test_bad_seeds_or_jobs_are_refused_before_anything_runs(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        compare_seeds(HEAVY, ["round-robin"], **options)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


def test_seeds_may_not_run_past_the_largest_seed() -> None:
    last = HEAVY.with_seed(2**64 - 2)
    assert compare_seeds(last, ["round-robin"], seeds=2).seeds == (2**64 - 2, 2**64 - 1)
    with pytest.raises(ValueError, match="seeds must be at most 2 from seed"):
        compare_seeds(last, ["round-robin"], seeds=3)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "0"], "argument --seeds: must be an integer >= 1, got '0'"),
        (["--seeds", "two"], "argument --seeds: must be an integer >= 1, got 'two'"),
        (["--seeds", "1001"], "argument --seeds: must be at most 1,000 (the limit of seeds)"),
        (
            ["--seeds", "9" * 5000],
            "argument --seeds: must be at most 1,000 (the limit of seeds),"
            " got '99999999999999999999'... (5,000 characters)",
        ),
        (["--jobs", "-1"], "argument --jobs: must be an integer >= 1, got '-1'"),
        (["--jobs", "257"], "argument --jobs: must be at most 256 (the limit of processes)"),
        (
            ["--seed", str(2**64 - 1), "--seeds", "2"],
            "argument --seeds: must be at most 1 from seed 18,446,744,073,709,551,615",
        ),
    ],
)
def test_bad_seeds_or_jobs_on_the_command_line_give_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    for command in (["compare"], ["simulate", "--strategy", "maglev"]):
        status = main([*command, *argv])
        captured = capsys.readouterr()
        assert status == 2 and captured.out == ""
        assert captured.err.count("\n") == 1 and message in captured.err
        assert "Traceback" not in captured.err


class Refusing(RoundRobin):
    """A strategy that refuses every server set, as Maglev does when its table is too small."""

    def __init__(self, servers: object, **options: object) -> None:
        raise ValueError("table_size 7 is too small for 3 servers")


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_error_in_a_run_reaches_the_caller_and_no_worker_is_left(jobs: int) -> None:
    with pytest.raises(ValueError, match="table_size 7 is too small for 3 servers"):
        compare_seeds(HEAVY, ["round-robin", Refusing], seeds=3, jobs=jobs)
    assert multiprocessing.active_children() == []


class Dying(RoundRobin):
    """A strategy whose worker process dies outright (a crash, the OOM killer)."""

    def __init__(self, servers: object, **options: object) -> None:
        os._exit(3)


class Unpicklable(Exception):
    """An exception that cannot travel back from a worker (it holds a lock)."""

    def __init__(self) -> None:
        super().__init__("holds a lock")
        self.lock = threading.Lock()


class RaisingUnpicklable(RoundRobin):
    def __init__(self, servers: object, **options: object) -> None:
        raise Unpicklable()


class NeedsTwo(Exception):
    """An exception that pickles but cannot be rebuilt (its __init__ wants two arguments)."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} and {second}")


class RaisingNeedsTwo(RoundRobin):
    def __init__(self, servers: object, **options: object) -> None:
        raise NeedsTwo("the real reason", "its detail")


@pytest.mark.parametrize(
    ("strategy", "error", "match"),
    [
        (Dying, RuntimeError, r"a simulation worker died while running task \d+"),
        (RaisingUnpicklable, RuntimeError, "^Unpicklable: holds a lock$"),
        (RaisingNeedsTwo, RuntimeError, "^NeedsTwo: the real reason and its detail$"),
    ],
)
def test_a_worker_that_dies_or_cannot_answer_is_an_error_and_no_worker_is_left(
    strategy: type[RoundRobin], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        compare_seeds(HEAVY, ["round-robin", strategy], seeds=3, jobs=2)
    assert multiprocessing.active_children() == []


def test_leaving_the_results_early_ends_every_worker() -> None:
    tasks = [(HEAVY.with_seed(seed), "round-robin") for seed in range(1, 7)]
    results = run_in_processes(tasks, 2)
    index, first = next(results)
    assert 0 <= index < 6 and first.requests > 0
    results.close()
    assert multiprocessing.active_children() == []
