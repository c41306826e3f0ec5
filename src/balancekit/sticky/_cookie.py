"""Sticky cookies: an HMAC-signed opaque token naming a server, made and read back.

Cookie layout (base64url without padding, 39 or 50 characters)::

    kind (1 byte: 1 plain, 2 expiring) | token (12) | [expiry, float64 BE (8)] | tag (16)

``token`` is the first 12 bytes of ``HMAC-SHA256(secret, "server:" + id)``,
so it is the same in every process that shares the secret and tells nothing
about the server id without it. ``tag`` is ``HMAC-SHA256(secret, "cookie:" +
cookie_name + NUL + everything before the tag)`` truncated to 128 bits (the
truncation RFC 2104 allows for SHA-256), so a cookie made for another cookie
name does not verify either. Only the canonical encoding is accepted: every
changed character makes a cookie invalid.

This module knows the format and the signatures. Which server a token
names, and whether an expiry is still acceptable, is
:class:`~balancekit.sticky.StickySession`'s business.
"""

from __future__ import annotations

import base64
import hmac
import re
import struct
import threading
from collections.abc import Sequence

__all__ = [
    "TOKEN_BYTES",
    "VERIFIED_CACHE_SIZE",
    "CookieCodec",
    "check_cookie_name",
    "parse_secrets",
]

TOKEN_BYTES = 12
"""Length of a server token, in bytes."""

_TAG_BYTES = 16
_PLAIN = 1  # kind byte of a cookie that never expires
_TIMED = 2  # kind byte of a cookie carrying its expiry time
_EXPIRY = struct.Struct(">d")
_PLAIN_BYTES = 1 + TOKEN_BYTES + _TAG_BYTES
_TIMED_BYTES = 1 + TOKEN_BYTES + _EXPIRY.size + _TAG_BYTES


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# The only lengths a valid cookie can have: anything else is rejected before
# any decoding, however long it is.
_LENGTHS = frozenset({len(_b64(bytes(_PLAIN_BYTES))), len(_b64(bytes(_TIMED_BYTES)))})
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
# RFC 6265 cookie-name: an RFC 7230 token.
_COOKIE_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

VERIFIED_CACHE_SIZE = 4096
"""How many verified cookie values a codec remembers, whatever cookies arrive."""


