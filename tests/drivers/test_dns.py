from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterable

import pytest

import balancekit as bk
from balancekit.drivers.dns import DNSDiscovery, Resolution, resolve

from .backends import new_threads, wait_until

# Names under .invalid never resolve (RFC 6761).
NOWHERE = "balancekit-test.invalid"


def localhost_ids(port: int, scheme: str | None = None) -> list[str]:
    """What getaddrinfo says localhost is, computed independently of resolve()."""
    ids = []
    for family, *_, address in socket.getaddrinfo("localhost", port, 0, socket.SOCK_STREAM):
        host = f"[{address[0]}]" if family == socket.AF_INET6 else address[0]
        ids.append(f"{host}:{port}" if scheme is None else f"{scheme}://{host}:{port}")
    return list(dict.fromkeys(ids))


def test_resolve_localhost() -> None:
    assert resolve("localhost", 8080) == localhost_ids(8080)
    assert "127.0.0.1:8080" in resolve("localhost", 8080, family=socket.AF_INET)
    assert resolve("localhost", 80, scheme="http") == localhost_ids(80, "http")


def test_resolve_addresses_and_ipv6_brackets() -> None:
    assert resolve("127.0.0.1", 1) == ["127.0.0.1:1"]
    assert resolve("::1", 443, scheme="https") == ["https://[::1]:443"]
    assert resolve("0:0::1", 80) == ["[::1]:80"]  # canonical form


def test_resolve_failure_raises_gaierror() -> None:
    with pytest.raises(socket.gaierror):
        resolve(NOWHERE, 80)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "words"),
    [
        (("", 80), {}, ValueError, "host must be a non-empty str, got ''"),
        ((b"h", 80), {}, TypeError, "host must be a non-empty str, got b'h'"),
        (("h", 0), {}, ValueError, r"port must be an int in \[1, 65535\], got 0"),
        (("h", 70000), {}, ValueError, r"port must be an int in \[1, 65535\], got 70000"),
        (("h", "80"), {}, TypeError, r"port must be an int in \[1, 65535\], got '80'"),
        (("h", True), {}, TypeError, r"port must be an int in \[1, 65535\], got True"),
        (("h", 80), {"scheme": "ht tp"}, ValueError, "scheme must be None or letters"),
        (("h", 80), {"scheme": 5}, TypeError, "scheme must be None or letters .*, got 5"),
        (("127.0.0.1", 80), {"family": 99}, ValueError, r"AF_INET or AF_INET6, got 99"),
        (("127.0.0.1", 80), {"family": -1}, ValueError, r"AF_INET or AF_INET6, got -1"),
        (("127.0.0.1", 80), {"family": "inet"}, TypeError, r"AF_INET6, got 'inet'"),
        (("127.0.0.1", 80), {"family": None}, TypeError, r"AF_INET6, got None"),
        (("127.0.0.1", 80), {"family": True}, TypeError, r"AF_INET6, got True"),
        (("localhost:80", 80), {}, ValueError, "no scheme, port or path.*got 'localhost:80'"),
        (("http://api", 80), {}, ValueError, "IP address .*got 'http://api'"),
        (("api/v1", 80), {}, ValueError, "got 'api/v1'"),
        (("[::1]", 80), {}, ValueError, r"got '\[::1\]'"),
        ((" api", 80), {}, ValueError, "got ' api'"),
        (("a\x00b", 80), {}, ValueError, r"got 'a\\x00b'"),
        (("a..b", 80), {}, ValueError, "got 'a..b' .*label empty or too long"),
        (("x" * 64 + ".example", 80), {}, ValueError, "got 'xxx.*label"),
        ((".".join(["abc"] * 70), 80), {}, ValueError, "at most 253 characters, got 279"),
    ],
)
def test_bad_arguments(
    args: tuple[object, ...], kwargs: dict[str, object], error: type, words: str
) -> None:
    with pytest.raises(error, match=words):
        resolve(*args, **kwargs)  # type: ignore[arg-type]


def test_discovery_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="pool must have an update"):
        DNSDiscovery(object(), "localhost", 80)  # type: ignore[arg-type]
    pool = bk.Pool(bk.RoundRobin(["a:1"]))
    with pytest.raises(ValueError, match="host must be a non-empty str, got ''"):
        DNSDiscovery(pool, "", 80)
    with pytest.raises(TypeError, match=r"port must be an int in \[1, 65535\], got '80'"):
        DNSDiscovery(pool, "h", "80")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"interval must be a finite number in \(0, 1e\+09\], got 0$"
    ):
        DNSDiscovery(pool, "localhost", 80, interval=0)
    with pytest.raises(ValueError, match=r"in \(0, 1e\+09\], got 10000000000.0"):
        DNSDiscovery(pool, "localhost", 80, interval=1e10)  # the thread's wait would overflow
    with pytest.raises(ValueError, match="AF_INET or AF_INET6, got 99"):
        DNSDiscovery(pool, "localhost", 80, family=99)
    with pytest.raises(ValueError, match="got 'localhost:80'"):
        DNSDiscovery(pool, "localhost:80", 80)
    assert set(pool.servers) == {"a:1"}  # nothing was changed


