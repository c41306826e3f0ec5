from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

import balancekit as bk
from balancekit.drivers.checks import (
    AsyncHealthChecker,
    HealthChecker,
    HTTPProbe,
    Probe,
    http_probe,
    tcp_probe,
)

from .backends import Backend, free_port, new_threads, wait_until

H = bk.HealthState


def fast_pool(servers: list[str], **options: float) -> bk.Pool:
    tracker = bk.HealthTracker(
        interval=options.get("interval", 0.1),
        timeout=options.get("timeout", 0.08),
        unhealthy_threshold=2,
        healthy_threshold=1,
    )
    return bk.Pool(bk.RoundRobin(servers), health=tracker, panic_threshold=0.0)


def state(pool: bk.Pool, server: str) -> bk.HealthState | None:
    return pool.stats()[server].health


# -- probes -----------------------------------------------------------------------


def test_http_probe_accepts_only_its_statuses(backends: Callable[..., Backend]) -> None:
    backend = backends("a")
    probe = http_probe("/health")
    try:
        assert probe(backend.url) is True
        backend.health_status = 503
        assert probe(backend.url) is False
        backend.health_status = 302
        assert probe(backend.url) is False
        assert http_probe(statuses=range(200, 400))(backend.url) is True
        # a bare host:port is taken as http://
        backend.health_status = 200
        assert probe(f"127.0.0.1:{backend.port}") is True
    finally:
        probe.close()


def test_tcp_probe_passes_on_connect_and_raises_on_refusal(
    backends: Callable[..., Backend],
) -> None:
    backend = backends("a")
    probe = tcp_probe(timeout=1.0)
    assert probe(backend.url) is True
    assert probe(f"127.0.0.1:{backend.port}") is True
    with pytest.raises(OSError):
        probe(f"127.0.0.1:{free_port()}")


