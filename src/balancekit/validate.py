"""Checks of numeric options: every error names the option and the value it was given.

The health components take many numeric options (intervals, thresholds,
percentages); these three checks give them one wording. ``bool`` is never a
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

__all__ = ["check_count", "check_number", "check_positive"]


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
