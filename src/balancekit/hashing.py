"""Key normalisation and 64-bit hashing: the one place placement hashes come from.

Placement must be the same in every process and on every machine, so nothing
here uses Python's randomised built-in hash. Keys are hashed with XXH3-64 and
an explicit seed:

- ``str`` keys are hashed as their UTF-8 bytes;
- ``bytes`` keys as they are;
- ``int`` keys as their decimal text, so the user id ``42`` and the string
  ``"42"`` are the same key (``bool`` is rejected: ``True`` is not a key).

Server ids become ring positions through :func:`hash_server`, which hashes
``"<server>#<replica>"``. IP addresses are normalised by :func:`ip_key` so
that ``"::ffff:10.0.0.1"`` and ``"10.0.0.1"`` are one client.

All functions are O(len(key)) and thread-safe.
"""

from __future__ import annotations

import ipaddress
import socket

import xxhash

__all__ = [
    "Key",
    "hash_bytes",
    "hash_key",
    "hash_server",
    "ip_key",
    "key_bytes",
    "unit_interval",
]

Key = str | bytes | int
"""What a hash strategy accepts as a key."""

hash_bytes = xxhash.xxh3_64_intdigest
"""``hash_bytes(data, seed) -> int`` in [0, 2**64): the raw hash function."""

_TWO_52 = float(1 << 52)


def key_bytes(key: object) -> bytes:
    """The bytes a key is hashed as.

    >>> key_bytes("café"), key_bytes(b"x"), key_bytes(42)
    (b'caf\\xc3\\xa9', b'x', b'42')

    Raises:
        TypeError: the key is not ``str``, ``bytes`` or ``int`` (or is ``bool``/``None``).
    """
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, bytes):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key).encode()
    raise TypeError(f"key must be str, bytes or int, got {key!r}")


def hash_key(key: object, seed: int = 0) -> int:
    """Hash a key to a 64-bit integer with XXH3-64.

    >>> hash_key("user-42") == hash_key(b"user-42")
    True
    >>> hash_key(42) == hash_key("42")
    True
    >>> hash_key("user-42", seed=1) != hash_key("user-42")
    True

    Raises:
        TypeError: the key is not ``str``, ``bytes`` or ``int``.
    """
    if type(key) is str:  # the common case first: one call, no isinstance chain
        return hash_bytes(key.encode(), seed)
    return hash_bytes(key_bytes(key), seed)


def hash_server(server: str, replica: int = 0, seed: int = 0) -> int:
    """The 64-bit position of one point (virtual node) of a server.

    >>> hash_server("a", 0) != hash_server("a", 1)
    True
    """
    return hash_bytes(f"{server}#{replica}".encode(), seed)


def unit_interval(h: int) -> float:
    """Map a 64-bit hash into the open interval (0, 1), never 0 nor 1.

    Used where a hash is a uniform random number, as rendezvous hashing's
    ``-w / ln(u)`` needs (``ln(0)`` and ``ln(1)`` would break it).

    >>> 0.0 < unit_interval(0) < unit_interval(2**64 - 1) < 1.0
    True
    """
    # (h + 0.5) / 2**64 is in (0, 1) mathematically, but floats near 1 are 2**-53
    # apart: keep the top 52 bits so the result is exact and never rounds to 1.0.
    return ((h >> 12) + 0.5) / _TWO_52


def ip_key(address: object) -> bytes:
    """Normalise a client IP address to the bytes it is hashed as.

    An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) is the same client as its
    IPv4 form. Accepts ``str`` or :mod:`ipaddress` address objects, exactly the
    strings :func:`ipaddress.ip_address` accepts.

    >>> ip_key("10.0.0.1") == ip_key("::ffff:10.0.0.1") == ip_key(ipaddress.ip_address("10.0.0.1"))
    True
    >>> ip_key("2001:db8::1").hex()
    '20010db8000000000000000000000001'
    >>> ip_key("10.0.0.256")
    Traceback (most recent call last):
    ...
    ValueError: not an IP address: '10.0.0.256'

    Complexity: O(len(address)). A ``str`` goes through ``socket.inet_pton``
    first (about a tenth of :mod:`ipaddress`'s cost); the strings it refuses
    (scope ids such as ``fe80::1%eth0``, and everything that is no address)
    are parsed by :mod:`ipaddress`, which has the last word.

    Raises:
        ValueError: the string is not an IP address.
        TypeError: the value is neither a string nor an address object.
    """
    if type(address) is str:
        packed = pton(address)
        if packed is not None:
            return packed
    if isinstance(address, str):
        try:
            parsed: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
        except ValueError:
            raise ValueError(f"not an IP address: {address!r}") from None
    elif isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        parsed = address
    else:
        raise TypeError(f"address must be a str or an ipaddress address, got {address!r}")
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return parsed.packed


_inet_pton = socket.inet_pton
_AF_INET, _AF_INET6 = socket.AF_INET, socket.AF_INET6
_MAPPED = bytes(10) + b"\xff\xff"


def pton(address: str) -> bytes | None:
    """``ip_key(address)`` by ``socket.inet_pton``, or ``None`` where it refuses the text.

    ``inet_pton`` accepts a subset of what :mod:`ipaddress` accepts (no
    leading zeros in an IPv4 octet, no scope id), with the same bytes; a
    ``None`` here means "ask :mod:`ipaddress`", not "no address".

    >>> pton("10.0.0.1"), pton("::ffff:10.0.0.1"), pton("10.0.0.01")
    (b'\\n\\x00\\x00\\x01', b'\\n\\x00\\x00\\x01', None)
    """
    try:
        return _inet_pton(_AF_INET, address)
    except (OSError, ValueError):  # ValueError: an embedded NUL, or not encodable
        pass
    try:
        packed = _inet_pton(_AF_INET6, address)
    except (OSError, ValueError):
        return None
    return packed[12:] if packed[:12] == _MAPPED else packed
