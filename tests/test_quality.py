from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit import RoundRobin
from balancekit.hashing import hash_bytes, hash_key, hash_server
from balancekit.quality import (
    Summary,
    chi_square,
    coefficient_of_variation,
    degrees_of_freedom,
    loads,
    min_to_mean,
    moves,
    peak_to_mean,
    remapped_fraction,
    summarize,
    unnecessary_moves,
)

METRICS = [peak_to_mean, min_to_mean, coefficient_of_variation, chi_square, degrees_of_freedom]


# -- loads -------------------------------------------------------------------------


def test_loads_counts_picks_and_lists_idle_servers_first() -> None:
    assert loads(["b", "a", "b", "d"], servers=["a", "b", "c"]) == {"a": 1, "b": 2, "c": 0, "d": 1}
    assert list(loads(["b", "a", "b", "d"], servers=["a", "b", "c"])) == ["a", "b", "c", "d"]
    assert loads([]) == {}
    assert loads(iter(["x"] * 3)) == {"x": 3}


@pytest.mark.parametrize(
    ("picks", "servers", "message"),
    [
        ("abc", (), "picks must be an iterable of server ids, got 'abc'"),
        (["a", 1], (), "picks must hold server ids (str), got 1"),
        ([], "ab", "servers must be an iterable of server ids, got 'ab'"),
        ([], [None], "servers must hold server ids (str), got None"),
        (3, (), "picks must be an iterable of server ids, got 3"),
    ],
)
def test_loads_rejects_what_is_not_server_ids(picks: object, servers: object, message: str) -> None:
    with pytest.raises(TypeError) as info:
        loads(picks, servers)  # type: ignore[arg-type]
    assert str(info.value) == message


# -- balance metrics, by hand ------------------------------------------------------


def test_unweighted_metrics_against_hand_computation() -> None:
    counts = {"a": 30, "b": 10, "c": 20}  # mean 20, deviations +10, -10, 0
    assert peak_to_mean(counts) == 1.5
    assert min_to_mean(counts) == 0.5
    assert coefficient_of_variation(counts) == pytest.approx(math.sqrt(200 / 3) / 20)
    assert chi_square(counts) == pytest.approx((100 + 100 + 0) / 20)
    assert degrees_of_freedom(counts) == 2


def test_weighted_metrics_compare_each_server_with_its_share() -> None:
    counts, weights = {"a": 50, "b": 30}, {"a": 3, "b": 1}  # T = 80: expected 60 and 20
    assert peak_to_mean(counts, weights) == pytest.approx(30 / 20)
    assert min_to_mean(counts, weights) == pytest.approx(50 / 60)
    assert chi_square(counts, weights) == pytest.approx(100 / 60 + 100 / 20)
    # share-weighted deviation of r = (5/6, 3/2) from 1: 0.75 * (1/6)**2 + 0.25 * (1/2)**2
    assert coefficient_of_variation(counts, weights) == pytest.approx(math.sqrt(1 / 48 + 1 / 16))
    assert degrees_of_freedom(counts, weights) == 1


def test_exactly_proportional_loads_are_perfect() -> None:
    counts, weights = {"a": 60, "b": 20, "c": 40}, {"a": 3, "b": 1, "c": 2}
    assert summarize(counts, weights) == Summary(3, 120.0, 1.0, 1.0, 0.0, 0.0, 2)
    assert summarize({"a": 0.25, "b": 0.25}) == Summary(2, 0.5, 1.0, 1.0, 0.0, 0.0, 1)


def test_equal_weights_change_nothing() -> None:
    counts = {"a": 7, "b": 1, "c": 4}
    for weight in (1, 2.5):
        assert summarize(counts, dict.fromkeys(counts, weight)) == summarize(counts)


def test_a_weight_zero_server_without_load_is_left_out() -> None:
    counts, weights = {"a": 10, "b": 10, "c": 0}, {"a": 1, "b": 1, "c": 0}
    assert summarize(counts, weights) == Summary(3, 20.0, 1.0, 1.0, 0.0, 0.0, 1)


def test_a_weight_zero_server_with_load_is_infinitely_over_its_share() -> None:
    counts, weights = {"a": 10, "b": 10, "c": 1}, {"a": 1, "b": 1, "c": 0}
    assert peak_to_mean(counts, weights) == math.inf
    assert chi_square(counts, weights) == math.inf
    assert coefficient_of_variation(counts, weights) == math.inf
    assert min_to_mean(counts, weights) == pytest.approx(10 / 10.5)  # T counts the stray 1


def test_a_server_only_in_weights_has_load_zero() -> None:
    # Counter(picks) omits a server that was never picked; its weight still counts.
    counts, weights = Counter({"a": 10}), {"a": 1, "b": 1}
    assert summarize(counts, weights) == Summary(2, 10.0, 2.0, 0.0, 1.0, 10.0, 1)


