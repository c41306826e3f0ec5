"""Strategies over many seeds: every figure as a mean with a confidence interval, the best
per figure marked, and the strategies that cannot be told apart from it.

One seed is one sample: heavy-tailed runs differ from seed to seed, so a
difference in one run may be noise. :func:`compare_seeds` runs each strategy
on the seeds ``scenario.seed``, ``scenario.seed + 1``, ... (every strategy on
the same request streams), optionally in parallel processes, and summarises
each figure of :data:`METRICS` with :func:`balancekit.sim.stats.interval`.
A run is a pure function of its scenario, seed and strategy, so the result
does not depend on ``jobs``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..strategies.registry import Strategy, resolve, strategy_names
from ..validate import check_count
from ._workers import Task, run_in_processes
from .engine import Streams, Ticker, simulate_sharing
from .results import SimulationResult
from .scenario import MAX_SEED, Scenario
from .stats import Interval, interval

__all__ = [
    "CONFIDENCE",
    "DEFAULT_SEEDS",
    "MAX_JOBS",
    "MAX_SEEDS",
    "METRICS",
    "Comparison",
    "Figure",
    "Metric",
    "StrategySummary",
    "compare_seeds",
    "default_jobs",
]

DEFAULT_SEEDS = 5
"""Seeds per strategy when none is given: the built-in scenario's 12 strategies x 5 seeds
take about 9 s of CPU, about 5 s on two idle cores, so that the README's first command
(install, then ``balancekit compare``) finishes well within 20 s."""

MAX_SEEDS = 1000
"""The most seeds one comparison may run."""

MAX_JOBS = 256
"""The most worker processes."""

CONFIDENCE = 0.95
"""The confidence level of the intervals."""


class Metric(NamedTuple):
    """A figure of :class:`SimulationResult`: its attribute ``name`` and whether a higher
    value is better."""

    name: str
    higher_is_better: bool


METRICS = (
    Metric("throughput", True),
    Metric("latency_p50", False),
    Metric("latency_p95", False),
    Metric("latency_p99", False),
    Metric("errors", False),
    Metric("peak_to_mean", False),
    Metric("cache_hit_ratio", True),
    Metric("keys_moved", False),
    Metric("retries", False),
    Metric("retries_refused", False),
    Metric("overflows", False),
)
"""The figures summarised per strategy, in table order."""

Progress = Callable[[SimulationResult], None]
"""``progress(result)``: called as each run ends (in the order they end)."""


@dataclass(frozen=True)
class Figure:
    """One figure of one strategy over the seeds: its ``interval`` (``None`` when the
    figure does not apply, as keys moved for a load-aware strategy), whether it is
    the ``best`` of its column, and whether it is ``tied`` with the best (the
    intervals overlap: the difference may be noise). In a column where every
    strategy is best or tied, nothing can be told apart and neither is set."""

    interval: Interval | None
    best: bool = False
    tied: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: mean, low, high, best, tied and the per-seed values. O(seeds).

        ``low`` and ``high`` are ``None`` for a single seed: one value says nothing
        of the spread, and a zero-width interval would claim it is known exactly.
        """
        if self.interval is None:
            return {"mean": None, "values": None}
        i = self.interval
        spread = len(i.values) > 1
        return {
            "mean": i.mean,
            "low": i.low if spread else None,
            "high": i.high if spread else None,
            "best": self.best,
            "tied": self.tied,
            "values": list(i.values),
        }


@dataclass(frozen=True)
class StrategySummary:
    """One strategy over the seeds: its ``runs`` (one per seed, in seed order) and a
    :class:`Figure` per metric name."""

    strategy: str
    runs: tuple[SimulationResult, ...]
    figures: dict[str, Figure]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with every run in full. O(seeds x (servers + transitions))."""
        return {
            "strategy": self.strategy,
            "metrics": {name: figure.to_dict() for name, figure in self.figures.items()},
            "runs": [run.to_dict() for run in self.runs],
        }


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare_seeds` returns: the ``seeds`` run, the ``confidence`` level and
    a :class:`StrategySummary` per strategy, in the order asked for."""

    scenario: Scenario
    seeds: tuple[int, ...]
    confidence: float
    strategies: tuple[StrategySummary, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data. O(size of every run)."""
        return {
            "scenario": self.scenario.name,
            "seeds": list(self.seeds),
            "confidence": self.confidence,
            "interval": "Student's t",
            "strategies": [summary.to_dict() for summary in self.strategies],
        }


def default_jobs() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells). O(1)."""
    count: Callable[[], int | None] | None = getattr(os, "process_cpu_count", None)  # 3.13+
    if count is None and hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, (count or os.cpu_count)() or 1)


