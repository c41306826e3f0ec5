"""What ``balancekit`` prints: the comparison table with its legend, the requests-per-server
chart, and one run in detail. Plain text aligned in columns, or Markdown.

Every function returns a string and prints nothing; all are O(rows x columns).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .results import SimulationResult
from .scenario import Scenario
from .seeds import Comparison, Figure, StrategySummary

__all__ = [
    "can_encode",
    "render_chart",
    "render_details",
    "render_legend",
    "render_seeds",
    "render_table",
]

_EIGHTHS = ("", "\u258f", "\u258e", "\u258d", "\u258c", "\u258b", "\u258a", "\u2589", "\u2588")
"""Block characters of 1/8 to 8/8 of a cell's width."""


def can_encode(encoding: str | None) -> bool:
    """Whether text in ``encoding`` can hold the chart's blocks and the ``±`` sign. O(1).

    >>> can_encode("utf-8"), can_encode("ascii")
    (True, False)
    """
    try:
        ("".join(_EIGHTHS) + "±").encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class _Column(NamedTuple):
    metric: str  # the SimulationResult attribute, as in seeds.METRICS
    short: str  # the plain-text header
    long: str  # the Markdown header
    scale: float
    digits: int
    unit: str = ""


_COLUMNS = (
    _Column("throughput", "req/s", "throughput (req/s)", 1.0, 1),
    _Column("latency_p50", "p50 ms", "p50 (ms)", 1000.0, 1),
    _Column("latency_p95", "p95 ms", "p95 (ms)", 1000.0, 1),
    _Column("latency_p99", "p99 ms", "p99 (ms)", 1000.0, 1),
    _Column("errors", "errors", "errors", 1.0, 1),
    _Column("peak_to_mean", "peak/mean", "peak/mean", 1.0, 2),
    _Column("cache_hit_ratio", "cache hit", "cache hit", 100.0, 1, " %"),
    _Column("keys_moved", "keys moved", "keys moved", 100.0, 1, " %"),
)
_RETRIES = _Column("retries", "retries", "retries", 1.0, 1)
_REFUSED = _Column("retries_refused", "refused", "retries refused", 1.0, 1)
_OVERFLOWS = _Column("overflows", "overflows", "overflows", 1.0, 1)
_COUNTS = {"errors", "retries", "retries_refused", "overflows"}
"""Columns of whole numbers: shown without decimals for one seed."""


def _columns(scenario: Scenario) -> tuple[_Column, ...]:
    """The columns for ``scenario``: retries (and the budget's refusals) only when its
    clients retry, overflows only under a ``max_in_flight`` cap; elsewhere they are 0."""
    extra = []
    if scenario.attempts > 1:
        extra.append(_RETRIES)
        if scenario.retry_budget.enabled:
            extra.append(_REFUSED)
    if scenario.max_in_flight is not None:
        extra.append(_OVERFLOWS)
    after_errors = [c.metric for c in _COLUMNS].index("errors") + 1
    return (*_COLUMNS[:after_errors], *extra, *_COLUMNS[after_errors:])


def _cell(column: _Column, figure: Figure, seeds: int, plus_minus: str) -> str:
    if figure.interval is None:
        return "-"
    digits = 0 if column.metric in _COUNTS and seeds == 1 else column.digits
    mean = figure.interval.mean * column.scale
    text = f"{mean:.{digits}f}"
    if seeds > 1:
        text += f"{plus_minus}{figure.interval.half_width * column.scale:.{digits}f}"
    return text + column.unit


def _title(comparison: Comparison, plus_minus: str) -> str:
    seeds = comparison.seeds
    runs = [run for summary in comparison.strategies for run in summary.runs]
    requests = sum(run.requests for run in runs) / len(runs) if runs else 0
    servers = len(comparison.scenario.servers)
    name = comparison.scenario.name
    if len(seeds) == 1:
        return f"{name} (seed {seeds[0]}): {requests:,.0f} requests, {servers} servers"
    confidence = f"{100 * comparison.confidence:g} %"
    return (
        f"{name}, seeds {seeds[0]}-{seeds[-1]}: mean {plus_minus.strip()} {confidence} confidence"
        " interval over"
        f" {len(seeds)} seeds (Student's t); about {requests:,.0f} requests per run,"
        f" {servers} servers"
    )


