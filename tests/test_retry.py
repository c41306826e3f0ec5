"""RetryBudget: Finagle's published expectations and the sliding-window arithmetic."""

from __future__ import annotations

import math
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit import ManualClock, RetryBudget

# -- Finagle's RetryBudgetTest, carried over (finagle-core, service/RetryBudgetTest.scala) --


def finagle_run(ttl: float, min_rate: float, ratio: float) -> int:
    """Finagle's testBudget: time frozen, 10,000 requests each followed by one retry try."""
    budget = RetryBudget(ttl=ttl, min_retries_per_second=min_rate, ratio=ratio, clock=ManualClock())
    reserve = int(ttl * min_rate)
    assert budget.balance == reserve  # initial conditions
    if reserve == 0:
        assert not budget.try_withdraw()
    retried = 0
    for _ in range(10_000):
        budget.deposit()
        if budget.try_withdraw():
            retried += 1
        else:
            assert budget.balance == 0
    budget._check()
    return retried


FINAGLE_CASES = [
    # (ttl, minRetriesPerSec, percentCanRetry) as in "apply minRetriesPerSec=0" and the two
    # "apply with minRetries" tests
    *[(60, 0, p) for p in (0.1, 0.5, 0.25, 0.75, 0.99, 0.999, 0.9999, 0.01, 0.001, 0.0001)],
    (1, 10, 0.0),
    (2, 5, 0.0),
    (1, 10, 0.1),
    (2, 5, 0.5),
]


@pytest.mark.parametrize(("ttl", "min_rate", "ratio"), FINAGLE_CASES)
def test_finagle_budget_expectations(ttl: float, min_rate: float, ratio: float) -> None:
    # Finagle expects (nReqs * percent).toInt + minRetries, +- 1 for its integer tokens;
    # the arithmetic here is exact, so the answer is that number exactly.
    expected = int(10_000 * ratio + 1e-9) + int(ttl * min_rate)
    assert finagle_run(ttl, min_rate, ratio) == expected


def test_finagle_ratio_above_one() -> None:
    # "apply minRetries=0 maxPercentOver greater than 1.0": 10,000 deposits at 2.0
    budget = RetryBudget(ttl=60, min_retries_per_second=0, ratio=2.0, clock=ManualClock())
    assert budget.balance == 0
    assert not budget.try_withdraw()
    for _ in range(10_000):
        budget.deposit()
    assert budget.balance == 20_000


def test_finagle_empty_budget() -> None:
    # minRetriesPerSec=0 and percentCanRetry=0: Finagle's RetryBudget.Empty
    budget = RetryBudget(ttl=10, min_retries_per_second=0, ratio=0, clock=ManualClock())
    assert budget.balance == 0 and not budget.try_withdraw()
    budget.deposit()
    assert budget.balance == 0 and not budget.try_withdraw()


def test_defaults_are_finagles() -> None:
    budget = RetryBudget(clock=ManualClock())
    assert (budget.ratio, budget.min_retries_per_second, budget.ttl) == (0.2, 10.0, 10.0)
    assert budget.balance == 100  # 10 per second over a 10 s ttl


# -- bounds: Finagle's and ours ------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("ttl", 0, ValueError),  # Finagle: Duration.Zero refused
        ("ttl", 61, ValueError),  # Finagle: 61 s refused
        ("ttl", 0.999, ValueError),
        ("ttl", math.nan, ValueError),
        ("min_retries_per_second", -1, ValueError),  # Finagle: -1 refused
        ("min_retries_per_second", math.inf, ValueError),
        ("ratio", -1.0, ValueError),  # Finagle: -1.0 refused
        ("ratio", 1000.5, ValueError),  # Finagle: above ScaleFactor (1000) refused
        ("ratio", math.nan, ValueError),
        ("ratio", "0.2", TypeError),
        ("ratio", True, TypeError),
        ("ttl", None, TypeError),
        ("min_retries_per_second", 10**400, ValueError),
        ("min_retries_per_second", 1e308, ValueError),  # else .balance overflows
        ("min_retries_per_second", 1e6 + 1, ValueError),
    ],
)
def test_bad_options_are_refused(option: str, value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=option) as info:
        RetryBudget(**{option: value})  # type: ignore[arg-type]
    assert (repr(value)[:6] if value != 10**400 else "<int of") in str(info.value)


def test_bounds_are_inclusive() -> None:
    for ttl in (1, 60):
        assert RetryBudget(ttl=ttl, ratio=1000, min_retries_per_second=0).ttl == ttl
    budget = RetryBudget(ttl=60, min_retries_per_second=1e6, clock=ManualClock())
    assert budget.balance == 60_000_000


