"""The contract every strategy keeps, tested once for all of them."""

from __future__ import annotations

import asyncio
import math
import re

import pytest

from balancekit import DuplicateServer, ManualClock, NoServerAvailable, UnknownServer
from balancekit.strategies.base import Balancer

from .contract import KEYS, STRATEGIES, run_in_threads

pytestmark = pytest.mark.parametrize("cls", STRATEGIES, ids=lambda cls: cls.__name__)

SERVERS = {f"s{i}": 1 + i % 3 for i in range(8)}
BAD_WEIGHTS = [-1, float("nan"), float("inf"), -math.inf, True, "2", None, 1.7e308, 10**400]


def snapshot(lb: Balancer) -> tuple[dict[str, float], str]:
    return dict(lb.servers), repr(lb)


def test_discovery_found_the_strategies(cls: type[Balancer]) -> None:
    assert issubclass(cls, Balancer)


def test_empty_pool_raises(cls: type[Balancer]) -> None:
    lb = cls()
    with pytest.raises(NoServerAvailable) as info:
        lb.get_server(KEYS[0])
    assert info.value.servers == 0
    with pytest.raises(LookupError):
        lb.acquire(KEYS[0])


def test_all_weights_zero_raises(cls: type[Balancer]) -> None:
    lb = cls({"a": 0, "b": 0})
    with pytest.raises(NoServerAvailable) as info:
        lb.get_server(KEYS[0])
    assert info.value.servers == 2
    assert "weight 0" in info.value.reason


def test_weight_zero_gets_nothing(cls: type[Balancer]) -> None:
    lb = cls({"a": 1, "zero": 0, "b": 1})
    picks = {lb.get_server(k) for k in KEYS}
    leases = [lb.acquire(k) for k in KEYS]
    assert "zero" not in picks | {lease.server for lease in leases}
    lb._check()


def test_removed_servers_are_never_returned(cls: type[Balancer]) -> None:
    lb = cls(SERVERS)
    for gone in ("s0", "s3", "s7"):
        lb.remove_server(gone)
        lb._check()
        picks = {lb.get_server(k) for k in KEYS} | {lb.acquire(k).server for k in KEYS}
        assert gone not in picks
        assert picks <= set(lb.servers)


def test_added_server_is_a_member(cls: type[Balancer]) -> None:
    lb = cls(["a"])
    lb.add_server("b", weight=2)
    assert dict(lb.servers) == {"a": 1.0, "b": 2.0}
    assert "b" in lb and len(lb) == 2
    lb.set_weight("b", 0)
    assert {lb.get_server(k) for k in KEYS} == {"a"}
    lb._check()


@pytest.mark.parametrize("weight", BAD_WEIGHTS)
def test_bad_weight_changes_nothing(cls: type[Balancer], weight: object) -> None:
    lb = cls(SERVERS)
    before = snapshot(lb)
    with pytest.raises((ValueError, TypeError), match="weight"):
        lb.add_server("new", weight=weight)  # type: ignore[arg-type]
    with pytest.raises((ValueError, TypeError), match="weight"):
        lb.set_weight("s1", weight)  # type: ignore[arg-type]
    with pytest.raises((ValueError, TypeError), match="weight"):
        cls({"x": weight})  # type: ignore[dict-item]
    assert snapshot(lb) == before
    lb._check()


@pytest.mark.parametrize("server", ["", 7, None, b"s"])
def test_bad_server_id_changes_nothing(cls: type[Balancer], server: object) -> None:
    lb = cls(SERVERS)
    before = snapshot(lb)
    with pytest.raises((ValueError, TypeError), match="server"):
        lb.add_server(server)  # type: ignore[arg-type]
    assert snapshot(lb) == before


def test_membership_errors_change_nothing(cls: type[Balancer]) -> None:
    lb = cls(SERVERS)
    before = snapshot(lb)
    with pytest.raises(DuplicateServer, match="s1"):
        lb.add_server("s1")
    with pytest.raises(UnknownServer, match="nope"):
        lb.remove_server("nope")
    with pytest.raises(KeyError):
        lb.set_weight("nope", 1)
    with pytest.raises(KeyError):
        lb.in_flight("nope")
    assert snapshot(lb) == before
    with pytest.raises(TypeError):
        cls("abc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'a'"):
        cls(["a", "a"])


def test_servers_is_read_only(cls: type[Balancer]) -> None:
    lb = cls(["a"])
    with pytest.raises(TypeError):
        lb.servers["b"] = 1.0  # type: ignore[index]


def test_double_release_does_not_drift(cls: type[Balancer]) -> None:
    lb = cls(SERVERS)
    lease = lb.acquire(KEYS[0])
    assert lb.in_flight(lease.server) == 1
    assert lease.release() is True
    assert lease.release(ok=False) is False
    assert lease.ok is True
    assert lb.in_flight(lease.server) == 0
    lb._check()


