"""libmemcached's weighted ketama continuum, for ``ConsistentHash(compat="ketama")``.

The facts this follows (libmemcached ``update_continuum`` and its
``ketama_compatibility_libmemcached`` test):

- A server id is ``"host:port"``; its points are named ``"host-k"`` when the
  port is memcached's default 11211, else ``"host:port-k"`` (an id without a
  numeric port is a host on port 11211).
- Each name is hashed with MD5; the 16-byte digest gives four points, the
  little-endian 32-bit words at bytes 0, 4, 8 and 12.
- A server of weight ``w`` among ``n`` servers of total weight ``W`` gets
  ``4 * floor(w / W * 160 / 4 * n + 1e-10)`` points, every step in
  single-precision floats as the C code computes it (so 8 servers weighing
  600, 300, 200, 350, 1000, 800, 950 and 100 get 1264 points in all). A
  server of weight 0 gets none and is not counted in ``n`` or ``W``, as
  libmemcached treats a server it has ejected (it has no weight 0 itself).
- A key's hash is the first four bytes of its MD5 digest, little-endian; it
  goes to the first point at or after that hash, wrapping to the first point.

Weights are used as libmemcached uses them, as numbers; libmemcached only
takes integers, so use integer weights to agree with it.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import struct
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from ._compat import LAST, Lookup, Ring, request_hash

__all__ = ["KetamaPoints", "ketama_hash", "point_name"]


class _Digest(Protocol):
    def digest(self) -> bytes: ...


def _md5() -> Callable[[bytes], _Digest]:
    """CPython's built-in MD5, else hashlib's (OpenSSL's).

    The built-in one hashes a short key in half the time (no OpenSSL context
    to allocate), and MD5 is most of a ketama lookup's cost.
    """
    try:
        found: Callable[[bytes], _Digest] = importlib.import_module("_md5").md5
    except ImportError:  # pragma: no cover - a build without the built-in hashes
        return hashlib.md5
    return found


md5 = _md5()


DEFAULT_PORT = 11211
POINTS_PER_SERVER = 160
_F32 = struct.Struct("f")
_WORD = struct.Struct("<I")
_LOW = (1 << 32) - 1
_TINY = 1e-10


def _f32(x: float) -> float:
    """``x`` rounded to the nearest single-precision float, as a C ``float`` holds it."""
    result: float = _F32.unpack(_F32.pack(x))[0]
    return result


def ketama_hash(data: bytes) -> int:
    """libmemcached's MD5 key hash: the digest's first four bytes, little-endian. O(len).

    >>> ketama_hash(b"VDEAAAAA") == 0xFFFCD1B5
    True
    """
    return int.from_bytes(md5(data).digest()[:4], "little")


def point_name(server: str, k: int) -> str:
    """The name libmemcached hashes for digest ``k`` of ``server``. O(len(server)).

    >>> point_name("10.0.1.1:11211", 3), point_name("cache:11212", 0), point_name("cache", 1)
    ('10.0.1.1-3', 'cache:11212-0', 'cache-1')
    """
    host, sep, port = server.rpartition(":")
    if sep and port.isdigit() and port.isascii() and int(port) == DEFAULT_PORT:
        return f"{host}-{k}"
    return f"{server}-{k}"


class KetamaPoints:
    """How a ring places libmemcached's points and looks up its keys.

    A point ``p`` of the 32-bit continuum is stored at ``p << 32 | 0xFFFFFFFF``
    in the ring's 64-bit space and a hash ``h`` is looked up at ``h << 32``:
    the first stored position strictly after it is the first point at or
    after ``h`` (``h = 0`` included), so the hot path needs no adjustment.
    ``value`` gives a point back.
    """

    __slots__ = ()
    name = "ketama"
    shift = 32

    def counts(self, weights: Mapping[str, float]) -> dict[str, int]:
        """Points per server with any, for all members' ``weights`` at once. O(n).

        >>> KetamaPoints().counts({"a:11211": 1, "b:11211": 1, "c:11211": 0})
        {'a:11211': 160, 'b:11211': 160}
        """
        live = {server: weight for server, weight in weights.items() if weight > 0}
        if not live:
            return {}
        total = _f32(math.fsum(live.values()))
        servers = _f32(len(live))
        tiny = _f32(_TINY)
        counts = {}
        for server, weight in live.items():
            share = _f32(_f32(weight) / total)
            scaled = _f32(_f32(_f32(share * POINTS_PER_SERVER) / 4) * servers)
            count = 4 * math.floor(_f32(scaled + tiny))
            if count:
                counts[server] = count
        return counts

    def points(self, server: str, start: int, stop: int) -> list[int]:
        """Stored positions of points ``start .. stop-1`` of ``server``. O(stop - start).

        Point ``i`` is word ``i % 4`` of the digest of name ``i // 4``.
        """
        found = []
        digest = b""
        for i in range(start, stop):
            if i % 4 == 0 or not digest:
                digest = md5(point_name(server, i // 4).encode()).digest()
            word = i % 4 * 4
            found.append(int.from_bytes(digest[word : word + 4], "little") << 32 | _LOW)
        return found

    @staticmethod
    def value(position: int) -> int:
        """The continuum value (32-bit) of a stored position. O(1)."""
        return position >> 32

    @staticmethod
    def locate(key: Any) -> int:
        """Where the ring looks ``key`` up: after ``h << 32`` for its hash ``h``. O(len).

        Raises:
            TypeError, ValueError: a bad key (see :func:`._compat.request_hash`).
        """
        if type(key) is str:  # the common case, inlined: one MD5, one conversion
            h = int.from_bytes(md5(key.encode()).digest()[:4], "little")
        else:
            h = request_hash(key, ketama_hash)
        return h << 32 if h >> 32 == 0 else LAST

    @staticmethod
    def lookup(ring: Ring) -> Lookup:
        """``ring``'s ``get_server``: :meth:`locate` and the ring's lookup in one function.

        Inlined because this is the hot path: a call saved is a tenth of a lookup.
        """
        word = _WORD.unpack_from

        def get_server(key: Any = None, exclude: Iterable[str] = ()) -> str:
            if exclude:  # the ring's own walk, under its lock, as ConsistentHash.get_server
                with ring._lock:
                    return ring._pick(key, exclude).server
            try:  # a str, the common case, without a type test: only str has encode()
                x: int = word(md5(key.encode()).digest())[0] << 32
            except AttributeError:  # bytes, an int request hash, or a bad key
                h = request_hash(key, ketama_hash)
                x = h << 32 if h >> 32 == 0 else LAST
            table, shift = ring._index
            positions, owners = table[x >> shift]
            try:
                return owners[bisect_right(positions, x)]
            except IndexError:  # only the empty ring has a bucket without a successor
                raise ring._unavailable() from None

        return get_server

    def __repr__(self) -> str:
        return "KetamaPoints()"
