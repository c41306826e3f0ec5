"""Excluding servers already tried: the argument check and the fallback for any strategy.

A retry should not go back to a server that just failed it. Every strategy's
``get_server`` and ``acquire`` take ``exclude=``, the servers already tried:
the answer is never one of them while a server of weight > 0 outside them
exists, and when every such server is excluded the exclusion is dropped (as
Envoy does after its host-selection retries), so a one-server pool can still
retry. Each strategy says in its own ``_choose_other`` which server comes
next; :func:`choose_other` is the fallback for strategies that do not.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Balancer, Member

__all__ = ["check_exclude", "choose_other"]


def check_exclude(exclude: object) -> Set[str]:
    """``exclude`` as a set of server ids; ids that are not members are allowed.

    >>> sorted(check_exclude(["b", "a", "b"]))
    ['a', 'b']
    >>> check_exclude("a")
    Traceback (most recent call last):
    ...
    TypeError: exclude must be a collection of server ids, not a str: got 'a'

    Complexity: O(k) for ``k`` ids.

    Raises:
        TypeError: a ``str`` or ``bytes`` (which would iterate as characters), a
            non-iterable, or an id that is not a ``str``.
    """
    if isinstance(exclude, (str, bytes)):
        kind = type(exclude).__name__
        raise TypeError(
            f"exclude must be a collection of server ids, not a {kind}: got {exclude!r}"
        )
    if not isinstance(exclude, Iterable):
        raise TypeError(f"exclude must be a collection of server ids, got {exclude!r}")
    items = exclude if isinstance(exclude, (set, frozenset)) else list(exclude)
    for server in items:
        if not isinstance(server, str):
            raise TypeError(f"exclude must hold server ids (str), got {server!r} in {exclude!r}")
    return items if isinstance(items, (set, frozenset)) else frozenset(items)


def choose_other(balancer: Balancer, key: Any, exclude: Set[str]) -> Member | None:
    """A member of weight > 0 outside ``exclude``, or ``None`` if every one is excluded.

    The fallback for a strategy without its own order: it asks the strategy
    itself up to once per member, then takes the least loaded server
    (``in_flight / weight``, then the smaller id). O(n) calls of ``_choose``.
    """
    eligible = [m for m in balancer._members.values() if m.weight > 0 and m.server not in exclude]
    if not eligible:
        return None
    for _ in range(len(balancer._members)):
        member = balancer._choose(key)
        if member.server not in exclude:
            return member
    return min(eligible, key=lambda m: (m.in_flight / m.weight, m.server))
