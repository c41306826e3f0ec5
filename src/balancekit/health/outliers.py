"""Outlier detectors: which servers an interval's requests single out, as Envoy's do.

A :class:`~balancekit.health.HealthTracker` given ``outliers=[...]`` counts
every server's successes and failures over each ``outlier_interval`` and,
at the end of the interval, asks each detector which servers are outliers;
those that are HEALTHY are ejected (``enforcing`` percent of the time), as
long as ``max_ejected_percent`` allows. Servers already ejected take no part.
A detector only selects; the tracker's transition table decides.

- :class:`SuccessRateEjection`: among the servers with at least
  ``request_volume`` requests, when at least ``minimum_hosts`` of them
  qualify, the success rates (in percent) give a mean and a population
  standard deviation; a server whose rate is below
  ``mean - stdev_factor * stdev`` is an outlier.
- :class:`FailurePercentageEjection`: among the same kind of qualifying
  servers, one whose failure percentage is at least ``threshold``.

The defaults are Envoy's (``success_rate_stdev_factor`` 1900 thousandths,
``success_rate_minimum_hosts`` 5, ``success_rate_request_volume`` 100,
``failure_percentage_threshold`` 85, ``failure_percentage_minimum_hosts`` 5,
``failure_percentage_request_volume`` 50); ``enforcing`` defaults to 100 for
both (Envoy enforces the failure percentage 0 % of the time by default: it
ships disabled).

>>> SuccessRateEjection().threshold([50.0, 100.0, 100.0, 100.0, 100.0])   # Envoy's test
(90.0, 52.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ..validate import check_int, check_range

__all__ = ["FailurePercentageEjection", "OutlierDetector", "SuccessRateEjection"]

Counts = Mapping[str, tuple[int, int]]
"""``{server: (successes, failures)}`` over one interval."""

_MAX_COUNT = 10**9


class OutlierDetector(Protocol):
    """What the tracker needs of a detector: who stands out, and how often to act on it.

    Any object with these two members is a detector (the tracker checks them,
    not the class): a new kind is one class of yours, no change to the tracker.
    ``enforcing`` is a number in [0, 100] (checked when the tracker is made);
    ``select`` gets the interval's counts of the servers not ejected and returns
    some of them (a ``TypeError``/``ValueError`` at the sweep otherwise, before
    any verdict applies); it should not raise.
    """

    enforcing: float

    def select(self, counts: Counts) -> list[str]:
        """The servers of ``counts`` that are outliers, in the order of ``counts``."""
        ...


def _rates(counts: Counts, volume: int) -> dict[str, float]:
    """Success rates in percent of the servers with at least ``volume`` requests."""
    return {
        server: 100.0 * ok / (ok + failed)
        for server, (ok, failed) in counts.items()
        if ok + failed >= volume
    }


@dataclass(frozen=True, slots=True)
class SuccessRateEjection:
    """Envoy's success-rate outlier detection.

    >>> detector = SuccessRateEjection()
    >>> counts = {f"s{i}": (200, 0) for i in range(4)} | {"bad": (200, 200)}
    >>> detector.select(counts)
    ['bad']

    Complexity: O(n) per interval.

    Raises:
        TypeError, ValueError: ``stdev_factor`` not in (0, 1000];
            ``minimum_hosts`` or ``request_volume`` not an int in [1, 1e9];
            ``enforcing`` not in [0, 100].
    """

    stdev_factor: float = 1.9
    minimum_hosts: int = 5
    request_volume: int = 100
    enforcing: float = 100.0

    def __post_init__(self) -> None:
        check_range("stdev_factor", self.stdev_factor, 0.0, 1000.0, low_open=True)
        check_int("minimum_hosts", self.minimum_hosts, 1, _MAX_COUNT)
        check_int("request_volume", self.request_volume, 1, _MAX_COUNT)
        check_range("enforcing", self.enforcing, 0.0, 100.0)

    def threshold(self, rates: list[float]) -> tuple[float, float]:
        """The mean of ``rates`` and the rate below which a server is an outlier."""
        mean = math.fsum(rates) / len(rates)
        stdev = math.sqrt(math.fsum((rate - mean) ** 2 for rate in rates) / len(rates))
        return mean, mean - self.stdev_factor * stdev

    def select(self, counts: Counts) -> list[str]:
        rates = _rates(counts, self.request_volume)
        if len(rates) < self.minimum_hosts:
            return []
        _, threshold = self.threshold(list(rates.values()))
        return [server for server, rate in rates.items() if rate < threshold]


@dataclass(frozen=True, slots=True)
class FailurePercentageEjection:
    """Envoy's failure-percentage outlier detection.

    >>> detector = FailurePercentageEjection()
    >>> counts = {f"s{i}": (50, 0) for i in range(4)} | {"bad": (7, 43)}  # 86 % failures
    >>> detector.select(counts)
    ['bad']

    Complexity: O(n) per interval.

    Raises:
        TypeError, ValueError: ``threshold`` or ``enforcing`` not in [0, 100];
            ``minimum_hosts`` or ``request_volume`` not an int in [1, 1e9].
    """

    threshold: float = 85.0
    minimum_hosts: int = 5
    request_volume: int = 50
    enforcing: float = 100.0

    def __post_init__(self) -> None:
        check_range("threshold", self.threshold, 0.0, 100.0)
        check_int("minimum_hosts", self.minimum_hosts, 1, _MAX_COUNT)
        check_int("request_volume", self.request_volume, 1, _MAX_COUNT)
        check_range("enforcing", self.enforcing, 0.0, 100.0)

    def select(self, counts: Counts) -> list[str]:
        rates = _rates(counts, self.request_volume)
        if len(rates) < self.minimum_hosts:
            return []
        return [server for server, rate in rates.items() if 100.0 - rate >= self.threshold]
