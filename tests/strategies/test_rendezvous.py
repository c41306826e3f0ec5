from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit.errors import NoServerAvailable
from balancekit.hashing import hash_bytes, hash_server, key_bytes, unit_interval
from balancekit.strategies import rendezvous
from balancekit.strategies.rendezvous import Rendezvous

SERVERS = [f"s{i}" for i in range(10)]
KEYS = [f"key-{i}" for i in range(20_000)]

GOLDEN_KEYS: list[object] = ["user-1", "user-2", "user-3", "user-4", "user-5", "user-6"]
GOLDEN_KEYS += [b"bytes-key", 42, 2**70]


def reference_ranking(servers: dict[str, float], key: object, seed: int = 0) -> list[str]:
    """The documented definition, the slow way: by -w / ln(u), then pair hash, then smaller id."""
    scored = []
    for server, weight in servers.items():
        if weight > 0:
            pair = hash_bytes(key_bytes(key), hash_server(server, 0, seed))
            scored.append((-weight / math.log(unit_interval(pair)), pair, server))
    scored.sort(key=lambda t: (-t[0], -t[1], t[2]))
    return [server for _, _, server in scored]


def test_golden_vectors_equal_weights() -> None:
    lb = Rendezvous(["a", "b", "c", "d"])
    assert [lb.get_server(k) for k in GOLDEN_KEYS] == ["d", "b", "a", "b", "a", "b", "a", "b", "a"]
    assert lb.get_n_servers("user-1", 4) == ["d", "c", "a", "b"]
    assert lb.get_n_servers("user-2", 4) == ["b", "d", "c", "a"]


def test_golden_vectors_weighted() -> None:
    lb = Rendezvous({"a": 1, "b": 2, "c": 3, "d": 0.5})
    assert [lb.get_server(k) for k in GOLDEN_KEYS] == ["c", "b", "a", "b", "a", "c", "c", "b", "a"]
    assert lb.get_n_servers("user-2", 4) == ["b", "c", "d", "a"]
    assert lb.get_n_servers("user-3", 4) == ["a", "c", "b", "d"]


@settings(max_examples=40)
@given(
    st.lists(st.sampled_from([0, 0.5, 1, 2, 3.25]), min_size=1, max_size=8).map(
        lambda weights: {f"srv-{i}": w for i, w in enumerate(weights)}
    ),
    st.one_of(st.text(max_size=8), st.binary(max_size=8), st.integers()),
    st.integers(0, 2**64 - 1),
)
def test_ranking_is_the_documented_formula(
    servers: dict[str, float], key: object, seed: int
) -> None:
    expected = reference_ranking(servers, key, seed)
    lb = Rendezvous(servers, seed=seed)
    if not expected:
        with pytest.raises(NoServerAvailable):
            lb.get_server(key)
        return
    assert lb.get_n_servers(key, len(servers)) == expected
    assert lb.get_server(key) == expected[0]
    lb._check()


def test_equal_weights_rank_like_any_common_weight() -> None:
    ones = Rendezvous(SERVERS)
    sevens = Rendezvous(dict.fromkeys(SERVERS, 7.5))
    for key in KEYS[:300]:
        assert ones.get_n_servers(key, 10) == sevens.get_n_servers(key, 10)
        assert ones.get_n_servers(key, 10) == reference_ranking(dict.fromkeys(SERVERS, 1), key)


def test_score_ties_go_to_the_larger_pair_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    lb = Rendezvous({"a": 1, "b": 2, "c": 3})
    by_hash = sorted("abc", key=lambda s: -hash_bytes(b"k", hash_server(s, 0, 0)))
    monkeypatch.setattr(rendezvous, "_score", lambda pair_hash, negative_weight: 1.0)
    assert lb.get_server("k") == by_hash[0]
    assert lb.get_n_servers("k", 3) == by_hash


