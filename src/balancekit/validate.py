"""Checks of numeric options: every error names the option and the value it was given.

The health components, the Pool and slow start take many numeric options
(intervals, thresholds, percentages); these checks give them one wording. ``bool`` is never a
number here, although Python makes it an ``int``.

>>> check_positive("interval", 5)
5.0
>>> check_count("healthy_threshold", 0)
Traceback (most recent call last):
...
ValueError: healthy_threshold must be an int >= 1, got 0
"""

from __future__ import annotations

import math

__all__ = ["check_count", "check_number", "check_positive", "check_range"]


def check_number(name: str, value: object) -> float:
    """``value`` as a float, if it is a finite int or float. O(1).

    Raises:
        TypeError: not an int or float (``bool`` included).
        ValueError: NaN or infinite.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return result


def check_positive(name: str, value: object) -> float:
    """``value`` as a float, if it is a finite number > 0. O(1).

    Raises:
        TypeError: not an int or float (``bool`` included).
        ValueError: NaN, infinite, zero or negative.
    """
    result = check_number(name, value)
    if result <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return result


def check_range(name: str, value: object, low: float, high: float = math.inf) -> float:
    """``value`` as a float, if it is a finite number in ``[low, high]``. O(1).

    >>> check_range("panic_threshold", 1.5, 0.0, 1.0)
    Traceback (most recent call last):
    ...
    ValueError: panic_threshold must be a finite number in [0, 1], got 1.5

    Raises:
        TypeError: not an int or float (``bool`` included).
        ValueError: NaN, infinite, or out of range.
    """
    result = check_number(name, value)
    if not low <= result <= high:
        bound = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return result


def check_count(name: str, value: object) -> int:
    """``value``, if it is an int >= 1. O(1).

    Raises:
        TypeError: not an int (``bool`` and ``float`` included).
        ValueError: below 1.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value
