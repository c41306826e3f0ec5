"""Strategies by name: every concrete Balancer in :mod:`balancekit.strategies`, found by
discovery and named in kebab case, and how the simulator builds one.

A name such as ``"power-of-two-choices"`` is what the CLI, scenario tooling
and :func:`balancekit.sim.compare` accept, as is the class name
(``"PowerOfTwoChoices"``), in any case; a Balancer subclass of your own is
accepted too and named the same way from its class name.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random
import re
from collections.abc import Iterable
from typing import Any

from .. import strategies as _package
from ..clock import Clock
from ..errors import BalancekitError
from .base import Balancer

__all__ = [
    "Strategy",
    "UnknownStrategy",
    "instantiate",
    "kebab",
    "make_strategy",
    "resolve",
    "strategy_names",
]

Strategy = str | type[Balancer]
"""A strategy name (see :func:`strategy_names`) or a Balancer subclass, such as your own."""

_ORDER = (
    "round-robin",
    "weighted-round-robin",
    "least-connections",
    "power-of-two-choices",
    "least-response-time",
    "consistent-hash",
    "bounded-load-hash",
    "ip-hash",
    "maglev",
    "jump-hash",
    "rendezvous",
)
"""The order results are shown in: simple to load-aware to hashing; others follow by name."""


class UnknownStrategy(BalancekitError, KeyError):
    """No strategy has that name; the message lists the names there are.

    >>> str(UnknownStrategy("fastest", ["round-robin", "maglev"]))
    "unknown strategy 'fastest'; choose from: round-robin, maglev"
    """

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(name)

    def __str__(self) -> str:
        # KeyError.__str__ would show only the quoted name.
        return f"unknown strategy {self.name!r}; choose from: {', '.join(self.known)}"


def kebab(name: str) -> str:
    """A class name in kebab case. O(len(name)).

    >>> kebab("PowerOfTwoChoices"), kebab("IPHash")
    ('power-of-two-choices', 'ip-hash')
    """
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()


def strategy_names() -> dict[str, type[Balancer]]:
    """Every concrete strategy in :mod:`balancekit.strategies`, by kebab-case class name.

    Modules are discovered, so a strategy added to the package appears here
    with no edit. O(number of modules) on first use.

    >>> names = strategy_names()
    >>> list(names)[:2], names["round-robin"].__name__
    (['round-robin', 'weighted-round-robin'], 'RoundRobin')
    """
    for info in pkgutil.iter_modules(_package.__path__):
        importlib.import_module(f"{_package.__name__}.{info.name}")
    found: dict[str, type[Balancer]] = {}
    pending = list(Balancer.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not inspect.isabstract(cls) and cls.__module__.startswith(_package.__name__):
            found[kebab(cls.__name__)] = cls
    rank = {name: i for i, name in enumerate(_ORDER)}
    return {n: found[n] for n in sorted(found, key=lambda n: (rank.get(n, len(rank)), n))}


def make_strategy(
    name: str, weights: dict[str, float], *, clock: Clock, rng: random.Random
) -> Balancer:
    """A new strategy ``name`` over ``weights``, on ``clock``, drawing from ``rng`` if it
    takes one. O(the strategy's build).

    >>> from balancekit.clock import ManualClock
    >>> make_strategy("round-robin", {"a": 1.0}, clock=ManualClock(), rng=random.Random(0))
    RoundRobin({'a': 1.0})

    Raises:
        UnknownStrategy: (a ``KeyError``) an unknown name; the message lists the known ones.
    """
    _, cls = resolve(name, strategy_names())
    return instantiate(cls, weights, clock=clock, rng=rng)


def resolve(strategy: Strategy, known: dict[str, type[Balancer]]) -> tuple[str, type[Balancer]]:
    """The name and class of ``strategy``: a name in ``known`` or a class name, in any case
    (``"LeastConnections"``, ``"least-connections"``, ``"LEAST-CONNECTIONS"``), or a
    Balancer subclass. O(1) for an exact name, else O(len(known)).

    >>> resolve("maglev", strategy_names())[1].__name__
    'Maglev'
    >>> resolve("PowerOfTwoChoices", strategy_names())[0]
    'power-of-two-choices'

    Raises:
        UnknownStrategy: (a ``KeyError``) a name that is not in ``known``.
        TypeError: neither a name nor a concrete Balancer subclass.
    """
    if isinstance(strategy, str):
        cls = known.get(strategy)
        if cls is not None:
            return strategy, cls
        # A kebab name without its dashes is its class name, lower-cased.
        folded = strategy.replace("-", "").replace("_", "").lower()
        for name, cls in known.items():
            if name.replace("-", "") == folded:
                return name, cls
        raise UnknownStrategy(strategy, known)
    if isinstance(strategy, type) and issubclass(strategy, Balancer):
        if inspect.isabstract(strategy):
            raise TypeError(f"strategy must be a concrete Balancer subclass, got {strategy!r}")
        return kebab(strategy.__name__), strategy
    raise TypeError(f"strategy must be a name or a Balancer subclass, got {strategy!r}")


def instantiate(
    cls: type[Balancer], weights: dict[str, float], *, clock: Clock, rng: random.Random
) -> Balancer:
    """``cls(weights, rng=rng, clock=clock)``, passing ``rng`` and ``clock`` only if its
    constructor takes them, so a strategy of your own need not accept either. O(the build)."""
    accepted = inspect.signature(cls).parameters
    options: dict[str, Any] = {}
    if "rng" in accepted:
        options["rng"] = rng
    if "clock" in accepted:
        options["clock"] = clock
    return cls(weights, **options)
