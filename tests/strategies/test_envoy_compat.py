"""ConsistentHash(compat="envoy") and Maglev(compat="envoy") against Envoy's own tests.

The hosts, ring sizes, table sizes and expected hosts per request hash are
those of Envoy's ring_hash_lb_test.cc and maglev_lb_test.cc.
"""

from __future__ import annotations

from collections import Counter

import pytest
import xxhash

from balancekit import ConsistentHash, Maglev, NoServerAvailable
from balancekit.strategies._envoy import EnvoyRingPoints, maglev_owners

from ..processes import outputs_under_hash_seeds

MAX64 = 2**64 - 1


def hosts(*ports: int, weights: tuple[float, ...] = ()) -> dict[str, float]:
    return {f"127.0.0.1:{p}": (weights[i] if weights else 1) for i, p in enumerate(ports)}


def port(server: str) -> int:
    return int(server.rsplit(":", 1)[1])


# -- ring hash ------------------------------------------------------------------


def test_ring_basic() -> None:
    ring = ConsistentHash(hosts(*range(90, 96)), compat="envoy", min_ring_size=12)
    assert {ring.points(s) for s in ring.servers} == {2}  # size 12, 2 hashes per host
    assert port(ring.get_server(0)) == 94
    assert port(ring.get_server(MAX64)) == 94
    assert port(ring.get_server(3551244743356806947)) == 95
    assert port(ring.get_server(3551244743356806948)) == 93
    assert port(ring.get_server(16117243373044804880)) == 90
    # Envoy's table of the ring, in order
    expected = [
        (833437586790550860, 94), (928266305478181108, 92), (1033482794131418490, 90),
        (3551244743356806947, 95), (3851675632748031481, 93), (5583722120771150861, 91),
        (6311230543546372928, 91), (7700377290971790572, 93), (13144177310400110813, 95),
        (13444792449719432967, 92), (15516499411664133160, 94), (16117243373044804889, 90),
    ]  # fmt: skip
    have = sorted((p, port(s)) for s in ring.servers for p in ring.positions(s))
    assert have == expected
    ring._check()


def test_ring_basic_with_hostnames() -> None:
    # Envoy's BasicWithHostname: use_hostname_for_hashing, hosts named "90".."95".
    ring = ConsistentHash({str(p): 1 for p in range(90, 96)}, compat="envoy", min_ring_size=12)
    assert ring.get_server(0) == ring.get_server(MAX64) == "95"
    assert ring.get_server(7225015537174310577) == "92"
    assert ring.get_server(6803900775736438537) == "93"
    first_points = sorted((ring.positions(s)[0], s) for s in ring.servers)[:3]
    assert first_points == [
        (1975508444536362413, "95"), (2386806903309390596, "93"), (6749904478991551885, "94")
    ]  # fmt: skip


def test_ring_uneven_hosts() -> None:
    ring = ConsistentHash(hosts(80, 81), compat="envoy", min_ring_size=3)
    assert sum(ring.points(s) for s in ring.servers) == 4
    assert port(ring.get_server(0)) == 80
    ring.remove_server("127.0.0.1:80")
    ring.add_server("127.0.0.1:82")
    ring._check()
    assert sorted(ring.positions("127.0.0.1:82")) == [8241336090459785962, 12882406409176325258]
    assert port(ring.get_server(0)) == 81


TINY = {
    928266305478181108: 92, 4443673547860492590: 92, 5583722120771150861: 91,
    6311230543546372928: 91, 13444792449719432967: 92, 16117243373044804889: 90,
}  # fmt: skip


def test_ring_host_weighted_tiny() -> None:
    ring = ConsistentHash(
        hosts(90, 91, 92, weights=(1, 2, 3)), compat="envoy", min_ring_size=6, max_ring_size=6
    )
    assert [ring.points(s) for s in ring.servers] == [1, 2, 3]
    for h, want in TINY.items():
        assert port(ring.get_server(h)) == want


def test_ring_host_weighted_large() -> None:
    ring = ConsistentHash(hosts(90, 91, 92, weights=(1, 2, 3)), compat="envoy", min_ring_size=6144)
    assert [ring.points(s) for s in ring.servers] == [1024, 2048, 3072]
    counts = Counter(port(ring.get_server(i * (MAX64 // 6000))) for i in range(6000))
    assert counts == {90: 987, 91: 1932, 92: 3081}


def test_ring_string_keys_are_xxh64() -> None:
    ring = ConsistentHash(hosts(*range(90, 96)), compat="envoy")
    for key in ("user-1", "session/42", "é"):
        h = xxhash.xxh64_intdigest(key.encode())
        assert ring.get_server(key) == ring.get_server(h) == ring.get_server(key.encode())


def test_ring_default_size_and_weight_zero() -> None:
    ring = ConsistentHash({**hosts(1, 2, 3), "127.0.0.1:4": 0}, compat="envoy")
    assert [ring.points(s) for s in ring.servers] == [342, 342, 342, 0]
    assert ring.positions("127.0.0.1:4") == []


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"min_ring_size": 20, "max_ring_size": 10}, ValueError),
        ({"min_ring_size": 0}, ValueError),
        ({"max_ring_size": 8388609}, ValueError),
        ({"min_ring_size": 1.5}, TypeError),
        ({"max_ring_size": True}, TypeError),
        ({"seed": 1}, ValueError),
    ],
)
def test_ring_bad_options(options: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error, match=r"ring_size|seed"):
        ConsistentHash(hosts(90), compat="envoy", **options)  # type: ignore[arg-type]


