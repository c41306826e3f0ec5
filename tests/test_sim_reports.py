"""Simulated servers report their load; UtilizationRoundRobin learns from the reports."""

from __future__ import annotations

from balancekit import RoundRobin, UtilizationRoundRobin
from balancekit.sim import BUILTIN_SCENARIO, simulate
from balancekit.sim._reports import WINDOW, LoadReports


class Recorder:
    def __init__(self) -> None:
        self.reports: list[tuple[str, float, float, float]] = []

    def report(self, server: str, *, qps: float, utilization: float, eps: float) -> None:
        self.reports.append((server, qps, utilization, eps))


def test_only_strategies_that_take_reports_get_them() -> None:
    assert LoadReports.of(RoundRobin(["a"])) is None
    assert LoadReports.of(UtilizationRoundRobin(["a"])) is not None


def test_reports_carry_the_last_full_windows_rates() -> None:
    recorder = Recorder()
    reports = LoadReports(recorder.report)
    for i in range(10):  # 10 finished in the first second, one of them failed
        reports.finished("a", ok=i != 3, now=i * 0.1, in_flight=2, capacity=4)
    assert recorder.reports == []  # no full window yet: nothing to report
    reports.finished("a", ok=True, now=WINDOW, in_flight=3, capacity=4)
    assert recorder.reports == [("a", 10.0, 0.75, 1.0)]
    reports.finished("b", ok=True, now=WINDOW, in_flight=1, capacity=1)
    assert len(recorder.reports) == 1  # b has its own window
    assert "servers=2" in repr(reports)


def test_utilization_round_robin_learns_unequal_servers_in_the_simulator() -> None:
    # The built-in scenario's servers differ 9x in capacity x speed; its static
    # weights are ignored by UtilizationRoundRobin, which must learn from reports.
    learned = simulate(BUILTIN_SCENARIO, "utilization-round-robin")
    blind = simulate(BUILTIN_SCENARIO, "round-robin")
    told = simulate(BUILTIN_SCENARIO, "weighted-round-robin")
    assert learned.errors < blind.errors / 10
    assert learned.latency_p95 < blind.latency_p95 / 3
    assert learned.throughput > 1.5 * blind.throughput
    # it shifts work to the big server s5 (capacity 12 at speed 1.5) ...
    share = {s.name: s.requests for s in learned.servers}
    blind_share = {s.name: s.requests for s in blind.servers}
    assert share["s5"] > 1.5 * blind_share["s5"]
    # ... though a 10 s blackout per server keeps it behind exact static weights
    assert learned.latency_p95 > told.latency_p95
    assert simulate(BUILTIN_SCENARIO, "utilization-round-robin") == learned  # deterministic