def render_table(comparison: Comparison, *, markdown: bool = False, ascii: bool = False) -> str:
    """One row per strategy: throughput, latency percentiles, errors, spread, cache hits and
    keys moved, each a mean ``± half-width`` over the seeds; the best of each column is
    marked ``*`` (bold in Markdown) and those whose interval overlaps the best's ``~``
    (italic). ``ascii`` writes ``+-`` for ``±``. Retries, retries refused and overflows
    get columns only in a scenario where they can happen.
    """
    seeds = len(comparison.seeds)
    columns = _columns(comparison.scenario)
    plus_minus = "+-" if ascii else "±"
    if markdown:
        plus_minus = f" {plus_minus} "
    rows = []
    for summary in comparison.strategies:
        row = [summary.strategy]
        for column in columns:
            figure = summary.figures[column.metric]
            text = _cell(column, figure, seeds, plus_minus)
            if markdown:
                text = f"**{text}**" if figure.best else f"*{text}*" if figure.tied else text
            else:
                text += " *" if figure.best else " ~" if figure.tied else "  "
            row.append(text)
        rows.append(row)
    title = _title(comparison, plus_minus)
    if markdown:
        lines = [title + ".", ""]
        lines.append("| strategy | " + " | ".join(c.long for c in columns) + " |")
        lines.append("| --- |" + " ---: |" * len(columns))
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    header = ["strategy", *(c.short + "  " for c in columns)]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    return "\n".join([title, line(header), *(line(row) for row in rows)])


_LEGEND = (
    ("req/s", "completed requests per simulated second"),
    ("p50/p95/p99 ms", "latency of completed requests, arrival to end: the median and the tails"),
    ("errors", "failed requests: a down server, a drain's deadline, or no server to take it"),
    ("peak/mean", "the busiest server's requests per unit of weight over the mean (1.00: even)"),
    ("cache hit", "requests whose key was last served, and so cached, by the same server"),
    ("keys moved", "share of keys sent elsewhere across the first failure or drain (hashing only)"),
)
_EXPLAINED = {
    "retries": "tries after a request's first, each on a server it had not tried; errors"
    " count the requests whose every try failed",
    "refused": "retries the retry budget refused: those requests failed at once",
    "overflows": "requests refused because every eligible server had max_in_flight open"
    " (counted in errors)",
}
_IGNORE_WEIGHTS = {
    "round-robin": "round robin",
    "jump-hash": "jump hash",
}
"""Strategies that give every server of weight > 0 the same share in the simulator."""

_LEARNS_WEIGHTS = {
    "utilization-round-robin": "Utilization round robin ignores the static weights and learns"
    " each server's from the load reports the simulated servers send, but a weight counts only"
    " after its blackout (10 s of reports): until then it shares round robin's queues, hence"
    " its tail.",
}
"""Strategies whose weights come from the servers' reports, so their tail starts as round
robin's: each with the sentence that says so."""


def render_legend(comparison: Comparison, *, markdown: bool = False) -> str:
    """What each column and mark of :func:`render_table` means and, when the servers differ
    and a strategy that ignores weights was run, why its tail can be enormous.
    """
    lines = list(_LEGEND)
    shown_columns = {c.short for c in _columns(comparison.scenario)}
    at = next(i for i, (name, _) in enumerate(lines) if name == "errors") + 1
    lines[at:at] = [(name, text) for name, text in _EXPLAINED.items() if name in shown_columns]
    if len(comparison.seeds) > 1:
        best, tied = ("**bold**", "*italic*") if markdown else ("*", "~")
        lines.append(
            (
                "marks",
                f"{best}: the best of its column; {tied}: its interval overlaps the best's,"
                " so the two are not shown to differ (no marks where all overlap)",
            )
        )
    if markdown:
        text = "\n".join(f"- **{name}**: {text}" for name, text in lines)
    else:
        width = max(len(name) for name, _ in lines)
        text = "\n".join(f"{name.ljust(width)}  {text}" for name, text in lines)
    shown = [
        _IGNORE_WEIGHTS[s.strategy] for s in comparison.strategies if s.strategy in _IGNORE_WEIGHTS
    ]
    learners = [
        _LEARNS_WEIGHTS[s.strategy] for s in comparison.strategies if s.strategy in _LEARNS_WEIGHTS
    ]
    servers = comparison.scenario.servers
    if len({(s.capacity, s.speed, s.weight) for s in servers}) <= 1:
        return text  # equal servers: an equal share is the right one
    why = []
    if shown:
        names = ", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else shown[0]
        names = names[0].upper() + names[1:]
        why.append(
            f"{names} {'gives' if len(shown) == 1 else 'give'} every server the same share,"
            " whatever its weight: with servers that differ, the small and slow ones queue for"
            " the whole run, so their tail can reach seconds."
        )
    return "\n\n".join([text, " ".join(why + learners)]) if why or learners else text


