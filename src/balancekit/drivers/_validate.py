"""Argument checks the drivers share (the core's own are in :mod:`balancekit.validate`)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from ..validate import show

__all__ = [
    "check_family",
    "check_host",
    "check_method",
    "check_methods",
    "check_statuses",
]


def check_statuses(name: str, statuses: object, *, empty: bool) -> range | tuple[int, ...]:
    """``statuses`` as HTTP statuses (ints in [100, 599]): a ``range`` kept as it is
    (O(1) to check), anything else a sorted tuple without repeats. O(len(statuses)).

    >>> check_statuses("statuses", [204, 200, 200], empty=False)
    (200, 204)

    Raises:
        TypeError: not an iterable of ints (a ``str`` or ``bytes`` included).
        ValueError: a status outside [100, 599]; an empty one unless ``empty``.
    """
    if isinstance(statuses, (str, bytes)) or not isinstance(statuses, Iterable):
        raise TypeError(f"{name} must be a collection of HTTP statuses (ints), got {statuses!r}")
    values = list(statuses)
    for status in values:
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError(f"{name} must hold ints, got {status!r} in {statuses!r}")
        if not 100 <= status <= 599:
            raise ValueError(f"{name} must hold HTTP statuses in [100, 599], got {status!r}")
    if not values and not empty:
        raise ValueError(f"{name} must hold at least one status, got {statuses!r}")
    if isinstance(statuses, range):
        return statuses
    return tuple(sorted(set(values)))


_FAMILIES = {0: "AF_UNSPEC", socket.AF_INET: "AF_INET", socket.AF_INET6: "AF_INET6"}

_NOT_IN_HOST = frozenset(" \t\r\n/:@?#[]\\")
"""Characters that say a scheme, a port, a path or brackets came with the name."""


def check_family(family: object) -> int:
    """``family`` for ``getaddrinfo``: ``socket.AF_UNSPEC`` (0), ``AF_INET`` or ``AF_INET6``.

    >>> check_family(99)
    Traceback (most recent call last):
    ...
    ValueError: family must be socket.AF_UNSPEC (0), AF_INET or AF_INET6, got 99

    Raises:
        TypeError: not an int (``bool`` included).
        ValueError: another address family.
    """
    message = f"family must be socket.AF_UNSPEC (0), AF_INET or AF_INET6, got {show(family)}"
    if isinstance(family, bool) or not isinstance(family, int):
        raise TypeError(message)
    if family not in _FAMILIES:
        raise ValueError(message)
    return int(family)


def check_host(host: object) -> str:
    """``host`` as given to ``getaddrinfo``: an IP address or a DNS name. O(len(host)).

    A name is checked as the resolver call would encode it (IDNA: labels of 1
    to 63 characters), at most 253 characters, with no scheme, port, path or
    brackets: ``"api.internal"``, ``"10.0.0.1"``, ``"::1"``, ``"bücher.de"``.

    >>> check_host("db:80")
    Traceback (most recent call last):
    ...
    ValueError: host must be a DNS name or an IP address (no scheme, port or path), got 'db:80'

    Raises:
        TypeError: not a str.
        ValueError: empty, or neither an IP address nor a DNS name, naming it.
    """
    if not isinstance(host, str):
        raise TypeError(f"host must be a non-empty str, got {show(host)}")
    if not host:
        raise ValueError("host must be a non-empty str, got ''")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    problem = ""
    if host.isprintable() and not _NOT_IN_HOST.intersection(host):
        try:
            encoded = host.encode("idna")  # as getaddrinfo encodes a str host
        except UnicodeError as error:
            problem = f" ({error})"
        else:
            if len(encoded.rstrip(b".")) <= 253:
                return host
            problem = f" (a DNS name has at most 253 characters, got {len(encoded)})"
    raise ValueError(
        f"host must be a DNS name or an IP address (no scheme, port or path), got {show(host)}"
        + problem
    )


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
"""RFC 9110's tchar: the characters of a token, such as a method name."""


def check_method(name: str, method: object) -> str:
    """``method`` upper-cased, if it is an HTTP method name (an RFC 9110 token). O(len).

    >>> check_method("method", "get")
    'GET'

    Raises:
        TypeError: not a str.
        ValueError: empty, or a character outside RFC 9110's token characters.
    """
    if not isinstance(method, str):
        raise TypeError(f"{name} must be an HTTP method name (a str), got {show(method)}")
    if not method or not _TOKEN.issuperset(method):
        raise ValueError(
            f"{name} must be an HTTP method name (RFC 9110 token characters), got {show(method)}"
        )
    return method.upper()


def check_methods(name: str, methods: object) -> frozenset[str]:
    """``methods`` as a set of upper-cased HTTP method names (empty allowed). O(len).

    >>> sorted(check_methods("retry_methods", ["get", "POST"]))
    ['GET', 'POST']

    Raises:
        TypeError: not a collection of str (a ``str`` or ``bytes`` itself included).
        ValueError: an item that is not a method name, naming it.
    """
    if isinstance(methods, (str, bytes)) or not isinstance(methods, Iterable):
        raise TypeError(f"{name} must be a collection of method names, got {show(methods)}")
    return frozenset(check_method(f"{name} item", method) for method in methods)
