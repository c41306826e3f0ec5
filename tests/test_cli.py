from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import balancekit
from balancekit.cli import _Progress, main, render_chart
from balancekit.sim import SimulationResult, compare
from balancekit.sim.files import scenario_from_dict
from balancekit.sim.report import can_encode
from balancekit.sim.seeds import compare_seeds
from balancekit.strategies.registry import strategy_names

SCENARIO: dict[str, Any] = {
    "name": "tiny",
    "seed": 4,
    "rate": 100.0,
    "requests": 300,
    "service": {"distribution": "exponential", "mean": 0.02},
    "keys": {"distribution": "zipf", "universe": 100, "s": 1.1},
    "cache": {"miss_factor": 2.0},
    "health": {"interval": 0.5, "timeout": 0.2},
    "servers": [
        {"name": "a", "capacity": 2, "weight": 2},
        {"name": "b", "capacity": 1},
        {"name": "c", "capacity": 1, "speed": 0.5},
    ],
    "failures": [{"server": "b", "at": 0.5, "until": 1.5}],
    "drains": [{"server": "c", "at": 2.0, "timeout": 0.5}],
}
TWO = "round-robin,least-connections"


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(SCENARIO))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_compare_prints_a_table_and_a_chart(
    capsys: pytest.CaptureFixture[str], scenario_file: Path
) -> None:
    argv = ["compare", "--scenario", str(scenario_file), "--strategies", TWO]
    status, out, err = run(capsys, *argv, "--seeds", "1")
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "tiny (seed 4): 300 requests, 3 servers"
    assert lines[1].split()[:4] == ["strategy", "req/s", "p50", "ms"]
    assert lines[2].startswith("round-robin ") and lines[3].startswith("least-connections ")
    assert "requests per server" in out and "fair share" in out
    assert "±" not in out  # one seed: no interval
    status, out, err = run(capsys, *argv, "--jobs", "1")  # the default number of seeds
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith(
        "tiny, seeds 4-8: mean ± 95 % confidence interval over 5 seeds (Student's t);"
    )
    assert re.match(r"round-robin +\d+\.\d±\d+\.\d", lines[2]), lines[2]


def test_compare_json_parses_and_is_deterministic(
    capsys: pytest.CaptureFixture[str], scenario_file: Path
) -> None:
    argv = ["compare", "--scenario", str(scenario_file), "--strategies", TWO, "--json"]
    status, out, _ = run(capsys, *argv, "--seeds", "3")
    assert status == 0
    document = json.loads(out)
    assert document["scenario"] == "tiny" and document["seeds"] == [4, 5, 6]
    assert document["confidence"] == 0.95 and document["interval"] == "Student's t"
    summaries = document["strategies"]
    assert [s["strategy"] for s in summaries] == TWO.split(",")
    runs = summaries[0]["runs"]
    assert [r["seed"] for r in runs] == [4, 5, 6] and runs[0]["requests"] == 300
    assert len(runs[0]["servers"]) == 3 and 0 <= runs[0]["cache_hit_ratio"] <= 1
    p99 = summaries[0]["metrics"]["latency_p99"]
    assert p99["values"] == [r["latency_p99"] for r in runs]  # the per-seed values
    assert p99["low"] < p99["mean"] == sum(p99["values"]) / 3 < p99["high"]
    assert summaries[0]["metrics"]["keys_moved"] == {"mean": None, "values": None}
    assert run(capsys, *argv, "--seeds", "3")[1] == out
    _, reseeded, _ = run(capsys, *argv, "--seeds", "3", "--seed", "5")
    assert json.loads(reseeded)["seeds"] == [5, 6, 7] and reseeded != out


def test_compare_markdown(capsys: pytest.CaptureFixture[str], scenario_file: Path) -> None:
    argv = ["compare", "--scenario", str(scenario_file), "--strategies", TWO, "--jobs", "1"]
    status, out, _ = run(capsys, *argv, "--markdown")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("tiny, seeds 4-8: mean ± 95 % confidence interval") and not lines[1]
    assert lines[2].startswith("| strategy | throughput (req/s) |")
    assert lines[3].startswith("| --- | ---: |")
    assert re.match(r"\| round-robin \| \**\d+\.\d ± \d+\.\d", lines[4]), lines[4]
    assert "**" in lines[4] + lines[5]  # the best of some column, in bold
    assert "```text" in out and out.rstrip().endswith("```")


