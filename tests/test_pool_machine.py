"""The Pool as a state machine, checked against a small model of who may get work."""

from __future__ import annotations

from collections import Counter

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

from balancekit import ManualClock, NoServerAvailable
from balancekit.drain import Drainer
from balancekit.health import HealthTracker
from balancekit.lease import Lease
from balancekit.pool import Pool
from balancekit.sticky import StickySession
from balancekit.strategies.least_load import LeastConnections
from balancekit.strategies.ring import ConsistentHash
from balancekit.strategies.round_robin import RoundRobin, WeightedRoundRobin

NAMES = st.sampled_from([f"s{i}" for i in range(6)])
UNHEALTHY_AFTER, HEALTHY_AFTER = 3, 2


class ModelServer:
    """What the model knows of one member: probe streaks, health and drain."""

    def __init__(self) -> None:
        self.healthy = True
        self.fails = 0
        self.oks = 0
        self.draining = False

    def probe(self, ok: bool) -> None:
        if ok:
            self.oks, self.fails = self.oks + 1, 0
            if not self.healthy and self.oks >= HEALTHY_AFTER:
                self.healthy = True
        else:
            self.fails, self.oks = self.fails + 1, 0
            if self.healthy and self.fails >= UNHEALTHY_AFTER:
                self.healthy = False


class PoolMachine(RuleBasedStateMachine):
    strategy_class: type = RoundRobin
    leases = Bundle("leases")

    @initialize(servers=st.sets(NAMES, min_size=1, max_size=4))
    def start(self, servers: set[str]) -> None:
        self.clock = ManualClock()
        self.pool = Pool(
            self.strategy_class(sorted(servers)),
            # Passive ejection is off (a huge streak) so that the model needs only probes.
            health=HealthTracker(
                unhealthy_threshold=UNHEALTHY_AFTER,
                healthy_threshold=HEALTHY_AFTER,
                consecutive_failures=10**9,
            ),
            drainer=Drainer(timeout=10**9, sticky_until_deadline=False),
            sticky=StickySession("model-secret"),
            clock=self.clock,
        )
        self.model = {server: ModelServer() for server in servers}
        self.open: Counter[str] = Counter()  # leases open per server, this membership only
        self.generation: Counter[str] = Counter()  # bumped each time a server is added
        self.issued: dict[int, tuple[str, int]] = {}  # id(lease) -> (server, generation)
        self.cookies: dict[str, str] = {}  # cookie -> the server it was issued for

    # -- what the model allows ----------------------------------------------------

    def active(self) -> list[str]:
        return [s for s, m in self.model.items() if not m.draining]

    def allowed(self) -> set[str]:
        active = self.active()
        healthy = [s for s in active if self.model[s].healthy]
        panic = bool(active) and len(healthy) < 0.5 * len(active)
        return set(active if panic else healthy)

    # -- rules ----------------------------------------------------------------------

    @rule(server=NAMES)
    def add(self, server: str) -> None:
        if server in self.model:
            with pytest.raises(ValueError):
                self.pool.add_server(server)
        else:
            self.pool.add_server(server)
            self.model[server] = ModelServer()
            self.generation[server] += 1

    @precondition(lambda self: len(self.model) > 1)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        server = data.draw(st.sampled_from(sorted(self.model)))
        self.pool.remove_server(server)
        del self.model[server]
        self.open.pop(server, None)

    @rule(data=st.data(), ok=st.booleans())
    def check(self, data: st.DataObject, ok: bool) -> None:
        server = data.draw(st.sampled_from(sorted(self.model)))
        self.pool.record_check(server, ok)
        self.model[server].probe(ok)

    @rule(data=st.data())
    def drain_or_cancel(self, data: st.DataObject) -> None:
        server = data.draw(st.sampled_from(sorted(self.model)))
        if self.model[server].draining:
            self.pool.cancel_drain(server)
        else:
            self.pool.drain(server)
        self.model[server].draining = not self.model[server].draining

    @rule(seconds=st.floats(min_value=0, max_value=100))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.pool.poll()

    @rule(target=leases, key=st.integers(0, 50), sticky=st.booleans())
    def acquire(self, key: int, sticky: bool) -> Lease | None:
        cookie = next(iter(self.cookies), None) if sticky and self.cookies else None
        allowed = self.allowed()
        if not allowed:
            with pytest.raises(NoServerAvailable):
                self.pool.acquire(key)
            return None
        lease = self.pool.acquire(key, cookie=cookie)
        assert lease.server in allowed, (lease.server, allowed)
        if cookie is not None:
            promised = self.cookies.pop(cookie)
            if promised in allowed:
                assert lease.server == promised and not lease.moved
        assert lease.cookie is not None
        self.cookies[lease.cookie] = lease.server
        self.open[lease.server] += 1
        self.issued[id(lease)] = (lease.server, self.generation[lease.server])
        return lease

    @rule(lease=consumes(leases), ok=st.booleans())
    def release(self, lease: Lease | None, ok: bool) -> None:
        if lease is None:
            return
        first = lease.release(ok)
        assert first
        assert lease.release(not ok) is False
        server, generation = self.issued.pop(id(lease))
        if server in self.model and self.generation[server] == generation:
            self.open[server] -= 1

    # -- invariants -----------------------------------------------------------------

    @invariant()
    def counts_match(self) -> None:
        if not hasattr(self, "pool"):
            return
        stats = self.pool.stats()
        assert set(stats) == set(self.model)
        for server in self.model:
            assert stats[server].in_flight == self.open[server]
            assert self.pool.strategy.in_flight(server) == self.open[server]
        self.pool._check()


class RoundRobinPool(PoolMachine):
    strategy_class = RoundRobin


class LeastConnectionsPool(PoolMachine):
    strategy_class = LeastConnections


class WeightedRoundRobinPool(PoolMachine):
    strategy_class = WeightedRoundRobin


class ConsistentHashPool(PoolMachine):
    strategy_class = ConsistentHash


for machine in (RoundRobinPool, LeastConnectionsPool, WeightedRoundRobinPool, ConsistentHashPool):
    machine.TestCase.settings = settings(max_examples=40, stateful_step_count=40)

TestRoundRobinPool = RoundRobinPool.TestCase
TestLeastConnectionsPool = LeastConnectionsPool.TestCase
TestWeightedRoundRobinPool = WeightedRoundRobinPool.TestCase
TestConsistentHashPool = ConsistentHashPool.TestCase