def test_good_hosts_and_families_are_accepted() -> None:
    for host in ("h", "localhost", "api.internal.", "_srv._tcp.example", "bücher.example"):
        assert DNSDiscovery(bk.Pool(bk.RoundRobin(["a:1"])), host, 80).host == host
    assert resolve("127.0.0.1", 80, family=socket.AF_UNSPEC) == ["127.0.0.1:80"]
    assert resolve("127.0.0.1", 80, family=socket.AF_INET) == ["127.0.0.1:80"]
    assert resolve("::1", 80, family=int(socket.AF_INET6)) == ["[::1]:80"]
    assert resolve("fe80::1%1", 80, family=socket.AF_INET6)  # a scoped address literal


def test_the_pool_follows_localhost() -> None:
    pool = bk.Pool(bk.RoundRobin(["http://192.0.2.1:80"]))
    discovery = DNSDiscovery(pool, "localhost", 8080, scheme="http")
    result = discovery.refresh()
    assert isinstance(result, Resolution) and result.ok
    expected = localhost_ids(8080, "http")
    assert list(result.servers) == expected
    assert set(pool.servers) == set(expected)  # the idle old server left at once
    assert result.changes  # the old server's drain at least
    again = discovery.refresh()
    assert again.ok and again.changes == ()  # nothing new: nothing changes
    assert (discovery.refreshes, discovery.failures) == (2, 0)


def test_a_failing_resolution_keeps_the_membership() -> None:
    pool = bk.Pool(bk.RoundRobin(["10.0.0.1:80", "10.0.0.2:80"]))
    discovery = DNSDiscovery(pool, NOWHERE, 80)
    result = discovery.refresh()
    assert not result.ok and isinstance(result.error, socket.gaierror)
    assert result.servers == () and result.changes == ()
    assert set(pool.servers) == {"10.0.0.1:80", "10.0.0.2:80"}
    assert discovery.failures == 1 and discovery.last is result


def test_the_background_loop_survives_failures_and_stops_promptly() -> None:
    pool = bk.Pool(bk.RoundRobin(["10.0.0.1:80"]))
    discovery = DNSDiscovery(pool, NOWHERE, 80, interval=0.02)
    with discovery:
        assert discovery.running
        with pytest.raises(RuntimeError, match="already running"):
            discovery.start()
        assert wait_until(lambda: discovery.failures >= 3, timeout=5.0)
    started = time.monotonic()
    discovery.stop()
    assert time.monotonic() - started < 0.5 and not discovery.running
    assert set(pool.servers) == {"10.0.0.1:80"}
    assert "failures=" in repr(discovery) and "stopped" in repr(discovery)


def test_a_failure_is_handed_to_on_error_and_logged_once_per_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = bk.Pool(bk.RoundRobin(["10.0.0.1:80"]))
    seen: list[Exception] = []
    discovery = DNSDiscovery(pool, NOWHERE, 80, on_error=seen.append)
    with caplog.at_level(logging.DEBUG, logger="balancekit.drivers.dns"):
        first, second = discovery.refresh(), discovery.refresh()
    assert seen == [first.error, second.error] and isinstance(seen[0], socket.gaierror)
    assert set(pool.servers) == {"10.0.0.1:80"}
    assert discovery.consecutive_failures == 2
    levels = [(r.levelno, r.name) for r in caplog.records]
    assert levels == [
        (logging.WARNING, "balancekit.drivers.dns"),
        (logging.DEBUG, "balancekit.drivers.dns"),
    ]
    assert NOWHERE in caplog.records[0].getMessage()
    assert "keeps its last good membership" in caplog.records[0].getMessage()


class RefusesFirst:
    """A Pool whose first ``refusals`` updates raise, as a refused update does."""

    def __init__(self, pool: bk.Pool, refusals: int) -> None:
        self.pool = pool
        self.refusals = refusals

    def update(self, servers: Iterable[str]) -> list[bk.StateChange]:
        if self.refusals:
            self.refusals -= 1
            raise ValueError(f"refused {sorted(servers)!r}")
        return self.pool.update(servers)


def test_recovery_is_logged_and_resets_the_run(caplog: pytest.LogCaptureFixture) -> None:
    pool = bk.Pool(bk.RoundRobin(["http://192.0.2.1:80"]))
    errors: list[Exception] = []
    discovery = DNSDiscovery(RefusesFirst(pool, 2), "localhost", 8080, on_error=errors.append)
    with caplog.at_level(logging.INFO, logger="balancekit.drivers.dns"):
        results = [discovery.refresh() for _ in range(3)]
    assert [r.ok for r in results] == [False, False, True]
    assert len(errors) == 2 and all(isinstance(e, ValueError) for e in errors)
    assert set(pool.servers) == set(localhost_ids(8080))
    assert discovery.consecutive_failures == 0 and discovery.failures == 2
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in messages] == [logging.WARNING, logging.INFO]
    assert "resolves again after 2 failed resolutions" in messages[1][1]


