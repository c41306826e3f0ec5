"""The Pool with every feature on, over every strategy, checked against its components.

tests/test_pool_machine.py checks the Pool against an independent model of
probes and drains with the time-driven features off. Here they are all on:
passive ejection from released leases, probe timeouts from ``due_checks``,
drain deadlines (with sticky access until them), slow start, and a clock that
jumps with or without ``poll()``, retries that exclude servers already tried,
abandoned leases, a cap of open leases per server, and discovery updates. The
reference is the components' own state
(their machines are checked against models in test_health_machine.py and
test_drain.py), combined by the Pool's rule: eligible = healthy and active,
and every active server when fewer than half of them are healthy.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from balancekit import AllServersBusy, ManualClock, NoServerAvailable
from balancekit.drain import Drainer, DrainState
from balancekit.health import HealthTracker
from balancekit.lease import Lease
from balancekit.pool import Pool
from balancekit.sticky import StickySession
from balancekit.strategies.base import Balancer
from balancekit.strategies.maglev import Maglev

from .strategies.contract import STRATEGIES

ALL = [f"10.0.0.{i}" for i in range(1, 7)]
NAMES = st.sampled_from(ALL)
CAP = 3  # max_in_flight
KEYS = st.sampled_from([f"192.168.1.{i}" for i in range(1, 30)])


class ComposedPool(RuleBasedStateMachine):
    strategy_class: type[Balancer]
    leases = Bundle("leases")

    @initialize(servers=st.sets(NAMES, min_size=1, max_size=5), seed=st.integers(0, 99))
    def start(self, servers: set[str], seed: int) -> None:
        self.clock = ManualClock()
        members = sorted(servers)
        strategy = (  # a small table: slow start rebuilds it at every ramp step
            Maglev(members, table_size=1009)
            if self.strategy_class is Maglev
            else self.strategy_class(members)
        )
        tracker = HealthTracker(
            interval=5.0,
            timeout=2.0,
            jitter=0.2,
            consecutive_failures=2,
            base_ejection=10.0,
            max_ejection=40.0,
            max_ejected_percent=50.0,
            rng=random.Random(seed),
        )
        # Passive health is fed by the Pool's releases: record what it reports.
        self.observed: list[tuple[str, bool]] = []
        report = tracker._observe  # the Pool hands it the record and its `now`

        def spy(rec: Any, ok: bool, now: float) -> Any:
            self.observed.append((rec.name, ok))
            return report(rec, ok, now)

        tracker._observe = spy  # type: ignore[method-assign]
        self.pool = Pool(
            strategy,
            health=tracker,
            drainer=Drainer(timeout=8.0, sticky_until_deadline=True),
            sticky=StickySession("composed"),
            slow_start=20.0,
            max_in_flight=CAP,
            clock=self.clock,
        )
        self.open: Counter[str] = Counter()
        self.generation: Counter[str] = Counter()
        self.issued: dict[int, tuple[str, int]] = {}
        self.cookies: list[tuple[str, str]] = []  # (cookie, server it was issued for)
        self.probing: list[str] = []  # probes started by due_checks, not reported yet

    # -- the Pool's rule, read from the components -----------------------------------

    def states(self) -> tuple[set[str], bool]:
        health, drainer = self.pool.health, self.pool.drainer
        assert health is not None
        active = [s for s in self.pool.servers if drainer.is_active(s)]
        healthy = [s for s in active if health.is_healthy(s)]
        panic = bool(active) and len(healthy) < 0.5 * len(active)
        return set(active if panic else healthy), panic

    def keeps_sticky(self, server: str, panic: bool, exclude: list[str]) -> bool:
        health = self.pool.health
        assert health is not None
        if server not in self.pool or server in exclude or self.open[server] >= CAP:
            return False
        return (panic or health.is_healthy(server)) and self.pool.drainer.accepts_sticky(server)

    def forget_departed(self) -> None:
        """Servers that left by themselves (drained after a discovery update)."""
        for server in [s for s in self.open if s not in self.pool]:
            del self.open[server]

    def settle(self) -> None:
        """With servers leaving, let a reader catch the pool up first, so that a rule's
        view of the membership is the one its call will find (a leaving server
        departs at the first call after its drain ends)."""
        if self.pool._leaving:
            self.pool.stats()
        self.forget_departed()

    # -- rules ----------------------------------------------------------------------------

    @rule(server=NAMES)
    def add(self, server: str) -> None:
        self.settle()
        if server in self.pool:
            with pytest.raises(ValueError):
                self.pool.add_server(server)
            return
        self.pool.add_server(server)
        self.generation[server] += 1

    @precondition(lambda self: len(self.pool) > 1)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        self.settle()
        if not len(self.pool):
            return
        server = data.draw(st.sampled_from(sorted(self.pool.servers)))
        self.pool.remove_server(server)
        self.open.pop(server, None)

    @rule()
    def start_due_probes(self) -> None:
        self.probing += self.pool.due_checks()

    @precondition(lambda self: self.probing)
    @rule(data=st.data(), ok=st.booleans())
    def report_probe(self, data: st.DataObject, ok: bool) -> None:
        server = self.probing.pop(data.draw(st.integers(0, len(self.probing) - 1)))
        self.settle()
        if server in self.pool:
            self.pool.record_check(server, ok)

    @rule(listed=st.sets(NAMES, min_size=1, max_size=5))
    def update(self, listed: set[str]) -> None:
        self.settle()
        before = set(self.pool.servers)
        self.pool.update(sorted(listed))
        for server in listed - before:
            self.generation[server] += 1  # a new member
        self.forget_departed()
        after = set(self.pool.servers)
        assert listed <= after
        for server in after - listed:  # leaving: draining until its leases are done
            # (or, for sticky clients, until its deadline)
            assert self.open[server] > 0 or self.pool.drainer.sticky_until_deadline
            assert self.pool.drainer.state(server) is DrainState.DRAINING

    @precondition(lambda self: len(self.pool) > 0)
    @rule(data=st.data(), timeout=st.sampled_from([None, 0.0, 3.0]))
    def drain_or_cancel(self, data: st.DataObject, timeout: float | None) -> None:
        self.settle()
        if not len(self.pool):
            return
        server = data.draw(st.sampled_from(sorted(self.pool.servers)))
        if self.pool.drainer.state(server) is DrainState.ACTIVE:
            self.pool.drain(server, timeout)
        else:
            self.pool.cancel_drain(server)

    @rule(seconds=st.sampled_from([0.5, 1.9, 2.0, 4.0, 8.0, 15.0]), poll=st.booleans())
    def advance(self, seconds: float, poll: bool) -> None:
        self.clock.advance(seconds)
        if poll:  # otherwise the next acquire must catch up by itself
            self.pool.poll()
            self.forget_departed()

    @rule(target=leases, seconds=st.sampled_from([2.0, 10.0, 15.0]), key=KEYS)
    def jump_then_acquire(self, seconds: float, key: str) -> Lease | None:
        """The clock jumps past deadlines and nothing but acquire() notices."""
        self.clock.advance(seconds)
        return self.acquire(key, sticky=bool(self.cookies), exclude=[])

    @rule(
        target=leases,
        key=KEYS,
        sticky=st.booleans(),
        exclude=st.lists(NAMES, max_size=3, unique=True),
    )
    def acquire(self, key: str, sticky: bool, exclude: list[str]) -> Lease | None:
        cookie, promised = self.cookies[-1] if sticky and self.cookies else (None, None)
        try:
            lease = self.pool.acquire(key, cookie=cookie, exclude=exclude)
        except AllServersBusy:
            self.forget_departed()
            allowed, _ = self.states()
            assert allowed and all(self.open[s] >= CAP for s in allowed)
            return None
        except NoServerAvailable:
            self.forget_departed()
            allowed, _ = self.states()
            assert not allowed
            return None
        self.forget_departed()
        allowed, panic = self.states()
        # acquire() has caught up with the clock by itself: the weights it chose
        # by are those of the components' present state.
        weights = self.pool.strategy.servers
        assert {s for s, w in weights.items() if w > 0} == allowed, (weights, allowed)
        if promised is not None and self.keeps_sticky(promised, panic, exclude):
            assert lease.server == promised and not lease.moved
        else:
            assert lease.server in allowed, (lease.server, allowed)
            room = {s for s in allowed if self.open[s] < CAP}
            assert lease.server in room  # a full server is never chosen
            if room - set(exclude):  # a server tried is chosen only when nothing else is
                assert lease.server not in exclude
        if cookie is not None:
            assert lease.moved == (lease.server != promised)
        assert lease.cookie is not None
        self.cookies.append((lease.cookie, lease.server))
        self.open[lease.server] += 1
        self.issued[id(lease)] = (lease.server, self.generation[lease.server])
        return lease

    @rule(
        lease=consumes(leases),
        ok=st.sampled_from([True, False, None]),
        seconds=st.sampled_from([0.0, 0.3]),
    )
    def release(self, lease: Lease | None, ok: bool | None, seconds: float) -> None:
        if lease is None:
            return
        self.clock.advance(seconds)
        seen = len(self.observed)
        server, generation = self.issued.pop(id(lease))
        current = server in self.pool and self.generation[server] == generation
        assert lease.release(ok) is True
        assert lease.release(ok) is False
        if current:
            self.open[server] -= 1
            self.forget_departed()  # its last lease may have ended its leaving
            if server not in self.pool:
                return
            health = self.pool.health
            assert health is not None
            if ok is None:  # abandoned: no health event at all
                assert len(self.observed) == seen
            elif ok and len(self.observed) == seen:
                # A success is passed on only when it ends a failure streak.
                assert health._records[server].passive == 0
            else:
                assert self.observed[-1:] == [(server, ok)]  # counted by passive health
                assert health._records[server].passive == 0 or not ok
        else:
            assert len(self.observed) == seen  # nothing of a departed member is counted

    @rule()
    def read(self) -> None:
        """What the pool reports agrees with its components (the readers catch up)."""
        pool = self.pool
        stats = pool.stats()
        self.forget_departed()
        assert set(stats) == set(pool.servers) == set(pool.strategy.servers)
        allowed, panic = self.states()
        assert pool.panic == panic
        for server, row in stats.items():
            assert row.in_flight == self.open[server] == pool.strategy.in_flight(server)
            assert row.drain is pool.drainer.state(server)
            assert pool.is_eligible(server) == (server in allowed)
            # Ineligible servers get weight 0; eligible ones at least the ramp's minimum.
            weight = pool.strategy.servers[server]
            assert (weight > 0) == (server in allowed), (server, weight, allowed)

    # -- invariants -------------------------------------------------------------------

    # Only what holds without catching up with the clock: reading the pool here
    # would catch it up after every step, and acquire() would never have to.
    @invariant()
    def counts_agree(self) -> None:
        if not hasattr(self, "pool"):
            return
        for server in self.pool.servers:  # departed ones are forgotten by the next rule
            if server in self.open or self.pool.strategy.in_flight(server):
                assert self.pool.strategy.in_flight(server) == self.open[server]
        self.pool._check()


# Every strategy briefly, round robin (the cheapest) for longer. Rare paths that
# matter, such as an ejection ending with nothing but acquire() to notice, also
# have deterministic tests in test_pool.py.
MACHINES = {}
for cls in STRATEGIES:
    machine = type(f"Composed{cls.__name__}", (ComposedPool,), {"strategy_class": cls})
    examples = 100 if cls.__name__ == "RoundRobin" else 10
    machine.TestCase.settings = settings(max_examples=examples, stateful_step_count=40)
    MACHINES[cls.__name__] = machine


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MACHINES))
def test_composed_pool(name: str) -> None:
    MACHINES[name].TestCase().runTest()
