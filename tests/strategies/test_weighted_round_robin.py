from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit.errors import NoServerAvailable
from balancekit.strategies.base import MAX_WEIGHT
from balancekit.strategies.round_robin import WeightedRoundRobin


class PlainSmoothWRR:
    """The O(n) scan as nginx writes it, with the same rules for changes."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = dict(weights)
        self.current = {s: 0.0 for s, w in weights.items() if w > 0}

    def pick(self) -> str:
        total = 0.0
        best: str | None = None
        for server, weight in self.weights.items():
            if weight <= 0:
                continue
            self.current[server] += weight
            total += weight
            if best is None or self.current[server] > self.current[best]:
                best = server
        assert best is not None
        self.current[best] -= total
        return best

    def add(self, server: str, weight: float) -> None:
        self.weights[server] = weight
        if weight > 0:
            self.current[server] = 0.0

    def remove(self, server: str) -> None:
        del self.weights[server]
        self.current.pop(server, None)

    def set_weight(self, server: str, weight: float) -> None:
        self.weights[server] = weight
        if weight == 0:
            self.current.pop(server, None)
        else:
            self.current.setdefault(server, 0.0)


def picks(lb: WeightedRoundRobin, count: int) -> str:
    return "".join(lb.get_server() for _ in range(count))


def test_nginx_sequence_5_1_1() -> None:
    lb = WeightedRoundRobin({"a": 5, "b": 1, "c": 1})
    assert picks(lb, 21) == "aabacaa" * 3
    lb._check()


def test_sequence_4_2_1() -> None:
    lb = WeightedRoundRobin({"a": 4, "b": 2, "c": 1})
    assert picks(lb, 14) == "abacaba" * 2
    lb._check()


def test_ties_go_to_the_earlier_server() -> None:
    assert picks(WeightedRoundRobin({"b": 1, "a": 1}), 4) == "baba"
    assert picks(WeightedRoundRobin({"x": 2, "y": 2, "z": 1}), 5) == "xyzxy"


@pytest.mark.parametrize(
    "weights",
    [
        {"a": 5, "b": 1, "c": 1},
        {"a": 3, "b": 7, "c": 2, "d": 11},
        {f"s{i}": i % 4 + 1 for i in range(9)},
    ],
)
def test_each_period_gives_exact_counts(weights: dict[str, int]) -> None:
    lb = WeightedRoundRobin(weights)
    total = sum(weights.values())
    for _ in range(3):  # the first window runs the engine, later ones the replay
        assert Counter(lb.get_server() for _ in range(total)) == weights
        lb._check()
    assert lb.period == total  # these weights are coprime as a set


def test_period_divides_by_the_gcd() -> None:
    lb = WeightedRoundRobin({"a": 4, "b": 2, "c": 2})
    assert picks(lb, 8) == "abcaabca"
    assert lb.period == 4


def test_weight_zero_is_skipped_and_all_zero_raises() -> None:
    lb = WeightedRoundRobin({"a": 2, "z": 0, "b": 1})
    assert picks(lb, 6) == "abaaba"
    lb.set_weight("a", 0)
    lb.set_weight("b", 0)
    with pytest.raises(NoServerAvailable):
        lb.get_server()
    lb._check()


def test_fractional_weights_follow_the_scan() -> None:
    weights = {"a": 0.5, "b": 0.25, "c": 1.25}
    lb = WeightedRoundRobin(weights)
    plain = PlainSmoothWRR(weights)
    assert [lb.get_server() for _ in range(40)] == [plain.pick() for _ in range(40)]
    assert lb.period is None
    lb._check()


def test_irrational_weights_keep_their_shares() -> None:
    weights = {"a": math.pi, "b": 1.0, "c": math.e}
    lb = WeightedRoundRobin(weights)
    counts = Counter(lb.get_server() for _ in range(10_000))
    total = sum(weights.values())
    for server, weight in weights.items():
        # Smooth WRR stays within a couple of picks of the exact share.
        assert abs(counts[server] - 10_000 * weight / total) < 3
    assert lb.period is None


def test_a_change_keeps_the_rotation_going() -> None:
    lb = WeightedRoundRobin({"a": 1, "b": 1})
    # A restart after each change would hand every pick to a: b must get its share.
    got = []
    for i in range(10):
        lb.set_weight("a", 1 + (i % 2))
        got.append(lb.get_server())
    assert got.count("b") >= 3


def test_a_new_server_starts_at_zero() -> None:
    lb = WeightedRoundRobin({"a": 1, "b": 1})
    assert picks(lb, 1) == "a"  # a at -1, b at +1
    lb.add_server("c", weight=1)
    plain = PlainSmoothWRR({"a": 1, "b": 1})
    plain.pick()
    plain.add("c", 1)
    assert picks(lb, 9) == "".join(plain.pick() for _ in range(9))
    lb._check()


def test_replay_resumes_after_a_change() -> None:
    lb = WeightedRoundRobin({"a": 5, "b": 1, "c": 1})
    picks(lb, 10)
    assert lb.period == 7
    lb.add_server("d", weight=3)
    assert lb.period is None
    picks(lb, 60)
    assert lb.period == 10
    lb._check()


@pytest.mark.parametrize("change", ["set_weight", "add", "remove"])
def test_a_change_during_replay_matches_the_scan(change: str) -> None:
    weights = {"a": 5.0, "b": 1.0, "c": 1.0}
    lb = WeightedRoundRobin(weights)
    plain = PlainSmoothWRR(weights)
    assert picks(lb, 10) == "".join(plain.pick() for _ in range(10))
    assert lb.period == 7  # replaying, three picks into the period
    if change == "set_weight":
        lb.set_weight("a", 2)
        plain.set_weight("a", 2)
    elif change == "add":
        lb.add_server("d", 4)
        plain.add("d", 4)
    else:
        lb.remove_server("b")
        plain.remove("b")
    lb._check()
    assert picks(lb, 30) == "".join(plain.pick() for _ in range(30))


def test_long_period_falls_back_to_the_engine() -> None:
    lb = WeightedRoundRobin({"a": 70_001, "b": 1})
    assert Counter(lb.get_server() for _ in range(1_000)) == {"a": 1_000}
    assert lb.period is None
    lb._check()


weights_st = st.one_of(
    st.integers(0, 6).map(float),
    st.integers(1, 12).map(lambda q: q / 4),  # exact in binary: no rounding anywhere
)
servers_st = st.sampled_from([f"s{i}" for i in range(6)])
ops_st = st.lists(
    st.one_of(
        st.tuples(st.just("pick"), st.integers(1, 40)),
        st.tuples(st.just("add"), servers_st, weights_st),
        st.tuples(st.just("remove"), servers_st),
        st.tuples(st.just("set"), servers_st, weights_st),
    ),
    max_size=25,
)


@settings(max_examples=120)
@given(st.dictionaries(servers_st, weights_st, max_size=6), ops_st)
def test_same_picks_as_the_plain_scan(start: dict[str, float], ops: list[tuple]) -> None:  # type: ignore[type-arg]
    lb = WeightedRoundRobin(start)
    plain = PlainSmoothWRR(start)
    for op in ops:
        if op[0] == "pick":
            for _ in range(op[1]):
                if not any(w > 0 for w in plain.weights.values()):
                    with pytest.raises(NoServerAvailable):
                        lb.get_server()
                    break
                assert lb.get_server() == plain.pick()
        elif op[0] == "add" and op[1] not in plain.weights:
            lb.add_server(op[1], op[2])
            plain.add(op[1], op[2])
        elif op[0] == "remove" and op[1] in plain.weights:
            lb.remove_server(op[1])
            plain.remove(op[1])
        elif op[0] == "set" and op[1] in plain.weights:
            lb.set_weight(op[1], op[2])
            plain.set_weight(op[1], op[2])
        lb._check()


@settings(max_examples=60)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=7), st.integers(0, 40))
def test_replay_equals_the_scan_far_out(weights: list[int], extra: int) -> None:
    servers = {f"s{i}": float(w) for i, w in enumerate(weights)}
    lb = WeightedRoundRobin(servers)
    plain = PlainSmoothWRR(servers)
    count = 3 * sum(weights) + extra
    assert [lb.get_server() for _ in range(count)] == [plain.pick() for _ in range(count)]
    assert lb.period is not None
    lb._check()


def test_rebasing_the_engine_changes_no_pick(monkeypatch: pytest.MonkeyPatch) -> None:
    from balancekit.strategies import round_robin

    monkeypatch.setattr(round_robin, "_REBASE_STEPS", 5)
    weights = {"a": 0.75, "b": 2.5, "c": 1.0, "d": 2.5}
    lb = WeightedRoundRobin(weights)
    plain = PlainSmoothWRR(weights)
    for _ in range(60):
        assert lb.get_server() == plain.pick()
        assert lb._steps < 5
        lb._check()


def test_the_largest_weights_still_sum_to_a_finite_total() -> None:
    # Finite weights whose sum overflowed once left the engine without a pick.
    lb = WeightedRoundRobin({"a": MAX_WEIGHT, "b": MAX_WEIGHT, "c": 1})
    assert [lb.get_server() for _ in range(4)] == ["a", "b", "a", "b"]
    with pytest.raises(ValueError, match=r"weight must be at most 1e\+09, got 1\.7e\+308"):
        lb.set_weight("c", 1.7e308)
    assert lb.servers["c"] == 1.0
    lb._check()
