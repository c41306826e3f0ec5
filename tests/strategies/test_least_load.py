from __future__ import annotations

import random
from collections import Counter

import pytest

from balancekit.clock import ManualClock
from balancekit.errors import NoServerAvailable
from balancekit.strategies.least_load import LeastConnections, PowerOfTwoChoices

# -- LeastConnections ------------------------------------------------------------


def test_picks_the_least_loaded_by_weight() -> None:
    lb = LeastConnections({"a": 3, "b": 1})
    leases = [lb.acquire() for _ in range(8)]
    lb._check()
    # 8 leases over weights 3:1 settle at 6:2, every pick a minimum of in_flight/weight.
    assert Counter(lease.server for lease in leases) == {"a": 6, "b": 2}
    assert lb.load("a") == 2.0 and lb.load("b") == 2.0


def test_release_makes_a_server_preferred_again() -> None:
    lb = LeastConnections(["a", "b", "c"])
    leases = {lb.acquire().server: None for _ in range(3)}
    assert set(leases) == {"a", "b", "c"}
    held = [lb.acquire() for _ in range(3)]  # each at 2 now
    lb._check()
    victim = held[1]
    victim.release()
    lb._check()
    assert lb.get_server() == victim.server
    assert lb.in_flight(victim.server) == 1


def test_ties_rotate_instead_of_repeating() -> None:
    lb = LeastConnections(["a", "b", "c"])
    assert [lb.get_server() for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]
    # acquire+release pairs leave every load at 0: still a fair rotation.
    seen = []
    for _ in range(6):
        lease = lb.acquire()
        seen.append(lease.server)
        lease.release()
        lb._check()
    assert Counter(seen) == {"a": 2, "b": 2, "c": 2}


def test_ties_are_served_in_turn() -> None:
    lb = LeastConnections(["a", "b", "c"])
    first = lb.acquire()  # a
    second = lb.acquire()  # b
    first.release()
    second.release()
    # All at 0 again: c has waited there longest, then a (back before b).
    assert [lb.get_server() for _ in range(3)] == ["c", "a", "b"]


def test_an_emptied_lowest_level_is_skipped() -> None:
    lb = LeastConnections(["a", "b"])
    lb.acquire()
    lb.acquire()  # nobody is left at load 0
    lb._check()
    assert lb.get_server() == "a"
    assert 0.0 not in lb._levels  # the empty level at the top was dropped
    lb._check()


def test_spare_levels_stay_bounded() -> None:
    lb = LeastConnections({f"s{w}": w for w in range(1, 30)})
    for _ in range(5):
        leases = [lb.acquire() for _ in range(60)]
        lb._check()
        for lease in leases:
            lease.release()
            lb._check()  # asserts at most _SPARE_LEVELS empty levels
        assert all(lb.in_flight(s) == 0 for s in lb.servers)
    assert len(lb._levels) <= 1 + LeastConnections._SPARE_LEVELS


def test_weight_zero_never_picked_and_rejoins() -> None:
    lb = LeastConnections({"a": 1, "z": 0})
    assert {lb.acquire().server for _ in range(10)} == {"a"}
    lb._check()
    lb.set_weight("z", 1)
    lb._check()
    assert lb.get_server() == "z"  # 0 open leases against a's 10
    lb.set_weight("a", 0)
    lb._check()
    assert {lb.get_server() for _ in range(5)} == {"z"}
    lb.set_weight("z", 0)
    with pytest.raises(NoServerAvailable):
        lb.acquire()
    lb._check()


def test_reweight_moves_the_server_to_its_new_load() -> None:
    lb = LeastConnections(["a", "b"])
    held = [lb.acquire() for _ in range(4)]  # 2 each
    lb.set_weight("b", 4)  # b: 2/4
    lb._check()
    assert lb.load("b") == 0.5
    # b takes every pick until it reaches a's 2/1 = 8/4; the tie then goes to a,
    # picked less recently.
    assert [lb.acquire().server for _ in range(7)] == ["b"] * 6 + ["a"]
    lb._check()
    assert len(held) == 4


def test_lease_on_a_removed_server_is_harmless() -> None:
    lb = LeastConnections(["a", "b"])
    lease = lb.acquire()
    lb.remove_server(lease.server)
    lb._check()
    lease.release()
    lb._check()
    lb.add_server(lease.server)
    assert lb.in_flight(lease.server) == 0
    lb._check()


