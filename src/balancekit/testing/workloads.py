"""Traffic to drive a balancer with: key streams, request workloads and their replay.

:func:`sample_keys` and :func:`key_streams` make uniform or Zipf-skewed key
streams; :func:`workloads` draws request sequences (arrival gaps, service
times, keys) that :func:`replay` drives through any balancer or pool on a
:class:`~balancekit.clock.ManualClock`, releasing every lease when its
service time is up.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal

from hypothesis import strategies as st

from ..clock import ManualClock
from ..hashing import Key
from ..lease import Lease
from .strategies import check_sizes

__all__ = ["Request", "key_streams", "replay", "sample_keys", "workloads"]


def sample_keys(
    n: int,
    *,
    distribution: Literal["uniform", "zipf"] = "uniform",
    s: float = 1.1,
    universe: int = 1000,
    rng: random.Random,
    prefix: str = "key-",
) -> list[str]:
    """``n`` keys ``prefix + rank`` drawn from ``universe`` ranks, deterministically from ``rng``.

    Zipf: rank ``r`` (0-based) has probability proportional to ``1 / (r + 1) ** s``,
    so ``key-0`` is the hot key; uniform: every rank alike.

    >>> sample_keys(5, distribution="zipf", s=2.0, universe=50, rng=random.Random(1))
    ['key-0', 'key-3', 'key-1', 'key-0', 'key-0']

    Complexity: O(universe + n log universe).

    Raises:
        ValueError: ``n < 0``, ``universe < 1``, ``s`` not finite and > 0, or
            an unknown ``distribution``.
    """
    check_sizes(0, n, "n")
    if isinstance(universe, bool) or not isinstance(universe, int) or universe < 1:
        raise ValueError(f"universe must be an int >= 1, got {universe!r}")
    ranks = range(universe)
    if distribution == "uniform":
        picks = [rng.randrange(universe) for _ in range(n)]
    elif distribution == "zipf":
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s < math.inf:
            raise ValueError(f"s must be a finite number > 0, got {s!r}")
        cumulative = list(accumulate((r + 1) ** -s for r in ranks))
        picks = rng.choices(ranks, cum_weights=cumulative, k=n)
    else:
        raise ValueError(f"distribution must be 'uniform' or 'zipf', got {distribution!r}")
    return [f"{prefix}{rank}" for rank in picks]


def key_streams(
    n: int,
    *,
    distribution: Literal["uniform", "zipf"] = "uniform",
    s: float = 1.1,
    universe: int = 1000,
) -> st.SearchStrategy[list[str]]:
    """Streams of ``n`` keys (repeats included), uniform or Zipf-skewed.

    Hypothesis draws a seed; :func:`sample_keys` builds the stream from it,
    so a long stream costs one draw and a failure replays exactly. The key
    names include the seed, so the hot key lands on a different server in
    different examples.

    Raises:
        ValueError: as :func:`sample_keys`, at once.
    """
    sample_keys(0, distribution=distribution, s=s, universe=universe, rng=random.Random(0))
    check_sizes(0, n, "n")
    return st.integers(0, 2**32 - 1).map(
        lambda seed: sample_keys(
            n,
            distribution=distribution,
            s=s,
            universe=universe,
            rng=random.Random(seed),
            prefix=f"key-{seed:x}-",
        )
    )


@dataclass(frozen=True, slots=True)
class Request:
    """One request: ``gap`` seconds after the previous one, it takes ``service`` seconds."""

    gap: float
    service: float
    key: Key | None = None


def workloads(
    min_size: int = 1,
    max_size: int = 50,
    *,
    max_gap: float = 0.1,
    service: tuple[float, float] = (0.001, 10.0),
    keys: st.SearchStrategy[Key] | None = None,
) -> st.SearchStrategy[list[Request]]:
    """Request sequences: arrival gaps in [0, ``max_gap``], service times in ``service``.

    Gaps of 0 (bursts) and service times at both ends of the range (a
    10-second request among millisecond ones) come up early, as hypothesis
    favours boundaries. Give ``keys`` for hash strategies.

    Raises:
        ValueError: bad sizes, or ranges that are not finite and >= 0.
    """
    check_sizes(min_size, max_size)
    _check_number("max_gap", max_gap)
    low, high = (_check_number("service", v) for v in service)
    if low > high:
        raise ValueError(f"service must be (low, high) with low <= high, got {service!r}")
    request = st.builds(
        Request,
        st.floats(0.0, max_gap),
        st.floats(low, high),
        st.none() if keys is None else keys,
    )
    return st.lists(request, min_size=min_size, max_size=max_size)


def replay(
    target: Any,
    requests: Iterable[Request],
    clock: ManualClock,
    *,
    after_each: Callable[[Lease, list[Lease]], None] | None = None,
) -> list[str]:
    """Drive ``target.acquire`` with ``requests`` on ``clock``; return the servers picked.

    ``target`` is a balancer or a pool built with ``clock``. Each lease is
    released (ok) when its service time is up, with the clock set to that
    moment, so latencies are exact; all are released by the end.
    ``after_each(lease, open_leases)`` runs after every arrival with the new
    lease and all open ones in arrival order: a place for
    :func:`assert_in_flight_consistent` and checks of the pick. This is a
    test driver, not the simulator: no capacities, failures or queues.

    Complexity: O(r log r) for r requests, plus the picks, plus
    O(open log open) per ``after_each`` call.
    """
    pending: list[tuple[float, int, Lease]] = []
    picks: list[str] = []
    for order, request in enumerate(requests):
        arrival = clock() + request.gap
        while pending and pending[0][0] <= arrival:
            done, _, lease = heapq.heappop(pending)
            clock.set(done)
            lease.release(ok=True)
        clock.set(arrival)
        lease = target.acquire(request.key)
        picks.append(lease.server)
        heapq.heappush(pending, (arrival + request.service, order, lease))
        if after_each is not None:
            after_each(lease, [entry[2] for entry in sorted(pending, key=_arrival)])
    while pending:
        done, _, lease = heapq.heappop(pending)
        clock.set(done)
        lease.release(ok=True)
    return picks


def _arrival(entry: tuple[float, int, Lease]) -> int:
    return entry[1]


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a finite number >= 0, got {value!r}")
    if not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)
