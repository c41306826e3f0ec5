"""Test configuration: Hypothesis runs derandomised so that no test can flake, and the heavy
runs are marked ``slow``.

``pytest`` (the README's command) leaves the ``slow`` tests out so that it
finishes in well under a minute; ``pytest -m slow`` runs only them and
``pytest -m ""`` runs everything. CI (``.ci/run``) runs both halves. A test is
``slow`` when it is a Hypothesis ``RuleBasedStateMachine`` (marked here, by the
hook below) or carries ``@pytest.mark.slow`` itself (a state machine run from
a function, or a heavy statistical check).
"""

from __future__ import annotations

import os
import unittest

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# A developer may explore with fresh random examples: HYPOTHESIS_PROFILE=dev pytest
settings.register_profile("dev", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def is_state_machine(item: pytest.Item) -> bool:
    """Whether ``item`` runs a ``RuleBasedStateMachine`` through its ``TestCase`` class."""
    cls = getattr(item, "cls", None)
    return (
        isinstance(cls, type)
        and issubclass(cls, unittest.TestCase)
        and cls.__module__ == "hypothesis.stateful"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Runs before `-m` deselects, so the mark added here is what `-m slow` sees.
    for item in items:
        if is_state_machine(item):
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Say what was left out and how to run it, so that nobody mistakes a quick run for all.
    left_out = [
        item
        for item in terminalreporter.stats.get("deselected", [])
        if isinstance(item, pytest.Item) and item.get_closest_marker("slow") is not None
    ]
    how = '`pytest -m slow` runs them (`pytest -m ""` runs everything)'
    if left_out:
        count = f"{len(left_out)} slow test{'s' * (len(left_out) != 1)}"
        terminalreporter.write_line(f"{count} not run: {how}")
    elif terminalreporter.config.getoption("markexpr") == "not slow":
        # Under pytest-xdist the workers deselect, so this process has no count to give.
        terminalreporter.write_line(f"slow tests not run: {how}")
