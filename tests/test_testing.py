"""balancekit.testing: every helper passes on a correct strategy and fails on a broken one.

The strategies below are test-local subclasses of Balancer, written the way a
user would write their own: the helpers must work on them as on ours.
"""

from __future__ import annotations

import math
import random
import re
import types
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from balancekit import ManualClock, RoundRobin
from balancekit.hashing import hash_bytes, hash_key, hash_server
from balancekit.strategies.base import Balancer, Member, check_server
from balancekit.strategies.least_load import LeastConnections
from balancekit.testing import (
    AddServer,
    RemoveServer,
    Request,
    SetWeight,
    assert_deterministic,
    assert_in_flight_consistent,
    assert_minimal_disruption,
    assert_never_picks,
    assert_only_moves_to_added,
    assert_peak_to_mean_below,
    assignment,
    key_streams,
    keys,
    membership_changes,
    replay,
    sample_keys,
    server_ids,
    server_sets,
    workloads,
)

KEYS = [f"key-{i}" for i in range(600)]
TEN = {f"s{i}": 1.0 for i in range(10)}


class MiniRendezvous(Balancer):
    """Highest random weight over the servers of weight > 0 (weights otherwise ignored)."""

    requires_key = True

    def _rebuild(self) -> None:
        self._live = [(s, self._seed(s)) for s, m in self._members.items() if m.weight > 0]

    def _seed(self, server: str) -> int:
        return hash_server(server)

    def _choose(self, key: Any) -> Member:
        if key is None:
            raise TypeError("MiniRendezvous needs a key")
        if not self._live:
            raise self._unavailable()
        digest = hash_key(key).to_bytes(8, "little")
        best = max(self._live, key=lambda entry: (hash_bytes(digest, entry[1]), entry[0]))
        return self._members[best[0]]


class Forgetful(MiniRendezvous):
    """Broken: a server added again gets a new hash seed, so not its old keys."""

    def _seed(self, server: str) -> int:
        return hash_server(server, self._times.get(server, 0))

    def _added(self, member: Member) -> None:
        self._times = getattr(self, "_times", {})
        self._times[member.server] = self._times.get(member.server, 0) + 1
        self._rebuild()

    def _rebuild(self) -> None:
        self._times = getattr(self, "_times", {})
        super()._rebuild()


class ModuloHash(Balancer):
    """Broken: ``hash(key) % n`` in insertion order reshuffles on every change."""

    requires_key = True
    skip_zero = True

    def _rebuild(self) -> None:
        members = self._members.values()
        self._live = [m for m in members if m.weight > 0 or not self.skip_zero]

    def _choose(self, key: Any) -> Member:
        if not self._live:
            raise self._unavailable()
        return self._live[hash_key(key) % len(self._live)]


class ModuloAll(ModuloHash):
    """Broken twice: also picks servers of weight 0."""

    skip_zero = False


class FirstServer(Balancer):
    """Broken: always the first server (a strategy of its own: RoundRobin's lock-free
    get_server does not go through _choose)."""

    def _rebuild(self) -> None:
        pass

    def _choose(self, key: Any) -> Member:
        return next(m for m in self._members.values() if m.weight > 0)


class DoubleCount(RoundRobin):
    """Broken: counts each lease twice, uncounts it once."""

    def _acquired(self, member: Member, now: float) -> None:
        member.in_flight += 1


def mini_maglev(servers: dict[str, float]) -> Balancer:
    from balancekit.strategies.maglev import Maglev

    return Maglev(servers, table_size=1009)


# -- assert_minimal_disruption ------------------------------------------------------


def test_minimal_disruption_passes_for_rendezvous_every_server_in_turn() -> None:
    assert_minimal_disruption(MiniRendezvous, TEN, KEYS)
    assert_minimal_disruption(MiniRendezvous, {"a": 1, "b": 0, "c": 2}, KEYS, remove="a")


def test_minimal_disruption_fails_for_modulo_and_shows_the_moves() -> None:
    with pytest.raises(AssertionError) as info:
        assert_minimal_disruption(ModuloHash, TEN, KEYS, remove="s3")
    message = str(info.value)
    assert message.startswith("removing 's3' moved ")
    assert re.search(
        r"keys that were not on it \(unnecessary_moves 0\.[89]\d* > tolerance 0\)", message
    )
    assert re.search(r"'key-\d+': 's\d' -> 's\d'", message)
    assert "and " in message and " more; balancer after: ModuloHash({'s0': 1.0" in message


