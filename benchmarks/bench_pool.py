"""The Pool's cost on top of its strategy, and the runtime layer's targets.

- acquire+release, ns: ``LeastConnections`` bare, inside a
  ``Pool(LeastConnections, health, drainer)`` (no probe due, no state change:
  the steady state of a busy client pool), and with a sticky cookie, at 10 to
  1,000 servers;
- clock reads per Pool acquire+release (a counting clock);
- entering panic mode, ms: ``Pool(Maglev)`` at 200 servers against building
  one ``Maglev`` of 200 servers, and at 1,000 servers the same for every
  table-building strategy (the ratio says how many rebuilds an event costs);
- a discovery update of a ``Pool`` of 1,000 servers in which 50 join and 50
  leave, ms, against building one strategy of 1,000 (Maglev; in a full run
  also ConsistentHash and Rendezvous): the ratio says how many rebuilds it costs;
- building ``HealthTracker(20,000 servers)`` against ``Drainer(20,000 servers)``, ms;
- bytes a ``HealthTracker`` retains after 100,000 add/remove cycles.

Cases take turns within every round and the median of the rounds is kept, so
a burst of load from another process slows the cases of one round alike and
the ratios stay meaningful on a busy machine.
"""

from __future__ import annotations

import functools
import gc
import itertools
import statistics
import time
import tracemalloc
from collections.abc import Callable

from timing import Row

from balancekit import (
    ConsistentHash,
    Drainer,
    HealthTracker,
    LeastConnections,
    Maglev,
    ManualClock,
    Pool,
    Rendezvous,
    StickySession,
    WeightedRoundRobin,
)
from balancekit.lease import Lease
from balancekit.strategies.base import Balancer

SIZES = (10, 100, 1_000)


def servers(n: int) -> list[str]:
    return [f"10.0.{i // 250}.{i % 250}:80" for i in range(n)]


def cycle(acquire: Callable[[], Lease]) -> Callable[[int], None]:
    def loop(ops: int) -> None:
        for _ in itertools.repeat(None, ops):
            acquire().release()

    return loop


def interleaved(actions: list[Callable[[], float]], rounds: int) -> list[float]:
    """The median over ``rounds`` of each action's result, the actions taking turns."""
    samples: list[list[float]] = [[] for _ in actions]
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for i, action in enumerate(actions):
                samples[i].append(action())
    finally:
        if enabled:
            gc.enable()
    return [statistics.median(s) for s in samples]


def per_op(loop: Callable[[int], None], ops: int) -> Callable[[], float]:
    """An action timing ``loop(ops)``: ns per operation."""
    loop(min(ops, 1000))  # warm up

    def action() -> float:
        start = time.perf_counter_ns()
        loop(ops)
        return (time.perf_counter_ns() - start) / ops

    return action


# -- acquire+release ----------------------------------------------------------------------


def acquire_release(quick: bool) -> list[Row]:
    ops = 2_000 if quick else 10_000
    cases: list[tuple[int, str, Callable[[], float]]] = []
    for n in SIZES:
        names = servers(n)
        bare = LeastConnections(names)
        pool = Pool(LeastConnections(names), health=HealthTracker(), drainer=Drainer())
        sticky = Pool(LeastConnections(names), health=HealthTracker(), sticky=StickySession("k"))
        cookie = sticky.acquire().cookie
        cases += [
            (n, "LeastConnections (bare)", per_op(cycle(bare.acquire), ops)),
            (n, "Pool(LeastConnections, health, drainer)", per_op(cycle(pool.acquire), ops)),
            (
                n,
                "Pool(..., health, sticky cookie)",
                per_op(cycle(functools.partial(sticky.acquire, cookie=cookie)), ops),
            ),
        ]
    values = interleaved([action for _, _, action in cases], 3 if quick else 9)
    rows = [
        Row("pool", "acquire+release", n, impl, value)
        for (n, impl, _), value in zip(cases, values, strict=True)
    ]
    for i in range(0, len(rows), 3):
        ratio = rows[i + 1].value / rows[i].value
        rows.append(Row("pool", "Pool / bare (target <= 1.6)", rows[i].n, "ratio", ratio, "x"))
    return rows


class CountingClock(ManualClock):
    __slots__ = ("reads",)

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return super().__call__()


def clock_reads() -> Row:
    clock = CountingClock()
    pool = Pool(LeastConnections(servers(10)), health=HealthTracker(), clock=clock)
    pool.acquire().release()
    clock.reads = 0
    for _ in range(1000):
        pool.acquire().release()
    return Row("pool", "clock reads per acquire+release", 10, "Pool", clock.reads / 1000, "reads")


# -- panic entry ----------------------------------------------------------------------------


def make(cls: type[Balancer], names: list[str]) -> Balancer:
    return cls(names)


