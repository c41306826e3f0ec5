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

:class:`StrideBlocks` gives the same picks a block of sequence numbers at a
time, for a balancer that hands them out from a list: each generation's test
is a carry in a 17-bit sum, so the whole block is a few big-int additions and
shifts in C, with 24-bit lanes, one per sequence number, instead of a Python
step per attempt.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from collections.abc import Sequence
from itertools import compress
from typing import Any, Generic, TypeVar

__all__ = [
    "BLOCK_LANES",
    "MAX_WEIGHT",
    "SEQUENCE_LIMIT",
    "StrideBlocks",
    "stride_pick",
    "stride_weights",
]

MAX_WEIGHT = 65535
"""The scaled weight of the heaviest backend (the largest uint16)."""

SEQUENCE_LIMIT = 1 << 32
"""The sequence number wraps here to 0, as gRPC's atomic uint32 does."""

BLOCK_LANES = 8192
"""The most sequence numbers a block covers (whole generations, at least one)."""

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


# -- blocks of picks ---------------------------------------------------------------

T = TypeVar("T")

_LANE_BYTES = 3  # a lane holds one sequence number's sum, which needs 17 bits
_LANE_BITS = 8 * _LANE_BYTES
_SWAP = sys.byteorder != "little"
_Sized = tuple[int, int, int, int, int, int, tuple[Any, ...]]


def _pack(values: list[int]) -> int:
    """``values`` (each < 2**24) as the lanes of one int, the first in the lowest bits. O(n)."""
    words = array("I", values)
    if _SWAP:
        words.byteswap()
    raw = words.tobytes()
    lanes = bytearray(_LANE_BYTES * len(values))
    for i in range(_LANE_BYTES):  # each word's low bytes, in C
        lanes[i::_LANE_BYTES] = raw[i::4]
    return int.from_bytes(lanes, "little")


def _repeat(lanes: int, count: int, times: int) -> int:
    """``count`` lanes repeated ``times`` times, the copies one after another. O(result)."""
    return int.from_bytes(lanes.to_bytes(_LANE_BYTES * count, "little") * times, "little")


def _mod(lanes: int, ones: int) -> int:
    """Each lane mod ``MAX_WEIGHT``, for lanes in ``[0, 2 * MAX_WEIGHT - 2]``; ``ones``
    has a 1 in each lane. Such a lane reaches ``MAX_WEIGHT`` exactly when the lane
    plus 1 carries into bit 16. O(lanes)."""
    return lanes - (((lanes + ones) >> 16) & ones) * MAX_WEIGHT


def _advance(lanes: int, by: int, ones: int, low: int) -> int:
    """``a + by mod MAX_WEIGHT`` in each lane, the lanes holding ``a + 1`` (in
    ``[1, MAX_WEIGHT]``) before and after, ``by`` in ``[0, MAX_WEIGHT)``; ``low``
    has 0xFFFF in each lane. The sum ``a + 1 + by`` carries into bit 16 exactly
    when ``a + by`` reaches ``MAX_WEIGHT``, and then its low 16 bits plus the
    carry are ``a + by - MAX_WEIGHT + 1``. O(lanes)."""
    total = lanes + by
    return (total & low) + ((total >> 16) & ones)


