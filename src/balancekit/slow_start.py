"""Slow start: the share of its weight a server gets while it warms up, as Envoy ramps it.

A server that joins or recovers starts cold (empty caches, unwarmed JIT,
lazy connections), so it gets a growing fraction of its weight over a window
of ``window`` seconds::

    time_factor = max(elapsed, 1) / window
    factor      = max(min_percent / 100, time_factor ** (1 / aggression))

(Envoy's ``slow_start_config``: aggression 1 is linear, above 1 ramps fast
at first). The factor is quantised down to multiples of ``1 / RAMP_STEPS`` so
that a ramp changes a server's weight at most ``RAMP_STEPS`` times: each
change may rebuild a hash strategy's table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["RAMP_STEPS", "SlowStart"]

RAMP_STEPS = 20
"""A slow-start ramp updates a server's weight at most this many times."""


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
        for name, low, high in (
            ("window", 0.0, math.inf),
            ("aggression", 0.0, math.inf),
            ("min_percent", 0.0, 100.0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and low <= value <= high):
                bound = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
                raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
        if self.aggression == 0:
            raise ValueError(f"aggression must be > 0, got {self.aggression!r}")

    def at(self, elapsed: float) -> tuple[float, float]:
        """The share of its weight a server gets ``elapsed`` seconds into its ramp, and
        the elapsed time of the ramp's next step (``inf`` once the ramp is over)."""
        window = self.window
        if window <= 0 or elapsed >= window:
            return 1.0, math.inf
        minimum = self.min_percent / 100.0
        raw = (max(elapsed, 1.0) / window) ** (1.0 / self.aggression)
        # The epsilon keeps a float just under a step (0.4999999) from holding it back.
        steps = math.floor(max(raw, minimum) * RAMP_STEPS + 1e-9)
        # Below the first step, the formula's value at the start (constant for
        # elapsed <= 1 s): rounding down would give 0 and starve the server.
        first = (1.0 / window) ** (1.0 / self.aggression)
        factor = min(1.0, max(minimum, steps / RAMP_STEPS if steps else first))
        # The next step is where time_factor ** (1 / aggression) reaches (steps + 1) / RAMP_STEPS.
        next_step = (steps + 1) / RAMP_STEPS
        return factor, min(window, window * next_step**self.aggression)
