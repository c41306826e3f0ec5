"""HealthTracker: active probes and passive outlier ejection, one state machine per server.

Sans-I/O: the tracker never probes anything. ``due()`` says which probes to
start, the caller runs them and reports with ``record()``; real traffic is
reported with ``observe()``. Time-driven transitions (a probe that timed out,
an ejection that ended) happen lazily at the next call that reads the clock
and are collected for ``poll()``. Every transition is written in
:meth:`HealthTracker._event`, the one transition table (see docs/health.md).
"""

from __future__ import annotations

import enum
import heapq
import itertools
import random
import threading
from collections.abc import Callable, Iterable

from ..clock import Clock, monotonic
from ..errors import DuplicateServer, UnknownServer
from ..events import StateChange
from ..strategies.base import check_server
from ._ejection import Ejection
from ._probes import Probes

__all__ = ["HealthState", "HealthTracker"]


class HealthState(enum.Enum):
    """The health of one server; only ``HEALTHY`` is eligible for traffic."""

    UNKNOWN = "unknown"
    """Not probed yet (only when the tracker is configured with ``initial=UNKNOWN``)."""
    HEALTHY = "healthy"
    """Passing: eligible for traffic."""
    UNHEALTHY = "unhealthy"
    """Failed ``unhealthy_threshold`` active probes in a row."""
    EJECTED = "ejected"
    """Taken out by passive checks on real traffic, for a limited time."""


class _Event(enum.Enum):
    PROBE_OK = "probe ok"
    PROBE_FAIL = "probe failed"
    TRAFFIC_OK = "traffic ok"
    TRAFFIC_FAIL = "traffic failed"
    EJECTION_END = "ejection ended"


_TIMEOUT, _UNEJECT = 0, 1
"""Timer kinds: a probe's timeout, the end of an ejection."""


class _Server:
    """Per-server record; heap entries refer to it and check it is still current."""

    __slots__ = (
        "eject_seq",
        "ejected_until",
        "ejections",
        "fails",
        "healthy_since",
        "late",
        "name",
        "next_probe",
        "oks",
        "passive",
        "probe_seq",
        "probe_started",
        "state",
        "timeout_seq",
    )

    def __init__(self, name: str, state: HealthState, now: float) -> None:
        self.name = name
        self.state = state
        self.fails = 0  # consecutive failed probes
        self.oks = 0  # consecutive passed probes
        self.passive = 0  # consecutive failures of real traffic
        self.ejections = 0  # the ejection multiplier, decays while healthy
        self.healthy_since = now
        self.ejected_until: float | None = None
        self.probe_started: float | None = None  # the outstanding probe
        self.late = False  # a timed-out probe whose result has not come yet
        self.next_probe = now
        # Heap entries are live only while their sequence number is the latest.
        self.probe_seq = self.timeout_seq = self.eject_seq = -1

    def __repr__(self) -> str:
        return (
            f"_Server({self.name!r}, {self.state.value}, fails={self.fails}, oks={self.oks}, "
            f"passive={self.passive}, ejections={self.ejections}, "
            f"ejected_until={self.ejected_until!r}, probe_started={self.probe_started!r}, "
            f"next_probe={self.next_probe!r})"
        )


