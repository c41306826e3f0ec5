"""Balancer.set_weights: a batch of weights, validated whole, one rebuild (or one pass)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from balancekit import Maglev, RoundRobin, UnknownServer
from balancekit.strategies.base import Balancer

from .strategies.contract import KEYS, STRATEGIES

SERVERS = {f"s{i}": 1.0 + i % 3 for i in range(12)}


def make(cls: type[Balancer], servers: dict[str, float] = SERVERS) -> Balancer:
    if cls is Maglev:
        return Maglev(servers, table_size=1009)
    return cls(servers)


def picks(lb: Balancer) -> list[str]:
    key = (lambda k: k) if lb.requires_key else (lambda k: None)
    return [lb.get_server(key(k)) for k in KEYS[:50]]


@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda c: c.__name__)
def test_a_batch_equals_one_change_at_a_time(cls: type[Balancer]) -> None:
    batch = {"s0": 0.0, "s1": 5.0, "s4": 2.0, "s7": 0.0}
    one, many = make(cls), make(cls)
    for server, weight in batch.items():
        one.set_weight(server, weight)
    many.set_weights(batch)
    assert dict(many.servers) == dict(one.servers) == {**SERVERS, **batch}
    many._check()
    if cls.requires_key:  # hash strategies: the same placement, however it was reached
        assert picks(many) == picks(one)


@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("batch", "error"),
    [
        ({"s0": 2.0, "nope": 1.0}, UnknownServer),
        ({"s0": 2.0, "s1": -1}, ValueError),
        ({"s0": 2.0, "s1": math.nan}, ValueError),
        ({"s0": 2.0, "s1": "3"}, TypeError),
        ({"s0": 2.0, 5: 1.0}, TypeError),
        (["s0"], TypeError),
        ({"s0": 10**400}, ValueError),
    ],
)
def test_a_bad_batch_changes_nothing(
    cls: type[Balancer], batch: Any, error: type[Exception]
) -> None:
    lb = make(cls)
    before = picks(lb) if cls.requires_key else []  # a rotation moves on every pick
    with pytest.raises(error):
        lb.set_weights(batch)
    assert dict(lb.servers) == SERVERS
    assert (picks(lb) if cls.requires_key else []) == before
    lb._check()


def test_a_batch_the_strategy_cannot_hold_is_undone() -> None:
    lb = Maglev({"a": 1, "b": 0, "c": 0, "d": 0}, table_size=31)  # room for 3 servers
    before = picks(lb)
    with pytest.raises(ValueError, match="too small"):
        lb.set_weights({"b": 1, "c": 1, "d": 1})
    assert dict(lb.servers) == {"a": 1.0, "b": 0.0, "c": 0.0, "d": 0.0}
    assert picks(lb) == before
    lb._check()


class Counting(RoundRobin):
    """Counts the rebuilds and single-server updates it is asked for."""

    rebuilds = 0
    updates = 0

    def _rebuild(self) -> None:
        self.rebuilds += 1
        super()._rebuild()

    def _reweighted(self, member: Any, old: float) -> None:
        self.updates += 1
        super()._reweighted(member, old)


def test_a_batch_costs_one_rebuild() -> None:
    lb = Counting({f"s{i}": 1 for i in range(100)})
    lb.rebuilds = 0
    lb.set_weights({f"s{i}": 2 for i in range(100)})
    assert (lb.rebuilds, lb.updates) == (1, 0)
    lb.set_weights({"s0": 3})  # one change: the single-server hook (which rebuilds here)
    assert (lb.rebuilds, lb.updates) == (2, 1)
    lb.set_weights({"s0": 3, "s1": 2})  # nothing changes: nothing is done
    assert (lb.rebuilds, lb.updates) == (2, 1)


def test_incremental_strategies_update_a_few_in_place() -> None:
    from balancekit import LeastConnections

    class Spy(LeastConnections):
        rebuilds = 0

        def _rebuild(self) -> None:
            self.rebuilds += 1
            super()._rebuild()

    lb = Spy({f"s{i}": 1 for i in range(100)})
    lb.rebuilds = 0
    lb.set_weights({"s1": 2, "s2": 0, "s3": 4})  # 3 of 100: in place
    assert lb.rebuilds == 0
    lb.set_weights({f"s{i}": 5 for i in range(60)})  # most of them: one rebuild
    assert lb.rebuilds == 1
    lb._check()