def _bar(value: float, scale: float, width: int, blocks: bool) -> str:
    cells = 0.0 if scale <= 0 else value / scale * width
    if not blocks:
        return ("#" * round(cells)).ljust(width)
    full = int(cells)
    eighth = round((cells - full) * 8)
    if eighth == 8:
        full, eighth = full + 1, 0
    return ("\u2588" * full + _EIGHTHS[eighth]).ljust(width)


def _mean_counts(summary: StrategySummary) -> list[float]:
    runs = summary.runs
    return [
        sum(run.servers[i].requests for run in runs) / len(runs)
        for i in range(len(runs[0].servers))
    ]


def render_chart(
    scenario: Scenario,
    results: Sequence[SimulationResult] | Comparison,
    *,
    blocks: bool = True,
    width: int = 8,
) -> str:
    """Requests per server for each strategy (the mean over the seeds of a
    :class:`Comparison`), as bars; the first row is the weighted fair share of the same
    total. ``blocks=False`` draws with ``#`` only.
    """
    if isinstance(results, Comparison):
        rows = [(s.strategy, _mean_counts(s)) for s in results.strategies]
    else:
        rows = [(r.strategy, [float(s.requests) for s in r.servers]) for r in results]
    names = [spec.name for spec in scenario.servers]
    label = max([len("fair share"), *(len(name) for name, _ in rows)])
    cell = max(width, *(len(name) for name in names))
    total_weight = sum(spec.weight for spec in scenario.servers)
    if rows:
        total = sum(rows[0][1])
        rows.insert(0, ("fair share", [total * s.weight / total_weight for s in scenario.servers]))
    scale = max((max(values) for _, values in rows), default=0.0)
    lines = ["requests per server (bar length ~ count; fair share = total x weight / sum)"]
    lines.append((" " * label + "  " + " ".join(name.ljust(cell) for name in names)).rstrip())
    for name, values in rows:
        bars = " ".join(_bar(v, scale, cell, blocks) for v in values)
        lines.append(f"{name.ljust(label)}  {bars}".rstrip())
    return "\n".join(lines)


def render_details(scenario: Scenario, result: SimulationResult, *, blocks: bool = True) -> str:
    """One strategy's run: totals, latency percentiles, a per-server table with load
    bars, and the health and drain transitions the pool reported.
    """
    ms = 1000.0
    lines = [
        f"{result.strategy} on {scenario.name} (seed {result.seed})",
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
    retried = [f"retries {result.retries}"] if scenario.attempts > 1 else []
    if scenario.attempts > 1 and scenario.retry_budget.enabled:
        retried.append(f"refused by the retry budget {result.retries_refused}")
    if scenario.max_in_flight is not None:
        retried.append(f"overflows {result.overflows}")
    if retried:
        lines.append("  " + ", ".join(retried))
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


def render_seeds(comparison: Comparison, *, ascii: bool = False) -> str:
    """Each figure of a one-strategy :class:`Comparison` as mean ± half-width, with the
    value of every seed: how much a single run can be trusted.
    """
    plus_minus = "+-" if ascii else "±"
    lines = []
    for summary in comparison.strategies:
        seeds = comparison.seeds
        lines.append(
            f"{summary.strategy} over seeds {seeds[0]}-{seeds[-1]}: mean {plus_minus}"
            f" {100 * comparison.confidence:g} % confidence interval (Student's t), per seed"
        )
        for column in _columns(comparison.scenario):
            figure = summary.figures[column.metric]
            if figure.interval is None:
                continue
            each = " ".join(f"{v * column.scale:.{column.digits}f}" for v in figure.interval.values)
            cell = _cell(column, figure, len(seeds), plus_minus)
            lines.append(f"  {column.short:<10}  {cell:>20}   {each}")
    return "\n".join(lines)
