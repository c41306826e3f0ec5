from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from balancekit.health import HealthTracker
from balancekit.sim import files
from balancekit.sim._shown import shown
from balancekit.sim.files import load_scenario, scenario_from_dict
from balancekit.sim.scenario import (
    BUILTIN_SCENARIO,
    CacheSpec,
    DrainSpec,
    FailureSpec,
    HealthSpec,
    KeySpec,
    RetryBudgetSpec,
    ScenarioError,
    ServerSpec,
    ServiceSpec,
    TraceRow,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "simulator.md"

MINIMAL: dict[str, Any] = {"rate": 10, "requests": 50, "servers": [{"name": "a"}, {"name": "b"}]}


def with_(**changes: Any) -> dict[str, Any]:
    return {**MINIMAL, **changes}


# -- the dataclasses ------------------------------------------------------------


def test_defaults_and_normalised_numbers() -> None:
    s = scenario_from_dict(MINIMAL)
    assert s.servers == (ServerSpec("a"), ServerSpec("b"))
    assert s.rate == 10.0 and isinstance(s.rate, float)
    assert s.requests == 50 and s.duration is None and s.trace is None
    assert s.service == ServiceSpec() and s.keys == KeySpec() and s.cache is None
    assert s.health == HealthSpec() and s.failures == () and s.drains == ()
    assert (s.slow_start, s.panic_threshold, s.seed, s.name) == (0.0, 0.5, 0, "scenario")
    assert (s.attempts, s.retry_budget, s.max_in_flight) == (1, RetryBudgetSpec(), None)
    r = scenario_from_dict(
        with_(attempts=3, max_in_flight=4, retry_budget={"ratio": 1, "enabled": False})
    )
    assert (r.attempts, r.max_in_flight) == (3, 4)
    assert r.retry_budget == RetryBudgetSpec(enabled=False, ratio=1.0)
    assert isinstance(r.retry_budget.ratio, float)
    spec = ServerSpec("x", capacity=3, speed=2, weight=5)
    assert (spec.speed, spec.weight) == (2.0, 5.0) and isinstance(spec.weight, float)


def test_health_options_are_accepted_by_the_real_tracker() -> None:
    spec = HealthSpec(interval=3, timeout=1, jitter=0.5, max_ejected_percent=50)
    tracker = HealthTracker(["a"], **spec.options())
    assert tracker.interval == 3.0 and tracker.jitter == 0.5
    assert tracker.max_ejected_percent == 50.0
    assert "enabled" not in spec.options()


@pytest.mark.parametrize(
    ("build", "field", "value"),
    [
        (lambda: ServerSpec(""), "name", "''"),
        (lambda: ServerSpec("a", capacity=0), "capacity", "0"),
        (lambda: ServerSpec("a", capacity=2.5), "capacity", "2.5"),  # type: ignore[arg-type]
        (lambda: ServerSpec("a", capacity=True), "capacity", "True"),
        (lambda: ServerSpec("a", speed=0), "speed", "0"),
        (lambda: ServerSpec("a", speed=math.inf), "speed", "inf"),
        (lambda: ServerSpec("a", weight=-1), "weight", "-1"),
        (lambda: ServerSpec("a", weight="2"), "weight", "'2'"),  # type: ignore[arg-type]
        (lambda: ServiceSpec("pareto"), "distribution", "'pareto'"),
        (lambda: ServiceSpec(mean=0), "mean", "0"),
        (lambda: ServiceSpec(sigma=math.nan), "sigma", "nan"),
        (lambda: KeySpec("hot"), "distribution", "'hot'"),
        (lambda: KeySpec("zipf", universe=0), "universe", "0"),
        (lambda: KeySpec("zipf", universe=10**7), "universe", "10000000"),
        (lambda: KeySpec("zipf", s=0), "s", "0"),
        (lambda: CacheSpec(miss_factor=0.5), "miss_factor", "0.5"),
        (lambda: FailureSpec("a", at=-1, until=5), "at", "-1"),
        (lambda: FailureSpec("a", at=5, until=5.0), "until", "5.0"),
        (lambda: FailureSpec("a", at=1, until=2, error_time=-0.1), "error_time", "-0.1"),
        (lambda: DrainSpec("a", at=1, timeout=math.nan), "timeout", "nan"),
        (lambda: HealthSpec(enabled=1), "enabled", "1"),  # type: ignore[arg-type]
        (lambda: HealthSpec(interval=0), "interval", "0"),
        (lambda: HealthSpec(interval=2, timeout=2.5), "timeout", "2.5"),
        (lambda: HealthSpec(interval=2, timeout=1, jitter=3.0), "jitter", "3.0"),
        (lambda: HealthSpec(unhealthy_threshold=0), "unhealthy_threshold", "0"),
        (lambda: HealthSpec(base_ejection=30, max_ejection=10.0), "max_ejection", "10.0"),
        (lambda: HealthSpec(max_ejected_percent=101.0), "max_ejected_percent", "101.0"),
        (lambda: RetryBudgetSpec(enabled="yes"), "enabled", "'yes'"),  # type: ignore[arg-type]
        (lambda: RetryBudgetSpec(ratio=-0.1), "ratio", "-0.1"),
        (lambda: RetryBudgetSpec(ratio=1001), "ratio", "1001"),
        (lambda: RetryBudgetSpec(ratio=math.nan), "ratio", "nan"),
        (lambda: RetryBudgetSpec(min_retries_per_second=-1), "min_retries_per_second", "-1"),
        (lambda: RetryBudgetSpec(ttl=0.5), "ttl", "0.5"),
        (lambda: RetryBudgetSpec(ttl=61), "ttl", "61"),
        (lambda: RetryBudgetSpec(ttl=True), "ttl", "True"),
    ],
)
def test_bad_field_names_the_field_and_the_value(build: Any, field: str, value: str) -> None:
    with pytest.raises(ScenarioError) as info:
        build()
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    message = str(info.value)
    assert message.startswith(f"{field} must be ") and message.endswith(f"got {value}")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"servers": []}, "servers"),
        ({"servers": [{"name": "a"}, {"name": "a"}]}, "servers[1].name"),
        ({"rate": None}, "rate"),
        ({"trace": [[0, None, None]]}, "rate"),  # both rate and trace
        ({"rate": 0}, "rate"),
        ({"requests": None}, "requests"),
        ({"requests": 0}, "requests"),
        ({"duration": -5.0}, "duration"),
        ({"slow_start": -1}, "slow_start"),
        ({"panic_threshold": 1.5}, "panic_threshold"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"name": ""}, "name"),
        ({"failures": [{"server": "zz", "at": 1, "until": 2}]}, "failures[0].server"),
        (
            {
                "failures": [
                    {"server": "a", "at": 1, "until": 5},
                    {"server": "a", "at": 3, "until": 9},
                ]
            },
            "failures[1].at",
        ),
        ({"drains": [{"server": "zz", "at": 1}]}, "drains[0].server"),
        ({"drains": [{"server": "a", "at": 1}, {"server": "a", "at": 5}]}, "drains[1].server"),
        ({"attempts": 0}, "attempts"),
        ({"attempts": 11}, "attempts"),
        ({"attempts": 2.0}, "attempts"),
        ({"attempts": "3"}, "attempts"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_in_flight": 1.5}, "max_in_flight"),
        ({"max_in_flight": 10**7 + 1}, "max_in_flight"),
        ({"retry_budget": {"ttl": 100}}, "retry_budget.ttl"),
        ({"retry_budget": {"ratio": "0.2"}}, "retry_budget.ratio"),
        ({"retry_budget": False}, "retry_budget"),
    ],
)
def test_scenario_level_errors_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(with_(**changes))
    assert info.value.field == field, str(info.value)
    assert str(info.value).startswith(field + " ")


