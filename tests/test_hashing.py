from __future__ import annotations

import ipaddress

import pytest

from balancekit.hashing import hash_key, hash_server, ip_key, key_bytes, unit_interval

# Golden values: if the hash function or key encoding ever changes, placements
# change for every user, so these may be updated only on purpose.
GOLDEN = [
    ("user-42", 0, 0x50FE4B21CF7B09CD),
    ("user-42", 7, 0x203282D440C2C780),
    (b"\x00\xff", 0, 0xA99B043A346C8BF3),
    (42, 0, 0x1217CB28C0EF2191),
    ("café", 0, 0x4C83DBD5F29D367F),
]


@pytest.mark.parametrize(("key", "seed", "expected"), GOLDEN)
def test_golden_vectors(key: object, seed: int, expected: int) -> None:
    assert hash_key(key, seed) == expected


def test_golden_server_point() -> None:
    assert hash_server("10.0.0.1:80", 3) == 0x5FEDAC5784C960D6


def test_golden_empty_string() -> None:
    # XXH3-64 of the empty input with seed 0, a published constant.
    assert hash_key("") == 0x2D06800538D394C2


def test_str_bytes_and_int_keys() -> None:
    assert hash_key("abc") == hash_key(b"abc")
    assert hash_key(12345) == hash_key("12345")
    assert hash_key(-7) == hash_key("-7")
    assert 0 <= hash_key("x") < 2**64
    assert hash_key("x", seed=1) != hash_key("x", seed=0)


@pytest.mark.parametrize("bad", [None, True, 1.5, ["a"], object()])
def test_bad_keys_are_type_errors(bad: object) -> None:
    with pytest.raises(TypeError, match="key"):
        hash_key(bad)
    with pytest.raises(TypeError, match="key"):
        key_bytes(bad)


def test_server_points_differ_by_replica() -> None:
    assert len({hash_server("a", i) for i in range(1000)}) == 1000


def test_unit_interval_is_open() -> None:
    for h in (0, 1, 2**63, 2**64 - 1):
        assert 0.0 < unit_interval(h) < 1.0


def test_ip_normalisation() -> None:
    assert ip_key("10.0.0.1") == ip_key("::ffff:10.0.0.1") == bytes([10, 0, 0, 1])
    assert ip_key(ipaddress.ip_address("::ffff:10.0.0.1")) == bytes([10, 0, 0, 1])
    assert ip_key("2001:DB8::1") == ip_key("2001:db8:0::1")
    assert len(ip_key("::1")) == 16


@pytest.mark.parametrize("bad", ["", "10.0.0", "host.example", "10.0.0.1:80", "::g"])
def test_invalid_ip_is_a_value_error_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        ip_key(bad)


def test_ip_of_wrong_type() -> None:
    with pytest.raises(TypeError, match="address"):
        ip_key(167772161)
