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
    "Release",
    "adiscard",
    "async_stream",
    "discard",
    "sync_stream",
]


class Release:
    """Ends a lease once: the verdict of the response, failed by a broken body."""

    __slots__ = ("_done", "lease", "ok")

    def __init__(self, lease: Lease, ok: bool) -> None:
        self.lease = lease
        self.ok = ok
        self._done = False

    def __call__(self, error: BaseException | None = None) -> None:
        if self._done:
            return
        self._done = True
        if error is None:
            self.lease.release(ok=self.ok)
        elif isinstance(error, Exception):
            self.lease.release(ok=False)
        else:
            self.lease.release(ok=None)  # the caller gave up: no verdict on the server

    def __repr__(self) -> str:
        return f"Release({self.lease!r}, ok={self.ok!r}, done={self._done!r})"


class LeaseStream(httpx.SyncByteStream):
    """A response body that releases its lease when closed (or when reading it fails)."""

    def __init__(self, stream: httpx.SyncByteStream, release: Release) -> None:
        self._stream = stream
        self._release = release

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except BaseException as error:
            self._release(error)
            raise

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._release()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._stream!r} {self._release!r}>"


class AsyncLeaseStream(httpx.AsyncByteStream):
    """The async twin of :class:`LeaseStream`."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Release) -> None:
        self._stream = stream
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except BaseException as error:
            self._release(error)
            raise

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._release()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._stream!r} {self._release!r}>"


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
