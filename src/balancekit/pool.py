"""Pool: one strategy plus health checks, draining, stickiness, slow start and panic mode.

The Pool is the recommended entry point. It owns no algorithm of its own: it
keeps every member in the strategy and steers it through weights. A server
that is unhealthy or draining gets effective weight 0 (a member that receives
nothing, so its open leases and learned state survive), a server that joins or
recovers ramps up over ``slow_start`` seconds, and when too few servers are
healthy the Pool stops trusting health (panic mode) and uses them all::

    eligible  = healthy and active                (health x administration)
    effective = weight x ramp(time since eligible)   if eligible
              = weight                               if panic and active
              = 0                                    otherwise

Effective weights are recomputed only when something changes (a state change,
a membership or weight change, a ramp step), never per request; a ramp moves
in at most ``RAMP_STEPS`` steps so that hash strategies rebuild rarely.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .clock import Clock, monotonic
from .drain import Drainer, DrainState
from .errors import DuplicateServer, UnknownServer
from .events import StateChange
from .health import HealthState, HealthTracker
from .lease import Lease
from .slow_start import RAMP_STEPS, SlowStart
from .sticky import StickySession
from .strategies.base import Balancer, check_server, check_weight
from .validate import check_positive, check_range

__all__ = ["RAMP_STEPS", "Pool", "ServerStats"]


@dataclass(frozen=True, slots=True)
class ServerStats:
    """One server's RED metrics and state, as :meth:`Pool.stats` reports them.

    ``requests`` and ``errors`` count released leases; latencies are seconds
    from acquire to release (``0.0`` before the first release).
    """

    server: str
    weight: float
    effective_weight: float
    health: HealthState | None
    drain: DrainState
    in_flight: int
    requests: int
    errors: int
    latency_mean: float
    latency_max: float


class _Record:
    """The Pool's per-server bookkeeping (one per membership: a re-added server is new)."""

    __slots__ = (
        "effective",
        "errors",
        "in_flight",
        "latency_max",
        "latency_sum",
        "requests",
        "since",
        "weight",
    )

    def __init__(self, weight: float, effective: float, since: float) -> None:
        self.weight = weight  # as configured by the user
        self.effective = effective  # as last given to the strategy
        self.since = since  # when it last became eligible: the start of its ramp
        self.in_flight = 0
        self.requests = 0
        self.errors = 0
        self.latency_sum = 0.0
        self.latency_max = 0.0


