"""The balanced httpx transport's cost per request over plain httpx, on loopback.

One backend runs in a subprocess (its own core): a minimal asyncio HTTP/1.1
server answering every request with a small keep-alive response, so the
client's work dominates. Each client sends ``GET /`` in a loop:

- plain ``httpx.Client`` (and ``AsyncClient``) to the backend: the floor;
- ``BalancedTransport`` over ``Pool(RoundRobin([backend]))``: the bare cost;
- ``BalancedTransport`` over ``Pool(LeastResponseTime, health=HealthTracker())``,
  the configuration a real client uses;
- elastic-transport's ``Transport(..., node_class="httpx")`` (and
  ``AsyncTransport`` with ``"httpxasync"``), the peer, when installed.

Rounds are interleaved (every client once per round, in an order that
rotates) and each overhead is the median over rounds of the client's time
divided by plain httpx's time *in the same round*, so that load on the
shared machine, which moves whole rounds, cancels out. Rows are the median
microseconds per request, wall time and this process's CPU time (the
client's work: the backend runs elsewhere), and the overheads in per cent.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import httpx
from timing import Row

import balancekit as bk
from balancekit.drivers.httpx import AsyncBalancedTransport, BalancedTransport

SERVER = r"""
import asyncio, sys
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
            b"Connection: keep-alive\r\n\r\nok")
class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(RESPONSE)
async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.to_thread(sys.stdin.read)   # until the parent closes stdin
asyncio.run(main())
"""

ROUNDS = 41


def start_backend() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    port = int(process.stdout.readline())
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    return process, f"http://127.0.0.1:{port}"


def per_request(send: Callable[[], object], requests: int) -> tuple[float, float]:
    """Seconds of wall time and of this process's CPU per request."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(requests):
        send()
    return (time.perf_counter() - wall) / requests, (time.process_time() - cpu) / requests


async def per_request_async(
    send: Callable[[], Awaitable[object]], requests: int
) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(requests):
        await send()
    return (time.perf_counter() - wall) / requests, (time.process_time() - cpu) / requests


Timings = dict[str, tuple[float, float, float, float]]


def summarise(samples: dict[str, list[tuple[float, float]]]) -> Timings:
    """Per client: median wall and CPU seconds per request, and the medians of its
    per-round ratios to the first client (plain httpx) measured in the same round."""
    floor = next(iter(samples.values()))
    summary: Timings = {}
    for name, values in samples.items():
        summary[name] = (
            statistics.median(w for w, _ in values),
            statistics.median(c for _, c in values),
            statistics.median(w / f for (w, _), (f, _) in zip(values, floor, strict=True)),
            statistics.median(c / f for (_, c), (_, f) in zip(values, floor, strict=True)),
        )
    return summary


def rotated(names: list[str], round_: int) -> list[str]:
    """The clients' order in a round: each takes every position in turn."""
    shift = round_ % len(names)
    return names[shift:] + names[:shift]


def sync_clients(url: str) -> dict[str, tuple[Callable[[], object], Callable[[], None]]]:
    plain = httpx.Client(base_url=url)
    bare = httpx.Client(
        transport=BalancedTransport(bk.Pool(bk.RoundRobin([url]))), base_url="http://service"
    )
    real_pool = bk.Pool(bk.LeastResponseTime([url]), health=bk.HealthTracker())
    real = httpx.Client(transport=BalancedTransport(real_pool), base_url="http://service")
    clients: dict[str, tuple[Callable[[], object], Callable[[], None]]] = {
        "plain httpx.Client": (lambda: plain.get("/"), plain.close),
        "BalancedTransport(Pool(RoundRobin))": (lambda: bare.get("/"), bare.close),
        "BalancedTransport(Pool(LeastResponseTime, health))": (lambda: real.get("/"), real.close),
    }
    try:
        from elastic_transport import NodeConfig, Transport
    except ImportError:
        print("bench_http: elastic-transport not installed, peer skipped", file=sys.stderr)
        return clients
    port = int(url.rsplit(":", 1)[1])
    peer = Transport([NodeConfig("http", "127.0.0.1", port)], node_class="httpx", max_retries=2)
    clients["elastic-transport Transport(httpx)"] = (
        lambda: peer.perform_request("GET", "/"),
        peer.close,
    )
    return clients


def measure_sync(url: str, requests: int) -> Timings:
    clients = sync_clients(url)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    try:
        for send, _ in clients.values():
            per_request(send, 200)  # connect and warm up
        for round_ in range(ROUNDS):
            for name in rotated(list(clients), round_):
                samples[name].append(per_request(clients[name][0], requests))
    finally:
        for _, close in clients.values():
            close()
    return summarise(samples)


async def measure_async(url: str, requests: int) -> Timings:
    plain = httpx.AsyncClient(base_url=url)
    pool = bk.Pool(bk.LeastResponseTime([url]), health=bk.HealthTracker())
    balanced = httpx.AsyncClient(transport=AsyncBalancedTransport(pool), base_url="http://service")
    clients: dict[str, tuple[Callable[[], Awaitable[object]], Callable[[], Awaitable[None]]]] = {
        "plain httpx.AsyncClient": (lambda: plain.get("/"), plain.aclose),
        "AsyncBalancedTransport(Pool(LeastResponseTime, health))": (
            lambda: balanced.get("/"),
            balanced.aclose,
        ),
    }
    try:
        from elastic_transport import AsyncTransport, NodeConfig

        port = int(url.rsplit(":", 1)[1])
        peer = AsyncTransport(
            [NodeConfig("http", "127.0.0.1", port)], node_class="httpxasync", max_retries=2
        )
        clients["elastic-transport AsyncTransport(httpxasync)"] = (
            lambda: peer.perform_request("GET", "/"),
            peer.close,
        )
    except ImportError:
        pass
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    try:
        for send, _ in clients.values():
            await per_request_async(send, 200)
        for round_ in range(ROUNDS):
            for name in rotated(list(clients), round_):
                samples[name].append(await per_request_async(clients[name][0], requests))
    finally:
        for _, close in clients.values():
            await close()
    return summarise(samples)


def rows_for(group: str, timings: Timings) -> list[Row]:
    """Wall and CPU microseconds per request, then each one's overhead over the first (plain)."""
    rows: list[Row] = []
    for index, label in enumerate(("wall", "client CPU")):
        for name, values in timings.items():
            rows.append(Row(group, f"{label} per request", 1, name, values[index] * 1e6, "us"))
        for name, values in list(timings.items())[1:]:
            overhead = (values[index + 2] - 1) * 100
            rows.append(Row(group, f"{label} overhead vs plain", 1, name, overhead, "%"))
    return rows


def run(quick: bool) -> list[Row]:
    requests = 25 if quick else 100  # per client and round
    process, url = start_backend()
    try:
        rows = rows_for("http sync", measure_sync(url, requests))
        rows += rows_for("http async", asyncio.run(measure_async(url, requests)))
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(5)
    return rows


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(f"{row.group:11} {row.case:30} {row.impl:58} {row.value:8.1f} {row.unit}")
