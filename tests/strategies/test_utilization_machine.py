"""UtilizationRoundRobin's weight lifecycle against a small reference model (gRFC A58).

The model keeps, per server, what gRPC's EndpointWeight keeps (weight,
non_empty_since, last_update) and applies A58's rules: a report starts a run,
a weight counts after the blackout, expires after the expiration (ending the
run when the scheduler next reads it), and a server back from weight 0 starts
a new blackout.
"""

from __future__ import annotations

import math
import struct

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from balancekit import ManualClock, UtilizationRoundRobin

SERVERS = ("a", "b", "c")
BLACKOUT, EXPIRATION, PERIOD = 3.0, 20.0, 1.0


def f32(x: float) -> float:
    value: float = struct.unpack("f", struct.pack("f", x))[0]
    return value


class Model:
    def __init__(self) -> None:
        self.weight = 0.0
        self.since: float | None = None
        self.updated = -math.inf

    def usable(self, now: float) -> float:
        if now - self.updated >= EXPIRATION or self.since is None:
            return 0.0
        return 0.0 if now - self.since < BLACKOUT else self.weight


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.lb = UtilizationRoundRobin(
            SERVERS, blackout=BLACKOUT, expiration=EXPIRATION, update_period=PERIOD,
            clock=self.clock,
        )  # fmt: skip
        self.model = {s: Model() for s in SERVERS}
        self.static = dict.fromkeys(SERVERS, 1.0)
        self.due = PERIOD  # the constructor read the weights at time 0

    def _read(self) -> None:
        """The scheduler reads the weights: expired runs end (rotation members only)."""
        now = self.clock()
        for server, model in self.model.items():
            if self.static[server] > 0 and now - model.updated >= EXPIRATION:
                model.since = None
        self.due = now + PERIOD

    @rule(
        server=st.sampled_from(SERVERS),
        qps=st.sampled_from([0.0, 1.0, 50.0, 1e6]),
        utilization=st.sampled_from([0.0, 0.25, 1.0, 3.0]),
    )
    def report(self, server: str, qps: float, utilization: float) -> None:
        self.lb.report(server, qps=qps, utilization=utilization)
        if qps > 0 and utilization > 0:
            model = self.model[server]
            now = self.clock()
            if model.since is None:
                model.since = now
            model.weight = f32(qps / utilization)
            model.updated = now

    @rule(seconds=st.sampled_from([0.25, 1.0, 2.5, 7.0, 25.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(server=st.sampled_from(SERVERS), weight=st.sampled_from([0.0, 1.0, 2.0]))
    def set_weight(self, server: str, weight: float) -> None:
        old = self.static[server]
        self.lb.set_weight(server, weight)
        if old == weight:
            return
        self.static[server] = weight
        if old == 0 < weight:
            self.model[server].since = None
        self._read()  # a change rebuilds the scheduler at once

    @rule()
    def pick(self) -> None:
        if not any(self.static.values()):
            return
        server = self.lb.get_server()
        assert self.static[server] > 0
        if self.clock() >= self.due:
            self._read()

    @invariant()
    def weights_match(self) -> None:
        now = self.clock()
        for server, model in self.model.items():
            assert self.lb.reported_weight(server) == model.usable(now), server
        self.lb._check()


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
