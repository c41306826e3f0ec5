"""Fixtures for the driver tests: HTTP backends and a redis-server, all on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest

from .backends import REDIS_INSTALL_HINT, Backend, RedisServer, in_ci


@pytest.fixture
def backends() -> Iterator[Callable[..., Backend]]:
    """A factory of backends, every one closed when the test ends."""
    made: list[Backend] = []

    def make(name: str = "b", delay: float = 0.005) -> Backend:
        backend = Backend(name, delay)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server; missing binary: a skip on a laptop, a failure under CI=true."""
    if shutil.which("redis-server") is None:
        if in_ci():
            pytest.fail(REDIS_INSTALL_HINT + " (CI=true: the Redis tests must run)")
        pytest.skip(REDIS_INSTALL_HINT)
    server = RedisServer()
    yield server
    server.kill()