class Pool:
    """A strategy with health checks, draining, stickiness, slow start and panic mode.

    >>> from balancekit import ManualClock, RoundRobin
    >>> clock = ManualClock()
    >>> pool = Pool(RoundRobin(["a", "b"]), clock=clock)
    >>> with pool.acquire() as lease:
    ...     clock.advance(0.05)
    ...     lease.server
    0.05
    'a'
    >>> pool.drain("b").new
    <DrainState.DRAINED: 'drained'>
    >>> {pool.acquire().server for _ in range(4)}
    {'a'}
    >>> pool.stats()["a"].requests
    1

    Args:
        strategy: any :class:`~balancekit.strategies.base.Balancer`; its
            servers are the pool's initial members.
        health: a :class:`~balancekit.health.HealthTracker`, or ``None`` for
            no health checking (every member counts as healthy).
        drainer: a :class:`~balancekit.drain.Drainer`; one with default options
            is made when ``None``.
        sticky: a :class:`~balancekit.sticky.StickySession` for cookie affinity.
        slow_start: seconds over which a joining or recovering server ramps up
            (0 disables). Weighted strategies only: plain ``RoundRobin``
            ignores weights, so it cannot ramp.
        slow_start_aggression: Envoy's aggression; 1 ramps linearly, larger
            values ramp faster at first.
        slow_start_min_weight_percent: the ramp starts at least this share of
            the weight (Envoy's default 10).
        panic_threshold: when the healthy share of active servers is strictly
            below this (0..1), route to all active servers regardless of health.
        clock: shared by every component; when ``None``, the first component's
            explicit clock, else :func:`time.monotonic`.

    Complexity: ``acquire`` and release cost the strategy's pick plus O(1),
    except at a state change or ramp step, which costs O(n) plus the weight
    updates the strategy performs. Thread-safe.

    Raises:
        ValueError, TypeError: a bad option, or components with different clocks.
    """

    def __init__(
        self,
        strategy: Balancer,
        *,
        health: HealthTracker | None = None,
        drainer: Drainer | None = None,
        sticky: StickySession | None = None,
        slow_start: float = 0.0,
        slow_start_aggression: float = 1.0,
        slow_start_min_weight_percent: float = 10.0,
        panic_threshold: float = 0.5,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(strategy, Balancer):
            raise TypeError(f"strategy must be a Balancer, got {strategy!r}")
        window = check_range("slow_start", slow_start, 0.0)
        aggression = check_positive("slow_start_aggression", slow_start_aggression)
        min_percent = check_range(
            "slow_start_min_weight_percent", slow_start_min_weight_percent, 0.0, 100.0
        )
        self._ramp = SlowStart(window, aggression, min_percent)
        self._panic_threshold = check_range("panic_threshold", panic_threshold, 0.0, 1.0)
        components: list[Any] = [strategy, health, drainer, sticky]
        if clock is None:
            explicit = [c._clock for c in components if c is not None and c._clock_explicit]
            clock = explicit[0] if explicit else monotonic
        for component in components:
            if component is not None:
                component._adopt_clock(clock)
        self._clock = clock
        self._strategy = strategy
        self._health = health
        self._drainer = drainer if drainer is not None else Drainer(clock=clock)
        self._sticky = sticky
        self._lock = threading.Lock()
        self._changes: list[StateChange] = []
        self._panic = False
        self._wake = -math.inf
        self._ramp_wake = math.inf
        self._stale = False  # a refresh failed half-way: the next call redoes it
        self._records: dict[str, _Record] = {}
        for server, weight in strategy.servers.items():
            self._register(server)
            # Initial members are the baseline: they do not ramp.
            self._records[server] = _Record(weight, weight, -math.inf)
        with self._lock:
            self._refresh(clock())

    # -- membership -------------------------------------------------------------

    def add_server(self, server: str, weight: float = 1) -> None:
        """Add a server to the strategy and every component; it ramps up if slow start is on.

        Raises:
            DuplicateServer: it is already a member. TypeError, ValueError: a
            bad id or weight. Nothing changes in either case.
        """
        check_server(server)
        value = check_weight(weight)
        with self._lock:
            if server in self._records:
                raise DuplicateServer(server)
            self._strategy._admit({**self._configured(), server: value})
            now = self._clock()
            self._strategy.add_server(server, 0)
            try:
                joined = self._register(server)
            except BaseException:
                self._strategy.remove_server(server)
                raise
            self._records[server] = _Record(value, 0.0, now)
            try:
                self._refresh(now)
            except BaseException:
                # A strategy whose _admit did not foresee the refusal: undo the
                # join everywhere, then re-push the weights it had accepted.
                del self._records[server]
                self._strategy.remove_server(server)
                for component in joined:
                    component.remove_server(server)
                self._refresh(now)
                raise

    def remove_server(self, server: str) -> None:
        """Remove a server everywhere; its open leases may still be released.

        Raises:
            UnknownServer: it is not a member.
        """
        with self._lock:
            if self._records.pop(server, None) is None:
                raise UnknownServer(server)
            self._strategy.remove_server(server)
            for component in (self._health, self._drainer, self._sticky):
                if component is not None and server in component:
                    component.remove_server(server)
            self._refresh(self._clock())

    def set_weight(self, server: str, weight: float) -> None:
        """Change a server's configured weight (the Pool derives the effective one).

        Raises:
            UnknownServer: it is not a member. TypeError, ValueError: a bad weight.
        """
        value = check_weight(weight)
        with self._lock:
            record = self._records.get(server)
            if record is None:
                raise UnknownServer(server)
            self._strategy._admit({**self._configured(), server: value})
            old, record.weight = record.weight, value
            now = self._clock()
            try:
                self._refresh(now)
            except BaseException:
                record.weight = old  # refused after all (see add_server): keep the old one
                self._refresh(now)
                raise

    def _configured(self) -> dict[str, float]:
        return {server: record.weight for server, record in self._records.items()}

    def _register(self, server: str) -> list[Any]:
        """Add ``server`` to every component lacking it; returns those it was added to."""
        done: list[Any] = []
        try:
            for component in (self._health, self._drainer, self._sticky):
                if component is not None and server not in component:
                    component.add_server(server)
                    done.append(component)
        except BaseException:
            for component in done:
                component.remove_server(server)
            raise
        return done

    @property
    def servers(self) -> Mapping[str, float]:
        """A snapshot of the configured weights ``{server: weight}``. O(n)."""
        with self._lock:
            return {server: record.weight for server, record in self._records.items()}

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, server: object) -> bool:
        return server in self._records

    # -- requests ---------------------------------------------------------------

    def acquire(
        self,
        key: Any = None,
        *,
        cookie: str | bytes | None = None,
        session: str | None = None,
    ) -> Lease:
        """Choose an eligible server and count one request on it until the lease is released.

        With a ``StickySession``, a valid ``cookie`` (or the route of an
        application ``session`` id) naming a server that may still take its
        clients pins the request there; otherwise the strategy chooses and the
        session is bound to the new server. ``lease.cookie`` is the value to
        send back; ``lease.moved`` is true when the request asked for a server
        that could not be honoured (gone, unhealthy or drained, or an invalid
        cookie). Without a ``StickySession`` a cookie is ignored.

        Raises:
            NoServerAvailable: no eligible server (not even in panic mode).
            TypeError: a hash strategy got no key.
            ValueError: ``session`` given to a pool without a ``StickySession``;
                or a strategy of your own refused a weight it did not refuse
                in ``_admit`` (each call retries until it accepts).
        """
        sticky = self._sticky
        if session is not None and sticky is None:
            raise ValueError("session affinity needs a Pool created with sticky=StickySession(...)")
        now = self._clock()
        with self._lock:
            if now >= self._wake:
                self._advance(now)
            lease = None
            named = None
            if sticky is not None:
                if cookie is not None:
                    named = sticky.server_from_cookie(cookie)
                elif session is not None:
                    named = sticky.route(session)
                if named is not None and self._keeps_sticky(named):
                    lease = self._strategy._open(self, key, named)
            if lease is None:
                lease = self._strategy._open(self, key, None)
                lease.moved = sticky is not None and (cookie is not None or named is not None)
            record = self._records[lease.server]
            lease.context = record
            record.in_flight += 1
            self._drainer.opened(lease.server)
            if sticky is not None:
                # Always the current cookie (cached unless it expires): one signed
                # with a retired secret is re-signed with the first, so rotation works.
                lease.cookie = sticky.cookie_for(lease.server)
                if session is not None:
                    sticky.bind(session, lease.server)
            return lease

    def _keeps_sticky(self, server: str) -> bool:
        record = self._records.get(server)
        if record is None:
            return False
        healthy = self._panic or self._health is None or self._health.is_healthy(server)
        return healthy and self._drainer.accepts_sticky(server)

    def _release(self, lease: Lease, ok: bool | None) -> bool:
        if not self._strategy._release(lease, ok):
            return False
        server = lease.server
        with self._lock:
            record = lease.context
            if not isinstance(record, _Record) or self._records.get(server) is not record:
                return True  # the server left the pool: nothing of it to account
            latency = lease.latency or 0.0
            record.in_flight -= 1
            record.requests += 1
            record.errors += ok is False  # None: abandoned, neither outcome
            record.latency_sum += latency
            record.latency_max = max(record.latency_max, latency)
            changed = False
            change = self._drainer.closed(server)
            if change is not None:
                self._changes.append(change)
                changed = True
            if self._health is not None and ok is not None:
                change = self._health.observe(server, ok)
                if change is not None:
                    self._note(change)
                    self._changes.append(change)
                    changed = True
            if changed:
                self._refresh(lease.started + latency)
        return True

    # -- health, draining, events ----------------------------------------------

    def due_checks(self) -> list[str]:
        """Servers whose active health probe should start now (none without a tracker)."""
        if self._health is None:
            return []
        with self._lock:
            due = self._health.due()
            self._wake = -math.inf  # a started probe brings a timeout deadline
            return due

    def record_check(self, server: str, ok: bool) -> StateChange | None:
        """Report an active probe's result; returns the health change it caused, if any.

        Raises:
            ValueError: the pool has no HealthTracker. UnknownServer: not a member.
        """
        if self._health is None:
            raise ValueError("record_check needs a Pool created with health=HealthTracker(...)")
        with self._lock:
            change = self._health.record(server, ok)
            if change is not None:
                self._note(change)
                self._refresh(change.at)
            self._wake = -math.inf
            return change

    def drain(self, server: str, timeout: float | None = None) -> StateChange:
        """Stop sending new work to ``server``; see :meth:`Drainer.drain`."""
        with self._lock:
            change = self._drainer.drain(server, timeout)
            self._refresh(change.at)
            return change

    def cancel_drain(self, server: str) -> StateChange:
        """Return a draining or drained server to service; see :meth:`Drainer.cancel`."""
        with self._lock:
            change = self._drainer.cancel(server)
            self._refresh(change.at)
            return change

    def poll(self) -> list[StateChange]:
        """Changes since the last poll: lease releases, probe timeouts, ejections ending,
        drain deadlines. Changes already returned by a call are not repeated."""
        with self._lock:
            self._advance(self._clock())
            changes, self._changes = self._changes, []
            return changes

    def next_deadline(self) -> float | None:
        """The clock time at which a probe is due or something may change, or ``None``."""
        with self._lock:
            times = [self._ramp_wake, *self._deadlines(probes=True)]
            soonest = min(times)
            return None if soonest == math.inf else soonest

    def _deadlines(self, *, probes: bool) -> list[float]:
        found = [self._drainer.next_deadline()]
        if self._health is not None:
            health = self._health
            found.append(health.next_deadline() if probes else health.next_change())
        return [math.inf if t is None else t for t in found]

    def _catch_up(self) -> None:
        """Apply what the clock has brought since the last call (the lock is held)."""
        now = self._clock()
        if now >= self._wake:
            self._advance(now)

    def _advance(self, now: float) -> None:
        changed = False
        if self._health is not None:
            for change in self._health.poll():
                self._note(change)
                self._changes.append(change)
                changed = True
        drained = self._drainer.poll()
        self._changes.extend(drained)
        if changed or drained or self._stale or now >= self._ramp_wake:
            self._refresh(now)
        # Due probes are the caller's business (due_checks); only state changes wake us.
        self._wake = min([self._ramp_wake, *self._deadlines(probes=False)])

    def _note(self, change: StateChange) -> None:
        record = self._records.get(change.server)
        if record is not None and change.new is HealthState.HEALTHY:
            record.since = change.at  # a recovered server ramps up like a new one

    # -- weights ----------------------------------------------------------------

    def _refresh(self, now: float) -> None:
        """Recompute every effective weight and push the changed ones to the strategy.

        If the strategy refuses one (a strategy whose ``_admit`` does not
        foresee it), every other weight is still pushed (so ejections and
        drains always apply), the first refusal is raised, and the next call
        tries again rather than leaving the pool stale.
        """
        refused: ValueError | None = None
        self._stale = True
        self._wake = -math.inf
        health, drainer = self._health, self._drainer
        active = [s for s in self._records if drainer.is_active(s)]
        healthy = [s for s in active if health is None or health.is_healthy(s)]
        self._panic = bool(active) and len(healthy) < self._panic_threshold * len(active)
        eligible = set(active if self._panic else healthy)
        self._ramp_wake = math.inf
        for server, record in self._records.items():
            weight = 0.0
            if server in eligible:
                weight = record.weight
                if not self._panic:
                    factor, step = self._ramp.at(now - record.since)
                    weight *= factor
                    self._ramp_wake = min(self._ramp_wake, record.since + step)
            if weight != record.effective:
                try:
                    self._strategy.set_weight(server, weight)
                except ValueError as error:
                    refused = refused or error
                    continue
                record.effective = weight
        if refused is not None:
            raise refused
        self._stale = False
        # _wake stays -inf: the next call works out when to wake (a ramp step is
        # a state change too, so acquire() alone reaches it); _advance does now.

    # -- reading ----------------------------------------------------------------

    @property
    def panic(self) -> bool:
        """Whether the pool is in panic mode (health ignored), now.

        Never waits: while another call holds the pool (or from a component's
        callback, which runs inside one) it is the value that call has left.
        """
        if not self._lock.acquire(blocking=False):
            return self._panic
        try:
            self._catch_up()
            return self._panic
        finally:
            self._lock.release()

    def is_eligible(self, server: str) -> bool:
        """Whether the strategy may send new work to ``server`` now."""
        with self._lock:
            self._catch_up()
            record = self._records.get(server)
            if record is None:
                raise UnknownServer(server)
            return record.effective > 0

    def stats(self) -> dict[str, ServerStats]:
        """Per-server requests, errors, latency, in-flight and state (RED metrics), now. O(n)."""
        with self._lock:
            self._catch_up()
            return {
                server: ServerStats(
                    server=server,
                    weight=record.weight,
                    effective_weight=record.effective,
                    health=None if self._health is None else self._health.state(server),
                    drain=self._drainer.state(server),
                    in_flight=record.in_flight,
                    requests=record.requests,
                    errors=record.errors,
                    latency_mean=record.latency_sum / record.requests if record.requests else 0.0,
                    latency_max=record.latency_max,
                )
                for server, record in self._records.items()
            }

    @property
    def strategy(self) -> Balancer:
        """The strategy the pool steers."""
        return self._strategy

    @property
    def health(self) -> HealthTracker | None:
        """The health tracker, if any."""
        return self._health

    @property
    def drainer(self) -> Drainer:
        """The drainer."""
        return self._drainer

    @property
    def sticky(self) -> StickySession | None:
        """The sticky-session helper, if any."""
        return self._sticky

    @property
    def clock(self) -> Clock:
        """The clock shared by every component."""
        return self._clock

    @property
    def slow_start(self) -> float:
        """The slow-start window in seconds (0: off)."""
        return self._ramp.window

    @property
    def panic_threshold(self) -> float:
        """The healthy share below which the pool panics."""
        return self._panic_threshold

    def _check(self) -> None:
        """Assert the pool's invariants (tests call this)."""
        assert set(self._records) == set(self._strategy.servers), "members differ from strategy"
        for server, record in self._records.items():
            assert record.in_flight >= 0, (server, record.in_flight)
            assert self._strategy.servers[server] == record.effective, server
            assert record.errors <= record.requests, server
        self._strategy._check()

    def __repr__(self) -> str:
        parts = [repr(self._strategy)]
        for name in ("health", "sticky"):
            if getattr(self, f"_{name}") is not None:
                parts.append(f"{name}={getattr(self, f'_{name}')!r}")
        parts.append(f"drainer={self._drainer!r}")
        if self._ramp.window:
            parts.append(f"slow_start={self._ramp.window!r}")
        parts.append(f"panic_threshold={self._panic_threshold!r}")
        return f"Pool({', '.join(parts)})"
