from __future__ import annotations

import math
import random

import pytest

from balancekit.clock import ManualClock
from balancekit.errors import NoServerAvailable, UnknownServer
from balancekit.lease import Lease
from balancekit.strategies.response_time import LeastResponseTime


def one_server(default_rtt: float, decay: float = 1.0) -> tuple[LeastResponseTime, ManualClock]:
    clock = ManualClock()
    return LeastResponseTime(["s"], decay=decay, default_rtt=default_rtt, clock=clock), clock


def test_tower_peak_ewma_vectors() -> None:
    # tower's peak_ewma "compound decay" test: decay 1 s, default RTT 20 ms.
    lb, clock = one_server(0.020)
    assert lb.load("s") == pytest.approx(0.020)
    clock.set(0.1)
    rsp0 = lb.acquire()
    assert lb.load("s") > 0.020
    clock.set(0.2)
    rsp1 = lb.acquire()
    assert lb.load("s") > 0.040
    clock.set(0.3)
    rsp0.release()
    assert lb.load("s") == pytest.approx(0.4)  # peak 0.2 s x (1 open + 1)
    clock.set(0.4)
    rsp1.release()
    assert lb.load("s") == pytest.approx(0.2)
    clock.advance(1.0)
    assert lb.load("s") < 0.1
    clock.advance(10.0)
    assert lb.load("s") < 1e-4
    lb._check()


def test_tower_idle_decay_vector() -> None:
    lb, clock = one_server(0.010)
    assert lb.load("s") == pytest.approx(0.010)
    clock.set(0.1)
    assert 0.009 < lb.load("s") < 0.010
    clock.set(0.2)
    assert 0.008 < lb.load("s") < 0.009


def test_reading_the_load_changes_nothing() -> None:
    lb, clock = one_server(0.5, decay=2.0)
    clock.set(1.0)
    first = lb.load("s")
    for _ in range(5):
        assert lb.load("s") == first
    assert first == pytest.approx(0.5 * math.exp(-0.5))


class FinaglePeakEwma:
    """Finagle's PeakEwma cost as its source structures it: ``sample`` blends into or
    jumps to ``rtt``; ``get`` decays the stored cost to now (it is ``sample(0)``)."""

    def __init__(self, tau: float, start: float, now: float) -> None:
        self.tau, self.cost, self.stamp = tau, start, now

    def sample(self, rtt: float, now: float) -> None:
        w = math.exp(-max(now - self.stamp, 0.0) / self.tau)
        self.cost = rtt if rtt > self.cost else self.cost * w + rtt * (1.0 - w)
        self.stamp = now

    def get(self, now: float) -> float:
        self.sample(0.0, now)
        return self.cost


def test_equals_finagle_when_nothing_reads_between_samples() -> None:
    # Finagle's and tower's reads decay the stored cost, so their estimate
    # depends on how often loads are read; ours never changes on a read and
    # equals theirs when no read falls between two samples (docs: response-time.md).
    rng = random.Random(7)
    lb, clock = one_server(0.05, decay=2.0)
    ref = FinaglePeakEwma(2.0, 0.05, 0.0)
    for _ in range(300):
        clock.advance(rng.expovariate(2.0))
        lease = lb.acquire()
        clock.advance(rng.lognormvariate(-3.0, 1.0))
        lease.release()
        ref.sample(lease.latency or 0.0, clock())
        clock.advance(rng.random())
        peek = FinaglePeakEwma(ref.tau, ref.cost, ref.stamp)
        assert lb.load("s") == pytest.approx(peek.get(clock()), rel=1e-9)


