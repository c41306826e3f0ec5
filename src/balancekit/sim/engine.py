"""A deterministic discrete-event simulator that drives a real Pool over a ManualClock.

What is simulated is the library itself: every request is a real
``pool.acquire(key)`` on a real strategy, released with its outcome when the
simulated server finishes it; health probes, passive ejection, panic mode,
slow start, drains and ``max_in_flight`` are the real :class:`~balancekit.pool.Pool`
machinery. Only the servers and the clients are modelled: each server has
``capacity`` slots and a FIFO queue, so a request's latency is its queueing
time plus its service time (``service / speed``, times the cache
``miss_factor`` on a miss). A down server fails what it holds at once, fails
new requests after ``error_time`` and fails its probes. A client tries a
failed request again at once, up to the scenario's ``attempts``, on a server
it has not tried (``exclude=``), while its :class:`~balancekit.retry.RetryBudget`
allows: one deposit per request, one withdrawal per retry.

Events are kept in a heap of ``(time, seq, kind, payload)``; ``seq`` breaks
ties in the order the events were scheduled, so a run is a pure function of
the scenario, its seed and the strategy. Randomness comes from separate
:class:`random.Random` streams per concern (arrivals, keys, service times,
the strategy, health-check jitter), each seeded from the scenario seed, so
every strategy sees exactly the same requests. The request stream is drawn in
:mod:`balancekit.sim.draws`; strategies are found by name in :mod:`balancekit.strategies.registry`.
"""

from __future__ import annotations

import gc
import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from .. import quality
from ..clock import Clock, ManualClock, monotonic
from ..errors import AllServersBusy, NoServerAvailable
from ..health import HealthTracker
from ..lease import Lease
from ..pool import Pool
from ..retry import RetryBudget
from ..strategies.base import Balancer
from ..strategies.registry import Strategy, instantiate, resolve, strategy_names
from . import draws
from ._reports import LoadReports
from .results import ServerResult, SimulationResult, Transition
from .scenario import Scenario, ServerSpec

__all__ = ["TICK_EVERY", "Ticker", "compare", "render_key", "simulate"]

TICK_EVERY = 4096
"""A simulation reports its progress to a ``ticker`` once per this many arrivals."""

Ticker = Callable[[str, int], None]
"""``ticker(strategy name, requests arrived so far)``: progress within one run."""

SHARED_STREAM = 100_000
"""``compare`` draws the request stream once for all strategies when a scenario
plans at most this many requests (about 15 MB of draws); beyond, each run draws
its own."""

KEY_SAMPLE = 2000
"""How many distinct keys the keys-moved figure is measured on."""

_Draw = tuple[float, int | None, float]  # a request: arrival, key number or None, service

_DONE, _ERROR, _FAIL, _RECOVER, _DRAIN, _TICK, _BEFORE, _AFTER, _RETRY = range(9)
_OVERDUE_STEP = 0.001  # a deadline already passed is retried this much later, never in a loop


def render_key(index: int) -> str:
    """Key number ``index`` as the client IPv4 address every hash strategy accepts. O(1).

    >>> render_key(0), render_key(70000)
    ('10.0.0.0', '10.1.17.112')
    """
    return f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"


class _EventClock(ManualClock):
    """The run's clock: a :class:`ManualClock` that the event loop moves itself."""

    __slots__ = ()


class _Server:
    __slots__ = (
        "capacity",
        "errors",
        "generation",
        "latency",
        "name",
        "queue",
        "requests",
        "serving",
        "speed",
        "up",
    )

    def __init__(self, spec: ServerSpec) -> None:
        self.name = spec.name
        self.capacity = spec.capacity
        self.speed = spec.speed
        self.up = True
        self.generation = 0  # bumped by a failure: its cache is gone
        # In service (at most capacity, by arrival), then queued (a request waits
        # only while every slot is taken, so the queue's all came later).
        self.serving: dict[int, _Request] = {}
        self.queue: deque[_Request] = deque()
        self.requests = 0
        self.errors = 0
        self.latency = 0.0

    def __repr__(self) -> str:
        busy, queued = len(self.serving), len(self.queue)
        return f"<server {self.name} up={self.up} busy={busy} queued={queued}>"


class _Call(NamedTuple):
    """A client's request across its tries: when it arrived, its key (number and name),
    its service time at speed 1 before any cache miss, and the servers it tried."""

    arrival: float
    key: int | None
    name: str
    base: float
    tried: tuple[str, ...]


