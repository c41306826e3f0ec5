"""The simulator's CPU per request as runs grow, and ``compare`` on the built-in scenario.

An overloaded scenario (4 servers of capacity 2 serving 0.1 s requests, 80 a
second of capacity, offered 100 a second) keeps a growing queue of live
requests and leases: the case where a collector that walks every live
object makes each request dearer as the run goes on. CPU seconds (this
process's) per request at 10,000, 100,000 and 1,000,000 requests, with
``least-connections``; the target is a flat cost, 1,000,000 / 10,000 <= 1.1x.
The 1,000,000-request runs (best of two) take about half a minute each and
are skipped by ``--quick``.

``compare`` is timed for one seed: every strategy on the built-in scenario,
in this process (CPU seconds, best of 3). It draws the request stream once for
all of them; the ``balancekit compare`` command runs each (strategy, seed) as
its own ``simulate``, which draws it again.
"""

from __future__ import annotations

import time

from timing import Row

from balancekit.sim.engine import compare, simulate
from balancekit.sim.scenario import BUILTIN_SCENARIO, Scenario, ServerSpec, ServiceSpec

SIZES = (10_000, 100_000, 1_000_000)


def overloaded(requests: int) -> Scenario:
    servers = tuple(ServerSpec(f"s{i}", capacity=2) for i in range(4))
    return Scenario(
        servers, rate=100.0, requests=requests, service=ServiceSpec("fixed", mean=0.1), seed=1
    )


def _cpu(action: object) -> float:
    start = time.process_time()
    action()  # type: ignore[operator]
    return time.process_time() - start


def run(quick: bool) -> list[Row]:
    sizes = SIZES[:2] if quick else SIZES
    per_request = {}
    for n in sizes:
        scenario = overloaded(n)
        rounds = 3 if n < 1_000_000 else 2
        per_request[n] = (
            min(_cpu(lambda s=scenario: simulate(s, "least-connections")) for _ in range(rounds))
            / n
        )
    rows = [
        Row("sim", "CPU per request, overloaded", n, "simulate(least-connections)", s * 1e6, "us")
        for n, s in per_request.items()
    ]
    last = sizes[-1]
    growth = per_request[last] / per_request[sizes[0]]
    rows.append(
        Row("sim", f"growth to n = {last:,} (target <= 1.1)", sizes[0], "simulate", growth, "x")
    )
    best = min(_cpu(lambda: compare(BUILTIN_SCENARIO)) for _ in range(2 if quick else 3))
    rows.append(
        Row("sim", "compare, built-in scenario, 1 seed", 0, "every strategy", best, "s CPU")
    )
    return rows
