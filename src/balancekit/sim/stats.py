"""Confidence intervals over seeds: a mean and its Student's t interval.

Each seed of a scenario gives one independent sample of a figure (a p99,
a throughput); over ``n`` seeds the interval is
``mean ± t(confidence, n - 1) x s / sqrt(n)``, with ``s`` the sample standard
deviation and ``t`` the two-sided critical value of Student's t distribution
with ``n - 1`` degrees of freedom. It assumes the per-seed figures are roughly
normal; with few seeds and heavy tails, read it as a guide, not a guarantee.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Interval", "interval", "t_critical"]


def _two_sided(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` degrees of freedom, from the finite
    series for integer ``df`` (Abramowitz and Stegun 26.7.3 and 26.7.4). O(df)."""
    theta = math.atan(t / math.sqrt(df))
    sin, cos2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:
        # sin θ (1 + 1/2 cos²θ + 1·3/(2·4) cos⁴θ + ...), up to cos^(df-2) θ
        term = total = 1.0
        for j in range(1, df // 2):
            term *= cos2 * (2 * j - 1) / (2 * j)
            total += term
        return sin * total
    # 2/π (θ + sin θ (cos θ + 2/3 cos³θ + 2·4/(3·5) cos⁵θ + ...)), up to cos^(df-2) θ
    if df == 1:
        return 2 * theta / math.pi
    term = total = math.sqrt(cos2)
    for j in range(1, (df - 1) // 2):
        term *= cos2 * (2 * j) / (2 * j + 1)
        total += term
    return 2 / math.pi * (theta + sin * total)


def t_critical(confidence: float, df: int) -> float:
    """The ``t`` with P(|T| <= t) = ``confidence`` for Student's t with ``df`` degrees
    of freedom: the factor of a two-sided interval. O(df) per step of a 100-step
    bisection.

    >>> round(t_critical(0.95, 4), 3), round(t_critical(0.95, 30), 3)
    (2.776, 2.042)

    Raises:
        ValueError: ``confidence`` not in (0, 1), or ``df`` not an integer >= 1.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"df must be an integer >= 1, got {df!r}")
    low, high = 0.0, 1.0
    while _two_sided(high, df) < confidence:
        high *= 2  # at most about 60 doublings, even for df = 1 and confidence near 1
    for _ in range(100):
        middle = (low + high) / 2
        if _two_sided(middle, df) < confidence:
            low = middle
        else:
            high = middle
    return (low + high) / 2


@dataclass(frozen=True)
class Interval:
    """The ``mean`` of ``values`` and its confidence interval ``[low, high]``.

    One value gives ``low == high == mean``: nothing is known of the spread.
    """

    mean: float
    low: float
    high: float
    values: tuple[float, ...]

    @property
    def half_width(self) -> float:
        """``high - mean``: the ``± x`` of ``mean ± x``."""
        return self.high - self.mean

    def overlaps(self, other: Interval) -> bool:
        """Whether the two intervals share a point. O(1).

        >>> Interval(1.0, 0.5, 1.5, ()).overlaps(Interval(2.0, 1.5, 2.5, ()))
        True
        """
        return self.low <= other.high and other.low <= self.high


def interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The mean of ``values`` with its Student's t ``confidence`` interval. O(n).

    >>> i = interval([10.0, 12.0, 11.0, 13.0, 9.0])
    >>> i.mean, round(i.half_width, 3)  # 2.776 x 1.581 / sqrt(5)
    (11.0, 1.963)

    Raises:
        ValueError: no values, or a bad ``confidence``.
    """
    if not values:
        raise ValueError("values must hold at least one number, got none")
    mean = statistics.fmean(values)
    if len(values) == 1:
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
        return Interval(mean, mean, mean, tuple(values))
    spread = statistics.stdev(values, mean) / math.sqrt(len(values))
    half = t_critical(confidence, len(values) - 1) * spread
    return Interval(mean, mean - half, mean + half, tuple(values))
