"""Abandoned leases: ``release(ok=None)`` and ``with`` blocks left by a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from balancekit import (
    HealthState,
    HealthTracker,
    Lease,
    LeastResponseTime,
    ManualClock,
    Pool,
    RoundRobin,
)


def test_with_block_outcomes() -> None:
    lb = RoundRobin(["a"])
    with lb.acquire() as done:
        pass
    with pytest.raises(OSError), lb.acquire() as failed:
        raise OSError("connection refused")
    with pytest.raises(asyncio.CancelledError), lb.acquire() as cancelled:
        raise asyncio.CancelledError
    assert (done.ok, failed.ok, cancelled.ok) == (True, False, None)
    assert [lease.abandoned for lease in (done, failed, cancelled)] == [False, False, True]
    assert lb.in_flight("a") == 0


def test_an_asyncio_timeout_is_not_a_success() -> None:
    # The case that motivated abandoned leases: wait_for cancels the request in the block.
    clock = ManualClock()
    lb = LeastResponseTime(["slow"], default_rtt=0.01, clock=clock)
    leases = []

    async def request() -> None:
        with lb.acquire() as lease:
            leases.append(lease)
            clock.advance(2.0)
            await asyncio.sleep(3600)  # hangs: cancelled by the timeout below

    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(request(), timeout=0.01)

    asyncio.run(main())
    (lease,) = leases
    assert lease.abandoned and lease.latency == 2.0
    # The elapsed time still teaches the strategy: a lower bound of the latency.
    assert lb.load("slow") == pytest.approx(2.0)
    assert lb.in_flight("slow") == 0


def test_the_pool_sees_an_abandoned_lease_as_neither_outcome() -> None:
    clock = ManualClock()
    tracker = HealthTracker(consecutive_failures=2, max_ejected_percent=100)
    pool = Pool(RoundRobin(["a", "b"]), health=tracker, clock=clock)

    def on_a() -> Lease:
        for _ in range(4):  # round robin: "a" within two picks while it is eligible
            lease = pool.acquire()
            if lease.server == "a":
                return lease
            lease.release()
        raise AssertionError("a was never picked")

    on_a().release(ok=False)
    for _ in range(3):
        on_a().release(ok=None)
    # Abandoned requests neither reset the failure streak nor extend it.
    assert tracker.state("a") is HealthState.HEALTHY
    stats = pool.stats()["a"]
    assert stats.errors == 1 and stats.in_flight == 0
    on_a().release(ok=False)
    assert tracker.state("a") is not HealthState.HEALTHY  # the second failure in a row
    pool._check()


def test_a_pool_whose_clock_fails_at_release_takes_no_latency_sample() -> None:
    times: list[object] = [0.0]
    lb = LeastResponseTime(["a"], default_rtt=0.05)
    pool = Pool(lb, clock=lambda: times[-1])  # type: ignore[arg-type, return-value]
    lease = pool.acquire()
    times.append(float("nan"))
    with pytest.raises(ValueError, match="clock"):
        lease.release(ok=True)
    assert lease.released and lease.latency is None  # not a made-up 0 s
    times.append(1.0)
    assert lb.in_flight("a") == 0 and pool.stats()["a"].in_flight == 0
    lb._check()


class _Counting(RoundRobin):
    """A strategy of one's own that learns from leases: its hooks must run."""

    def _rebuild(self) -> None:
        super()._rebuild()
        self.seen: list[tuple[str, str, object]] = []

    def _acquired(self, member: object, now: float) -> None:
        self.seen.append(("acquired", getattr(member, "server", ""), now))

    def _released(self, member: object, latency: float | None, ok: bool | None, now: float) -> None:
        self.seen.append(("released", getattr(member, "server", ""), (latency, ok)))


def test_lease_hooks_run_for_a_strategy_that_overrides_them_and_only_then() -> None:
    assert not RoundRobin._hooked and LeastResponseTime._hooked and _Counting._hooked
    clock = ManualClock()
    lb = _Counting(["a"], clock=clock)
    lease = lb.acquire()
    clock.advance(0.25)
    assert lease.release(ok=False) and not lease.release()
    assert lb.seen == [("acquired", "a", 0.0), ("released", "a", (0.25, False))]
    pool = Pool(_Counting(["a"]), clock=clock)
    pool.acquire().release()
    assert pool.strategy.seen == [("acquired", "a", 0.25), ("released", "a", (0.0, True))]
