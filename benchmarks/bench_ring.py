"""The consistent hash ring, bounded loads and IPHash beside their peers and a floor.

For n in {10, 100, 1000} servers:

- ns per ``get_server`` with string keys for ConsistentHash, BoundedLoadHash
  (idle: nothing in flight) and IPHash (dotted-quad keys), the peers
  ``uhashring`` (MD5; given ``vnodes=160`` like ours) and ``hashring`` (MD5;
  120 points per server, fixed: 40 replicas x 3), and the floor: a plain
  function doing ``bisect`` over a sorted list of the same xxhash positions
  and indexing an owners list;
- the two targets as ratios: ConsistentHash time / floor (target <= 130 %)
  and uhashring time / ConsistentHash (target >= 250 %);
- IPHash against its floor, ``socket.inet_pton`` and the same ring's bucket
  lookup written inline (target <= 150 %); both targets against their floors
  are medians of per-round ratios of the two timed back to back;
- time to build each ring and the memory it retains (tracemalloc);
- time to add one server and to remove it again;
- at 10,000 servers (1.6 million points, where buckets are compact arrays),
  ConsistentHash alone: lookups beside the floor, build time and retained
  memory (target <= 40 MB); skipped by ``--quick`` (tracing the build's
  allocations takes about half a minute).

Cases take turns within every round and the median is kept, so a burst of
load from another process slows every case alike.
"""

from __future__ import annotations

import gc
import socket
import statistics
import tracemalloc
from bisect import bisect_right
from collections.abc import Callable
from itertools import cycle, islice

import xxhash
from timing import Row, ns_per_op, paired_ratio, seconds

from balancekit.hashing import hash_server
from balancekit.strategies.bounded import BoundedLoadHash
from balancekit.strategies.ip_hash import IPHash
from balancekit.strategies.ring import ConsistentHash

try:
    import uhashring
except ImportError:  # pragma: no cover - the benchmark extra is optional
    uhashring = None
try:
    import hashring
except ImportError:  # pragma: no cover
    hashring = None

GROUP = "ring"
SIZES = (10, 100, 1000)
VNODES = 160
KEYS = [f"user-{i}:session" for i in range(4096)]
ADDRESSES = [f"10.{i // 256 % 256}.{i % 256}.{i % 7 + 1}" for i in range(4096)]
UHASH = f"peer uhashring (vnodes={VNODES})"
HASHRING = "peer hashring (120 points, fixed)"
FLOOR = "floor: bisect + owners list"
IP_FLOOR = "floor: inet_pton + ring lookup"

Loop = Callable[[int], None]


def _servers(n: int) -> list[str]:
    return [f"10.{i // 256}.{i % 256}.1:8080" for i in range(n)]


def _pick_loop(pick: Callable[[str], object], keys: list[str]) -> Loop:
    def loop(ops: int) -> None:
        for key in islice(cycle(keys), ops):
            pick(key)

    return loop


def _floor(servers: list[str]) -> Callable[[str], str]:
    """The plain-Python ring lookup our ring is held against: same points, no class."""
    points = sorted((hash_server(s, i, 0), s) for s in servers for i in range(VNODES))
    positions = [p for p, _ in points]
    owners = [s for _, s in points]
    digest = xxhash.xxh3_64_intdigest
    count = len(positions)

    def lookup(key: str) -> str:
        i = bisect_right(positions, digest(key.encode(), 0))
        return owners[i if i < count else 0]

    return lookup


def _ip_floor(ring: ConsistentHash) -> Callable[[str], str]:
    """IPHash's floor: parse with inet_pton, hash, look up the ring's bucket, inline."""
    digest = xxhash.xxh3_64_intdigest
    inet_pton, af_inet = socket.inet_pton, socket.AF_INET

    def lookup(key: str) -> str:
        h = digest(inet_pton(af_inet, key), 0)
        table, shift = ring._index
        positions, owners = table[h >> shift]
        return owners[bisect_right(positions, h)]

    return lookup


def _interleaved(loops: list[Loop], budget: float, rounds: int) -> list[float]:
    """Median ns per operation of each loop, the loops taking turns in every round."""
    ops = []
    for loop in loops:
        estimate = seconds(lambda loop=loop: loop(200), repeat=1) / 200
        ops.append(max(200, min(200_000, int(budget / max(estimate, 1e-9)))))
    samples: list[list[float]] = [[] for _ in loops]
    for _ in range(rounds):
        for i, loop in enumerate(loops):
            samples[i].append(ns_per_op(loop, ops[i], repeat=1))
    return [statistics.median(runs) for runs in samples]