def test_minimal_disruption_checks_the_keys_come_back() -> None:
    assert_minimal_disruption(Forgetful, TEN, KEYS, remove="s3", restore=False)
    with pytest.raises(AssertionError, match=r"after re-adding 's3', \d+ of 600 keys are not back"):
        assert_minimal_disruption(Forgetful, TEN, KEYS, remove="s3")


def test_minimal_disruption_tolerance_admits_maglev_small_excess_only() -> None:
    with pytest.raises(AssertionError, match="unnecessary_moves"):
        assert_minimal_disruption(mini_maglev, TEN, KEYS, remove="s0")
    assert_minimal_disruption(mini_maglev, TEN, KEYS, remove="s0", tolerance=0.5)


def test_jump_hash_is_minimal_only_at_the_end() -> None:
    from balancekit.strategies.jump import JumpHash

    assert_minimal_disruption(JumpHash, TEN, KEYS, remove="s9")
    with pytest.raises(AssertionError, match="removing 's0' moved"):
        assert_minimal_disruption(JumpHash, TEN, KEYS, remove="s0")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"remove": "zz"}, ValueError, "remove must be a server whose removal leaves"),
        ({"servers": {"a": 1}}, ValueError, "servers must hold two servers of weight > 0"),
        ({"keys": []}, ValueError, "keys must hold at least one key, got none"),
        ({"keys": "abc"}, TypeError, "keys must be an iterable of keys, got 'abc'"),
        ({"tolerance": 1.5}, ValueError, "tolerance must be a number in [0, 1], got 1.5"),
        ({"tolerance": True}, TypeError, "tolerance must be a number in [0, 1], got True"),
        ({"servers": {"a": -1}}, ValueError, "weight must be a finite number >= 0, got -1"),
    ],
)
def test_minimal_disruption_rejects_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    built: list[Balancer] = []

    def factory(servers: dict[str, float]) -> Balancer:
        built.append(MiniRendezvous(servers))
        return built[-1]

    call: dict[str, Any] = {"servers": TEN, "keys": KEYS} | kwargs
    with pytest.raises(error) as info:
        assert_minimal_disruption(factory, call.pop("servers"), call.pop("keys"), **call)
    assert str(info.value).startswith(message)
    assert built == []  # rejected before anything was built


# -- assert_only_moves_to_added -------------------------------------------------------


def test_only_moves_to_added_passes_for_rendezvous_and_jump() -> None:
    from balancekit.strategies.jump import JumpHash

    assert_only_moves_to_added(MiniRendezvous, TEN, KEYS, add="new")
    assert_only_moves_to_added(MiniRendezvous, TEN, KEYS, add={"n1": 2, "n2": 1})
    assert_only_moves_to_added(JumpHash, TEN, KEYS, add="s10")  # appended: jump's good case


def test_only_moves_to_added_fails_for_modulo() -> None:
    with pytest.raises(AssertionError) as info:
        assert_only_moves_to_added(ModuloHash, TEN, KEYS, add="new")
    message = str(info.value)
    assert message.startswith("adding ['new'] moved ")
    assert re.search(r"between old servers \(unnecessary_moves 0\.[89]\d* > tolerance 0\)", message)
    assert "; balancer before: ModuloHash(" in message and "'new'" not in message.split(";")[1]


def test_only_moves_to_added_checks_removal_restores() -> None:
    class AddsShuffle(MiniRendezvous):
        """Broken: removing a server reseeds everyone."""

        def _removed(self, member: Member) -> None:
            self._seed = lambda server: hash_server(server, 1)  # type: ignore[method-assign]
            self._rebuild()

    assert_only_moves_to_added(AddsShuffle, TEN, KEYS, add="new", restore=False)
    with pytest.raises(AssertionError, match=r"after removing \['new'\] again, \d+ of 600"):
        assert_only_moves_to_added(AddsShuffle, TEN, KEYS, add="new")


