from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit.errors import NoServerAvailable
from balancekit.hashing import hash_bytes, hash_key
from balancekit.strategies.jump import JumpHash, jump_bucket


def _paper_jump(key: int, num_buckets: int) -> int:
    """Lamping & Veach's loop as printed in the paper (64-bit LCG, double division)."""
    b, j = -1, 0
    while j < num_buckets:
        b = j
        key = (key * 2862933555777941757 + 1) % 2**64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


try:  # the jump-consistent-hash peer (benchmark extra): a C port of the reference code
    from jump import hash as reference_jump
except ImportError:  # CI installs only the test extra: fall back to the paper's loop
    reference_jump = _paper_jump


# Published with the paper's reference implementation.
PUBLISHED_100 = [0, 55, 62, 8, 45, 59, 86, 97, 82, 59, 73, 37, 17, 56, 86, 21, 90, 37, 38, 83]

# Golden vectors for hashed keys: a change of hash function shows up here.
GOLDEN_KEYS: list[object] = ["user-1", "user-2", "user-3", "user-4", "user-5", "user-6"]
GOLDEN_KEYS += [b"bytes-key", 42, 2**70]
GOLDEN_SERVERS = ["s9", "s6", "s2", "s1", "s1", "s9", "s5", "s2", "s1"]

SERVERS = [f"s{i}" for i in range(10)]
KEYS = [f"key-{i}" for i in range(20_000)]


def test_published_vectors() -> None:
    assert [jump_bucket(k, 100) for k in range(20)] == PUBLISHED_100
    assert jump_bucket(2, 100001) == 80343
    assert [reference_jump(k, 100) for k in range(20)] == PUBLISHED_100


def test_published_vectors_through_the_balancer() -> None:
    lb = JumpHash([f"b{i}" for i in range(100)])
    assert [lb.get_server(k) for k in range(20)] == [f"b{b}" for b in PUBLISHED_100]
    big = JumpHash([f"b{i}" for i in range(100001)])
    assert big.get_server(2) == "b80343"


def test_matches_the_reference_on_random_keys() -> None:
    rng = random.Random(1234)
    for _ in range(3000):
        key = rng.getrandbits(64)
        buckets = rng.choice([1, 2, 3, 10, 100, 1000, rng.randrange(1, 2**31)])
        assert jump_bucket(key, buckets) == reference_jump(key, buckets), (key, buckets)
    assert jump_bucket(2**64 - 1, 2**31 - 1) == reference_jump(2**64 - 1, 2**31 - 1)


@settings(max_examples=200)
@given(st.integers(0, 2**64 - 1), st.integers(1, 5000))
def test_balancer_equals_reference_for_int_keys(key: int, count: int) -> None:
    lb = JumpHash([f"n{i}" for i in range(count)]) if count <= 50 else None
    expected = reference_jump(key, count)
    assert jump_bucket(key, count) == expected
    if lb is not None:
        assert lb.get_server(key) == f"n{expected}"


def test_other_keys_are_hashed_with_seed_zero() -> None:
    lb = JumpHash(SERVERS)
    for key in ["x", b"y", -1, 2**64, 2**70]:
        assert lb.get_server(key) == SERVERS[reference_jump(hash_key(key), 10)], key
    # An int in range is the key itself, so it differs from its decimal string.
    assert lb.get_server(7) == SERVERS[reference_jump(7, 10)]
    assert lb.get_server("7") == SERVERS[reference_jump(hash_key("7"), 10)]


def test_golden_string_keys() -> None:
    lb = JumpHash(SERVERS)
    assert [lb.get_server(k) for k in GOLDEN_KEYS] == GOLDEN_SERVERS


