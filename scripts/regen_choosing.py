"""Regenerate the measured sections of docs/choosing.md from real `balancekit compare` runs.

    python scripts/regen_choosing.py           # rewrite the sections in place
    python scripts/regen_choosing.py --check   # exit 1 if they are out of date

Each section sits between ``<!-- BEGIN generated: NAME -->`` and
``<!-- END generated: NAME -->``; only those lines are rewritten, everything
else in the page is prose written by hand. Numbers in the page are never
edited by hand: change a scenario here, or the code, and run this script.

``--check`` compares the page with a fresh run of this checkout, whatever
strategies it has (a strategy added later changes the tables: run the script
again), and says which section differs and where. The figures do not depend
on the machine or on ``--jobs``: every run is a pure function of its seed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

PAGE = Path(__file__).resolve().parent.parent / "docs" / "choosing.md"

HEAVY_TAILS = {
    "name": "heavy-tails",
    "seed": 1,
    "rate": 110.0,
    "requests": 4000,
    "service": {"distribution": "lognormal", "mean": 0.05, "sigma": 1.5},
    "health": {"enabled": False},
    "servers": [{"name": f"s{i}", "capacity": 1} for i in range(1, 9)],
}
"""Eight identical one-slot servers at about 69 % utilisation, no keys: only the
request sizes differ, which is where round robin and least connections part ways."""

HOT_KEY = {
    "name": "hot-key",
    "seed": 4,
    "rate": 400.0,
    "requests": 3000,
    "service": {"distribution": "exponential", "mean": 0.05},
    "keys": {"distribution": "zipf", "universe": 1000, "s": 1.5},
    "cache": {"miss_factor": 2.0},
    "health": {"enabled": False},
    "servers": [{"name": f"s{i}", "capacity": 8} for i in range(1, 9)],
}
"""Eight identical servers, one key carrying about 38 % of the requests."""

LOAD_AWARE = (
    "round-robin,weighted-round-robin,least-connections,power-of-two-choices,least-response-time"
)
HASHING = "consistent-hash,bounded-load-hash,maglev,rendezvous,jump-hash,ip-hash"


def balancekit(*args: str) -> str:
    """Run the real command with this interpreter and return its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "balancekit", *args],
        capture_output=True,  # stderr holds progress lines, or the reason it failed
        text=True,
        encoding="utf-8",
    )
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or ["no message"]
        raise SystemExit(f"balancekit {' '.join(args)} failed: {reason[0]}")
    return done.stdout.rstrip("\n")


def with_scenario(scenario: dict[str, object], *args: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{scenario['name']}.json"
        path.write_text(json.dumps(scenario, indent=2))
        return balancekit("compare", "--scenario", str(path), "--markdown", *args)


def known(names: str) -> str:
    """Keep the strategies this checkout has, so the script runs while strategies land."""
    available = set(balancekit("strategies").split())
    return ",".join(name for name in names.split(",") if name in available)


def sections() -> dict[str, str]:
    scenario_json = "```json\n{}\n```\n\n"
    return {
        "builtin": "```console\n$ balancekit compare --markdown\n```\n\n"
        + balancekit("compare", "--markdown"),
        # Ten seeds: a heavy tail makes single seeds of round robin vary tenfold.
        "heavy-tails": scenario_json.format(json.dumps(HEAVY_TAILS, indent=2))
        + with_scenario(HEAVY_TAILS, "--strategies", known(LOAD_AWARE), "--seeds", "10"),
        "hot-key": scenario_json.format(json.dumps(HOT_KEY, indent=2))
        + with_scenario(HOT_KEY, "--strategies", known(HASHING + ",least-connections")),
    }


def rewrite(text: str, generated: dict[str, str]) -> str:
    """``text`` with each marked section replaced; every section must be present once."""
    for name, body in generated.items():
        begin = f"<!-- BEGIN generated: {name} -->\n"
        end = f"<!-- END generated: {name} -->"
        start = text.find(begin)
        stop = text.find(end, start)
        if text.count(begin) != 1 or text.count(end) != 1 or start < 0 or stop < 0:
            raise SystemExit(f"{PAGE}: expected one section {name!r} between its two markers")
        text = text[: start + len(begin)] + body + "\n" + text[stop:]
    return text


def first_difference(old: str, new: str) -> str:
    """Where the page and a fresh run first part: the line number and both lines."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    for number, (was, now) in enumerate(zip(old_lines, new_lines, strict=False), start=1):
        if was != now:
            return f"line {number}:\n  page:  {was}\n  fresh: {now}"
    return f"the page has {len(old_lines)} lines, a fresh run {len(new_lines)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    args = parser.parse_args()
    old = PAGE.read_text(encoding="utf-8")
    new = rewrite(old, sections())
    if args.check:
        if new != old:
            print(f"{PAGE} is out of date: run python scripts/regen_choosing.py", file=sys.stderr)
            print(first_difference(old, new), file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new, encoding="utf-8")
    print(f"rewrote the generated sections of {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
