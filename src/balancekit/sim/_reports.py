"""Simulated servers report their load to strategies that take reports (``report(...)``).

A strategy such as :class:`~balancekit.strategies.utilization.UtilizationRoundRobin`
learns its weights from what the servers say about themselves, as a gRPC
server sends ORCA load reports with its responses. In the simulator every
finished request carries one: the server's queries and errors per second over
its last full second, and its utilization, requests in flight (in service or
queued) over its capacity. Strategies without a ``report`` method get none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["WINDOW", "LoadReports"]

WINDOW = 1.0
"""Seconds over which a server counts the requests it finishes, for its qps and eps."""

Report = Callable[..., None]


class _Window:
    __slots__ = ("eps", "errors", "qps", "requests", "start")

    def __init__(self) -> None:
        self.start = 0.0
        self.requests = 0
        self.errors = 0
        self.qps = 0.0  # over the last full window: 0 until one has passed
        self.eps = 0.0

    def __repr__(self) -> str:
        return f"_Window(start={self.start}, requests={self.requests}, qps={self.qps})"


class LoadReports:
    """Per-server throughput windows, and the report each finished request carries."""

    def __init__(self, report: Report) -> None:
        self._report = report
        self._windows: dict[str, _Window] = {}

    @classmethod
    def of(cls, strategy: Any) -> LoadReports | None:
        """Reports for ``strategy`` if it has a ``report`` method, else ``None``. O(1)."""
        report = getattr(strategy, "report", None)
        return cls(report) if callable(report) else None

    def finished(self, server: str, ok: bool, now: float, in_flight: int, capacity: int) -> None:
        """A request on ``server`` finished at ``now``; ``in_flight`` counts it. O(1)."""
        window = self._windows.get(server)
        if window is None:
            window = self._windows[server] = _Window()
        elapsed = now - window.start
        if elapsed >= WINDOW:
            window.qps = window.requests / elapsed
            window.eps = window.errors / elapsed
            window.start, window.requests, window.errors = now, 0, 0
        window.requests += 1
        window.errors += not ok
        if window.qps > 0:
            self._report(server, qps=window.qps, utilization=in_flight / capacity, eps=window.eps)

    def __repr__(self) -> str:
        return f"LoadReports({self._report!r}, servers={len(self._windows)})"
