"""The drivers' example of docs/pool.md ("Running it: the drivers") runs as written,
against real backends on 127.0.0.1."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .backends import Backend

DOC = Path(__file__).resolve().parents[2] / "docs" / "pool.md"
PLACEHOLDERS = ("http://10.0.0.1:8080", "http://10.0.0.2:8080", "http://10.0.0.3:8080")


def test_the_health_checker_example(backends: Callable[..., Backend]) -> None:
    three = [backends(name) for name in ("a", "b", "c")]
    text = DOC.read_text()
    section = text[text.index("## Running it: the drivers") :]
    code = re.findall(r"```python\n(.*?)```", section, re.DOTALL)[0]
    for placeholder, backend in zip(PLACEHOLDERS, three, strict=True):
        code = code.replace(placeholder, backend.url)
    sent: list[str] = []

    def send(server: str) -> str:
        sent.append(server)
        return server

    namespace: dict[str, Any] = {"send": send}
    exec(compile(code, str(DOC), "exec"), namespace)
    pool = namespace["pool"]
    assert namespace["answer"] == sent[0] in {b.url for b in three}
    assert len(sent) == 1
    assert all(s.in_flight == 0 for s in pool.stats().values())
    # the block stopped the checker's thread (HealthChecker itself: tests/drivers/test_checks.py)
    assert not any(t.name == "balancekit-health" for t in threading.enumerate())
