"""Lease: one unit of in-flight work on a server.

A lease is what ``acquire()`` returns. It counts as one request in flight on
``lease.server`` until it is released, once: a second release is a no-op, so
error paths may release defensively. Releasing records the outcome (``True``,
``False``, or ``None`` for a request the caller abandoned) and the latency
(the owner's clock at release minus at acquire).
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

__all__ = ["Lease", "LeaseOwner"]


class LeaseOwner(Protocol):
    """What hands out leases and takes them back (a Balancer or a Pool)."""

    def _release(self, lease: Lease, ok: bool | None) -> bool: ...


class Lease:
    """One request in flight on ``server``.

    Use it as a context manager, or release it by hand::

        with lb.acquire() as lease:        # an Exception in the block releases
            send(lease.server)             # with ok=False, a cancellation with None
        lease = lb.acquire()
        lease.release(ok=False)            # a second release does nothing

    The outcome is ``True`` (served), ``False`` (failed: the server's fault as
    far as the caller can tell) or ``None``: *abandoned*, the caller gave up
    (a cancelled task, a KeyboardInterrupt), which says nothing about the
    server. A ``with`` block that ends in an ``Exception`` releases ``False``,
    in any other ``BaseException`` ``None``, normally ``True``.

    Attributes:
        server: the chosen server id.
        started: the owner's clock when the lease was acquired.
        latency: seconds from acquire to release; ``None`` while open, or if
            the clock gave no usable reading at release.
        ok: the outcome given at release; ``None`` while open or when abandoned
            (:attr:`released` tells the two apart).
        cookie: the sticky cookie to send back to the client (Pool only), else ``None``.
        moved: ``True`` when a sticky client was re-routed to a new server (Pool only).
    """

    __slots__ = (
        "_done",
        "_owner",
        "context",
        "cookie",
        "latency",
        "moved",
        "ok",
        "server",
        "started",
        "token",
    )

    def __init__(
        self,
        owner: LeaseOwner,
        server: str,
        started: float,
        token: object = None,
    ) -> None:
        self._owner = owner
        self.server = server
        self.started = started
        self.token = token  # the strategy's record of this lease's server
        self.context: object = None  # a wrapping owner's record (the Pool's)
        self.latency: float | None = None
        self.ok: bool | None = None
        self._done = False  # set by the owner's _release, under its lock
        self.cookie: str | None = None
        self.moved = False

    @property
    def released(self) -> bool:
        """Whether the lease has been released."""
        return self._done

    @property
    def abandoned(self) -> bool:
        """Whether the lease was released with ``ok=None`` (the caller gave up)."""
        return self._done and self.ok is None

    def release(self, ok: bool | None = True) -> bool:
        """Release the lease, recording its outcome; O(owner's release).

        ``ok`` is ``True``, ``False`` or ``None`` (abandoned: the request's
        fate is unknown, so health sees neither a success nor a failure,
        while latency-aware strategies still learn the time it took, a lower
        bound, without a failure penalty).

        Returns ``True`` if this call released it, ``False`` if it was
        already released (nothing changes then). Thread-safe.

        Raises:
            TypeError: ``ok`` is not ``True``, ``False`` or ``None``; nothing changes.
        """
        if ok is True or ok is False or ok is None:  # the common case in one test
            return self._owner._release(self, ok)
        raise TypeError(f"ok must be True, False or None, got {ok!r}")

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Only an Exception is a failed request; KeyboardInterrupt, SystemExit or a
        # cancelled task says nothing about the server: the request is abandoned.
        if exc_type is None:
            self.release(ok=True)
        else:
            self.release(ok=False if issubclass(exc_type, Exception) else None)

    def __repr__(self) -> str:
        if not self._done:
            state = "open"
        else:
            outcome = "abandoned" if self.ok is None else f"ok={self.ok}"
            state = f"released {outcome} latency={self.latency!r}"
        return f"<Lease server={self.server!r} started={self.started!r} {state}>"