def test_equal_hashes_go_to_the_smaller_id(monkeypatch: pytest.MonkeyPatch) -> None:
    equal = Rendezvous(["c", "a", "b"])
    weighted = Rendezvous({"c": 1, "a": 2, "b": 3, "d": 3})
    monkeypatch.setattr(rendezvous, "hash_bytes", lambda data, seed: 12345)
    assert equal.get_server("k") == "a"
    assert equal.get_n_servers("k", 3) == ["a", "b", "c"]
    assert weighted.get_n_servers("k", 4) == ["b", "d", "a", "c"]  # by weight, then id
    monkeypatch.setattr(rendezvous, "_score", lambda pair_hash, negative_weight: 1.0)
    assert weighted.get_server("k") == "a"
    assert weighted.get_n_servers("k", 4) == ["a", "b", "c", "d"]


def test_insertion_order_does_not_matter() -> None:
    weights = {f"10.0.0.{i}:80": 1 + i % 3 for i in range(12)}
    forward = Rendezvous(weights)
    backward = Rendezvous(dict(reversed(weights.items())))
    for key in KEYS[:500]:
        assert forward.get_n_servers(key, 12) == backward.get_n_servers(key, 12)


def test_even_distribution() -> None:
    lb = Rendezvous(SERVERS)
    counts = Counter(lb.get_server(k) for k in KEYS)
    for server in SERVERS:
        assert abs(counts[server] / len(KEYS) - 0.1) < 0.01, counts


def test_runner_up_is_independent_of_the_winner() -> None:
    # A poor pair hash would correlate a key's first and second choices.
    lb = Rendezvous(SERVERS)
    pairs = Counter(tuple(lb.get_n_servers(k, 2)) for k in KEYS)
    expected = len(KEYS) / 90
    assert len(pairs) == 90
    assert all(abs(c - expected) < 0.3 * expected for c in pairs.values()), pairs


def test_weighted_shares() -> None:
    lb = Rendezvous({"a": 1, "b": 2, "c": 3})
    keys = [f"k{i}" for i in range(60_000)]
    counts = Counter(lb.get_server(k) for k in keys)
    for server, share in (("a", 1 / 6), ("b", 2 / 6), ("c", 3 / 6)):
        assert abs(counts[server] / len(keys) - share) < 0.015, counts


def test_removal_moves_only_its_keys_each_to_its_runner_up() -> None:
    lb = Rendezvous({f"s{i}": 1 + i % 3 for i in range(10)})
    before = {k: lb.get_n_servers(k, 2) for k in KEYS[:5000]}
    lb.remove_server("s4")
    lb._check()
    for key, (first, second) in before.items():
        assert lb.get_server(key) == (second if first == "s4" else first)


def test_adding_moves_keys_only_onto_the_new_server_and_readding_restores() -> None:
    lb = Rendezvous(SERVERS)
    before = {k: lb.get_server(k) for k in KEYS[:5000]}
    lb.add_server("new", weight=2)
    moved = [k for k in before if lb.get_server(k) != before[k]]
    assert moved and all(lb.get_server(k) == "new" for k in moved)
    assert abs(len(moved) / len(before) - 2 / 12) < 0.03
    lb.remove_server("new")
    assert {k: lb.get_server(k) for k in before} == before


def test_weight_change_moves_keys_only_to_or_from_that_server() -> None:
    lb = Rendezvous({f"s{i}": 1 + i % 3 for i in range(10)})
    before = {k: lb.get_server(k) for k in KEYS[:5000]}
    lb.set_weight("s5", 6)
    gained = [k for k in before if lb.get_server(k) != before[k]]
    assert gained and all(lb.get_server(k) == "s5" for k in gained)
    lb.set_weight("s5", 0.5)
    lost = [k for k in before if lb.get_server(k) != before[k]]
    assert lost and all(before[k] == "s5" for k in lost)


def test_weight_zero_is_skipped_and_back_when_reweighted() -> None:
    lb = Rendezvous({"a": 1, "zero": 0, "b": 1})
    assert all("zero" not in lb.get_n_servers(k, 3) for k in KEYS[:300])
    assert len(lb.get_n_servers("k", 3)) == 2
    lb.set_weight("zero", 1)
    assert any(lb.get_server(k) == "zero" for k in KEYS[:300])
    lb._check()