def test_simulate_one_strategy_in_detail(
    capsys: pytest.CaptureFixture[str], scenario_file: Path
) -> None:
    argv = ["simulate", "--strategy", "least-connections", "--jobs", "1"]
    status, out, err = run(capsys, *argv, "--scenario", str(scenario_file))
    assert status == 0 and err == ""
    assert out.startswith("least-connections on tiny (seed 4)")
    assert "server  capacity  speed  weight  requests  errors  mean ms" in out
    assert "b: healthy -> ejected" in out and "c: active -> draining" in out
    spread = out.split("\n\n")[-1].splitlines()
    assert spread[0].startswith("least-connections over seeds 4-8: mean ± 95 % confidence")
    assert spread[4].split()[:2] == ["p99", "ms"] and len(spread[4].split()) == 3 + 5
    status, out, _ = run(
        capsys, "simulate", "--strategy", "rendezvous", "--scenario", str(scenario_file), "--json"
    )
    (summary,) = json.loads(out)["strategies"]
    assert summary["strategy"] == "rendezvous" and len(summary["runs"]) == 5
    assert 0 <= summary["metrics"]["keys_moved"]["mean"] <= 1
    argv = ["simulate", "--strategy", "maglev", "--seeds", "1", "--scenario", str(scenario_file)]
    _, out, _ = run(capsys, *argv)
    assert "over seeds" not in out


def test_strategies_lists_the_names(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "strategies")
    assert status == 0 and out.split() == list(strategy_names())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: command"),
        (["launch"], "invalid choice: 'launch'"),
        (["compare", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["compare", "--seed", "x"], "argument --seed: must be an integer >= 0, got 'x'"),
        (["compare", "--seed", "-2"], "argument --seed: must be an integer >= 0, got '-2'"),
        (
            ["compare", "--seed", "9" * 5000],
            "argument --seed: must be at most 18,446,744,073,709,551,615 (the largest seed),"
            " got '99999999999999999999'... (5,000 characters)",
        ),
        (
            ["compare", "--seed", str(2**64)],
            "must be at most 18,446,744,073,709,551,615 (the largest seed),"
            " got '18446744073709551616'",
        ),
        (
            ["compare", "--strategies", "x" * 5000],
            "unknown strategy 'xxxxxxxxxxxxxxxxxxxx'... (5,000 characters);"
            " choose from: round-robin,",
        ),
        (["compare", "--strategies", ","], "must name at least one strategy"),
        (["compare", "--strategies", "round-robin,nope"], "unknown strategy 'nope'; choose from"),
        (["simulate"], "the following arguments are required: --strategy"),
        (["simulate", "--strategy", "fastest"], "unknown strategy 'fastest'"),
        (["compare", "--json", "--markdown"], "argument --markdown: not allowed with argument"),
        (["compare", "--markdown", "--json"], "argument --json: not allowed with argument"),
        (["compare", "--scenario", "/no/such/file.json"], "No such file or directory"),
        (["compare", "--scenario", "scenario.yaml"], "must be a .toml or .json file"),
    ],
)
def test_bad_arguments_give_one_line_and_status_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("balancekit: error: ")
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", '{"rate": 1, "servers": [', "malformed JSON in bad.json"),
        pytest.param(
            "bad.toml",
            "[[servers]\nname = 'a'",
            "malformed TOML in bad.toml",
            marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is 3.11+"),
        ),
        ("bad.json", json.dumps({**SCENARIO, "rate": -1}), "rate must be a finite number > 0"),
        (
            "bad.json",
            json.dumps({**SCENARIO, "servers": [{"name": "a", "capacity": 0}]}),
            "servers[0].capacity must be an integer >= 1, got 0",
        ),
        ("bad.json", json.dumps({**SCENARIO, "colour": 1}), "colour is not a known field"),
        ("bad.json", json.dumps({**SCENARIO, "trace": "missing.csv", "rate": None}), "missing.csv"),
        # Values no simulation can run: each would overflow, hang or exhaust memory.
        (
            "bad.json",
            json.dumps({**SCENARIO, "servers": [{"name": "a", "weight": 10_000}]}),
            "servers[0].weight must be at most 1000 (the limit on a server's weight), got 10000",
        ),
        (
            "bad.json",
            json.dumps({**SCENARIO, "service": {"distribution": "lognormal", "mean": 1e308}}),
            "service.mean must be at most 1e+09 (the limit on any number in a scenario),"
            " got 1e+308",
        ),
        (
            "bad.json",
            json.dumps({**SCENARIO, "service": {"distribution": "lognormal", "sigma": 50}}),
            "service.sigma must be at most 10 (the limit on a lognormal sigma), got 50",
        ),
        (
            "bad.json",
            json.dumps({**SCENARIO, "failures": [{"server": "b", "at": 0.5, "until": 1e308}]}),
            "failures[0].until must be at most 1e+09",
        ),
        (
            "bad.json",
            json.dumps({**SCENARIO, "requests": 2**70}),
            "requests must be at most 10,000,000 (the limit of 10,000,000 requests in one run)",
        ),
        (
            "bad.json",
            json.dumps({**SCENARIO, "requests": None, "duration": 1e6, "rate": 1e3}),
            "duration must be at most 10,000 s at rate 1000/s"
            " (the limit of 10,000,000 requests in one run), got 1000000.0",
        ),
        (
            "bad.json",
            json.dumps({**SCENARIO, "rate": 1e-9, "requests": 1}),
            "health.interval must be at least 600 s (the limit of 5,000,000 health probes in one"
            " run: 3 servers probed for about 1e+09 s), got 0.5",
        ),
    ],
)
def test_bad_scenario_files_give_one_line_and_status_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    for command in (["compare"], ["simulate", "--strategy", "maglev"]):
        status, out, err = run(capsys, *command, "--scenario", str(tmp_path / name))
        assert status == 2 and out == ""
        assert err.count("\n") == 1 and message in err and "Traceback" not in err


