"""Shared timing helpers for the benchmark suite (not part of the package)."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One measurement: ``impl`` doing ``case`` at pool size ``n`` costs ``value`` ``unit``."""

    group: str
    case: str
    n: int
    impl: str
    value: float
    unit: str = "ns/op"


def ns_per_op(loop: Callable[[int], object], ops: int, repeat: int = 7) -> float:
    """Median ns per operation of ``loop(ops)``, which must perform ``ops`` operations.

    The median of several runs resists noise from the other core; the garbage
    collector is paused so that a collection does not land in one run only.
    """
    loop(min(ops, 1000))  # warm caches and lazily built structures
    samples = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter_ns()
            loop(ops)
            samples.append((time.perf_counter_ns() - start) / ops)
    finally:
        if enabled:
            gc.enable()
    return statistics.median(samples)


def seconds(action: Callable[[], object], repeat: int = 3) -> float:
    """Median wall time of ``action()`` in seconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def paired_ratio(
    ours: Callable[[int], object], floor: Callable[[int], object], ops: int, rounds: int
) -> float:
    """Median over ``rounds`` of ns per op of ``ours`` / ``floor``, timed back to back.

    The two run in alternating order, one right after the other, in every
    round: a burst of load from another process usually lasts longer than a
    pair, so it spoils that round's ratio (which the median drops) instead
    of one side's time only.
    """
    ratios = []
    for round_ in range(rounds):
        if round_ % 2:
            a = ns_per_op(ours, ops, repeat=1)
            b = ns_per_op(floor, ops, repeat=1)
        else:
            b = ns_per_op(floor, ops, repeat=1)
            a = ns_per_op(ours, ops, repeat=1)
        ratios.append(a / b)
    return statistics.median(ratios)