def test_finagle_reads_make_a_sample_count_less() -> None:
    # The one documented difference: a read just before a sample decays
    # Finagle's cost, so a sample between the decayed and the stored value
    # becomes a new peak there but a blend here.
    lb, clock = one_server(1.0, decay=1.0)
    ref = FinaglePeakEwma(1.0, 1.0, 0.0)
    clock.set(2.0)
    lease = lb.acquire()
    ref.get(2.0)  # e.g. a power-of-two pick read the load
    clock.set(2.5)
    lease.release()  # rtt 0.5: above Finagle's decayed cost exp(-2) = 0.135
    ref.sample(0.5, 2.5)
    assert ref.cost == pytest.approx(0.5)
    ours = 1.0 + (0.5 - 1.0) * (1 - math.exp(-2.5))
    assert lb.load("s") == pytest.approx(ours) and ours > ref.cost


def test_slower_sample_moves_the_estimate_by_the_decay_weight() -> None:
    lb, clock = one_server(1.0, decay=4.0)
    clock.set(2.0)
    lease = lb.acquire()
    clock.set(2.5)
    lease.release()  # rtt 0.5 < 1.0: e = 1.0 + (0.5 - 1.0) * (1 - exp(-2.5 / 4))
    expected = 1.0 + (0.5 - 1.0) * (1 - math.exp(-2.5 / 4.0))
    assert lb.load("s") == pytest.approx(expected, rel=1e-12)


def test_equal_sample_keeps_the_estimate_exact() -> None:
    lb, clock = one_server(0.25, decay=3.0)
    for _ in range(20):
        lease = lb.acquire()
        clock.advance(0.25)
        lease.release()
        assert lb.load("s") == 0.25


def test_failures_count_as_at_least_the_penalty() -> None:
    clock = ManualClock()
    lb = LeastResponseTime(["a", "b"], decay=10.0, default_rtt=0.05, clock=clock)
    with pytest.raises(RuntimeError), lb.acquire() as lease:  # a fails fast
        clock.advance(0.001)
        raise RuntimeError("refused")
    assert lease.server == "a"
    assert lb.load("a") == pytest.approx(0.3)  # the default failure_penalty, not 1 ms
    assert lb.get_server() == "b"
    slow = lb.acquire()
    clock.advance(0.8)
    slow.release(ok=False)  # a slow failure keeps its real latency
    assert lb.load("b") == pytest.approx(0.8)


def test_fast_server_attracts_traffic() -> None:
    clock = ManualClock()
    lb = LeastResponseTime(["fast", "slow"], decay=5.0, default_rtt=0.1, clock=clock)
    latency = {"fast": 0.01, "slow": 0.2}
    counts = {"fast": 0, "slow": 0}
    for _ in range(200):
        lease = lb.acquire()
        counts[lease.server] += 1
        clock.advance(latency[lease.server])
        lease.release()
        lb._check()
    assert counts["fast"] > 190, counts


def test_open_requests_and_weight_scale_the_load() -> None:
    clock = ManualClock()
    lb = LeastResponseTime({"a": 2, "b": 1}, default_rtt=0.1, clock=clock)
    assert lb.load("a") == pytest.approx(0.05)
    lb.acquire()
    lb.acquire()
    assert lb.load("a") == pytest.approx(0.1 * 2 / 2)
    assert lb.in_flight("a") == 1 and lb.in_flight("b") == 1


def test_ties_rotate() -> None:
    lb = LeastResponseTime(["a", "b", "c"], clock=ManualClock())
    assert [lb.get_server() for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]


def test_weight_zero_and_membership() -> None:
    clock = ManualClock()
    lb = LeastResponseTime({"a": 1, "z": 0}, clock=clock)
    assert lb.load("z") == math.inf
    assert {lb.get_server() for _ in range(5)} == {"a"}
    lb.remove_server("a")
    with pytest.raises(NoServerAvailable):
        lb.get_server()
    with pytest.raises(UnknownServer):
        lb.load("a")
    clock.advance(50.0)
    lb.add_server("a")  # a new server starts at default_rtt, stamped now
    assert lb.load("a") == pytest.approx(0.030)
    lb._check()