def test_duration_alone_is_enough_and_two_failures_in_sequence_are_fine() -> None:
    s = scenario_from_dict(
        with_(
            requests=None,
            duration=3,
            failures=[{"server": "a", "at": 1, "until": 2}, {"server": "a", "at": 2, "until": 3}],
        )
    )
    assert s.duration == 3.0 and s.requests is None and len(s.failures) == 2


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (with_(colour="red"), "colour"),
        (with_(servers=[{"name": "a", "cpu": 2}]), "servers[0].cpu"),
        (with_(service={"distribution": "fixed", "median": 1}), "service.median"),
        (with_(health={"intervals": 1}), "health.intervals"),
        (with_(retry_budget={"percent": 20}), "retry_budget.percent"),
    ],
)
def test_unknown_fields_are_named_with_the_known_ones(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(field) + " is not a known field") as info:
        scenario_from_dict(data)
    assert "expected one of:" in str(info.value)


def test_missing_and_mistyped_tables() -> None:
    with pytest.raises(ScenarioError, match=r"^servers\[0\]\.name is required$"):
        scenario_from_dict(with_(servers=[{"capacity": 2}]))
    with pytest.raises(ScenarioError, match=r"^servers is required$"):
        scenario_from_dict({"rate": 1, "requests": 1})
    with pytest.raises(ScenarioError, match=r"^servers must be a list of tables"):
        scenario_from_dict(with_(servers={"name": "a"}))
    with pytest.raises(ScenarioError, match=r"^keys must be a table of fields, got 'zipf'"):
        scenario_from_dict(with_(keys="zipf"))
    with pytest.raises(ScenarioError, match=r"^failures\[0\]\.until is required$"):
        scenario_from_dict(with_(failures=[{"server": "a", "at": 1}]))


