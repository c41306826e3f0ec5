"""RedisRouteStore: one sticky-session route table shared by many proxies, in Redis.

A :class:`~balancekit.StickySession` keeps ``session id -> server`` bindings in
a :class:`~balancekit.RouteStore`. With the default in-memory store every
proxy process has its own table, so a session bound through one proxy is
unknown to the next. :class:`RedisRouteStore` puts the table in Redis: every
proxy using the same server and ``prefix`` routes a session identically.

- **Expiry is Redis's**: a binding is one key set with ``PX`` (the ttl in
  milliseconds) in the same ``SET`` command, so it never exists without its
  expiry; a hit renews it with ``GETEX ... PX`` (Redis >= 6.2), one atomic
  command, which is the sliding expiry ``RouteStore.get`` asks for.
- **An outage degrades to no stickiness**: a failing command is never an
  exception to the request. A lookup answers ``None`` (the strategy picks a
  server), a bind or delete is dropped, and each is counted. After a failure
  the store stops calling Redis for ``retry_after`` seconds (of the session's
  clock), then lets one call through to try again: once a failure is seen,
  at most one request per ``retry_after`` waits for a socket timeout.

Use a client with short socket timeouts and no retries (:meth:`from_url`
makes one); redis-py's defaults (5 s timeouts, 10 retries with backoff)
would let the first request of an outage wait seconds.
"""

from __future__ import annotations

import math
import re
import threading
from typing import Any

import redis

from ..sticky.route_store import check_ttl
from ..validate import check_positive, show

__all__ = ["RedisRouteStore", "masked"]

# To the last @ before any query: a password may hold "@" or "/" (p@ss, pa/ss).
_PASSWORD_IN_AUTHORITY = re.compile(r"(?<=://)([^/@:]*):[^?#]*@")
_PASSWORD_IN_QUERY = re.compile(r"(?<=[?&]password=)[^&#]*")


def masked(url: str) -> str:
    """``repr(url)`` with any password replaced by ``***``, fit for an error message.

    >>> masked("redis://app:s3cret@cache:6379/0?password=s3cret")
    "'redis://app:***@cache:6379/0?password=***'"
    """
    url = _PASSWORD_IN_AUTHORITY.sub(r"\1:***@", url)
    return show(_PASSWORD_IN_QUERY.sub("***", url))


