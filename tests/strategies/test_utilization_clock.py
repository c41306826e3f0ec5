"""UtilizationRoundRobin dates reports and re-reads weights by its clock: a broken
reading (NaN, inf, None) is refused before anything changes, and the balancer keeps
working once the clock is mended (as every clocked component, tests/test_clock_faults.py)."""

from __future__ import annotations

import math

import pytest

from balancekit import UtilizationRoundRobin


@pytest.mark.parametrize("bad", [math.nan, math.inf, None])
def test_a_broken_reading_changes_nothing(bad: object) -> None:
    now: list[object] = [0.0]
    lb = UtilizationRoundRobin(
        ["a", "b"],
        blackout=0.0,
        expiration=10.0,
        clock=lambda: now[0],  # type: ignore[arg-type, return-value]
    )
    lb.report("a", qps=100, utilization=0.5)
    now[0] = bad
    calls = (
        lambda: lb.report("b", qps=100, utilization=0.5),
        lambda: lb.reported_weight("a"),
        lambda: lb.get_server(),
        lambda: lb.add_server("c"),
        lambda: lb.set_weight("a", 0),
    )
    for call in calls:
        with pytest.raises((TypeError, ValueError), match="clock"):
            call()
    assert dict(lb.servers) == {"a": 1.0, "b": 1.0}
    now[0] = 1.0
    assert lb.reported_weight("a") == 200.0
    assert lb.reported_weight("b") == 0.0  # the refused report left nothing behind
    now[0] = 100.0  # a's report expires (expiration 10 s): a NaN report would never expire
    assert lb.reported_weight("a") == 0.0
    assert {lb.get_server() for _ in range(20)} == {"a", "b"}