def panic_entry(cls: type[Balancer], n: int) -> Callable[[], float]:
    """An action: ms for the one probe result that takes a Pool of ``n`` into panic."""
    names = servers(n)
    tracker = HealthTracker(unhealthy_threshold=1, healthy_threshold=1)
    pool = Pool(make(cls, names), health=tracker, clock=ManualClock())
    half = n // 2
    for server in names[:half]:  # exactly half unhealthy: not yet panic
        pool.record_check(server, False)
    tipping = names[half]

    def action() -> float:
        start = time.perf_counter()
        pool.record_check(tipping, False)
        elapsed = time.perf_counter() - start
        assert pool.panic
        pool.record_check(tipping, True)  # and back, untimed
        return elapsed * 1000

    return action


def build(cls: type[Balancer], n: int) -> Callable[[], float]:
    names = servers(n)

    def action() -> float:
        start = time.perf_counter()
        make(cls, names)
        return (time.perf_counter() - start) * 1000

    return action


def panic(quick: bool) -> list[Row]:
    rounds = 3 if quick else 7
    plan: list[tuple[str, int]] = [("Maglev", 200)]
    if not quick:
        plan += [(cls.__name__, 1000) for cls in (Maglev, ConsistentHash, Rendezvous)]
        plan += [("WeightedRoundRobin", 1000), ("LeastConnections", 1000)]
    classes: dict[str, type[Balancer]] = {
        c.__name__: c
        for c in (Maglev, ConsistentHash, Rendezvous, WeightedRoundRobin, LeastConnections)
    }
    actions = []
    for name, n in plan:
        actions += [panic_entry(classes[name], n), build(classes[name], n)]
    values = interleaved(actions, rounds)
    rows = []
    for (name, n), entry, one in zip(plan, values[::2], values[1::2], strict=True):
        rows.append(Row("pool", "enter panic", n, f"Pool({name})", entry, "ms"))
        rows.append(Row("pool", "build one", n, name, one, "ms"))
        rows.append(Row("pool", "panic / build (target <= 3)", n, name, entry / one, "x"))
    return rows


# -- discovery updates ------------------------------------------------------------------------


def update_step(cls: type[Balancer], n: int, moved: int) -> Callable[[], float]:
    """An action: ms for one ``Pool.update`` of ``n`` servers in which ``moved`` join
    and ``moved`` (idle) leave; successive calls swap the two groups back and forth."""
    names = servers(n + moved)
    lists = [names[moved:], names[:n]]  # each: the first ``moved`` gone, as many new
    pool = Pool(make(cls, names[:n]), health=HealthTracker(), clock=ManualClock())
    turn = itertools.cycle([0, 1])

    def action() -> float:
        listed = lists[next(turn)]
        start = time.perf_counter()
        pool.update(listed)
        elapsed = time.perf_counter() - start
        assert len(pool) == n
        return elapsed * 1000

    return action


def updates(quick: bool) -> list[Row]:
    rounds = 3 if quick else 7
    plan: list[type[Balancer]] = [Maglev] if quick else [Maglev, ConsistentHash, Rendezvous]
    actions = []
    for cls in plan:
        actions += [update_step(cls, 1000, 50), build(cls, 1000)]
    values = interleaved(actions, rounds)
    rows = []
    for cls, step, one in zip(plan, values[::2], values[1::2], strict=True):
        name = cls.__name__
        rows.append(Row("pool", "update, 50 join + 50 leave", 1000, f"Pool({name})", step, "ms"))
        rows.append(Row("pool", "build one", 1000, name, one, "ms"))
        rows.append(Row("pool", "update / build (one rebuild)", 1000, name, step / one, "x"))
    return rows


# -- construction and churn -----------------------------------------------------------------


def construction(quick: bool) -> list[Row]:
    names = [f"s{i}" for i in range(20_000)]

    def timed(factory: Callable[[], object]) -> Callable[[], float]:
        def action() -> float:
            start = time.perf_counter()
            factory()
            return (time.perf_counter() - start) * 1000

        return action

    tracker, drainer = interleaved(
        [timed(lambda: HealthTracker(names)), timed(lambda: Drainer(names))], 3 if quick else 7
    )
    return [
        Row("pool", "construct, 20,000 servers", 20_000, "HealthTracker", tracker, "ms"),
        Row("pool", "construct, 20,000 servers", 20_000, "Drainer", drainer, "ms"),
        Row(
            "pool", "HealthTracker / Drainer (target <= 3)", 20_000, "ratio", tracker / drainer, "x"
        ),
    ]


def churn(quick: bool) -> Row:
    cycles = 20_000 if quick else 100_000
    tracker = HealthTracker(["base"], jitter=1.0, clock=ManualClock())
    for i in range(1000):  # warm up
        tracker.add_server(f"w{i}")
        tracker.remove_server(f"w{i}")
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for i in range(cycles):
            tracker.add_server(f"s{i}")
            tracker.remove_server(f"s{i}")
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    return Row(
        "pool", f"bytes retained after {cycles:,} add/remove", 1, "HealthTracker", retained, "B"
    )


def run(quick: bool) -> list[Row]:
    return [
        *acquire_release(quick),
        clock_reads(),
        *panic(quick),
        *updates(quick),
        *construction(quick),
        churn(quick),
    ]
