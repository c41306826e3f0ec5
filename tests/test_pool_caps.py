"""Pool.acquire(exclude=...) for retries, max_in_flight with AllServersBusy, and the
abandoned and overflow counts of ServerStats."""

from __future__ import annotations

import pytest

from balancekit import (
    AllServersBusy,
    ConsistentHash,
    HealthTracker,
    LeastConnections,
    ManualClock,
    NoServerAvailable,
    Pool,
    RoundRobin,
    StickySession,
)

from .strategies.contract import KEYS


def test_exclude_skips_servers_already_tried() -> None:
    pool = Pool(RoundRobin(["a", "b", "c"]), clock=ManualClock())
    tried = {"a", "b"}
    for _ in range(6):
        with pool.acquire(exclude=tried) as lease:
            assert lease.server == "c"
    with pool.acquire(exclude={"a", "b", "c"}) as lease:  # all tried: the exclusion is dropped
        assert lease.server in {"a", "b", "c"}
    pool._check()


def test_exclude_on_a_hash_strategy_goes_to_the_keys_next_server() -> None:
    pool = Pool(ConsistentHash(["a", "b", "c", "d"]), clock=ManualClock())
    for key in KEYS[:30]:
        first, second = pool.strategy.get_n_servers(key, 2)  # type: ignore[attr-defined]
        with pool.acquire(key, exclude=[first]) as lease:
            assert lease.server == second


def test_exclude_is_checked() -> None:
    pool = Pool(RoundRobin(["a", "b"]), clock=ManualClock())
    with pytest.raises(TypeError, match="exclude must be a collection of server ids"):
        pool.acquire(exclude="a")
    pool._check()


def test_a_sticky_client_is_not_pinned_to_a_server_it_tried() -> None:
    pool = Pool(RoundRobin(["a", "b"]), sticky=StickySession("k"), clock=ManualClock())
    first = pool.acquire()
    first.release(ok=False)
    retry = pool.acquire(cookie=first.cookie, exclude=[first.server])
    assert retry.server != first.server and retry.moved
    retry.release()
    pool._check()


def test_full_servers_are_skipped_then_all_busy() -> None:
    pool = Pool(LeastConnections(["a", "b"]), max_in_flight=2, clock=ManualClock())
    held = [pool.acquire() for _ in range(4)]
    assert sorted(lease.server for lease in held) == ["a", "a", "b", "b"]
    with pytest.raises(AllServersBusy, match="all 2 eligible servers have 2 requests in flight"):
        pool.acquire()
    with pytest.raises(NoServerAvailable):  # AllServersBusy is a NoServerAvailable
        pool.acquire(exclude=["a"])
    stats = pool.stats()
    assert (stats["a"].overflows, stats["b"].overflows) == (2, 2)
    held[0].release()
    with pool.acquire() as lease:  # room again, on the server that had it
        assert lease.server == held[0].server
    pool._check()


def test_a_full_server_is_skipped_even_by_a_hash_strategy_and_a_sticky_client() -> None:
    pool = Pool(
        ConsistentHash(["a", "b", "c"]),
        sticky=StickySession("k"),
        max_in_flight=1,
        clock=ManualClock(),
    )
    key = KEYS[0]
    owner = pool.strategy.get_server(key)
    held = pool.acquire(key)
    assert held.server == owner
    other = pool.acquire(key, cookie=held.cookie)  # its own server is full
    assert other.server != owner and other.moved
    other.release()
    held.release()
    pool._check()


def test_the_cap_prefers_dropping_the_callers_exclusion() -> None:
    pool = Pool(RoundRobin(["a", "b"]), max_in_flight=1, clock=ManualClock())
    held = pool.acquire()  # "a" is full
    with pool.acquire(exclude=["b"]) as lease:  # "b" was tried, "a" is full: "b" again
        assert lease.server == "b"
    held.release()
    pool._check()


def test_abandoned_leases_are_counted_apart_and_are_no_health_event() -> None:
    tracker = HealthTracker(consecutive_failures=1)
    pool = Pool(RoundRobin(["a", "b"]), health=tracker, clock=ManualClock())
    for _ in range(4):
        pool.acquire().release(ok=None)
    stats = pool.stats()
    assert [(s.requests, s.errors, s.abandoned) for s in stats.values()] == [(2, 0, 2)] * 2
    assert tracker.is_healthy("a") and tracker.is_healthy("b")
    pool._check()


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (1.5, TypeError), (True, TypeError)])
def test_max_in_flight_is_checked(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="max_in_flight must be an int >= 1"):
        Pool(RoundRobin(["a"]), max_in_flight=value)  # type: ignore[arg-type]


def test_a_removed_full_server_is_forgotten() -> None:
    pool = Pool(RoundRobin(["a", "b"]), max_in_flight=1, clock=ManualClock())
    held = pool.acquire()
    pool.remove_server(held.server)
    pool.add_server(held.server)
    with pool.acquire(exclude=["b"]) as lease:
        assert lease.server == held.server  # a new member: not full
    held.release()
    pool._check()