def test_options_are_readable_and_in_repr() -> None:
    lb = LeastResponseTime({"a": 1}, decay=2, default_rtt=0, failure_penalty=1.5)
    assert (lb.decay, lb.default_rtt, lb.failure_penalty) == (2.0, 0.0, 1.5)
    assert repr(lb) == (
        "LeastResponseTime({'a': 1.0}, decay=2.0, default_rtt=0.0, failure_penalty=1.5)"
    )
    defaults = LeastResponseTime()
    assert (defaults.decay, defaults.default_rtt, defaults.failure_penalty) == (10.0, 0.03, 0.3)


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("decay", 0, ValueError),
        ("decay", -1.0, ValueError),
        ("decay", math.inf, ValueError),
        ("decay", math.nan, ValueError),
        ("decay", "10", TypeError),
        ("decay", True, TypeError),
        ("default_rtt", -0.001, ValueError),
        ("default_rtt", math.inf, ValueError),
        ("default_rtt", None, TypeError),
        ("failure_penalty", -1, ValueError),
        ("failure_penalty", math.nan, ValueError),
        ("failure_penalty", False, TypeError),
    ],
)
def test_bad_options_name_the_option_and_value(option: str, value: object, error: type) -> None:
    with pytest.raises(error, match=rf"{option} must be .* got {value!r}".replace("(", r"\(")):
        LeastResponseTime(["a"], **{option: value})  # type: ignore[arg-type]


def brute_force_minimum(lb: LeastResponseTime) -> float:
    return min(lb.load(s) for s, w in lb.servers.items() if w > 0)


def test_keys_are_rebased_after_many_decay_periods() -> None:
    clock = ManualClock()
    latency = {"a": 0.004, "b": 0.001, "c": 0.002}
    lb = LeastResponseTime({"a": 1, "b": 2, "c": 1}, decay=1e-3, clock=clock)
    origin = lb._origin
    for _ in range(30):
        clock.advance(100.0)  # 1e5 decay periods: a rebase every ~10 steps
        for i in range(6):
            lease = lb.acquire()
            clock.advance(latency[lease.server])
            lease.release()
            lb._check()
            chosen = lb.get_server()
            assert lb.load(chosen) == pytest.approx(brute_force_minimum(lb), rel=1e-9)
            if i >= 3:  # every server has a fresh sample: readings well above 0
                assert brute_force_minimum(lb) > 1e-6
    assert lb._origin > origin
    assert (clock() - lb._origin) / lb.decay <= 2**20 + 1e5


def test_heap_pick_is_the_minimum_of_the_readings() -> None:
    clock = ManualClock()
    lb = LeastResponseTime({f"s{i}": 1 + i % 3 for i in range(12)}, decay=2.0, clock=clock)
    open_leases = []
    for step in range(400):
        clock.advance(0.01 * (step % 7))
        if open_leases and step % 3 == 0:
            open_leases.pop(step % len(open_leases)).release(ok=step % 5 != 0)
        else:
            minimum = brute_force_minimum(lb)
            lease = lb.acquire()
            open_leases.append(lease)
            # The reading before this lease opened: (in_flight + 1) is now one more.
            chosen = lb.load(lease.server) * lb.in_flight(lease.server)
            chosen /= lb.in_flight(lease.server) + 1
            assert chosen == pytest.approx(minimum, rel=1e-9)
        lb._check()


def test_an_abandoned_lease_is_a_sample_without_the_penalty() -> None:
    clock = ManualClock()
    lb = LeastResponseTime(["s"], decay=1.0, default_rtt=0.02, failure_penalty=0.3, clock=clock)
    lease = lb.acquire()
    clock.advance(0.05)
    lease.release(ok=None)
    assert lb.load("s") == pytest.approx(0.05)  # the elapsed time: a peak above 0.02
    lease = lb.acquire()
    clock.advance(0.05)
    lease.release(ok=False)
    assert lb.load("s") == pytest.approx(0.3)  # a failure: the penalty
    lb._check()


