"""HealthTracker against a brute-force model: streak counters and a list of deadlines.

The model keeps no heaps and no lazy deletion: on every clock step it scans
all servers for the earliest deadline (probe timeout or ejection end, ties in
the order they were set) and applies it, so it checks the tracker's timer
machinery as well as its transition rules.
"""

from __future__ import annotations

import math

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from balancekit.clock import ManualClock
from balancekit.events import StateChange
from balancekit.health import HealthState, HealthTracker

H = HealthState
NAMES = ("a", "b", "c", "d")
INTERVAL, TIMEOUT, UNHEALTHY, HEALTHY, FAILURES = 5.0, 2.0, 2, 2, 2
BASE, LONGEST, PERCENT, OUTLIER_INTERVAL = 3.0, 7.0, 50.0, 2.5


class Server:
    def __init__(self, name: str, state: HealthState, now: float, seq: int) -> None:
        self.name, self.state = name, state
        self.fails = self.oks = self.passive = self.ejections = 0
        self.decay_from = now  # when the last ejection ended, or would have
        self.ejected_until: tuple[float, int] | None = None
        self.timeout_at: tuple[float, int] | None = None
        self.late = False
        self.next_probe = (now, seq)


class Model:
    def __init__(self, initial: HealthState, uneject: bool) -> None:
        self.initial = initial
        self.uneject = uneject  # a passing probe ends an ejection (Envoy's default)
        self.now = 0.0
        self.seq = 0
        self.servers: dict[str, Server] = {}
        self.pending: list[StateChange] = []

    def tick(self) -> int:
        self.seq += 1
        return self.seq

    def add(self, name: str) -> None:
        self.servers[name] = Server(name, self.initial, self.now, self.tick())

    def ejected(self) -> int:
        return sum(s.state is H.EJECTED for s in self.servers.values())

    def decayed(self, s: Server, at: float) -> int:
        # Envoy: one less per interval once the ejection is over, whatever the probes say.
        if s.state is H.EJECTED:
            return s.ejections
        steps = math.floor((at - s.decay_from) / OUTLIER_INTERVAL)
        return max(0, s.ejections - max(0, steps))

    def move(self, s: Server, new: HealthState, at: float) -> StateChange:
        old = s.state
        if new is H.EJECTED:
            k = self.decayed(s, at)
            s.ejections = k + 1 if k * BASE < LONGEST + BASE else k  # Envoy's bound
        if old is H.EJECTED:
            assert s.ejected_until is not None
            # Cut short by failed probes, the ejection still counts until its end.
            s.decay_from = at if new is H.HEALTHY else max(at, s.ejected_until[0])
        s.state, s.passive, s.ejected_until = new, 0, None
        if new is H.EJECTED:
            s.ejected_until = (at + min(BASE * s.ejections, LONGEST), self.tick())
        return StateChange(s.name, old, new, at)

    def probe(self, s: Server, ok: bool, at: float) -> StateChange | None:
        if ok:
            s.fails, s.oks = 0, s.oks + 1
            back = (
                s.state is H.UNKNOWN
                or (s.state is H.UNHEALTHY and s.oks >= HEALTHY)
                or (s.state is H.EJECTED and self.uneject)
            )
            return self.move(s, H.HEALTHY, at) if back else None
        s.oks, s.fails = 0, s.fails + 1
        down = s.state is H.UNKNOWN or (s.state is not H.UNHEALTHY and s.fails >= UNHEALTHY)
        return self.move(s, H.UNHEALTHY, at) if down else None

    def traffic(self, s: Server, ok: bool) -> StateChange | None:
        if ok:
            s.passive = 0
            return None
        if s.state is not H.HEALTHY:
            return None
        s.passive += 1
        if s.passive < FAILURES:
            return None
        s.passive = 0  # an attempt spends the streak, refused or not (Envoy's reset)
        n, e = len(self.servers), self.ejected()
        room = PERCENT > 0 and (e == 0 or (e + 1) * 100 <= PERCENT * n)
        return self.move(s, H.EJECTED, self.now) if room else None

    def advance_to(self, t: float) -> None:
        while True:
            events = [(s.timeout_at, 0, s) for s in self.servers.values() if s.timeout_at]
            events += [(s.ejected_until, 1, s) for s in self.servers.values() if s.ejected_until]
            due = [e for e in events if e[0][0] <= t]
            if not due:
                break
            (at, _), kind, s = min(due, key=lambda e: e[0])
            if kind == 0:
                s.timeout_at, s.late = None, True
                change = self.probe(s, False, at)
            else:
                change = self.move(s, H.HEALTHY, at)
            if change:
                self.pending.append(change)
        self.now = t

    def due(self) -> list[str]:
        ready = sorted(
            (s for s in self.servers.values() if s.next_probe[0] <= self.now),
            key=lambda s: s.next_probe,
        )
        for s in ready:
            s.timeout_at, s.late = (self.now + TIMEOUT, self.tick()), False
            s.next_probe = (self.now + INTERVAL, self.tick())
        return [s.name for s in ready]

    def record(self, s: Server, ok: bool) -> StateChange | None:
        if s.timeout_at is None and s.late:
            s.late = False
            return None
        s.timeout_at = None
        return self.probe(s, ok, self.now)

    def next_deadline(self) -> float | None:
        times = [t[0] for s in self.servers.values() for t in (s.next_probe, s.timeout_at,
                 s.ejected_until) if t]  # fmt: skip
        return min(times) if times else None


class HealthMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()

    @initialize(initial=st.sampled_from([H.HEALTHY, H.UNKNOWN]), uneject=st.booleans())
    def start(self, initial: HealthState, uneject: bool) -> None:
        self.model = Model(initial, uneject)
        self.tracker = HealthTracker(
            interval=INTERVAL, timeout=TIMEOUT, unhealthy_threshold=UNHEALTHY,
            healthy_threshold=HEALTHY, initial=initial, consecutive_failures=FAILURES,
            base_ejection=BASE, max_ejection=LONGEST, max_ejected_percent=PERCENT,
            uneject_on_probe=uneject, outlier_interval=OUTLIER_INTERVAL, clock=self.clock,
        )  # fmt: skip
        for name in NAMES[:2]:
            self.add(name)

    @rule(name=st.sampled_from(NAMES))
    def add(self, name: str) -> None:
        if name in self.model.servers:
            return
        self.tracker.add_server(name)
        self.model.add(name)

    @precondition(lambda self: len(self.model.servers) > 1)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.model.servers)))
        self.tracker.remove_server(name)
        del self.model.servers[name]

    @precondition(
        lambda self: (
            len(self.model.servers) > 1
            and any(s.state is H.EJECTED for s in self.model.servers.values())
        )
    )
    @rule()
    def remove_an_ejected_server(self) -> None:
        # Ejections are short-lived: without this rule one is rarely removed.
        name = next(n for n, s in self.model.servers.items() if s.state is H.EJECTED)
        self.tracker.remove_server(name)
        del self.model.servers[name]

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0, 3.0, 5.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.model.advance_to(self.clock())

    @rule()
    def due(self) -> None:
        assert self.tracker.due() == self.model.due()

    @rule(data=st.data(), ok=st.booleans(), passive=st.booleans(), times=st.integers(1, 3))
    def report(self, data: st.DataObject, ok: bool, passive: bool, times: int) -> None:
        # Runs of the same result, so that streaks complete often.
        name = data.draw(st.sampled_from(sorted(self.model.servers)))
        s = self.model.servers[name]
        for _ in range(times):
            if passive:
                assert self.tracker.observe(name, ok) == self.model.traffic(s, ok)
            else:
                assert self.tracker.record(name, ok) == self.model.record(s, ok)

    @precondition(lambda self: any(s.state is H.HEALTHY for s in self.model.servers.values()))
    @rule(data=st.data())
    def fail_a_streak(self, data: st.DataObject) -> None:
        # A whole passive streak at once, so that ejections, refusals and the
        # multiplier's growth and decay come up often.
        healthy = sorted(n for n, s in self.model.servers.items() if s.state is H.HEALTHY)
        name = data.draw(st.sampled_from(healthy))
        s = self.model.servers[name]
        for _ in range(FAILURES):
            assert self.tracker.observe(name, False) == self.model.traffic(s, False)

    @rule()
    def poll(self) -> None:
        expected, self.model.pending = self.model.pending, []
        assert self.tracker.poll() == expected

    @invariant()
    def agrees_with_the_model(self) -> None:
        self.tracker._check()
        assert self.tracker.servers == tuple(self.model.servers)
        for name, s in self.model.servers.items():
            assert self.tracker.state(name) is s.state, name
            assert self.tracker.ejection_count(name) == self.model.decayed(s, self.clock()), name
        assert self.tracker.next_deadline() == self.model.next_deadline()


HealthMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=50)
test_health_machine = HealthMachine.TestCase
