"""The Pool's effective weights as a pure function, against a tiny reference model."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from balancekit._weights import Member, effective_weights
from balancekit.slow_start import SlowStart


def reference(
    members: dict[str, Member], ramp: SlowStart, threshold: float, now: float
) -> tuple[dict[str, float], bool]:
    """The rule as the docs state it, written the plainest way."""
    active = [s for s, m in members.items() if m.active]
    healthy = [s for s in active if members[s].healthy]
    panic = len(active) > 0 and len(healthy) / len(active) < threshold
    weights = {}
    for server, m in members.items():
        if not m.active:
            weights[server] = 0.0
        elif panic:
            weights[server] = m.weight
        elif not m.healthy:
            weights[server] = 0.0
        elif m.since == -math.inf:
            weights[server] = m.weight
        else:
            weights[server] = m.weight * ramp.at(now - m.since)[0]
    return weights, panic


members_st = st.dictionaries(
    st.sampled_from("abcdefgh"),
    st.builds(
        Member,
        weight=st.sampled_from([0.0, 1.0, 2.5, 10.0]),
        since=st.sampled_from([-math.inf, 0.0, 3.0, 9.5, 40.0]),
        healthy=st.booleans(),
        active=st.booleans(),
    ),
    max_size=8,
)


@given(
    members=members_st,
    window=st.sampled_from([0.0, 10.0, 30.0]),
    aggression=st.sampled_from([1.0, 2.0]),
    threshold=st.sampled_from([0.0, 0.5, 1.0]),
    now=st.sampled_from([40.0, 45.0, 100.0]),
)
def test_matches_the_reference_model(
    members: dict[str, Member], window: float, aggression: float, threshold: float, now: float
) -> None:
    ramp = SlowStart(window, aggression)
    result = effective_weights(members, ramp, threshold, now)
    weights, panic = reference(members, ramp, threshold, now)
    assert result.panic == panic
    assert result.weights == weights
    # The next step is the earliest time a ramping, eligible server's weight moves.
    steps = [
        m.since + ramp.at(now - m.since)[1]
        for m in members.values()
        if m.active and m.healthy and m.since > -math.inf and m.weight > 0 and not panic
    ]
    assert result.next_step == min(steps, default=math.inf)
    if result.next_step < math.inf:
        later = effective_weights(members, ramp, threshold, result.next_step)
        assert later.weights != result.weights  # something does move then


def test_panic_is_strictly_below_the_threshold() -> None:
    ramp = SlowStart(0.0)
    half = {"a": Member(1.0, -math.inf), "b": Member(1.0, -math.inf, healthy=False)}
    assert not effective_weights(half, ramp, 0.5, 0.0).panic  # 1/2 is not below 0.5
    assert effective_weights(half, ramp, 0.51, 0.0).weights == {"a": 1.0, "b": 1.0}
    drained = {"a": Member(1.0, -math.inf, healthy=False, active=False)}
    assert effective_weights(drained, ramp, 1.0, 0.0).weights == {"a": 0.0}  # nothing active
