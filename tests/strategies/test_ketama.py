"""ConsistentHash(compat="ketama") against libmemcached's own known answers."""

from __future__ import annotations

import doctest
import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit import ConsistentHash, UnknownServer
from balancekit.strategies._ketama import KetamaPoints, ketama_hash, point_name

from ..processes import outputs_under_hash_seeds
from .ketama_vectors import CASES, SERVERS


@pytest.fixture(scope="module")
def ring() -> ConsistentHash:
    return ConsistentHash(SERVERS, compat="ketama")


def continuum(ring: ConsistentHash) -> list[tuple[int, str]]:
    return sorted((p, s) for s in ring.servers for p in ring.positions(s))


def test_the_fixture_is_complete() -> None:
    assert len(CASES) == 99
    assert len({key for key, *_ in CASES}) == 99


@pytest.mark.parametrize(("key", "key_hash", "point", "host"), CASES)
def test_libmemcached_vectors(
    ring: ConsistentHash, key: str, key_hash: int, point: int, host: str
) -> None:
    assert ketama_hash(key.encode()) == key_hash
    assert ring.get_server(key) == f"{host}:11211"
    # the int key is the request hash itself, and the point reached is libmemcached's
    assert ring.get_server(key_hash) == f"{host}:11211"
    assert ring.get_server(key.encode()) == f"{host}:11211"
    points = continuum(ring)
    assert min(p for p, _ in points if p >= key_hash) == point


def test_a_hash_past_the_last_point_wraps_to_the_first(ring: ConsistentHash) -> None:
    # libmemcached's own boundary case: VDEAAAAA hashes to 0xfffcd1b5.
    points = continuum(ring)
    assert ketama_hash(b"VDEAAAAA") == 0xFFFCD1B5 > points[-1][0]
    assert ring.get_server("VDEAAAAA") == points[0][1]
    assert ring.get_server(2**64 - 1) == points[0][1]
    assert ring.get_server(0) == points[0][1]


def test_a_hash_on_a_point_goes_to_that_point(ring: ConsistentHash) -> None:
    points = continuum(ring)
    for position, server in points[:50]:
        assert ring.get_server(position) == server
        after = next(s for p, s in points if p > position)
        assert ring.get_server(position + 1) == after


def test_weighted_point_counts(ring: ConsistentHash) -> None:
    counts = {server: ring.points(server) for server in SERVERS}
    assert sum(counts.values()) == 1264
    assert all(count % 4 == 0 for count in counts.values())
    # the heaviest server gets the most points, in weight order
    assert sorted(counts, key=counts.__getitem__) == sorted(SERVERS, key=SERVERS.__getitem__)
    assert ring._check() is None


def test_equal_weights_give_160_points_each() -> None:
    ring = ConsistentHash([f"h{i}:11211" for i in range(5)], compat="ketama")
    assert {ring.points(s) for s in ring.servers} == {160}


def test_point_counts_are_computed_in_single_precision() -> None:
    # Derived from libmemcached's expression (not a published vector): in C
    # float, 1/25 x 160 / 4 x 25 comes to 39.999996, so 25 equal servers get
    # 4 x 39 = 156 points each, where double precision would give 160.
    for n, expected in [(24, 160), (25, 156), (26, 160), (50, 156), (100, 156)]:
        counts = KetamaPoints().counts({f"h{i}:11211": 1 for i in range(n)})
        assert set(counts.values()) == {expected}, n
    ring = ConsistentHash([f"h{i}:11211" for i in range(24)], compat="ketama")
    ring.add_server("h24:11211")  # every server drops from 160 to 156 points
    ring._check()
    assert {ring.points(s) for s in ring.servers} == {156}


def test_point_names_follow_the_port() -> None:
    assert point_name("10.0.1.1:11211", 0) == "10.0.1.1-0"
    assert point_name("10.0.1.1:11212", 7) == "10.0.1.1:11212-7"
    assert point_name("cache", 2) == "cache-2"
    ring = ConsistentHash({"cache:11212": 1}, compat="ketama")
    digest = hashlib.md5(b"cache:11212-0").digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    assert set(words) <= set(ring.positions("cache:11212"))


def test_weight_zero_gets_no_points_and_does_not_count() -> None:
    with_zero = ConsistentHash({"a:11211": 1, "b:11211": 2, "z:11211": 0}, compat="ketama")
    without = ConsistentHash({"a:11211": 1, "b:11211": 2}, compat="ketama")
    assert with_zero.positions("z:11211") == []
    assert with_zero.points("z:11211") == 0
    for key, *_ in CASES:
        assert with_zero.get_server(key) == without.get_server(key)


