"""What a simulation run returns: per-strategy results, per-server shares and transitions.

Frozen dataclasses, JSON-ready through ``to_dict``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ServerResult", "SimulationResult", "Transition"]


@dataclass(frozen=True)
class ServerResult:
    """One server's share of a run: requests routed to it, those that failed, and the
    mean latency of those it served."""

    name: str
    requests: int
    errors: int
    latency_mean: float


@dataclass(frozen=True)
class Transition:
    """A health or drain state change the pool reported: ``server`` went ``old`` -> ``new``."""

    at: float
    server: str
    old: str
    new: str


@dataclass(frozen=True)
class SimulationResult:
    """What one strategy did with one scenario.

    ``requests`` arrived; ``completed`` succeeded, ``errors`` failed (down
    server, drain cut-off, or ``rejected`` because no server was eligible).
    ``throughput`` is completed requests per simulated second until the last
    one finished. Latencies (seconds, nearest rank) are over completed
    requests. ``peak_to_mean`` is the largest server's requests per unit of
    weight over the mean of that figure (1.0 = shares exactly as weighted).
    ``cache_hit_ratio`` is ``None`` without a cache or keys; ``keys_moved``
    is the fraction of a key sample whose server changed across the first
    failure or drain, for hash strategies (``None`` for the others).
    With ``attempts`` > 1, ``errors`` are requests that failed every attempt
    they made; ``retries`` counts the attempts after the first,
    ``retries_refused`` the retries the budget refused; ``overflows`` counts
    the requests refused because every eligible server had ``max_in_flight``
    requests open (they are also ``rejected``).
    """

    strategy: str
    scenario: str
    seed: int
    requests: int
    completed: int
    errors: int
    rejected: int
    elapsed: float
    throughput: float
    latency_mean: float
    latency_p50: float
    latency_p95: float
    latency_p99: float
    latency_max: float
    peak_to_mean: float
    cache_hit_ratio: float | None
    keys_moved: float | None
    servers: tuple[ServerResult, ...]
    transitions: tuple[Transition, ...]
    retries: int = 0
    retries_refused: int = 0
    overflows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready plain data. O(servers + transitions)."""
        return asdict(self)