class HealthTracker:
    """Active and passive health checking for a set of servers, driven by the caller.

    Active: ``due()`` lists the probes to start now; the first probe of a
    server is due when it is added plus a seeded offset in ``[0, jitter]``,
    the next one ``interval`` plus a fresh offset after each start. A probe
    not ``record``-ed before ``start + timeout`` counts as a failure.
    ``unhealthy_threshold`` failures in a row take a server to ``UNHEALTHY``,
    ``healthy_threshold`` successes bring it back; the first result of an
    ``UNKNOWN`` server decides at once. Passive: ``consecutive_failures``
    failed requests in a row (``observe``) eject a ``HEALTHY`` server for
    ``min(base_ejection * k, max_ejection)``, ``k`` being its ejection count,
    unless that would eject more than ``max_ejected_percent`` of the servers
    (one ejection is always allowed when the percentage is > 0).

    >>> from balancekit.clock import ManualClock
    >>> clock = ManualClock()
    >>> tracker = HealthTracker(["a", "b"], unhealthy_threshold=2, clock=clock)
    >>> tracker.due()
    ['a', 'b']
    >>> tracker.record("a", ok=False)
    >>> tracker.record("a", ok=False).new
    <HealthState.UNHEALTHY: 'unhealthy'>
    >>> tracker.next_deadline()    # b's probe times out at 2.0
    2.0
    >>> clock.advance(2.0)
    2.0
    >>> tracker.poll(), tracker.state("b")    # one timeout is one failure
    ([], <HealthState.HEALTHY: 'healthy'>)

    Complexity: ``record``, ``observe``, ``state``, ``is_healthy`` O(log n)
    amortised (time-driven events are kept in heaps); ``due`` O(k log n) for
    k probes due; membership changes O(log n); ``servers`` O(n).

    Raises:
        TypeError, ValueError: a bad option, naming the option and the value.
        DuplicateServer: ``servers`` repeats an id.
    """

    def __init__(
        self,
        servers: Iterable[str] = (),
        *,
        interval: float = 5.0,
        timeout: float = 2.0,
        unhealthy_threshold: int = 3,
        healthy_threshold: int = 2,
        jitter: float = 0.0,
        initial: HealthState = HealthState.HEALTHY,
        consecutive_failures: int = 5,
        base_ejection: float = 30.0,
        max_ejection: float = 300.0,
        max_ejected_percent: float = 10.0,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        # Options are checked in the order of the signature: active, initial, passive.
        self._probes: Probes[_Server] = Probes(
            interval, timeout, unhealthy_threshold, healthy_threshold, jitter
        )
        if not isinstance(initial, HealthState):
            raise TypeError(f"initial must be a HealthState, got {initial!r}")
        if initial not in (HealthState.HEALTHY, HealthState.UNKNOWN):
            raise ValueError(f"initial must be HEALTHY or UNKNOWN, got {initial!r}")
        self._initial = initial
        self._ejection = Ejection(
            consecutive_failures, base_ejection, max_ejection, max_ejected_percent
        )
        if rng is not None and not isinstance(rng, random.Random):
            raise TypeError(f"rng must be a random.Random, got {rng!r}")
        names = _server_list(servers)
        self._clock: Clock = monotonic if clock is None else clock
        self._clock_explicit = clock is not None
        # Jitter spreads probes across processes too, so the default is unseeded.
        self._rng = random.Random() if rng is None else rng
        self._lock = threading.Lock()
        self._servers: dict[str, _Server] = {}
        self._timers: list[tuple[float, int, int, _Server]] = []  # timeouts, ejection ends
        # Numbers entries of both heaps: ties in time go in the order they were set.
        self._seq = itertools.count()
        self._pending: list[StateChange] = []
        self._subscribers: list[Callable[[StateChange], None]] = []
        self._now = self._clock()
        for name in names:
            self._add(name, self._now)

    # -- options ----------------------------------------------------------------

    @property
    def interval(self) -> float:
        """Seconds between the starts of two probes of a server (before jitter)."""
        return self._probes.interval

    @property
    def timeout(self) -> float:
        """Seconds a probe may take; later it counts as a failure."""
        return self._probes.timeout

    @property
    def unhealthy_threshold(self) -> int:
        """Failed probes in a row that take a server down."""
        return self._probes.unhealthy_threshold

    @property
    def healthy_threshold(self) -> int:
        """Passed probes in a row that bring an unhealthy server back."""
        return self._probes.healthy_threshold

    @property
    def jitter(self) -> float:
        """Upper bound of the random delay added to every probe's schedule."""
        return self._probes.jitter

    @property
    def initial(self) -> HealthState:
        """The state of a newly added server: HEALTHY or UNKNOWN."""
        return self._initial

    @property
    def consecutive_failures(self) -> int:
        """Failed requests in a row (passive) that eject a server."""
        return self._ejection.consecutive_failures

    @property
    def base_ejection(self) -> float:
        """Seconds of a first ejection; the k-th lasts k times as long."""
        return self._ejection.base_ejection

    @property
    def max_ejection(self) -> float:
        """The longest ejection, in seconds."""
        return self._ejection.max_ejection

    @property
    def max_ejected_percent(self) -> float:
        """The largest share of servers that may be ejected at once (0 disables ejection)."""
        return self._ejection.max_ejected_percent

    @property
    def clock(self) -> Clock:
        """The clock every deadline is measured on."""
        return self._clock

    # -- membership -------------------------------------------------------------

    def add_server(self, server: str) -> None:
        """Track a new server in the ``initial`` state; its first probe is due within ``jitter``.

        O(log n).

        Raises:
            DuplicateServer: (a ``ValueError``) the server is already tracked.
            TypeError, ValueError: the id is not a non-empty str.
        """
        check_server(server)
        with self._lock:
            if server in self._servers:
                raise DuplicateServer(server)
            now = self._read_clock()
            fired = self._advance(now)
            self._add(server, now)
        self._notify(fired)

    def remove_server(self, server: str) -> None:
        """Stop tracking a server; results reported for it later raise ``UnknownServer``.

        O(1); its heap entries are dropped lazily.

        Raises:
            UnknownServer: (a ``KeyError``) the server is not tracked.
        """
        with self._lock:
            rec = self._lookup(server)
            fired = self._advance(self._read_clock())
            del self._servers[server]
            if rec.state is HealthState.EJECTED:
                self._ejection.ejected -= 1
        self._notify(fired)

    @property
    def servers(self) -> tuple[str, ...]:
        """The tracked servers in insertion order. O(n)."""
        with self._lock:
            return tuple(self._servers)

    def __len__(self) -> int:
        return len(self._servers)

    def __contains__(self, server: object) -> bool:
        return server in self._servers

    # -- active checks ----------------------------------------------------------

    def due(self) -> list[str]:
        """The servers whose probe should start now, in schedule order; marks them started.

        Each listed probe must be answered by :meth:`record` before
        ``now + timeout`` or it counts as a failure. Its server's next probe
        is scheduled at ``now + interval + uniform(0, jitter)``. A server is
        never listed twice before its outstanding probe resolves (``timeout``
        is shorter than ``interval``). O(k log n) for k servers due.
        """
        with self._lock:
            now = self._read_clock()
            fired = self._advance(now)
            started: list[str] = []
            probes = self._probes
            for rec in probes.pop_due(now, self._servers):
                started.append(rec.name)
                rec.probe_started = now
                rec.late = False
                rec.timeout_seq = next(self._seq)
                heapq.heappush(self._timers, (now + probes.timeout, rec.timeout_seq, _TIMEOUT, rec))
                probes.schedule(rec, now + probes.interval, next(self._seq), self._rng)
        self._notify(fired)
        return started

    def record(self, server: str, ok: bool) -> StateChange | None:
        """Report the result of an active probe; return the transition it caused, if any.

        A result answers the outstanding probe started by :meth:`due`; with
        none outstanding it is taken as an extra probe (``record`` needs no
        ``due``), except right after a timeout: the first result after a
        probe timed out is that probe's late answer and is ignored (the
        timeout already counted as its failure). O(log n).

        Raises:
            UnknownServer: the server is not tracked.
            TypeError: ``ok`` is not a bool.
        """
        _check_ok(ok)
        with self._lock:
            rec = self._lookup(server)
            now = self._read_clock()
            fired = self._advance(now)
            if rec.probe_started is not None:
                rec.probe_started = None
                change = self._event(rec, _Event.PROBE_OK if ok else _Event.PROBE_FAIL, now)
            elif rec.late:
                rec.late = False
                change = None
            else:
                change = self._event(rec, _Event.PROBE_OK if ok else _Event.PROBE_FAIL, now)
        self._notify(fired, change)
        return change

    # -- passive checks ---------------------------------------------------------

    def observe(self, server: str, ok: bool) -> StateChange | None:
        """Report the outcome of a real request; return the ejection it caused, if any.

        Only a ``HEALTHY`` server is judged: a server already out of
        service has nothing to lose. An ejection refused by the
        ``max_ejected_percent`` cap changes nothing, and the next failure
        tries again. O(log n).

        Raises:
            UnknownServer: the server is not tracked.
            TypeError: ``ok`` is not a bool.
        """
        _check_ok(ok)
        with self._lock:
            rec = self._lookup(server)
            now = self._read_clock()
            fired = self._advance(now)
            change = self._event(rec, _Event.TRAFFIC_OK if ok else _Event.TRAFFIC_FAIL, now)
        self._notify(fired, change)
        return change

    # -- reading ----------------------------------------------------------------

    def poll(self) -> list[StateChange]:
        """The time-driven transitions (probe timeouts, ejection ends) since the last poll.

        In time order. Transitions returned by ``record``/``observe`` are not
        repeated here. O(k log n) for k timers passed.
        """
        with self._lock:
            fired = self._advance(self._read_clock())
            changes, self._pending = self._pending, []
        self._notify(fired)
        return changes

    def state(self, server: str) -> HealthState:
        """The server's state now. O(log n) amortised.

        Raises:
            UnknownServer: the server is not tracked.
        """
        with self._lock:
            rec = self._lookup(server)
            fired = self._advance(self._read_clock())
            state = rec.state
        self._notify(fired)
        return state

    def is_healthy(self, server: str) -> bool:
        """Whether the server may get traffic now (its state is HEALTHY). O(log n) amortised.

        Raises:
            UnknownServer: the server is not tracked.
        """
        return self.state(server) is HealthState.HEALTHY

    def ejection_count(self, server: str) -> int:
        """The server's ejection multiplier now: its next ejection lasts one base longer.

        It drops by one for every ``base_ejection`` seconds the server spends
        HEALTHY. O(log n) amortised.

        Raises:
            UnknownServer: the server is not tracked.
        """
        with self._lock:
            rec = self._lookup(server)
            now = self._read_clock()
            fired = self._advance(now)
            count = self._decayed(rec, now)
        self._notify(fired)
        return count

    def next_deadline(self) -> float | None:
        """The earliest clock time at which a probe is due or anything can change.

        ``None`` when nothing is tracked. A time at or before now means
        ``due()`` has probes to start. O(log n) amortised.
        """
        with self._lock:
            fired = self._advance(self._read_clock())
            timers = self._timers
            while timers and not self._live_timer(timers[0][1], timers[0][2], timers[0][3]):
                heapq.heappop(timers)
            probe = self._probes.next_due(self._servers)
            times = [at for at in (probe, timers[0][0] if timers else None) if at is not None]
        self._notify(fired)
        return min(times) if times else None

    def next_change(self) -> float | None:
        """The earliest clock time at which a state can change by time alone.

        That is a probe timing out or an ejection ending; unlike
        :meth:`next_deadline`, probes that are merely due do not count, so a
        caller that reacts only to state changes (the Pool, on every request)
        is not woken by them. ``None`` when nothing is pending. O(log n) amortised.
        """
        with self._lock:
            fired = self._advance(self._read_clock())
            timers = self._timers
            while timers and not self._live_timer(timers[0][1], timers[0][2], timers[0][3]):
                heapq.heappop(timers)
            at = timers[0][0] if timers else None
        self._notify(fired)
        return at

    def subscribe(self, callback: Callable[[StateChange], None]) -> Callable[[], None]:
        """Call ``callback(change)`` for every transition; return a function that unsubscribes.

        Callbacks run after the lock is released, in the thread that
        noticed the change; they must not raise. Return values remain the
        primary channel. O(1).
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # -- the transition table ---------------------------------------------------

    def _event(self, rec: _Server, event: _Event, at: float) -> StateChange | None:
        """Apply one event to one server: every health transition is decided here."""
        H = HealthState
        state, new = rec.state, rec.state
        probes, ejection = self._probes, self._ejection
        if event is _Event.PROBE_OK:
            rec.fails, rec.oks = 0, rec.oks + 1
            if state is H.UNKNOWN or (state is H.UNHEALTHY and rec.oks >= probes.healthy_threshold):
                new = H.HEALTHY
        elif event is _Event.PROBE_FAIL:
            rec.oks, rec.fails = 0, rec.fails + 1
            if state is H.UNKNOWN or (
                state in (H.HEALTHY, H.EJECTED) and rec.fails >= probes.unhealthy_threshold
            ):
                new = H.UNHEALTHY
        elif event is _Event.TRAFFIC_OK:
            rec.passive = 0
        elif event is _Event.TRAFFIC_FAIL:
            if state is H.HEALTHY:
                rec.passive += 1
                streak = rec.passive >= ejection.consecutive_failures
                if streak and ejection.allowed(len(self._servers)):
                    new = H.EJECTED
        elif state is H.EJECTED:  # EJECTION_END
            new = H.HEALTHY
        if new is state:
            return None
        self._enter(rec, new, at)
        return StateChange(rec.name, state, new, at)

    def _enter(self, rec: _Server, new: HealthState, at: float) -> None:
        """Move ``rec`` into ``new``, keeping the ejection count, multiplier and end timer right."""
        old, ejection = rec.state, self._ejection
        if old is HealthState.HEALTHY:
            rec.ejections = self._decayed(rec, at)
        elif old is HealthState.EJECTED:
            ejection.ejected -= 1
            rec.ejected_until = None
        rec.state = new
        rec.passive = 0
        if new is HealthState.HEALTHY:
            rec.healthy_since = at
        elif new is HealthState.EJECTED:
            ejection.ejected += 1
            rec.ejections += 1
            until = at + ejection.length(rec.ejections)
            rec.ejected_until = until
            rec.eject_seq = next(self._seq)
            heapq.heappush(self._timers, (until, rec.eject_seq, _UNEJECT, rec))

    def _decayed(self, rec: _Server, now: float) -> int:
        if rec.state is not HealthState.HEALTHY:
            return rec.ejections
        return self._ejection.decayed(rec.ejections, now - rec.healthy_since)

    # -- time -------------------------------------------------------------------

    def _read_clock(self) -> float:
        # Callers in other threads may read the clock in a different order
        # than they take the lock; the machine's time must never go back.
        now = self._clock()
        if now < self._now:
            now = self._now
        self._now = now
        return now

    def _advance(self, now: float) -> list[StateChange]:
        """Fire every timer due at or before ``now``, in time order; queue the changes."""
        fired: list[StateChange] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            at, seq, kind, rec = heapq.heappop(timers)
            if not self._live_timer(seq, kind, rec):
                continue
            if kind == _TIMEOUT:
                rec.probe_started = None
                rec.late = True
                change = self._event(rec, _Event.PROBE_FAIL, at)
            else:
                change = self._event(rec, _Event.EJECTION_END, at)
            if change is not None:
                fired.append(change)
        self._pending.extend(fired)
        return fired

    def _live_timer(self, seq: int, kind: int, rec: _Server) -> bool:
        if self._servers.get(rec.name) is not rec:
            return False
        if kind == _TIMEOUT:
            return rec.probe_started is not None and rec.timeout_seq == seq
        return rec.state is HealthState.EJECTED and rec.eject_seq == seq

    def _add(self, name: str, now: float) -> None:
        rec = _Server(name, self._initial, now)
        self._servers[name] = rec
        self._probes.schedule(rec, now, next(self._seq), self._rng)

    def _lookup(self, server: str) -> _Server:
        rec = self._servers.get(server)
        if rec is None:
            raise UnknownServer(server)
        return rec

    def _notify(self, fired: list[StateChange], change: StateChange | None = None) -> None:
        if not self._subscribers or not (fired or change):
            return
        with self._lock:
            callbacks = list(self._subscribers)
        for item in [*fired, change] if change else fired:
            for callback in callbacks:
                callback(item)

    def _adopt_clock(self, clock: Clock) -> None:
        """Share a Pool's clock, moving every pending time onto it.

        Raises:
            ValueError: this tracker was created with a different clock.
        """
        if clock is self._clock:
            return
        if self._clock_explicit:
            raise ValueError(
                f"HealthTracker has its own clock {self._clock!r}, not the pool's {clock!r}"
            )
        with self._lock:
            delta = clock() - self._read_clock()
            self._clock = clock
            self._now += delta
            for rec in self._servers.values():
                rec.healthy_since += delta
                rec.next_probe += delta
                if rec.probe_started is not None:
                    rec.probe_started += delta
                if rec.ejected_until is not None:
                    rec.ejected_until += delta
            self._probes.shift(delta)
            # A constant shift keeps heap order.
            self._timers = [(at + delta, s, kind, rec) for at, s, kind, rec in self._timers]

    # -- introspection ----------------------------------------------------------

    def _check(self) -> None:
        """Assert the tracker's invariants (tests call this after every step)."""
        H = HealthState
        probes, ejection = self._probes, self._ejection
        with self._lock:
            assert sorted(probes.scheduled(self._servers)) == sorted(self._servers)
            assert ejection.ejected == sum(r.state is H.EJECTED for r in self._servers.values())
            for name, rec in self._servers.items():
                assert rec.name == name, rec
                assert min(rec.fails, rec.oks, rec.passive, rec.ejections) >= 0, rec
                assert not (rec.fails and rec.oks), rec
                assert (rec.state is H.EJECTED) == (rec.ejected_until is not None), rec
                if rec.state is H.UNKNOWN:
                    assert rec.fails == rec.oks == 0, rec
                if rec.state in (H.HEALTHY, H.EJECTED):
                    assert rec.fails < probes.unhealthy_threshold, rec
                if rec.state is H.UNHEALTHY:
                    assert rec.oks < probes.healthy_threshold, rec
                if rec.ejected_until is not None:
                    assert rec.ejections >= 1 and rec.ejected_until > self._now, rec
                if rec.probe_started is not None:
                    assert not rec.late, rec
                    assert rec.probe_started + probes.timeout > self._now, rec
                    assert rec.next_probe > rec.probe_started + probes.timeout, rec

    def __repr__(self) -> str:
        states = {name: rec.state.value for name, rec in self._servers.items()}
        probes, ejection = self._probes, self._ejection
        return (
            f"HealthTracker({states!r}, interval={probes.interval!r}, "
            f"timeout={probes.timeout!r}, unhealthy_threshold={probes.unhealthy_threshold!r}, "
            f"healthy_threshold={probes.healthy_threshold!r}, jitter={probes.jitter!r}, "
            f"initial={self._initial}, consecutive_failures={ejection.consecutive_failures!r}, "
            f"base_ejection={ejection.base_ejection!r}, max_ejection={ejection.max_ejection!r}, "
            f"max_ejected_percent={ejection.max_ejected_percent!r})"
        )


def _check_ok(ok: object) -> None:
    if not isinstance(ok, bool):
        raise TypeError(f"ok must be a bool, got {ok!r}")


def _server_list(servers: object) -> list[str]:
    if isinstance(servers, (str, bytes)) or not isinstance(servers, Iterable):
        raise TypeError(f"servers must be an iterable of ids, got {servers!r}")
    names: list[str] = []
    for server in servers:
        names.append(check_server(server))
        if names.count(server) > 1:
            raise DuplicateServer(server)
    return names