def tiny_results() -> list[SimulationResult]:
    return compare(scenario_from_dict(SCENARIO), ["maglev", "round-robin"])


@pytest.mark.parametrize("name", ["bad.json", "bad.toml", "trace.csv"])
def test_a_file_that_is_not_utf8_gives_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    (tmp_path / name).write_bytes(b"time,key,service\n0,\xff\xfe,0.1\n")
    target = name
    if name == "trace.csv":  # the scenario is fine, its trace file is not
        target = "s.json"
        data = {k: v for k, v in SCENARIO.items() if k not in ("rate", "requests")}
        (tmp_path / target).write_text(json.dumps({**data, "trace": name}))
    status, out, err = run(capsys, "compare", "--scenario", str(tmp_path / target))
    assert status == 2 and out == ""
    assert err == f"balancekit: error: {name} is not UTF-8 text (byte 19: invalid start byte)\n"


def test_any_other_error_is_one_line_and_status_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ValueError("table_size 31 is too small for 4 servers")

    monkeypatch.setattr("balancekit.cli.compare_seeds", refuse)
    monkeypatch.delenv("BALANCEKIT_TRACEBACK", raising=False)
    status, out, err = run(capsys, "compare")
    assert (status, out) == (1, "")
    assert err == "balancekit: error: ValueError: table_size 31 is too small for 4 servers\n"
    monkeypatch.setenv("BALANCEKIT_TRACEBACK", "1")  # for a bug report
    with pytest.raises(ValueError, match="too small"):
        main(["compare"])


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_long_runs_report_progress_at_most_once_a_second() -> None:
    err, clock = io.StringIO(), FakeClock()
    progress = _Progress(err, 2, 1, clock=clock)
    progress.tick("maglev", 4096)
    clock.now += 0.9
    progress.tick("maglev", 8192)
    assert err.getvalue() == ""  # less than a second in: quiet
    clock.now += 0.2
    progress.tick("maglev", 12288)
    clock.now += 0.5
    progress.tick("maglev", 16384)  # half a second after the last line: quiet
    clock.now += 0.6
    progress.tick("maglev", 20480)
    assert err.getvalue().splitlines() == [
        "balancekit: [1/2] maglev: 12,288 requests (1.1 s)",
        "balancekit: [1/2] maglev: 20,480 requests (2.2 s)",
    ]