def test_check_catches_a_stale_key() -> None:
    lb = LeastConnections(["a", "b"])
    lb._members["a"].in_flight = 3  # behind the balancer's back
    with pytest.raises(AssertionError):
        lb._check()


def test_many_servers_keep_the_invariants() -> None:
    rng = random.Random(5)
    lb = LeastConnections({f"s{i}": rng.randint(1, 4) for i in range(200)})
    open_leases = []
    for step in range(3_000):
        if open_leases and rng.random() < 0.45:
            open_leases.pop(rng.randrange(len(open_leases))).release()
        else:
            lease = lb.acquire()
            minimum = min(lb.load(s) for s in lb.servers)
            assert lb.in_flight(lease.server) - 1 <= minimum * lb.servers[lease.server]
            open_leases.append(lease)
        if step % 97 == 0:
            lb._check()
    lb._check()


# -- PowerOfTwoChoices -------------------------------------------------------------


def test_rng_is_exposed_and_checked() -> None:
    rng = random.Random(1)
    assert PowerOfTwoChoices(["a"], rng=rng).rng is rng
    assert isinstance(PowerOfTwoChoices(["a"]).rng, random.Random)
    with pytest.raises(TypeError, match="rng"):
        PowerOfTwoChoices(["a"], rng=42)  # type: ignore[arg-type]


def test_two_servers_never_picks_the_busy_one() -> None:
    # Drawing with replacement would return the busy server about 1/4 of the time.
    lb = PowerOfTwoChoices(["a", "b"], rng=random.Random(3))
    busy = lb.acquire()
    other = ({"a", "b"} - {busy.server}).pop()
    assert {lb.get_server() for _ in range(500)} == {other}
    lb._check()


def test_one_eligible_server_is_chosen() -> None:
    lb = PowerOfTwoChoices({"a": 0, "b": 2, "c": 0}, rng=random.Random(0))
    assert {lb.acquire().server for _ in range(20)} == {"b"}
    lb.set_weight("b", 0)
    with pytest.raises(NoServerAvailable):
        lb.get_server()
    lb._check()


def test_choice_shares_follow_the_pairs() -> None:
    # Loads 0 < 1 < 2: the least loaded wins both pairs it is drawn in (2/3),
    # the middle one only against the busiest (1/3), the busiest never.
    lb = PowerOfTwoChoices(["low", "mid", "high"], rng=random.Random(11))
    lb._members["mid"].in_flight = 1
    lb._members["high"].in_flight = 2
    counts = Counter(lb.get_server() for _ in range(30_000))
    assert counts["high"] == 0
    assert 19_000 < counts["low"] < 21_000
    assert 9_000 < counts["mid"] < 11_000


def test_equal_loads_are_spread_evenly() -> None:
    lb = PowerOfTwoChoices([f"s{i}" for i in range(5)], rng=random.Random(2))
    counts = Counter(lb.get_server() for _ in range(50_000))
    assert all(9_200 < counts[f"s{i}"] < 10_800 for i in range(5)), counts


def test_acquire_release_keeps_loads_close() -> None:
    lb = PowerOfTwoChoices([f"s{i}" for i in range(10)], rng=random.Random(4))
    leases = [lb.acquire() for _ in range(1_000)]
    loads = [lb.in_flight(f"s{i}") for i in range(10)]
    # Two choices keep the spread to a few leases (one random choice: about +-30).
    assert max(loads) - min(loads) <= 6, loads
    for lease in leases:
        lease.release()
    assert all(lb.in_flight(f"s{i}") == 0 for i in range(10))
    lb._check()


def test_same_seed_same_picks() -> None:
    def run(seed: int) -> list[str]:
        lb = PowerOfTwoChoices([f"s{i}" for i in range(8)], rng=random.Random(seed))
        return [lb.acquire().server for _ in range(50)]

    assert run(9) == run(9)
    assert run(9) != run(10)


def test_weights_divide_the_load() -> None:
    lb = PowerOfTwoChoices({"big": 3, "small": 1}, rng=random.Random(8), clock=ManualClock())
    leases = [lb.acquire() for _ in range(400)]
    counts = Counter(lease.server for lease in leases)
    assert 290 <= counts["big"] <= 310, counts
