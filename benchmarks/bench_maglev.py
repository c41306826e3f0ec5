"""Maglev table rebuilds per (n servers, M slots), beside a minimal pure-Python floor.

The floor is the paper's fill with nothing else, written inline: the same
(offset, skip) pairs from XXH3, the servers taking turns, each walking its
permutation past taken slots of a plain list, then the table of server ids.
A second floor probes a bytearray of taken flags instead of the list, as
``populate`` does. ``Maglev(servers, table_size=M)`` does that plus its checks, sorting, and the
weighted fill's bookkeeping. Both are timed in alternating rounds, the best
of each kept. The largest tables (M = 1,000,003) take seconds: they run in
two rounds only, and not at all with ``--quick``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from timing import Row

from balancekit.hashing import hash_server
from balancekit.strategies.maglev import Maglev

GRID = ((100, 65_537), (1_000, 65_537), (1_000, 1_000_003), (10_000, 1_000_003))
TARGET = (1_000, 65_537)  # the target: Maglev <= 1.5x the floor here


def floor_build(servers: list[str], size: int) -> list[str]:
    """The paper's fill, plainly: the least Python can do for the same table (equal weights)."""
    names = sorted(servers)
    nexts = [hash_server(name, 0, 0) % size for name in names]
    skips = [hash_server(name, 1, 0) % (size - 1) + 1 for name in names]
    owner = [-1] * size
    count = len(names)
    filled = 0
    while True:
        for i in range(count):
            slot = nexts[i]
            skip = skips[i]
            while owner[slot] >= 0:
                slot += skip
                if slot >= size:
                    slot -= size
            owner[slot] = i
            slot += skip
            nexts[i] = slot - size if slot >= size else slot
            filled += 1
            if filled == size:
                return [names[i] for i in owner]


def floor_build_bytes(servers: list[str], size: int) -> list[str]:
    """The same, probing a bytearray of taken flags: no scattered int objects to read."""
    names = sorted(servers)
    nexts = [hash_server(name, 0, 0) % size for name in names]
    skips = [hash_server(name, 1, 0) % (size - 1) + 1 for name in names]
    owner = [0] * size
    taken = bytearray(size)
    count = len(names)
    for turn in range(size):
        i = turn % count
        slot = nexts[i]
        skip = skips[i]
        while taken[slot]:
            slot += skip
            if slot >= size:
                slot -= size
        taken[slot] = 1
        owner[slot] = i
        slot += skip
        nexts[i] = slot - size if slot >= size else slot
    return [names[i] for i in owner]


def _seconds(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run(quick: bool) -> list[Row]:
    grid = [cell for cell in GRID if not quick or cell[1] < 1_000_000]
    rounds = 2 if quick else 5
    best: dict[tuple[int, int, str], float] = {}
    for round_ in range(rounds):
        for n, size in grid:
            if size > 100_000 and round_ >= 2:
                continue  # seconds each: two rounds are enough
            servers = [f"10.{i // 250}.{i % 250}.1:80" for i in range(n)]
            cases: list[tuple[str, Callable[[], object]]] = [
                ("Maglev", lambda s=servers, m=size: Maglev(s, table_size=m)),
                ("floor: textbook fill", lambda s=servers, m=size: floor_build(s, m)),
                ("floor: byte probes", lambda s=servers, m=size: floor_build_bytes(s, m)),
            ]
            for impl, build in cases:
                key = (n, size, impl)
                best[key] = min(best.get(key, float("inf")), _seconds(build))
    for floor in (floor_build, floor_build_bytes):  # the floors build the very same table
        assert Maglev(["a", "b", "c"], table_size=101)._table == floor(["a", "b", "c"], 101)
    rows = []
    for (n, size, impl), value in best.items():
        rows.append(Row("maglev", f"rebuild, M = {size:,}", n, impl, value * 1e3, "ms"))
    for n, size in grid:
        ratio = best[n, size, "Maglev"] / best[n, size, "floor: textbook fill"]
        case = "target <= 150" if (n, size) == TARGET else "ratio"
        rows.append(Row("maglev", f"{case}, M = {size:,}", n, "Maglev / floor", 100 * ratio, "%"))
        ratio = best[n, size, "Maglev"] / best[n, size, "floor: byte probes"]
        rows.append(
            Row("maglev", f"ratio, M = {size:,}", n, "Maglev / byte floor", 100 * ratio, "%")
        )
    return rows
