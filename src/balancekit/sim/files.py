"""Scenario files: a :class:`~balancekit.sim.scenario.Scenario` loaded from TOML or JSON, and
CSV traces.

Each table and field of the file maps to a spec class of
:mod:`balancekit.sim.scenario`; an unknown, missing or bad field raises
:class:`~balancekit.sim.scenario.ScenarioError` naming its path in the file, such
as ``servers[2].capacity``. The format is described in docs/simulator.md.

Files are read only when they are regular files of at most ``MAX_FILE_BYTES``
(a FIFO, a device such as ``/dev/zero`` or a huge file is refused before
anything is read), and whatever is in them stays cheap to refuse: integers of
more than ``MAX_DIGITS`` digits are not converted, too deep a nesting is one
error, and an error about a trace file never shows its content.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from ._shown import LongNumber
from .scenario import (
    MAX_REQUESTS,
    MAX_SERVERS,
    CacheSpec,
    DrainSpec,
    FailureSpec,
    HealthSpec,
    KeySpec,
    RetryBudgetSpec,
    Scenario,
    ScenarioError,
    ServerSpec,
    ServiceSpec,
    TraceRow,
    _bad,
    _trace_rows,
)

__all__ = ["MAX_DIGITS", "MAX_FILE_BYTES", "load_scenario", "read_trace", "scenario_from_dict"]

MAX_FILE_BYTES = 32 * 1024 * 1024
"""The largest scenario or trace file read (32 MiB: a trace of about a million requests,
more than a pure-Python simulation runs in a few minutes)."""

MAX_DIGITS = 100
"""Integers with more digits than this are not converted (no valid field needs more than
20): reading one of thousands of digits costs seconds, or fails past Python's limit."""

_TABLES: dict[str, type[Any]] = {
    "service": ServiceSpec,
    "keys": KeySpec,
    "cache": CacheSpec,
    "health": HealthSpec,
    "retry_budget": RetryBudgetSpec,
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
    "attempts",
    "max_in_flight",
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


def _read_text(path: Path) -> str:
    """The UTF-8 text of ``path``, if it is a regular file of at most ``MAX_FILE_BYTES``.

    Opened without blocking and checked on the open file, so a FIFO never
    hangs and a device is never read. O(file size).

    Raises:
        ScenarioError: not a regular file, too large, or not UTF-8.
        OSError: it cannot be opened (missing, no permission).
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise ScenarioError("", f"{path.name} is not a regular file")
    with open(descriptor, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        limit = f"{MAX_FILE_BYTES:,} bytes (the limit on scenario and trace files)"
        raise ScenarioError("", f"{path.name} is larger than {limit}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _not_utf8(path, error) from None


def read_trace(path: Path) -> tuple[TraceRow, ...]:
    """Read a CSV trace of ``time,key,service`` rows (a ``time`` header line and ``#``
    comments allowed; an empty key or service means "drawn"). O(rows).

    An error names the line and what is wrong with it, never what it holds: the
    file may be anything (``/etc/passwd``, say) rather than a trace.

    Raises:
        ScenarioError: not a regular file of at most ``MAX_FILE_BYTES``, not UTF-8,
            an empty trace, more than ``MAX_REQUESTS`` rows, or a malformed row.
        OSError: the file cannot be opened.
    """
    rows: list[tuple[str, object]] = []
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        for cells in reader:
            here = f"{path.name} line {reader.line_num}"
            if not cells or cells[0].lstrip().startswith("#"):
                continue
            if not rows and cells[0].strip().lower() == "time":
                continue  # the header
            if len(cells) != 3:
                count = f"{len(cells)} cell{'s' * (len(cells) != 1)}"
                raise ScenarioError(here, f"must be a time,key,service row: it has {count}")
            if len(rows) == MAX_REQUESTS:
                limit = f"the limit of {MAX_REQUESTS:,} requests in one run"
                raise ScenarioError(path.name, f"must have at most {MAX_REQUESTS:,} rows ({limit})")
            time, key, service = (cell.strip() for cell in cells)
            seconds = _parse_float(f"{here}.service", service) if service else None
            rows.append((here, [_parse_float(f"{here}.time", time), key, seconds]))
    except csv.Error as error:  # such as a field over csv's size limit; says no content
        raise ScenarioError(
            f"{path.name} line {reader.line_num}", f"is not CSV ({error})"
        ) from None
    if not rows:
        raise ScenarioError(path.name, "must be a trace of at least one row")
    try:
        return _trace_rows(rows)
    except ScenarioError as error:
        raise error.without_value() from None


def _not_utf8(path: Path, error: UnicodeDecodeError) -> ScenarioError:
    return ScenarioError("", f"{path.name} is not UTF-8 text (byte {error.start}: {error.reason})")


def _parse_float(name: str, text: str) -> float:
    """``text`` as a float; the error does not show ``text`` (it comes from a trace file)."""
    try:
        return float(text)
    except ValueError:
        raise ScenarioError(name, "must be a number") from None


def _parse_int(text: str) -> int | LongNumber:
    """A JSON integer, or a :class:`LongNumber` past ``MAX_DIGITS`` digits. O(len(text))."""
    digits = len(text.lstrip("-"))
    return LongNumber(digits) if digits > MAX_DIGITS else int(text)


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario from a ``.toml`` or ``.json`` file. O(file size).

    Raises:
        ScenarioError: not a regular file of at most ``MAX_FILE_BYTES``, a
            malformed file, one nested too deeply, an integer too long to read,
            an unknown suffix, TOML on Python 3.10, or a bad field.
        OSError: the file (or its trace file) cannot be opened.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise _bad("scenario file", "a .toml or .json file", str(path))
    text = _read_text(path)
    try:
        parse = _parse_json if suffix == ".json" else _parse_toml
        data = parse(text, path.name)
    except RecursionError:
        # Both parsers recurse once per level; a scenario needs three levels.
        raise ScenarioError("", f"{path.name} is nested too deeply to be a scenario") from None
    servers = data.get("servers") if isinstance(data, dict) else None
    if isinstance(servers, list) and len(servers) > MAX_SERVERS:
        # Refused before thousands of servers are built and checked one by one.
        limit = f"at most {MAX_SERVERS:,} (the limit on servers in a scenario)"
        raise ScenarioError("servers", f"must be {limit}", f"{len(servers):,}")
    return scenario_from_dict(data, base=path.parent)


def _parse_json(text: str, name: str) -> Any:
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as error:
        raise ScenarioError("", f"malformed JSON in {name}: {error}") from None


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
        except ValueError:
            # tomllib converts integers itself: past Python's limit of digits it fails.
            raise ScenarioError(
                "", f"{name} holds an integer too long to read (no field takes one)"
            ) from None