def test_with_seed_and_frozen() -> None:
    s = scenario_from_dict(MINIMAL)
    assert s.with_seed(7).seed == 7 and s.seed == 0
    with pytest.raises(ScenarioError, match="seed"):
        s.with_seed(-3)
    with pytest.raises(AttributeError):
        s.seed = 3  # type: ignore[misc]


# -- traces ---------------------------------------------------------------------


def test_inline_trace_rows() -> None:
    s = scenario_from_dict(
        {
            "servers": [{"name": "a"}],
            "trace": [[0, "u1", 0.1], [0.5, 7, None], [0.5, "", ""]],
        }
    )
    assert s.trace == (
        TraceRow(0.0, "u1", 0.1),
        TraceRow(0.5, "7", None),
        TraceRow(0.5, None, None),
    )


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([], "trace"),
        ([[0, "a"]], "trace[0]"),
        ([[1, "a", 0.1], [0.5, "a", 0.1]], "trace[1].time"),
        ([[0, "a", 0]], "trace[0].service"),
        ([[0, True, 0.1]], "trace[0].key"),
        ([["x", "a", 0.1]], "trace[0].time"),
    ],
)
def test_bad_inline_trace(rows: list[Any], field: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict({"servers": [{"name": "a"}], "trace": rows})
    assert info.value.field == field


def test_trace_file_relative_to_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "requests.csv").write_text(
        "time,key,service\n# a comment\n0.0,alice,0.2\n0.1,,\n0.25,bob,0.05\n"
    )
    (tmp_path / "s.json").write_text(
        json.dumps({"servers": [{"name": "a"}], "trace": "requests.csv"})
    )
    s = load_scenario(tmp_path / "s.json")
    assert s.trace == (
        TraceRow(0.0, "alice", 0.2),
        TraceRow(0.1, None, None),
        TraceRow(0.25, "bob", 0.05),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,key,service\n0,a,0.1\n0.2,a\n", "trace.csv line 3 must be a time,key,service row"),
        ("0,a,0.1\nsoon,a,0.1\n", "trace.csv line 2.time must be a number"),
        ("0,a,0.1\n1,a,-2\n", "trace.csv line 2.service must be a finite number > 0"),
        ("1,a,0.1\n0,a,0.1\n", "trace.csv line 2.time must be not earlier than the row before"),
        ("time,key,service\n", "trace.csv must be a trace of at least one row"),
        ("root:x:0:0:root:/root:/bin/bash\n", "trace.csv line 1 must be a time,key,service row"),
        ('0,"' + "x" * 200_000 + '",1\n', "trace.csv line 1 is not CSV (field larger than"),
    ],
)
def test_bad_trace_file_names_the_line_and_never_shows_its_content(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "trace.csv").write_text(text)
    (tmp_path / "s.json").write_text(json.dumps({"servers": [{"name": "a"}], "trace": "trace.csv"}))
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "s.json")
    assert str(info.value).startswith(message)
    assert "got" not in str(info.value)  # a file that is not a trace may hold anything
    for cell in ("soon", "-2", "root", "bash"):
        assert cell not in str(info.value)


