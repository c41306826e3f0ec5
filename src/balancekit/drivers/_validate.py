"""Argument checks the drivers share (the core's own are in :mod:`balancekit.validate`)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["check_statuses"]


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