def test_release_after_removal_and_readd(cls: type[Balancer]) -> None:
    lb = cls(SERVERS)
    lease = lb.acquire(KEYS[0])
    lb.remove_server(lease.server)
    lease.release()  # must neither raise nor touch the new member below
    lb.add_server(lease.server)
    again = [lb.acquire(k) for k in KEYS]
    mine = sum(1 for other in again if other.server == lease.server)
    assert lb.in_flight(lease.server) == mine
    lb._check()


def test_context_manager_marks_failure(cls: type[Balancer]) -> None:
    clock = ManualClock()
    lb = cls(SERVERS, clock=clock)  # type: ignore[call-arg]
    with pytest.raises(RuntimeError), lb.acquire(KEYS[0]) as lease:
        clock.advance(0.25)
        raise RuntimeError("boom")
    assert lease.ok is False
    assert lease.latency == pytest.approx(0.25)
    assert lb.in_flight(lease.server) == 0


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, asyncio.CancelledError, SystemExit])
def test_an_interrupted_block_is_an_abandoned_request(
    cls: type[Balancer], interrupt: type[BaseException]
) -> None:
    # The caller gave up: not a failure of the server, not a success either.
    clock = ManualClock()
    lb = cls(SERVERS, clock=clock)  # type: ignore[call-arg]
    with pytest.raises(interrupt), lb.acquire(KEYS[0]) as lease:
        clock.advance(0.5)
        raise interrupt
    assert lease.released and lease.abandoned and lease.ok is None
    assert lease.latency == pytest.approx(0.5)
    assert lb.in_flight(lease.server) == 0
    assert "abandoned" in repr(lease)
    lb._check()


def test_release_none_is_abandoned_and_once(cls: type[Balancer]) -> None:
    lb = cls(SERVERS)
    lease = lb.acquire(KEYS[0])
    assert not lease.released and not lease.abandoned
    assert lease.release(ok=None) is True
    assert lease.release(ok=True) is False  # already released: nothing changes
    assert lease.abandoned and lease.ok is None
    assert lb.in_flight(lease.server) == 0
    lb._check()


@pytest.mark.parametrize("bad", [1, 0, "yes", 0.0, [True]], ids=repr)
def test_bad_outcome_is_refused_and_changes_nothing(cls: type[Balancer], bad: object) -> None:
    lb = cls(SERVERS)
    lease = lb.acquire(KEYS[0])
    with pytest.raises(TypeError, match=re.escape(f"ok must be True, False or None, got {bad!r}")):
        lease.release(ok=bad)  # type: ignore[arg-type]
    assert not lease.released and lb.in_flight(lease.server) == 1
    assert lease.release(ok=False) is True
    assert lb.in_flight(lease.server) == 0


@pytest.mark.parametrize("reading", [None, math.nan, math.inf], ids=repr)
@pytest.mark.parametrize("ok", [True, False, None])
def test_a_bad_clock_at_release_still_settles_the_counts(
    cls: type[Balancer], reading: object, ok: bool | None
) -> None:
    times: list[object] = [1.0]
    lb = cls(SERVERS, clock=lambda: times[-1])  # type: ignore[call-arg]
    lease = lb.acquire(KEYS[0])
    other = lb.acquire(KEYS[1])
    times.append(reading)
    # The fault is reported, after the lease is settled: nothing stays counted.
    with pytest.raises((TypeError, ValueError), match="clock"):
        lease.release(ok=ok)
    assert lease.released and lease.ok is ok and lease.latency is None
    assert lease.release() is False
    assert lb.in_flight(lease.server) == (1 if other.server == lease.server else 0)
    lb._check()
    times.append(2.0)
    assert other.release() is True and other.latency == 1.0
    assert all(lb.in_flight(s) == 0 for s in SERVERS)
    lb._check()


def test_key_requirement(cls: type[Balancer]) -> None:
    lb = cls(SERVERS)
    if cls.requires_key:
        with pytest.raises(TypeError, match="key"):
            lb.get_server()
        with pytest.raises(TypeError, match="key"):
            lb.acquire()
        with pytest.raises(TypeError, match=r"key|address"):
            lb.get_server(1.5)
    else:
        assert lb.get_server() in SERVERS


def test_threads_leave_no_lease_open(cls: type[Balancer]) -> None:
    lb = cls(SERVERS)

    def work(offset: int) -> None:
        for i in range(2000):
            lease = lb.acquire(KEYS[(offset + i) % len(KEYS)])
            if i % 7 == 0:
                lease.release()  # a second release below must not count
            lease.release(ok=i % 5 != 0)

    run_in_threads(work, 8)
    assert all(lb.in_flight(server) == 0 for server in SERVERS)
    lb._check()


def test_repr_shows_servers_and_options(cls: type[Balancer]) -> None:
    lb = cls({"a": 2, "b": 1})
    text = repr(lb)
    assert text.startswith(f"{cls.__name__}(")
    assert "'a': 2.0" in text and "'b': 1.0" in text