@pytest.mark.parametrize(
    ("key", "buckets", "message"),
    [
        (-1, 10, r"key must be an int in \[0, 2\*\*64\), got -1"),
        (2**64, 10, "got 18446744073709551616"),
        (0, 0, "buckets must be >= 1, got 0"),
        (5, -3, "got -3"),
    ],
)
def test_jump_bucket_rejects_out_of_range(key: int, buckets: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        jump_bucket(key, buckets)


def test_even_distribution() -> None:
    lb = JumpHash(SERVERS)
    counts = Counter(lb.get_server(k) for k in KEYS)
    for server in SERVERS:
        assert abs(counts[server] / len(KEYS) - 0.1) < 0.01, counts


@pytest.mark.parametrize("count", [1, 5, 20, 99])
def test_growing_moves_keys_only_to_the_new_bucket(count: int) -> None:
    lb = JumpHash([f"s{i}" for i in range(count)])
    before = [lb.get_server(k) for k in KEYS]
    lb.add_server("new")
    after = [lb.get_server(k) for k in KEYS]
    moved = [b for a, b in zip(before, after, strict=True) if a != b]
    assert set(moved) <= {"new"}
    expected = len(KEYS) / (count + 1)
    assert abs(len(moved) - expected) < 0.15 * expected + 50
    lb.remove_server("new")  # the last bucket: only its keys go back
    assert [lb.get_server(k) for k in KEYS] == before
    lb._check()


def test_removing_a_middle_server_renumbers_the_buckets_after_it() -> None:
    lb = JumpHash(SERVERS)
    before = {k: lb.get_server(k) for k in KEYS}
    lb.remove_server("s2")
    assert lb.buckets == ("s0", "s1", "s3", "s4", "s5", "s6", "s7", "s8", "s9")
    moved = [k for k in KEYS if before[k] != lb.get_server(k)]
    not_on_s2 = [k for k in moved if before[k] != "s2"]
    # The documented pitfall: far more than s2's tenth of the keys move.
    assert len(moved) > 0.5 * len(KEYS)
    assert len(not_on_s2) > 0.4 * len(KEYS)


def test_buckets_follow_insertion_order() -> None:
    forward = JumpHash(["a", "b", "c"])
    backward = JumpHash(["c", "b", "a"])
    assert forward.buckets == ("a", "b", "c") and backward.buckets == ("c", "b", "a")
    mapped = JumpHash({"a": 1, "b": 1})
    mapped.add_server("c")
    assert mapped.buckets == forward.buckets
    assert [mapped.get_server(k) for k in KEYS[:500]] == [forward.get_server(k) for k in KEYS[:500]]
    assert [backward.get_server(k) for k in KEYS[:500]] != [
        forward.get_server(k) for k in KEYS[:500]
    ]


def test_readding_appends_at_the_end() -> None:
    lb = JumpHash(["a", "b", "c"])
    lb.remove_server("a")
    lb.add_server("a")
    assert lb.buckets == ("b", "c", "a")


def test_weights_above_zero_count_the_same() -> None:
    lb = JumpHash({"a": 5, "b": 0.5})
    counts = Counter(lb.get_server(k) for k in KEYS)
    assert abs(counts["a"] - counts["b"]) < 0.05 * len(KEYS)
    view = lb._view
    lb.set_weight("a", 0.25)  # a slow-start ramp step: nothing to redo
    assert lb._view is view
    lb._check()


def test_weight_zero_keeps_the_bucket_and_moves_only_its_keys() -> None:
    lb = JumpHash(SERVERS)
    before = {k: lb.get_server(k) for k in KEYS}
    lb.set_weight("s3", 0)
    assert lb.buckets == tuple(SERVERS)  # nothing renumbered
    after = {k: lb.get_server(k) for k in KEYS}
    moved = [k for k in KEYS if after[k] != before[k]]
    assert {before[k] for k in moved} == {"s3"}
    assert len(moved) == sum(1 for k in KEYS if before[k] == "s3")
    # Its keys spread over all the others, not onto a neighbour.
    spread = Counter(after[k] for k in moved)
    assert set(spread) == set(SERVERS) - {"s3"}
    assert max(spread.values()) < 2 * len(moved) / 9
    lb.set_weight("s3", 1)
    assert {k: lb.get_server(k) for k in KEYS} == before
    lb._check()


def test_redirect_is_the_documented_rehash_chain() -> None:
    lb = JumpHash({**dict.fromkeys(SERVERS, 1), "s2": 0, "s5": 0, "s6": 0})
    alive = [s not in ("s2", "s5", "s6") for s in SERVERS]
    redirected = 0
    for key in KEYS[:2000]:
        digest = hash_key(key)
        bucket = reference_jump(digest, 10)
        if not alive[bucket]:
            redirected += 1
            data = digest.to_bytes(8, "little")
            attempt = 1
            while not alive[bucket]:
                bucket = reference_jump(hash_bytes(data, attempt), 10)
                attempt += 1
        assert lb.get_server(key) == SERVERS[bucket], key
    assert redirected > 400


@pytest.mark.parametrize(("total", "live"), [(200, 1), (100, 2), (64, 3)])
def test_thin_pools_still_pick_live_servers(total: int, live: int) -> None:
    weights = {
        f"n{i}": (1 if i % (total // live) == 7 % (total // live) else 0) for i in range(total)
    }
    lb = JumpHash(weights)
    wanted = {s for s, w in weights.items() if w}
    assert len(wanted) == live
    picks = Counter(lb.get_server(k) for k in KEYS[:3000])
    assert set(picks) == wanted
    assert min(picks.values()) > 3000 / live / 2
    assert [lb.get_server(k) for k in KEYS[:300]] == [lb.get_server(k) for k in KEYS[:300]]


@pytest.mark.parametrize("key", [None, 1.5, True, ["a"]])
def test_bad_keys_are_type_errors(key: object) -> None:
    lb = JumpHash(["a"])
    with pytest.raises(TypeError, match="key"):
        lb.get_server(key)
    with pytest.raises(TypeError, match="key"):
        lb.acquire(key)
    assert lb.in_flight("a") == 0


def test_no_key_error_says_a_key_is_needed() -> None:
    with pytest.raises(TypeError, match="needs a key"):
        JumpHash(["a"]).get_server()


def test_empty_raises_no_server_available() -> None:
    with pytest.raises(NoServerAvailable, match="empty"):
        JumpHash().get_server(1)


def test_acquire_counts_on_the_looked_up_server() -> None:
    lb = JumpHash(SERVERS)
    lease = lb.acquire("user-7")
    assert lease.server == lb.get_server("user-7")
    assert lb.in_flight(lease.server) == 1
    lease.release()
    assert lb.in_flight(lease.server) == 0


def test_repr() -> None:
    assert repr(JumpHash({"a": 1, "b": 0})) == "JumpHash({'a': 1.0, 'b': 0.0})"
