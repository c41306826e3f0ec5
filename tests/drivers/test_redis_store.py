from __future__ import annotations

import re
import time

import pytest
import redis

import balancekit as bk
from balancekit.drivers.redis import RedisRouteStore

from .backends import RedisServer

SERVERS = ["http://10.0.0.1:80", "http://10.0.0.2:80", "http://10.0.0.3:80"]


def url(server: RedisServer) -> str:
    return f"redis://127.0.0.1:{server.port}/0"


def proxy(store: RedisRouteStore, skip: int = 0) -> bk.Pool:
    """One proxy's pool: its own StickySession and strategy, the shared store."""
    sticky = bk.StickySession("secret shared by the proxies", ttl=60.0, store=store)
    pool = bk.Pool(bk.RoundRobin(SERVERS), sticky=sticky)
    for _ in range(skip):  # move this proxy's rotation so it would pick differently
        pool.acquire().release()
    return pool


def test_is_a_route_store(redis_server: RedisServer) -> None:
    store = RedisRouteStore.from_url(url(redis_server))
    assert isinstance(store, bk.RouteStore)


def test_two_proxies_route_a_session_identically(redis_server: RedisServer) -> None:
    first = proxy(RedisRouteStore.from_url(url(redis_server), ttl=60.0))
    second = proxy(RedisRouteStore.from_url(url(redis_server), ttl=60.0), skip=1)
    chosen = {}
    for i in range(20):
        with first.acquire(session=f"user-{i}") as lease:
            chosen[i] = lease.server
    assert len(set(chosen.values())) == 3  # the sessions were spread
    for i in range(20):
        with second.acquire(session=f"user-{i}") as lease:
            assert lease.server == chosen[i] and not lease.moved
    # without the shared store the second proxy would have chosen otherwise
    assert second.acquire(session="new").server != first.acquire(session="new2").server


def test_ttl_is_kept_by_redis_and_a_hit_renews_it(redis_server: RedisServer) -> None:
    store = RedisRouteStore.from_url(url(redis_server), ttl=0.3, prefix="t:")
    client = redis.Redis.from_url(url(redis_server))
    store.set("s", "a", now=0.0)
    assert 0 < client.pttl("t:s") <= 300
    time.sleep(0.2)
    assert store.get("s", now=0.2) == "a"  # a hit: the ttl starts again
    assert client.pttl("t:s") > 200
    time.sleep(0.2)
    assert store.get("s", now=0.4) == "a"  # 0.4 s after the bind, 0.2 after the hit
    time.sleep(0.45)
    assert store.get("s", now=0.85) is None  # expired in Redis itself
    assert client.exists("t:s") == 0
    client.close()


def test_no_ttl_keys_do_not_expire(redis_server: RedisServer) -> None:
    store = RedisRouteStore.from_url(url(redis_server))
    store.set("s", "a", now=0.0)
    assert store.get("s", now=1e9) == "a"
    assert store.client.pttl("balancekit:route:s") == -1  # no expiry


def test_delete_len_and_prefixes(redis_server: RedisServer) -> None:
    mine = RedisRouteStore.from_url(url(redis_server), prefix="p[1]*:")
    other = RedisRouteStore.from_url(url(redis_server), prefix="p[1]x:")
    for key in ("a", "b", "c"):
        mine.set(key, "s1", now=0.0)
    other.set("a", "s2", now=0.0)
    assert len(mine) == 3 and len(other) == 1  # the glob in the prefix is escaped
    assert mine.get("a", now=0.0) == "s1" and other.get("a", now=0.0) == "s2"
    mine.delete("a")
    mine.delete("never")
    assert mine.get("a", now=0.0) is None and len(mine) == 2
    assert mine.errors == 0


def test_redis_killed_mid_test_requests_go_on_unsticky_and_promptly(
    redis_server: RedisServer,
) -> None:
    store = RedisRouteStore.from_url(url(redis_server), ttl=60.0, timeout=0.2, retry_after=0.5)
    pool = proxy(store)
    first = pool.acquire(session="alice")
    first.release()
    assert pool.acquire(session="alice").server == first.server
    redis_server.kill()
    started = time.monotonic()
    servers = []
    for _ in range(300):
        lease = pool.acquire(session="alice")  # never raises
        servers.append(lease.server)
        lease.release()
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, elapsed  # no hang: at most one timeout per retry_after
    assert set(servers) == set(SERVERS)  # no stickiness: the strategy chose
    assert store.errors >= 1 and isinstance(store.last_error, redis.ConnectionError)
    assert store.failed_lookups >= 299 and store.dropped_binds >= 299
    store.delete("alice")  # no exception either
    assert len(store) == 0
    assert "errors=" in repr(store)