def test_in_the_background_on_error_is_told_and_a_raising_callback_is_survived(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = bk.Pool(bk.RoundRobin(["10.0.0.1:80"]))
    threads: list[str] = []

    def on_error(error: Exception) -> None:
        threads.append(threading.current_thread().name)
        raise RuntimeError("a broken callback")

    discovery = DNSDiscovery(pool, NOWHERE, 80, interval=0.02, on_error=on_error)
    with caplog.at_level(logging.ERROR, logger="balancekit.drivers.dns"), discovery:
        assert wait_until(lambda: len(threads) >= 3, timeout=5.0)
    assert set(threads) == {"balancekit-dns"}
    assert discovery.failures >= 3 and set(pool.servers) == {"10.0.0.1:80"}
    assert any("on_error" in r.getMessage() and r.exc_info for r in caplog.records)


def test_on_error_may_refresh_again_without_deadlock() -> None:
    pool = bk.Pool(bk.RoundRobin(["10.0.0.1:80"]))
    calls: list[Exception] = []

    def on_error(error: Exception) -> None:
        calls.append(error)
        if len(calls) == 1:
            discovery.refresh()

    discovery = DNSDiscovery(pool, NOWHERE, 80, on_error=on_error)
    discovery.refresh()
    assert len(calls) == 2 and discovery.failures == 2


def test_on_error_must_be_callable() -> None:
    pool = bk.Pool(bk.RoundRobin(["a:1"]))
    with pytest.raises(TypeError, match=r"on_error must be None or a callable\(error\), got 'log'"):
        DNSDiscovery(pool, "localhost", 80, on_error="log")  # type: ignore[arg-type]


# -- stop and start again -------------------------------------------------------------


def test_a_thread_stopped_mid_round_exits_instead_of_refreshing_beside_the_new_one() -> None:
    """The old thread is held in its on_error callback while discovery is stopped
    without waiting and started again; released, it must exit, not loop on."""
    hold, held = threading.Event(), threading.Event()
    first: list[threading.Thread] = []
    runs: dict[threading.Thread, int] = {}

    def on_error(error: Exception) -> None:
        me = threading.current_thread()
        runs[me] = runs.get(me, 0) + 1
        if not first:
            first.append(me)
            held.set()
            hold.wait(5.0)  # bounded

    pool = bk.Pool(bk.RoundRobin(["10.0.0.1:80"]))
    discovery = DNSDiscovery(pool, NOWHERE, 80, interval=0.02, on_error=on_error)
    before = set(threading.enumerate())
    try:
        discovery.start()
        assert held.wait(5.0)
        discovery.stop(timeout=0)
        discovery.start()
        assert len(new_threads("balancekit-dns", before)) == 2  # the old one is held
        hold.set()
        assert wait_until(lambda: not first[0].is_alive(), timeout=2.0)
        assert runs[first[0]] == 1  # it refreshed no more once released
        assert len(new_threads("balancekit-dns", before)) == 1
        second = new_threads("balancekit-dns", before)[0]
        assert wait_until(lambda: runs.get(second, 0) >= 3, timeout=5.0)  # the new one works
    finally:
        hold.set()
        discovery.stop(timeout=2.0)
    assert not new_threads("balancekit-dns", before)


def test_on_error_may_stop_the_discovery(caplog: pytest.LogCaptureFixture) -> None:
    pool = bk.Pool(bk.RoundRobin(["10.0.0.1:80"]))
    calls: list[str] = []

    def on_error(error: Exception) -> None:
        calls.append(threading.current_thread().name)
        discovery.stop()  # from the discovery's own thread: no join of itself

    discovery = DNSDiscovery(pool, NOWHERE, 80, interval=0.02, on_error=on_error)
    before = set(threading.enumerate())
    with caplog.at_level(logging.ERROR, logger="balancekit.drivers.dns"):
        discovery.start()
        assert wait_until(lambda: not new_threads("balancekit-dns", before), timeout=5.0)
    assert calls == ["balancekit-dns"] and not discovery.running
    assert not [r for r in caplog.records if "on_error" in r.getMessage()]  # nothing raised


@pytest.mark.parametrize(("timeout", "error"), [(-0.5, ValueError), ("now", TypeError)])
def test_a_bad_stop_timeout_is_an_error_and_discovery_runs_on(timeout: object, error: type) -> None:
    discovery = DNSDiscovery(bk.Pool(bk.RoundRobin(["a:1"])), "127.0.0.1", 80, interval=0.02)
    discovery.start()
    try:
        with pytest.raises(error, match="timeout must be None or a finite number"):
            discovery.stop(timeout=timeout)  # type: ignore[arg-type]
        assert discovery.running
        count = discovery.refreshes
        assert wait_until(lambda: discovery.refreshes > count, timeout=3.0)
    finally:
        discovery.stop(timeout=2.0)
    assert not discovery.running
