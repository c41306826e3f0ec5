from __future__ import annotations

import ipaddress
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit import NoServerAvailable
from balancekit.hashing import hash_bytes, ip_key, pton
from balancekit.strategies.ip_hash import IPHash
from balancekit.strategies.ring import ConsistentHash

CLIENTS = [f"10.{i // 250}.{i % 250}.{(7 * i) % 256}" for i in range(3000)]
SERVERS = [f"backend-{i}" for i in range(10)]

octets = st.sampled_from(
    [
        *("0", "00", "01", "1", "9", "10", "99", "100", "199", "200", "249", "250", "255"),
        *("256", "300", "999", "1000", "", " 1", "1 ", "\u0663", "+1", "-1", "0x1", "\u00b2"),
    ]
)


def reference_key(address: object) -> bytes | None:
    """What ip_key must give, by ipaddress alone; None where ipaddress refuses."""
    try:
        parsed = ipaddress.ip_address(address)  # type: ignore[arg-type]
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return parsed.packed


def expected_hash(address: object, seed: int = 0) -> int:
    key = reference_key(address)
    if key is None:
        raise ValueError(f"not an IP address: {address!r}")
    return hash_bytes(key, seed)


address_text = st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF:.%", max_size=45),
    st.lists(
        st.sampled_from(
            [
                "::",
                ":",
                ".",
                "ffff",
                "0",
                "00",
                "01",
                "1",
                "255",
                "256",
                "1.2.3.4",
                "::ffff:",
                "0000",
                "00000",
                "12345",
                "%eth0",
                "%1",
                " ",
                "\x00",
                "\u0663",
                "1:2:3:4:5:6:7:8",
            ]
        ),
        max_size=8,
    ).map("".join),
    st.ip_addresses().map(str),
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
)


@pytest.mark.slow  # 2,000 examples; test_near_miss_strings_agree_with_ip_key runs by default
@settings(max_examples=2000)
@given(address_text)
def test_the_fast_path_accepts_and_rejects_exactly_what_ipaddress_does(text: str) -> None:
    want = reference_key(text)
    fast = pton(text)
    assert fast is None or fast == want  # inet_pton never accepts more than ipaddress
    lb = IPHash(SERVERS, seed=3)
    ring = ConsistentHash(SERVERS, seed=3)
    if want is None:
        with pytest.raises(ValueError, match="not an IP address"):
            ip_key(text)
        with pytest.raises(ValueError, match="not an IP address"):
            lb.get_server(text)
    else:
        assert ip_key(text) == want
        assert lb._hash(text) == hash_bytes(want, 3)
        assert lb.get_server(text) == ring.get_server(want)


@pytest.mark.parametrize(
    ("text", "packed"),
    [
        ("10.0.0.1", "0a000001"),
        ("::ffff:10.0.0.1", "0a000001"),  # IPv4-mapped: the IPv4 client
        ("::ffff:0a00:0001", "0a000001"),
        ("::10.0.0.1", "0000000000000000000000000a000001"),  # IPv4-compatible: not mapped
        ("fe80::1%eth0", "fe800000000000000000000000000001"),  # a scope id: ipaddress only
        ("2001:DB8::1", "20010db8000000000000000000000001"),
        ("010.0.0.1", None),  # leading zeros: refused by both
        ("::ffff:10.0.0.01", None),
        ("10.0.0.1 ", None),
        ("10.0.0.1\x00", None),
        ("1.2.3", None),
    ],
)
def test_known_addresses(text: str, packed: str | None) -> None:
    assert reference_key(text) == (None if packed is None else bytes.fromhex(packed))
    if packed is None:
        assert pton(text) is None
        with pytest.raises(ValueError, match="not an IP address"):
            ip_key(text)
    else:
        assert ip_key(text).hex() == packed


@settings(max_examples=150)
@given(st.ip_addresses(v=4))
def test_dotted_quads_hash_like_ip_key(address: ipaddress.IPv4Address) -> None:
    lb = IPHash(seed=5)
    assert lb._hash(str(address)) == expected_hash(address, 5)


@settings(max_examples=300)
@given(st.lists(octets, min_size=1, max_size=6).map(".".join))
def test_near_miss_strings_agree_with_ip_key(text: str) -> None:
    lb = IPHash()
    try:
        want = expected_hash(text)
    except ValueError:
        with pytest.raises(ValueError, match="not an IP address"):
            lb._hash(text)
    else:
        assert lb._hash(text) == want