def test_simulate_reports_progress_on_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("balancekit.cli.PROGRESS_AFTER", 0.0)  # report everything
    argv = ["simulate", "--strategy", "round-robin", "--seed", "1", "--seeds", "2", "--jobs", "1"]
    status, out, err = run(capsys, *argv)
    assert status == 0 and "round-robin" in out
    lines = err.splitlines()
    assert lines[0].startswith("balancekit: [1/2] round-robin: 4,096 requests (")
    assert any(line.startswith("balancekit: [1/2] round-robin seed 1 (") for line in lines)
    assert lines[-1].startswith("balancekit: [2/2] round-robin seed 2 (")


def test_progress_is_reported_only_after_a_second_and_counts_from_one() -> None:
    err, clock = io.StringIO(), FakeClock()
    progress = _Progress(err, 3, 1, clock=clock)
    maglev, rr = tiny_results()
    clock.now += 0.4
    progress(maglev)
    assert err.getvalue() == ""
    clock.now += 0.85
    progress(rr)  # the line held back comes first
    assert err.getvalue() == (
        "balancekit: [1/3] maglev (0.4 s)\nbalancekit: [2/3] round-robin (1.2 s)\n"
    )


def test_progress_of_a_comparison_counts_strategies_over_all_their_seeds() -> None:
    err, clock = io.StringIO(), FakeClock()
    progress = _Progress(err, 2, 2, clock=clock)
    runs = compare_seeds(scenario_from_dict(SCENARIO), TWO.split(","), seeds=2).strategies
    clock.now += 2.0
    progress(runs[1].runs[0])
    progress(runs[0].runs[0])
    assert err.getvalue() == ""  # no strategy has run all its seeds yet
    progress(runs[0].runs[1])
    progress(runs[1].runs[1])
    assert err.getvalue().splitlines() == [
        "balancekit: [1/2] round-robin, 2 seeds (2.0 s)",
        "balancekit: [2/2] least-connections, 2 seeds (2.0 s)",
    ]


def test_chart_falls_back_to_ascii_where_blocks_cannot_be_printed() -> None:
    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    assert not can_encode(ascii_out.encoding)
    assert can_encode(io.TextIOWrapper(io.BytesIO(), encoding="utf-8").encoding)
    scenario = scenario_from_dict(SCENARIO)
    chart = render_chart(scenario, tiny_results(), blocks=False)
    chart.encode("ascii")
    lines = chart.splitlines()
    assert lines[1].split() == ["a", "b", "c"]
    assert [line.split()[0] for line in lines[2:]] == ["fair", "maglev", "round-robin"]
    assert all("#" in line for line in lines[2:])


def test_python_dash_m_balancekit_help_and_a_clean_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "balancekit", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "compare" in done.stdout and "simulate" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "balancekit", "compare", "--scenario", "nope.toml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("balancekit: error: ") and done.stderr.count("\n") == 1


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "--version")
    assert status == 0 and err == ""
    assert out == f"balancekit {balancekit.__version__}\n"


def test_strategies_by_class_name_in_any_case(
    capsys: pytest.CaptureFixture[str], scenario_file: Path
) -> None:
    argv = ["compare", "--scenario", str(scenario_file), "--json", "--seeds", "1", "--strategies"]
    _, out, _ = run(capsys, *argv, "LeastConnections,round-robin,IPHASH,least-connections")
    names = [r["strategy"] for r in json.loads(out)["strategies"]]
    assert names == ["least-connections", "round-robin", "ip-hash"]  # a repeat runs once
    status, out, _ = run(
        capsys, "simulate", "--scenario", str(scenario_file), "--strategy", "Power-Of-Two-Choices"
    )
    assert status == 0 and out.startswith("power-of-two-choices on tiny")


