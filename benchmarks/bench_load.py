"""Load-based strategies: ns per get_server and per acquire+release, with floors.

Pool sizes 10 to 10,000, weights 1..5 in turn. While acquire+release pairs
are timed, one lease per server stays open, so that loads differ by weight
as they would under traffic. The floors are measured in the same run, as
the cheapest plain-Python way to do the same job:

- ``floor: itertools.cycle``: ``next()`` on a cycle, a rotation with no lock;
- ``floor: locked counter``: a method that does ``with lock: i += 1`` and
  indexes the list, the least a thread-safe round robin can cost in Python;
- ``floor: min() over loads``: one C-speed ``min()`` over a list of n
  floats, the least an O(n) least-load scan can cost.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable

from timing import Row, ns_per_op

from balancekit.lease import Lease
from balancekit.strategies.base import Balancer
from balancekit.strategies.least_load import LeastConnections, PowerOfTwoChoices
from balancekit.strategies.response_time import LeastResponseTime
from balancekit.strategies.round_robin import RoundRobin, WeightedRoundRobin

SIZES = (10, 100, 1_000, 10_000)


class LockedCounter:
    """The floor for a thread-safe rotation: a lock, an increment, an index."""

    def __init__(self, servers: list[str]) -> None:
        self._servers = servers
        self._lock = threading.Lock()
        self._i = 0

    def get_server(self) -> str:
        with self._lock:
            self._i += 1
            return self._servers[self._i % len(self._servers)]


def weights(n: int, extra: float = 0.0) -> dict[str, float]:
    return {f"10.0.{i // 250}.{i % 250}:80": 1 + i % 5 + extra for i in range(n)}


def calls(f: Callable[[], object]) -> Callable[[int], None]:
    def loop(ops: int) -> None:
        for _ in itertools.repeat(None, ops):
            f()

    return loop


def acquire_release(lb: Balancer) -> Callable[[int], None]:
    def loop(ops: int) -> None:
        acquire = lb.acquire
        for _ in itertools.repeat(None, ops):
            acquire().release()

    return loop


def strategies(n: int) -> list[tuple[str, Balancer]]:
    wrr = WeightedRoundRobin(weights(n))
    period = sum(weights(n).values())  # gcd 1 here
    for _ in range(int(2 * period) + 1):  # let it find and start replaying the period
        wrr.get_server()
    mode = f"replay, period {wrr.period:,}" if wrr.period else "engine"
    return [
        ("RoundRobin", RoundRobin(weights(n))),
        (f"WeightedRoundRobin ({mode})", wrr),
        ("WeightedRoundRobin (engine: weights + 0.5)", WeightedRoundRobin(weights(n, 0.5))),
        ("LeastConnections", LeastConnections(weights(n))),
        ("PowerOfTwoChoices", PowerOfTwoChoices(weights(n), rng=random.Random(1))),
        ("LeastResponseTime", LeastResponseTime(weights(n))),
    ]


def cases(n: int, base: int) -> list[tuple[str, str, Callable[[int], None], int]]:
    """(case, impl, loop, ops) for every floor and strategy at pool size ``n``."""
    servers = list(weights(n))
    loads = [random.Random(n).random() for _ in range(n)]
    found: list[tuple[str, str, Callable[[int], None], int]] = [
        ("get_server", "floor: itertools.cycle", calls(itertools.cycle(servers).__next__), base),
        ("get_server", "floor: locked counter", calls(LockedCounter(servers).get_server), base),
        (
            "get_server",
            "floor: min() over loads",
            calls(lambda: min(loads)),
            max(20, base * 10 // n),
        ),
    ]
    for impl, lb in strategies(n):
        found.append(("get_server", impl, calls(lb.get_server), base))
        found.append(("acquire+release", impl, acquire_release(lb), base))
        HELD.extend(lb.acquire() for _ in range(n))  # one open lease per server, on average
    return found


HELD: list[Lease] = []
"""Leases kept open while the pairs are timed (released at the end)."""


def run(quick: bool) -> list[Row]:
    """Measure every strategy and floor at each pool size.

    Every case is timed in several rounds, interleaved across cases and
    pool sizes, and the best round is kept: another process taking the CPU
    for a while then spoils one round of every case, not all rounds of one.
    """
    base = 2_000 if quick else 20_000
    rounds = 2 if quick else 5
    table = [(n, *case) for n in SIZES for case in cases(n, base)]
    best = [float("inf")] * len(table)
    for _ in range(rounds):
        for i, (_, _, _, loop, ops) in enumerate(table):
            best[i] = min(best[i], ns_per_op(loop, ops, repeat=3))
    for lease in HELD:
        lease.release()
    HELD.clear()
    return [
        Row("load", case, n, impl, value)
        for (n, case, impl, _, _), value in zip(table, best, strict=True)
    ]