def test_an_unreachable_redis_never_raises() -> None:
    store = RedisRouteStore.from_url("redis://127.0.0.1:9/0", timeout=0.05, retry_after=10.0)
    assert store.get("k", now=0.0) is None
    store.set("k", "a", now=0.0)
    assert (store.errors, store.failed_lookups, store.dropped_binds) == (1, 1, 1)
    assert not store.available(now=5.0)  # backing off: Redis is not called
    assert store.get("k", now=5.0) is None and store.errors == 1
    assert "backing off" in repr(store)
    assert store.available(now=10.0)  # after retry_after one call may try again...
    assert not store.available(now=10.0)  # ...and the others keep backing off
    assert store.get("k", now=20.0) is None and store.errors == 2  # it tried: still down


def test_stickiness_resumes_when_redis_comes_back(redis_server: RedisServer) -> None:
    store = RedisRouteStore.from_url(url(redis_server), ttl=60.0, timeout=2.0, retry_after=0.3)
    store.set("alice", "a", now=0.0)
    redis_server.kill()
    assert store.get("alice", now=1.0) is None and store.errors == 1
    revived = RedisServer(port=redis_server.port)  # a new, empty server on the same port
    try:
        assert store.get("alice", now=1.1) is None and store.errors == 1  # still backing off
        store.set("alice", "b", now=1.2)  # dropped: still backing off
        assert store.dropped_binds == 1
        store.set("alice", "b", now=1.4)  # the probe: Redis answers, the bind is stored
        assert store.get("alice", now=1.5) == "b" and store.errors == 1
        assert "backing off" not in repr(store)
    finally:
        revived.kill()


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"client": "redis://x"}, TypeError, "client must be a redis.Redis, got 'redis://x'"),
        ({"ttl": 0}, ValueError, "ttl must be None or a finite number > 0, got 0"),
        ({"prefix": ""}, ValueError, "prefix must be a non-empty str, got ''"),
        ({"prefix": 3}, TypeError, "prefix must be a non-empty str, got 3"),
        ({"retry_after": -1}, ValueError, "retry_after must be a finite number > 0, got -1"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: type, words: str) -> None:
    client = redis.Redis(port=9)
    arguments: dict[str, object] = {"client": client, **kwargs}
    with pytest.raises(error, match=words.replace("[", r"\[")):
        RedisRouteStore(**arguments)  # type: ignore[arg-type]
    client.close()


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        ("http://x", "'http://x'"),
        ("", "''"),
        ("cache:6379", "'cache:6379'"),
        ("redis://x:notaport/0", "'redis://x:notaport/0'"),
        ("redis://app:s3cret@x:notaport/0", "'redis://app:\\*\\*\\*@x:notaport/0'"),
        (
            "redis://x/0?socket_timeout=abc&password=s3cret",
            "'redis://x/0\\?socket_timeout=abc&password=\\*\\*\\*'",
        ),
    ],
)
def test_from_url_names_a_bad_url_and_keeps_redis_error_as_the_cause(bad: str, shown: str) -> None:
    with pytest.raises(ValueError, match="url must be a Redis URL") as caught:
        RedisRouteStore.from_url(bad)
    message = str(caught.value)
    assert re.search(f"got {shown}$", message), message
    assert "s3cret" not in message  # a password never reaches a log line
    if "***" in message:  # redis-py's message may quote the password: not kept then
        assert caught.value.__cause__ is None
    else:
        assert isinstance(caught.value.__cause__, ValueError)  # redis-py's own, kept
        assert caught.value.__cause__ is not caught.value


def test_from_url_masks_a_password_that_holds_a_slash() -> None:
    # redis-py reads "pa" as the port here and says so in its own message.
    with pytest.raises(ValueError, match="url must be a Redis URL") as caught:
        RedisRouteStore.from_url("redis://app:pa/ss3cret@x:6379/0")
    assert str(caught.value).endswith("got 'redis://app:***@x:6379/0'")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_from_url_checks_its_other_arguments() -> None:
    with pytest.raises(TypeError, match="url must be a Redis URL \\(a str\\), got 5"):
        RedisRouteStore.from_url(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got None"):
        RedisRouteStore.from_url(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be a finite number > 0, got 0"):
        RedisRouteStore.from_url("redis://127.0.0.1:9/0", timeout=0)
    with pytest.raises(ValueError, match="prefix must be a non-empty str, got ''"):
        RedisRouteStore.from_url("redis://127.0.0.1:9/0", prefix="")
    good = RedisRouteStore.from_url("unix:///tmp/balancekit-test-none.sock", ttl=5.0)
    assert good.ttl == 5.0  # a unix socket URL is accepted (nothing connects yet)