def test_summary_equals_the_separate_functions_and_shows_them() -> None:
    counts, weights = {"a": 9, "b": 4, "c": 1}, {"a": 2, "b": 2, "c": 1}
    summary = summarize(counts, weights)
    assert summary.peak_to_mean == peak_to_mean(counts, weights)
    assert summary.min_to_mean == min_to_mean(counts, weights)
    assert summary.coefficient_of_variation == coefficient_of_variation(counts, weights)
    assert summary.chi_square == chi_square(counts, weights)
    assert summary.degrees_of_freedom == degrees_of_freedom(counts, weights)
    assert repr(summary).startswith("Summary(servers=3, total=14.0, peak_to_mean=")


def test_round_robin_is_perfect_and_random_placement_is_chi_square_distributed() -> None:
    servers = [f"s{i}" for i in range(10)]
    lb = RoundRobin(servers)
    assert summarize(loads((lb.get_server() for _ in range(1000)), servers)).chi_square == 0.0
    rng = random.Random(5)
    counts = loads((rng.choice(servers) for _ in range(100_000)), servers)
    dof = degrees_of_freedom(counts)
    # chi-square with 9 dof: mean 9, sd ~4.2; E[cv**2] = dof / T
    assert 0.5 < chi_square(counts) < dof + 8 * math.sqrt(2 * dof)
    assert 0.2 < coefficient_of_variation(counts) / math.sqrt(dof / 100_000) < 2.5


# -- balance metrics, bad input ----------------------------------------------------


@pytest.mark.parametrize("metric", [*METRICS, summarize])
@pytest.mark.parametrize(
    ("counts", "weights", "error", "message"),
    [
        ({}, None, ValueError, "loads must name at least one server, got {}"),
        ({"a": -1}, None, ValueError, "loads['a'] must be a finite number >= 0, got -1"),
        ({"a": 1, "b": math.nan}, None, ValueError, "loads['b'] must be a finite"),
        ({"a": math.inf}, None, ValueError, "loads['a'] must be a finite number >= 0, got inf"),
        ({"a": True}, None, TypeError, "loads['a'] must be a finite number >= 0, got True"),
        ({"a": "3"}, None, TypeError, "loads['a'] must be a finite number >= 0, got '3'"),
        ([("a", 1)], None, TypeError, "loads must be a mapping of server to load, got [('a', 1)]"),
        ({"a": 0, "b": 0}, None, ValueError, "loads must have a total > 0, got {'a': 0, 'b': 0}"),
        ({"a": 1, "b": 1}, {"a": 1}, ValueError, "weights must cover every server of loads, "),
        ({"a": 1}, {"a": 0}, ValueError, "weights must not all be 0, got {'a': 0}"),
        ({"a": 1}, {"a": -2}, ValueError, "weights['a'] must be a finite number >= 0, got -2"),
        ({"a": 1}, {"a": None}, TypeError, "weights['a'] must be a finite number >= 0, got None"),
        ({"a": 1}, [1], TypeError, "weights must be a mapping, got [1]"),
    ],
)
def test_bad_loads_and_weights_are_named(
    metric: object, counts: object, weights: object, error: type[Exception], message: str
) -> None:
    kept = repr((counts, weights))
    with pytest.raises(error) as info:
        metric(counts, weights)  # type: ignore[operator]
    assert str(info.value).startswith(message)
    assert repr((counts, weights)) == kept  # inputs untouched


def test_a_missing_weight_is_named() -> None:
    with pytest.raises(ValueError, match=r"missing \['b', 'c'\]"):
        peak_to_mean({"a": 1, "b": 1, "c": 2}, {"a": 1})


# -- balance metrics, properties ---------------------------------------------------

_counts = st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 1000), min_size=1).filter(
    lambda d: sum(d.values()) > 0
)


@settings(max_examples=60)
@given(_counts, st.data())
def test_metric_relations_hold_for_any_loads(counts: dict[str, int], data: st.DataObject) -> None:
    weights = data.draw(
        st.fixed_dictionaries({s: st.integers(1, 5) for s in counts}) | st.none(), label="weights"
    )
    s = summarize(counts, weights)
    assert s.min_to_mean <= 1.0 + 1e-9 <= s.peak_to_mean + 2e-9
    assert s.coefficient_of_variation == pytest.approx(math.sqrt(s.chi_square / s.total))
    assert s.degrees_of_freedom == len(counts) - 1
    # Scaling every load leaves the ratios alone and scales chi-square.
    doubled = summarize({k: 2 * v for k, v in counts.items()}, weights)
    assert doubled.peak_to_mean == pytest.approx(s.peak_to_mean)
    assert doubled.chi_square == pytest.approx(2 * s.chi_square)


# -- remapping ---------------------------------------------------------------------


