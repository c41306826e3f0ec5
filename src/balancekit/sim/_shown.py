"""How a value from a scenario appears in an error: cut short, so that an error about a huge
list, a deeply nested table or an integer of thousands of digits stays one short line and
costs nothing to build.
"""

from __future__ import annotations

import math
import reprlib

__all__ = ["LongNumber", "shown"]


class LongNumber:
    """A number too long to read: what a scenario file's parser returns instead of an
    integer of more than ``digits`` digits, so that the field's check refuses it by name
    (converting it could take seconds, or fail with Python's own limit).

    >>> LongNumber(5000)
    an integer of 5000 digits
    """

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"an integer of {self.digits} digits"


_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother = 2, 40, 40
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxdict = 4


def shown(value: object) -> str:
    """``repr(value)`` cut short: at most a few items, levels and characters, so that an
    error about a huge or deeply nested value stays one short line. O(what is shown).

    >>> shown(list(range(60000)))
    '[0, 1, 2, 3, ...]'
    >>> shown(10**5000)
    'an integer of 5001 digits'
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        # repr() of a long int is quadratic, and refused past 4,300 digits.
        return f"an integer of {_digits(value)} digits"
    return _SHOW.repr(value)


def _digits(value: int) -> int:
    """The number of decimal digits of ``abs(value)`` (not 0), without converting it to text."""
    value = abs(value)
    digits = int((value.bit_length() - 1) * math.log10(2)) + 1  # the digits of 2**(bits - 1)
    return digits + 1 if value >= pow(10, digits) else digits
