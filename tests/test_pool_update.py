"""Pool.update: reconcile the membership with a discovery result in one step."""

from __future__ import annotations

import math
import random

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
from balancekit.strategies.base import Balancer
from balancekit.strategies.registry import make_strategy, strategy_names


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


# -- one step: one rebuild, however many servers join or leave ----------------------------


def counted(strategy: Balancer) -> list[int]:
    """Count the strategy's ``_rebuild`` calls (an instance attribute shadows the method)."""
    count = [0]
    rebuild = strategy._rebuild

    def counting() -> None:
        count[0] += 1
        rebuild()

    strategy._rebuild = counting  # type: ignore[method-assign]
    return count


@pytest.mark.parametrize("name", list(strategy_names()))
def test_an_update_of_50_joining_and_50_leaving_is_one_rebuild(name: str) -> None:
    clock = ManualClock()
    servers = [f"10.0.0.{i}" for i in range(200)]
    strategy = make_strategy(name, dict.fromkeys(servers, 1.0), clock=clock, rng=random.Random(1))
    pool = Pool(strategy, health=HealthTracker(), slow_start=5.0, clock=clock)
    key = "10.9.9.9" if strategy.requires_key else None
    leases = [pool.acquire(key) for _ in range(3)]  # some leaving servers are busy: they drain
    rebuilds = counted(strategy)
    listed = servers[50:] + [f"10.0.1.{i}" for i in range(50)]
    changes = pool.update(listed)
    assert rebuilds[0] == 1, rebuilds[0]
    busy = {lease.server for lease in leases} - set(listed)
    assert {c.server for c in changes if c.new is DrainState.DRAINING} == busy
    assert set(pool.servers) == set(listed) | busy
    assert list(strategy.servers) == list(pool.servers)  # newcomers in the order listed
    assert all(strategy.servers[s] == 0 for s in busy)  # draining: no new work
    pool._check()
    rebuilds[0] = 0
    clock.advance(5.0)  # the newcomers' ramps end: one batch of weights
    pool.acquire(key).release()
    assert rebuilds[0] <= 1
    for lease in leases:
        lease.release()
    assert set(pool.servers) == set(listed) == set(strategy.servers)
    pool._check()


@pytest.mark.parametrize("name", list(strategy_names()))
def test_a_small_update_is_at_most_one_rebuild(name: str) -> None:
    clock = ManualClock()
    servers = [f"10.0.0.{i}" for i in range(40)]
    strategy = make_strategy(name, dict.fromkeys(servers, 1.0), clock=clock, rng=random.Random(1))
    pool = Pool(strategy, clock=clock)
    rebuilds = counted(strategy)
    pool.update({**dict.fromkeys(servers[1:], 1.0), "new-1": 2.0, "new-2": 1.0})
    # Strategies that update in place use their hooks for a few changes: no rebuild.
    assert rebuilds[0] == (0 if strategy._incremental else 1)
    assert list(strategy.servers.items()) == list(pool.servers.items())
    assert list(strategy.servers)[-2:] == ["new-1", "new-2"]  # in the order given
    pool._check()


class Refuses(RoundRobin):
    """A strategy that refuses some servers a weight > 0 without saying so in ``_admit``."""

    refuse: frozenset[str] = frozenset()

    def _rebuild(self) -> None:
        for server, member in self._members.items():
            if server in self.refuse and member.weight > 0:
                raise ValueError(f"weight refused for {server!r}")
        super()._rebuild()


def test_a_refused_batch_still_joins_and_leaves_and_the_next_call_retries() -> None:
    strategy = Refuses(["a", "b", "c"])
    pool = Pool(strategy, clock=ManualClock())
    strategy.refuse = frozenset({"x"})
    with pytest.raises(ValueError, match="refused for 'x'"):
        pool.update({"b": 1, "c": 3, "x": 1, "y": 1})
    # Membership follows the pool; the weights that were not refused apply.
    assert dict(strategy.servers) == {"b": 1.0, "c": 3.0, "x": 0.0, "y": 1.0}
    pool._check()
    strategy.refuse = frozenset()
    assert pool.is_eligible("x")  # the next call pushed it again
    assert dict(strategy.servers) == {"b": 1.0, "c": 3.0, "x": 1.0, "y": 1.0}
    pool._check()
