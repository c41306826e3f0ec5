"""Run every benchmark module (``benchmarks/bench_*.py``) and print one table.

    python benchmarks/run.py                 # everything
    python benchmarks/run.py --only load     # modules whose name contains "load"
    python benchmarks/run.py --quick         # fewer operations, for a smoke run
    python benchmarks/run.py --markdown      # the table as Markdown, for docs/

Each module exposes ``run(quick: bool) -> list[Row]``. Peers that are not
installed (``pip install -e ".[benchmark]"``) are skipped with a note.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import Row


def _value(value: float) -> str:
    # Ratios and small counts need their decimals; nanoseconds do not.
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def table(rows: list[Row], markdown: bool) -> str:
    header = ["group", "case", "n", "impl", "value", "unit"]
    body = [[r.group, r.case, f"{r.n:,}", r.impl, _value(r.value), r.unit] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in column) for column in zip(header, *body, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 4 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*cells) for cells in [header, *body])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run modules whose name contains this")
    parser.add_argument("--quick", action="store_true", help="fewer operations")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent
    rows: list[Row] = []
    for path in sorted(here.glob("bench_*.py")):
        if args.only in path.stem:
            print(f"running {path.stem} ...", file=sys.stderr)
            rows.extend(importlib.import_module(path.stem).run(args.quick))
    print(f"Python {platform.python_version()} on {platform.machine()}, median of runs")
    print(table(rows, args.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