def compare_seeds(
    scenario: Scenario,
    strategies: Iterable[Strategy] | None = None,
    *,
    seeds: int = DEFAULT_SEEDS,
    jobs: int = 1,
    progress: Progress | None = None,
    ticker: Ticker | None = None,
) -> Comparison:
    """Run each strategy (default: every one) on ``seeds`` seeds from ``scenario.seed`` on,
    and summarise every figure. ``jobs`` > 1 runs the simulations in that many worker
    processes (a Balancer subclass of your own must then be importable by them);
    the result is the same for any ``jobs``.

    ``progress(result)`` is called as each run ends, ``ticker`` within runs as in
    :func:`~balancekit.sim.simulate` (with ``jobs=1`` only: workers report nothing
    until a run ends).

    >>> from balancekit.sim.scenario import Scenario, ServerSpec
    >>> s = Scenario((ServerSpec("a"), ServerSpec("b")), rate=50.0, requests=200)
    >>> c = compare_seeds(s, ["round-robin"], seeds=3)
    >>> c.seeds, [len(summary.runs) for summary in c.strategies]
    ((0, 1, 2), [3])

    Complexity: strategies x seeds simulations, over ``min(jobs, runs)`` processes.

    Raises:
        TypeError: ``seeds`` or ``jobs`` not an int; an item neither a name nor a
            Balancer subclass.
        ValueError: ``seeds`` not in [1, ``MAX_SEEDS``], ``jobs`` not in [1,
            ``MAX_JOBS``], or seeds past ``MAX_SEED``.
        UnknownStrategy: (a ``KeyError``) an unknown name, before anything runs.
    """
    check_count("seeds", seeds)
    check_count("jobs", jobs)
    if seeds > MAX_SEEDS:
        raise ValueError(f"seeds must be at most {MAX_SEEDS} (the limit per run), got {seeds}")
    if jobs > MAX_JOBS:
        raise ValueError(f"jobs must be at most {MAX_JOBS} (the limit of processes), got {jobs}")
    if scenario.seed + seeds - 1 > MAX_SEED:
        raise ValueError(
            f"seeds must be at most {MAX_SEED - scenario.seed + 1} from seed {scenario.seed}"
            f" (the largest seed is 2**64 - 1), got {seeds}"
        )
    known = strategy_names()
    chosen = [resolve(item, known) for item in (known if strategies is None else strategies)]
    seed_list = tuple(range(scenario.seed, scenario.seed + seeds))
    tasks = [
        # A known strategy travels to a worker by name; a class of your own as itself.
        (scenario.with_seed(seed), name if known.get(name) is cls else cls)
        for name, cls in chosen
        for seed in seed_list
    ]
    results: list[SimulationResult | None] = [None] * len(tasks)
    for index, result in _run(tasks, jobs, ticker):
        results[index] = result
        if progress is not None:
            progress(result)
    runs = [r for r in results if r is not None]
    groups = [tuple(runs[i : i + seeds]) for i in range(0, len(runs), seeds)]
    return Comparison(scenario, seed_list, CONFIDENCE, _summaries(groups))


def _run(
    tasks: list[Task], jobs: int, ticker: Ticker | None
) -> Iterator[tuple[int, SimulationResult]]:
    """``(index, result)`` for every task, in the order they end.

    Every process draws each seed's request stream once and shares it between
    the strategies it runs on that seed (:func:`~.engine.simulate_sharing`).
    """
    if jobs == 1 or len(tasks) == 1:
        streams: Streams = {}
        for index, (scenario, strategy) in enumerate(tasks):
            yield index, simulate_sharing(scenario, strategy, streams, ticker=ticker)
        return
    yield from run_in_processes(tasks, jobs)


def _summaries(groups: list[tuple[SimulationResult, ...]]) -> tuple[StrategySummary, ...]:
    columns: dict[str, list[Figure]] = {}
    for metric in METRICS:
        intervals = [_interval(runs, metric.name) for runs in groups]
        columns[metric.name] = _mark(intervals, metric.higher_is_better)
    return tuple(
        StrategySummary(
            runs[0].strategy, runs, {name: figures[i] for name, figures in columns.items()}
        )
        for i, runs in enumerate(groups)
    )


def _interval(runs: tuple[SimulationResult, ...], name: str) -> Interval | None:
    values = [getattr(run, name) for run in runs]
    present = [float(value) for value in values if value is not None]
    return interval(present, CONFIDENCE) if present else None


def _mark(intervals: list[Interval | None], higher_is_better: bool) -> list[Figure]:
    """The best (by mean) and those whose interval overlaps a best one's. O(rows)."""
    means = [i.mean for i in intervals if i is not None]
    if not means:
        return [Figure(None) for _ in intervals]
    top = max(means) if higher_is_better else min(means)
    best = [i for i in intervals if i is not None and i.mean == top]
    figures = []
    for i in intervals:
        if i is None:
            figures.append(Figure(None))
        elif i.mean == top:
            figures.append(Figure(i, best=True))
        else:
            figures.append(Figure(i, tied=any(i.overlaps(b) for b in best)))
    if all(f.best or f.tied for f in figures if f.interval is not None):
        return [Figure(f.interval) for f in figures]  # nothing to tell apart
    return figures
