"""The simulator behind ``balancekit compare``: a deterministic discrete-event
run of a real Pool over a ManualClock.

- :mod:`.scenario`: the validated workload description, and the built-in one.
- :mod:`.files`: scenario files (TOML, JSON) and traces.
- :mod:`.draws`: the request stream a scenario describes.
- :mod:`.engine`: the event loop (:func:`simulate`, :func:`compare`).
- :mod:`.results`: what a run returns.

Strategies are named through :mod:`balancekit.strategies.registry`.
"""

from .engine import compare, simulate
from .files import load_scenario, read_trace, scenario_from_dict
from .results import ServerResult, SimulationResult, Transition
from .scenario import BUILTIN_SCENARIO, Scenario, ScenarioError

__all__ = [
    "BUILTIN_SCENARIO",
    "Scenario",
    "ScenarioError",
    "ServerResult",
    "SimulationResult",
    "Transition",
    "compare",
    "load_scenario",
    "read_trace",
    "scenario_from_dict",
    "simulate",
]
