"""Pool: one strategy plus health checks, draining, stickiness, slow start and panic mode.

The Pool is the recommended entry point and the one place that composes. It
owns no algorithm of its own: it keeps every member in the strategy and
steers it through weights, computed by :func:`balancekit._weights.effective_weights`
(a pure function of members, health, drains, ramps, panic and now) and pushed
as one batch whenever something changes, never per request. A ramp moves in
at most ``RAMP_STEPS`` steps so that hash strategies rebuild rarely.

One operation, one lock, one clock reading: the Pool holds its lock for the
whole call, reads its clock once and hands ``now`` to the components, whose
state it guards with the same lock. Events are queued under the lock and
delivered after it is released (:class:`balancekit._machine.Outbox`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._machine import Callback, Outbox
from ._membership import Membership, _Record
from ._weights import Member, effective_weights
from .clock import Clock, monotonic
from .drain import Drainer, DrainState
from .errors import AllServersBusy, UnknownServer
from .events import StateChange
from .health import HealthState, HealthTracker
from .lease import Lease
from .slow_start import RAMP_STEPS, SlowStart
from .sticky import StickySession
from .strategies._exclude import check_exclude
from .strategies.base import Balancer
from .validate import (
    MAX_SECONDS,
    check_bool,
    check_callable,
    check_count,
    check_instance,
    check_range,
    check_time,
)

__all__ = ["RAMP_STEPS", "Pool", "ServerStats"]

_CLAIMS = threading.Lock()
"""Guards a component's check-and-claim by a Pool (a strategy, tracker or drainer
belongs to one Pool)."""


@dataclass(frozen=True, slots=True)
class ServerStats:
    """One server's RED metrics and state, as :meth:`Pool.stats` reports them.

    ``requests`` counts released leases, ``errors`` those released with
    ``ok=False`` and ``abandoned`` those released with ``ok=None`` (the caller
    gave up: neither success nor failure); latencies are seconds from acquire
    to release (``0.0`` before the first release); ``in_flight`` is the leases
    open now (counted by the drainer, checked against the strategy);
    ``overflows`` counts the requests refused with ``AllServersBusy`` while
    this server was full (``max_in_flight``).
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
    abandoned: int = 0
    overflows: int = 0