class CookieCodec:
    """Makes and reads the cookie values of one cookie name, under one or more secrets.

    The first secret signs, every one verifies (key rotation).

    >>> codec = CookieCodec((b"new key", b"old key"), "bk_route")
    >>> token = codec.tokens("10.0.0.1:80")[0]
    >>> cookie = codec.encode(token, None)
    >>> len(cookie), codec.decode(cookie) == (0, token, None)
    (39, True)
    >>> codec.decode(cookie[:-1]) is None
    True

    ``secrets`` and ``cookie_name`` come checked by :func:`parse_secrets`
    and :func:`check_cookie_name`.

    Complexity: ``tokens`` O(s) HMACs for s secrets; ``encode`` one HMAC;
    ``decode`` O(1) for a value verified before and still remembered, else
    O(s) HMACs after an O(1) length check.

    Verifying costs base64 and HMAC-SHA256 (several microseconds), and a
    client sends the same cookie with every request, so the last
    :data:`VERIFIED_CACHE_SIZE` *verified* values are remembered with what
    they decode to (the expiry is still returned, and checked by the caller,
    on every request). Only values that verified enter, so junk cookies cannot
    grow the cache or push much out of it, and the bound is fixed. Safe to
    share between threads: the cache is a dict whose single operations are
    atomic, and inserts (misses only) take a lock.
    """

    __slots__ = ("_context", "_lock", "_name", "_secrets", "_verified")

    def __init__(self, secrets: tuple[bytes, ...], cookie_name: str) -> None:
        self._secrets = secrets
        self._name = cookie_name
        self._context = b"cookie:" + cookie_name.encode("ascii") + b"\x00"
        self._lock = threading.Lock()
        self._verified: dict[str | bytes, tuple[int, bytes, float | None]] = {}

    @property
    def key_count(self) -> int:
        """How many secrets verify a cookie. O(1)."""
        return len(self._secrets)

    def tokens(self, server: str) -> tuple[bytes, ...]:
        """The token of ``server`` under each secret, in the order of the secrets. O(s)."""
        name = server.encode()
        return tuple(
            hmac.digest(key, b"server:" + name, "sha256")[:TOKEN_BYTES] for key in self._secrets
        )

    def encode(self, token: bytes, expiry: float | None) -> str:
        """The cookie value carrying ``token`` (made under the first secret), signed. O(1).

        ``expiry`` is a clock time after which the cookie is void; ``None``
        makes the shorter cookie that never expires.
        """
        if expiry is None:
            signed = bytes((_PLAIN,)) + token
        else:
            signed = bytes((_TIMED,)) + token + _EXPIRY.pack(expiry)
        return _b64(signed + self._sign(self._secrets[0], signed))

    def decode(self, cookie: str | bytes | None) -> tuple[int, bytes, float | None] | None:
        """``(secret index, token, expiry)`` of a well-formed, verified cookie, else ``None``.

        ``None`` for a missing, malformed, non-canonical, truncated,
        forged or tampered value, and for one made for another cookie name
        or signed by a secret not in the list. Expiry is *not* checked here:
        ``expiry`` is returned as written (``None`` for a plain cookie).
        Signatures are compared in constant time. O(1) for a remembered
        value, else O(s).

        Raises:
            TypeError: ``cookie`` is not ``str``, ``bytes`` or ``None``.
        """
        if cookie is None:
            return None
        exact = type(cookie) is str or type(cookie) is bytes  # subclasses may redefine ==
        if exact:
            hit = self._verified.get(cookie)
            if hit is not None:
                return hit
        decoded = self._decode(cookie)
        if decoded is not None and exact:
            with self._lock:  # only the rare insert locks; lookups never wait
                verified = self._verified
                if len(verified) >= VERIFIED_CACHE_SIZE:
                    del verified[next(iter(verified))]  # the oldest: dicts keep insertion order
                verified[cookie] = decoded
        return decoded

    def _decode(self, cookie: str | bytes) -> tuple[int, bytes, float | None] | None:
        if isinstance(cookie, bytes):
            if len(cookie) not in _LENGTHS or not cookie.isascii():
                return None
            text = cookie.decode("ascii")
        elif isinstance(cookie, str):
            text = cookie
        else:
            raise TypeError(f"cookie must be str, bytes or None, got {type(cookie).__name__}")
        if len(text) not in _LENGTHS or not _ALPHABET.fullmatch(text):
            return None
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        if _b64(raw) != text:  # unused low bits set: a second spelling of the same bytes
            return None
        kind = raw[0]
        expiry: float | None
        if kind == _PLAIN and len(raw) == _PLAIN_BYTES:
            expiry = None
        elif kind == _TIMED and len(raw) == _TIMED_BYTES:
            (expiry,) = _EXPIRY.unpack_from(raw, 1 + TOKEN_BYTES)
        else:
            return None
        index = self._verify(raw[:-_TAG_BYTES], raw[-_TAG_BYTES:])
        if index is None:
            return None
        return index, raw[1 : 1 + TOKEN_BYTES], expiry

    def _verify(self, signed: bytes, tag: bytes) -> int | None:
        """The position of the secret whose signature ``tag`` is, if any."""
        for index, key in enumerate(self._secrets):
            if hmac.compare_digest(self._sign(key, signed), tag):
                return index
        return None

    def _sign(self, key: bytes, signed: bytes) -> bytes:
        return hmac.digest(key, self._context + signed, "sha256")[:_TAG_BYTES]

    def __repr__(self) -> str:
        # Never the secrets themselves: a repr ends up in logs.
        count = len(self._secrets)
        plural = "s" if count > 1 else ""
        return f"CookieCodec(<{count} secret{plural}>, cookie_name={self._name!r})"


def check_cookie_name(cookie_name: object) -> str:
    """``cookie_name``, if it is an RFC 6265 cookie name (an RFC 7230 token). O(len).

    >>> check_cookie_name("bk_route")
    'bk_route'

    Raises:
        ValueError: not a non-empty str of token characters.
    """
    if not isinstance(cookie_name, str) or not _COOKIE_NAME.fullmatch(cookie_name):
        raise ValueError(
            "cookie_name must be a non-empty token of letters, digits and "
            f"!#$%&'*+-.^_`|~, got {cookie_name!r}"
        )
    return cookie_name


def parse_secrets(secret: object) -> tuple[bytes, ...]:
    """The signing keys: one ``str``/``bytes`` or a non-empty sequence of them, as bytes. O(s).

    Raises:
        TypeError: not a str, bytes or sequence; an item of another type.
        ValueError: an empty sequence, or an empty key. Messages name the
            position and the type, never a key.
    """
    # Messages name the position and type, never the value: it is a key.
    single = isinstance(secret, (str, bytes))
    if single:
        items: list[object] = [secret]
    elif isinstance(secret, Sequence):
        items = list(secret)
    else:
        raise TypeError(
            f"secret must be str, bytes or a sequence of them, got {type(secret).__name__}"
        )
    if not items:
        raise ValueError("secret must hold at least one key, got an empty sequence")
    keys = []
    for position, item in enumerate(items):
        name = "secret" if single else f"secret[{position}]"
        if isinstance(item, str):
            key = item.encode()
        elif isinstance(item, bytes):
            key = item
        else:
            raise TypeError(f"{name} must be str or bytes, got {type(item).__name__}")
        if not key:
            raise ValueError(f"{name} is empty: a signing key needs at least one byte")
        keys.append(key)
    return tuple(keys)