@pytest.mark.parametrize(
    ("add", "error", "message"),
    [
        ("s1", ValueError, "add must name new servers, got 's1'"),
        ({}, ValueError, "add must name new servers, got {}"),
        ({"n": -1}, ValueError, "weight must be a finite number >= 0, got -1"),
        ({"": 1}, ValueError, "server must be a non-empty str"),
    ],
)
def test_only_moves_to_added_rejects_bad_add(
    add: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        assert_only_moves_to_added(MiniRendezvous, TEN, KEYS, add=add)
    assert str(info.value).startswith(message)


# -- assert_deterministic -------------------------------------------------------------


def test_deterministic_passes_for_order_free_strategies() -> None:
    assert_deterministic(MiniRendezvous, {"c": 1, "a": 2, "b": 0, "d": 1}, KEYS)
    assert_deterministic(mini_maglev, {"c": 1, "a": 2, "d": 1}, KEYS)


@pytest.mark.parametrize("cls", [ModuloHash, RoundRobin])
def test_deterministic_fails_when_order_matters(cls: type[Balancer]) -> None:
    with pytest.raises(AssertionError) as info:
        assert_deterministic(cls, {"c": 1, "a": 1, "b": 1}, KEYS)
    assert str(info.value).startswith("built from the reversed order, ")
    assert "(given order -> the reversed order): 'key-" in str(info.value)


def test_deterministic_also_compares_a_pool_grown_by_add_server() -> None:
    class OrderedAtBuild(ModuloHash):
        """Broken in one way only: sorted when built, insertion order when added to."""

        def __init__(self, servers: Any = ()) -> None:
            super().__init__(dict(sorted(dict(servers).items())))

    with pytest.raises(AssertionError, match="built from add_server calls in reversed order"):
        assert_deterministic(OrderedAtBuild, {"c": 1, "a": 1, "b": 1}, KEYS)


def test_deterministic_rejects_empty_keys() -> None:
    with pytest.raises(ValueError, match="keys must hold at least one key"):
        assert_deterministic(MiniRendezvous, TEN, iter(()))


# -- assert_peak_to_mean_below --------------------------------------------------------


def test_peak_to_mean_passes_for_balanced_picks() -> None:
    assert_peak_to_mean_below(RoundRobin(["a", "b", "c"]), range(300), 1.001)
    assert_peak_to_mean_below(MiniRendezvous(TEN), [f"k{i}" for i in range(10_000)], 1.25)


def test_peak_to_mean_fails_for_a_strategy_that_ignores_weights() -> None:
    lb = RoundRobin({"a": 3, "b": 1})  # RoundRobin alternates: b gets twice its share
    with pytest.raises(AssertionError) as info:
        assert_peak_to_mean_below(lb, range(1000), 1.5)
    assert str(info.value) == (
        "peak-to-mean 2 >= bound 1.5 over 1000 picks; busiest servers {'a': 500, 'b': 500}; "
        "balancer: RoundRobin({'a': 3.0, 'b': 1.0})"
    )
    assert_peak_to_mean_below(lb, range(1000), 1.01, weighted=False)


def test_peak_to_mean_fails_for_a_lopsided_strategy_and_a_hot_key() -> None:
    with pytest.raises(AssertionError, match="peak-to-mean 3 >= bound 2"):
        assert_peak_to_mean_below(FirstServer(["a", "b", "c"]), range(30), 2)
    zipf = sample_keys(20_000, distribution="zipf", rng=random.Random(3))
    with pytest.raises(AssertionError, match="peak-to-mean"):
        assert_peak_to_mean_below(MiniRendezvous(TEN), zipf, 1.5)


def test_peak_to_mean_counts_weight_zero_servers_as_expecting_nothing() -> None:
    lb = ModuloAll({"a": 1, "b": 1, "c": 0})
    with pytest.raises(AssertionError, match="peak-to-mean inf"):
        assert_peak_to_mean_below(lb, KEYS, 100)
    assert_peak_to_mean_below(ModuloHash({"a": 1, "b": 1, "c": 0}), KEYS, 1.25)


@pytest.mark.parametrize(
    ("bound", "error"),
    [
        *[(bad, ValueError) for bad in (1, 0.5, math.inf, math.nan)],
        *[(bad, TypeError) for bad in (True, "2")],
    ],
)
def test_peak_to_mean_rejects_a_bound_that_cannot_work(bound: Any, error: type[Exception]) -> None:
    lb = RoundRobin(["a", "b"])
    with pytest.raises(
        error, match=rf"bound must be a finite number > 1, got {re.escape(repr(bound))}"
    ):
        assert_peak_to_mean_below(lb, range(4), bound)
    assert lb.get_server() == "a"  # nothing was picked


# -- assert_never_picks ---------------------------------------------------------------


def test_never_picks_passes_for_weight_zero_and_removed_servers() -> None:
    lb = RoundRobin({"a": 1, "b": 0, "c": 1})
    assert_never_picks(lb, "b", range(50))
    lb.remove_server("c")
    assert_never_picks(lb, "c", range(50))
    assert_never_picks(MiniRendezvous({"a": 1, "b": 0}), "b", KEYS)


def test_never_picks_fails_and_lists_keys() -> None:
    with pytest.raises(AssertionError) as info:
        assert_never_picks(ModuloAll({"a": 1, "b": 0, "c": 1}), "b", KEYS)
    assert re.match(
        r"picked 'b' for \d+ of 600 keys, e\.g\. \['key-\d+', .*\]; balancer: ModuloAll\(",
        str(info.value),
    )


def test_never_picks_rejects_empty_keys() -> None:
    with pytest.raises(ValueError, match="keys must hold at least one key"):
        assert_never_picks(RoundRobin(["a"]), "a", [])


# -- assert_in_flight_consistent ------------------------------------------------------


def test_in_flight_consistent_from_leases_and_from_counts() -> None:
    lb = RoundRobin(["a", "b", "c"])
    leases = [lb.acquire() for _ in range(5)]  # a b c a b
    leases[0].release()
    assert_in_flight_consistent(lb, leases)
    assert_in_flight_consistent(lb, {"a": 1, "b": 2, "c": 1})
    for lease in leases:
        lease.release()
    assert_in_flight_consistent(lb, {})
    assert_in_flight_consistent(lb, {"a": 0, "gone": 0})


def test_in_flight_consistent_fails_on_drift_and_strays() -> None:
    lb = DoubleCount(["a", "b"])
    leases = [lb.acquire() for _ in range(3)]
    leases[2].release()
    with pytest.raises(AssertionError) as info:
        assert_in_flight_consistent(lb, leases)
    assert str(info.value) == (
        "in-flight counts differ: 'a': balancer says 3, expected 1; "
        "'b': balancer says 2, expected 1; balancer: DoubleCount({'a': 1.0, 'b': 1.0})"
    )
    with pytest.raises(AssertionError, match="'x': not a member, expected 2"):
        assert_in_flight_consistent(RoundRobin(["a"]), {"x": 2})


def test_assignment_maps_each_key() -> None:
    assert assignment(RoundRobin(["a", "b"]), ["k1", "k2", "k3"]) == {
        "k1": "a",
        "k2": "b",
        "k3": "a",
    }


# -- hypothesis strategies ------------------------------------------------------------


@settings(max_examples=60)
@given(server_sets(min_size=1, max_size=20, allow_zero=True, ids=server_ids()))
def test_every_drawn_server_set_is_accepted(servers: dict[str, float]) -> None:
    assert 1 <= len(servers) <= 20 and any(w > 0 for w in servers.values())
    for cls in (RoundRobin, MiniRendezvous):
        lb = cls(servers)
        assert dict(lb.servers) == servers
        assert lb.get_server("k") in servers


def test_every_drawn_server_set_is_accepted_by_the_ring() -> None:
    ring = pytest.importorskip("balancekit.strategies.ring")

    @settings(max_examples=20)
    @given(server_sets(min_size=1, max_size=20, ids=server_ids()))
    def check(servers: dict[str, float]) -> None:
        assert ring.ConsistentHash(servers).get_server("k") in servers

    check()


@settings(max_examples=30)
@given(server_sets(min_size=0, max_size=5, weighted=False))
def test_unweighted_server_sets(servers: dict[str, float]) -> None:
    assert len(servers) <= 5 and set(servers.values()) <= {1.0}


def draws(strategy: st.SearchStrategy[Any], n: int = 100) -> list[Any]:
    """``n`` examples of ``strategy``, the same ones every run (the profile is derandomised)."""
    seen: list[Any] = []

    @settings(max_examples=n, phases=[Phase.generate])
    @given(strategy)
    def collect(value: Any) -> None:
        seen.append(value)

    collect()
    return seen


def test_server_sets_draw_zero_weights_only_when_allowed() -> None:
    assert any(0.0 in d.values() for d in draws(server_sets(min_size=3, allow_zero=True), 50))
    assert not any(0.0 in d.values() for d in draws(server_sets(min_size=3), 50))


@pytest.mark.parametrize("kind", ["any", "name", "address", "text"])
def test_server_ids_are_valid_and_hashable(kind: Any) -> None:
    @settings(max_examples=40)
    @given(server_ids(kind))
    def check(server: str) -> None:
        assert check_server(server) == server
        hash_server(server)

    check()


def test_server_ids_draw_addresses() -> None:
    ids = draws(server_ids("address"))
    assert all(re.fullmatch(r"(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:.]+\]):\d+", s) for s in ids)
    assert any(s.startswith("[") for s in ids) and any(s[0].isdigit() for s in ids)


@settings(max_examples=60)
@given(keys())
def test_keys_are_hashable(key: Any) -> None:
    hash_key(key)
    assert type(key) in (str, bytes, int)


@settings(max_examples=20)
@given(keys(["int"]))
def test_keys_of_one_kind(key: Any) -> None:
    assert type(key) is int and 0 <= key < 2**64


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: server_ids("ipv4"), "kind must be one of ['address', 'any', 'name', 'text']"),
        (lambda: keys([]), "kinds must be a non-empty subset of"),
        (lambda: keys(["float"]), "kinds must be a non-empty subset of"),
        (lambda: server_sets(3, 2), "max_size must be >= min_size 3, got 2"),
        (lambda: server_sets(-1), "min_size must be an int >= 0, got -1"),
        (lambda: key_streams(-1), "n must be an int >= 0, got -1"),
        (lambda: key_streams(5, distribution="zipf", s=0), "s must be a finite number > 0"),
        (lambda: key_streams(5, universe=0), "universe must be an int >= 1, got 0"),
        (lambda: key_streams(5, distribution="pareto"), "distribution must be 'uniform' or"),
        (lambda: membership_changes({"a": -1}), "weight must be a finite number >= 0"),
        (lambda: membership_changes(["a"], min_size=4, max_size=2), "max_size must be >="),
        (lambda: workloads(max_gap=-1), "max_gap must be a finite number >= 0, got -1"),
        (lambda: workloads(service=(2, 1)), "service must be (low, high) with low <= high"),
        (lambda: workloads(service=(0, math.inf)), "service must be a finite number >= 0"),
    ],
)
def test_strategies_reject_bad_arguments_at_once(call: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value).startswith(message)


