"""Scenario files: a :class:`~balancekit.sim.scenario.Scenario` loaded from TOML or JSON, and
CSV traces.

Each table and field of the file maps to a spec class of
:mod:`balancekit.sim.scenario`; an unknown, missing or bad field raises
:class:`~balancekit.sim.scenario.ScenarioError` naming its path in the file, such
as ``servers[2].capacity``. The format is described in docs/simulator.md.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from .scenario import (
    CacheSpec,
    DrainSpec,
    FailureSpec,
    HealthSpec,
    KeySpec,
    Scenario,
    ScenarioError,
    ServerSpec,
    ServiceSpec,
    TraceRow,
    _bad,
    _trace_rows,
)

__all__ = ["load_scenario", "read_trace", "scenario_from_dict"]

_TABLES: dict[str, type[Any]] = {
    "service": ServiceSpec,
    "keys": KeySpec,
    "cache": CacheSpec,
    "health": HealthSpec,
}
_ARRAYS: dict[str, type[Any]] = {
    "servers": ServerSpec,
    "failures": FailureSpec,
    "drains": DrainSpec,
}
_SCALARS = (
    "rate",
    "trace",
    "requests",
    "duration",
    "slow_start",
    "panic_threshold",
    "seed",
    "name",
)


def _build(kind: type[Any], data: object, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise _bad(where, "a table of fields", data)
    known = [f.name for f in fields(kind)]
    for key in data:
        if key not in known:
            raise ScenarioError(
                f"{where}.{key}", f"is not a known field (expected one of: {', '.join(known)})"
            )
    try:
        return kind(**data)
    except TypeError:  # a required field is missing
        missing = [f.name for f in fields(kind) if f.name not in data]
        raise ScenarioError(f"{where}.{missing[0]}", "is required") from None
    except ScenarioError as error:
        raise error.within(where) from None


def scenario_from_dict(data: Mapping[str, Any], *, base: Path | None = None) -> Scenario:
    """Build a scenario from the parsed contents of a scenario file. O(size of the data).

    ``trace`` is a list of ``[time, key, service]`` rows, or the path of a CSV
    file of such rows relative to ``base`` (the scenario file's directory).

    >>> scenario_from_dict({"rate": 5, "requests": 10, "servers": [{"name": "a"}]}).rate
    5.0
    >>> scenario_from_dict({"rate": 5, "requests": 10, "servers": [{"name": "a", "speed": 0}]})
    Traceback (most recent call last):
    ...
    balancekit.sim.scenario.ScenarioError: servers[0].speed must be a finite number > 0, got 0

    Raises:
        ScenarioError: an unknown or missing field or a bad value, named by its path.
        OSError: a trace file cannot be read.
    """
    if not isinstance(data, Mapping):
        raise _bad("scenario", "a table of fields", data)
    allowed = (*_SCALARS, *_TABLES, *_ARRAYS)
    for key in data:
        if key not in allowed:
            raise ScenarioError(
                key, f"is not a known field (expected one of: {', '.join(allowed)})"
            )
    options: dict[str, Any] = {k: data[k] for k in _SCALARS if k in data}
    for name, kind in _TABLES.items():
        if name in data:
            options[name] = _build(kind, data[name], name)
    for name, kind in _ARRAYS.items():
        if name in data:
            items = data[name]
            if not isinstance(items, list):
                raise _bad(name, "a list of tables", items)
            options[name] = tuple(
                _build(kind, item, f"{name}[{i}]") for i, item in enumerate(items)
            )
    if "servers" not in options:
        raise ScenarioError("servers", "is required")
    trace = options.get("trace")
    if isinstance(trace, str):
        options["trace"] = read_trace((base or Path.cwd()) / trace)
    return Scenario(**options)


def read_trace(path: Path) -> tuple[TraceRow, ...]:
    """Read a CSV trace of ``time,key,service`` rows (a ``time`` header line and ``#``
    comments allowed; an empty key or service means "drawn"). O(rows).

    Raises:
        ScenarioError: an empty trace or a malformed row, named by its line.
        OSError: the file cannot be read.
    """
    rows: list[tuple[str, object]] = []
    with open(path, newline="", encoding="utf-8") as handle:
        for number, cells in enumerate(csv.reader(_utf8_lines(handle, path)), start=1):
            if not cells or cells[0].lstrip().startswith("#"):
                continue
            if not rows and cells[0].strip().lower() == "time":
                continue  # the header
            here = f"{path.name} line {number}"
            if len(cells) != 3:
                raise _bad(here, "a time,key,service row", ",".join(cells))
            time, key, service = (cell.strip() for cell in cells)
            seconds = _parse_float(f"{here}.service", service) if service else None
            rows.append((here, [_parse_float(f"{here}.time", time), key, seconds]))
    if not rows:
        raise _bad(path.name, "a trace of at least one row", "")
    return _trace_rows(rows)


def _utf8_lines(handle: Iterable[str], path: Path) -> Iterator[str]:
    """The file's lines; a byte that is not UTF-8 is a ScenarioError naming the file."""
    try:
        yield from handle
    except UnicodeDecodeError as error:
        raise _not_utf8(path, error) from None


def _not_utf8(path: Path, error: UnicodeDecodeError) -> ScenarioError:
    return ScenarioError("", f"{path.name} is not UTF-8 text (byte {error.start}: {error.reason})")


def _parse_float(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _bad(name, "a number", text) from None


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario from a ``.toml`` or ``.json`` file. O(file size).

    Raises:
        ScenarioError: malformed file, unknown suffix, TOML on Python 3.10, or
            a bad field. OSError: the file (or its trace file) cannot be read.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise _bad("scenario file", "a .toml or .json file", str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise _not_utf8(path, error) from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ScenarioError("", f"malformed JSON in {path.name}: {error}") from None
    else:
        data = _parse_toml(text, path.name)
    return scenario_from_dict(data, base=path.parent)


def _parse_toml(text: str, name: str) -> Any:
    if sys.version_info < (3, 11):
        raise ScenarioError(
            "", "TOML scenario files need Python 3.11 or later (tomllib); use a .json file"
        )
    else:
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ScenarioError("", f"malformed TOML in {name}: {error}") from None
