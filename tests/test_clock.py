from __future__ import annotations

import math

import pytest

from balancekit import ManualClock


def test_manual_clock_moves_only_forward() -> None:
    clock = ManualClock(5.0)
    assert clock() == 5.0
    assert clock.advance(0) == 5.0
    assert clock.advance(2.5) == 7.5
    assert clock.set(7.5) == 7.5
    assert clock.set(9) == 9.0
    assert clock.now == 9.0


@pytest.mark.parametrize("bad", [-0.001, math.nan, math.inf, -math.inf])
def test_bad_advance_raises_and_changes_nothing(bad: float) -> None:
    clock = ManualClock(1.0)
    with pytest.raises(ValueError, match="seconds"):
        clock.advance(bad)
    assert clock() == 1.0


@pytest.mark.parametrize("bad", ["1", None, True])
def test_non_numbers_are_type_errors(bad: object) -> None:
    clock = ManualClock()
    with pytest.raises(TypeError, match="seconds"):
        clock.advance(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="start"):
        ManualClock(bad)  # type: ignore[arg-type]
    assert clock() == 0.0


def test_set_never_goes_backwards() -> None:
    clock = ManualClock(10.0)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(9.999)
    with pytest.raises(ValueError):
        clock.set(math.nan)
    assert clock() == 10.0
