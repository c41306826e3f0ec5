"""The ``balancekit`` command: ``compare`` strategies on a scenario, or ``simulate`` one.

``main(argv)`` returns the exit status: 0 on success, 2 for bad arguments or
a bad scenario file, 1 for anything else that stops a run (a strategy that
refuses the scenario's servers, say) — one line on stderr, never a
traceback unless ``BALANCEKIT_TRACEBACK=1`` — and 130 on Ctrl-C. Tables go
to stdout; progress lines go to stderr once a run has taken more than a second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from ._version import __version__
from .clock import Clock, monotonic
from .sim import SimulationResult, compare, simulate
from .sim.files import load_scenario
from .sim.scenario import BUILTIN_SCENARIO, MAX_SEED, Scenario, ScenarioError
from .strategies.registry import UnknownStrategy, resolve, strategy_names

__all__ = ["main", "render_chart", "render_details", "render_legend", "render_table"]

PROGRESS_AFTER = 1.0
"""Seconds of work after which progress is reported on stderr, at most once per this long."""


class _UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="balancekit",
        description="Simulate load-balancing strategies on a workload and compare them.",
    )
    parser.add_argument("--version", action="version", version=f"balancekit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _Parser(add_help=False)
    common.add_argument(
        "--scenario", metavar="FILE", help="a .toml or .json scenario (default: the built-in one)"
    )
    common.add_argument("--seed", type=_seed, help="override the scenario's seed")
    common.add_argument("--json", action="store_true", help="print JSON instead of tables")
    run = commands.add_parser(
        "compare", parents=[common], help="run every strategy (or some) and compare them"
    )
    run.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    run.add_argument(
        "--strategies",
        metavar="A,B,...",
        type=_names,
        help="a comma-separated subset: names or class names, in any case",
    )
    one = commands.add_parser("simulate", parents=[common], help="one strategy in detail")
    one.add_argument(
        "--strategy",
        required=True,
        type=_name,
        metavar="NAME",
        help="e.g. least-connections or LeastConnections",
    )
    commands.add_parser("strategies", help="list the strategy names")
    return parser


def _shown(text: str) -> str:
    """``text`` quoted, cut short if long: an error line stays one short line."""
    return repr(text) if len(text) <= 40 else f"{text[:20]!r}... ({len(text):,} characters)"


def _seed(text: str) -> int:
    # Checked by length first: int() of thousands of digits is slow, or refused.
    if len(text.strip()) > len(str(MAX_SEED)) + 1:
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_SEED:,} (the largest seed), got {_shown(text)}"
        )
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {_shown(text)}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {_shown(text)}")
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_SEED:,} (the largest seed), got {_shown(text)}"
        )
    return value


def _name(text: str) -> str:
    """A strategy's registry name, from that name or its class name in any case."""
    try:
        return resolve(text.strip(), strategy_names())[0]
    except UnknownStrategy as error:
        known = ", ".join(error.known)
        raise argparse.ArgumentTypeError(
            f"unknown strategy {_shown(text)}; choose from: {known}"
        ) from None


