"""A response body that holds its lease: the lease ends when the response is closed.

The balanced transports hand httpx a response whose stream wraps the inner
transport's: reading it passes the chunks through, and closing it (which
``client.get()`` does once the body is read, and a ``client.stream()`` block
at its end) releases the lease with the response's verdict. A body that
breaks while read releases it as a failure; an interrupt or a cancellation
releases it abandoned (``ok=None``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import httpx

from ..lease import Lease

__all__ = [
    "AsyncLeaseStream",
    "LeaseStream",
    "adiscard",
    "async_stream",
    "discard",
    "end_lease",
    "sync_stream",
]


def end_lease(lease: Lease, error: BaseException) -> None:
    """End ``lease`` after ``error``: a failure for an ``Exception``; abandoned
    (``ok=None``) for an interrupt or a cancellation, which says nothing about the
    server. A lease already released stays as it was (``Lease.release`` is once)."""
    lease.release(ok=False if isinstance(error, Exception) else None)


class LeaseStream(httpx.SyncByteStream):
    """A response body that releases its lease when closed (or when reading it fails).

    The first release wins: a body that broke has released its lease as a
    failure, and the close that follows changes nothing.
    """

    def __init__(self, stream: httpx.SyncByteStream, lease: Lease, ok: bool) -> None:
        self._stream = stream
        self._lease = lease
        self._ok = ok

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except BaseException as error:
            end_lease(self._lease, error)
            raise

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._lease.release(ok=self._ok)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._stream!r} {self._lease!r} ok={self._ok!r}>"


class AsyncLeaseStream(httpx.AsyncByteStream):
    """The async twin of :class:`LeaseStream`."""

    def __init__(self, stream: httpx.AsyncByteStream, lease: Lease, ok: bool) -> None:
        self._stream = stream
        self._lease = lease
        self._ok = ok

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except BaseException as error:
            end_lease(self._lease, error)
            raise

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._lease.release(ok=self._ok)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._stream!r} {self._lease!r} ok={self._ok!r}>"


def sync_stream(response: httpx.Response) -> httpx.SyncByteStream:
    stream = response.stream
    if not isinstance(stream, httpx.SyncByteStream):
        raise TypeError(f"the inner transport returned a non-sync stream {stream!r}")
    return stream


def async_stream(response: httpx.Response) -> httpx.AsyncByteStream:
    stream = response.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise TypeError(f"the inner transport returned a non-async stream {stream!r}")
    return stream


def discard(response: httpx.Response) -> None:
    """Read and close a response that is retried, so its connection can be reused."""
    try:
        with contextlib.suppress(httpx.HTTPError):  # a broken body: nothing to reuse
            response.read()
    finally:
        response.close()


async def adiscard(response: httpx.Response) -> None:
    try:
        with contextlib.suppress(httpx.HTTPError):
            await response.aread()
    finally:
        await response.aclose()
