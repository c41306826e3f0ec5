"""Rules shared by the mappings compatible with other systems (``compat=`` options).

In a compat mode a key is a *request hash* as the other system computes it:
an ``int`` in [0, 2**64) is that hash itself (computed elsewhere, e.g. by
Envoy's hash policy or a libmemcached client), a ``str`` is hashed from its
UTF-8 bytes and ``bytes`` as they are, with that system's own key hash.

A ring keeps points at *stored* positions and finds the first stored
position strictly after a looked-up value (``bisect_right``), while the other
systems take the first point *at or after* the request hash. Each mapping
converts so the two agree: Envoy's 64-bit ring looks ``h`` up at ``h - 1``
(``h = 0`` at ``2**64 - 1``, whose successor is the first point: the
wrap-around both systems do); ketama stores its 32-bit points shifted up with
the low bits set and looks ``h`` up at ``h << 32`` (see ``_ketama``).
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import NoServerAvailable

if TYPE_CHECKING:
    from array import array

    from .base import Member

__all__ = ["LAST", "Lookup", "Ring", "check_compat", "request_hash", "ring_lookup"]

Lookup = Callable[..., str]
"""A compat ring's ``get_server(key)``."""


class Ring(Protocol):
    """What a compat lookup reads of its ring: the bucket index, the error, and the
    ring's own walk for ``exclude``."""

    _index: tuple[list[tuple[tuple[int, ...] | array[int], tuple[str, ...]]], int]
    _lock: threading.Lock

    def _unavailable(self) -> NoServerAvailable: ...

    def _pick(self, key: Any, exclude: Iterable[str]) -> Member: ...


LAST = (1 << 64) - 1
_LIMIT = 1 << 64


def check_compat(compat: object, allowed: tuple[str, ...]) -> str | None:
    """``compat`` if it is ``None`` or one of ``allowed``. O(1).

    >>> check_compat("envoy", ("envoy",)) == "envoy"
    True

    Raises:
        ValueError: another string.
        TypeError: not a string.
    """
    if compat is None:
        return None
    if not isinstance(compat, str):
        raise TypeError(f"compat must be None or one of {allowed}, got {compat!r}")
    if compat not in allowed:
        raise ValueError(f"compat must be None or one of {allowed}, got {compat!r}")
    return compat


def request_hash(key: object, hash_bytes: Callable[[bytes], int]) -> int:
    """The request hash of ``key``: an int as is, str and bytes through ``hash_bytes``. O(len).

    >>> request_hash(7, len), request_hash("abc", len), request_hash(b"ab", len)
    (7, 3, 2)

    Raises:
        TypeError: ``None``, a ``bool`` or another type.
        ValueError: an int outside [0, 2**64).
    """
    if isinstance(key, str):
        return hash_bytes(key.encode())
    if isinstance(key, bytes):
        return hash_bytes(key)
    if isinstance(key, int) and not isinstance(key, bool):
        if not 0 <= key < _LIMIT:
            raise ValueError(
                f"an int key is the request hash itself and must be in [0, 2**64), got {key!r}"
            )
        return key
    if key is None:
        raise TypeError("a compat mapping needs a key (str, bytes or int) for every pick")
    raise TypeError(f"key must be str, bytes or int, got {key!r}")


def ring_lookup(ring: Ring, locate: Callable[[Any], int]) -> Lookup:
    """``get_server`` of a compat ring: the owner of the first point after ``locate(key)``.

    O(1) expected plus the key's hash, like the ring's own lookup.
    """

    def get_server(key: Any = None, exclude: Iterable[str] = ()) -> str:
        if exclude:  # the ring's own walk, under its lock, as ConsistentHash.get_server
            with ring._lock:
                return ring._pick(key, exclude).server
        h = locate(key)
        table, shift = ring._index
        positions, owners = table[h >> shift]
        try:
            return owners[bisect_right(positions, h)]
        except IndexError:  # only the empty ring has a bucket without a successor
            raise ring._unavailable() from None

    return get_server
