"""The simulator's random draws: a scenario's request stream of arrivals, keys and service times.

Arrivals, keys and service times each come from their own
:class:`random.Random`, seeded from the scenario seed and the concern's
name, so the stream is a pure function of the scenario: every strategy the
simulator runs sees exactly the same requests, whatever it does with them.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Callable, Iterator

from .scenario import Scenario

__all__ = ["requests"]


def requests(scenario: Scenario) -> Iterator[tuple[float, int | None, float]]:
    """The request stream ``(arrival, key number or None, service at speed 1)``.

    Arrivals, keys and service times each have their own random stream, so
    the stream is the same whatever the strategy does. O(1) per request, after
    an O(universe) table for Zipf keys.

    >>> from balancekit.sim.scenario import Scenario, ServerSpec, ServiceSpec
    >>> s = Scenario((ServerSpec("a"),), rate=5.0, requests=2, service=ServiceSpec("fixed"))
    >>> [(key, service) for _, key, service in requests(s)]
    [(None, 0.05), (None, 0.05)]
    """
    seed = scenario.seed
    arrivals = random.Random(f"balancekit:{seed}:arrivals")
    draw_key = _key_drawer(scenario, random.Random(f"balancekit:{seed}:keys"))
    draw_service = _service_drawer(scenario, random.Random(f"balancekit:{seed}:service"))
    limit = scenario.requests if scenario.requests is not None else math.inf
    end = scenario.duration if scenario.duration is not None else math.inf
    count = 0
    if scenario.trace is not None:
        numbers: dict[str, int] = {}
        for row in scenario.trace:
            if count >= limit or row.time > end:
                return
            count += 1
            key = draw_key() if row.key is None else numbers.setdefault(row.key, len(numbers))
            yield row.time, key, draw_service() if row.service is None else row.service
        return
    assert scenario.rate is not None
    now = 0.0
    while count < limit:
        now += arrivals.expovariate(scenario.rate)
        if now > end:
            return
        count += 1
        yield now, draw_key(), draw_service()


def _key_drawer(scenario: Scenario, rng: random.Random) -> Callable[[], int | None]:
    spec = scenario.keys
    if spec.distribution == "none":
        return lambda: None
    universe = spec.universe
    if spec.distribution == "uniform":
        return lambda: rng.randrange(universe)
    cumulative = _zipf_cumulative(universe, spec.s)
    total = cumulative[-1]
    return lambda: min(bisect_right(cumulative, rng.random() * total), universe - 1)


def _zipf_cumulative(universe: int, s: float) -> list[float]:
    running, result = 0.0, []
    for rank in range(1, universe + 1):
        running += rank**-s
        result.append(running)
    return result


def _service_drawer(scenario: Scenario, rng: random.Random) -> Callable[[], float]:
    spec = scenario.service
    mean = spec.mean
    if spec.distribution == "fixed":
        return lambda: mean
    if spec.distribution == "exponential":
        return lambda: rng.expovariate(1.0 / mean)
    sigma = spec.sigma
    mu = math.log(mean) - sigma * sigma / 2  # so that the mean is `mean`
    return lambda: rng.lognormvariate(mu, sigma)