def test_sample_keys_is_deterministic_and_zipf_is_skewed() -> None:
    n = 20_000
    zipf = sample_keys(n, distribution="zipf", s=1.1, universe=1000, rng=random.Random(11))
    assert zipf == sample_keys(n, distribution="zipf", s=1.1, universe=1000, rng=random.Random(11))
    uniform = sample_keys(n, universe=1000, rng=random.Random(11))
    (hot, hot_count), *_ = Counter(zipf).most_common(1)
    top_uniform = Counter(uniform).most_common(1)[0][1]
    assert hot == "key-0"
    expected = 1 / sum((r + 1) ** -1.1 for r in range(1000))  # about 0.18
    assert abs(hot_count / n - expected) < 0.02  # sd is 0.003
    assert hot_count > 20 * top_uniform  # uniform's top is ~35
    assert set(uniform) <= {f"key-{r}" for r in range(1000)}


@settings(max_examples=10)
@given(key_streams(3000, distribution="zipf", universe=200), key_streams(3000, universe=200))
def test_key_streams_zipf_beats_uniform_on_the_top_key(zipf: list[str], uniform: list[str]) -> None:
    assert len(zipf) == len(uniform) == 3000
    assert Counter(zipf).most_common(1)[0][1] > 3 * Counter(uniform).most_common(1)[0][1]
    assert zipf[0].startswith("key-") and zipf != uniform


