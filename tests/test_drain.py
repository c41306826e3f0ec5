from __future__ import annotations

import math
import threading

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from balancekit.clock import ManualClock
from balancekit.drain import Drainer, DrainState
from balancekit.errors import DuplicateServer, UnknownServer
from balancekit.events import StateChange

D = DrainState


def make(servers: tuple[str, ...] = ("a",), **options: object) -> tuple[Drainer, ManualClock]:
    clock = ManualClock()
    drainer = Drainer(servers, clock=clock, **options)  # type: ignore[arg-type]
    drainer._check()
    return drainer, clock


def change(server: str, old: DrainState, new: DrainState, at: float, left: int = 0) -> StateChange:
    return StateChange(server, old, new, at, left)


def open_leases(drainer: Drainer, server: str, count: int) -> None:
    for _ in range(count):
        drainer.opened(server)


# -- options and membership ------------------------------------------------------------


def test_defaults_properties_and_repr() -> None:
    drainer = Drainer()
    assert drainer.timeout == 30.0 and drainer.sticky_until_deadline is False
    assert drainer.servers == () and len(drainer) == 0 and drainer.next_deadline() is None
    drainer, _ = make(("a", "b"), timeout=5, sticky_until_deadline=True)
    drainer.opened("b")
    drainer.drain("b")
    assert repr(drainer) == (
        "Drainer({'a': 'active', 'b': 'draining'}, timeout=5.0, sticky_until_deadline=True)"
    )