class _Request:
    """One try of a request on one server; ``call`` is what a retry needs (``None``
    when the scenario never retries), ``arrival`` the first try's time."""

    __slots__ = ("arrival", "call", "done", "lease", "seq", "server", "service")

    def __init__(
        self, seq: int, arrival: float, service: float, lease: Lease, server: _Server
    ) -> None:
        self.seq = seq
        self.arrival = arrival
        self.call: _Call | None = None
        self.service = service
        self.lease = lease
        self.server = server
        self.done = False

    def __repr__(self) -> str:
        return f"<request {self.seq} at {self.arrival} on {self.server.name} done={self.done}>"


class _Run:
    """One strategy over one scenario: the event loop and its bookkeeping."""

    def __init__(
        self,
        scenario: Scenario,
        name: str,
        cls: type[Balancer],
        ticker: Ticker | None = None,
        stream: list[_Draw] | None = None,
    ) -> None:
        self.scenario = scenario
        self.ticker = ticker
        self.stream = stream  # the request stream, if already drawn (compare shares it)
        self.clock = _EventClock()
        self.seed = scenario.seed
        weights = {spec.name: spec.weight for spec in scenario.servers}
        balancer = instantiate(cls, weights, clock=self.clock, rng=self._rng("strategy"))
        health = None
        if scenario.health.enabled:
            health = HealthTracker(
                **scenario.health.options(), clock=self.clock, rng=self._rng("health")
            )
        self.pool = Pool(
            balancer,
            health=health,
            slow_start=scenario.slow_start,
            panic_threshold=scenario.panic_threshold,
            max_in_flight=scenario.max_in_flight,
            clock=self.clock,
        )
        self.attempts = scenario.attempts
        self.budget = None
        if self.attempts > 1 and scenario.retry_budget.enabled:
            self.budget = RetryBudget(**scenario.retry_budget.options(), clock=self.clock)
        self.name = name
        self.hashing = balancer.requires_key
        self.reports = LoadReports.of(balancer)  # servers report their load to it
        self.servers = {spec.name: _Server(spec) for spec in scenario.servers}
        self.heap: list[tuple[float, int, int, Any]] = []
        self.seq = 0
        self.tick_at = math.inf
        self.open = 0
        self.arrivals_done = False
        self.latencies: list[float] = []
        self.errors = self.rejected = self.hits = self.lookups = self.arrived = 0
        self.sent = self.retries = self.refused = self.overflows = 0
        self.last = 0.0
        self.cached: dict[int, tuple[_Server, int]] = {}
        self.rendered: dict[int, str] = {}
        self.error_time: dict[str, float] = {}
        self.transitions: list[Transition] = []
        self.before: dict[str, str] = {}
        self.moved: float | None = None

    def _rng(self, concern: str) -> random.Random:
        # A string seed is hashed with SHA-512 by random.Random: stable across processes.
        return random.Random(f"balancekit:{self.seed}:{concern}")

    def push(self, at: float, kind: int, payload: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, payload))

    # -- the loop ---------------------------------------------------------------

    def run(self) -> SimulationResult:
        # The run makes no reference cycles: everything it allocates is freed by
        # reference counting. Left on, the cyclic collector would walk every
        # live request, lease and event again and again as queues grow, so the
        # CPU per request would grow with the length of the run; it is paused
        # for the run (as it was found: re-enabled only if it was on).
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._loop()
        finally:
            if enabled:
                gc.enable()

    def _loop(self) -> SimulationResult:
        # The next arrival waits outside the heap (one push and pop fewer per
        # request) but keeps the sequence number it would have had there, so
        # ties between events at one instant break exactly as in one heap.
        self._schedule_scenario_events()
        stream = self.stream
        requests = draws.requests(self.scenario) if stream is None else iter(stream)
        item = next(requests, None)
        self.seq += 1
        due, order = (math.inf, 0) if item is None else (item[0], self.seq)
        self.arrivals_done = item is None
        self._reschedule(0.0, ticked=False)
        heap, clock, pop = self.heap, self.clock, heapq.heappop
        while heap or item is not None:
            if item is not None and (
                not heap or due < heap[0][0] or (due == heap[0][0] and order < heap[0][1])
            ):
                # Events are handled in time order, so the clock moves by assignment
                # (ManualClock.set's checks could never fail here).
                clock._now = due
                self._arrive(due, item)
                item = next(requests, None)
                self.seq += 1
                if item is None:
                    self.arrivals_done = True
                else:
                    due, order = item[0], self.seq
                continue  # an acquire moves no deadline earlier
            at, _, kind, payload = pop(heap)
            clock._now = at  # an event skipped below reads nothing
            if kind == _DONE:
                if not payload.done:
                    self._finish(payload, True, at)
                continue  # a success moves no deadline earlier
            if kind == _ERROR:
                if payload.done:
                    continue
                self._finish(payload, False, at)
            elif kind == _RETRY:
                self.open -= 1
                self._send(at, *payload)
                continue
            elif kind == _TICK:
                self.tick_at = math.inf
                if self.open == 0 and self.arrivals_done:
                    continue  # nothing left to serve: let the heap run dry
                self._tick()
            else:
                self._scenario_event(kind, payload)
            self._reschedule(at, ticked=kind == _TICK)
        return self._result()

    def _reschedule(self, now: float, *, ticked: bool) -> None:
        """Make sure a tick is pending at the pool's next deadline."""
        deadline = self.pool.next_deadline()
        if deadline is None:
            return
        if deadline < now or (ticked and deadline == now):
            # Past, or still due right after a tick at this instant: never loop on one time.
            deadline = now + _OVERDUE_STEP if ticked else now
        if deadline < self.tick_at:
            self.tick_at = deadline
            self.push(deadline, _TICK)

    def _tick(self) -> None:
        pool, servers = self.pool, self.servers
        for server in pool.due_checks():
            self._note(pool.record_check(server, servers[server].up))
        for change in pool.poll():
            self._note(change)
            if change.in_flight:  # a drain deadline: cut what is still open there
                self._fail_all(servers[change.server], change.at)

    def _note(self, change: Any) -> None:
        if change is not None:
            self.transitions.append(
                Transition(change.at, change.server, change.old.value, change.new.value)
            )

    # -- requests ---------------------------------------------------------------

    def _arrive(self, now: float, item: tuple[float, int | None, float]) -> None:
        _, key, service = item
        seq = self.arrived
        self.arrived += 1
        if self.ticker is not None and self.arrived % TICK_EVERY == 0:
            self.ticker(self.name, self.arrived)
        if key is None:
            name = render_key(seq)  # a new client every time: nothing to reuse
        else:
            name = self.rendered.get(key) or self.rendered.setdefault(key, render_key(key))
        if self.budget is not None:
            self.budget.deposit()
        self._send(now, now, key, name, service, ())

    def _send(
        self,
        now: float,
        arrival: float,
        key: int | None,
        name: str,
        service: float,
        tried: tuple[str, ...],
    ) -> None:
        """One try of a request: acquire a server outside those ``tried``, serve or fail."""
        try:
            lease = self.pool.acquire(name, exclude=tried) if tried else self.pool.acquire(name)
        except NoServerAvailable as error:
            # Not retried: an overflow means every eligible server is full, and a retry
            # now would find them full too (Envoy does not retry its overflows either).
            self.overflows += isinstance(error, AllServersBusy)
            self.rejected += 1
            self.errors += 1
            return
        seq = self.sent
        self.sent += 1
        server = self.servers[lease.server]
        server.requests += 1
        self.open += 1
        if not server.up:
            request = _Request(seq, arrival, 0.0, lease, server)
            if self.attempts > 1:
                request.call = _Call(arrival, key, name, service, tried)
            self.push(now + self.error_time[server.name], _ERROR, request)
            return
        base = service
        cache = self.scenario.cache
        if cache is not None and key is not None:
            self.lookups += 1
            mark = (server, server.generation)
            if self.cached.get(key) == mark:
                self.hits += 1
            else:
                service *= cache.miss_factor
                self.cached[key] = mark
        request = _Request(seq, arrival, service / server.speed, lease, server)
        if self.attempts > 1:  # only a request that may retry needs to remember how
            request.call = _Call(arrival, key, name, base, tried)
        if len(server.serving) < server.capacity:
            server.serving[seq] = request
            self.seq += 1  # self.push, written out: once per request
            heapq.heappush(self.heap, (now + request.service, self.seq, _DONE, request))
        else:
            server.queue.append(request)

    def _finish(self, request: _Request, ok: bool, now: float) -> None:
        request.done = True
        request.lease.release(ok)
        self.open -= 1
        self.last = now
        server = request.server
        if self.reports is not None:
            held = len(server.serving) + len(server.queue)  # this request included
            self.reports.finished(server.name, ok, now, held, server.capacity)
        if server.serving.pop(request.seq, None) is not None and ok and server.queue:
            following = server.queue.popleft()  # the freed slot goes to the head of the queue
            server.serving[following.seq] = following
            self.seq += 1
            heapq.heappush(self.heap, (now + following.service, self.seq, _DONE, following))
        if ok:
            latency = now - request.arrival
            self.latencies.append(latency)
            server.latency += latency
        else:
            server.errors += 1
            self._failed(request.call, server.name, now)

    def _failed(self, call: _Call | None, server: str, now: float) -> None:
        """A try of ``call`` failed on ``server``: retry elsewhere, or fail the request."""
        if call is not None and len(call.tried) + 1 < self.attempts:
            if self.budget is None or self.budget.try_withdraw():
                self.retries += 1
                self.open += 1  # pending: probes and timers go on until it is sent
                # An event, not a call: a failure can come from a loop over a server's requests.
                self.push(now, _RETRY, call._replace(tried=(*call.tried, server)))
                return
            self.refused += 1
        self.errors += 1

    def _fail_all(self, server: _Server, now: float) -> None:
        # In arrival order; each request still counts in what the server holds
        # while it is failed (what the load reports see).
        for request in list(server.serving.values()):
            self._finish(request, False, now)
        queue = server.queue
        while queue:
            self._finish(queue[0], False, now)
            queue.popleft()

    # -- failures, drains, keys moved -------------------------------------------

    def _schedule_scenario_events(self) -> None:
        scenario = self.scenario
        events = sorted(
            [(f.at, 0, f) for f in scenario.failures] + [(d.at, 1, d) for d in scenario.drains],
            key=lambda item: (item[0], item[1]),
        )
        first = events[0][2] if events and self.hashing else None
        if first is not None:
            self.push(first.at, _BEFORE)
            if hasattr(first, "until"):
                self.push(first.until, _AFTER)  # before that failure's own recovery
        for failure in scenario.failures:
            self.push(failure.at, _FAIL, failure)
            self.push(failure.until, _RECOVER, failure)
        for drain in scenario.drains:
            self.push(drain.at, _DRAIN, drain)
        if first is not None and not hasattr(first, "until"):
            self.push(first.at, _AFTER)  # right after the drain

    def _scenario_event(self, kind: int, payload: Any) -> None:
        now = self.clock()
        if kind == _FAIL:
            server = self.servers[payload.server]
            server.up = False
            server.generation += 1
            self.error_time[server.name] = payload.error_time
            self._fail_all(server, now)
        elif kind == _RECOVER:
            self.servers[payload.server].up = True
        elif kind == _DRAIN:
            change = self.pool.drain(payload.server, payload.timeout)
            self._note(change)
        else:
            self._tick()  # health and drains up to date before reading placement
            mapping = self._placement()
            if kind == _BEFORE:
                self.before = mapping
            else:
                self.moved = quality.remapped_fraction(self.before, mapping)

    def _placement(self) -> dict[str, str]:
        strategy = self.pool.strategy
        found: dict[str, str] = {}
        for index in range(_sample_size(self.scenario)):
            key = render_key(index)
            try:
                found[key] = strategy.get_server(key)
            except NoServerAvailable:
                found[key] = ""  # nowhere: counts as moved if it had a server
        return found

    # -- results ----------------------------------------------------------------

    def _result(self) -> SimulationResult:
        scenario = self.scenario
        ordered = sorted(self.latencies)
        completed = len(ordered)
        servers = tuple(
            ServerResult(
                s.name,
                s.requests,
                s.errors,
                s.latency / (s.requests - s.errors) if s.requests > s.errors else 0.0,
            )
            for s in self.servers.values()
        )
        counts = {s.name: s.requests for s in servers}
        weights = {spec.name: spec.weight for spec in scenario.servers}
        spread = quality.peak_to_mean(counts, weights) if self.arrived > self.rejected else 0.0
        return SimulationResult(
            strategy=self.name,
            scenario=scenario.name,
            seed=scenario.seed,
            requests=self.arrived,
            completed=completed,
            errors=self.errors,
            rejected=self.rejected,
            elapsed=self.last,
            throughput=completed / self.last if self.last > 0 else 0.0,
            latency_mean=sum(ordered) / completed if completed else 0.0,
            latency_p50=_percentile(ordered, 50),
            latency_p95=_percentile(ordered, 95),
            latency_p99=_percentile(ordered, 99),
            latency_max=ordered[-1] if ordered else 0.0,
            peak_to_mean=spread,
            cache_hit_ratio=self.hits / self.lookups if self.lookups else None,
            keys_moved=self.moved,
            servers=servers,
            transitions=tuple(self.transitions),
            retries=self.retries,
            retries_refused=self.refused,
            overflows=self.overflows,
        )