def _lookups(n: int, budget: float, rounds: int) -> list[Row]:
    servers = _servers(n)
    ring = ConsistentHash(servers, vnodes=VNODES)
    ip_hash = IPHash(servers, vnodes=VNODES)
    cases: list[tuple[str, Callable[[str], object], list[str]]] = [
        ("ConsistentHash", ring.get_server, KEYS),
        (FLOOR, _floor(servers), KEYS),
        ("BoundedLoadHash (idle)", BoundedLoadHash(servers, vnodes=VNODES).get_server, KEYS),
        ("IPHash (IPv4 keys)", ip_hash.get_server, ADDRESSES),
        (IP_FLOOR, _ip_floor(ip_hash), ADDRESSES),
    ]
    if uhashring is not None:
        cases.append((UHASH, uhashring.HashRing(servers, vnodes=VNODES).get_node, KEYS))
    if hashring is not None:
        cases.append((HASHRING, hashring.HashRing(servers).get_node, KEYS))
    timings = _interleaved([_pick_loop(f, keys) for _, f, keys in cases], budget, rounds)
    found = dict(zip([impl for impl, _, _ in cases], timings, strict=True))
    rows = [Row(GROUP, "get_server str", n, impl, ns) for impl, ns in found.items()]
    ours = found["ConsistentHash"]
    # The targets: medians of back-to-back ratios, steadier than a ratio of medians.
    ratios = {}
    for name, pair in {
        "IPHash": (ip_hash.get_server, _ip_floor(ip_hash), ADDRESSES),
        "ConsistentHash": (ring.get_server, _floor(servers), KEYS),
    }.items():
        mine, floor = _pick_loop(pair[0], pair[2]), _pick_loop(pair[1], pair[2])
        ops = max(200, int(budget / 4 / max(seconds(lambda f=floor: f(200), 1) / 200, 1e-9)))
        ratios[name] = 100 * paired_ratio(mine, floor, ops, 4 * rounds + 1)
    rows.append(Row(GROUP, "target <= 150", n, "IPHash / its floor", ratios["IPHash"], "%"))
    rows.append(
        Row(GROUP, "target <= 130", n, "ConsistentHash / floor", ratios["ConsistentHash"], "%")
    )
    if UHASH in found:
        rows.append(
            Row(
                GROUP,
                "target >= 250",
                n,
                "uhashring / ConsistentHash",
                100 * found[UHASH] / ours,
                "%",
            )
        )
    return rows


def _builders(servers: list[str]) -> list[tuple[str, Callable[[], object]]]:
    builders: list[tuple[str, Callable[[], object]]] = [
        ("ConsistentHash", lambda: ConsistentHash(servers, vnodes=VNODES)),
    ]
    if uhashring is not None:
        builders.append((UHASH, lambda: uhashring.HashRing(servers, vnodes=VNODES)))
    if hashring is not None:
        builders.append((HASHRING, lambda: hashring.HashRing(servers)))
    return builders


def _retained(build: Callable[[], object]) -> float:
    """Bytes still allocated by ``build()`` once its result is the only thing kept."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return after - before


def _changes(n: int, rounds: int) -> list[Row]:
    """Build, memory, add one and remove one, the implementations taking turns each round."""
    servers = _servers(n)
    extra = "10.255.255.1:8080"
    ours = ConsistentHash(servers, vnodes=VNODES)

    def ours_add() -> None:
        ours.add_server(extra)
        ours.get_server("first lookup after the change")

    def ours_remove() -> None:
        ours.remove_server(extra)
        ours.get_server("first lookup after the change")

    churn: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("ConsistentHash (+ 1 lookup)", ours_add, ours_remove)
    ]
    if uhashring is not None:
        peer = uhashring.HashRing(servers, vnodes=VNODES)
        churn.append((UHASH, lambda: peer.add_node(extra), lambda: peer.remove_node(extra)))
    if hashring is not None:
        # hashring has no add or remove: the only way is a new ring.
        grown = [*servers, extra]
        churn.append(
            (
                f"{HASHRING}: rebuild",
                lambda: hashring.HashRing(grown),
                lambda: hashring.HashRing(servers),
            )
        )
    builders = _builders(servers)
    builds: dict[str, list[float]] = {impl: [] for impl, _ in builders}
    added: dict[str, list[float]] = {impl: [] for impl, _, _ in churn}
    removed: dict[str, list[float]] = {impl: [] for impl, _, _ in churn}
    for _ in range(rounds):
        for impl, build in builders:
            builds[impl].append(seconds(build, 1))
        for impl, add, remove in churn:
            added[impl].append(seconds(add, 1))
            removed[impl].append(seconds(remove, 1))
    rows = []
    for impl, build in builders:
        rows.append(Row(GROUP, "build", n, impl, statistics.median(builds[impl]) * 1e3, "ms"))
        rows.append(Row(GROUP, "retained memory", n, impl, _retained(build) / 1024, "KiB"))
    for impl, _, _ in churn:
        rows.append(
            Row(GROUP, "add one server", n, impl, statistics.median(added[impl]) * 1e6, "us")
        )
        rows.append(
            Row(GROUP, "remove one server", n, impl, statistics.median(removed[impl]) * 1e6, "us")
        )
    return rows


def _large(n: int, rounds: int) -> list[Row]:
    """ConsistentHash alone at ``n`` servers: lookups against the floor, build, memory."""
    servers = _servers(n)
    build_time = seconds(lambda: ConsistentHash(servers, vnodes=VNODES), 1)
    ring = ConsistentHash(servers, vnodes=VNODES)
    timings = _interleaved(
        [_pick_loop(ring.get_server, KEYS), _pick_loop(_floor(servers), KEYS)], 0.02, rounds
    )
    del ring
    memory = _retained(lambda: ConsistentHash(servers, vnodes=VNODES)) / 2**20
    return [
        Row(GROUP, "get_server str", n, "ConsistentHash (compact)", timings[0]),
        Row(GROUP, "get_server str", n, FLOOR, timings[1]),
        Row(GROUP, "ratio", n, "ConsistentHash / floor", 100 * timings[0] / timings[1], "%"),
        Row(GROUP, "build", n, "ConsistentHash (compact)", build_time * 1e3, "ms"),
        Row(GROUP, "target <= 40 MB: retained", n, "ConsistentHash (compact)", memory, "MB"),
    ]


def run(quick: bool) -> list[Row]:
    """Measure every case at every pool size."""
    missing = [name for name, mod in (("uhashring", uhashring), ("hashring", hashring)) if not mod]
    if missing:
        print(f"bench_ring: peers not installed, skipped: {', '.join(missing)}")
    rows: list[Row] = []
    for n in SIZES:
        rows += _lookups(n, 0.004 if quick else 0.02, 5 if quick else 15)
        rows += _changes(n, 1 if quick else 7)
    if not quick:
        rows += _large(10_000, 7)
    return rows