@settings(max_examples=25)
@given(server_sets(min_size=0, max_size=6, allow_zero=True), st.data())
def test_membership_changes_are_valid_in_sequence(
    servers: dict[str, float], data: st.DataObject
) -> None:
    changes = data.draw(membership_changes(servers, max_size=12))
    assert 1 <= len(changes) <= 12
    lb, model = MiniRendezvous(servers), dict(servers)
    for change in changes:
        change.apply(lb)
        change.apply_model(model)
        assert dict(lb.servers) == model
        assert lb.get_server("k") in model  # keep_one: never without a server of weight > 0


def test_membership_changes_re_add_removed_servers() -> None:
    def re_adds(changes: list[Any]) -> bool:
        removed: set[str] = set()
        for change in changes:
            if isinstance(change, AddServer) and change.server in removed:
                return True
            if isinstance(change, RemoveServer):
                removed.add(change.server)
        return False

    assert any(re_adds(cs) for cs in draws(membership_changes({"a": 1, "b": 1}, max_size=6), 50))


def test_membership_changes_without_keep_one_may_leave_nothing_to_pick() -> None:
    def starves(changes: list[Any]) -> bool:
        model = {"a": 1.0}
        for change in changes:
            change.apply_model(model)
            if not any(model.values()):
                return True
        return False

    assert not any(starves(cs) for cs in draws(membership_changes(["a"]), 50))
    assert any(starves(cs) for cs in draws(membership_changes(["a"], keep_one=False), 50))