@pytest.mark.parametrize(
    ("options", "error"),
    [({"timeout": -1}, ValueError), ({"timeout": math.nan}, ValueError),
     ({"timeout": math.inf}, ValueError), ({"timeout": "30"}, TypeError),
     ({"timeout": True}, TypeError), ({"sticky_until_deadline": 1}, TypeError)],
)  # fmt: skip
def test_bad_option_names_the_option_and_the_value(
    options: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        Drainer(**options)  # type: ignore[arg-type]
    ((name, value),) = options.items()
    assert name in str(info.value) and repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("servers", "error"),
    [("ab", TypeError), (7, TypeError), ([1], TypeError), ([""], ValueError),
     (["a", "a"], DuplicateServer)],
)  # fmt: skip
def test_bad_servers_are_rejected(servers: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        Drainer(servers)  # type: ignore[arg-type]


def test_membership() -> None:
    drainer, _ = make(("a",))
    drainer.add_server("b")
    assert drainer.servers == ("a", "b") and "b" in drainer and len(drainer) == 2
    with pytest.raises(DuplicateServer):
        drainer.add_server("a")
    with pytest.raises(TypeError):
        drainer.add_server(None)  # type: ignore[arg-type]
    drainer.remove_server("a")
    assert list(drainer.servers) == ["b"] and "a" not in drainer
    drainer._check()


def test_unknown_server_raises_and_changes_nothing() -> None:
    drainer, _ = make(("a",))
    for call in (
        lambda: drainer.remove_server("x"),
        lambda: drainer.opened("x"),
        lambda: drainer.drain("x"),
        lambda: drainer.cancel("x"),
        lambda: drainer.state("x"),
        lambda: drainer.is_active("x"),
        lambda: drainer.accepts_sticky("x"),
        lambda: drainer.in_flight("x"),
    ):
        with pytest.raises(UnknownServer, match="'x'"):
            call()
    assert drainer.servers == ("a",) and drainer.state("a") is D.ACTIVE
    drainer._check()


# -- one test per transition -------------------------------------------------------------


def test_active_to_draining_while_leases_are_open() -> None:
    drainer, clock = make(("a",), timeout=30)
    open_leases(drainer, "a", 2)
    clock.set(1.0)
    assert drainer.drain("a") == change("a", D.ACTIVE, D.DRAINING, 1.0)
    assert not drainer.is_active("a") and drainer.state("a") is D.DRAINING
    assert drainer.next_deadline() == 31.0 and drainer.in_flight("a") == 2
    drainer._check()


def test_active_to_drained_at_once_when_idle() -> None:
    drainer, _ = make(("a",))
    assert drainer.drain("a") == change("a", D.ACTIVE, D.DRAINED, 0.0)
    assert drainer.next_deadline() is None and drainer.poll() == []
    drainer._check()


def test_draining_to_drained_when_the_last_lease_closes() -> None:
    drainer, clock = make(("a",))
    open_leases(drainer, "a", 2)
    drainer.drain("a")
    clock.set(3.0)
    assert drainer.closed("a") is None
    assert drainer.state("a") is D.DRAINING
    assert drainer.closed("a") == change("a", D.DRAINING, D.DRAINED, 3.0)
    assert drainer.poll() == [] and drainer.next_deadline() is None
    drainer._check()


def test_draining_to_drained_exactly_at_the_deadline_with_leases_left() -> None:
    drainer, clock = make(("a",), timeout=10)
    open_leases(drainer, "a", 3)
    drainer.drain("a")
    drainer.closed("a")
    clock.set(9.999)
    assert drainer.poll() == [] and drainer.state("a") is D.DRAINING
    clock.set(10.0)
    assert drainer.state("a") is D.DRAINED  # any call that reads the clock notices
    assert drainer.poll() == [change("a", D.DRAINING, D.DRAINED, 10.0, left=2)]
    assert drainer.poll() == []  # reported once
    assert drainer.in_flight("a") == 2
    drainer._check()


@pytest.mark.parametrize("busy", [True, False])
def test_draining_or_drained_back_to_active_on_cancel(busy: bool) -> None:
    drainer, clock = make(("a",), timeout=10)
    open_leases(drainer, "a", int(busy))
    drainer.drain("a")
    clock.set(4.0)
    old = D.DRAINING if busy else D.DRAINED
    assert drainer.cancel("a") == change("a", old, D.ACTIVE, 4.0)
    assert drainer.is_active("a") and drainer.next_deadline() is None
    clock.set(100.0)
    assert drainer.poll() == []  # the cancelled deadline is gone
    assert drainer.in_flight("a") == int(busy)
    drainer._check()


def test_a_cancelled_drain_can_be_drained_again() -> None:
    drainer, clock = make(("a",), timeout=10)
    drainer.opened("a")
    drainer.drain("a")
    drainer.cancel("a")
    clock.set(5.0)
    assert drainer.drain("a") == change("a", D.ACTIVE, D.DRAINING, 5.0)
    clock.set(10.0)  # the first drain's deadline means nothing now
    assert drainer.poll() == []
    clock.set(15.0)
    assert drainer.poll() == [change("a", D.DRAINING, D.DRAINED, 15.0, left=1)]


# -- illegal events ---------------------------------------------------------------------------


@pytest.mark.parametrize("busy", [True, False])
def test_draining_again_is_illegal_and_changes_nothing(busy: bool) -> None:
    drainer, _ = make(("a",), timeout=10)
    open_leases(drainer, "a", int(busy))
    drainer.drain("a")
    before = (drainer.state("a"), drainer.in_flight("a"), drainer.next_deadline())
    with pytest.raises(
        ValueError, match=f"cannot drain server 'a': it is {'draining' if busy else 'drained'}"
    ):
        drainer.drain("a", timeout=1)
    assert (drainer.state("a"), drainer.in_flight("a"), drainer.next_deadline()) == before
    assert drainer.poll() == []
    drainer._check()


def test_cancelling_an_active_server_is_illegal_and_changes_nothing() -> None:
    drainer, _ = make(("a",))
    drainer.opened("a")
    with pytest.raises(ValueError, match="cannot cancel server 'a': it is active"):
        drainer.cancel("a")
    assert drainer.state("a") is D.ACTIVE and drainer.in_flight("a") == 1
    assert drainer.poll() == []


@pytest.mark.parametrize(
    ("timeout", "error"), [(-0.5, ValueError), (math.nan, ValueError), ("1", TypeError),
                           (False, TypeError)],
)  # fmt: skip
def test_a_bad_drain_timeout_raises_and_changes_nothing(
    timeout: object, error: type[Exception]
) -> None:
    drainer, _ = make(("a",))
    drainer.opened("a")
    with pytest.raises(error, match="timeout"):
        drainer.drain("a", timeout=timeout)  # type: ignore[arg-type]
    assert drainer.state("a") is D.ACTIVE and drainer.next_deadline() is None


# -- deadlines, counts, stickiness ----------------------------------------------------------------


def test_per_call_timeout_overrides_the_default() -> None:
    drainer, clock = make(("a", "b"), timeout=30)
    open_leases(drainer, "a", 1)
    open_leases(drainer, "b", 1)
    drainer.drain("a", timeout=5)
    drainer.drain("b")
    assert drainer.next_deadline() == 5.0
    clock.set(5.0)
    assert drainer.poll() == [change("a", D.DRAINING, D.DRAINED, 5.0, left=1)]
    assert drainer.next_deadline() == 30.0


def test_zero_timeout_gives_up_on_open_leases_at_once() -> None:
    drainer, _ = make(("a",))
    open_leases(drainer, "a", 2)
    assert drainer.drain("a", timeout=0) == change("a", D.ACTIVE, D.DRAINING, 0.0)
    assert drainer.poll() == [change("a", D.DRAINING, D.DRAINED, 0.0, left=2)]


def test_poll_reports_deadlines_in_time_order() -> None:
    drainer, clock = make(("a", "b", "c"))
    for server, timeout in (("a", 7), ("b", 3), ("c", 7)):
        drainer.opened(server)
        drainer.drain(server, timeout=timeout)
    clock.set(10)
    assert [(c.server, c.at) for c in drainer.poll()] == [("b", 3.0), ("a", 7.0), ("c", 7.0)]


def test_late_releases_after_a_forced_drain_never_go_negative() -> None:
    drainer, clock = make(("a",), timeout=1)
    open_leases(drainer, "a", 2)
    drainer.drain("a")
    clock.set(1.0)
    drainer.poll()
    for _ in range(4):
        assert drainer.closed("a") is None
    assert drainer.in_flight("a") == 0 and drainer.state("a") is D.DRAINED
    drainer._check()


def test_releases_on_an_idle_or_removed_server_do_nothing() -> None:
    drainer, _ = make(("a", "b"))
    assert drainer.closed("a") is None and drainer.in_flight("a") == 0
    drainer.opened("b")
    drainer.drain("b")
    drainer.remove_server("b")
    assert drainer.closed("b") is None and drainer.closed("never") is None
    assert drainer.next_deadline() is None and drainer.poll() == []
    drainer._check()


def test_leases_opened_while_draining_are_counted() -> None:
    # The drainer counts a lease in any state; who may get work is the caller's call.
    drainer, _ = make(("a",))
    drainer.opened("a")
    drainer.drain("a")
    drainer.opened("a")
    assert drainer.closed("a") is None
    assert drainer.closed("a") == change("a", D.DRAINING, D.DRAINED, 0.0)


def test_sticky_drain_lasts_until_its_deadline_whatever_is_in_flight() -> None:
    # A sticky client between two requests holds no lease: the last close must
    # not end the drain, or its next request would find the server gone.
    drainer, clock = make(("a", "b", "c"), timeout=10, sticky_until_deadline=True)
    drainer.opened("a")
    assert drainer.drain("a") == change("a", D.ACTIVE, D.DRAINING, 0.0)
    assert drainer.closed("a") is None and drainer.state("a") is D.DRAINING
    assert drainer.drain("b") == change("b", D.ACTIVE, D.DRAINING, 0.0)  # idle, still waits
    assert drainer.drain("c", timeout=0) == change("c", D.ACTIVE, D.DRAINED, 0.0)
    assert drainer.next_deadline() == 10.0
    clock.set(9.999)
    drainer.opened("a")  # a bound client comes back
    assert drainer.closed("a") is None and drainer.accepts_sticky("a")
    assert drainer.poll() == []
    clock.set(10.0)
    assert drainer.poll() == [
        change("a", D.DRAINING, D.DRAINED, 10.0), change("b", D.DRAINING, D.DRAINED, 10.0)
    ]  # fmt: skip
    assert not drainer.accepts_sticky("a") and drainer.next_deadline() is None
    drainer._check()


def test_accepts_sticky_by_default_only_when_active() -> None:
    drainer, _ = make(("a",))
    assert drainer.accepts_sticky("a")
    drainer.opened("a")
    drainer.drain("a")
    assert not drainer.accepts_sticky("a")


def test_accepts_sticky_until_the_deadline_when_asked() -> None:
    drainer, clock = make(("a", "b"), timeout=10, sticky_until_deadline=True)
    drainer.opened("a")
    drainer.drain("a")
    drainer.drain("b", timeout=0)  # idle and no time to wait: drained at once
    assert not drainer.is_active("a") and drainer.accepts_sticky("a")
    assert not drainer.accepts_sticky("b")
    clock.set(9.999)
    assert drainer.accepts_sticky("a")
    clock.set(10.0)
    assert not drainer.accepts_sticky("a")


def test_subscribers_see_every_change_once() -> None:
    drainer, clock = make(("a", "b"), timeout=5)
    seen: list[StateChange] = []
    unsubscribe = drainer.subscribe(seen.append)
    drainer.opened("a")
    drainer.opened("b")
    drainer.drain("a")
    drainer.drain("b")
    drainer.closed("a")
    clock.set(5.0)
    assert drainer.poll() == seen[-1:]
    assert [(c.server, c.new) for c in seen] == [
        ("a", D.DRAINING), ("b", D.DRAINING), ("a", D.DRAINED), ("b", D.DRAINED)
    ]  # fmt: skip
    unsubscribe()
    unsubscribe()
    drainer.cancel("a")
    assert len(seen) == 4


def test_adopt_clock_moves_deadlines_onto_the_pool_clock() -> None:
    drainer = Drainer(["a"], timeout=10)
    drainer.opened("a")
    drainer.drain("a")
    pool_clock = ManualClock(500.0)
    drainer._adopt_clock(pool_clock)
    assert drainer.clock is pool_clock
    assert drainer.next_deadline() == pytest.approx(510.0, abs=0.1)
    pool_clock.set(511.0)
    assert [c.new for c in drainer.poll()] == [D.DRAINED]
    drainer._adopt_clock(pool_clock)


def test_adopt_clock_refuses_a_second_explicit_clock() -> None:
    drainer, clock = make(("a",))
    with pytest.raises(ValueError, match="own clock"):
        drainer._adopt_clock(ManualClock())
    assert drainer.clock is clock


def test_threads_open_and_close_and_the_drain_ends_exactly_once() -> None:
    drainer, _ = make(("a",))
    for _ in range(8):
        drainer.opened("a")
    drainer.drain("a")
    results: list[StateChange | None] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        mine = []
        for _ in range(2000):
            drainer.opened("a")
            mine.append(drainer.closed("a"))
        mine.append(drainer.closed("a"))  # this thread's first lease
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r for r in results if r is not None] == [change("a", D.DRAINING, D.DRAINED, 0.0)]
    assert drainer.in_flight("a") == 0
    drainer._check()


