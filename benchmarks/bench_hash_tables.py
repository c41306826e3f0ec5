"""Maglev, JumpHash and Rendezvous lookups and rebuilds, beside their peers and floors.

For n in {10, 100, 1000} servers:

- ns per ``get_server`` with string keys for Maglev, JumpHash and Rendezvous
  (equal and unequal weights), and with 64-bit int keys for JumpHash;
- peers: the ``jump`` package (C; string keys first go through the same
  XXH3-64 step) and ``hrw`` (SHA-256 per replica, then a sort);
- floor: a bare ``table[xxh3_64_intdigest(key.encode()) % M]`` on a list of
  M = 65537 server ids, which Maglev should stay within 2x of;
- time to build a Maglev table (M = 65537) and to add then remove one server.
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import time
from collections.abc import Callable
from itertools import cycle, islice

import xxhash
from timing import Row, seconds

from balancekit.strategies.jump import JumpHash
from balancekit.strategies.maglev import Maglev
from balancekit.strategies.rendezvous import Rendezvous

try:
    import jump
except ImportError:  # pragma: no cover - the benchmark extra is optional
    jump = None
try:
    import hrw
except ImportError:  # pragma: no cover
    hrw = None

GROUP = "hash_tables"
SIZES = (10, 100, 1000)
KEYS = [f"user-{i}:session" for i in range(4096)]
_RNG = random.Random(7)
INT_KEYS = [_RNG.getrandbits(64) for _ in range(4096)]


Loop = Callable[[int], None]


def _pick_loop(pick: Callable[[object], object], keys: list[object]) -> Loop:
    def loop(ops: int) -> None:
        for key in islice(cycle(keys), ops):
            pick(key)

    return loop


def _floor_loop(
    table: list[str],
    size: int,
    keys: list[str],
    digest: Callable[[bytes], int] = xxhash.xxh3_64_intdigest,
) -> Loop:
    def loop(ops: int) -> None:
        for key in islice(cycle(keys), ops):
            table[digest(key.encode()) % size]

    return loop


def _interleaved(
    loops: list[Loop], sample: float, rounds: int, timer: Callable[[], int] = time.perf_counter_ns
) -> list[float]:
    """Median ns per operation of each loop, the loops taking turns in every round.

    Each round runs every loop for about ``sample`` seconds, one after the
    other, so a burst of load from another process slows the cases of a round
    alike: the ratios between cases (Maglev against its floor) stay meaningful
    on a busy machine. Many short rounds beat a few long ones for that.
    """
    ops = []
    for loop in loops:
        loop(200)  # warm up
        estimate = seconds(lambda loop=loop: loop(200), repeat=3) / 200
        ops.append(max(20, int(sample / max(estimate, 1e-9))))
    samples: list[list[float]] = [[] for _ in loops]
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for i, loop in enumerate(loops):
                start = timer()
                loop(ops[i])
                samples[i].append((timer() - start) / ops[i])
    finally:
        if enabled:
            gc.enable()
    return [statistics.median(runs) for runs in samples]


def _lookups(n: int, rounds: int) -> list[Row]:
    """ns per pick for our classes, the peers and the floor, at pool size ``n``."""
    servers = _servers(n)
    str_keys: list[object] = list(KEYS)
    int_keys: list[object] = list(INT_KEYS)
    maglev = Maglev(servers)
    jumper = JumpHash(servers)
    cases: list[tuple[str, str, Callable[[object], object], list[object]]] = [
        ("get_server str", "Maglev", maglev.get_server, str_keys),
        ("get_server str", "JumpHash", jumper.get_server, str_keys),
        ("get_server int", "JumpHash", jumper.get_server, int_keys),
        ("get_server str", "Rendezvous", Rendezvous(servers).get_server, str_keys),
        (
            "get_server str",
            "Rendezvous weighted",
            Rendezvous(_weights(servers)).get_server,
            str_keys,
        ),
    ]
    digest = xxhash.xxh3_64_intdigest
    if jump is not None:
        jump_hash = jump.hash
        cases.append(
            (
                "get_server str",
                "peer jump (C) + xxh3",
                lambda k: servers[jump_hash(digest(k.encode()), n)],
                str_keys,
            )
        )
        cases.append(
            ("get_server int", "peer jump (C)", lambda k: servers[jump_hash(k, n)], int_keys)
        )
    if hrw is not None:
        replicas = [s.encode() for s in servers]
        cases.append(
            (
                "get_server str",
                "peer hrw (sha256)",
                lambda k: hrw.sort(k.encode(), replicas)[0],
                str_keys,
            )
        )
    # The floor: Maglev's own table, looked up with no method call around it.
    floor = _floor_loop(list(maglev._table), maglev.table_size, KEYS)
    labels = [(case, impl) for case, impl, _, _ in cases]
    labels.insert(1, ("get_server str", "floor: bare table lookup"))
    loops = [_pick_loop(pick, keys) for _, _, pick, keys in cases]
    loops.insert(1, floor)
    timings = _interleaved(loops, 0.002, rounds)
    return [Row(GROUP, case, n, impl, ns) for (case, impl), ns in zip(labels, timings, strict=True)]


def _changes(n: int, repeat: int) -> list[Row]:
    """Build and add+remove-one times at pool size ``n``, in microseconds."""
    servers = _servers(n)
    weighted = _weights(servers)
    rows = [
        Row(GROUP, "build", n, "Maglev", seconds(lambda: Maglev(servers), repeat) * 1e6, "us"),
        Row(
            GROUP,
            "build",
            n,
            "Maglev weighted",
            seconds(lambda: Maglev(weighted), repeat) * 1e6,
            "us",
        ),
    ]
    balancers: list[Maglev | JumpHash | Rendezvous] = [
        Maglev(servers),
        JumpHash(servers),
        Rendezvous(servers),
    ]
    for lb in balancers:

        def churn(lb: Maglev | JumpHash | Rendezvous = lb) -> None:
            lb.add_server("extra:1")
            lb.remove_server("extra:1")

        rows.append(
            Row(GROUP, "add+remove one", n, type(lb).__name__, seconds(churn, repeat) * 1e6, "us")
        )
    return rows


def _servers(n: int) -> list[str]:
    return [f"10.{i // 256}.{i % 256}.1:8080" for i in range(n)]


def _weights(servers: list[str]) -> dict[str, float]:
    return {s: 1 + i % 4 for i, s in enumerate(servers)}


def run(quick: bool) -> list[Row]:
    """Measure every case at every pool size."""
    missing = [name for name, module in (("jump", jump), ("hrw", hrw)) if module is None]
    if missing:
        print(
            f"bench_hash_tables: peers not installed, skipped: {', '.join(missing)}",
            file=sys.stderr,
        )
    rows: list[Row] = []
    for n in SIZES:
        rows += _lookups(n, 9 if quick else 51)
        rows += _changes(n, 1 if quick else 3)
    return rows