def _names(text: str) -> list[str]:
    names = [_name(name) for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"must name at least one strategy, got {_shown(text)}")
    return list(dict.fromkeys(names))  # a strategy named twice runs once


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``balancekit`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns the exit status: 0; 2 after printing one line to stderr for bad
    arguments, an unknown strategy or a bad scenario file; 1 after one line
    for any other error (with its traceback if ``BALANCEKIT_TRACEBACK=1``);
    130 when interrupted.
    """
    try:
        return _run(list(sys.argv[1:] if argv is None else argv), sys.stdout, sys.stderr)
    except (_UsageError, ScenarioError, UnknownStrategy) as error:
        print(f"balancekit: error: {error}", file=sys.stderr)
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        print(f"balancekit: error: {error.strerror or error}{where}", file=sys.stderr)
    except SystemExit as done:  # --help and --version print, then exit
        return done.code if isinstance(done.code, int) else 0
    except KeyboardInterrupt:
        print("balancekit: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        # E.g. a strategy that refuses the scenario's servers (Maglev's table
        # too small for them): the message says what; a traceback would not help.
        if os.environ.get("BALANCEKIT_TRACEBACK") == "1":
            raise
        print(f"balancekit: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 2


def _run(argv: list[str], out: TextIO, err: TextIO) -> int:
    args = _parser().parse_args(argv)
    if args.command == "strategies":
        print("\n".join(strategy_names()), file=out)
        return 0
    scenario = load_scenario(Path(args.scenario)) if args.scenario else BUILTIN_SCENARIO
    if args.seed is not None:
        scenario = scenario.with_seed(args.seed)
    blocks = _can_draw_blocks(out)
    if args.command == "simulate":
        progress = _Progress(err, 1)
        result = simulate(scenario, args.strategy, ticker=progress.tick)
        progress(result, progress.elapsed())
        if args.json:
            print(json.dumps(result.to_dict(), indent=2), file=out)
        else:
            print(render_details(scenario, result, blocks=blocks), file=out)
        return 0
    names = args.strategies or list(strategy_names())
    progress = _Progress(err, len(names))
    results = compare(scenario, names, progress=progress, ticker=progress.tick)
    if args.json:
        document = {
            "scenario": scenario.name,
            "seed": scenario.seed,
            "results": [result.to_dict() for result in results],
        }
        print(json.dumps(document, indent=2), file=out)
        return 0
    print(render_table(scenario, results, markdown=args.markdown), file=out)
    print(file=out)
    print(render_legend(scenario, results, markdown=args.markdown), file=out)
    print(file=out)
    chart = render_chart(scenario, results, blocks=blocks)
    print(f"```text\n{chart}\n```" if args.markdown else chart, file=out)
    return 0


class _Progress:
    """Progress on stderr once the work has taken ``PROGRESS_AFTER`` seconds: every
    finished run, counted from 1 (the lines of runs that ended sooner are held back and
    printed then), and within a long run at most one line per ``PROGRESS_AFTER``."""

    def __init__(self, err: TextIO, total: int, *, clock: Clock = monotonic) -> None:
        self.err = err
        self.total = total
        self.done = 0
        self.clock = clock
        self.started = clock()
        self.shown = self.started  # when the last line was printed
        self.held: list[str] = []  # finished runs, before anything is shown

    def elapsed(self) -> float:
        return self.clock() - self.started

    def tick(self, strategy: str, requests: int) -> None:
        now = self.clock()
        if now - self.started >= PROGRESS_AFTER and now - self.shown >= PROGRESS_AFTER:
            seconds = now - self.started
            where = f"[{self.done + 1}/{self.total}] {strategy}"
            self._line(f"{where}: {requests:,} requests ({seconds:.1f} s)", now)

    def __call__(self, result: SimulationResult, seconds: float) -> None:
        self.done += 1
        line = f"[{self.done}/{self.total}] {result.strategy} ({seconds:.1f} s)"
        if seconds >= PROGRESS_AFTER:
            self._line(line)
        else:
            self.held.append(line)

    def _line(self, text: str, now: float | None = None) -> None:
        self.shown = self.clock() if now is None else now
        for line in [*self.held, text]:
            print(f"balancekit: {line}", file=self.err, flush=True)
        self.held.clear()

    def __repr__(self) -> str:
        return f"<progress {self.done}/{self.total}>"


def _can_draw_blocks(out: TextIO) -> bool:
    try:
        "".join(_EIGHTHS).encode(getattr(out, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


# -- rendering ------------------------------------------------------------------

_EIGHTHS = ("", "\u258f", "\u258e", "\u258d", "\u258c", "\u258b", "\u258a", "\u2589", "\u2588")
"""Block characters of 1/8 to 8/8 of a cell's width."""
_COLUMNS = (
    ("strategy", "strategy"),
    ("req/s", "throughput (req/s)"),
    ("p50 ms", "p50 (ms)"),
    ("p95 ms", "p95 (ms)"),
    ("p99 ms", "p99 (ms)"),
    ("errors", "errors"),
    ("peak/mean", "peak/mean"),
    ("cache hit", "cache hit"),
    ("keys moved", "keys moved"),
)


def _row(result: SimulationResult) -> list[str]:
    def percent(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f} %"

    return [
        result.strategy,
        f"{result.throughput:.1f}",
        f"{1000 * result.latency_p50:.1f}",
        f"{1000 * result.latency_p95:.1f}",
        f"{1000 * result.latency_p99:.1f}",
        str(result.errors),
        f"{result.peak_to_mean:.2f}",
        percent(result.cache_hit_ratio),
        percent(result.keys_moved),
    ]


def render_table(
    scenario: Scenario, results: Sequence[SimulationResult], *, markdown: bool = False
) -> str:
    """One row per strategy: throughput, latency percentiles, errors, spread, cache, keys moved.

    Plain text aligned in columns, or a Markdown table. O(rows).
    """
    rows = [_row(result) for result in results]
    if markdown:
        lines = ["| " + " | ".join(long for _, long in _COLUMNS) + " |"]
        lines.append("| --- |" + " ---: |" * (len(_COLUMNS) - 1))
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    header = [short for short, _ in _COLUMNS]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    title = f"{scenario.name} (seed {scenario.seed}): {_summary(scenario, results)}"
    return "\n".join([title, line(header), *(line(row) for row in rows)])


_LEGEND = (
    ("req/s", "completed requests per simulated second"),
    ("p50/p95/p99 ms", "latency of completed requests, arrival to end: the median and the tails"),
    ("errors", "failed requests: a down server, a drain's deadline, or no server to take it"),
    (
        "peak/mean",
        "the busiest server's requests per unit of weight over the mean (1.00: by weight)",
    ),
    ("cache hit", "requests whose key was last served, and so cached, by the same server"),
    ("keys moved", "share of keys sent elsewhere across the first failure or drain (hashing only)"),
)
_IGNORE_WEIGHTS = ("round-robin", "jump-hash")
"""Strategies that give every server of weight > 0 the same share."""


def render_legend(
    scenario: Scenario, results: Sequence[SimulationResult], *, markdown: bool = False
) -> str:
    """What each column of :func:`render_table` means and, when the servers differ and a
    strategy that ignores weights was run, why its tail can be enormous. O(servers + rows).
    """
    lines = [(name, text) for name, text in _LEGEND]
    shown = [r.strategy for r in results if r.strategy in _IGNORE_WEIGHTS]
    servers = scenario.servers
    differ = len({(s.capacity, s.speed, s.weight) for s in servers}) > 1
    if shown and differ:
        lines.append(
            (
                " and ".join(shown),
                "give every server the same share, whatever its weight: the small and slow"
                " ones queue for the whole run, so their tail can reach seconds",
            )
        )
    if markdown:
        return "\n".join(f"- **{name}**: {text}" for name, text in lines)
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name.ljust(width)}  {text}" for name, text in lines)


def _summary(scenario: Scenario, results: Sequence[SimulationResult]) -> str:
    count = results[0].requests if results else 0
    servers = len(scenario.servers)
    return f"{count} requests, {servers} servers; latency over completed requests"


def _bar(value: float, scale: float, width: int, blocks: bool) -> str:
    cells = 0.0 if scale <= 0 else value / scale * width
    if not blocks:
        return ("#" * round(cells)).ljust(width)
    full = int(cells)
    eighth = round((cells - full) * 8)
    if eighth == 8:
        full, eighth = full + 1, 0
    return ("\u2588" * full + _EIGHTHS[eighth]).ljust(width)


def render_chart(
    scenario: Scenario,
    results: Sequence[SimulationResult],
    *,
    blocks: bool = True,
    width: int = 8,
) -> str:
    """Requests per server for each strategy, as bars; the first row is the weighted fair
    share of the same total. ``blocks=False`` draws with ``#`` only. O(rows x servers).
    """
    names = [spec.name for spec in scenario.servers]
    label = max([len("fair share"), *(len(r.strategy) for r in results)])
    cell = max(width, *(len(name) for name in names))
    total_weight = sum(spec.weight for spec in scenario.servers)
    rows: list[tuple[str, list[float]]] = []
    if results:
        total = sum(s.requests for s in results[0].servers)
        fair = [total * spec.weight / total_weight for spec in scenario.servers]
        rows.append(("fair share", fair))
    rows += [(r.strategy, [float(s.requests) for s in r.servers]) for r in results]
    scale = max((max(values) for _, values in rows), default=0.0)
    lines = ["requests per server (bar length ~ count; fair share = total x weight / sum)"]
    lines.append((" " * label + "  " + " ".join(name.ljust(cell) for name in names)).rstrip())
    for name, values in rows:
        bars = " ".join(_bar(v, scale, cell, blocks) for v in values)
        lines.append(f"{name.ljust(label)}  {bars}".rstrip())
    return "\n".join(lines)


def render_details(scenario: Scenario, result: SimulationResult, *, blocks: bool = True) -> str:
    """One strategy's run: totals, latency percentiles, a per-server table with load
    bars, and the health and drain transitions the pool reported. O(servers + transitions).
    """
    ms = 1000.0
    lines = [
        f"{result.strategy} on {scenario.name} (seed {scenario.seed})",
        f"  requests {result.requests}, completed {result.completed}, errors {result.errors}"
        f" (rejected {result.rejected}), {result.elapsed:.1f} simulated s,"
        f" {result.throughput:.1f} req/s",
        f"  latency ms: mean {result.latency_mean * ms:.1f}  p50 {result.latency_p50 * ms:.1f}"
        f"  p95 {result.latency_p95 * ms:.1f}  p99 {result.latency_p99 * ms:.1f}"
        f"  max {result.latency_max * ms:.1f}",
    ]
    extras = [f"peak/mean {result.peak_to_mean:.2f}"]
    if result.cache_hit_ratio is not None:
        extras.append(f"cache hit {100 * result.cache_hit_ratio:.1f} %")
    if result.keys_moved is not None:
        extras.append(f"keys moved {100 * result.keys_moved:.1f} %")
    lines.append("  " + "  ".join(extras))
    header = ["server", "capacity", "speed", "weight", "requests", "errors", "mean ms"]
    table = [header]
    for spec, server in zip(scenario.servers, result.servers, strict=True):
        table.append(
            [
                server.name,
                str(spec.capacity),
                f"{spec.speed:g}",
                f"{spec.weight:g}",
                str(server.requests),
                str(server.errors),
                f"{server.latency_mean * ms:.1f}",
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    scale = max((s.requests for s in result.servers), default=0)
    lines.append("")
    for row in table:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        bar = "" if row is header else _bar(float(row[4]), scale, 20, blocks)
        lines.append(("  " + "  ".join(cells) + "  " + bar).rstrip())
    if result.transitions:
        lines += ["", "  state changes:"]
        for t in result.transitions:
            lines.append(f"  {t.at:9.3f} s  {t.server}: {t.old} -> {t.new}")
    return "\n".join(lines)
