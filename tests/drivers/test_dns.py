from __future__ import annotations

import socket
import time

import pytest

import balancekit as bk
from balancekit.drivers.dns import DNSDiscovery, Resolution, resolve

from .backends import wait_until

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
    with pytest.raises(ValueError, match="interval must be a finite number > 0, got 0"):
        DNSDiscovery(pool, "localhost", 80, interval=0)


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
