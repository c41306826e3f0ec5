"""The multi-seed compare draws each seed's request stream once per process and
shares it between strategies: the results are exactly those of separate runs."""

from __future__ import annotations

import dataclasses

import pytest

from balancekit.sim import BUILTIN_SCENARIO, engine, simulate
from balancekit.sim.engine import Streams, simulate_sharing

SMALL = dataclasses.replace(BUILTIN_SCENARIO, requests=1_500)


def test_shared_streams_give_the_results_of_separate_runs() -> None:
    streams: Streams = {}
    for seed in (1, 2):
        scenario = SMALL.with_seed(seed)
        for strategy in ("least-connections", "maglev", "utilization-round-robin"):
            assert simulate_sharing(scenario, strategy, streams) == simulate(scenario, strategy)
    assert set(streams) == {SMALL.with_seed(1), SMALL.with_seed(2)}  # drawn once per seed


def test_the_cache_holds_at_most_shared_stream_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "SHARED_STREAM", 2_500)
    streams: Streams = {}
    first = dataclasses.replace(SMALL, requests=2_000)
    simulate_sharing(first, "round-robin", streams)
    assert list(streams) == [first]
    # A second stream would take the cache past the bound: this run draws its own.
    second = SMALL.with_seed(9)
    result = simulate_sharing(second, "round-robin", streams)
    assert list(streams) == [first]
    assert result == simulate(second, "round-robin")