# -- against a model ----------------------------------------------------------------------------


class DrainMachine(RuleBasedStateMachine):
    """Drainer against a dict of (state, count, deadline), with the clock moving."""

    sticky = False

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.drainer = Drainer(
            ["a", "b", "c"], timeout=4.0, sticky_until_deadline=self.sticky, clock=self.clock
        )
        self.model: dict[str, tuple[DrainState, int, float | None]] = {
            s: (D.ACTIVE, 0, None) for s in "abc"
        }
        self.expected: list[StateChange] = []

    servers = st.sampled_from("abc")

    @rule(server=servers)
    def open(self, server: str) -> None:
        self.drainer.opened(server)
        state, count, deadline = self.model[server]
        self.model[server] = (state, count + 1, deadline)

    @rule(server=servers)
    def close(self, server: str) -> None:
        state, count, deadline = self.model[server]
        now = self.clock()
        want = None
        if count == 1 and state is D.DRAINING and not self.sticky:
            want = change(server, state, D.DRAINED, now)
            state, deadline = D.DRAINED, None
        self.model[server] = (state, max(0, count - 1), deadline)
        assert self.drainer.closed(server) == want

    @rule(server=servers, timeout=st.sampled_from([None, 0.0, 1.0, 2.5]))
    def drain(self, server: str, timeout: float | None) -> None:
        state, count, _ = self.model[server]
        if state is not D.ACTIVE:
            with pytest.raises(ValueError):
                self.drainer.drain(server, timeout)
            return
        seconds = 4.0 if timeout is None else timeout
        new = D.DRAINING if count or (self.sticky and seconds > 0) else D.DRAINED
        deadline = self.clock() + seconds if new is D.DRAINING else None
        self.model[server] = (new, count, deadline)
        assert self.drainer.drain(server, timeout) == change(server, state, new, self.clock())
        self.settle()  # a zero timeout ends the drain at once

    @rule(server=servers)
    def cancel(self, server: str) -> None:
        state, count, _ = self.model[server]
        if state is D.ACTIVE:
            with pytest.raises(ValueError):
                self.drainer.cancel(server)
            return
        self.model[server] = (D.ACTIVE, count, None)
        assert self.drainer.cancel(server) == change(server, state, D.ACTIVE, self.clock())

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.5]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.settle()

    def settle(self) -> None:
        now = self.clock()
        ended = sorted(
            (deadline, server)
            for server, (state, _, deadline) in self.model.items()
            if deadline is not None and deadline <= now
        )
        for deadline, server in ended:
            _, count, _ = self.model[server]
            self.model[server] = (D.DRAINED, count, None)
            self.expected.append(change(server, D.DRAINING, D.DRAINED, deadline, count))

    @rule()
    def poll(self) -> None:
        got = self.drainer.poll()
        assert sorted(got, key=lambda c: (c.at, c.server)) == self.expected
        self.expected = []

    @invariant()
    def agrees_with_the_model(self) -> None:
        self.drainer._check()
        for server, (state, count, _) in self.model.items():
            assert self.drainer.state(server) is state
            assert self.drainer.in_flight(server) == count
            assert self.drainer.is_active(server) is (state is D.ACTIVE)
        deadlines = [d for _, _, d in self.model.values() if d is not None]
        assert self.drainer.next_deadline() == (min(deadlines) if deadlines else None)


class StickyDrainMachine(DrainMachine):
    """The same with ``sticky_until_deadline``: only a deadline ends a drain."""

    sticky = True


DrainMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30)
StickyDrainMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30)
test_drain_machine = DrainMachine.TestCase
test_sticky_drain_machine = StickyDrainMachine.TestCase
