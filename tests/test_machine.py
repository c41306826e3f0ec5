"""The clocked state-machine shell: timers that stay proportional to the live ones, the
outbox, and the churn of members that come and go."""

from __future__ import annotations

import itertools
import random
import tracemalloc
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit import Drainer, HealthTracker, ManualClock, Pool, RoundRobin, StateChange
from balancekit._machine import Outbox, Timers
from balancekit.health import HealthState


def record() -> SimpleNamespace:
    return SimpleNamespace(timers=[-1, -1])


@given(
    st.lists(
        st.tuples(st.sampled_from(["arm", "disarm", "pop"]), st.integers(0, 9), st.integers(0, 1)),
        max_size=120,
    )
)
@settings(max_examples=60)
def test_timers_against_a_dict_model(steps: list[tuple[str, int, int]]) -> None:
    timers: Timers[SimpleNamespace] = Timers(itertools.count())
    records = [record() for _ in range(10)]
    model: dict[tuple[int, int], float] = {}
    now = 0.0
    for i, (op, index, kind) in enumerate(steps):
        rec = records[index]
        if op == "arm":
            at = now + (i * 7919 % 13)
            timers.arm(rec, kind, at)
            model[(index, kind)] = at
        elif op == "disarm":
            timers.disarm(rec, kind)
            model.pop((index, kind), None)
        else:
            now += 3.0
            fired = timers.pop_due(now)
            expected = sorted((at, key) for key, at in model.items() if at <= now)
            assert [at for at, _, _ in fired] == [at for at, _ in expected]
            positions = {id(r): n for n, r in enumerate(records)}  # records compare by value
            assert {(positions[id(r)], k) for _, k, r in fired} == {key for _, key in expected}
            for _, key in expected:
                del model[key]
        assert len(timers) == len(model)
        assert timers.next_at() == min(model.values(), default=None)
        timers._check()  # the heap holds at most 2 x live + 32 entries


def test_rearming_one_timer_forever_keeps_the_heap_small() -> None:
    timers: Timers[SimpleNamespace] = Timers(itertools.count())
    rec = record()
    for i in range(10_000):
        timers.arm(rec, 0, float(i))
    assert len(timers) == 1 and len(timers._heap) <= 34


def test_outbox_delivers_in_order_once_even_when_a_callback_queues_more() -> None:
    box = Outbox()
    seen: list[str] = []
    change = StateChange("a", HealthState.HEALTHY, HealthState.EJECTED, 0.0)

    def callback(item: StateChange) -> None:
        seen.append(item.server)
        if item.server == "a":
            box.put([StateChange("b", item.new, item.old, 1.0)], [callback])
            box.flush()  # nested: left to the running loop, delivered after "a"

    box.put([change], [callback])
    box.flush()
    assert seen == ["a", "b"] and len(box) == 0


# -- churn: members that come and go ------------------------------------------------------


def churn(add: object, remove: object, cycles: int) -> None:
    for i in range(cycles):
        name = f"s{i}"
        add(name)  # type: ignore[operator]
        remove(name)  # type: ignore[operator]


def test_health_churn_keeps_the_heaps_proportional_to_the_members() -> None:
    clock = ManualClock()
    tracker = HealthTracker(["base"], jitter=1.0, clock=clock, rng=random.Random(1))
    churn(tracker.add_server, tracker.remove_server, 100_000)
    tracker.due()  # with a probe outstanding, there is a live timeout too
    assert len(tracker._probes) == 1 and len(tracker._probes._timers._heap) <= 34
    assert len(tracker._timers._heap) <= 34
    tracker._check()


def test_health_churn_retains_no_memory() -> None:
    clock = ManualClock()
    tracker = HealthTracker(["base"], jitter=1.0, clock=clock, rng=random.Random(1))
    churn(tracker.add_server, tracker.remove_server, 2_000)  # warm up: free lists, interning
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        churn(tracker.add_server, tracker.remove_server, 20_000)
        retained = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    # The old heap kept 324 bytes a cycle: 6.5 MB here. A constant is a few KB.
    assert retained < 64 * 1024, retained


def test_pool_churn_retains_no_heap_entries() -> None:
    clock = ManualClock()
    pool = Pool(RoundRobin(["base"]), health=HealthTracker(), clock=clock)
    churn(pool.add_server, pool.remove_server, 20_000)
    pool.drain("base", 5.0)
    assert pool.health is not None
    assert len(pool.health._probes._timers._heap) <= 34
    assert len(pool.drainer._deadlines._heap) <= 34
    pool._check()


def test_drainer_churn_keeps_its_heap_small() -> None:
    drainer = Drainer(clock=ManualClock())

    def add(name: str) -> None:
        drainer.add_server(name)
        drainer.opened(name)
        drainer.drain(name, 10.0)

    churn(add, drainer.remove_server, 20_000)
    assert len(drainer._deadlines) == 0 and len(drainer._deadlines._heap) <= 32
    drainer._check()
