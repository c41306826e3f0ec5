"""Stateful tests: each load-aware strategy against a tiny reference model.

The model is a dict of weights and a dict of open-lease counts (plus, for
LeastResponseTime, the peak-EWMA rule written out plainly). Rules add,
remove and reweight servers, acquire and release leases and move the clock;
after every step the strategy's counts must equal the model's and its
``_check()`` must hold, and every pick must be one the model allows.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from balancekit.clock import ManualClock
from balancekit.errors import NoServerAvailable
from balancekit.lease import Lease
from balancekit.strategies.base import Balancer
from balancekit.strategies.least_load import LeastConnections, PowerOfTwoChoices
from balancekit.strategies.response_time import LeastResponseTime

SERVERS = st.sampled_from(["s0", "s1", "s2", "s3", "s4"])
WEIGHTS = st.sampled_from([0, 0.5, 1, 2, 3])
STEPS = settings(max_examples=50, stateful_step_count=40)


class LoadModel(RuleBasedStateMachine):
    """Shared rules; subclasses build the balancer and judge each pick."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.weights: dict[str, float] = {"s0": 1.0, "s1": 2.0}
        self.counts: dict[str, int] = {"s0": 0, "s1": 0}
        # A lease counts only against the member it was opened on: a server
        # removed and added again is a new member (a new generation).
        self.generation: dict[str, int] = {"s0": 0, "s1": 0}
        self.open: list[tuple[Lease, int]] = []
        self.lb = self.build(dict(self.weights))
        self.model_added("s0")
        self.model_added("s1")

    # -- hooks ------------------------------------------------------------------

    def build(self, servers: dict[str, float]) -> Balancer:
        raise NotImplementedError

    def model_added(self, server: str) -> None:
        return

    def model_restarted(self, server: str) -> None:
        """The server's weight went from 0 to positive: a fresh start."""
        return

    def model_released(self, server: str, lease: Lease, ok: bool | None) -> None:
        return

    def check_pick(self, server: str, candidates: list[str]) -> None:
        """Judge a pick among ``candidates`` (the eligible servers it may choose)."""
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------

    def eligible(self) -> list[str]:
        return [s for s, w in self.weights.items() if w > 0]

    def count_load(self, server: str) -> float:
        return self.counts[server] / self.weights[server]

    # -- rules ------------------------------------------------------------------

    @rule(server=SERVERS, weight=WEIGHTS)
    def add(self, server: str, weight: float) -> None:
        if server in self.weights:
            return
        self.lb.add_server(server, weight)
        self.weights[server] = float(weight)
        self.counts[server] = 0
        self.generation[server] = self.generation.get(server, 0) + 1
        self.model_added(server)

    @rule(server=SERVERS)
    def remove(self, server: str) -> None:
        if server not in self.weights:
            return
        self.lb.remove_server(server)
        del self.weights[server], self.counts[server]

    @rule(server=SERVERS, weight=WEIGHTS)
    def set_weight(self, server: str, weight: float) -> None:
        if server not in self.weights:
            return
        self.lb.set_weight(server, weight)
        if self.weights[server] == 0 and weight > 0:
            self.model_restarted(server)
        self.weights[server] = float(weight)

    @rule()
    def get_server(self) -> None:
        if not self.eligible():
            with pytest.raises(NoServerAvailable):
                self.lb.get_server()
            return
        self.check_pick(self.lb.get_server(), self.eligible())

    @rule(exclude=st.sets(SERVERS, max_size=5))
    def acquire_elsewhere(self, exclude: set[str]) -> None:
        # A retry: never a server tried while an untried eligible one exists.
        if not self.eligible():
            with pytest.raises(NoServerAvailable):
                self.lb.acquire(exclude=exclude)
            return
        candidates = [s for s in self.eligible() if s not in exclude] or self.eligible()
        server = self.lb.get_server(exclude=exclude)
        self.check_pick(server, candidates)
        lease = self.lb.acquire(exclude=exclude)
        self.check_pick(lease.server, candidates)
        self.counts[lease.server] += 1
        self.open.append((lease, self.generation[lease.server]))

    @rule()
    def acquire(self) -> None:
        if not self.eligible():
            with pytest.raises(NoServerAvailable):
                self.lb.acquire()
            return
        lease = self.lb.acquire()
        self.check_pick(lease.server, self.eligible())
        self.counts[lease.server] += 1
        self.open.append((lease, self.generation[lease.server]))

    @precondition(lambda self: self.open)
    @rule(index=st.integers(0, 50), ok=st.sampled_from([True, False, None]), twice=st.booleans())
    def release(self, index: int, ok: bool | None, twice: bool) -> None:
        lease, generation = self.open.pop(index % len(self.open))
        assert lease.release(ok) is True
        if twice:
            assert lease.release(not ok) is False
        assert lease.ok is ok and lease.released
        server = lease.server
        if server in self.weights and self.generation[server] == generation:
            self.counts[server] -= 1
            self.model_released(server, lease, ok)

    @rule(seconds=st.sampled_from([0.0, 0.001, 0.05, 0.4, 3.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def agrees_with_the_model(self) -> None:
        self.lb._check()
        assert dict(self.lb.servers) == self.weights
        for server, count in self.counts.items():
            assert self.lb.in_flight(server) == count, (server, self.counts)


class LeastConnectionsMachine(LoadModel):
    def build(self, servers: dict[str, float]) -> Balancer:
        return LeastConnections(servers, clock=self.clock)

    def check_pick(self, server: str, candidates: list[str]) -> None:
        minimum = min(self.count_load(s) for s in candidates)
        assert server in candidates
        assert self.count_load(server) == minimum, (server, self.counts, self.weights)


class PowerOfTwoChoicesMachine(LoadModel):
    def build(self, servers: dict[str, float]) -> Balancer:
        return PowerOfTwoChoices(servers, rng=random.Random(0), clock=self.clock)

    def check_pick(self, server: str, candidates: list[str]) -> None:
        # The pick won against another, distinct server it drew, so with two
        # or more candidates some other one is at least as loaded.
        assert server in candidates
        others = [s for s in candidates if s != server]
        if others:
            assert max(self.count_load(s) for s in others) >= self.count_load(server)


DECAY, DEFAULT_RTT, PENALTY = 2.0, 0.03, 0.3


class LeastResponseTimeMachine(LoadModel):
    penalty = PENALTY

    def __init__(self) -> None:
        self.estimate: dict[str, tuple[float, float]] = {}  # server -> (e, t_prev)
        super().__init__()

    def build(self, servers: dict[str, float]) -> Balancer:
        return LeastResponseTime(
            servers, decay=DECAY, default_rtt=DEFAULT_RTT, failure_penalty=PENALTY, clock=self.clock
        )

    def model_added(self, server: str) -> None:
        self.estimate[server] = (DEFAULT_RTT, self.clock())

    def model_restarted(self, server: str) -> None:
        self.estimate[server] = (DEFAULT_RTT, self.clock())

    def model_released(self, server: str, lease: Lease, ok: bool | None) -> None:
        now = self.clock()
        rtt = now - lease.started
        if ok is False:  # abandoned (None): the elapsed time, without a penalty
            rtt = max(rtt, self.penalty)
        e, t_prev = self.estimate[server]
        if rtt > e:
            e = rtt
        else:
            e += (rtt - e) * (1 - math.exp(-(now - t_prev) / DECAY))
        self.estimate[server] = (e, now)

    def model_load(self, server: str) -> float:
        e, t_prev = self.estimate[server]
        decayed = e * math.exp(-(self.clock() - t_prev) / DECAY)
        return decayed * (self.counts[server] + 1) / self.weights[server]

    def check_pick(self, server: str, candidates: list[str]) -> None:
        assert server in candidates
        minimum = min(self.model_load(s) for s in candidates)
        assert self.model_load(server) <= minimum * (1 + 1e-9), (server, self.estimate)

    @invariant()
    def loads_match_the_model(self) -> None:
        for server in self.eligible():
            assert self.lb.load(server) == pytest.approx(self.model_load(server), rel=1e-9)


class PeakEwmaChoicesMachine(LeastResponseTimeMachine):
    """PowerOfTwoChoices(load="peak_ewma"): the same estimator, failures without a penalty."""

    penalty = 0.0

    def build(self, servers: dict[str, float]) -> Balancer:
        return PowerOfTwoChoices(
            servers,
            load="peak_ewma",
            decay=DECAY,
            default_rtt=DEFAULT_RTT,
            rng=random.Random(0),
            clock=self.clock,
        )

    def check_pick(self, server: str, candidates: list[str]) -> None:
        # It won against another drawn candidate: some other one is at least as loaded.
        assert server in candidates
        others = [s for s in candidates if s != server]
        if others:
            mine = self.model_load(server)
            assert max(self.model_load(s) for s in others) >= mine * (1 - 1e-9)


class ThreeChoicesMachine(PowerOfTwoChoicesMachine):
    def build(self, servers: dict[str, float]) -> Balancer:
        return PowerOfTwoChoices(servers, choices=3, rng=random.Random(0), clock=self.clock)

    def check_pick(self, server: str, candidates: list[str]) -> None:
        # It beat two others (or all, with fewer): at most len - 3 candidates are lighter.
        assert server in candidates
        lighter = [s for s in candidates if self.count_load(s) < self.count_load(server)]
        assert len(lighter) <= max(0, len(candidates) - 3), (server, lighter)


TestLeastConnections = LeastConnectionsMachine.TestCase
TestLeastConnections.settings = STEPS
TestPowerOfTwoChoices = PowerOfTwoChoicesMachine.TestCase
TestPowerOfTwoChoices.settings = STEPS
TestLeastResponseTime = LeastResponseTimeMachine.TestCase
TestLeastResponseTime.settings = STEPS
TestPeakEwmaChoices = PeakEwmaChoicesMachine.TestCase
TestPeakEwmaChoices.settings = STEPS
TestThreeChoices = ThreeChoicesMachine.TestCase
TestThreeChoices.settings = STEPS
