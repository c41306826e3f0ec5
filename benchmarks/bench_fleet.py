"""The fleet-scale features beside their peers and floors, in interleaved rounds.

For n in {10, 100, 1000} servers, ns per ``get_server``:

- ``ConsistentHash(compat="ketama")`` beside uhashring's ketama ring
  (``HashRing(hash_fn="ketama")``), the Python peer it must beat 2.5x;
- ``Maglev(compat="envoy")`` beside its floor, a bare
  ``table[xxh64_intdigest(key.encode()) % M]`` on the same table (within 2x);
- ``UtilizationRoundRobin`` fed reports (weights 1 to 4) beside
  ``WeightedRoundRobin`` with the same weights (within 1.5x).

Each group's cases take turns in every round, and each sample is the CPU
time of this thread (``time.thread_time_ns``), not wall time: on a shared
machine another process's burst then costs nothing, where a wall-clock median
swung these ratios by 3x under a load of 4 on 2 cores.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import xxhash
from bench_hash_tables import KEYS, Loop, _floor_loop, _interleaved, _pick_loop, _servers
from timing import Row

from balancekit import ConsistentHash, Maglev, UtilizationRoundRobin, WeightedRoundRobin

try:
    import uhashring
except ImportError:  # pragma: no cover - the benchmark extra is optional
    uhashring = None

GROUP = "fleet"
SIZES = (10, 100, 1000)


def _cpu_interleaved(loops: list[Loop], rounds: int) -> list[float]:
    """Median CPU ns per operation of each loop, the loops taking turns in every round."""
    return _interleaved(loops, 0.005, rounds, timer=time.thread_time_ns)


def _ketama(n: int, rounds: int) -> list[Row]:
    servers = [f"10.{i // 256}.{i % 256}.1:11211" for i in range(n)]
    ours = ConsistentHash(servers, compat="ketama")
    cases: list[tuple[str, Callable[[object], object]]] = [
        ("ConsistentHash compat=ketama", ours.get_server)
    ]
    if uhashring is not None:
        theirs = uhashring.HashRing(nodes=servers, hash_fn="ketama")
        cases.append(("peer uhashring ketama", theirs.get_node))
    loops = [_pick_loop(pick, list(KEYS)) for _, pick in cases]
    timings = _cpu_interleaved(loops, rounds)
    return [
        Row(GROUP, "ketama get_server", n, impl, ns)
        for (impl, _), ns in zip(cases, timings, strict=True)
    ]


def _envoy_maglev(n: int, rounds: int) -> list[Row]:
    lb = Maglev(_servers(n), compat="envoy")
    loops = [
        _pick_loop(lb.get_server, list(KEYS)),
        _floor_loop(list(lb._table), lb.table_size, KEYS, xxhash.xxh64_intdigest),
    ]
    timings = _cpu_interleaved(loops, rounds)
    impls = ("Maglev compat=envoy", "floor: bare table lookup (xxh64)")
    return [
        Row(GROUP, "envoy maglev get_server", n, impl, ns)
        for impl, ns in zip(impls, timings, strict=True)
    ]


def _fed(n: int) -> UtilizationRoundRobin:
    """A balancer whose servers reported weights 1 to 4; its weights are read at the
    first pick one update period later."""
    lb = UtilizationRoundRobin(_servers(n), blackout=0)
    for i, server in enumerate(lb.servers):
        lb.report(server, qps=100.0 * (1 + i % 4), utilization=1.0)
    return lb


def _utilization(lb: UtilizationRoundRobin, n: int, rounds: int) -> list[Row]:
    weighted = WeightedRoundRobin({s: 1 + i % 4 for i, s in enumerate(_servers(n))})
    no_key: list[object] = [None]
    loops = [_pick_loop(lb.get_server, no_key), _pick_loop(weighted.get_server, no_key)]
    timings = _cpu_interleaved(loops, rounds)
    impls = ("UtilizationRoundRobin (reports 1..4)", "WeightedRoundRobin (weights 1..4)")
    return [
        Row(GROUP, "weighted get_server", n, impl, ns)
        for impl, ns in zip(impls, timings, strict=True)
    ]


def run(quick: bool) -> list[Row]:
    """Measure every group at every pool size."""
    if uhashring is None:
        print("bench_fleet: uhashring not installed, its cases skipped", file=sys.stderr)
    rounds = 9 if quick else 51
    fed = {n: _fed(n) for n in SIZES}
    time.sleep(1.05)  # one update period: the first pick builds the scheduler from the reports
    rows: list[Row] = []
    for n in SIZES:
        rows += _ketama(n, rounds)
        rows += _envoy_maglev(n, rounds)
        rows += _utilization(fed[n], n, rounds)
    return rows


def ratios(rows: list[Row]) -> list[str]:
    """The three targets as ratios, one line per pool size."""
    value = {(r.case, r.n, r.impl): r.value for r in rows}
    lines = []
    for n in SIZES:
        ketama = value.get(("ketama get_server", n, "ConsistentHash compat=ketama"))
        peer = value.get(("ketama get_server", n, "peer uhashring ketama"))
        maglev = value[("envoy maglev get_server", n, "Maglev compat=envoy")]
        floor = value[("envoy maglev get_server", n, "floor: bare table lookup (xxh64)")]
        urr = value[("weighted get_server", n, "UtilizationRoundRobin (reports 1..4)")]
        wrr = value[("weighted get_server", n, "WeightedRoundRobin (weights 1..4)")]
        speedup = f"{peer / ketama:.2f}x" if ketama and peer else "n/a"
        lines.append(
            f"n={n}: uhashring/ketama {speedup}, maglev/floor {maglev / floor:.2f}x, "
            f"utilization/wrr {urr / wrr:.2f}x"
        )
    return lines


if __name__ == "__main__":
    measured = run("--quick" in sys.argv)
    for row in measured:
        print(f"{row.case:26} {row.n:>5} {row.impl:40} {row.value:>9,.0f} {row.unit}")
    print("\n".join(ratios(measured)))