class StrideBlocks(Generic[T]):
    """The picks of the scheduler over integer ``weights``, as ``items``, by blocks.

    ``block(start, generations)`` gives the items picked by the sequence
    numbers from ``start`` to the end of its ``generations``-th generation (or
    to the wrap at ``SEQUENCE_LIMIT``), exactly as :func:`stride_pick` tried
    one by one would, with the picked lanes and where the next block starts.

    Backend ``i`` in generation ``g`` is picked when ``a + w >= 65535`` for
    ``a = (w * g + i * 32767) mod 65535``: with ``a + 1`` and ``w`` in 24-bit lanes
    of one int, ``a + 1 + w`` carries into bit 16 exactly then, so one addition
    tests every lane of a block at once, and byte 2 of each lane of the sum is
    the block's mask; ``a`` for the next generations comes from
    ``a + k * w mod 65535`` by the same carry (:func:`_advance`).

    >>> blocks = StrideBlocks((65535, 32768), "ab")
    >>> blocks.block(0, 2)                         # stride_pick: 0, 1, 0, None
    (['a', 'b', 'a'], b'\\x01\\x01\\x01\\x00', 4)

    Complexity: O(n x generations) per block: big-int operations of about
    5 ns a sequence number, and about 8 ns more to list the picks
    (:func:`itertools.compress`); the first block at a new generation also
    costs O(n) Python steps. Not thread-safe: the caller holds a lock.
    """

    __slots__ = (
        "_at",
        "_base",
        "_lanes",
        "_low",
        "_low16",
        "_n",
        "_ones",
        "_sized",
        "_weights",
        "most_generations",
    )

    def __init__(self, weights: Sequence[int], items: Sequence[T]) -> None:
        self._weights = tuple(weights)
        n = self._n = len(self._weights)
        if n != len(items) or n < 1:
            raise ValueError(
                f"weights and items must have the same length >= 1, got {n} and {len(items)}"
            )
        ones = self._ones = _pack([1] * n)
        w = _pack(list(self._weights))
        step = _mod(w, ones)
        # By generations per block (powers of 2): lanes of 1, lanes of 0xFFFF, the
        # weights, each generation's advance k x w mod 65535 from the first, the
        # block's advance, that advance in every generation's lanes, the items
        # repeated (a tuple: compress() reads one a little faster than a list).
        low16 = self._low16 = ones * 0xFFFF
        self._sized: dict[int, _Sized] = {1: (ones, low16, w, 0, step, step, tuple(items))}
        self._at = -1  # the generation the next block would start at (-1: none)
        self._base = 0  # its lanes (a + 1)
        self._lanes = (0, 0)  # (generations, lanes (a + 1)) of the last block
        self._low = (1 << _LANE_BITS * n) - 1  # a block's first generation
        most = 1
        while 2 * most * n <= BLOCK_LANES:
            most *= 2
        self.most_generations = most
        """The largest ``generations`` a block should have (a power of 2)."""

    def _data(self, generations: int) -> _Sized:
        sized = self._sized.get(generations)
        if sized is None:  # twice the half: the upper half is the lower one advanced
            half = generations // 2
            ones, low, w, advance, step, _, items = self._data(half)
            n = self._n
            shift = _LANE_BITS * n * half
            upper = _mod(advance + _repeat(step, n, half), ones)
            step = _mod(step + step, self._ones)
            sized = (
                ones | ones << shift,
                low | low << shift,
                w | w << shift,
                advance | upper << shift,
                step,
                _repeat(step, n, generations),
                items + items,
            )
            self._sized[generations] = sized
        return sized

    def block(self, start: int, generations: int) -> tuple[list[T], bytes, int]:
        """``(picked items, a 0/1 byte per sequence number, the next start)`` for the
        sequence numbers from ``start`` on. ``generations`` is a power of 2."""
        n = self._n
        ones, low, w, advance, step, spread, items = self._data(generations)
        generation, skip = divmod(start, n)
        last, lanes = self._lanes
        if generation == self._at and last == generations:  # the last block, advanced
            lanes = _advance(lanes, spread, ones, low)
        else:
            if generation == self._at:
                base = self._base
            else:
                weights = self._weights
                base = _pack(
                    [(weights[i] * generation + i * _OFFSET) % MAX_WEIGHT + 1 for i in range(n)]
                )
            lanes = _advance(_repeat(base, n, generations), advance, ones, low)
        count = n * generations
        # Byte 2 of a lane is bit 16 of a + 1 + w: 1 when picked, else 0.
        mask = (lanes + w).to_bytes(_LANE_BYTES * count, "little")[2::_LANE_BYTES]
        end = generation * n + count
        if end > SEQUENCE_LIMIT:  # the sequence wraps to 0 in this block
            count -= end - SEQUENCE_LIMIT
            end = SEQUENCE_LIMIT
        if skip or count < len(mask):
            mask = mask[skip:count]
            items = items[skip:count]
        self._lanes = (generations, lanes)
        self._base = _advance(lanes & self._low, step, self._ones, self._low16)
        self._at = generation + generations
        return list(compress(items, mask)), mask, end % SEQUENCE_LIMIT

    def __repr__(self) -> str:
        return f"StrideBlocks({list(self._weights)!r})"
