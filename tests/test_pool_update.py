"""Pool.update: reconcile the membership with a discovery result in one step."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit import (
    Drainer,
    DrainState,
    HealthTracker,
    LeastConnections,
    Maglev,
    ManualClock,
    Pool,
    RoundRobin,
    StateChange,
)
from balancekit.lease import Lease


def test_joins_ramp_and_weights_apply() -> None:
    clock = ManualClock()
    pool = Pool(LeastConnections({"a": 1, "b": 1}), slow_start=10.0, clock=clock)
    assert pool.update({"a": 3, "b": 1, "c": 2}) == []
    assert pool.servers == {"a": 3.0, "b": 1.0, "c": 2.0}
    stats = pool.stats()
    assert stats["a"].effective_weight == 3.0  # a baseline member does not ramp
    assert 0 < stats["c"].effective_weight < 2.0  # a newcomer ramps up
    clock.advance(10.0)
    assert pool.stats()["c"].effective_weight == 2.0
    pool._check()


def test_ids_keep_known_weights_and_give_new_ones_weight_1() -> None:
    pool = Pool(RoundRobin({"a": 5}), clock=ManualClock())
    pool.update(["a", "b"])
    assert pool.servers == {"a": 5.0, "b": 1.0}


def test_vanished_servers_leave_when_idle_and_drain_when_busy() -> None:
    clock = ManualClock()
    log: list[StateChange] = []
    pool = Pool(
        RoundRobin(["a", "b", "c"]), drainer=Drainer(timeout=5.0), on_change=log.append, clock=clock
    )
    held = [pool.acquire(), pool.acquire()]  # "a" and "b" are busy
    changes = pool.update(["d"])
    assert [(c.server, c.new) for c in changes] == [
        ("a", DrainState.DRAINING),
        ("b", DrainState.DRAINING),
        ("c", DrainState.DRAINED),  # idle: drained and gone at once
    ]
    assert log == changes  # on_change saw them too, once
    assert set(pool.servers) == {"a", "b", "d"}
    assert {pool.acquire().server for _ in range(4)} == {"d"}  # no new work for a, b
    held[0].release()  # a's last lease: drained, and gone
    assert "a" not in pool and "a" not in pool.drainer
    clock.advance(5.0)  # b's deadline: drained with one lease open, and gone
    deadline = pool.poll()
    assert [(c.server, c.in_flight) for c in deadline if c.server == "b"] == [("b", 1)]
    assert "b" not in pool
    held[1].release()  # a release after the server left is harmless
    pool._check()


def test_a_leaving_server_listed_again_returns() -> None:
    pool = Pool(RoundRobin(["a", "b"]), clock=ManualClock())
    lease = pool.acquire()
    pool.update(["b"])
    changes = pool.update(["a", "b"])
    assert [(c.server, c.new) for c in changes] == [("a", DrainState.ACTIVE)]
    lease.release()
    assert "a" in pool and pool.is_eligible("a")
    pool._check()


def test_an_update_that_the_strategy_cannot_hold_changes_nothing() -> None:
    pool = Pool(Maglev(["a"], table_size=31), clock=ManualClock())  # room for 3 servers
    with pytest.raises(ValueError, match="too small"):
        pool.update(["a", "b", "c", "d"])
    assert list(pool.servers) == ["a"]
    pool._check()


@pytest.mark.parametrize(
    ("servers", "error"),
    [
        (["a", "a"], ValueError),
        ({"a": -1}, ValueError),
        ({"a": math.nan}, ValueError),
        ([1], TypeError),
        ("ab", TypeError),
        ({"a": "1"}, TypeError),
    ],
)
def test_bad_input_changes_nothing(servers: object, error: type[Exception]) -> None:
    pool = Pool(RoundRobin(["a", "b"]), health=HealthTracker(), clock=ManualClock())
    with pytest.raises(error):
        pool.update(servers)  # type: ignore[arg-type]
    assert pool.servers == {"a": 1.0, "b": 1.0}
    pool._check()


@settings(max_examples=60)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("update"), st.sets(st.sampled_from("abcde"))),
            st.tuples(st.just("acquire"), st.just(frozenset())),
            st.tuples(st.just("release"), st.just(frozenset())),
            st.tuples(st.just("tick"), st.just(frozenset())),
        ),
        max_size=40,
    )
)
def test_membership_follows_discovery(steps: list[tuple[str, frozenset[str]]]) -> None:
    clock = ManualClock()
    pool = Pool(RoundRobin(["a"]), drainer=Drainer(timeout=2.0), clock=clock)
    listed = {"a"}
    open_leases: list[Lease] = []
    for op, names in steps:
        if op == "update":
            pool.update(sorted(names))
            listed = set(names)
        elif op == "acquire":
            try:
                open_leases.append(pool.acquire())
            except LookupError:
                assert not listed
        elif op == "release" and open_leases:
            open_leases.pop(0).release()
        else:
            clock.advance(1.0)
            pool.poll()
        # Every listed server is a member; every other member is draining with
        # open leases, before its deadline.
        members = set(pool.servers)
        assert listed <= members
        for server in members - listed:
            assert pool.drainer.state(server) is DrainState.DRAINING
            assert pool.drainer.in_flight(server) > 0
        pool._check()
