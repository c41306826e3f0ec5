"""Argument checks, in one place: every error names the argument and the value it was given.

Strategies, components and the Pool check their arguments here, so that one
kind of mistake gets one wording everywhere and no component imports another
layer for its checks. ``bool`` is never a number here, although Python makes
it an ``int``; a huge ``int`` is a ``ValueError``, never an ``OverflowError``,
and its message stays printable (:func:`show`).

>>> check_positive("interval", 5)
5.0
>>> check_count("healthy_threshold", 0)
Traceback (most recent call last):
...
ValueError: healthy_threshold must be an int >= 1, got 0
>>> check_range("panic_threshold", 10**400, 0.0, 1.0)
Traceback (most recent call last):
...
ValueError: panic_threshold must be a finite number in [0, 1], got <int of 1329 bits>

Every check is O(1) except those of collections, which are O(n).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from .errors import DuplicateServer

__all__ = [
    "MAX_SECONDS",
    "MAX_WEIGHT",
    "SEED_LIMIT",
    "check_bool",
    "check_callable",
    "check_count",
    "check_instance",
    "check_int",
    "check_number",
    "check_positive",
    "check_range",
    "check_seed",
    "check_sequence",
    "check_server",
    "check_server_list",
    "check_time",
    "check_weight",
    "check_weights",
    "parse_servers",
    "show",
]

T = TypeVar("T")

MAX_WEIGHT = 1e9
"""The largest weight. Weights are relative, so this costs nothing, and it keeps
sums of weights (and the smooth round robin's running values) finite and exact
enough: without it two weights of 1.7e308 would sum to infinity."""

MAX_SECONDS = 1e9
"""The longest duration an option may give (about 31 years): a longer one says
"never", which ``None`` or 0 already says where it is meant, and sums with it
would stop being exact seconds."""

SEED_LIMIT = 1 << 64
"""Seeds are ints in ``[0, SEED_LIMIT)``: the hash function's seed is 64 bits."""

_SHOWN_BITS = 256


def show(value: object) -> str:
    """``repr(value)``, except that an int too long to be worth printing is summarised.

    Python refuses to print ints of more than 4,300 digits, so an error
    message quoting one would itself fail.

    >>> show(12), show("a"), show(2**300)
    ('12', "'a'", '<int of 301 bits>')
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _SHOWN_BITS:
        return f"<int of {value.bit_length()} bits>"
    try:
        return repr(value)
    except Exception:  # a user's object whose __repr__ fails must not hide the real error
        return f"<{type(value).__name__} object>"


# -- numbers ---------------------------------------------------------------------


def check_number(name: str, value: object) -> float:
    """``value`` as a float, if it is a finite int or float.

    Raises:
        TypeError: not an int or float (``bool`` included).
        ValueError: NaN, infinite, or an int too large for a float.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {show(value)}")
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise ValueError(f"{name} must be a finite number, got {show(value)}")
    return result


def check_positive(name: str, value: object) -> float:
    """``value`` as a float, if it is a finite number > 0.

    Raises:
        TypeError: not an int or float (``bool`` included).
        ValueError: NaN, infinite, zero or negative.
    """
    return check_range(name, value, 0.0, math.inf, low_open=True)


def check_range(
    name: str, value: object, low: float, high: float = math.inf, *, low_open: bool = False
) -> float:
    """``value`` as a float, if it is a finite number in ``[low, high]`` (``(low, high]``
    with ``low_open``).

    >>> check_range("slow_start", -1, 0.0)
    Traceback (most recent call last):
    ...
    ValueError: slow_start must be a finite number >= 0, got -1

    Raises:
        TypeError: not an int or float (``bool`` included).
        ValueError: NaN, infinite, or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {show(value)}")
    try:
        result = float(value)
    except OverflowError:
        result = math.nan  # fails the range test below
    below = result <= low if low_open else result < low
    if not math.isfinite(result) or below or result > high:
        sign = ">" if low_open else ">="
        bound = f"{sign} {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
        if low_open and high != math.inf:
            bound = f"in ({low:g}, {high:g}]"
        raise ValueError(f"{name} must be a finite number {bound}, got {show(value)}")
    return result


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """``value``, if it is an int in ``[low, high]`` (no upper bound when ``high`` is None).

    >>> check_int("table_size", 2**31 - 1, 1, 10_000_019)
    Traceback (most recent call last):
    ...
    ValueError: table_size must be an int in [1, 10000019], got 2147483647

    Raises:
        TypeError: not an int (``bool`` and ``float`` included).
        ValueError: out of range.
    """
    bound = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int {bound}, got {show(value)}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an int {bound}, got {show(value)}")
    return value


def check_count(name: str, value: object) -> int:
    """``value``, if it is an int >= 1.

    Raises:
        TypeError: not an int (``bool`` and ``float`` included).
        ValueError: below 1.
    """
    return check_int(name, value, 1)


def check_seed(value: object, name: str = "seed") -> int:
    """``value``, if it is an int in ``[0, 2**64)``: a hash seed.

    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    ValueError: seed must be an int in [0, 2**64), got -1

    Raises:
        TypeError: not an int (``bool`` included).
        ValueError: negative or too large.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int in [0, 2**64), got {show(value)}")
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{name} must be an int in [0, 2**64), got {show(value)}")
    return value


def check_time(value: object) -> float:
    """A clock reading as a float, if it is a finite number of seconds.

    Components call this on every reading, before anything changes, so a
    broken clock (``None``, NaN, infinity) is an error at the call that read
    it instead of a state that never ends.

    >>> check_time(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: the clock must return finite seconds, got nan

    Raises:
        TypeError: not an int or float (``bool`` included).
        ValueError: NaN, infinite, or an int too large for a float.
    """
    if isinstance(value, float):  # the common case first: one test
        if value - value == 0.0:  # false for NaN and both infinities
            return value
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            pass
    else:
        raise TypeError(f"the clock must return a number of seconds, got {show(value)}")
    raise ValueError(f"the clock must return finite seconds, got {show(value)}")


# -- other kinds -----------------------------------------------------------------


def check_bool(name: str, value: object) -> bool:
    """``value``, if it is a ``bool``.

    Raises:
        TypeError: anything else (``0`` and ``1`` included).
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {show(value)}")
    return value


def check_callable(name: str, value: T) -> T:
    """``value``, if it can be called (a callback, a clock).

    >>> check_callable("callback", 42)
    Traceback (most recent call last):
    ...
    TypeError: callback must be callable, got 42

    Raises:
        TypeError: it cannot be called.
    """
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {show(value)}")
    return value


def check_instance(name: str, value: object, kind: type, optional: bool = False) -> None:
    """Check that ``value`` is an instance of ``kind`` (or ``None`` when ``optional``).

    >>> check_instance("health", object(), int, optional=True)
    Traceback (most recent call last):
    ...
    TypeError: health must be a int or None, got <object object>

    Raises:
        TypeError: anything else.
    """
    if (value is None and optional) or isinstance(value, kind):
        return
    # An object's default repr carries its address: noise in a message.
    plain = type(value).__repr__ is object.__repr__
    shown = f"<{type(value).__name__} object>" if plain else show(value)
    suffix = " or None" if optional else ""
    raise TypeError(f"{name} must be a {kind.__name__}{suffix}, got {shown}")


# -- servers and weights ---------------------------------------------------------


def check_server(server: object) -> str:
    """Validate a server id: a non-empty ``str`` that encodes as UTF-8.

    >>> check_server("10.0.0.1:80")
    '10.0.0.1:80'
    >>> check_server(80)
    Traceback (most recent call last):
    ...
    TypeError: server must be a non-empty str, got 80
    """
    if not isinstance(server, str):
        raise TypeError(f"server must be a non-empty str, got {show(server)}")
    if not server:
        raise ValueError("server must be a non-empty str, got ''")
    try:
        server.encode()
    except UnicodeEncodeError:
        # A lone surrogate cannot be hashed as UTF-8: refuse it at the door.
        raise ValueError(f"server must be valid Unicode text, got {server!r}") from None
    return server


def check_weight(weight: object) -> float:
    """Validate a weight: a finite number in [0, ``MAX_WEIGHT``], ``bool`` excluded.

    >>> check_weight(2)
    2.0
    >>> check_weight(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: weight must be a finite number >= 0, got nan
    >>> check_weight(2e9)
    Traceback (most recent call last):
    ...
    ValueError: weight must be at most 1e+09, got 2000000000.0
    """
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise TypeError(f"weight must be a finite number >= 0, got {show(weight)}")
    if not 0 <= weight < math.inf:  # NaN fails every comparison
        raise ValueError(f"weight must be a finite number >= 0, got {show(weight)}")
    if weight > MAX_WEIGHT:  # compared before float(): a huge int would overflow it
        raise ValueError(f"weight must be at most {MAX_WEIGHT:g}, got {show(weight)}")
    return float(weight)


def check_server_list(servers: object) -> list[str]:
    """Validate an iterable of distinct server ids into a list. O(n).

    >>> check_server_list(("a", "b"))
    ['a', 'b']

    Raises:
        TypeError: a bare string (it would iterate as characters), a
            non-iterable or a non-str id.
        ValueError: an empty id; :class:`~balancekit.errors.DuplicateServer`
            (a ``ValueError``) for a repeated one.
    """
    if isinstance(servers, (str, bytes)) or not isinstance(servers, Iterable):
        raise TypeError(f"servers must be an iterable of ids, got {show(servers)}")
    names: list[str] = []
    seen: set[str] = set()
    for server in servers:
        name = check_server(server)
        if name in seen:
            raise DuplicateServer(name)
        seen.add(name)
        names.append(name)
    return names


def parse_servers(servers: object) -> dict[str, float]:
    """Validate a constructor's ``servers`` argument into ``{id: weight}``. O(n).

    >>> parse_servers(["a", "b"])
    {'a': 1.0, 'b': 1.0}
    >>> parse_servers({"a": 2})
    {'a': 2.0}
    >>> parse_servers(["a", "a"])
    Traceback (most recent call last):
    ...
    balancekit.errors.DuplicateServer: server 'a' is already a member

    Raises:
        TypeError: a bare string (which would iterate as characters), a
            non-iterable, a non-str id or a non-numeric weight.
        ValueError: an empty id, a bad weight or a repeated id.
    """
    if isinstance(servers, (str, bytes)):
        raise TypeError(f"servers must be an iterable of ids or a mapping, got {servers!r}")
    if isinstance(servers, Mapping):
        pairs: Iterable[tuple[object, object]] = servers.items()
    elif isinstance(servers, Iterable):
        pairs = ((server, 1) for server in servers)
    else:
        raise TypeError(f"servers must be an iterable of ids or a mapping, got {show(servers)}")
    parsed: dict[str, float] = {}
    for server, weight in pairs:
        name = check_server(server)
        if name in parsed:
            raise DuplicateServer(name)
        parsed[name] = check_weight(weight)
    return parsed


def check_weights(weights: object) -> dict[str, float]:
    """Validate a batch of weights ``{id: weight}`` (a mapping only). O(n).

    Raises:
        TypeError: not a mapping, a non-str id or a non-numeric weight.
        ValueError: an empty id or a bad weight.
    """
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must be a mapping of id to weight, got {show(weights)}")
    return parse_servers(weights)


def check_sequence(name: str, value: object, length: int | None = None) -> list[object]:
    """``value`` as a list, if it is a sequence (not a str or bytes), of ``length`` items
    when given. O(n).

    >>> check_sequence("total", [1, 2], length=3)
    Traceback (most recent call last):
    ...
    ValueError: total must have 3 items, got 2: [1, 2]

    Raises:
        TypeError: not a sequence, or a str or bytes.
        ValueError: not ``length`` items long.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence, got {show(value)}")
    items = list(value)
    if length is not None and len(items) != length:
        raise ValueError(f"{name} must have {length} items, got {len(items)}: {show(value)}")
    return items