class RedisRouteStore:
    """A :class:`~balancekit.RouteStore` in Redis, shared by every proxy that uses it.

    >>> store = RedisRouteStore.from_url("redis://127.0.0.1:9/0", ttl=60.0, timeout=0.05)
    >>> store.get("alice", now=0.0) is None     # nothing listens on port 9: an outage
    True
    >>> store.failed_lookups, store.available(now=0.0)
    (1, False)

    Args:
        client: a ``redis.Redis`` client (set short ``socket_timeout`` and
            ``socket_connect_timeout``; see the module docstring).
        ttl: seconds a binding lives after its last use (``None``: until
            deleted). Give the same value as the StickySession's ``ttl``.
        prefix: prepended to every session id to make its key, so that
            several route tables can share one Redis database.
        retry_after: seconds after a failure during which Redis is not called.

    Complexity: ``get``, ``set``, ``delete`` one Redis round trip each
    (none while backing off); ``len`` O(keys) with ``SCAN``. Thread-safe
    (redis-py's connection pool is).

    Raises:
        TypeError: ``client`` is not a ``redis.Redis``, a bad ``prefix``.
        ValueError: a bad ``ttl``, an empty ``prefix``, a bad ``retry_after``.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl: float | None = None,
        prefix: str = "balancekit:route:",
        retry_after: float = 1.0,
    ) -> None:
        if not isinstance(client, redis.Redis):
            raise TypeError(f"client must be a redis.Redis, got {client!r}")
        self._ttl = check_ttl(ttl)
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a non-empty str, got {prefix!r}")
        if not prefix:
            raise ValueError("prefix must be a non-empty str, got ''")
        self._retry_after = check_positive("retry_after", retry_after)
        self._client = client
        self._prefix = prefix
        self._px = None if self._ttl is None else max(1, math.ceil(self._ttl * 1000))
        self._lock = threading.Lock()
        self._down_until = -math.inf  # no Redis calls before this time (a failure's backoff)
        self._latest = -math.inf  # the latest `now` seen, for the calls that get none
        self.errors = 0  # Redis commands that failed
        self.failed_lookups = 0  # lookups answered None because Redis failed or was backed off
        self.dropped_binds = 0  # binds not stored for the same reason
        self.dropped_deletes = 0  # deletes not done for the same reason
        self.last_error: Exception | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ttl: float | None = None,
        prefix: str = "balancekit:route:",
        timeout: float = 0.1,
        retry_after: float = 1.0,
    ) -> RedisRouteStore:
        """A store over a new client for ``url`` with ``timeout``-second sockets and no retries.

        ``url`` is a Redis URL: ``redis://[[user]:password@]host[:port][/db]``,
        ``rediss://`` (TLS) or ``unix://path``. Nothing connects yet.

        >>> RedisRouteStore.from_url("http://cache:6379")
        Traceback (most recent call last):
        ...
        ValueError: url must be a Redis URL (redis://, rediss:// or unix://), got 'http://cache:6379'

        Raises:
            TypeError: ``url`` is not a str.
            ValueError: a bad ``url`` (naming it, its password masked; redis-py's
                own error is the ``__cause__``) or a bad option.
        """
        if not isinstance(url, str):
            raise TypeError(f"url must be a Redis URL (a str), got {show(url)}")
        seconds = check_positive("timeout", timeout)
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        try:
            client = redis.Redis.from_url(
                url,
                socket_timeout=seconds,
                socket_connect_timeout=seconds,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as error:
            shown = masked(url)
            refused = ValueError(
                f"url must be a Redis URL (redis://, rediss:// or unix://), got {shown}"
            )
            # redis-py's message may quote a piece of the password: keep it only when
            # there was none to hide.
            raise refused from (error if shown == show(url) else None)
        try:
            return cls(client, ttl=ttl, prefix=prefix, retry_after=retry_after)
        except BaseException:
            client.close()
            raise

    # -- the RouteStore protocol --------------------------------------------------

    def get(self, key: str, now: float) -> str | None:
        """The server bound to ``key``, renewing its ttl; ``None`` if unbound or Redis fails."""
        if not self.available(now):
            self._count("failed_lookups")
            return None
        name = self._prefix + key
        try:
            if self._px is None:
                value: Any = self._client.get(name)
            else:
                value = self._client.getex(name, px=self._px)
        except (redis.RedisError, OSError) as error:
            self._failed(error, "failed_lookups")
            return None
        self._succeeded()
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def set(self, key: str, server: str, now: float) -> None:
        """Bind ``key`` to ``server`` with its ttl in one ``SET``; dropped if Redis fails."""
        if not self.available(now):
            self._count("dropped_binds")
            return
        try:
            self._client.set(self._prefix + key, server, px=self._px)
        except (redis.RedisError, OSError) as error:
            self._failed(error, "dropped_binds")
            return
        self._succeeded()

    def delete(self, key: str) -> None:
        """Drop ``key``'s binding; dropped (counted) if Redis fails or is backed off."""
        if not self.available(self._latest):  # no `now` here: the latest one seen
            self._count("dropped_deletes")
            return
        try:
            self._client.delete(self._prefix + key)
        except (redis.RedisError, OSError) as error:
            self._failed(error, "dropped_deletes")
            return
        self._succeeded()

    def __len__(self) -> int:
        """Keys under ``prefix`` (0 while Redis fails). O(keys): a ``SCAN``."""
        if not self.available(self._latest):
            return 0
        try:
            count = sum(1 for _ in self._client.scan_iter(match=self._match(), count=1000))
        except (redis.RedisError, OSError) as error:
            self._failed(error, None)
            return 0
        self._succeeded()
        return count

    # -- outage -------------------------------------------------------------------

    def available(self, now: float) -> bool:
        """Whether Redis may be called at ``now``: false while backing off after a failure.

        When the backoff is over, one call is let through to try Redis again
        and the others keep backing off until it succeeds (then all go) or
        fails (another ``retry_after``).
        """
        with self._lock:
            self._latest = max(self._latest, now)
            if self._down_until == -math.inf:
                return True
            if self._latest >= self._down_until:
                self._down_until = self._latest + self._retry_after  # this call is the probe
                return True
            return False

    def _succeeded(self) -> None:
        if self._down_until != -math.inf:  # a probe got through: Redis is back
            with self._lock:
                self._down_until = -math.inf

    def _count(self, counter: str) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def _failed(self, error: Exception, counter: str | None) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = error
            self._down_until = self._latest + self._retry_after
            if counter is not None:
                setattr(self, counter, getattr(self, counter) + 1)

    def _match(self) -> str:
        # SCAN's MATCH is a glob: escape the prefix so only its own keys match.
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self._prefix)
        return escaped + "*"

    # -- reading ------------------------------------------------------------------

    @property
    def client(self) -> redis.Redis:
        """The Redis client."""
        return self._client

    @property
    def ttl(self) -> float | None:
        """Seconds a binding lives after its last use (``None``: until deleted)."""
        return self._ttl

    @property
    def prefix(self) -> str:
        """The key prefix."""
        return self._prefix

    @property
    def retry_after(self) -> float:
        """Seconds Redis is left alone after a failure."""
        return self._retry_after

    def __repr__(self) -> str:
        state = "backing off" if self._down_until > self._latest else "up"
        return (
            f"RedisRouteStore({self._client!r}, ttl={self._ttl!r}, prefix={self._prefix!r}, "
            f"{state}, errors={self.errors}, failed_lookups={self.failed_lookups}, "
            f"dropped_binds={self.dropped_binds})"
        )
