"""Route stores: where a sticky session's application session ids map to servers.

A :class:`~balancekit.sticky.StickySession` keeps ``session id -> server``
bindings behind the small :class:`RouteStore` protocol, so that a deployment
with several proxy processes can plug in a shared store (Redis, memcached, a
database) without touching the session logic. The store never reads a clock:
the session passes ``now`` (its injected clock, read once per call), which
keeps stores deterministic and testable on a ``ManualClock``.

:class:`MemoryRouteStore` is the default: an in-process table bounded in size
(least recently used entries go first) whose entries expire ``ttl`` seconds
after their last use (a sliding expiry).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Protocol, runtime_checkable

from ..validate import check_count, check_server, check_time, show

__all__ = ["MemoryRouteStore", "RouteStore", "check_ttl"]

_REPR_LIMIT = 8


@runtime_checkable
class RouteStore(Protocol):
    """What a route table needs from its storage.

    Keys are session ids, values server ids, ``now`` the session's clock
    reading. A store decides expiry and eviction itself; it must be safe to
    call from many threads at once.
    """

    def get(self, key: str, now: float) -> str | None:
        """The server bound to ``key``, or ``None``; a hit counts as a use (refreshes expiry)."""
        ...

    def set(self, key: str, server: str, now: float) -> None:
        """Bind ``key`` to ``server`` (replacing any binding), used at ``now``."""
        ...

    def delete(self, key: str) -> None:
        """Drop the binding of ``key``; no error when there is none."""
        ...

    def __len__(self) -> int:
        """How many bindings the store holds (it may count expired ones not yet purged)."""
        ...


class MemoryRouteStore:
    """An in-memory route table with a size bound (LRU) and a sliding TTL.

    An entry expires when ``ttl`` seconds have passed since its last ``get``
    hit or ``set``: at exactly ``ttl`` it is gone. When a ``set`` would exceed
    ``max_entries``, the least recently used entries are evicted. Because the
    table is kept in order of last use and time never goes backwards, expired
    entries are always at the front, so purging them is amortised O(1).

    >>> store = MemoryRouteStore(max_entries=2, ttl=10.0)
    >>> store.set("alice", "a", now=0.0)
    >>> store.set("bob", "b", now=1.0)
    >>> store.get("alice", now=5.0)       # a hit refreshes alice
    'a'
    >>> store.set("carol", "c", now=6.0)  # full: bob, the least recently used, goes
    >>> store.get("bob", now=6.0) is None
    True
    >>> store.get("alice", now=15.0) is None   # 10 s after its last use
    True

    Complexity: ``get``, ``set`` and ``delete`` O(1) (amortised for the
    purge of expired entries); ``len`` O(1). Thread-safe: one lock guards
    the table.

    Raises:
        TypeError: ``max_entries`` is not an int or ``ttl`` not a number
            (``bool`` counts as neither).
        ValueError: ``max_entries`` < 1, or ``ttl`` not finite and > 0.
    """

    __slots__ = ("_entries", "_latest", "_lock", "_max_entries", "_ttl")

    def __init__(self, max_entries: int = 10_000, ttl: float | None = None) -> None:
        self._max_entries = check_count("max_entries", max_entries)
        self._ttl = check_ttl(ttl)
        # key -> (server, last use); ordered from least to most recently used.
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()
        # The latest `now` seen. Threads read the clock before taking the lock,
        # so their calls can arrive slightly out of order; treating an earlier
        # `now` as this one keeps the table in order of last use, which the
        # front-only purge relies on.
        self._latest = -math.inf
        self._lock = threading.Lock()

    @property
    def max_entries(self) -> int:
        """The most bindings held at once."""
        return self._max_entries

    @property
    def ttl(self) -> float | None:
        """Seconds an unused binding lives (``None``: until evicted)."""
        return self._ttl

    def get(self, key: str, now: float) -> str | None:
        """The server bound to ``key`` if the binding is live; a hit refreshes it. O(1).

        Raises:
            TypeError, ValueError: ``key`` is not a str, or ``now`` not finite seconds.
        """
        _check_key(key)
        now = check_time(now)
        with self._lock:
            now = self._latest = max(self._latest, now)
            entry = self._entries.get(key)
            if entry is None:
                return None
            server, used = entry
            if self._expired(used, now):
                del self._entries[key]
                return None
            self._entries[key] = (server, now)
            self._entries.move_to_end(key)
            return server

    def set(self, key: str, server: str, now: float) -> None:
        """Bind ``key`` to ``server``, evicting expired then least recently used entries. O(1).

        Raises:
            TypeError, ValueError: ``key`` or ``server`` is not a non-empty str,
                or ``now`` is not finite seconds; nothing is stored then.
        """
        _check_key(key)
        check_server(server)
        now = check_time(now)
        with self._lock:
            now = self._latest = max(self._latest, now)
            entries = self._entries
            entries[key] = (server, now)
            entries.move_to_end(key)
            self._purge(now)
            while len(entries) > self._max_entries:
                entries.popitem(last=False)

    def delete(self, key: str) -> None:
        """Drop ``key``'s binding if there is one. O(1).

        Raises:
            TypeError, ValueError: ``key`` is not a non-empty str.
        """
        _check_key(key)
        with self._lock:
            self._entries.pop(key, None)

    def expire(self, now: float) -> int:
        """Drop every binding expired at ``now``; return how many. Amortised O(1) each.

        Raises:
            TypeError, ValueError: ``now`` is not finite seconds.
        """
        now = check_time(now)
        with self._lock:
            return self._purge(max(self._latest, now))

    def clear(self) -> None:
        """Drop every binding. O(n)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        # Presence only, expired or not: `get` is the lookup that honours time.
        return key in self._entries

    def _expired(self, used: float, now: float) -> bool:
        return self._ttl is not None and now - used >= self._ttl

    def _purge(self, now: float) -> int:
        entries = self._entries
        purged = 0
        while entries:
            key, (_, used) = next(iter(entries.items()))
            if not self._expired(used, now):
                break
            del entries[key]
            purged += 1
        return purged

    def _check(self) -> None:
        """Assert the invariants: the bound holds and entries are in order of last use."""
        with self._lock:
            assert len(self._entries) <= self._max_entries, len(self._entries)
            times = [used for _, used in self._entries.values()]
            assert times == sorted(times), times
            for key, (server, _) in self._entries.items():
                assert isinstance(key, str) and isinstance(server, str), (key, server)

    def __repr__(self) -> str:
        with self._lock:
            if len(self._entries) <= _REPR_LIMIT:
                held = repr({key: server for key, (server, _) in self._entries.items()})
            else:  # a full table would flood a log line
                held = f"<{len(self._entries)} routes>"
        return f"MemoryRouteStore({held}, max_entries={self._max_entries}, ttl={self._ttl!r})"


def _check_key(key: object) -> None:
    if not isinstance(key, str):
        raise TypeError(f"key must be a non-empty str, got {show(key)}")
    if not key:
        raise ValueError("key must be a non-empty str, got ''")


def check_ttl(ttl: object) -> float | None:
    """Validate a time-to-live: ``None`` (forever) or a finite number of seconds > 0.

    >>> check_ttl(30)
    30.0
    >>> check_ttl(0)
    Traceback (most recent call last):
    ...
    ValueError: ttl must be None or a finite number > 0, got 0

    Raises:
        TypeError: not a number (``bool`` included) nor ``None``.
        ValueError: zero, negative, infinite or NaN.
    """
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"ttl must be None or a finite number > 0, got {ttl!r}")
    value = float(ttl)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"ttl must be None or a finite number > 0, got {ttl!r}")
    return value
