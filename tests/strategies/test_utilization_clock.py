"""UtilizationRoundRobin dates reports and re-reads weights by its clock: a broken
reading (NaN, inf, None) is refused before anything changes, and the balancer keeps
working once the clock is mended (as every clocked component, tests/test_clock_faults.py)."""

from __future__ import annotations

import math
import operator

import pytest

from balancekit import UtilizationRoundRobin


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None])
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


BROKEN = [
    (math.nan, ValueError, "finite seconds, got nan"),
    (math.inf, ValueError, "finite seconds, got inf"),
    (-math.inf, ValueError, "finite seconds, got -inf"),
    (None, TypeError, "a number of seconds, got None"),
]


@pytest.mark.parametrize(("bad", "error", "match"), BROKEN)
# After 2 and 6 picks of the new schedule its first blocks are used up; 5000 goes
# past the round-robin fallback's first block.
@pytest.mark.parametrize("picks_before", [0, 1, 2, 6, 5000])
def test_a_broken_reading_takes_no_pick(
    bad: object, error: type, match: str, picks_before: int
) -> None:
    """The lock-free pick refuses a broken reading as every other call does, and the
    schedule goes on as if it had never been read, whether a block is under way,
    used up, or a re-reading of the weights is due."""

    def fed(now: list[object]) -> UtilizationRoundRobin:
        lb = UtilizationRoundRobin(
            ["a", "b", "c"],
            blackout=0.0,
            clock=lambda: now[0],  # type: ignore[arg-type, return-value]
        )
        for server, qps in zip("abc", (100, 200, 300), strict=True):
            lb.report(server, qps=qps, utilization=1.0)
        return lb

    now: list[object] = [0.0]
    broken, steady = fed(now), fed(now)
    for due in (False, True):
        if due:
            now[0] = 2.0  # the weights are re-read at the next pick
        assert [broken.get_server() for _ in range(picks_before)] == [
            steady.get_server() for _ in range(picks_before)
        ]
        if due and picks_before in (2, 6):
            assert operator.length_hint(broken._picks) == 0  # the block is used up
        mended = now[0]
        now[0] = bad
        with pytest.raises(error, match=match):
            broken.get_server()
        now[0] = mended
        assert [broken.get_server() for _ in range(300)] == [
            steady.get_server() for _ in range(300)
        ]
        broken._check()
