"""The simulator pauses the cyclic collector during a run: safe only because a run
makes no reference cycles, and polite only if it leaves the collector as it found it."""

from __future__ import annotations

import gc

import pytest

from balancekit.sim.engine import simulate
from balancekit.sim.scenario import BUILTIN_SCENARIO
from balancekit.strategies.registry import strategy_names

# Two strategies in the default run (a plain and a load-aware one); all of them under -m slow.
_DEFAULT_RUN = ("round-robin", "least-response-time")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=() if name in _DEFAULT_RUN else pytest.mark.slow)
        for name in strategy_names()
    ],
)
def test_a_run_leaves_no_cyclic_garbage(name: str) -> None:
    # The built-in scenario has failures, recoveries, a drain and health checks.
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()  # nothing collects behind the test's back
    try:
        simulate(BUILTIN_SCENARIO, name)
        assert gc.collect() == 0
    finally:
        if enabled:
            gc.enable()


@pytest.mark.parametrize("start_enabled", [True, False])
def test_the_collector_is_left_as_it_was(start_enabled: bool) -> None:
    enabled = gc.isenabled()
    try:
        (gc.enable if start_enabled else gc.disable)()
        simulate(BUILTIN_SCENARIO, "round-robin")
        assert gc.isenabled() is start_enabled
    finally:
        (gc.enable if enabled else gc.disable)()
