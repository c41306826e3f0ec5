"""PowerOfTwoChoices(load="peak_ewma") dates its estimates: a broken clock reading is
refused before anything changes (as every clocked component, tests/test_clock_faults.py)."""

from __future__ import annotations

import math

import pytest

from balancekit import PowerOfTwoChoices


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None, "1.0"])
def test_a_broken_reading_changes_nothing(bad: object) -> None:
    now: list[object] = [0.0]
    lb = PowerOfTwoChoices(["a", "b"], load="peak_ewma", clock=lambda: now[0])  # type: ignore[arg-type, return-value]
    now[0] = bad
    for call in (lambda: lb.add_server("c"), lambda: lb.set_weight("a", 0), lambda: lb.load("a")):
        with pytest.raises((TypeError, ValueError), match="clock"):
            call()
    assert dict(lb.servers) == {"a": 1.0, "b": 1.0}
    now[0] = 1.0
    lb.add_server("c")  # the clock mended: everything works, "c" starts fresh
    assert lb.load("c") == pytest.approx(0.030)
    assert lb.load("a") < lb.load("c")  # a's estimate decayed for 1 s; c's is new
    assert lb.get_server(exclude=["a", "b"]) == "c"
    assert {lb.get_server() for _ in range(50)} <= {"a", "b", "c"}