def test_a_weight_of_zero_gets_no_requests(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    servers = [{"name": "a", "capacity": 2}, {"name": "off", "weight": 0}, *SCENARIO["servers"][1:]]
    path = tmp_path / "zero.json"
    path.write_text(json.dumps({**SCENARIO, "servers": servers}))
    status, out, err = run(capsys, "compare", "--scenario", str(path), "--json", "--seeds", "1")
    assert status == 0, err
    for summary in json.loads(out)["strategies"]:
        (result,) = summary["runs"]
        assert [s["requests"] for s in result["servers"]][1] == 0, result["strategy"]


def test_the_legend_says_what_columns_mean_and_why_round_robin_tails_grow(
    capsys: pytest.CaptureFixture[str], scenario_file: Path
) -> None:
    argv = ["compare", "--scenario", str(scenario_file), "--seeds", "2", "--jobs", "1"]
    _, out, _ = run(capsys, *argv, "--strategies", TWO)
    _, legend, why, _ = out.split("\n\n", 3)
    assert [line.split("  ")[0] for line in legend.splitlines()] == [
        "req/s",
        "p50/p95/p99 ms",
        "errors",
        "peak/mean",
        "cache hit",
        "keys moved",
        "marks",
    ]
    assert why.startswith("Round robin gives every server the same share")  # servers differ
    assert why.endswith("their tail can reach seconds.")
    _, out, _ = run(capsys, *argv, "--strategies", "maglev")
    assert "tail can reach" not in out  # no strategy here ignores weights
    if "utilization-round-robin" in strategy_names():
        _, out, _ = run(capsys, *argv, "--strategies", "jump-hash,UtilizationRoundRobin")
        why = out.split("\n\n")[2]
        assert why.startswith("Jump hash gives every server the same share")
        # it learns from the reports the simulator sends: its tail is its blackout's
        assert "learns each server's from the load reports" in why
        assert "after its blackout (10 s of reports)" in why and "no load reports" not in out
        _, out, _ = run(capsys, *argv, "--strategies", "utilization-round-robin")
        why = out.split("\n\n")[2]
        assert why.startswith("Utilization round robin ignores the static weights and learns")
        assert "same share" not in why
    _, out, _ = run(capsys, *argv, "--strategies", TWO, "--markdown")
    assert "- **req/s**: completed requests per simulated second" in out
    assert "- **marks**: **bold**: the best of its column; *italic*: its interval" in out


HOSTILE = {
    "seed.json": '{"rate": 1, "requests": 1, "servers": [{"name": "a"}], "seed": '
    + "9" * 5000
    + "}",
    "deep.json": "[" * 100_000 + "]" * 100_000,
    "many.json": json.dumps(
        {"rate": 1, "requests": 1, "servers": [{"name": f"s{i}"} for i in range(60_000)]}
    ),
    "passwd.json": json.dumps({"servers": [{"name": "a"}], "trace": "passwd"}),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_get_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    (tmp_path / name).write_text(HOSTILE[name])
    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\nuser:x:1000\n")
    status, out, err = run(capsys, "compare", "--scenario", str(tmp_path / name))
    assert status == 2 and out == ""
    assert err.startswith("balancekit: error: ") and err.count("\n") == 1
    assert len(err) < 200 and "root" not in err


@pytest.mark.parametrize("name", ["fifo.json", "zero.json"])
def test_a_fifo_or_a_device_gets_one_line_at_once(tmp_path: Path, name: str) -> None:
    # In a process of its own, so that a regression (a FIFO read that waits for a
    # writer forever, /dev/zero read to the end) fails on the timeout, not the suite.
    path = tmp_path / name
    if name == "fifo.json":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(path)
    else:
        if not Path("/dev/zero").exists():
            pytest.skip("no /dev/zero here")
        path.symlink_to("/dev/zero")
    done = subprocess.run(
        [sys.executable, "-m", "balancekit", "compare", "--scenario", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"balancekit: error: {name} is not a regular file\n"


def test_one_seed_gives_no_interval_in_json_or_the_table(
    capsys: pytest.CaptureFixture[str], scenario_file: Path
) -> None:
    argv = ["--scenario", str(scenario_file), "--seeds", "1", "--json"]
    for command in (["compare", "--strategies", TWO], ["simulate", "--strategy", "maglev"]):
        status, out, _ = run(capsys, *command, *argv)
        assert status == 0
        for summary in json.loads(out)["strategies"]:
            p99 = summary["metrics"]["latency_p99"]
            assert p99["low"] is None and p99["high"] is None
            assert p99["mean"] == p99["values"][0] > 0
    status, out, _ = run(capsys, "compare", "--strategies", TWO, *argv[:-1])
    assert status == 0 and "±" not in out and "+-" not in out
    status, out, _ = run(
        capsys, "compare", "--strategies", TWO, *argv[:2], "--seeds", "2", "--json"
    )
    p99 = json.loads(out)["strategies"][0]["metrics"]["latency_p99"]
    assert p99["low"] < p99["mean"] < p99["high"]  # two seeds: a real interval