def test_missing_trace_file_is_an_os_error(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps({"servers": [{"name": "a"}], "trace": "no.csv"}))
    with pytest.raises(FileNotFoundError):
        load_scenario(tmp_path / "s.json")


# -- files ------------------------------------------------------------------------

TOML = """
name = "shop"
seed = 3
rate = 200.0
duration = 30.0
slow_start = 10.0

[service]
distribution = "lognormal"
mean = 0.05
sigma = 1.2

[keys]
distribution = "zipf"
universe = 1000
s = 1.1

[cache]
miss_factor = 3.0

[health]
interval = 2.0
timeout = 1.0

[[servers]]
name = "big"
capacity = 16
speed = 2.0
weight = 32

[[servers]]
name = "small"
capacity = 4

[[failures]]
server = "small"
at = 5.0
until = 10.0

[[drains]]
server = "big"
at = 20.0
timeout = 4.0
"""


NEEDS_TOMLLIB = pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is 3.11+")


@NEEDS_TOMLLIB
def test_toml_and_json_give_the_same_scenario(tmp_path: Path) -> None:
    tomllib: Any = pytest.importorskip("tomllib")

    (tmp_path / "s.toml").write_text(TOML)
    (tmp_path / "s.json").write_text(json.dumps(tomllib.loads(TOML)))
    from_toml = load_scenario(tmp_path / "s.toml")
    assert from_toml == load_scenario(str(tmp_path / "s.json"))
    assert from_toml.servers[0] == ServerSpec("big", capacity=16, speed=2.0, weight=32.0)
    assert from_toml.keys == KeySpec("zipf", universe=1000, s=1.1)
    assert from_toml.failures == (FailureSpec("small", at=5.0, until=10.0),)
    assert from_toml.drains == (DrainSpec("big", at=20.0, timeout=4.0),)
    assert from_toml.health == HealthSpec(interval=2.0, timeout=1.0)
    assert from_toml.cache == CacheSpec(3.0) and from_toml.slow_start == 10.0


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("s.json", '{"rate": 1,', "malformed JSON in s.json"),
        ("s.json", "[1, 2]", "scenario must be a table of fields"),
        pytest.param("s.toml", "rate = = 1", "malformed TOML in s.toml", marks=NEEDS_TOMLLIB),
        ("s.yaml", "rate: 1", "scenario file must be a .toml or .json file"),
        (
            "s.json",
            '{"rate": 1, "requests": 5, "servers": [{"name": "a", "speed": -2}]}',
            "servers[0].speed must be",
        ),
    ],
)
def test_malformed_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / name)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value).strip()


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_scenario(tmp_path / "absent.toml")


def test_toml_on_python_3_10_says_to_use_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "s.toml").write_text(TOML)
    monkeypatch.setattr(sys, "version_info", (3, 10, 12, "final", 0))
    with pytest.raises(ScenarioError, match=r"Python 3\.11.*use a \.json file"):
        load_scenario(tmp_path / "s.toml")


