"""IPHash: a client's IP address picks its server, consistently.

nginx's ``ip_hash`` maps a client to ``hash % N`` over the servers, so a
change of ``N`` moves most clients. Here the address is a key on a
:class:`~.ring.ConsistentHash` ring instead: removing a server moves only
the clients it had, adding one moves only the clients it takes.

Addresses are normalised by :func:`balancekit.hashing.ip_key`: ``str`` or
:mod:`ipaddress` objects, and an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``)
is the same client as ``a.b.c.d``. Strings go through ``socket.inet_pton``
first, which refuses what :mod:`ipaddress` refuses (leading zeros, stray
characters) and gives the same bytes; only what it refuses is parsed again.
"""

from __future__ import annotations

import socket
from bisect import bisect_right
from collections.abc import Iterable
from typing import Any

from ..hashing import hash_bytes, ip_key, pton
from .ring import ConsistentHash

__all__ = ["IPHash"]

_inet_pton = socket.inet_pton
_AF_INET = socket.AF_INET


class IPHash(ConsistentHash):
    """Consistent hashing on the client's IP address (``str`` or ``ipaddress`` object).

    >>> lb = IPHash(["a", "b", "c"])
    >>> lb.get_server("203.0.113.7")
    'a'
    >>> lb.get_server("::ffff:203.0.113.7")      # the same client
    'a'
    >>> lb.get_server("10.1.2.3")
    'c'
    >>> lb.remove_server("c")                     # c's clients move, nobody else
    >>> lb.get_server("10.1.2.3"), lb.get_server("203.0.113.7")
    ('b', 'a')

    Options, complexity and thread safety are those of
    :class:`ConsistentHash` (``vnodes``, ``seed``, ``get_n_servers``), plus
    parsing the address: ``socket.inet_pton`` for text, :mod:`ipaddress`
    only for what it refuses (scope ids; anything that is not an address).

    Raises:
        TypeError: no key, or a key that is neither a ``str`` nor an
            ``ipaddress`` address (``int`` and ``bytes`` keys are not addresses here).
        ValueError: a string that is not an IP address.
    """

    def get_server(self, key: Any = None, exclude: Iterable[str] = ()) -> str:
        """The server of client address ``key``; lock-free.

        With ``exclude``, the next server clockwise that is not excluded,
        as :meth:`ConsistentHash.get_server`.

        Complexity: O(1) expected plus parsing the address.

        Raises:
            NoServerAvailable: no server has a weight > 0.
            TypeError: no key, or not an address type; a bad ``exclude``.
            ValueError: not an IP address.
        """
        if exclude:
            with self._lock:
                return self._pick(key, exclude).server
        try:  # the common case, an IPv4 text, in one C call
            h = hash_bytes(_inet_pton(_AF_INET, key), self._seed)
        except (OSError, ValueError, TypeError):  # anything else: the full parse
            h = self._hash(key)
        # ConsistentHash._owner, inline: a call is a fifth of this lookup.
        table, shift = self._index
        positions, owners = table[h >> shift]
        try:
            return owners[bisect_right(positions, h)]
        except IndexError:
            raise self._unavailable() from None

    def _hash(self, key: Any) -> int:
        if type(key) is str:
            packed = pton(key)
            if packed is not None:
                return hash_bytes(packed, self._seed)
        if key is None:
            raise TypeError("IPHash needs a key: the client's IP address")
        try:
            packed = ip_key(key)
        except TypeError:
            raise TypeError(
                f"IPHash key must be an IP address, as a str or an ipaddress object, got {key!r}"
            ) from None
        return hash_bytes(packed, self._seed)
