"""The Pool's cost on top of its strategy: ns per acquire+release.

The same strategy is timed bare and inside a Pool with a HealthTracker (no
probe due, no state change: the steady state of a busy client pool), and
with a StickySession cookie on every request, at 10 to 1,000 servers.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

from timing import Row, ns_per_op

from balancekit import HealthTracker, LeastConnections, Pool, StickySession
from balancekit.lease import Lease

SIZES = (10, 100, 1_000)


def cycle(acquire: Callable[[], Lease]) -> Callable[[int], None]:
    def loop(ops: int) -> None:
        for _ in itertools.repeat(None, ops):
            acquire().release()

    return loop


def run(quick: bool) -> list[Row]:
    ops = 2_000 if quick else 20_000
    rows: list[Row] = []
    for n in SIZES:
        servers = [f"10.0.{i // 250}.{i % 250}:80" for i in range(n)]
        bare = LeastConnections(servers)
        pool = Pool(LeastConnections(servers), health=HealthTracker())
        sticky = Pool(LeastConnections(servers), health=HealthTracker(), sticky=StickySession("k"))
        cookie = sticky.acquire().cookie
        cases: dict[str, Callable[[], Lease]] = {
            "LeastConnections (bare)": bare.acquire,
            "Pool(LeastConnections, health)": pool.acquire,
            "Pool(..., health, sticky cookie)": functools.partial(sticky.acquire, cookie=cookie),
        }
        for name, acquire in cases.items():
            rows.append(Row("pool", "acquire+release", n, name, ns_per_op(cycle(acquire), ops)))
    return rows
