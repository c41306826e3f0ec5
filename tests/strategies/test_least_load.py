from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from balancekit.clock import ManualClock
from balancekit.errors import NoServerAvailable
from balancekit.strategies.least_load import LeastConnections, PowerOfTwoChoices
from balancekit.strategies.response_time import LeastResponseTime

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


# -- PowerOfTwoChoices options: choices and load ---------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        ({"choices": 1}, ValueError, "choices must be an int in [2, 10], got 1"),
        ({"choices": 11}, ValueError, "choices must be an int in [2, 10], got 11"),
        ({"choices": 2.0}, TypeError, "choices must be an int in [2, 10], got 2.0"),
        ({"choices": True}, TypeError, "choices must be an int in [2, 10], got True"),
        (
            {"load": "ewma"},
            ValueError,
            "load must be one of ('in_flight', 'peak_ewma'), got 'ewma'",
        ),
        ({"load": None}, TypeError, "load must be one of ('in_flight', 'peak_ewma'), got None"),
        ({"decay": 0}, ValueError, "decay must be a finite number > 0, got 0"),
        ({"decay": "10"}, TypeError, "decay must be a finite number > 0, got '10'"),
        ({"default_rtt": -0.1}, ValueError, "default_rtt must be a finite number >= 0, got -0.1"),
        (
            {"default_rtt": math.nan},
            ValueError,
            "default_rtt must be a finite number >= 0, got nan",
        ),
        ({"default_rtt": 10**400}, ValueError, "default_rtt must be a finite number >= 0"),
    ],
)
def test_bad_choice_options_name_the_value(
    options: dict[str, object], error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as info:
        PowerOfTwoChoices(["a", "b"], **options)  # type: ignore[arg-type]
    assert text in str(info.value)


def test_options_are_readable_and_in_repr() -> None:
    lb = PowerOfTwoChoices(["a"], choices=4, load="peak_ewma", decay=5, default_rtt=0.01)
    assert (lb.choices, lb.load_metric, lb.decay, lb.default_rtt) == (4, "peak_ewma", 5.0, 0.01)
    assert "choices=4, load='peak_ewma', decay=5.0, default_rtt=0.01" in repr(lb)
    assert "choices=2, load='in_flight')" in repr(PowerOfTwoChoices(["a"]))


def test_three_choices_follow_the_triples() -> None:
    # Loads 0..4 and 3 distinct draws: the lightest of each triple wins, so load 0
    # wins 6/10 of the triples, load 1 3/10, load 2 1/10, loads 3 and 4 never.
    lb = PowerOfTwoChoices([f"l{i}" for i in range(5)], choices=3, rng=random.Random(5))
    for i in range(5):
        lb._members[f"l{i}"].in_flight = i
    counts = Counter(lb.get_server() for _ in range(30_000))
    assert counts["l3"] == counts["l4"] == 0
    assert 17_400 < counts["l0"] < 18_600
    assert 8_400 < counts["l1"] < 9_600
    assert 2_600 < counts["l2"] < 3_400


def test_more_choices_than_servers_compares_them_all() -> None:
    lb = PowerOfTwoChoices(["a", "b", "c"], choices=10, rng=random.Random(6))
    lb._members["a"].in_flight = 2
    lb._members["b"].in_flight = 1
    assert {lb.get_server() for _ in range(200)} == {"c"}
    lb._members["c"].in_flight = 1  # b and c tie: the random order shares them
    counts = Counter(lb.get_server() for _ in range(2_000))
    assert set(counts) == {"b", "c"} and min(counts.values()) > 850


def test_peak_ewma_avoids_the_slow_server_and_forgets_it() -> None:
    clock = ManualClock()
    lb = PowerOfTwoChoices(
        ["fast", "slow"], load="peak_ewma", decay=1.0, default_rtt=0.02, clock=clock
    )
    slow = lb._open(lb, None, "slow")  # pinned, as a Pool pins a sticky client
    clock.advance(0.5)
    slow.release()
    assert lb.load("slow") == pytest.approx(0.5)  # the peak
    # Traffic goes to fast (20 ms each) until slow's peak, dated 0.5 s, decays
    # below fast's 0.02: 0.5 x e**-(t - 0.5) < 0.02 once t > 0.5 + ln 25 = 3.72 s.
    for _ in range(400):
        lease = lb.acquire()
        if lease.server == "slow":
            break
        clock.advance(0.02)
        lease.release()
    assert lease.server == "slow"
    assert 3.71 < clock() < 3.75
    assert lb.load("fast") == pytest.approx(0.02)
    lb._check()


def test_peak_ewma_shares_least_response_times_estimator() -> None:
    # Same history, same loads: LeastResponseTime without a failure penalty.
    clock = ManualClock()
    options = {"decay": 2.0, "default_rtt": 0.03, "clock": clock}
    p2c = PowerOfTwoChoices(["a", "b", "c"], load="peak_ewma", **options)  # type: ignore[arg-type]
    lrt = LeastResponseTime(["a", "b", "c"], failure_penalty=0.0, **options)  # type: ignore[arg-type]
    rng = random.Random(12)
    for _ in range(300):
        server = rng.choice("abc")
        one, two = p2c._open(p2c, None, server), lrt._open(lrt, None, server)
        clock.advance(rng.choice([0.001, 0.02, 0.3, 1.5]))
        ok = rng.choice([True, False, None])
        one.release(ok=ok)
        two.release(ok=ok)
        for s in "abc":
            assert p2c.load(s) == pytest.approx(lrt.load(s), rel=1e-12)
    p2c._check()


def test_peak_ewma_failures_are_plain_samples() -> None:
    # Finagle and Linkerd: no failure penalty in the load; a fast failure is fast.
    clock = ManualClock()
    lb = PowerOfTwoChoices(["a"], load="peak_ewma", decay=1.0, default_rtt=0.02, clock=clock)
    lease = lb.acquire()
    clock.advance(0.01)
    lease.release(ok=False)
    assert lb.load("a") == pytest.approx(0.02 + (0.01 - 0.02) * (1 - math.exp(-0.01)))


def test_peak_ewma_fresh_start_after_weight_zero() -> None:
    clock = ManualClock()
    lb = PowerOfTwoChoices(["a", "b"], load="peak_ewma", decay=10.0, clock=clock)
    lease = lb._open(lb, None, "a")
    clock.advance(2.0)
    lease.release(ok=None)  # abandoned after 2 s: a 2 s sample
    assert lb.load("a") == pytest.approx(2.0)
    lb.set_weight("a", 0)
    clock.advance(1.0)
    lb.set_weight("a", 1)
    assert lb.load("a") == pytest.approx(0.030)
    lb._check()


class CountingClock:
    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return float(self.reads)


@pytest.mark.parametrize("load", ["in_flight", "peak_ewma"])
def test_picks_read_no_clock(load: str) -> None:
    # Peak-EWMA loads are compared without the time: their order does not change with it.
    clock = CountingClock()
    lb = PowerOfTwoChoices([f"s{i}" for i in range(6)], load=load, clock=clock)
    before = clock.reads
    for _ in range(20):
        lb.get_server()
    assert clock.reads == before
    lb.acquire().release()
    assert clock.reads == before + 2  # one read at acquire, one at release