def test_a_server_back_from_weight_zero_starts_afresh() -> None:
    # The recovered-server starvation: one failure penalty kept it out for decay x ln(p / e).
    clock = ManualClock()
    lb = LeastResponseTime(["a", "b"], decay=10.0, default_rtt=0.03, clock=clock)
    lease = lb.acquire()
    assert lease.server == "a"
    lease.release(ok=False)  # a's estimate jumps to the 0.3 s penalty
    lb.set_weight("a", 0)  # ejected
    clock.advance(5.0)
    lb.set_weight("a", 1)  # back: the penalty is forgotten
    assert lb.load("a") == pytest.approx(0.03)  # not the penalty's 0.3 x exp(-0.5) = 0.18
    assert lb.load("b") == pytest.approx(0.03 * math.exp(-0.5))
    lb._check()
    # A weight change between positive values keeps the estimate.
    lease = lb.acquire()
    clock.advance(0.2)
    lease.release()
    lb.set_weight(lease.server, 2)
    assert lb.load(lease.server) == pytest.approx(0.2 / 2)


def test_stale_heap_entries_stay_bounded_and_never_picked() -> None:
    # Every change leaves a stale entry behind; after 3,000 changes on 20
    # servers the heap is still O(n) and picks (with and without exclude)
    # are the least loaded live server.
    clock = ManualClock()
    lb = LeastResponseTime({f"s{i}": 1 + i % 4 for i in range(20)}, decay=1.0, clock=clock)
    rng = random.Random(7)
    held = []
    for step in range(3_000):
        clock.advance(rng.random() * 0.01)
        if held and rng.random() < 0.45:
            held.pop(rng.randrange(len(held))).release(ok=rng.random() < 0.9)
        elif step % 50 == 0:
            lb.set_weight(f"s{rng.randrange(20)}", rng.choice([0, 1, 3]))
        else:
            held.append(lb.acquire())
        excluded = {f"s{rng.randrange(20)}" for _ in range(3)}
        loads = {s: lb.load(s) for s in lb.servers if lb.servers[s] > 0 and s not in excluded}
        if loads:
            assert lb.load(lb.get_server(exclude=excluded)) == pytest.approx(min(loads.values()))
        lb._check()
    assert len(lb._heap) <= 2 * len(lb._live) + 33


def test_the_one_call_pick_matches_the_general_path() -> None:
    # acquire() and get_server() take the top in one call (_take); an exclusion
    # naming no member takes the general path (_pick, then _acquired or
    # _update). Driven by the same steps, both make the same picks and end in
    # the same heap state, key and tick for key and tick.
    rng = random.Random(11)
    clocks = ManualClock(), ManualClock()
    fast, general = (
        LeastResponseTime({f"s{i}": 1 + i % 3 for i in range(9)}, decay=0.5, clock=clock)
        for clock in clocks
    )
    held: tuple[list[Lease], list[Lease]] = ([], [])
    for step in range(2_000):
        dt = rng.random() * 0.01
        roll = rng.random()
        index = rng.randrange(1 << 30)
        for lb, clock, leases, exclude in (
            (fast, clocks[0], held[0], ()),
            (general, clocks[1], held[1], {"not-a-member"}),
        ):
            clock.advance(dt)
            if leases and roll < 0.4:
                leases.pop(index % len(leases)).release(ok=index % 7 != 0)
            elif roll < 0.5:
                lb.get_server(exclude=exclude)
            elif step % 97 == 0:
                lb.set_weight(f"s{index % 9}", index % 3)
            else:
                leases.append(lb.acquire(exclude=exclude))
        assert [lease.server for lease in held[0]] == [lease.server for lease in held[1]]
        live = {m.server: e[:2] + e[3:] for m, e in fast._live.items()}
        assert live == {m.server: e[:2] + e[3:] for m, e in general._live.items()}
        fast._check()
        general._check()
