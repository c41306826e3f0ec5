"""The ``balancekit`` command: ``compare`` strategies on a scenario, or ``simulate`` one,
over several seeds (``--seeds``, in ``--jobs`` processes).

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from ._version import __version__
from .clock import Clock, monotonic
from .sim import SimulationResult
from .sim.files import load_scenario
from .sim.report import (
    can_encode,
    render_chart,
    render_details,
    render_legend,
    render_seeds,
    render_table,
)
from .sim.scenario import BUILTIN_SCENARIO, MAX_SEED, ScenarioError
from .sim.seeds import DEFAULT_SEEDS, MAX_JOBS, MAX_SEEDS, compare_seeds, default_jobs
from .strategies.registry import UnknownStrategy, resolve, strategy_names

__all__ = ["main", "render_chart", "render_details", "render_legend", "render_table"]

PROGRESS_AFTER = 1.0
"""Seconds of work after which progress is reported on stderr, at most once per this long."""


class _UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


_JSON_HELP = "print JSON instead of tables"


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
    common.add_argument(
        "--seed",
        type=_integer(0, MAX_SEED, "the largest seed"),
        help="the first seed (default: the scenario's)",
    )
    common.add_argument(
        "--seeds",
        type=_integer(1, MAX_SEEDS, "the limit of seeds"),
        default=DEFAULT_SEEDS,
        metavar="N",
        help=f"run N seeds: means with 95 %% confidence intervals (default {DEFAULT_SEEDS})",
    )
    common.add_argument(
        "--jobs",
        type=_integer(1, MAX_JOBS, "the limit of processes"),
        metavar="J",
        help="run J simulations at once, in processes (default: this machine's cores)",
    )
    run = commands.add_parser(
        "compare", parents=[common], help="run every strategy (or some) and compare them"
    )
    # One output format: JSON has no Markdown form, and silently preferring one hides the typo.
    output = run.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help=_JSON_HELP)
    output.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    run.add_argument(
        "--strategies",
        metavar="A,B,...",
        type=_names,
        help="a comma-separated subset: names or class names, in any case",
    )
    one = commands.add_parser("simulate", parents=[common], help="one strategy in detail")
    one.add_argument("--json", action="store_true", help=_JSON_HELP)
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


def _integer(low: int, high: int, limit: str) -> Callable[[str], int]:
    """A parser of integers in [``low``, ``high``]; ``limit`` names the upper bound."""

    def parse(text: str) -> int:
        stripped = text.strip()
        too_low = argparse.ArgumentTypeError(f"must be an integer >= {low}, got {_shown(text)}")
        too_high = argparse.ArgumentTypeError(
            f"must be at most {high:,} ({limit}), got {_shown(text)}"
        )
        if len(stripped) > len(str(high)) + 1:  # never int() of thousands of digits
            raise too_high if stripped.lstrip("+").isdigit() else too_low
        try:
            value = int(stripped)
        except ValueError:
            raise too_low from None
        if value < low:
            raise too_low
        if value > high:
            raise too_high
        return value

    return parse


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
    if scenario.seed + args.seeds - 1 > MAX_SEED:
        raise _UsageError(
            f"argument --seeds: must be at most {MAX_SEED - scenario.seed + 1:,} from seed"
            f" {scenario.seed:,} (the largest seed is 2**64 - 1), got {args.seeds}"
        )
    jobs = default_jobs() if args.jobs is None else args.jobs
    fancy = can_encode(getattr(out, "encoding", None))
    names = [args.strategy] if args.command == "simulate" else args.strategies
    names = names or list(strategy_names())
    by_seed = args.command == "simulate"
    progress = _Progress(err, len(names) * (args.seeds if by_seed else 1), args.seeds, by_seed)
    comparison = compare_seeds(
        scenario,
        names,
        seeds=args.seeds,
        jobs=jobs,
        progress=progress,
        ticker=progress.tick if jobs == 1 else None,
    )
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2), file=out)
        return 0
    if by_seed:
        first = comparison.strategies[0].runs[0]
        print(render_details(scenario, first, blocks=fancy), file=out)
        if args.seeds > 1:
            print(file=out)
            print(render_seeds(comparison, ascii=not fancy), file=out)
        return 0
    print(render_table(comparison, markdown=args.markdown, ascii=not fancy), file=out)
    print(file=out)
    print(render_legend(comparison, markdown=args.markdown), file=out)
    print(file=out)
    chart = render_chart(scenario, comparison, blocks=fancy)
    print(f"```text\n{chart}\n```" if args.markdown else chart, file=out)
    return 0


class _Progress:
    """Progress on stderr once the work has taken ``PROGRESS_AFTER`` seconds: every
    finished step (a strategy over all its seeds, or with ``by_seed`` one seed),
    counted from 1 (the lines of steps that ended sooner are held back and printed
    then), and within a long run at most one line per ``PROGRESS_AFTER``."""

    def __init__(
        self,
        err: TextIO,
        total: int,
        seeds: int = 1,
        by_seed: bool = False,
        *,
        clock: Clock = monotonic,
    ) -> None:
        self.err = err
        self.total = total
        self.seeds = 1 if by_seed else seeds
        self.by_seed = by_seed
        self.done = 0
        self.runs: dict[str, int] = {}  # runs ended, per strategy
        self.clock = clock
        self.started = clock()
        self.shown = self.started  # when the last line was printed
        self.held: list[str] = []  # steps that ended before anything was shown

    def tick(self, strategy: str, requests: int) -> None:
        now = self.clock()
        if now - self.started >= PROGRESS_AFTER and now - self.shown >= PROGRESS_AFTER:
            seconds = now - self.started
            where = f"[{self.done + 1}/{self.total}] {strategy}"
            self._line(f"{where}: {requests:,} requests ({seconds:.1f} s)", now)

    def __call__(self, result: SimulationResult) -> None:
        runs = self.runs[result.strategy] = self.runs.get(result.strategy, 0) + 1
        if runs % self.seeds:
            return  # the strategy still has seeds to run
        self.done += 1
        now = self.clock()
        what = f"{result.strategy} seed {result.seed}" if self.by_seed else result.strategy
        if self.seeds > 1:
            what += f", {self.seeds} seeds"
        line = f"[{self.done}/{self.total}] {what} ({now - self.started:.1f} s)"
        if now - self.started >= PROGRESS_AFTER:
            self._line(line, now)
        else:
            self.held.append(line)

    def _line(self, text: str, now: float) -> None:
        self.shown = now
        for line in [*self.held, text]:
            print(f"balancekit: {line}", file=self.err, flush=True)
        self.held.clear()

    def __repr__(self) -> str:
        return f"<progress {self.done}/{self.total}>"