@NEEDS_TOMLLIB
def test_the_documented_example_loads(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert blocks, "docs/simulator.md has no TOML example"
    (tmp_path / "example.toml").write_text(blocks[0])
    example = load_scenario(tmp_path / "example.toml")
    assert len(example.servers) >= 2 and example.failures and example.drains


# -- the built-in scenario ---------------------------------------------------------


def test_builtin_scenario_has_what_compare_promises() -> None:
    s = BUILTIN_SCENARIO
    assert len(s.servers) == 6
    assert len({spec.capacity for spec in s.servers}) > 1
    assert len({spec.speed for spec in s.servers}) > 1
    assert s.service.distribution == "lognormal" and s.service.sigma >= 1
    assert s.keys.distribution == "zipf" and s.cache is not None
    assert len(s.failures) == 1 and len(s.drains) == 1
    assert s.health.enabled
    assert replace(s, seed=2) == s.with_seed(2)


def test_the_request_limit_counts_the_requests_that_will_be_made() -> None:
    # 1000 requests, although rate x duration would be 100 million.
    s = scenario_from_dict({**MINIMAL, "rate": 1000, "duration": 1e5, "requests": 1000})
    assert s.requests == 1000
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict({**MINIMAL, "rate": 1000, "duration": 1e5, "requests": None})
    assert str(info.value) == (
        "duration must be at most 10,000 s at rate 1000/s"
        " (the limit of 10,000,000 requests in one run), got 100000.0"
    )


def test_the_probe_budget_counts_the_time_the_last_requests_take() -> None:
    health = {"interval": 1.0, "timeout": 0.5}
    slow = {**MINIMAL, "rate": 1, "requests": 1, "health": health}
    scenario_from_dict({**slow, "service": {"distribution": "fixed", "mean": 1e5}})
    with pytest.raises(ScenarioError, match=r"health\.interval must be at least"):
        # One request, but it is open for ten times 1e6 s: probes all along.
        scenario_from_dict({**slow, "service": {"distribution": "fixed", "mean": 1e6}})
    # A trace cut by `requests` is judged by the rows that will be replayed.
    rows = [[0.0, "", 0.1]] * 3 + [[1e9, "", 0.1]]
    scenario_from_dict({"servers": MINIMAL["servers"], "trace": rows, "requests": 3})
    with pytest.raises(ScenarioError, match=r"health\.interval"):
        scenario_from_dict({"servers": MINIMAL["servers"], "trace": rows})


# -- weights, limits and hostile files ----------------------------------------------


def test_weight_zero_is_a_member_that_gets_nothing_but_not_every_weight() -> None:
    s = scenario_from_dict(with_(servers=[{"name": "a"}, {"name": "b", "weight": 0}]))
    assert s.servers[1].weight == 0.0
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(with_(servers=[{"name": "a", "weight": 0}]))
    assert str(info.value) == "servers must include one of weight > 0"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"servers": [{"name": "a", "weight": 1001}]},
            "servers[0].weight must be at most 1000 (the limit on a server's weight), got 1001",
        ),
        (
            {"service": {"sigma": 11}},
            "service.sigma must be at most 10 (the limit on a lognormal sigma), got 11",
        ),
        (
            {"rate": 1e10},
            "rate must be at most 1e+09 (the limit on any number in a scenario), got 10000000000.0",
        ),
        (
            {"requests": 10**7 + 1},
            "requests must be at most 10,000,000 (the limit of 10,000,000 requests in one run),"
            " got 10000001",
        ),
        (
            {"keys": {"distribution": "uniform", "universe": 10**6 + 1}},
            "keys.universe must be at most 1,000,000 (the limit on distinct keys), got 1000001",
        ),
        (
            {"seed": 2**64},
            "seed must be at most 18,446,744,073,709,551,615 (the largest seed),"
            " got 18446744073709551616",
        ),
        (
            {"servers": [{"name": f"s{i}"} for i in range(1001)]},
            "servers must be at most 1,000 (the limit on servers in a scenario), got 1,001",
        ),
        (
            {"name": ["x" * 1000] * 60000},
            "name must be a non-empty string, got ['xxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxx',"
            + " 'xxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxx'," * 3
            + " ...]",
        ),
    ],
)
def test_a_limit_is_named_and_a_big_value_shown_short(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(with_(**changes))
    assert str(info.value) == message


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "seed.json",
            '{"rate": 1, "requests": 1, "servers": [{"name": "a"}], "seed": ' + "9" * 5000 + "}",
            "seed must be at most 18,446,744,073,709,551,615 (the largest seed),"
            " got an integer of 5000 digits",
        ),
        (
            "rate.json",
            '{"requests": 1, "servers": [{"name": "a"}], "rate": -' + "9" * 5000 + "}",
            "rate must be at most 1e+09 (the limit on any number in a scenario),"
            " got an integer of 5000 digits",
        ),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "deep.json is nested too deeply"),
        ("deep.json", '{"a": ' * 50_000 + "1" + "}" * 50_000, "deep.json is nested too deeply"),
        pytest.param(
            "deep.toml",
            "a = " + "[" * 100_000 + "]" * 100_000,
            "deep.toml is nested too deeply",
            marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is 3.11+"),
        ),
        pytest.param(
            "deep.toml",
            "a = " + "{b = " * 5000 + "1" + "}" * 5000,
            "deep.toml is nested too deeply",
            marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is 3.11+"),
        ),
        pytest.param(
            "seed.toml",
            "seed = " + "9" * 5000,
            "seed.toml holds an integer too long to read",
            marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is 3.11+"),
        ),
        (
            "many.json",
            json.dumps(
                {"rate": 1, "requests": 1, "servers": [{"name": f"s{i}"} for i in range(60_000)]}
            ),
            "servers must be at most 1,000 (the limit on servers in a scenario), got 60,000",
        ),
    ],
)
def test_hostile_scenario_files_are_refused_by_name(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path / name, text))
    assert str(info.value).startswith(message)
    assert len(str(info.value)) < 200


