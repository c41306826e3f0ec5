"""Injected time: the :data:`Clock` type and a :class:`ManualClock` for tests.

Every time-dependent component takes ``clock: Clock`` (monotonic float
seconds), defaulting to :func:`time.monotonic`. This is the only module of
balancekit that imports :mod:`time`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["Clock", "ManualClock", "monotonic"]

Clock = Callable[[], float]
"""A zero-argument callable returning monotonic seconds as a float."""

monotonic: Clock = time.monotonic
"""The default clock."""


class ManualClock:
    """A clock that moves only when told to: deterministic tests and simulations.

    Calling it returns the current time, like :func:`time.monotonic`. Time never
    goes backwards. All methods are O(1) and thread-safe.

    >>> clock = ManualClock()
    >>> clock()
    0.0
    >>> clock.advance(1.5)
    1.5
    >>> clock.set(10.0)
    10.0
    >>> clock.advance(-1)
    Traceback (most recent call last):
    ...
    ValueError: seconds must be a finite number >= 0, got -1

    Raises:
        ValueError: a negative or non-finite step, or a ``set`` into the past.
        TypeError: a value that is not a number (``bool`` included).
    """

    __slots__ = ("_lock", "_now")

    def __init__(self, start: float = 0.0) -> None:
        self._now = _finite("start", start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    @property
    def now(self) -> float:
        """The current time in seconds."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0) and return the new time."""
        step = _finite("seconds", seconds)
        if step < 0:
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
        with self._lock:
            self._now += step
            return self._now

    def set(self, t: float) -> float:
        """Jump to time ``t``, which must not be earlier than now; return it."""
        # A finite float, the simulator's case twice per request, passes one
        # test; anything else (an int, a bad value) gets the full check.
        target = t if type(t) is float and -_INF < t < _INF else _finite("t", t)
        with self._lock:
            if target < self._now:
                raise ValueError(f"t must not go backwards: now {self._now!r}, got {t!r}")
            self._now = target
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"


_INF = math.inf


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return result
