"""The Pool's effective weights: a pure function of members, health, drains, ramps, panic and now.

::

    eligible  = healthy and active                     (health x administration)
    panic     = some server is active and healthy < panic_threshold x active
    effective = weight x ramp(now - since)   if eligible and not panic
              = weight                       if active and panic
              = 0                            otherwise

A Pool calls :func:`effective_weights` whenever something changed and hands
the strategy the weights that differ, as one batch. Being pure, it is tested
on its own against a brute-force model (tests/test_weights.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from .slow_start import SlowStart

__all__ = ["Member", "Weights", "effective_weights"]


class Member(NamedTuple):
    """What the weight of one server depends on (a tuple: a Pool makes n of them per change).

    ``since`` is when it last became eligible (the start of its ramp;
    ``-inf`` for a server that never ramps, such as a Pool's initial members).
    """

    weight: float
    since: float
    healthy: bool = True
    active: bool = True


@dataclass(frozen=True, slots=True)
class Weights:
    """The result: every member's effective weight, whether the pool panics, and the
    earliest time a ramp moves on (``inf`` when none will)."""

    weights: dict[str, float]
    panic: bool
    next_step: float


def effective_weights(
    members: Mapping[str, Member], ramp: SlowStart, panic_threshold: float, now: float
) -> Weights:
    """The effective weight of every member at ``now``.

    >>> ramp = SlowStart(window=10.0)
    >>> members = {"a": Member(2.0, -math.inf), "b": Member(2.0, 5.0),
    ...            "c": Member(1.0, 0.0, healthy=False)}
    >>> result = effective_weights(members, ramp, panic_threshold=0.5, now=10.0)
    >>> result.weights, result.panic, result.next_step
    ({'a': 2.0, 'b': 1.0, 'c': 0.0}, False, 10.5)
    >>> effective_weights({"a": Member(1.0, 0.0, healthy=False)}, ramp, 0.5, 0.0).weights
    {'a': 1.0}

    Complexity: O(n).
    """
    active = [m for m in members.values() if m.active]
    healthy = sum(1 for m in active if m.healthy)
    panic = bool(active) and healthy < panic_threshold * len(active)
    weights: dict[str, float] = {}
    next_step = math.inf
    for server, member in members.items():
        weight = 0.0
        if member.active and (panic or member.healthy):
            weight = member.weight
            if not panic and member.since > -math.inf and weight > 0:
                factor, step = ramp.at(now - member.since)
                weight *= factor
                next_step = min(next_step, member.since + step)
        weights[server] = weight
    return Weights(weights, panic, next_step)