def test_moves_and_remapped_fraction_over_common_keys() -> None:
    before = {1: "a", 2: "b", 3: "c", 4: "a", 5: "b"}
    after = {1: "a", 2: "c", 3: "c", 4: "b", 6: "a"}  # 5 gone, 6 new: ignored
    assert moves(before, after) == {2: ("b", "c"), 4: ("a", "b")}
    assert remapped_fraction(before, after) == 2 / 4
    assert remapped_fraction(before, before) == 0.0


def test_unnecessary_moves_by_definition() -> None:
    before = {1: "a", 2: "b", 3: "b", 4: "a", 5: "c", 6: "c"}
    # Moves: 2 b->a, 3 b->d, 4 a->c, 5 c->d. With b removed and d added, only
    # 4 moved for no reason: its old server stayed and its new one is not new.
    after = {1: "a", 2: "a", 3: "d", 4: "c", 5: "d", 6: "c"}
    assert unnecessary_moves(before, after, removed=["b"], added=["d"]) == 1 / 4
    assert unnecessary_moves(before, after, removed=["b"]) == 2 / 4  # 4 and 5 now needless
    assert unnecessary_moves(before, after) == 1.0
    assert unnecessary_moves(before, before, removed=["b"]) == 0.0  # nothing moved
    # A weight change: the grown server is "added", the shrunk one "removed".
    assert unnecessary_moves({1: "a", 2: "b"}, {1: "b", 2: "b"}, added={"b"}) == 0.0


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: remapped_fraction({1: "a"}, {2: "a"}), ValueError, "before and after must share"),
        (lambda: unnecessary_moves({}, {}), ValueError, "before and after must share"),
        (lambda: remapped_fraction([1], {}), TypeError, "before must be a mapping, got [1]"),
        (lambda: moves({}, "ab"), TypeError, "after must be a mapping, got 'ab'"),
        (
            lambda: unnecessary_moves({1: "a"}, {1: "b"}, removed="a"),
            TypeError,
            "removed must be an iterable of server ids, got 'a'",
        ),
        (
            lambda: unnecessary_moves({1: "a"}, {1: "b"}, added=[1]),
            TypeError,
            "added must hold server ids (str), got 1",
        ),
    ],
)
def test_bad_assignments_are_named(call: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        call()  # type: ignore[operator]
    assert str(info.value).startswith(message)


def _modulo(key: str, servers: list[str]) -> str:
    return servers[hash_key(key) % len(servers)]


def _highest_random_weight(key: str, servers: list[str]) -> str:
    digest = hash_key(key).to_bytes(8, "little")
    return max(servers, key=lambda s: hash_bytes(digest, hash_server(s)))


@pytest.mark.parametrize("n", [5, 10, 20])
def test_removing_one_server_moves_about_one_nth_with_hrw_and_nearly_all_with_modulo(
    n: int,
) -> None:
    keys = [f"key-{i}" for i in range(5000)]
    servers = [f"s{i}" for i in range(n)]
    rest = servers[:2] + servers[3:]
    for place, expected, unnecessary in (
        (_highest_random_weight, 1 / n, 0.0),
        (_modulo, 1 - 1 / n, 1 - 1 / n),
    ):
        before = {k: place(k, servers) for k in keys}
        after = {k: place(k, rest) for k in keys}
        assert remapped_fraction(before, after) == pytest.approx(expected, abs=0.04)
        assert unnecessary_moves(before, after, removed=["s2"]) == pytest.approx(
            unnecessary, abs=0.06
        )


def test_the_ring_moves_about_one_nth_once_it_lands() -> None:
    ring = pytest.importorskip("balancekit.strategies.ring")
    keys = [f"key-{i}" for i in range(5000)]
    lb = ring.ConsistentHash([f"s{i}" for i in range(10)])
    before = {k: lb.get_server(k) for k in keys}
    lb.remove_server("s3")
    after = {k: lb.get_server(k) for k in keys}
    assert remapped_fraction(before, after) == pytest.approx(0.1, abs=0.04)
    assert unnecessary_moves(before, after, removed=["s3"]) == 0.0


def test_the_documented_example_shows_real_output() -> None:
    doc = Path(__file__).resolve().parent.parent / "docs" / "quality.md"
    text = doc.read_text(encoding="utf-8")
    code = text[text.index("```python\n") + len("```python\n") :]
    code = code[: code.index("```")]
    names: dict[str, object] = {}
    exec(compile(code, str(doc), "exec"), names)
    assert names["counts"] == {"a": 49981, "b": 24979, "c": 25040}
    summary = summarize(names["counts"], {"a": 2, "b": 1, "c": 1})  # type: ignore[arg-type]
    assert (summary.peak_to_mean, summary.min_to_mean) == (1.0016, 0.99916)
    assert summary.chi_square == pytest.approx(0.08886)
    assert remapped_fraction(names["before"], names["after"]) == 0.2497  # type: ignore[arg-type]
    assert unnecessary_moves(names["before"], names["after"], ["c"]) == 0.0  # type: ignore[arg-type]
