"""LeastResponseTime against the least plain Python can do for the same job.

Pool sizes 10, 100 and 1,000; servers start with different latency
estimates (so heap keys differ) and, while acquire+release pairs are timed,
one lease per server stays open. The floors, timed in the same rounds:

- ``floor: early-exit indexed heap`` (get_server): a lock, the top of a heap
  kept in two parallel lists plus a position map, its tie-break tick bumped
  and sifted down with the textbook early exit. Nothing else: no estimate,
  no class, no hooks.
- ``floor: lazy heapq`` (acquire+release): a lock, a C ``heapq`` of
  ``(log load, tick, server)`` entries with lazy deletion (a version per
  server; stale entries are popped when they surface, the heap is compacted
  when it holds 4x the servers), the same peak-EWMA update and log-load key,
  a tuple as the lease.

The target rows are medians of per-round ratios, each strategy timed back to
back with its floor (see ``timing.paired_ratio``); the ns rows are the best
round of each.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import threading
import time
from collections.abc import Callable

from timing import Row, ns_per_op, paired_ratio

from balancekit.lease import Lease
from balancekit.strategies.response_time import LeastResponseTime

SIZES = (10, 100, 1_000)
DECAY = 10.0
PENALTY = 0.3


class IndexedHeapFloor:
    """get_server's floor: peek, bump the tick, early-exit sift down."""

    def __init__(self, loads: list[float]) -> None:
        order = sorted(range(len(loads)), key=loads.__getitem__)
        self._items = [f"s{i}" for i in order]
        self._keys = [(math.log(loads[i]), t) for t, i in enumerate(order, 1)]
        self._pos = {item: i for i, item in enumerate(self._items)}
        self._tick = len(loads)
        self._lock = threading.Lock()

    def get_server(self) -> str:
        with self._lock:
            items, keys, pos = self._items, self._keys, self._pos
            item = items[0]
            self._tick += 1
            key = (keys[0][0], self._tick)
            end = len(items)
            i = 0
            child = 1
            while child < end:
                child_key = keys[child]
                if child + 1 < end and keys[child + 1] < child_key:
                    child += 1
                    child_key = keys[child]
                if not child_key < key:
                    break
                moved = items[child]
                items[i] = moved
                keys[i] = child_key
                pos[moved] = i
                i = child
                child = 2 * i + 1
            items[i] = item
            keys[i] = key
            pos[item] = i
            return item


class LazyHeapFloor:
    """acquire+release's floor: peak EWMA, log-load keys, a lazily pruned heapq."""

    def __init__(self, loads: list[float], clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        # Per server: [rtt, stamp, in_flight, weight, version]
        self._state = {f"s{i}": [rtt, now, 0, 1.0, 0] for i, rtt in enumerate(loads)}
        self._origin = now
        self._tick = 0
        self._heap: list[tuple[float, int, str, int]] = []
        for server in self._state:
            self._push(server)

    def _push(self, server: str) -> None:
        s = self._state[server]
        s[4] += 1
        self._tick += 1
        key = math.log(s[0]) + (s[1] - self._origin) / DECAY + math.log((s[2] + 1) / s[3])
        heap = self._heap
        heapq.heappush(heap, (key, self._tick, server, s[4]))
        if len(heap) > 4 * len(self._state):
            state = self._state
            self._heap = [e for e in heap if e[3] == state[e[2]][4]]
            heapq.heapify(self._heap)

    def acquire(self) -> tuple[str, float]:
        now = self._clock()
        with self._lock:
            heap, state = self._heap, self._state
            while heap[0][3] != state[heap[0][2]][4]:
                heapq.heappop(heap)
            server = heap[0][2]
            state[server][2] += 1
            self._push(server)
        return server, now

    def release(self, lease: tuple[str, float]) -> None:
        now = self._clock()
        server, started = lease
        with self._lock:
            s = self._state[server]
            s[2] -= 1
            rtt = now - started
            if rtt > s[0]:
                s[0] = rtt
            else:
                age = now - s[1]
                s[0] += (rtt - s[0]) * (1.0 - (math.exp(-age / DECAY) if age > 0 else 1.0))
            s[1] = now
            self._push(server)


def _loads(n: int) -> list[float]:
    rng = random.Random(n)
    return [0.001 + 0.05 * rng.random() for _ in range(n)]


def _strategy(n: int) -> LeastResponseTime:
    lb = LeastResponseTime([f"s{i}" for i in range(n)], decay=DECAY, failure_penalty=PENALTY)
    estimates = lb._estimates  # distinct estimates, as after some traffic
    for member, rtt in zip(lb._members.values(), _loads(n), strict=True):
        estimates[member].rtt = rtt
    lb._rebase(time.monotonic())
    return lb


def _calls(f: Callable[[], object]) -> Callable[[int], None]:
    def loop(ops: int) -> None:
        for _ in itertools.repeat(None, ops):
            f()

    return loop


def _pairs(lb: LeastResponseTime) -> Callable[[int], None]:
    def loop(ops: int) -> None:
        acquire = lb.acquire
        for _ in itertools.repeat(None, ops):
            acquire().release()

    return loop


def _floor_pairs(floor: LazyHeapFloor) -> Callable[[int], None]:
    def loop(ops: int) -> None:
        acquire, release = floor.acquire, floor.release
        for _ in itertools.repeat(None, ops):
            release(acquire())

    return loop


def run(quick: bool) -> list[Row]:
    """Each case in several interleaved rounds; the best round of each is kept."""
    ops = 2_000 if quick else 20_000
    rounds = 2 if quick else 5
    held: list[Lease] = []
    floor_held: list[tuple[LazyHeapFloor, tuple[str, float]]] = []
    table: list[tuple[str, int, str, Callable[[int], None]]] = []
    for n in SIZES:
        lb = _strategy(n)
        floor = LazyHeapFloor(_loads(n), time.monotonic)
        held.extend(lb.acquire() for _ in range(n))
        floor_held.extend((floor, floor.acquire()) for _ in range(n))
        table += [
            ("get_server", n, "LeastResponseTime", _calls(_strategy(n).get_server)),
            (
                "get_server",
                n,
                "floor: early-exit indexed heap",
                _calls(IndexedHeapFloor(_loads(n)).get_server),
            ),
            ("acquire+release", n, "LeastResponseTime", _pairs(lb)),
            ("acquire+release", n, "floor: lazy heapq", _floor_pairs(floor)),
        ]
    best = [math.inf] * len(table)
    for _ in range(rounds):
        for i, (_, _, _, loop) in enumerate(table):
            best[i] = min(best[i], ns_per_op(loop, ops, repeat=3))
    rows = [
        Row("lrt", case, n, impl, ns) for (case, n, impl, _), ns in zip(table, best, strict=True)
    ]
    found = {(case, n, impl): loop for (case, n, impl, loop) in table}
    for n in SIZES:
        for case, floor_name in (
            ("get_server", "floor: early-exit indexed heap"),
            ("acquire+release", "floor: lazy heapq"),
        ):
            ours, floor = found[(case, n, "LeastResponseTime")], found[(case, n, floor_name)]
            ratio = paired_ratio(ours, floor, ops // 4, 4 * rounds + 1)
            rows.append(
                Row(
                    "lrt", f"{case} target <= 130", n, "LeastResponseTime / floor", 100 * ratio, "%"
                )
            )
    for lease in held:
        lease.release()
    for owner, token in floor_held:
        owner.release(token)
    return rows