def test_clock_must_be_callable() -> None:
    with pytest.raises(TypeError, match="clock"):
        RetryBudget(clock=5.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("reading", [None, math.nan, math.inf, "1"])
def test_a_bad_clock_reading_changes_nothing(reading: object) -> None:
    times: list[object] = [0.0]
    budget = RetryBudget(ratio=1.0, min_retries_per_second=0, clock=lambda: times[-1])  # type: ignore[arg-type, return-value]
    budget.deposit()
    times.append(reading)
    for call in (budget.deposit, budget.try_withdraw, lambda: budget.balance):
        with pytest.raises((TypeError, ValueError), match="clock"):
            call()
    times.append(1.0)
    assert budget.balance == 1  # the one good deposit, nothing else
    budget._check()


# -- the sliding window ---------------------------------------------------------------


def test_deposits_and_withdrawals_expire_after_ttl() -> None:
    clock = ManualClock()
    budget = RetryBudget(ratio=0.5, min_retries_per_second=0.5, ttl=4, clock=clock)
    assert budget.balance == 2  # the reserve: 0.5 per second x 4 s
    for _ in range(4):
        budget.deposit()  # at t=0
    assert budget.balance == 4
    clock.set(1.0)
    assert [budget.try_withdraw() for _ in range(5)] == [True] * 4 + [False]
    clock.set(3.999)
    assert budget.balance == 0
    clock.set(4.0)  # the deposits of t=0 expire; the withdrawals of t=1 still count
    assert budget.balance == 0 and not budget.try_withdraw()
    clock.set(5.0)  # the withdrawals expire too: the reserve is back
    assert budget.balance == 2
    budget._check()


Event = tuple[float, str]


@settings(max_examples=200)
@given(
    ratio=st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.0, 2.5]),
    min_rate=st.sampled_from([0.0, 0.1, 1.0, 10.0]),
    ttl=st.sampled_from([1.0, 2.5, 10.0]),
    steps=st.lists(
        st.tuples(st.sampled_from([0.0, 0.0, 0.05, 0.5, 1.0, 2.5, 9.0]), st.booleans()),
        max_size=120,
    ),
)
def test_matches_the_exact_window_arithmetic(
    ratio: float, min_rate: float, ttl: float, steps: list[tuple[float, bool]]
) -> None:
    # A brute-force model: every event kept with its time, counted while now < t + ttl.
    clock = ManualClock()
    budget = RetryBudget(ratio=ratio, min_retries_per_second=min_rate, ttl=ttl, clock=clock)
    events: list[Event] = []

    def available(now: float) -> float:
        live = [kind for t, kind in events if not t <= now - ttl]
        return min_rate * ttl + ratio * live.count("d") - live.count("w")

    for advance, is_request in steps:
        now = clock.advance(advance)
        if is_request:
            budget.deposit()
            events.append((now, "d"))
        else:
            allowed = available(now) >= 1 - 1e-9
            assert budget.try_withdraw() is allowed
            if allowed:
                events.append((now, "w"))
        assert budget.balance == max(0, math.floor(available(now) + 1e-9))
        budget._check()
    # Over the ttl window ending at any retry, retries <= reserve + ratio * requests.
    for t, kind in events:
        if kind == "w":
            window = [k for s, k in events if t - ttl < s <= t]
            assert window.count("w") <= min_rate * ttl + ratio * window.count("d") + 1e-9


def test_memory_stays_bounded_at_high_rates() -> None:
    clock = ManualClock()
    budget = RetryBudget(ttl=1, clock=clock)
    for _ in range(50_000):
        clock.advance(0.0001)  # 10,000 requests per second, each at its own time
        budget.deposit()
        budget.try_withdraw()
    budget._check()
    assert len(budget._groups) <= 1002
    # Grouping lets a deposit expire at most ttl / 1000 early: all but ~10 still count.
    assert 9_990 <= budget._deposits <= 10_000


def test_threads_never_overspend() -> None:
    clock = ManualClock()
    budget = RetryBudget(ratio=0.25, min_retries_per_second=3, ttl=2, clock=clock)
    spent: list[int] = []
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        count = 0
        for _ in range(1000):
            budget.deposit()
            count += budget.try_withdraw()
        spent.append(count)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    # 8,000 requests at 25 % plus a reserve of 6: 2,006 retries, spent or still available
    assert sum(spent) + budget.balance == 2000 + 6
    budget._check()


def test_repr_shows_options_and_window() -> None:
    budget = RetryBudget(clock=ManualClock())
    budget.deposit()
    text = repr(budget)
    assert "ratio=0.2" in text and "ttl=10.0" in text and "1 deposits" in text
