"""Balancer._update_members: many joins, departures and weights as one change."""

from __future__ import annotations

import pytest

from balancekit import DuplicateServer, Maglev, RoundRobin, UnknownServer
from balancekit.strategies.base import Balancer

from .contract import KEYS, STRATEGIES

SERVERS = {f"s{i}": 1.0 for i in range(12)}


def picks(lb: Balancer) -> list[str]:
    key = KEYS if lb.requires_key else [None] * len(KEYS)
    return [lb.get_server(k) for k in key]


@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("size", [1, 2, 9])  # one hook, a few hooks, a rebuild
def test_a_batch_ends_as_the_same_changes_made_one_by_one(cls: type[Balancer], size: int) -> None:
    gone = [f"s{i}" for i in range(size)]
    new = {f"n{i}": 1.0 + i % 3 for i in range(size)}
    weights = {f"s{11 - i}": 0.0 if i % 2 else 2.0 for i in range(min(size, 3))}
    batch, alone = cls(SERVERS), cls(SERVERS)
    batch._update_members(new, gone, weights)
    for server in gone:
        alone.remove_server(server)
    for server, weight in new.items():
        alone.add_server(server, weight)
    alone.set_weights(weights)
    assert list(batch.servers.items()) == list(alone.servers.items())
    if batch.requires_key:  # the same table; others keep a rotation or draw at random
        assert picks(batch) == picks(alone)
    batch._check()


@pytest.mark.parametrize(
    ("add", "remove", "reweight", "error", "words"),
    [
        ({"s1": 1.0}, (), {}, DuplicateServer, "'s1' is already a member"),
        ({}, ["nope"], {}, UnknownServer, "'nope'"),
        ({}, (), {"nope": 1.0}, UnknownServer, "'nope'"),
        ({}, ["s1"], {"s1": 2.0}, UnknownServer, "'s1'"),  # reweighting a server it removes
        ({}, ["s1", "s1"], {}, ValueError, r"remove names a server twice: \['s1', 's1'\]"),
        ({"n": -1.0}, (), {}, ValueError, "-1.0"),
        ({"n": "1"}, (), {}, TypeError, "'1'"),
        ({"": 1.0}, (), {}, ValueError, "''"),
        ({}, [3], {}, TypeError, "3"),
        (["n"], (), {}, TypeError, "weights must be a mapping"),
        ({"ok": 1.0}, ["s2"], {"s3": float("nan")}, ValueError, "nan"),
    ],
)
def test_a_bad_batch_changes_nothing(
    add: object, remove: object, reweight: object, error: type[Exception], words: str
) -> None:
    lb = RoundRobin(SERVERS)
    before = list(lb.servers.items())
    with pytest.raises(error, match=words):
        lb._update_members(add, remove, reweight)  # type: ignore[arg-type]
    assert list(lb.servers.items()) == before
    lb._check()


def test_a_refused_batch_leaves_the_table_as_it_was() -> None:
    lb = Maglev({f"s{i}": 1.0 for i in range(10)}, table_size=101)  # room for 20
    before, table = list(lb.servers.items()), picks(lb)
    with pytest.raises(ValueError, match="too small"):
        lb._update_members({f"n{i}": 1.0 for i in range(11)}, ["s0"], {"s1": 2.0})
    assert list(lb.servers.items()) == before and picks(lb) == table
    lb._check()


def test_a_server_removed_and_added_again_is_a_new_member() -> None:
    lb = RoundRobin(["a", "b"])
    lease = lb.acquire()
    assert lease.server == "a" and lb.in_flight("a") == 1
    lb._update_members({"a": 2.0}, ["a"])
    assert lb.in_flight("a") == 0 and lb.servers["a"] == 2.0
    lease.release()  # counted on the old member: changes nothing now
    assert lb.in_flight("a") == 0
    lb._check()
