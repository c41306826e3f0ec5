from __future__ import annotations

import math
from collections import Counter
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from balancekit import Lease, NoServerAvailable, UnknownServer
from balancekit.hashing import hash_key
from balancekit.strategies.bounded import BoundedLoadHash
from balancekit.strategies.ring import ConsistentHash

from .test_ring import ref_walk, reference

server_names = st.sampled_from([f"s{i}" for i in range(8)])
weights = st.sampled_from([0, 0.5, 1, 1, 2, 3])
factors = st.sampled_from([1, 1.1, 1.25, 2, 3.5])
key_pool = st.sampled_from(["hot"] * 4 + [f"k{i}" for i in range(12)])


def cap(lb: BoundedLoadHash, server: str, m: int) -> int:
    """ceil(c * m * w / W), written out independently of the class."""
    w = lb.servers[server]
    total = math.fsum(x for x in lb.servers.values() if x > 0)
    return math.ceil(lb.balance_factor * m * w / total) if w > 0 else 0


def in_flight_total(lb: BoundedLoadHash) -> int:
    return sum(lb.in_flight(s) for s in lb.servers)


def assert_all_within_caps(lb: BoundedLoadHash) -> None:
    m = in_flight_total(lb)
    for server in lb.servers:
        assert lb.in_flight(server) <= cap(lb, server, m), (server, m, dict(lb.servers))


# -- idle: exactly the ring ---------------------------------------------------------


@settings(max_examples=40)
@given(
    servers=st.dictionaries(server_names, weights, min_size=1, max_size=8),
    vnodes=st.integers(1, 30),
    seed=st.integers(0, 2**64 - 1),
    keys=st.lists(st.text(max_size=6), min_size=1, max_size=15),
)
def test_idle_mapping_equals_the_ring(
    servers: dict[str, float], vnodes: int, seed: int, keys: list[str]
) -> None:
    lb = BoundedLoadHash(servers, vnodes=vnodes, seed=seed)
    ring = ConsistentHash(servers, vnodes=vnodes, seed=seed)
    if not any(w > 0 for w in servers.values()):
        with pytest.raises(NoServerAvailable):
            lb.get_server(keys[0])
        return
    for key in keys:
        assert lb.get_server(key) == ring.get_server(key)
        with lb.acquire(key) as lease:
            assert lease.server == ring.get_server(key)
    assert in_flight_total(lb) == 0
    lb._check()


# -- the cap --------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [1, 1.25, 2])
@pytest.mark.parametrize("servers", [[f"s{i}" for i in range(5)], {"a": 3, "b": 1, "c": 0.5}])
def test_hot_key_never_exceeds_the_cap(factor: float, servers: object) -> None:
    lb = BoundedLoadHash(servers, balance_factor=factor)  # type: ignore[arg-type]
    first = lb.get_server("hot")
    for _ in range(300):
        lb.acquire("hot")
        assert_all_within_caps(lb)
    # the hot key's own server took every lease until full, then stayed at its cap
    assert lb.in_flight(first) == min(300, cap(lb, first, 300))
    lb._check()


@settings(max_examples=60)
@given(
    servers=st.dictionaries(server_names, weights, min_size=1, max_size=8).filter(
        lambda s: any(w > 0 for w in s.values())
    ),
    factor=factors,
    keys=st.lists(key_pool, min_size=1, max_size=120),
)
def test_caps_hold_after_every_acquire(
    servers: dict[str, float], factor: float, keys: list[str]
) -> None:
    lb = BoundedLoadHash(servers, balance_factor=factor, vnodes=20)
    for key in keys:
        lb.acquire(key)
        assert_all_within_caps(lb)
    lb._check()


def test_factor_one_is_perfectly_even() -> None:
    lb = BoundedLoadHash(["a", "b", "c", "d"], balance_factor=1)
    for i in range(100):
        lb.acquire(f"key-{i % 7}")
    assert [lb.in_flight(s) for s in "abcd"] == [25, 25, 25, 25]


def test_weights_set_the_caps() -> None:
    lb = BoundedLoadHash({"a": 3, "b": 1, "zero": 0}, balance_factor=1)
    servers = Counter(lb.acquire("hot").server for _ in range(40))
    assert servers == {"a": 30, "b": 10}
    assert lb.capacity("a") == 31 and lb.capacity("b") == 11 and lb.capacity("zero") == 0


def test_spill_follows_the_ring_walk() -> None:
    lb = BoundedLoadHash([f"s{i}" for i in range(6)], balance_factor=1)
    walk = lb.get_n_servers("hot", 6)
    order = [lb.acquire("hot").server for _ in range(6)]
    assert order == walk  # with c = 1, each lease fills the next server of the walk


def test_get_server_counts_nothing_but_sees_the_load() -> None:
    lb = BoundedLoadHash([f"s{i}" for i in range(4)], balance_factor=1)
    first, second = lb.get_n_servers("hot", 2)
    assert lb.get_server("hot") == lb.get_server("hot") == first
    assert in_flight_total(lb) == 0
    lease = lb.acquire("hot")
    assert lease.server == first
    assert lb.get_server("hot") == second  # first is at its cap of ceil(2 / 4) = 1
    lease.release()
    assert lb.get_server("hot") == first