def test_ring_membership_changes_equal_a_fresh_build() -> None:
    ring = ConsistentHash(hosts(*range(90, 96)), compat="envoy", min_ring_size=64)
    ring.add_server("127.0.0.1:96", 2)
    ring.set_weight("127.0.0.1:90", 3)
    ring.remove_server("127.0.0.1:93")
    ring._check()
    fresh = ConsistentHash(dict(ring.servers), compat="envoy", min_ring_size=64)
    for i in range(500):
        h = i * (MAX64 // 500)
        assert ring.get_server(h) == fresh.get_server(h)
    assert "min_ring_size=64" in repr(ring)
    assert repr(EnvoyRingPoints(64)) == "EnvoyRingPoints(64, 8388608)"


# -- Maglev ---------------------------------------------------------------------


def assignments(lb: Maglev, size: int) -> list[int]:
    return [port(lb.get_server(i)) - 90 for i in range(3 * size)]


def test_maglev_basic() -> None:
    lb = Maglev(hosts(*range(90, 96)), compat="envoy", table_size=7)
    assert assignments(lb, 7) == [2, 4, 0, 1, 5, 0, 3] * 3
    lb._check()


def test_maglev_basic_with_hostnames() -> None:
    lb = Maglev({str(p): 1 for p in range(90, 96)}, compat="envoy", table_size=7)
    assert [int(lb.get_server(i)) - 90 for i in range(21)] == [2, 5, 0, 3, 4, 1, 0] * 3


def test_maglev_weighted() -> None:
    lb = Maglev(hosts(90, 91, weights=(1, 2)), compat="envoy", table_size=17)
    expected = [1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1]
    assert assignments(lb, 17) == expected * 3
    assert sorted(Counter(lb._table).values()) == [6, 11]


def test_maglev_lopsided() -> None:
    # Envoy's LocalityWeightedLopsided as host weights: one host of 127/128 of
    # the weight, 1023 sharing the rest; the light ones get one entry each.
    servers = {f"127.0.0.1:{i}": 1 for i in range(1, 1024)}
    servers["127.0.0.1:0"] = 127 * 1023
    lb = Maglev(servers, compat="envoy")
    counts = Counter(lb.get_server(i) for i in range(65537))
    assert counts.pop("127.0.0.1:0") == 65537 - 1023
    assert set(counts.values()) == {1} and len(counts) == 1023


def test_maglev_no_minimum_of_entries_and_more_hosts_than_slots() -> None:
    lb = Maglev(hosts(*range(90, 100)), compat="envoy", table_size=7)
    assert len(set(lb._table)) == 7
    lb._check()
    assert maglev_owners([], [], 7) == []


def test_maglev_keys() -> None:
    lb = Maglev(hosts(*range(90, 96)), compat="envoy", table_size=7)
    h = xxhash.xxh64_intdigest(b"user-1")
    assert lb.get_server("user-1") == lb.get_server(h) == lb.get_server(b"user-1")
    assert lb.get_server(h) == lb._table[h % 7]
    for key, error in [(2**64, ValueError), (-1, ValueError), (True, TypeError), (None, TypeError)]:
        with pytest.raises(error, match="key"):
            lb.get_server(key)
        with pytest.raises(error, match="key"):
            lb.acquire(key)
    assert all(lb.in_flight(s) == 0 for s in lb.servers)


def test_maglev_options() -> None:
    with pytest.raises(ValueError, match="prime"):
        Maglev(hosts(90), compat="envoy", table_size=8)
    with pytest.raises(ValueError, match="seed"):
        Maglev(hosts(90), compat="envoy", seed=2)
    with pytest.raises(ValueError, match="compat must be"):
        Maglev(hosts(90), compat="ketama")
    lb = Maglev(hosts(90), compat="envoy")
    assert lb.table_size == 65537 and lb.compat == "envoy"
    assert repr(lb).endswith("table_size=65537, compat='envoy')")
    assert Maglev(["a"]).compat is None


def test_maglev_empty_and_changes() -> None:
    lb = Maglev(compat="envoy", table_size=7)
    with pytest.raises(NoServerAvailable):
        lb.get_server(1)
    for p in range(90, 96):
        lb.add_server(f"127.0.0.1:{p}")
    assert assignments(lb, 7) == [2, 4, 0, 1, 5, 0, 3] * 3
    lb.set_weight("127.0.0.1:95", 0)
    lb._check()
    assert "127.0.0.1:95" not in lb._table


def test_same_answers_in_other_processes() -> None:
    script = (
        "from balancekit import ConsistentHash, Maglev\n"
        "hosts = {f'127.0.0.1:{p}': 1 + p % 3 for p in range(90, 100)}\n"
        "ring = ConsistentHash(hosts, compat='envoy')\n"
        "table = Maglev(hosts, compat='envoy', table_size=101)\n"
        "keys = [f'user-{i}' for i in range(200)]\n"
        "print([ring.get_server(k) for k in keys], [table.get_server(k) for k in keys])\n"
    )
    hosts = {f"127.0.0.1:{p}": 1 + p % 3 for p in range(90, 100)}
    ring = ConsistentHash(hosts, compat="envoy")
    table = Maglev(hosts, compat="envoy", table_size=101)
    keys = [f"user-{i}" for i in range(200)]
    here = [ring.get_server(k) for k in keys], [table.get_server(k) for k in keys]
    assert outputs_under_hash_seeds(script, ("0", "777")) == {f"{here[0]} {here[1]}"}
