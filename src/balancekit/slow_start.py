"""Slow start: the share of its weight a server gets while it warms up, as Envoy ramps it.

A server that joins or recovers starts cold (empty caches, unwarmed JIT,
lazy connections), so it gets a growing fraction of its weight over a window
of ``window`` seconds::

    time_factor = max(elapsed, 1) / window
    factor      = max(min_percent / 100, time_factor ** (1 / aggression))

(Envoy's ``slow_start_config``: aggression 1 is linear, above 1 ramps fast
at first). The factor is quantised down to multiples of ``1 / RAMP_STEPS`` so
that a ramp changes a server's weight at most ``RAMP_STEPS`` times: each
change may rebuild a hash strategy's table. Below the first multiple it is
the formula's starting value instead, never 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .validate import check_positive, check_range

__all__ = ["MIN_FACTOR", "RAMP_STEPS", "SlowStart"]

RAMP_STEPS = 20
"""A slow-start ramp updates a server's weight at most this many times."""

MIN_FACTOR = 1e-6
"""The least factor on a ramp: a weight of 0 would mean "not eligible", and a tiny
``aggression`` or a huge ``window`` without ``min_percent`` can underflow to it."""


@dataclass(frozen=True, slots=True)
class SlowStart:
    """A ramp: ``window`` seconds long (0: off), its ``aggression`` and starting percent.

    >>> ramp = SlowStart(window=10.0)
    >>> [ramp.at(t)[0] for t in (0.0, 4.99, 5.0, 10.0)]
    [0.1, 0.45, 0.5, 1.0]
    >>> ramp.at(5.0)[1]   # the elapsed time at which 0.55 is reached
    5.5

    Below the first step (``1 / RAMP_STEPS``) the factor is the formula's value
    at the start, not 0, so a ``min_percent`` under 5 never starves a server.
    Complexity: O(1) per call.

    Raises:
        ValueError, TypeError: ``window`` not finite and >= 0, ``aggression``
            not finite and > 0, ``min_percent`` not in [0, 100].
    """

    window: float
    aggression: float = 1.0
    min_percent: float = 10.0

    def __post_init__(self) -> None:
        check_range("window", self.window, 0.0)
        check_positive("aggression", self.aggression)
        check_range("min_percent", self.min_percent, 0.0, 100.0)

    def at(self, elapsed: float) -> tuple[float, float]:
        """The share of its weight a server gets ``elapsed`` seconds into its ramp, and
        the elapsed time of the ramp's next step (``inf`` once the ramp is over)."""
        window = self.window
        time_factor = max(elapsed, 1.0) / window if window > 0 else math.inf
        if time_factor >= 1.0:  # the ramp is over (or a window under a second)
            return 1.0, math.inf
        # Powers of numbers below 1 can underflow but never overflow.
        minimum = self.min_percent / 100.0
        raw = time_factor ** (1.0 / self.aggression)
        # The epsilon keeps a float just under a step (0.4999999) from holding it back.
        steps = math.floor(max(raw, minimum) * RAMP_STEPS + 1e-9)
        if steps >= RAMP_STEPS:
            return 1.0, math.inf
        # Below the first step, the formula's value at the start (constant for
        # elapsed <= 1 s): rounding down would give 0 and starve the server.
        first = (1.0 / window) ** (1.0 / self.aggression)
        factor = max(minimum, steps / RAMP_STEPS if steps else first, MIN_FACTOR)
        # The next step is where time_factor ** (1 / aggression) reaches (steps + 1) / RAMP_STEPS.
        next_step = (steps + 1) / RAMP_STEPS
        return factor, min(window, window * next_step**self.aggression)