class BoundedMachine(RuleBasedStateMachine):
    """Acquires, releases and membership changes against a reference model."""

    def __init__(self) -> None:
        super().__init__()
        self.lb = BoundedLoadHash({"s0": 1, "s1": 2}, balance_factor=1.25, vnodes=10)
        self.weights: dict[str, float] = {"s0": 1, "s1": 2}
        self.open: list[Lease] = []
        self.counts: Counter[str] = Counter()  # leases on current members

    def expected(self, key: str) -> str:
        points = reference(self.weights, 10, 0)
        total = math.fsum(w for w in self.weights.values() if w > 0)
        m = sum(self.counts.values()) + 1
        walk = ref_walk(points, hash_key(key))
        for server in walk:
            if self.counts[server] < math.ceil(1.25 * m * self.weights[server] / total):
                return server
        raise AssertionError("no server had room")  # pragma: no cover

    @precondition(lambda self: any(w > 0 for w in self.weights.values()))
    @rule(key=key_pool)
    def acquire(self, key: str) -> None:
        want = self.expected(key)
        assert self.lb.get_server(key) == want
        lease = self.lb.acquire(key)
        assert lease.server == want
        self.open.append(lease)
        self.counts[want] += 1
        m = sum(self.counts.values())
        assert self.counts[want] <= cap(self.lb, want, m)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        lease = self.open.pop(data.draw(st.integers(0, len(self.open) - 1)))
        lease.release()
        if lease.server in self.weights and lease.token is self.lb._members[lease.server]:
            self.counts[lease.server] -= 1

    @rule(server=server_names, weight=weights)
    def add_or_reweight(self, server: str, weight: float) -> None:
        if server in self.weights:
            self.lb.set_weight(server, weight)
        else:
            self.lb.add_server(server, weight)
        self.weights[server] = weight

    @precondition(lambda self: len(self.weights) > 1)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        server = data.draw(st.sampled_from(sorted(self.weights)))
        self.lb.remove_server(server)
        del self.weights[server]
        del self.counts[server]

    @invariant()
    def consistent(self) -> None:
        self.lb._check()
        assert {s: self.lb.in_flight(s) for s in self.weights} == {
            s: self.counts[s] for s in self.weights
        }


@pytest.mark.slow
def test_acquire_release_and_changes_against_a_model() -> None:
    run_state_machine_as_test(BoundedMachine, settings=settings(max_examples=40))


# -- accounting --------------------------------------------------------------------------


def test_removed_server_leases_stop_counting() -> None:
    lb = BoundedLoadHash(["a", "b", "c"], balance_factor=1)
    leases = [lb.acquire(f"k{i}") for i in range(6)]
    gone = leases[0].server
    held = lb.in_flight(gone)
    lb.remove_server(gone)
    lb._check()
    assert lb._in_flight_total == 6 - held
    for lease in leases:
        lease.release()
    lb._check()
    assert lb._in_flight_total == 0
    lb.add_server(gone)
    assert lb.capacity(gone) == 1


def test_pinned_leases_count() -> None:
    lb = BoundedLoadHash(["a", "b"], balance_factor=1)
    lb._open(lb, None, "a")
    lb._open(lb, None, "a")
    assert lb.acquire("anything").server == "b"  # a is over ceil(3 / 2) = 2
    lb._check()


def test_fallback_when_rounding_leaves_no_room() -> None:
    lb = BoundedLoadHash({"a": 1, "b": 1, "c": 2}, balance_factor=1)
    for server, count in {"a": 2, "b": 1, "c": 1}.items():
        for _ in range(count):
            lb._open(lb, None, server)
    # Force every cap below the loads, as float rounding in the extreme could.
    with mock.patch.object(lb, "_factor", 0.01):
        for key in ("x", "y", "z"):
            assert lb.get_server(key) == "c"  # the lowest in-flight / weight


# -- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [0.999, 0, -1, math.nan, math.inf, 1e308, 10**400])
def test_bad_factor_values(factor: float) -> None:
    with pytest.raises(
        ValueError, match=r"balance_factor must be a finite number in \[1, 1e\+06\]"
    ):
        BoundedLoadHash(["a"], balance_factor=factor)


@pytest.mark.parametrize("factor", ["1.5", None, True])
def test_bad_factor_types(factor: object) -> None:
    with pytest.raises(TypeError, match="balance_factor"):
        BoundedLoadHash(["a"], balance_factor=factor)  # type: ignore[arg-type]


def test_capacity_of_unknown_server() -> None:
    with pytest.raises(UnknownServer):
        BoundedLoadHash(["a"]).capacity("b")


def test_keys_and_repr() -> None:
    lb = BoundedLoadHash({"a": 2}, balance_factor=1.5, vnodes=8, seed=3)
    assert repr(lb) == "BoundedLoadHash({'a': 2.0}, balance_factor=1.5, vnodes=8, seed=3)"
    assert lb.balance_factor == 1.5 and lb.vnodes == 8 and lb.seed == 3
    with pytest.raises(TypeError, match="BoundedLoadHash needs a key"):
        lb.get_server()
    with pytest.raises(TypeError, match="key"):
        lb.acquire(2.5)
    assert lb._in_flight_total == 0
