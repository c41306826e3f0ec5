from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from balancekit.slow_start import MIN_FACTOR, RAMP_STEPS, SlowStart


def envoy(elapsed: float, window: float, aggression: float, min_percent: float) -> float:
    """Envoy's slow-start factor, unquantised."""
    time_factor = max(elapsed, 1.0) / window
    return max(min_percent / 100, time_factor ** (1 / aggression))


ramps = st.builds(
    SlowStart,
    window=st.floats(2.0, 600.0),
    aggression=st.floats(0.5, 4.0),
    min_percent=st.floats(0.0, 100.0),
)


@given(ramps, st.floats(0.0, 1.0))
def test_factor_is_envoys_formula_quantised_down(ramp: SlowStart, share: float) -> None:
    elapsed = share * ramp.window
    factor, _ = ramp.at(elapsed)
    if elapsed >= ramp.window:
        assert factor == 1.0
        return
    exact = envoy(elapsed, ramp.window, ramp.aggression, ramp.min_percent)
    assert factor <= exact + 1e-9  # never above the formula
    # At most one step below it, and never below the minimum.
    assert factor > exact - 1 / RAMP_STEPS - 1e-9
    assert factor >= min(1.0, ramp.min_percent / 100) - 1e-12


@given(ramps)
def test_the_ramp_moves_only_at_next_step_and_at_most_ramp_steps_times(ramp: SlowStart) -> None:
    elapsed, seen = 0.0, []
    while elapsed < math.inf:
        factor, following = ramp.at(elapsed)
        assert following > elapsed
        if following < math.inf:
            # Just before the announced step nothing has changed yet.
            assert ramp.at(max(elapsed, following - 1e-6 * ramp.window))[0] <= factor + 1e-12
        seen.append(factor)
        elapsed = following
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert len(seen) <= RAMP_STEPS + 1


def test_known_points_linear_and_aggressive() -> None:
    linear = SlowStart(window=10.0)
    assert [linear.at(t)[0] for t in (0.0, 1.0, 4.99, 5.0, 9.99, 10.0)] == pytest.approx(
        [0.1, 0.1, 0.45, 0.5, 0.95, 1.0]
    )
    # aggression 2: sqrt(time_factor); at 25 s of 100 the factor is 0.5.
    fast = SlowStart(window=100.0, aggression=2.0, min_percent=30.0)
    assert fast.at(0.0)[0] == pytest.approx(0.3)
    assert fast.at(25.0) == pytest.approx((0.5, 100 * 0.55**2))
    assert SlowStart(window=0.0).at(0.0) == (1.0, math.inf)  # off


def test_no_minimum_still_gives_a_joining_server_some_weight() -> None:
    # Envoy's factor at t = 0 is 1 / window = 0.01; rounding down would give 0.
    assert SlowStart(window=100.0, min_percent=0.0).at(0.0) == (0.01, 5.0)
    assert SlowStart(window=100.0, min_percent=0.0).at(4.9)[0] == 0.01  # constant until then
    assert SlowStart(window=100.0, min_percent=0.0).at(5.0)[0] == pytest.approx(0.05)
    assert SlowStart(window=1e6, min_percent=0.0).at(0.0)[0] == pytest.approx(1e-6)


def test_extreme_options_neither_overflow_nor_raise() -> None:
    assert SlowStart(window=0.5, aggression=1e-4).at(0.2) == (1.0, math.inf)  # under a second
    tiny = SlowStart(window=100.0, aggression=1e-4, min_percent=0.0).at(50.0)
    assert tiny[0] == MIN_FACTOR  # 0.5 ** 10_000 underflows: the floor, not 0
    assert 99.9 < tiny[1] <= 100.0  # this curve leaps only at the very end
    assert SlowStart(window=100.0, aggression=1e6).at(50.0)[0] == 0.95  # a leap at once


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"window": math.nan}, ValueError, "window must be a finite number >= 0, got nan"),
        ({"window": -1.0}, ValueError, "window must be a finite number >= 0, got -1.0"),
        (
            {"window": 1.0, "aggression": 0.0},
            ValueError,
            "aggression must be a finite number > 0, got 0.0",
        ),
        (
            {"window": 1.0, "aggression": -1},
            ValueError,
            "aggression must be a finite number > 0, got -1",
        ),
        (
            {"window": 1.0, "min_percent": 101},
            ValueError,
            "min_percent must be a finite number in [0, 100], got 101",
        ),
        ({"window": "10"}, TypeError, "window must be a number, got '10'"),
        ({"window": True}, TypeError, "window must be a number, got True"),
    ],
)
def test_bad_options_name_the_option_and_value(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        SlowStart(**options)  # type: ignore[arg-type]