def test_change_objects_apply_and_show_themselves() -> None:
    lb, model = RoundRobin(["a"]), {"a": 1.0}
    for change in (AddServer("b", 2.0), SetWeight("a", 0.0), RemoveServer("b")):
        change.apply(lb)
        change.apply_model(model)
    assert dict(lb.servers) == model == {"a": 0.0}
    assert repr(SetWeight("a", 0.0)) == "SetWeight(server='a', weight=0.0)"
    with pytest.raises(AttributeError):
        AddServer("a").server = "b"  # type: ignore[misc]


@settings(max_examples=40)
@given(workloads(max_size=40, service=(0.0, 5.0)))
def test_replay_releases_everything_and_times_latency(requests: list[Request]) -> None:
    clock = ManualClock()
    lb = RoundRobin(["a", "b", "c"], clock=clock)
    seen: list[Any] = []

    def check(lease: Any, open_leases: list[Any]) -> None:
        assert open_leases[-1] is lease and lease.ok is None
        assert_in_flight_consistent(lb, open_leases)
        seen.append(lease)

    picks = replay(lb, requests, clock, after_each=check)
    assert picks == [["a", "b", "c"][i % 3] for i in range(len(requests))]
    assert_in_flight_consistent(lb, {})
    assert all(lease.ok for lease in seen)
    for lease, request in zip(seen, requests, strict=True):
        assert lease.latency == pytest.approx(request.service, abs=1e-6)
    arrivals = [sum(r.gap for r in requests[: i + 1]) for i in range(len(requests))]
    assert clock() == pytest.approx(
        max(a + r.service for a, r in zip(arrivals, requests, strict=True)), abs=1e-6
    )


@settings(max_examples=30)
@given(workloads(max_size=60))
def test_least_connections_picks_a_least_loaded_server(requests: list[Request]) -> None:
    clock = ManualClock()
    lb = LeastConnections(["a", "b", "c"], clock=clock)

    def check(lease: Any, open_leases: list[Any]) -> None:
        assert lb.in_flight(lease.server) - 1 <= min(lb.in_flight(s) for s in lb.servers)

    replay(lb, requests, clock, after_each=check)


@settings(max_examples=20)
@given(workloads(max_size=20, keys=keys()))
def test_keyed_workloads_drive_hash_strategies(requests: list[Request]) -> None:
    clock = ManualClock()
    lb = MiniRendezvous(TEN, clock=clock)
    picks = replay(lb, requests, clock)
    assert picks == [lb.get_server(r.key) for r in requests]


# -- the example in docs/property-testing.md runs, as written ------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "property-testing.md"


def test_the_documented_example_test_file_passes() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- example-test-file -->\s*```python\n(.*?)```", text, re.S)
    assert block, "docs/property-testing.md lost its example test file"
    module = types.ModuleType("test_routing_example")
    exec(compile(block.group(1), str(DOC), "exec"), module.__dict__)
    tests = {name: f for name, f in vars(module).items() if name.startswith("test_")}
    assert len(tests) >= 6
    for test in tests.values():
        test()