def test_async_probes(backends: Callable[..., Backend]) -> None:
    backend = backends("a")

    async def main() -> tuple[bool, bool, bool]:
        probe = http_probe("/health")
        ok = await probe.check_async(backend.url, 1.0)
        backend.health_status = 500
        bad = await probe.check_async(backend.url, 1.0)
        await probe.aclose()
        tcp = await tcp_probe().check_async(backend.url, 1.0)
        return ok, bad, tcp

    assert asyncio.run(main()) == (True, False, True)


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: http_probe("health"), ValueError, "path must be a str starting with '/'"),
        (lambda: http_probe(method="GE T"), ValueError, "method must be"),
        (lambda: http_probe(method=""), ValueError, "RFC 9110 token characters.*, got ''"),
        (lambda: http_probe(method=1), TypeError, r"method name \(a str\), got 1"),
        (lambda: http_probe(statuses="200"), TypeError, "statuses must be"),
        (lambda: http_probe(statuses=200), TypeError, "statuses must be a collection"),
        (lambda: http_probe(statuses=[]), ValueError, r"at least one status, got \[\]"),
        (lambda: http_probe(statuses=range(200, 200)), ValueError, "at least one status"),
        (lambda: http_probe(statuses=[999]), ValueError, r"\[100, 599\], got 999"),
        (lambda: http_probe(statuses=[200, 99]), ValueError, r"\[100, 599\], got 99"),
        (lambda: http_probe(statuses=range(200, 700)), ValueError, "got 600"),
        (lambda: http_probe(statuses=[200.0]), TypeError, "statuses must hold ints, got 200.0"),
        (lambda: http_probe(statuses=[True]), TypeError, "statuses must hold ints, got True"),
        (lambda: http_probe(timeout=0), ValueError, "timeout must be a finite number > 0, got 0"),
        (lambda: tcp_probe(timeout=-1), ValueError, "timeout must be a finite number > 0, got -1"),
    ],
)
def test_probe_options_are_checked(make: Callable[[], object], error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        make()


def test_probe_reprs() -> None:
    assert repr(tcp_probe()) == "TCPProbe(timeout=2.0)"
    assert http_probe(method="m-search").method == "M-SEARCH"  # a token, upper-cased
    assert repr(HTTPProbe("/h", statuses=(200, 204))) == (
        "HTTPProbe('/h', method='GET', statuses=(200, 204), timeout=2.0)"
    )


def test_probe_statuses_are_kept_sorted_without_repeats_and_ranges_as_ranges() -> None:
    assert http_probe(statuses=[204, 200, 204]).statuses == (200, 204)
    assert http_probe(statuses={201}).statuses == (201,)
    assert http_probe(statuses=range(200, 300)).statuses == range(200, 300)
    assert http_probe(statuses=iter([503, 200])).statuses == (200, 503)  # read once


# -- the thread runner ---------------------------------------------------------------


def test_checker_follows_a_backend_down_and_up(backends: Callable[..., Backend]) -> None:
    a, b = backends("a"), backends("b")
    pool = fast_pool([a.url, b.url])
    with HealthChecker(pool, http_probe("/health")) as checker:
        assert wait_until(lambda: a.hits["GET /health"] >= 2 and b.hits["GET /health"] >= 2)
        b.health_status = 503
        assert wait_until(lambda: state(pool, b.url) is H.UNHEALTHY, timeout=3.0)
        assert state(pool, a.url) is H.HEALTHY
        assert {pool.acquire().server for _ in range(4)} == {a.url}
        b.health_status = 200
        assert wait_until(lambda: state(pool, b.url) is H.HEALTHY, timeout=3.0)
        assert checker.probes >= 4 and state(pool, a.url) is H.HEALTHY
    assert not checker.running


def test_a_killed_backend_goes_unhealthy(backends: Callable[..., Backend]) -> None:
    a, b = backends("a"), backends("b")
    # A refused connection fails at once, so a long timeout costs nothing here; it
    # keeps "a" healthy on a loaded machine, where two probes in a row answering
    # later than 80 ms (the fast_pool default) made it UNHEALTHY too.
    pool = fast_pool([a.url, b.url], interval=0.5, timeout=0.4)
    with HealthChecker(pool, tcp_probe()) as checker:
        assert wait_until(lambda: checker.probes >= 2, timeout=10.0)
        b.kill()
        assert wait_until(lambda: state(pool, b.url) is H.UNHEALTHY, timeout=10.0)
        # The tracker may count a late probe before the checker counts its error:
        # wait for both refusals rather than expect them at the same instant.
        assert wait_until(lambda: checker.errors >= 2, timeout=10.0)
        assert isinstance(checker.last_error, OSError)
    assert state(pool, a.url) is H.HEALTHY


def test_a_raising_probe_is_a_failure_and_the_loop_goes_on() -> None:
    pool = fast_pool(["a", "b"])
    calls: list[str] = []

    def probe(server: str) -> bool:
        calls.append(server)
        if server == "b":
            raise RuntimeError("boom")
        return True

    with HealthChecker(pool, probe) as checker:
        assert wait_until(lambda: state(pool, "b") is H.UNHEALTHY, timeout=3.0)
        count = len(calls)
        assert wait_until(lambda: len(calls) >= count + 4, timeout=3.0)  # still probing
    assert state(pool, "a") is H.HEALTHY
    assert isinstance(checker.last_error, RuntimeError) and checker.errors >= 2
    assert "errors=" in repr(checker) and "stopped" in repr(checker)


def test_a_hung_probe_times_out_and_is_never_started_twice() -> None:
    pool = fast_pool(["a", "hung"], interval=0.05, timeout=0.02)
    release = threading.Event()
    running: dict[str, int] = {"hung": 0, "most": 0}
    lock = threading.Lock()

    def probe(server: str) -> bool:
        if server == "hung":
            with lock:
                running["hung"] += 1
                running["most"] = max(running["most"], running["hung"])
            release.wait(5.0)
            with lock:
                running["hung"] -= 1
        return True

    try:
        with HealthChecker(pool, probe):
            assert wait_until(lambda: state(pool, "hung") is H.UNHEALTHY, timeout=3.0)
            time.sleep(0.2)  # several intervals: the hung probe is not restarted
            assert running["most"] == 1
            assert state(pool, "a") is H.HEALTHY
    finally:
        release.set()


def test_stop_wakes_the_thread_at_once() -> None:
    tracker = bk.HealthTracker(interval=30.0, timeout=1.0)
    pool = bk.Pool(bk.RoundRobin(["a"]), health=tracker)
    checker = HealthChecker(pool, lambda server: True)
    checker.start()
    with pytest.raises(RuntimeError, match="already running"):
        checker.start()
    assert wait_until(lambda: checker.probes == 1)
    started = time.monotonic()
    checker.stop()
    # Well under the 30 s the thread would otherwise sleep, with room for a loaded machine.
    assert time.monotonic() - started < 10.0
    checker.stop()  # a second stop does nothing
    assert not checker.running


def test_runner_arguments_are_checked() -> None:
    pool = fast_pool(["a"])
    with pytest.raises(ValueError, match="health=HealthTracker"):
        HealthChecker(bk.Pool(bk.RoundRobin(["a"])), tcp_probe())
    with pytest.raises(TypeError, match="pool must be a Pool, got 'x'"):
        HealthChecker("x", tcp_probe())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="probe must be a callable"):
        HealthChecker(pool, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency must be an int >= 1, got 0"):
        HealthChecker(pool, tcp_probe(), concurrency=0)
    with pytest.raises(TypeError, match="probe must be a coroutine function or a Probe"):
        AsyncHealthChecker(pool, lambda server: True)  # type: ignore[arg-type]
    assert pool.stats()["a"].health is H.HEALTHY  # nothing ran


# -- the asyncio runner -----------------------------------------------------------


def test_async_checker_follows_a_backend(backends: Callable[..., Backend]) -> None:
    a, b = backends("a"), backends("b")
    pool = fast_pool([a.url, b.url])

    async def main() -> AsyncHealthChecker:
        async with AsyncHealthChecker(pool, http_probe("/health")) as checker:
            for _ in range(300):  # bounded: 3 s
                if b.hits["GET /health"] >= 1:
                    break
                await asyncio.sleep(0.01)
            b.health_status = 503
            for _ in range(300):
                if state(pool, b.url) is H.UNHEALTHY:
                    break
                await asyncio.sleep(0.01)
            assert state(pool, b.url) is H.UNHEALTHY
            b.health_status = 200
            for _ in range(300):
                if state(pool, b.url) is H.HEALTHY:
                    break
                await asyncio.sleep(0.01)
            assert state(pool, b.url) is H.HEALTHY
            assert checker.running
        return checker

    checker = asyncio.run(main())
    assert not checker.running and checker.probes >= 4


def test_async_checker_cancels_a_hung_probe_and_survives_errors() -> None:
    pool = fast_pool(["ok", "hung", "raises"], interval=0.05, timeout=0.02)
    cancelled: list[str] = []

    async def probe(server: str) -> bool:
        if server == "raises":
            raise ValueError("bad")
        if server == "hung":
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.append(server)
                raise
        return True

    async def main() -> AsyncHealthChecker:
        checker = AsyncHealthChecker(pool, probe, concurrency=2)
        await checker.start()
        with pytest.raises(RuntimeError, match="already running"):
            await checker.start()
        for _ in range(300):
            if state(pool, "hung") is H.UNHEALTHY and state(pool, "raises") is H.UNHEALTHY:
                break
            await asyncio.sleep(0.01)
        started = time.monotonic()
        await checker.stop()
        assert time.monotonic() - started < 0.5
        await checker.stop()
        return checker

    checker = asyncio.run(main())
    assert state(pool, "hung") is H.UNHEALTHY and state(pool, "raises") is H.UNHEALTHY
    assert state(pool, "ok") is H.HEALTHY
    assert cancelled and isinstance(checker.last_error, ValueError)
    assert repr(checker).startswith("AsyncHealthChecker(Pool(")


# -- stop and start again -------------------------------------------------------------


class Gated(Probe):
    """Passes at once, but for ``"hung"``, held until ``gate`` is set; notes each
    close and whether its checker was running then."""

    timeout = 1.0

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls: dict[str, int] = {}
        self.checker: HealthChecker | None = None
        self.closed_while_running: list[bool] = []

    def check(self, server: str, timeout: float) -> bool:
        self.calls[server] = self.calls.get(server, 0) + 1
        if server == "hung":
            self.gate.wait(5.0)  # bounded
        return True

    async def check_async(self, server: str, timeout: float) -> bool:
        raise NotImplementedError("the thread runner only")

    def close(self) -> None:
        assert self.checker is not None
        self.closed_while_running.append(self.checker.running)


def test_a_thread_stopped_mid_round_exits_and_leaves_the_probe_to_the_new_run() -> None:
    """The old thread is held inside a round (in the on_change callback it runs
    when the hung probe's timeout makes its server UNHEALTHY) while the checker
    is stopped without waiting and started again. Released, it must exit, not
    loop beside the new thread, and must not close the probe the new run uses."""
    hold, held = threading.Event(), threading.Event()
    first: list[threading.Thread] = []

    def on_change(change: bk.StateChange) -> None:
        me = threading.current_thread()
        if me.name == "balancekit-health" and not first:
            first.append(me)
            held.set()
            hold.wait(5.0)  # bounded

    tracker = bk.HealthTracker(interval=0.2, timeout=0.1, unhealthy_threshold=1)
    pool = bk.Pool(bk.RoundRobin(["hung"]), health=tracker, on_change=on_change)
    probe = Gated()
    checker = HealthChecker(pool, probe)
    probe.checker = checker
    before = set(threading.enumerate())
    try:
        checker.start()
        assert held.wait(5.0)  # only the runner thread reads the pool's clock so far
        checker.stop(timeout=0)
        checker.start()
        assert len(new_threads("balancekit-health", before)) == 2  # the old one is held
        pool.update(["hung", "ok"])
        hold.set()
        assert wait_until(lambda: not first[0].is_alive(), timeout=2.0)
        assert len(new_threads("balancekit-health", before)) == 1
        assert wait_until(lambda: probe.calls.get("ok", 0) >= 3, timeout=5.0)
        assert probe.closed_while_running == []  # the old run left the probe alone
        time.sleep(0.2)
        assert len(new_threads("balancekit-health", before)) == 1
    finally:
        hold.set()
        probe.gate.set()
        checker.stop(timeout=2.0)
    assert probe.closed_while_running == [False]  # closed once, at the last stop
    assert probe.calls["hung"] == 1  # never started twice, across both runs


def test_a_restart_probes_every_server_again() -> None:
    """Probes queued behind a busy slot are cancelled by a stop; their servers must
    not stay marked as being probed, or a restarted checker never probes them."""
    servers = ["a", "b", "c", "d"]
    pool = fast_pool(servers, interval=0.5, timeout=0.4)
    calls: dict[str, int] = dict.fromkeys(servers, 0)
    lock = threading.Lock()

    def probe(server: str) -> bool:
        with lock:
            calls[server] += 1
        time.sleep(0.05)
        return True

    checker = HealthChecker(pool, probe, concurrency=1)
    checker.start()
    assert wait_until(lambda: sum(calls.values()) >= 1, timeout=5.0)
    checker.stop(timeout=2.0)  # three probes were still queued: cancelled
    seen = dict(calls)
    try:
        checker.start()
        assert wait_until(lambda: all(calls[s] > seen[s] for s in servers), timeout=5.0), calls
    finally:
        checker.stop(timeout=2.0)


@pytest.mark.parametrize(
    ("timeout", "error"), [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError)]
)
def test_a_bad_stop_timeout_is_an_error_and_the_checker_runs_on(
    timeout: object, error: type
) -> None:
    pool = fast_pool(["a"])
    checker = HealthChecker(pool, lambda server: True)
    checker.start()
    try:
        with pytest.raises(
            error, match=r"timeout must be None or a finite number in \[0, 1e\+09\]"
        ):
            checker.stop(timeout=timeout)  # type: ignore[arg-type]
        assert checker.running
        probes = checker.probes
        assert wait_until(lambda: checker.probes > probes, timeout=3.0)  # still probing
    finally:
        checker.stop(timeout=2.0)
    assert not checker.running
