"""Every concrete strategy, discovered, so the contract suite covers each one.

A strategy module added under ``balancekit.strategies`` joins the suite with
no change here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import threading
from collections.abc import Callable

import balancekit.strategies as package
from balancekit.strategies.base import Balancer


def all_strategies() -> list[type[Balancer]]:
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    found: list[type[Balancer]] = []
    pending = list(Balancer.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not inspect.isabstract(cls) and cls.__module__.startswith(package.__name__):
            found.append(cls)
    return sorted(set(found), key=lambda cls: cls.__name__)


STRATEGIES = all_strategies()
# Client addresses: valid keys for every hash strategy, IPHash included.
KEYS = [f"10.0.{i // 256}.{i % 256}" for i in range(200)]


def run_in_threads(work: Callable[[int], None], count: int, timeout: float = 60.0) -> None:
    """Run ``work(0) .. work(count - 1)`` in threads released together; re-raise the
    first error. Each thread is joined within ``timeout`` seconds."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            start.wait(timeout=timeout)
            work(index)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    if errors:
        raise errors[0]