def test_only_regular_files_under_the_size_limit_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "fifo.json"
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(fifo)  # opened for reading, a FIFO would wait for a writer forever
    with pytest.raises(ScenarioError, match=r"^fifo\.json is not a regular file$"):
        load_scenario(fifo)
    if Path("/dev/zero").exists():  # endless: reading it all would exhaust memory
        (tmp_path / "zero.json").symlink_to("/dev/zero")
        with pytest.raises(ScenarioError, match=r"^zero\.json is not a regular file$"):
            load_scenario(tmp_path / "zero.json")
        trace = write(
            tmp_path / "s.json", json.dumps({"servers": MINIMAL["servers"], "trace": "/dev/zero"})
        )
        with pytest.raises(ScenarioError, match=r"^zero is not a regular file$"):
            load_scenario(trace)
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(ScenarioError, match=r"^folder\.json is not a regular file$"):
        load_scenario(tmp_path / "folder.json")
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 100)
    big = write(tmp_path / "big.json", json.dumps({**MINIMAL, "name": "x" * 100}))
    with pytest.raises(ScenarioError) as info:
        load_scenario(big)
    assert (
        str(info.value)
        == "big.json is larger than 100 bytes (the limit on scenario and trace files)"
    )


@pytest.mark.parametrize("digits", [41, 42, 129, 4300, 4301, 5000])
def test_long_integers_are_shown_by_their_digits_without_converting_them(digits: int) -> None:
    assert shown(10**digits - 1) == f"an integer of {digits} digits"  # all nines
    assert shown(-(10 ** (digits - 1))) == f"an integer of {digits} digits"  # a one and zeros