@settings(max_examples=30)
@given(st.integers(1, 12), st.integers(1, 15), st.text(max_size=5))
def test_get_n_servers_shape(count: int, n: int, key: str) -> None:
    lb = Rendezvous([f"n{i}" for i in range(count)])
    ranked = lb.get_n_servers(key, n)
    assert len(ranked) == min(n, count) == len(set(ranked))
    assert ranked[0] == lb.get_server(key)
    assert lb.get_n_servers(key, count)[: len(ranked)] == ranked


@pytest.mark.parametrize(("n", "error"), [(0, ValueError), (-2, ValueError), (1.0, TypeError)])
def test_get_n_servers_rejects_bad_n(n: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=f"n must be an int >= 1, got {n}"):
        Rendezvous(["a"]).get_n_servers("k", n)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got True"):
        Rendezvous(["a"]).get_n_servers("k", True)


@pytest.mark.parametrize("key", [None, 1.5, True, ["a"]])
def test_bad_keys_are_type_errors(key: object) -> None:
    lb = Rendezvous(["a"])
    for call in (lb.get_server, lb.acquire, lambda k: lb.get_n_servers(k, 1)):
        with pytest.raises(TypeError, match="key"):
            call(key)
    assert lb.in_flight("a") == 0


def test_no_key_error_says_a_key_is_needed() -> None:
    with pytest.raises(TypeError, match="needs a key"):
        Rendezvous(["a"]).get_server()


def test_empty_raises_no_server_available() -> None:
    with pytest.raises(NoServerAvailable):
        Rendezvous().get_n_servers("k", 2)


@pytest.mark.parametrize(
    ("seed", "error"), [(-1, ValueError), (2**64, ValueError), ("1", TypeError)]
)
def test_seed_must_be_a_64_bit_int(seed: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="seed"):
        Rendezvous(["a"], seed=seed)  # type: ignore[arg-type]


def test_seed_changes_placement() -> None:
    plain, seeded = Rendezvous(SERVERS), Rendezvous(SERVERS, seed=5)
    assert seeded.seed == 5
    assert [plain.get_server(k) for k in KEYS[:200]] != [seeded.get_server(k) for k in KEYS[:200]]


def test_acquire_counts_on_the_looked_up_server() -> None:
    lb = Rendezvous(SERVERS)
    lease = lb.acquire("user-7")
    assert lease.server == lb.get_server("user-7")
    assert lb.in_flight(lease.server) == 1


def test_repr() -> None:
    assert repr(Rendezvous({"a": 2}, seed=3)) == "Rendezvous({'a': 2.0}, seed=3)"


# -- same placement in any process ----------------------------------------------

_PLACEMENTS = """
import json
from balancekit.strategies.jump import JumpHash
from balancekit.strategies.maglev import Maglev
from balancekit.strategies.rendezvous import Rendezvous

servers = {f"10.1.0.{i}:8080": 1 + i % 4 for i in range(9)}
keys = [f"user-{i}" for i in range(300)] + [i * 7919 for i in range(100)]
out = {}
for lb in (Maglev(servers, table_size=1009), JumpHash(servers), Rendezvous(servers, seed=11)):
    picks = [lb.get_server(k) for k in keys]
    if isinstance(lb, Rendezvous):
        picks += [lb.get_n_servers(k, 3) for k in keys]
    out[type(lb).__name__] = picks
print(json.dumps(out))
"""


def test_same_placement_in_other_processes_whatever_pythonhashseed() -> None:
    # The same code runs here and in two fresh interpreters.
    here: dict[str, object] = {}
    exec(_PLACEMENTS.replace("print(json.dumps(out))", "result = out"), here)
    expected = json.loads(json.dumps(here["result"]))
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        done = subprocess.run(
            [sys.executable, "-c", _PLACEMENTS], env=env, capture_output=True, text=True, check=True
        )
        assert json.loads(done.stdout) == expected, hashseed
    assert set(expected) == {"Maglev", "JumpHash", "Rendezvous"}
