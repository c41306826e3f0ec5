"""The simulator behind ``balancekit compare``: a deterministic discrete-event
run of a real Pool over a ManualClock.

- :mod:`.scenario`: the validated workload description, and the built-in one.
- :mod:`.files`: scenario files (TOML, JSON) and traces.
- :mod:`.draws`: the request stream a scenario describes.
- :mod:`.engine`: the event loop (:func:`simulate`, :func:`compare`).
- :mod:`.results`: what a run returns.
- :mod:`.seeds`: many seeds, optionally in parallel processes (:func:`compare_seeds`),
  with :mod:`.stats` (Student's t intervals); :mod:`.report` renders the tables.

Strategies are named through :mod:`balancekit.strategies.registry`.
"""

from .engine import compare, simulate
from .files import load_scenario, read_trace, scenario_from_dict
from .results import ServerResult, SimulationResult, Transition
from .scenario import BUILTIN_SCENARIO, Scenario, ScenarioError
from .seeds import Comparison, StrategySummary, compare_seeds

__all__ = [
    "BUILTIN_SCENARIO",
    "Comparison",
    "Scenario",
    "ScenarioError",
    "ServerResult",
    "SimulationResult",
    "StrategySummary",
    "Transition",
    "compare",
    "compare_seeds",
    "load_scenario",
    "read_trace",
    "scenario_from_dict",
    "simulate",
]
