"""The slow mark: what `pytest` leaves out and `pytest -m slow` runs."""

from __future__ import annotations

import unittest
from types import SimpleNamespace
from typing import Any

from hypothesis.stateful import RuleBasedStateMachine, rule

from .conftest import is_state_machine


class Counter(RuleBasedStateMachine):
    count = 0

    @rule()
    def bump(self) -> None:
        self.count += 1


def item(**fields: Any) -> Any:
    return SimpleNamespace(**fields)


def test_state_machine_test_cases_are_recognised_and_nothing_else() -> None:
    class Plain(unittest.TestCase):  # defined here, or pytest would collect it
        def runTest(self) -> None:
            pass

    assert is_state_machine(item(cls=Counter.TestCase))
    assert not is_state_machine(item(cls=Plain))  # a unittest class of our own
    assert not is_state_machine(item(cls=None))  # a plain test function
    assert not is_state_machine(item())  # a doctest item has no cls
