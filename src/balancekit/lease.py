"""Lease: one unit of in-flight work on a server.

A lease is what ``acquire()`` returns. It counts as one request in flight on
``lease.server`` until it is released, once: a second release is a no-op, so
error paths may release defensively. Releasing records the outcome and the
latency (the owner's clock at release minus at acquire).
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

__all__ = ["Lease", "LeaseOwner"]


class LeaseOwner(Protocol):
    """What hands out leases and takes them back (a Balancer or a Pool)."""

    def _release(self, lease: Lease, ok: bool) -> bool: ...


class Lease:
    """One request in flight on ``server``.

    Use it as a context manager, or release it by hand::

        with lb.acquire() as lease:        # an exception in the block
            send(lease.server)             # releases with ok=False
        lease = lb.acquire()
        lease.release(ok=False)            # a second release does nothing

    Attributes:
        server: the chosen server id.
        started: the owner's clock when the lease was acquired.
        latency: seconds from acquire to release, ``None`` while open.
        ok: the outcome given at release, ``None`` while open.
        cookie: the sticky cookie to send back to the client (Pool only), else ``None``.
        moved: ``True`` when a sticky client was re-routed to a new server (Pool only).
    """

    __slots__ = (
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
        self.cookie: str | None = None
        self.moved = False

    @property
    def released(self) -> bool:
        """Whether the lease has been released."""
        return self.ok is not None

    def release(self, ok: bool = True) -> bool:
        """Release the lease, recording its outcome; O(owner's release).

        Returns ``True`` if this call released it, ``False`` if it was
        already released (nothing changes then). Thread-safe.
        """
        return self._owner._release(self, bool(ok))

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Only an Exception is a failed request; KeyboardInterrupt, SystemExit or a
        # cancelled task says nothing about the server's health.
        self.release(ok=exc_type is None or not issubclass(exc_type, Exception))

    def __repr__(self) -> str:
        state = "open" if self.ok is None else f"released ok={self.ok} latency={self.latency!r}"
        return f"<Lease server={self.server!r} started={self.started!r} {state}>"
