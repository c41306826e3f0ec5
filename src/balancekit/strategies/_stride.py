"""gRPC's static stride scheduler (weighted_round_robin, gRFC A58), a pure function of weights.

``stride_weights(weights)`` turns float weights into the 16-bit integers the
scheduler picks by, with gRPC's rules:

- no scheduler (``None``: the caller falls back to round robin) for fewer
  than two weights or when every weight is 0;
- a weight of 0 is *unknown* and gets the mean of the non-zero weights;
- the largest weight is capped at 10 x that mean, every weight is scaled so
  the (capped) largest is 65535 and rounded, and none goes below
  ``max(1, round(0.01 x the scaled mean))``.

``stride_pick(weights, sequence)`` is one attempt of a pick: sequence number
``s`` names backend ``s % n`` in generation ``s // n``, which is picked when
``(weight * generation + backend * 32767) % 65535 >= 65535 - weight``, so a
backend is picked ``weight`` times in every 65535 generations; the caller
takes the next sequence number until an attempt picks.

Weights are single-precision floats in gRPC; they are rounded to one here
too, so the integers match gRPC's bit for bit.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

__all__ = ["MAX_WEIGHT", "stride_pick", "stride_weights"]

MAX_WEIGHT = 65535
"""The scaled weight of the heaviest backend (the largest uint16)."""

_MAX_RATIO = 10.0
_MIN_RATIO = 0.01
_OFFSET = MAX_WEIGHT // 2
_F32 = struct.Struct("f")


def _f32(x: float) -> float:
    result: float = _F32.unpack(_F32.pack(x))[0]
    return result


def _lround(x: float) -> int:
    """C's ``lround``: halves away from zero (Python's ``round`` goes to even)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def stride_weights(weights: Sequence[float]) -> tuple[int, ...] | None:
    """The scheduler's integer weights for float ``weights``, or ``None`` for round robin. O(n).

    >>> stride_weights([1, 2, 3])
    (21845, 43690, 65535)
    >>> stride_weights([3, 0, 1])              # 0 is unknown: it gets the mean, 2
    (65535, 43690, 21845)
    >>> stride_weights([100, 1e-10])           # the tiny one is raised to 1% of the mean
    (65535, 328)
    >>> stride_weights([5]), stride_weights([0, 0])
    (None, None)
    """
    floats = [_f32(w) for w in weights]
    n = len(floats)
    if n < 2:
        return None
    known = [w for w in floats if w != 0]
    if not known:
        return None
    total = 0.0
    for w in known:  # in order, in double, as gRPC sums (not sum(): 3.12 compensates)
        total += w
    mean = total / len(known)
    top = max(floats)
    if top / mean > _MAX_RATIO:
        top = _f32(_MAX_RATIO * mean)
    scale = MAX_WEIGHT / top
    scaled_mean = _lround(scale * mean)
    low = max(1, _lround(scaled_mean * _MIN_RATIO))
    return tuple(scaled_mean if w == 0 else max(_lround(min(w, top) * scale), low) for w in floats)


def stride_pick(weights: Sequence[int], sequence: int) -> int | None:
    """The backend sequence number ``sequence`` picks, or ``None`` to try the next. O(1).

    >>> [stride_pick((65535, 32768), s) for s in range(4)]
    [0, 1, 0, None]
    """
    n = len(weights)
    index = sequence % n
    weight = weights[index]
    if (weight * (sequence // n) + index * _OFFSET) % MAX_WEIGHT < MAX_WEIGHT - weight:
        return None
    return index
