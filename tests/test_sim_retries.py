"""The simulator's clients retry: attempts on untried servers, a retry budget, a cap per server.

The known answers come from the retry budget's arithmetic (Finagle's: over any
``ttl`` window, retries <= ``min_retries_per_second * ttl + ratio * requests``)
and from the scenario of issue 9: a new user's client of four servers (one
normal, one slow, one answering errors for six seconds, one killed while the
erring one is ejected), 4,000 requests with up to 3 attempts each.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from balancekit.retry import RetryBudget
from balancekit.sim import SimulationResult, compare_seeds, simulate
from balancekit.sim.files import load_scenario
from balancekit.sim.report import render_details, render_legend, render_table
from balancekit.sim.scenario import (
    BUILTIN_SCENARIO,
    DrainSpec,
    FailureSpec,
    HealthSpec,
    RetryBudgetSpec,
    Scenario,
    ServerSpec,
    ServiceSpec,
    TraceRow,
)
from balancekit.strategies.registry import strategy_names

DOCS = Path(__file__).resolve().parent.parent / "docs" / "simulator.md"
NO_HEALTH = HealthSpec(enabled=False)
NO_BUDGET = RetryBudgetSpec(enabled=False)

NEW_USER = Scenario(
    name="new-user",
    seed=1,
    rate=100.0,
    requests=4000,
    attempts=3,
    service=ServiceSpec("exponential", mean=0.02),
    servers=(
        ServerSpec("normal", capacity=8),
        ServerSpec("slow", capacity=8, speed=0.25),
        ServerSpec("flaky", capacity=8),
        ServerSpec("killed", capacity=8),
    ),
    failures=(
        FailureSpec("flaky", at=5.0, until=11.0),
        FailureSpec("killed", at=8.0, until=1000.0),
    ),
)
"""Issue 9's scenario with the defaults (health, Pool, retry budget): the killed server
goes down while the erring one is ejected, so it cannot be ejected until that ends."""

ONE_AT_A_TIME = replace(
    NEW_USER,
    failures=(NEW_USER.failures[0], FailureSpec("killed", at=20.0, until=1000.0)),
)
"""The same, the kill coming after the erring server is back."""


def down_all_run(names: tuple[str, ...], error_time: float) -> tuple[FailureSpec, ...]:
    return tuple(FailureSpec(n, at=0.0, until=1000.0, error_time=error_time) for n in names)


def every_second(count: int, start: float = 0.5) -> tuple[TraceRow, ...]:
    return tuple(TraceRow(start + i, None, 0.1) for i in range(count))


def two_servers(
    requests: int, down: tuple[str, ...], attempts: int, budget: RetryBudgetSpec
) -> Scenario:
    """Servers a and b, one request a second from 0.5 s, ``down`` failing in 0.25 s."""
    return Scenario(
        (ServerSpec("a"), ServerSpec("b")),
        trace=every_second(requests),
        failures=down_all_run(down, 0.25),
        health=NO_HEALTH,
        attempts=attempts,
        retry_budget=budget,
    )


def attempts_made(result: SimulationResult) -> int:
    return sum(server.requests for server in result.servers)


# -- retries go elsewhere -----------------------------------------------------------


def test_a_retry_never_goes_back_to_the_server_that_failed_while_another_exists() -> None:
    scenario = Scenario(
        (ServerSpec("up"), ServerSpec("down")),
        trace=every_second(40),
        failures=down_all_run(("down",), 0.25),
        health=NO_HEALTH,
        attempts=2,
        retry_budget=NO_BUDGET,
    )
    for strategy in strategy_names():
        result = simulate(scenario, strategy)
        up, down = result.servers
        assert (result.completed, result.errors, result.rejected) == (40, 0, 0), strategy
        assert result.retries == down.requests > 0, strategy  # each failure retried once ...
        assert up.requests == 40 and up.errors == 0, strategy  # ... on the other server
        assert result.retries_refused == result.overflows == 0


def test_attempts_beyond_the_servers_drop_the_exclusion_and_stop_at_attempts() -> None:
    result = simulate(two_servers(10, ("a", "b"), 3, NO_BUDGET), "round-robin")
    assert (result.completed, result.errors, result.retries) == (0, 10, 20)
    assert attempts_made(result) == 30
    a, b = result.servers
    assert a.requests >= 10 and b.requests >= 10  # the first two tries: one on each
    assert a.errors + b.errors == 30


def test_a_retried_request_is_timed_from_its_first_attempt() -> None:
    # "down" fails at once at 0.25 s; the retry on "up" takes 0.1 s: 0.35 s in all.
    scenario = Scenario(
        (ServerSpec("down"), ServerSpec("up")),
        trace=(TraceRow(0.5, None, 0.1),),
        failures=down_all_run(("down",), 0.25),
        health=NO_HEALTH,
        attempts=2,
    )
    result = simulate(scenario, "round-robin")
    assert result.servers[0].requests == 1 and result.retries == 1
    assert result.completed == 1 and result.latency_max == pytest.approx(0.35)


def test_a_retry_that_finds_no_server_fails_its_request() -> None:
    # The only server is drained at 1 s and cuts its open request at 2 s: the retry
    # (drain cut-offs are retried like any failure) finds nothing eligible.
    scenario = Scenario(
        (ServerSpec("only"),),
        trace=(TraceRow(0.5, None, 10.0),),
        drains=(DrainSpec("only", at=1.0, timeout=1.0),),
        health=NO_HEALTH,
        attempts=3,
    )
    result = simulate(scenario, "round-robin")
    assert (result.retries, result.rejected, result.errors, result.completed) == (1, 1, 1, 0)
    assert result.servers[0].requests == 1 and result.overflows == 0


# -- the retry budget's arithmetic ----------------------------------------------------


def test_ratio_alone_allows_one_retry_per_two_requests() -> None:
    # Every try fails. Request i deposits (D = i); its first retry needs 0.5 i - W >= 1:
    # so requests 2, 4, ..., 10 retry once, and each request is refused exactly once.
    budget = RetryBudgetSpec(ratio=0.5, min_retries_per_second=0.0, ttl=60.0)
    result = simulate(two_servers(10, ("a", "b"), 3, budget), "round-robin")
    assert (result.retries, result.retries_refused, result.errors) == (5, 10, 10)
    assert attempts_made(result) == 15


def test_the_reserve_allows_one_retry_per_ttl_window() -> None:
    # A reserve of 0.1/s x 10 s = 1 retry, no ratio: the retry made at 0.75 s expires at
    # 10.75 s, exactly when request 10 fails; so retries at 0.75, 10.75 and 20.75 only.
    budget = RetryBudgetSpec(ratio=0.0, min_retries_per_second=0.1, ttl=10.0)
    result = simulate(two_servers(30, ("a", "b"), 2, budget), "round-robin")
    assert (result.retries, result.retries_refused, result.errors) == (3, 27, 30)


def test_the_budget_is_spent_only_by_retries_and_only_when_attempts_exceed_one() -> None:
    nothing = RetryBudgetSpec(ratio=0.0, min_retries_per_second=0.0, ttl=1.0)
    base = two_servers(10, ("a",), 1, nothing)
    # attempts=1: the budget (which would refuse everything) is never asked.
    assert simulate(base, "round-robin").retries_refused == 0
    assert simulate(base, "round-robin") == simulate(
        replace(base, retry_budget=NO_BUDGET), "round-robin"
    )
    # attempts=2 with a budget of nothing: every failure refused, none retried.
    refusing = simulate(replace(base, attempts=2), "round-robin")
    assert refusing.retries == 0 and refusing.retries_refused == refusing.errors > 0


# -- issue 9's scenario ------------------------------------------------------------------


@pytest.mark.parametrize("strategy", list(strategy_names()))
def test_three_attempts_fail_no_request_while_a_healthy_server_exists(strategy: str) -> None:
    # As the client: three attempts, no budget. Two servers stay healthy all along.
    result = simulate(replace(NEW_USER, retry_budget=NO_BUDGET), strategy)
    assert (result.errors, result.rejected, result.completed) == (0, 0, 4000)
    assert result.retries > 0
    # With the default budget too, when one server fails at a time.
    calm = simulate(ONE_AT_A_TIME, strategy)
    assert (calm.errors, calm.retries_refused, calm.completed) == (0, 0, 4000)


def test_one_attempt_fails_requests_in_the_same_scenario() -> None:
    for scenario in (NEW_USER, ONE_AT_A_TIME):
        once = simulate(replace(scenario, attempts=1), "power-of-two-choices")
        assert once.errors >= 10 and once.retries == 0
        assert once.errors == sum(server.errors for server in once.servers)


def test_a_tight_budget_caps_the_retries_of_a_failure() -> None:
    # A reserve of 2/s x 10 s = 20 retries and no ratio. Tries fail only from the erring
    # server's first error (5 s) until the killed server is ejected; that span covers at
    # most two disjoint 10 s windows, so at most 2 x 20 retries, and at least the first 20.
    tight = RetryBudgetSpec(ratio=0.0, min_retries_per_second=2.0, ttl=10.0)
    result = simulate(replace(NEW_USER, retry_budget=tight), "power-of-two-choices")
    out = min(t.at for t in result.transitions if t.server == "killed")
    assert out - 5.0 < 2 * tight.ttl
    assert 20 <= result.retries <= 40
    assert result.retries_refused > 0
    assert result.errors == result.retries_refused  # every refused retry fails its request
    unlimited = simulate(replace(NEW_USER, retry_budget=NO_BUDGET), "power-of-two-choices")
    assert unlimited.retries > 5 * 40  # what the budget held back


def test_the_default_budget_holds_a_retry_storm_to_a_fifth_of_the_requests() -> None:
    # P2C sends the killed server (it fails in 1 ms, so it never has requests in flight)
    # most first tries until it is ejected: more retries than 20 % of 10 s of requests
    # plus the reserve of 100. The refused ones fail; the others all succeed.
    result = simulate(NEW_USER, "power-of-two-choices")
    unlimited = simulate(replace(NEW_USER, retry_budget=NO_BUDGET), "power-of-two-choices")
    assert result.retries < unlimited.retries
    assert result.retries_refused == result.errors > 0


# -- max_in_flight ------------------------------------------------------------------------


def test_max_in_flight_refuses_what_every_full_server_cannot_take() -> None:
    five_at_once = tuple(TraceRow(0.0, None, 1.0) for _ in range(5))
    scenario = Scenario(
        (ServerSpec("a", capacity=1), ServerSpec("b", capacity=1)),
        trace=five_at_once,
        service=ServiceSpec("fixed", mean=1.0),
        health=NO_HEALTH,
        max_in_flight=1,
        attempts=3,
    )
    result = simulate(scenario, "least-connections")
    assert (result.completed, result.overflows, result.rejected, result.errors) == (2, 3, 3, 3)
    assert result.retries == 0  # an overflow is not retried: every server is still full
    uncapped = simulate(replace(scenario, max_in_flight=None), "least-connections")
    assert (uncapped.completed, uncapped.overflows) == (5, 0)
    assert uncapped.latency_max == pytest.approx(3.0)  # queued behind two others


# -- results, reports, files -----------------------------------------------------------


def test_results_carry_the_counts_in_json_and_default_runs_are_unchanged() -> None:
    result = simulate(NEW_USER, "maglev")
    data = json.loads(json.dumps(result.to_dict()))
    assert (data["retries"], data["retries_refused"], data["overflows"]) == (
        result.retries,
        result.retries_refused,
        0,
    )
    assert simulate(NEW_USER, "maglev") == result  # deterministic with retries too
    plain = simulate(BUILTIN_SCENARIO, "round-robin")
    assert (plain.retries, plain.retries_refused, plain.overflows) == (0, 0, 0)
    summary = compare_seeds(NEW_USER, ["round-robin"], seeds=2).to_dict()["strategies"][0]
    assert summary["metrics"]["retries"]["values"] == [run["retries"] for run in summary["runs"]]


def test_the_table_shows_retry_columns_only_where_they_can_happen() -> None:
    capped = replace(NEW_USER, max_in_flight=16)
    comparison = compare_seeds(capped, ["round-robin"], seeds=1)
    header = render_table(comparison).splitlines()[1].split()
    assert header[header.index("errors") + 1 : header.index("errors") + 4] == [
        "retries",
        "refused",
        "overflows",
    ]
    legend = render_legend(comparison)
    assert "retries the retry budget refused" in legend and "max_in_flight" in legend
    run = comparison.strategies[0].runs[0]
    assert f"retries {run.retries}, refused by the retry budget" in render_details(capped, run)
    markdown = render_table(comparison, markdown=True)
    assert "| retries | retries refused | overflows |" in markdown
    unbudgeted = compare_seeds(replace(NEW_USER, retry_budget=NO_BUDGET), ["maglev"], seeds=1)
    assert "refused" not in render_table(unbudgeted) and "retries" in render_table(unbudgeted)
    once = replace(NEW_USER, attempts=1)
    plain = compare_seeds(once, ["maglev"], seeds=1)
    details = render_details(once, plain.strategies[0].runs[0])
    text = render_table(plain) + render_legend(plain) + details
    assert not re.search(r"retries|refused|overflows", text)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is 3.11+")
def test_the_documented_retry_example_is_this_scenario(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(), flags=re.S)
    retrying = [block for block in blocks if "attempts" in block]
    assert len(retrying) == 1, "docs/simulator.md: one TOML example with attempts"
    (tmp_path / "new-user.toml").write_text(retrying[0])
    assert load_scenario(tmp_path / "new-user.toml") == NEW_USER


def test_budget_options_are_those_of_the_real_retry_budget() -> None:
    spec = RetryBudgetSpec()
    real = RetryBudget(**spec.options())
    assert (real.ratio, real.min_retries_per_second, real.ttl) == (0.2, 10.0, 10.0)
    assert RetryBudget().ratio == spec.ratio and RetryBudget().ttl == spec.ttl
    assert "enabled" not in spec.options()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is 3.11+")
def test_the_options_shown_in_resilience_md_load(tmp_path: Path) -> None:
    page = DOCS.parent / "resilience.md"
    blocks = re.findall(r"```toml\n(.*?)```", page.read_text(), flags=re.S)
    assert len(blocks) == 1, "docs/resilience.md: one TOML snippet"
    servers = '\n[[servers]]\nname = "a"\n'
    (tmp_path / "s.toml").write_text("rate = 10.0\nrequests = 10\n" + blocks[0] + servers)
    scenario = load_scenario(tmp_path / "s.toml")
    assert (scenario.attempts, scenario.max_in_flight) == (3, 16)
    assert scenario.retry_budget == RetryBudgetSpec()
    assert simulate(scenario, "round-robin").completed == 10
