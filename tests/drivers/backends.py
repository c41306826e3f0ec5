"""Real HTTP backends and a real redis-server on 127.0.0.1 for the driver tests.

A :class:`Backend` is a threaded HTTP/1.1 server in this process, listening on
a free loopback port. Its behaviour can be changed while it runs: a service
``delay``, a ``status`` for every answer (503 to play a failing server), a
``hang`` that never answers, and :meth:`Backend.kill`, which closes the
listening socket *and* every open connection, as a crashed process would.

``GET /health`` answers ``health_status`` at once; ``GET /stream`` sends its
body in two halves, the second only once ``release_stream`` is set; any other
path sleeps ``delay`` and answers ``status`` with the backend's name as the body.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

REDIS_INSTALL_HINT = (
    "redis-server not found: install it (apt-get install redis-server, "
    "brew install redis) to run the Redis route store tests"
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Backend:
    """One HTTP backend on 127.0.0.1 (see the module docstring)."""

    def __init__(self, name: str, delay: float = 0.005) -> None:
        self.name = name
        self.delay = delay
        self.status = 200
        self.health_status = 200
        self.hang = threading.Event()  # set: requests wait until it is cleared or kill()
        self.release_stream = threading.Event()
        self.killed = threading.Event()
        self.hits: Counter[str] = Counter()  # method + path -> requests started
        self.last_cookies: list[str] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def requests(self) -> int:
        """Requests other than health checks started so far."""
        with self._lock:
            return sum(n for key, n in self.hits.items() if not key.endswith("/health"))

    def kill(self) -> None:
        """Stop listening and reset every open connection, at once."""
        self.killed.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections.clear()

    def close(self) -> None:
        if not self.killed.is_set():
            self.kill()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once

            def setup(self) -> None:
                super().setup()
                with backend._lock:
                    backend._connections.add(self.connection)

            def finish(self) -> None:
                with backend._lock:
                    backend._connections.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

            def _answer(self, status: int, body: bytes) -> None:
                # One write for head and body, as most servers send a small
                # answer: a kill cuts a response before it or after it.
                self.log_request(status)
                head = (
                    f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
                    f"Content-Length: {len(body)}\r\nContent-Type: text/plain\r\n\r\n"
                )
                self.wfile.write(head.encode("latin-1") + body)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                with backend._lock:
                    backend.hits[f"{self.command} {path}"] += 1
                    backend.last_cookies.append(self.headers.get("Cookie") or "")
                if path == "/health":
                    self._answer(backend.health_status, b"ok")
                    return
                # Bounded: a hung request gives up after 10 s or when killed.
                deadline = time.monotonic() + 10.0
                while backend.hang.is_set() and not backend.killed.is_set():
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
                if backend.killed.is_set():
                    return
                if path == "/stream":
                    half = b"x" * 1000
                    self.send_response(200)
                    self.send_header("Content-Length", str(2 * len(half)))
                    self.end_headers()
                    self.wfile.write(half)
                    self.wfile.flush()
                    backend.release_stream.wait(10.0)
                    self.wfile.write(half)
                    return
                time.sleep(backend.delay)
                self._answer(backend.status, f"{backend.name} {self.path}".encode())

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        return Handler

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Backend {self.name} {self.url} delay={self.delay} status={self.status}>"


class Silent:
    """A TCP listener on 127.0.0.1 that accepts connections and never says a word.

    Over ``https://`` a client's TLS handshake never completes (a connect
    timeout: nothing of the request was sent); over ``http://`` the request is
    sent and no answer comes (a read timeout). ``accepted`` counts connections.
    """

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        deadline = time.monotonic() + 60.0  # bounded, whatever the test does
        while not self._closed.is_set() and time.monotonic() < deadline:
            try:
                connection, _ = self._sock.accept()
            except OSError:  # the 50 ms poll, or closed
                continue
            self.accepted += 1
            self._held.append(connection)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(2.0)
        for connection in [*self._held, self._sock]:
            connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A real redis-server on a free loopback port, without persistence."""

    def __init__(self, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError(REDIS_INSTALL_HINT)
        self.port = free_port() if port is None else port
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        """Kill the server (SIGKILL, as a crash) and wait for it to exit."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(5.0)

    @property
    def alive(self) -> bool:
        return self._process.poll() is None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def new_threads(name: str, before: set[threading.Thread]) -> list[threading.Thread]:
    """Live threads called ``name`` that were not in ``before``."""
    return [t for t in threading.enumerate() if t.name == name and t not in before]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.01) -> bool:
    """Poll ``predicate`` until true or about ``timeout`` seconds pass (timeout / step rounds)."""
    for _ in range(int(timeout / step) + 1):
        if predicate():
            return True
        time.sleep(step)
    return predicate()
