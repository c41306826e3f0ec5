"""WeightedRoundRobin membership changes at 1,000 to 100,000 servers, with the collector on.

One change is ``add_server`` then ``remove_server`` of one extra server (two
rebuilds: the time per change is half the pair). Weights 1..5 in turn, after
some picks. The collector stays on, as in a real process, so a rebuild that
leaves many tracked objects behind pays for it in later collections. The
floor, timed in the same rounds, is the least an O(n) rebuild can do: a
list of the members of weight > 0 and the sum of their weights, from the
same dict of member records.
"""

from __future__ import annotations

import itertools
import time

from bench_load import weights
from timing import Row

from balancekit.strategies.base import Member
from balancekit.strategies.round_robin import WeightedRoundRobin

SIZES = (1_000, 10_000, 100_000)


def _floor(members: dict[str, Member]) -> float:
    rotation = [m for m in members.values() if m.weight > 0]
    return sum(m.weight for m in rotation)


def run(quick: bool) -> list[Row]:
    sizes = SIZES[:2] if quick else SIZES
    rounds = 3 if quick else 7
    balancers = {n: WeightedRoundRobin(weights(n)) for n in sizes}
    for lb in balancers.values():
        for _ in range(1000):
            lb.get_server()
    best: dict[tuple[int, str], float] = {}
    for _ in range(rounds):
        for n, lb in balancers.items():
            start = time.perf_counter()
            lb.add_server("extra:80", 2)
            lb.remove_server("extra:80")
            took = (time.perf_counter() - start) / 2
            best[n, "WeightedRoundRobin"] = min(best.get((n, "WeightedRoundRobin"), 1e9), took)
            start = time.perf_counter()
            _floor(lb._members)
            took = time.perf_counter() - start
            best[n, "floor: list of members"] = min(
                best.get((n, "floor: list of members"), 1e9), took
            )
    rows = [Row("churn", "one change", n, impl, s * 1e3, "ms") for (n, impl), s in best.items()]
    for small, large in itertools.pairwise(sizes):
        growth = best[large, "WeightedRoundRobin"] / best[small, "WeightedRoundRobin"]
        rows.append(
            Row("churn", f"growth from n = {small:,}", large, "WeightedRoundRobin", growth, "x")
        )
    return rows
