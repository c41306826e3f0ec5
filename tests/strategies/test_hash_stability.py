"""Placement by ConsistentHash, BoundedLoadHash and IPHash never depends on
insertion order or on the process, and a change of hash function is caught."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit.strategies.bounded import BoundedLoadHash
from balancekit.strategies.ip_hash import IPHash
from balancekit.strategies.ring import ConsistentHash

from .test_ring import hashed_with, tiny_hash

RingLike = type[ConsistentHash]
CLASSES: list[RingLike] = [ConsistentHash, BoundedLoadHash, IPHash]

SERVERS = {
    "10.0.0.1:80": 1,
    "10.0.0.2:80": 1,
    "10.0.0.3:80": 2,
    "10.0.0.4:80": 0.5,
    "10.0.0.5:80": 1,
}
A, B, C, D, E = SERVERS


def keys_for(cls: RingLike) -> list[str]:
    if cls is IPHash:
        return [f"172.16.{i // 200}.{i % 200}" for i in range(400)]
    return [f"user-{i}" for i in range(400)]


# -- golden vectors: change only on purpose, it moves every user's keys -------------

GOLDEN_RING = [
    ("user-1", [D, C, E]),
    ("user-42", [C, A, B]),
    (b"\x00\xffbin", [A, C, E]),
    (12345, [C, B, A]),
    ("caf\u00e9", [E, C, B]),
    ("", [C, D, E]),
]
GOLDEN_RING_SEED_7 = [("user-1", C), ("user-42", A), (b"\x00\xffbin", B), (12345, B), ("", A)]
GOLDEN_IP = [
    ("203.0.113.7", C),
    ("::ffff:203.0.113.7", C),
    ("2001:db8::1", B),
    ("192.0.2.255", E),
    ("10.0.0.1", C),
]
GOLDEN_HOT_SPILL = [C, B, C, A, C, B, C, A]


@pytest.mark.parametrize(("key", "servers"), GOLDEN_RING)
def test_golden_ring(key: object, servers: list[str]) -> None:
    assert ConsistentHash(SERVERS).get_n_servers(key, 3) == servers
    assert BoundedLoadHash(SERVERS).get_server(key) == servers[0]


@pytest.mark.parametrize(("key", "server"), GOLDEN_RING_SEED_7)
def test_golden_ring_with_seed_and_vnodes(key: object, server: str) -> None:
    assert ConsistentHash(SERVERS, vnodes=40, seed=7).get_server(key) == server


@pytest.mark.parametrize(("address", "server"), GOLDEN_IP)
def test_golden_ip_hash(address: str, server: str) -> None:
    assert IPHash(SERVERS).get_server(address) == server


def test_golden_bounded_spill() -> None:
    lb = BoundedLoadHash(SERVERS, balance_factor=1.25)
    assert [lb.acquire("hot").server for _ in range(8)] == GOLDEN_HOT_SPILL


# -- insertion order ---------------------------------------------------------------


def mapping(lb: ConsistentHash, keys: list[str]) -> list[str]:
    return [lb.get_server(k) for k in keys]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
@settings(max_examples=15)
@given(data=st.data())
def test_same_mapping_whatever_the_insertion_order(cls: RingLike, data: st.DataObject) -> None:
    servers = {f"s{i}": 1 + i % 3 for i in range(8)}
    order = data.draw(st.permutations(sorted(servers)))
    churn = data.draw(st.lists(st.sampled_from(sorted(servers)), max_size=4, unique=True))
    keys = keys_for(cls)
    built = cls(servers, vnodes=20)
    grown = cls(vnodes=20)
    for server in order:
        grown.add_server(server, servers[server])
    for server in churn:  # leave and come back, possibly with a detour in weight
        grown.set_weight(server, 0)
        grown.remove_server(server)
        grown.add_server(server, 5)
        grown.set_weight(server, servers[server])
    grown._check()
    assert mapping(grown, keys) == mapping(built, keys)
    assert mapping(cls({s: servers[s] for s in reversed(order)}, vnodes=20), keys) == mapping(
        built, keys
    )


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
@settings(max_examples=10)
@given(order=st.permutations([f"s{i}" for i in range(6)]))
def test_same_mapping_whatever_the_order_when_points_collide(
    cls: RingLike, order: list[str]
) -> None:
    with hashed_with(tiny_hash):  # 256 positions for 240 points: many shared
        built = cls(sorted(order), vnodes=40)
        grown = cls(vnodes=40)
        for server in order:
            grown.add_server(server)
        grown._check()
        assert mapping(grown, keys_for(cls)) == mapping(built, keys_for(cls))


# -- other processes ----------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from balancekit.strategies.bounded import BoundedLoadHash
    from balancekit.strategies.ip_hash import IPHash
    from balancekit.strategies.ring import ConsistentHash
    servers = json.loads(sys.argv[1])
    out = {}
    for cls in (ConsistentHash, BoundedLoadHash, IPHash):
        keys = json.loads(sys.argv[2] if cls is not IPHash else sys.argv[3])
        lb = cls(servers)
        out[cls.__name__] = [lb.get_server(k) for k in keys]
    print(json.dumps(out))
    """
)


def test_same_mapping_in_processes_with_other_hash_seeds() -> None:
    servers = dict(reversed(list(SERVERS.items())))
    here = {cls.__name__: mapping(cls(servers), keys_for(cls)) for cls in CLASSES}
    args = [json.dumps(servers), json.dumps(keys_for(ConsistentHash)), json.dumps(keys_for(IPHash))]
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        assert json.loads(done.stdout) == here, hash_seed