class Pool(Membership):
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
        max_in_flight: ``None``, or the most leases open on one server at once
            (nginx's ``max_conns``, HAProxy's ``maxconn``): a full server is
            skipped; when all are full, ``acquire`` raises ``AllServersBusy``.
        on_change: called with every :class:`~balancekit.events.StateChange`
            of the pool and its components, exactly once and in order
            (those that calls return included), after every lock is released.
        clock: shared by every component; when ``None``, the first component's
            explicit clock, else :func:`time.monotonic`.

    Every public call takes the pool's one lock once (the health tracker and
    the drainer are guarded by it too; the strategy keeps its own) and reads
    the clock once, handing that ``now`` to every component. Callbacks run
    after the lock is released, so they may call any method.

    Complexity: ``acquire`` and release cost the strategy's pick plus O(1),
    except at a state change or ramp step, which costs O(n) plus one batch of
    weight updates (:meth:`Balancer.set_weights`: at most one rebuild). Thread-safe.

    Raises:
        ValueError, TypeError: a bad option or component, components with
            different clocks, or a strategy, tracker or drainer that already
            belongs to a Pool; nothing is changed then (no component adopts
            the pool's clock until every check has passed).
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
        max_in_flight: int | None = None,
        on_change: Callback | None = None,
        clock: Clock | None = None,
    ) -> None:
        # Every check first: a refused Pool changes no component.
        check_instance("strategy", strategy, Balancer)
        check_instance("health", health, HealthTracker, optional=True)
        check_instance("drainer", drainer, Drainer, optional=True)
        check_instance("sticky", sticky, StickySession, optional=True)
        self._ramp = SlowStart(
            check_range("slow_start", slow_start, 0.0, MAX_SECONDS),
            check_range("slow_start_aggression", slow_start_aggression, 0.0, 1e3, low_open=True),
            check_range("slow_start_min_weight_percent", slow_start_min_weight_percent, 0.0, 100.0),
        )
        self._panic_threshold = check_range("panic_threshold", panic_threshold, 0.0, 1.0)
        self._cap = None if max_in_flight is None else check_count("max_in_flight", max_in_flight)
        if on_change is not None:
            check_callable("on_change", on_change)
        if clock is not None:
            check_callable("clock", clock)
        components: list[Any] = [strategy, health, drainer, sticky]
        explicit = [c._clock for c in components if c is not None and c._clock_explicit]
        if clock is None:
            clock = explicit[0] if explicit else monotonic
        for component in components:
            if (
                component is not None
                and component._clock_explicit
                and component._clock is not clock
            ):
                raise ValueError(
                    f"{type(component).__name__} has its own clock {component._clock!r}, "
                    f"not the pool's {clock!r}"
                )
        now = check_time(clock())
        with _CLAIMS:  # two Pools built at once on one component: one of them gets it
            for component in (strategy, health, drainer):
                if component is not None and component._owned:
                    raise ValueError(f"{component!r} already belongs to a Pool")
            for component in (strategy, health, drainer):
                if component is not None:
                    component._owned = True
        if drainer is None:
            drainer = Drainer(clock=clock)
        for component in components:
            if component is not None:
                component._adopt_clock(clock)
        self._clock = clock
        self._strategy = strategy
        self._health = health
        self._drainer = drainer
        self._sticky = sticky
        self._lock = threading.Lock()
        self._outbox = Outbox()
        self._outbox.listeners = [] if on_change is None else [on_change]
        for machine in (health, drainer):
            if machine is not None:
                machine._join(self._lock, self._outbox, self._nudged)
        self._changes: list[StateChange] = []  # for poll()
        self._now = now
        self._panic = False
        self._wake = -math.inf  # the earliest time a state may change by time alone
        self._ramp_wake = math.inf
        self._stale = False  # a refresh failed half-way: the next call redoes it
        self._records: dict[str, _Record] = {}
        self._leaving: set[str] = set()  # gone from discovery: removed once drained
        self._full: set[str] = set()  # servers with max_in_flight leases open
        # Members that joined or left in this operation, not yet told to the
        # strategy: the refresh at its end tells it in one batch with the weights.
        # Dicts, not sets: the strategy sees them in the order they came (a set's
        # order of strings changes from process to process with the hash seed).
        self._joining: dict[str, None] = {}
        self._gone: dict[str, None] = {}
        with self._lock:
            for server, weight in strategy.servers.items():
                self._register(server, now)
                # Initial members are the baseline: they do not ramp.
                self._records[server] = _Record(weight, weight, -math.inf)
            self._refresh(now)
        self._outbox.flush()

    # -- the shape of every call ---------------------------------------------------

    def _begin(self, *, refreshes: bool = False) -> float:
        """Read the clock once and apply what time has brought (lock held).

        A call that ``refreshes`` the weights itself at its end lets that
        refresh report a weight the strategy refuses, so its own change
        still applies first.
        """
        now = check_time(self._clock())
        if now < self._now:  # threads may read the clock in one order and lock in another
            now = self._now
        else:
            self._now = now
        if now >= self._wake:
            try:
                self._advance(now)
            except ValueError:
                if not refreshes:
                    raise
        return now

    def _nudged(self) -> None:
        """A component changed by a call on it directly (its lock is ours, held):
        the next call of the pool recomputes the weights."""
        self._stale = True
        self._wake = -math.inf

    def _emit(self, changes: list[StateChange]) -> None:
        """Queue changes for on_change and each component's subscribers (lock held)."""
        health, drainer = self._health, self._drainer
        for change in changes:
            source = health if isinstance(change.new, HealthState) else drainer
            assert source is not None
            source._emit([change])

    # -- requests ---------------------------------------------------------------

    def acquire(
        self,
        key: Any = None,
        *,
        exclude: Iterable[str] = (),
        cookie: str | bytes | None = None,
        session: str | None = None,
    ) -> Lease:
        """Choose an eligible server and count one request on it until the lease is released.

        ``exclude`` holds servers already tried for this request (a retry):
        none of them is chosen while another eligible one exists; when all
        are excluded the exclusion is dropped, so a one-server pool can still
        retry. With ``max_in_flight``, a server with that many leases open is
        skipped; when every eligible server is full, ``AllServersBusy``.

        With a ``StickySession``, a valid ``cookie`` (or the route of an
        application ``session`` id) naming a server that may still take its
        clients pins the request there (unless it is excluded or full);
        otherwise the strategy chooses and the session is bound to the new
        server. ``lease.cookie`` is the value to send back; ``lease.moved`` is
        true when the request asked for a server that could not be honoured
        (gone, unhealthy, drained, excluded or full, or an invalid cookie).
        Without a ``StickySession`` a cookie is ignored.

        Raises:
            AllServersBusy: (a ``NoServerAvailable``) every eligible server has
                ``max_in_flight`` leases open; each counts one overflow.
            NoServerAvailable: no eligible server (not even in panic mode).
            TypeError: a hash strategy got no key; ``exclude`` is a str or
                holds a non-str.
            ValueError: ``session`` given to a pool without a ``StickySession``;
                or a strategy of your own refused a weight it did not refuse
                in ``_admit`` (each call retries until it accepts).
            TypeError, ValueError: the clock returned no finite number
                (nothing is counted then).
        """
        sticky = self._sticky
        if sticky is None:
            if session is not None:
                raise ValueError(
                    "session affinity needs a Pool created with sticky=StickySession(...)"
                )
            if cookie is not None and not isinstance(cookie, (str, bytes)):
                # Ignored here, but refused as it is with a StickySession.
                raise TypeError(f"cookie must be str, bytes or None, got {type(cookie).__name__}")
            # The hot path, written out: one lock, one clock reading, O(1) bookkeeping.
            lease: Lease | None
            with self._lock:
                now = self._clock()
                if now.__class__ is not float or now - now:  # NaN - NaN and inf - inf are NaN
                    now = check_time(now)
                if now < self._now:
                    now = self._now
                else:
                    self._now = now
                if now >= self._wake:
                    self._advance(now)
                if exclude or self._full:
                    lease = self._open(key, exclude, now)
                else:
                    lease = self._strategy._open(self, key, None, (), now)
                server = lease.server
                lease.context = self._records[server]
                rec = self._drainer._records[server]
                rec.in_flight += 1
                if self._cap is not None and rec.in_flight >= self._cap:
                    self._full.add(server)
            if self._outbox._queue:
                self._outbox.flush()
            return lease
        with self._lock:
            now = self._begin()
            lease = None
            named = None
            if cookie is not None:
                named = sticky._server_from_cookie(cookie, now)
            elif session is not None:
                named = sticky._route(session, now)
            if (
                named is not None
                and named not in self._full
                and (not exclude or named not in check_exclude(exclude))
                and self._keeps_sticky(named)
            ):
                lease = self._strategy._open(self, key, named, now=now)
            if lease is None:
                lease = self._open(key, exclude, now)
                # Moved: the client named a server and lands elsewhere.
                lease.moved = (cookie is not None or named is not None) and lease.server != named
            server = lease.server
            lease.context = self._records[server]
            rec = self._drainer._records[server]
            rec.in_flight += 1
            if self._cap is not None and rec.in_flight >= self._cap:
                self._full.add(server)
            # Always the current cookie (cached unless it expires): one signed
            # with a retired secret is re-signed with the first, so rotation works.
            lease.cookie = sticky._cookie_for(server, now)
            if session is not None:
                sticky._bind(session, server, now)
        if self._outbox._queue:
            self._outbox.flush()
        return lease

    def _open(self, key: Any, exclude: Iterable[str], now: float) -> Lease:
        """Open a lease on the strategy's choice outside ``exclude`` and the full servers
        (lock held); the caller's exclusion gives way first, the cap never."""
        strategy, full = self._strategy, self._full
        if not full:
            return strategy._open(self, key, None, exclude, now=now)
        chosen = strategy.get_server(key, check_exclude(exclude) | full)
        if chosen in full:  # nobody outside both: drop the caller's exclusion
            chosen = strategy.get_server(key, full)
        if chosen in full:
            busy = [s for s in full if self._records[s].effective > 0]
            for server in busy:
                self._records[server].overflows += 1
            raise AllServersBusy(
                len(self._records),
                f"all {len(busy)} eligible servers have {self._cap} requests in flight",
            )
        return strategy._open(self, key, chosen, now=now)

    def _keeps_sticky(self, server: str) -> bool:
        if server not in self._records:
            return False
        health = self._health
        healthy = self._panic or health is None or health._lookup(server).state is _HEALTHY
        return healthy and self._drainer._accepts_sticky(self._drainer._lookup(server))

    def _release(self, lease: Lease, ok: bool | None) -> bool:
        # The hot path, written out (one call): one clock reading, one lock.
        now = self._clock()
        if now.__class__ is not float or now - now:
            try:
                now = check_time(now)
            except (TypeError, ValueError):
                # A broken clock must not leak the lease: settle the counts (not the
                # health or the statistics, which need a time), then raise.
                self._settle_counts(lease, ok)
                raise
        if not self._strategy._release(lease, ok, now):
            return False
        server = lease.server
        with self._lock:
            if now < self._now:
                now = self._now
            else:
                self._now = now
            if now >= self._wake:
                self._advance(now)
            record = self._records.get(server)
            if record is None or record is not lease.context:
                return True  # the server left the pool: nothing of it to account
            latency = lease.latency or 0.0
            record.requests += 1
            if ok is False:
                record.errors += 1
            elif ok is None:  # abandoned: neither outcome
                record.abandoned += 1
            record.latency_sum += latency
            if latency > record.latency_max:
                record.latency_max = latency
            # The common case written out: an ACTIVE server with a lease to close,
            # a success on a server with no failure streak: nothing changes state.
            # An abandoned lease (ok None) is no health event.
            drec = self._drainer._records[server]
            if drec.state is _ACTIVE and drec.in_flight:
                drec.in_flight -= 1
                drained = None
            else:
                drained = self._drainer._closed(drec, now)
            if self._full:
                self._full.discard(server)  # one lease fewer: below the cap again
            health = self._health
            ejected = None
            if health is not None:
                hrec = health._records[server]
                # A success matters to a failure streak, or to outlier detectors.
                if ok is False or (ok and (hrec.passive or health._detectors)):
                    ejected = health._observe(hrec, ok, now)
            if drained is not None or ejected is not None:
                self._changed([c for c in (drained, ejected) if c is not None], now)
                self._refresh(now)
        if self._outbox._queue:
            self._outbox.flush()
        return True

    def _settle_counts(self, lease: Lease, ok: bool | None) -> None:
        if not self._strategy._settle(lease, ok):  # no reading: no latency sample
            return
        with self._lock:
            if self._records.get(lease.server) is lease.context:
                self._full.discard(lease.server)
                drainer = self._drainer
                drained = drainer._closed(drainer._records[lease.server], self._now)
                if drained is not None:
                    self._changed([drained], self._now)
                    self._refresh(self._now)
        self._outbox.flush()

    # -- health, draining, events ----------------------------------------------

    def due_checks(self) -> list[str]:
        """Servers whose active health probe should start now (none without a tracker)."""
        if self._health is None:
            return []
        with self._lock:
            due = self._health._due(self._begin())
            self._wake = self._next_wake()  # a started probe brings a timeout
        self._outbox.flush()
        return due

    def record_check(self, server: str, ok: bool) -> StateChange | None:
        """Report an active probe's result; returns the health change it caused, if any.

        Raises:
            ValueError: the pool has no HealthTracker. UnknownServer: not a member.
            TypeError: ``ok`` is not a bool.
        """
        health = self._health
        if health is None:
            raise ValueError("record_check needs a Pool created with health=HealthTracker(...)")
        check_bool("ok", ok)
        with self._lock:
            now = self._begin(refreshes=True)
            change = health._record(health._lookup(server), ok, now)
            if change is not None:
                self._changed([change], now, poll=False)
                self._refresh(now)
            self._wake = self._next_wake()
        self._outbox.flush()
        return change

    def drain(self, server: str, timeout: float | None = None) -> StateChange:
        """Stop sending new work to ``server``; see :meth:`Drainer.drain`."""
        drainer = self._drainer
        seconds = drainer._seconds(timeout)
        with self._lock:
            now = self._begin(refreshes=True)
            change = drainer._drain(drainer._lookup(server), seconds, now)
            self._changed([change], now, poll=False)
            self._refresh(now)
        self._outbox.flush()
        return change

    def cancel_drain(self, server: str) -> StateChange:
        """Return a draining or drained server to service; see :meth:`Drainer.cancel`."""
        drainer = self._drainer
        with self._lock:
            now = self._begin(refreshes=True)
            change = drainer._cancel(drainer._lookup(server), now)
            self._leaving.discard(server)  # yours to keep, until an update drops it again
            self._changed([change], now, poll=False)
            self._refresh(now)
        self._outbox.flush()
        return change

    def poll(self) -> list[StateChange]:
        """Changes since the last poll: lease releases, probe timeouts, ejections ending,
        drain deadlines. Changes already returned by a call are not repeated."""
        with self._lock:
            self._begin()
            changes, self._changes = self._changes, []
        self._outbox.flush()
        return changes

    def next_deadline(self) -> float | None:
        """The clock time at which a probe is due or something may change, or ``None``."""
        with self._lock:
            self._begin()
            times = [self._ramp_wake, self._next_wake()]
            if self._health is not None:
                times.append(_or_inf(self._health._next_deadline()))
            soonest = min(times)
        self._outbox.flush()
        return None if soonest == math.inf else soonest

    def _next_wake(self) -> float:
        """The earliest time a state changes by time alone: a ramp step, a timeout, an
        ejection's end, a drain's deadline (due probes are the caller's business)."""
        times = [self._ramp_wake, _or_inf(self._drainer._deadlines.next_at())]
        if self._health is not None:
            times.append(_or_inf(self._health._timers.next_at()))
        return min(times)

    def _advance(self, now: float) -> None:
        """Fire every component's timers due at ``now``, in time order, and refresh."""
        fired = self._drainer._advance(self._drainer._at(now))
        if self._health is not None:
            fired = self._health._advance(self._health._at(now)) + fired
            fired.sort(key=_at)  # stable: each component's own order is kept
        if fired:
            self._changed(fired, now)
        if fired or self._stale or now >= self._ramp_wake:
            self._refresh(now)
        self._wake = self._next_wake()

    def _changed(self, changes: list[StateChange], now: float, *, poll: bool = True) -> None:
        """Note changes (lock held): recovered servers ramp, events are queued."""
        for change in changes:
            record = self._records.get(change.server)
            if record is not None and change.new is _HEALTHY:
                record.since = change.at  # a recovered server ramps up like a new one
            elif change.new is DrainState.DRAINED and change.server in self._leaving:
                self._remove(change.server)  # gone from discovery, and now drained
        if poll:
            self._changes.extend(changes)
        self._emit(changes)

    # -- weights ----------------------------------------------------------------

    def _refresh(self, now: float) -> None:
        """Recompute every effective weight and push the changed ones as one batch.

        If the strategy refuses the batch (a strategy whose ``_admit`` does
        not foresee it), the weights are pushed one by one so that ejections
        and drains still apply, the first refusal is raised, and the next
        call tries again rather than leaving the pool stale.
        """
        self._stale = True
        self._wake = -math.inf  # the next call works out when to wake
        health, drainer = self._health, self._drainer
        members = {
            server: Member(
                record.weight,
                record.since,
                health is None or health._records[server].state is _HEALTHY,
                drainer._records[server].state is _ACTIVE,
            )
            for server, record in self._records.items()
        }
        result = effective_weights(members, self._ramp, self._panic_threshold, now)
        self._panic = result.panic
        self._ramp_wake = result.next_step
        records = self._records
        joining, gone = self._joining, self._gone
        strategy = self._strategy
        mine = type(strategy).set_weights is Balancer.set_weights
        if joining or gone:
            if mine:
                self._push_members(result.weights, now)
                self._stale = False
                return
            self._members_one_by_one()
        batch = {s: w for s, w in result.weights.items() if w != records[s].effective}
        if batch:
            try:
                if mine:
                    strategy._set_weights(batch, now)  # computed here: nothing to check again
                else:
                    strategy.set_weights(batch)  # a strategy of your own has its say
            except ValueError:
                self._push_each(batch)
            for server, weight in batch.items():
                records[server].effective = weight
        self._stale = False

    def _push_members(self, weights: dict[str, float], now: float) -> None:
        """Tell the strategy of the joins and departures of this operation and of every
        changed weight, as one batch (one rebuild at most).

        If the strategy refuses, membership still follows the pool (the new
        servers join at weight 0, which holds anything) and the weights go one
        by one, as :meth:`_refresh` does.
        """
        records, joining, gone = self._records, self._joining, self._gone
        add = {s: weights[s] for s in joining}
        batch = {s: w for s, w in weights.items() if s not in joining and w != records[s].effective}
        try:
            self._strategy._update_members(add, gone, batch, now)
        except ValueError:
            self._strategy._update_members(dict.fromkeys(add, 0.0), gone, now=now)
            joining.clear()
            gone.clear()
            for server in add:
                records[server].effective = 0.0
            self._push_each({**add, **batch})
        joining.clear()
        gone.clear()
        for server, weight in {**add, **batch}.items():
            records[server].effective = weight

    def _members_one_by_one(self) -> None:
        """A strategy of your own (it overrides ``set_weights``) has its say through its
        public methods: departures, then joins at weight 0; the weights follow."""
        strategy = self._strategy
        for server in list(self._gone):
            strategy.remove_server(server)
            del self._gone[server]
        for server in list(self._joining):
            strategy.add_server(server, 0)
            del self._joining[server]

    def _push_each(self, batch: dict[str, float]) -> None:
        refused: ValueError | None = None
        for server, weight in list(batch.items()):
            try:
                self._strategy.set_weight(server, weight)
            except ValueError as error:
                refused = refused or error
                del batch[server]
        if refused is not None:
            for server, weight in batch.items():
                self._records[server].effective = weight
            raise refused

    # -- reading ----------------------------------------------------------------

    @property
    def panic(self) -> bool:
        """Whether the pool is in panic mode (health ignored), now."""
        with self._lock:
            self._begin()
            panic = self._panic
        self._outbox.flush()
        return panic

    def is_eligible(self, server: str) -> bool:
        """Whether the strategy may send new work to ``server`` now."""
        with self._lock:
            self._begin()
            record = self._records.get(server)
            eligible = None if record is None else record.effective > 0
        self._outbox.flush()
        if eligible is None:
            raise UnknownServer(server)
        return eligible

    def stats(self) -> dict[str, ServerStats]:
        """Per-server requests, errors, latency, in-flight and state (RED metrics), now. O(n)."""
        with self._lock:
            self._begin()
            health, drainer = self._health, self._drainer
            stats = {
                server: ServerStats(
                    server=server,
                    weight=record.weight,
                    effective_weight=record.effective,
                    health=None if health is None else health._records[server].state,
                    drain=drainer._records[server].state,
                    in_flight=drainer._records[server].in_flight,
                    requests=record.requests,
                    errors=record.errors,
                    latency_mean=record.latency_sum / record.requests if record.requests else 0.0,
                    latency_max=record.latency_max,
                    abandoned=record.abandoned,
                    overflows=record.overflows,
                )
                for server, record in self._records.items()
            }
        self._outbox.flush()
        return stats

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
    def max_in_flight(self) -> int | None:
        """The most leases open on one server at once (``None``: no cap)."""
        return self._cap

    @property
    def panic_threshold(self) -> float:
        """The healthy share below which the pool panics."""
        return self._panic_threshold

    def _check(self) -> None:
        """Assert the pool's invariants (tests call this)."""
        strategy, drainer = self._strategy, self._drainer
        assert set(self._records) == set(strategy.servers), "members differ from strategy"
        for server, record in self._records.items():
            assert strategy.servers[server] == record.effective, server
            assert record.errors <= record.requests, server
            # Open leases are counted by the strategy and by the drainer: they agree.
            assert drainer.in_flight(server) == strategy.in_flight(server), server
            full = self._cap is not None and drainer.in_flight(server) >= self._cap
            assert full == (server in self._full), server
            assert record.errors + record.abandoned <= record.requests, server
            if self._health is not None:
                assert server in self._health, server
        strategy._check()
        drainer._check()
        if self._health is not None:
            self._health._check()

    def __repr__(self) -> str:
        parts = [repr(self._strategy)]
        for name in ("health", "sticky"):
            if getattr(self, f"_{name}") is not None:
                parts.append(f"{name}={getattr(self, f'_{name}')!r}")
        parts.append(f"drainer={self._drainer!r}")
        if self._ramp.window:
            parts.append(f"slow_start={self._ramp.window!r}")
        parts.append(f"panic_threshold={self._panic_threshold!r}")
        if self._cap is not None:
            parts.append(f"max_in_flight={self._cap}")
        return f"Pool({', '.join(parts)})"


_HEALTHY = HealthState.HEALTHY
_ACTIVE = DrainState.ACTIVE


def _at(change: StateChange) -> float:
    return change.at


def _or_inf(at: float | None) -> float:
    return math.inf if at is None else at