@settings(max_examples=50)
@given(st.ip_addresses(v=6))
def test_ipv6_and_address_objects(address: ipaddress.IPv6Address) -> None:
    lb = IPHash(SERVERS)
    assert lb.get_server(str(address)) == lb.get_server(address)
    assert lb._hash(address) == expected_hash(address)


def test_ipv4_mapped_ipv6_is_the_same_client() -> None:
    lb = IPHash(SERVERS)
    for client in CLIENTS[:300]:
        server = lb.get_server(client)
        assert lb.get_server(f"::ffff:{client}") == server
        assert lb.get_server(ipaddress.ip_address(client)) == server
        assert lb.get_server(ipaddress.IPv6Address(f"::ffff:{client}")) == server


def test_it_is_the_ring_keyed_by_packed_address() -> None:
    lb = IPHash(SERVERS, vnodes=50, seed=9)
    ring = ConsistentHash(SERVERS, vnodes=50, seed=9)
    for client in CLIENTS[:500]:
        assert lb.get_server(client) == ring.get_server(ip_key(client))
        assert lb.get_n_servers(client, 3) == ring.get_n_servers(ip_key(client), 3)
        assert lb.acquire(client).server == ring.get_server(ip_key(client))
    lb._check()


def test_removing_a_server_moves_only_its_clients() -> None:
    lb = IPHash(SERVERS)
    before = {c: lb.get_n_servers(c, 2) for c in CLIENTS}
    lb.remove_server("backend-4")
    moved = 0
    for client, (first, second) in before.items():
        assert lb.get_server(client) == (second if first == "backend-4" else first)
        moved += first == "backend-4"
    assert 150 < moved < 450
    lb.add_server("backend-4")
    assert {c: lb.get_n_servers(c, 2) for c in CLIENTS} == before


def test_adding_a_server_takes_clients_only_for_itself() -> None:
    lb = IPHash(SERVERS)
    before = {c: lb.get_server(c) for c in CLIENTS}
    lb.add_server("backend-new")
    changed = {c for c in CLIENTS if lb.get_server(c) != before[c]}
    assert {lb.get_server(c) for c in changed} == {"backend-new"}
    assert 150 < len(changed) < 450


def test_unlike_modulo_hashing() -> None:
    # What hash % N would do on the same change: most clients move.
    def modulo(client: str, servers: list[str]) -> str:
        return servers[hash_bytes(ip_key(client)) % len(servers)]

    moved = sum(modulo(c, SERVERS) != modulo(c, SERVERS[:-1]) for c in CLIENTS)
    assert moved > 0.8 * len(CLIENTS)


def test_balance() -> None:
    lb = IPHash(SERVERS)
    counts = Counter(lb.get_server(f"192.168.{i // 256}.{i % 256}") for i in range(30_000))
    assert len(counts) == 10
    assert max(counts.values()) / 3000 < 1.35  # measured 1.23


@pytest.mark.parametrize("key", [1.5, 42, b"\n\x00\x00\x01", ["10.0.0.1"], True])
def test_wrong_key_types(key: object) -> None:
    lb = IPHash(SERVERS)
    with pytest.raises(TypeError, match=r"IPHash key must be an IP address.* got "):
        lb.get_server(key)
    with pytest.raises(TypeError, match="key"):
        lb.acquire(key)
    assert all(lb.in_flight(s) == 0 for s in SERVERS)


def test_missing_key() -> None:
    lb = IPHash(SERVERS)
    with pytest.raises(TypeError, match="IPHash needs a key: the client's IP address"):
        lb.get_server()
    with pytest.raises(TypeError, match="needs a key"):
        lb.get_n_servers(None, 2)


@pytest.mark.parametrize("key", ["key-1", "10.0.0.256", "", "010.0.0.1", "1.2.3", "::gg"])
def test_invalid_addresses(key: str) -> None:
    lb = IPHash(SERVERS)
    with pytest.raises(ValueError, match=f"not an IP address: {key!r}"):
        lb.get_server(key)
    with pytest.raises(ValueError, match="not an IP address"):
        lb.acquire(key)
    assert all(lb.in_flight(s) == 0 for s in SERVERS)


def test_empty_and_options() -> None:
    with pytest.raises(NoServerAvailable):
        IPHash().get_server("10.0.0.1")
    lb = IPHash({"a": 1}, vnodes=4, seed=2)
    assert repr(lb) == "IPHash({'a': 1.0}, vnodes=4, seed=2)"
    assert lb.requires_key and lb.get_server("10.0.0.1") == "a"
