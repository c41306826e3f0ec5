"""Round robin under threads: throughput with 8 threads against 1, and the floors.

The same number of picks is made by one thread, then by 8 threads started
together (each doing an eighth), and the wall time of each is taken; the
rounds alternate between the cases, and each case keeps its best round. A
ratio near 1 means threads cost nothing; under the GIL they cannot add
throughput, but a lock they fight over takes it away (each handover of a
contended lock costs a switch of the GIL). Floors:

- ``floor: itertools.cycle``: ``next()`` on a cycle, the least a lock-free
  rotation can cost;
- ``floor: locked counter``: ``with lock: i += 1`` and an index, the least a
  locked one can cost.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

from bench_load import LockedCounter, weights
from timing import Row

from balancekit.strategies.round_robin import RoundRobin, WeightedRoundRobin

N = 100
THREADS = 8


def _wall(pick: Callable[[], object], total: int, threads: int) -> float:
    """Seconds for ``threads`` threads to make ``total`` picks between them."""
    share = total // threads
    start = threading.Barrier(threads + 1)

    def work() -> None:
        start.wait()
        for _ in itertools.repeat(None, share):
            pick()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return time.perf_counter() - began


def _pair(lb: RoundRobin) -> Callable[[], object]:
    return lambda: lb.acquire().release()


def _cases() -> list[tuple[str, Callable[[], object]]]:
    servers = list(weights(N))
    wrr = WeightedRoundRobin(weights(N))
    for _ in range(3 * int(sum(weights(N).values()))):
        wrr.get_server()  # let it record its period and replay it
    assert wrr.period is not None
    return [
        ("RoundRobin.get_server", RoundRobin(servers).get_server),
        (f"WeightedRoundRobin.get_server (replay, period {wrr.period})", wrr.get_server),
        ("RoundRobin.acquire+release (locked)", _pair(RoundRobin(servers))),
        ("floor: itertools.cycle", itertools.cycle(servers).__next__),
        ("floor: locked counter", LockedCounter(servers).get_server),
    ]


def run(quick: bool) -> list[Row]:
    total = 40_000 if quick else 200_000
    rounds = 3 if quick else 7
    cases = _cases()
    best = {(impl, t): float("inf") for impl, _ in cases for t in (1, THREADS)}
    for _ in range(rounds):
        for impl, pick in cases:
            for threads in (1, THREADS):
                best[impl, threads] = min(best[impl, threads], _wall(pick, total, threads))
    rows = []
    for impl, _ in cases:
        one, many = best[impl, 1], best[impl, THREADS]
        rows.append(Row("threads", "ns per pick, 1 thread", N, impl, one / total * 1e9))
        rows.append(Row("threads", f"ns per pick, {THREADS} threads", N, impl, many / total * 1e9))
        rows.append(
            Row(
                "threads", f"{THREADS}-thread / 1-thread throughput", N, impl, 100 * one / many, "%"
            )
        )
    return rows