def _percentile(ordered: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _sample_size(scenario: Scenario) -> int:
    if scenario.keys.distribution != "none":
        return min(scenario.keys.universe, KEY_SAMPLE)
    return KEY_SAMPLE


def _planned(scenario: Scenario) -> float:
    """About how many requests ``scenario`` makes (``inf`` if unbounded here). O(1)."""
    if scenario.requests is not None:
        return scenario.requests
    if scenario.trace is not None:
        return len(scenario.trace)
    if scenario.rate is not None and scenario.duration is not None:
        return scenario.rate * scenario.duration
    return math.inf


# -- public entry points -------------------------------------------------------


def simulate(
    scenario: Scenario, strategy: Strategy, *, ticker: Ticker | None = None
) -> SimulationResult:
    """Run ``scenario`` with one strategy: a name, or a Balancer subclass of your own.

    Deterministic: the same scenario (seed included) gives an equal result.
    A class is built as ``cls(weights, rng=..., clock=...)``, passing ``rng``
    and ``clock`` only if its constructor takes them; its result is named by
    the kebab-case class name. ``ticker(name, requests)``, if given, is
    called every ``TICK_EVERY`` arrivals, for a progress display.

    >>> from balancekit.sim.scenario import Scenario, ServerSpec, ServiceSpec
    >>> s = Scenario((ServerSpec("a"), ServerSpec("b")), rate=5.0, requests=100,
    ...              service=ServiceSpec("fixed", mean=0.1))
    >>> r = simulate(s, "round-robin")
    >>> r.completed, [x.requests for x in r.servers], round(r.latency_p50, 9)
    (100, [50, 50], 0.1)

    Complexity: O(R log R) for R requests, plus the pool's work per request.

    Raises:
        UnknownStrategy: (a ``KeyError``) ``strategy`` is not a known name.
        TypeError: ``strategy`` is neither a name nor a Balancer subclass.
    """
    name, cls = resolve(strategy, strategy_names())
    return _Run(scenario, name, cls, ticker).run()


Streams = dict[Scenario, list[tuple[float, int | None, float]]]
"""Request streams already drawn, by scenario: a cache that :func:`simulate_sharing` fills."""


def simulate_sharing(
    scenario: Scenario, strategy: Strategy, streams: Streams, *, ticker: Ticker | None = None
) -> SimulationResult:
    """:func:`simulate`, taking the request stream from ``streams`` or drawing it there.

    Runs of several strategies on one scenario see the same requests, so a
    caller that runs them (the multi-seed compare, one cache per process)
    draws each stream once. A stream is kept only while the streams held
    plan at most :data:`SHARED_STREAM` requests in all; beyond, the run draws
    its own, as :func:`simulate` does. The result is the same either way.
    """
    name, cls = resolve(strategy, strategy_names())
    shared = streams.get(scenario)
    if shared is None:
        planned = _planned(scenario) + sum(len(stream) for stream in streams.values())
        if planned <= SHARED_STREAM:
            shared = streams[scenario] = list(draws.requests(scenario))
    return _Run(scenario, name, cls, ticker, shared).run()


def compare(
    scenario: Scenario,
    strategies: Iterable[Strategy] | None = None,
    *,
    progress: Callable[[SimulationResult, float], None] | None = None,
    ticker: Ticker | None = None,
    clock: Clock = monotonic,
) -> list[SimulationResult]:
    """Run ``scenario`` with each strategy (default: every one) and return the results in order.

    ``progress(result, seconds)`` is called after each run with the time
    spent so far on ``clock`` (wall time by default), and ``ticker`` within
    each run as in :func:`simulate`, for a progress display; the results
    never depend on either.

    Complexity: the sum of the :func:`simulate` runs.

    Raises:
        UnknownStrategy: (a ``KeyError``) an unknown name, before anything runs.
        TypeError: an item is neither a name nor a Balancer subclass.
    """
    known = strategy_names()
    chosen = [resolve(item, known) for item in (known if strategies is None else strategies)]
    # Every strategy sees the same requests: draw them once (when they fit in
    # memory easily) instead of once per strategy.
    shared = None
    if len(chosen) > 1 and _planned(scenario) <= SHARED_STREAM:
        shared = list(draws.requests(scenario))
    results: list[SimulationResult] = []
    started = clock()
    for name, cls in chosen:
        results.append(_Run(scenario, name, cls, ticker, shared).run())
        if progress is not None:
            progress(results[-1], clock() - started)
    return results