def test_an_ejected_server_gets_no_key(ring: ConsistentHash) -> None:
    # libmemcached's auto_eject_hosts test: with 10.0.1.3 ejected, no key of the
    # fixture goes to it; weight 0 is that state here. Back at its weight, the
    # fixture's answers return.
    ejected = ConsistentHash({**SERVERS, "10.0.1.3:11211": 0}, compat="ketama")
    assert all(ejected.get_server(key) != "10.0.1.3:11211" for key, *_ in CASES)
    ejected.set_weight("10.0.1.3:11211", 200)
    assert [ejected.get_server(k) for k, *_ in CASES] == [f"{h}:11211" for *_, h in CASES]


def test_positions_of_an_unknown_server(ring: ConsistentHash) -> None:
    with pytest.raises(UnknownServer):
        ring.positions("nope:11211")


@pytest.mark.parametrize(
    ("key", "error"),
    [(2**64, ValueError), (-1, ValueError), (True, TypeError), (None, TypeError), (1.5, TypeError)],
)
def test_bad_keys(ring: ConsistentHash, key: object, error: type[Exception]) -> None:
    before = dict(ring.servers)
    with pytest.raises(error, match="key"):
        ring.get_server(key)
    with pytest.raises(error, match="key"):
        ring.acquire(key)
    assert dict(ring.servers) == before
    assert all(ring.in_flight(s) == 0 for s in ring.servers)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="compat must be"):
        ConsistentHash(SERVERS, compat="memcached")
    with pytest.raises(TypeError, match="compat must be"):
        ConsistentHash(SERVERS, compat=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="vnodes and seed"):
        ConsistentHash(SERVERS, compat="ketama", vnodes=100)
    with pytest.raises(ValueError, match="vnodes and seed"):
        ConsistentHash(SERVERS, compat="ketama", seed=3)
    with pytest.raises(ValueError, match="min_ring_size"):
        ConsistentHash(SERVERS, compat="ketama", min_ring_size=12)


def test_repr_and_compat(ring: ConsistentHash) -> None:
    assert ring.compat == "ketama"
    assert repr(ring).endswith("compat='ketama')")
    assert ConsistentHash(["a"]).compat is None
    assert repr(KetamaPoints()) == "KetamaPoints()"


def test_get_n_servers_starts_with_the_server(ring: ConsistentHash) -> None:
    for key, *_ in CASES[:20]:
        replicas = ring.get_n_servers(key, 3)
        assert replicas[0] == ring.get_server(key)
        assert len(set(replicas)) == 3


def test_acquire_uses_the_same_mapping(ring: ConsistentHash) -> None:
    for key, _, _, host in CASES[:10]:
        with ring.acquire(key) as lease:
            assert lease.server == f"{host}:11211"


NAMES = [f"10.0.0.{i}:{11211 + i % 2}" for i in range(8)]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(NAMES), st.sampled_from([0, 1, 2, 100, 350])),
        min_size=1,
        max_size=12,
    )
)
def test_changes_equal_a_fresh_build(ops: list[tuple[str, int]]) -> None:
    ring = ConsistentHash({NAMES[0]: 1, NAMES[1]: 3}, compat="ketama")
    for server, weight in ops:
        if server not in ring:
            ring.add_server(server, weight)
        elif weight == 100 and len(ring) > 1:
            ring.remove_server(server)
        else:
            ring.set_weight(server, weight)
        ring._check()
    fresh = ConsistentHash(dict(ring.servers), compat="ketama")
    assert continuum(ring) == continuum(fresh)
    if any(ring.servers.values()):
        assert [ring.get_server(k) for k, *_ in CASES] == [fresh.get_server(k) for k, *_ in CASES]


def test_same_answers_in_other_processes(ring: ConsistentHash) -> None:
    script = (
        "from balancekit import ConsistentHash\n"
        "from tests.strategies.ketama_vectors import CASES, SERVERS\n"
        "r = ConsistentHash(SERVERS, compat='ketama')\n"
        "print(','.join(r.get_server(k) for k, *_ in CASES))\n"
    )
    here = ",".join(ring.get_server(k) for k, *_ in CASES)
    assert outputs_under_hash_seeds(script, ("0", "12345")) == {here}


def test_the_compat_page_runs_as_written() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "compat.md"
    failures, tried = doctest.testfile(str(page), module_relative=False)
    assert tried >= 10
    assert failures == 0


def test_agrees_with_uhashring_where_both_follow_ketama() -> None:
    # uhashring's ketama ring names points "<node>-k" whatever the port and takes
    # the first point strictly after the hash: with port-less ids and equal
    # weights (160 points each in both) it must agree except on exact hits.
    uhashring = pytest.importorskip("uhashring")
    nodes = [f"10.0.2.{i}" for i in range(1, 9)]
    theirs = uhashring.HashRing(nodes=nodes, hash_fn="ketama")
    ours = ConsistentHash(nodes, compat="ketama")
    keys = [f"key-{i}" for i in range(2000)]
    on_a_point = {p for s in nodes for p in ours.positions(s)}
    checked = [k for k in keys if ketama_hash(k.encode()) not in on_a_point]
    assert len(checked) > 1990
    assert [ours.get_server(k) for k in checked] == [theirs.get_node(k) for k in checked]
