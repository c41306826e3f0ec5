"""HealthTracker: active probes and passive outlier ejection, one state machine per server.

Sans-I/O: the tracker never probes anything. ``due()`` says which probes to
start, the caller runs them and reports with ``record()``; real traffic is
reported with ``observe()``. Time-driven transitions (a probe that timed out,
an ejection that ended) happen lazily at the next call that reads the clock
and are collected for ``poll()``. Every transition is a row of
:data:`_TRANSITIONS` (drawn in docs/health.md); records, timers, time and
events are the shared shell of :mod:`balancekit._machine`.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable, Iterable

from .._machine import Machine, Timers
from ..clock import Clock
from ..errors import DuplicateServer
from ..events import StateChange
from ..validate import (
    MAX_SECONDS,
    check_bool,
    check_instance,
    check_range,
    check_server,
    check_server_list,
    show,
)
from ._ejection import Ejection
from ._probes import PROBE, Probes
from .outliers import Counts, OutlierDetector

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
    OUTLIER = "outlier detected"


_TIMEOUT, _UNEJECT, _SWEEP = 1, 2, 3
"""Timer kinds beside PROBE (0): a probe's timeout, the end of an ejection, the
outlier detectors' sweep (one for the tracker, on :class:`_Sweeper`)."""


class _Sweeper:
    """The tracker's own timer slot: the next outlier sweep."""

    __slots__ = ("timers",)

    def __init__(self) -> None:
        self.timers = [-1, -1, -1, -1]

    def __repr__(self) -> str:
        return f"_Sweeper(armed={self.timers[_SWEEP] >= 0})"


class _Server:
    """Per-server record; heap entries refer to it and check it is still current."""

    __slots__ = (
        "decay_from",
        "ejected_until",
        "ejections",
        "fails",
        "late",
        "name",
        "next_probe",
        "oks",
        "passive",
        "probe_started",
        "state",
        "timers",
        "window_failed",
        "window_ok",
    )

    def __init__(self, name: str, state: HealthState, now: float) -> None:
        self.name = name
        self.state = state
        self.fails = 0  # consecutive failed probes
        self.oks = 0  # consecutive passed probes
        self.passive = 0  # consecutive failures of real traffic
        self.ejections = 0  # the ejection multiplier, decays once the ejection is over
        self.decay_from = now  # when the last ejection ended (or would have)
        self.ejected_until: float | None = None
        self.probe_started: float | None = None  # the outstanding probe
        self.late = False  # a timed-out probe whose result has not come yet
        self.next_probe = now
        self.timers = [-1, -1, -1]  # PROBE, _TIMEOUT, _UNEJECT: live heap entries
        self.window_ok = self.window_failed = 0  # requests of this outlier interval

    def __repr__(self) -> str:
        return (
            f"_Server({self.name!r}, {self.state.value}, fails={self.fails}, oks={self.oks}, "
            f"passive={self.passive}, ejections={self.ejections}, "
            f"ejected_until={self.ejected_until!r}, probe_started={self.probe_started!r}, "
            f"next_probe={self.next_probe!r})"
        )


# -- the transition table ------------------------------------------------------------

_Guard = Callable[["HealthTracker", _Server], bool]


def _always(tracker: HealthTracker, rec: _Server) -> bool:
    return True


def _passes(tracker: HealthTracker, rec: _Server) -> bool:
    return rec.oks >= tracker._probes.healthy_threshold


def _failures(tracker: HealthTracker, rec: _Server) -> bool:
    return rec.fails >= tracker._probes.unhealthy_threshold


def _unejects(tracker: HealthTracker, rec: _Server) -> bool:
    return tracker._uneject_on_probe


def _room(tracker: HealthTracker, rec: _Server) -> bool:
    return tracker._ejection.allowed(len(tracker._records))


def _ejectable(tracker: HealthTracker, rec: _Server) -> bool:
    ejection = tracker._ejection
    if rec.passive < ejection.consecutive_failures:
        return False
    # A complete streak is one ejection attempt and is spent by it, allowed by the
    # cap or not (Envoy resets its consecutive-5xx counter after every attempt): a
    # refused server needs a whole new streak, not one more failure.
    rec.passive = 0
    return ejection.allowed(len(tracker._records))


H = HealthState
_TRANSITIONS: dict[tuple[HealthState, _Event], tuple[_Guard, HealthState]] = {
    (H.UNKNOWN, _Event.PROBE_OK): (_always, H.HEALTHY),  # the first result decides
    (H.UNHEALTHY, _Event.PROBE_OK): (_passes, H.HEALTHY),
    (H.EJECTED, _Event.PROBE_OK): (_unejects, H.HEALTHY),  # Envoy's, one pass is enough
    (H.UNKNOWN, _Event.PROBE_FAIL): (_always, H.UNHEALTHY),
    (H.HEALTHY, _Event.PROBE_FAIL): (_failures, H.UNHEALTHY),
    (H.EJECTED, _Event.PROBE_FAIL): (_failures, H.UNHEALTHY),
    (H.HEALTHY, _Event.TRAFFIC_FAIL): (_ejectable, H.EJECTED),
    (H.HEALTHY, _Event.OUTLIER): (_room, H.EJECTED),  # a detector singled it out
    (H.EJECTED, _Event.EJECTION_END): (_always, H.HEALTHY),
}
"""(state, event) -> (guard, new state): the event moves the server when the guard
holds. Before the guard, each event updates the streak counters
(:meth:`HealthTracker._count`); the passive guard spends a complete streak,
ejection or not. A pair not listed changes no state."""
del H


class HealthTracker(Machine[_Server]):
    """Active and passive health checking for a set of servers, driven by the caller.

    Active: ``due()`` lists the probes to start now; the first probe of a
    server is due when it is added plus a seeded offset in ``[0, jitter]``,
    the next one ``interval`` plus a fresh offset after each start. A probe
    not ``record``-ed before ``start + timeout`` counts as a failure.
    ``unhealthy_threshold`` failures in a row take a server to ``UNHEALTHY``,
    ``healthy_threshold`` successes bring it back; the first result of an
    ``UNKNOWN`` server decides at once. Passive: ``consecutive_failures``
    failed requests in a row (``observe``) eject a ``HEALTHY`` server for
    ``min(base_ejection * k, max_ejection)``, ``k`` being its ejection count
    (one less for every ``outlier_interval`` after an ejection, as Envoy's),
    unless that would eject more than ``max_ejected_percent`` of the servers
    (one ejection is always allowed when the percentage is > 0: Envoy's
    ``always_eject_one_host``, off by default there).
    With ``uneject_on_probe`` (the default, as Envoy's
    ``successful_active_health_check_uneject_host``) one passing active probe
    ends an ejection, whatever ``healthy_threshold``.

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
    amortised (time-driven events are kept in heaps whose size stays
    proportional to the servers); ``due`` O(k log n) for k probes due;
    membership changes O(log n); construction and ``servers`` O(n). A clock
    jump of any size costs one step per pending timer. Thread-safe; inside
    a Pool, under the Pool's lock.

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
        uneject_on_probe: bool = True,
        outliers: Iterable[OutlierDetector] = (),
        outlier_interval: float = 10.0,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(clock)
        # Options are checked in the order of the signature: active, initial, passive.
        self._probes: Probes[_Server] = Probes(
            interval, timeout, unhealthy_threshold, healthy_threshold, jitter, self._seq
        )
        check_instance("initial", initial, HealthState)
        if initial not in (HealthState.HEALTHY, HealthState.UNKNOWN):
            raise ValueError(f"initial must be HEALTHY or UNKNOWN, got {initial!r}")
        self._initial = initial
        self._ejection = Ejection(
            consecutive_failures, base_ejection, max_ejection, max_ejected_percent
        )
        self._uneject_on_probe = check_bool("uneject_on_probe", uneject_on_probe)
        self._detectors = _detectors(outliers)
        self._outlier_interval = check_range(
            "outlier_interval", outlier_interval, 0.0, MAX_SECONDS, low_open=True
        )
        self._ejection.interval = self._outlier_interval  # Envoy's one interval paces both
        check_instance("rng", rng, random.Random, optional=True)
        names = check_server_list(servers)
        # Jitter spreads probes across processes too, so the default is unseeded.
        self._rng = random.Random() if rng is None else rng
        self._timers: Timers[_Server | _Sweeper] = Timers(self._seq)  # timeouts, ejection ends
        now = self._read_clock()
        for name in names:
            self._add(name, now)
        self._sweeper = _Sweeper()
        if self._detectors:  # every outlier_interval from now
            self._timers.arm(self._sweeper, _SWEEP, now + self._outlier_interval)

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
        """Seconds of a first ejection; one lasts ``multiplier`` times as long, the
        multiplier growing by one per ejection and decaying by one per
        ``outlier_interval`` out of ejection (Envoy's ``ejection_time_backoff``)."""
        return self._ejection.base_ejection

    @property
    def max_ejection(self) -> float:
        """The longest ejection, in seconds."""
        return self._ejection.max_ejection

    @property
    def uneject_on_probe(self) -> bool:
        """Whether a passing active probe ends an ejection (Envoy's
        ``successful_active_health_check_uneject_host``, on by default)."""
        return self._uneject_on_probe

    @property
    def outliers(self) -> tuple[OutlierDetector, ...]:
        """The outlier detectors that sweep every ``outlier_interval``."""
        return self._detectors

    @property
    def outlier_interval(self) -> float:
        """Seconds between two outlier sweeps (from the tracker's creation); also
        the time after an ejection for each step down of the ejection multiplier."""
        return self._outlier_interval

    @property
    def max_ejected_percent(self) -> float:
        """The largest share of servers that may be ejected at once (0 disables ejection)."""
        return self._ejection.max_ejected_percent

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
            if server in self._records:
                raise DuplicateServer(server)
            self._add(server, self._tick())
        self._outbox.flush()

    def remove_server(self, server: str) -> None:
        """Stop tracking a server; results reported for it later raise ``UnknownServer``.

        O(1); its heap entries are dropped lazily.

        Raises:
            UnknownServer: (a ``KeyError``) the server is not tracked.
        """
        with self._lock:
            self._lookup(server)
            self._tick()
            self._remove(server)
        self._outbox.flush()

    def _add(self, name: str, now: float) -> None:
        if name in self._records:
            raise DuplicateServer(name)
        rec = _Server(name, self._initial, now)
        self._records[name] = rec
        self._probes.schedule(rec, now, self._rng)

    def _remove(self, name: str) -> None:
        rec = self._lookup(name)
        del self._records[name]
        if rec.state is HealthState.EJECTED:
            self._ejection.ejected -= 1
        self._probes.cancel(rec)
        self._timers.disarm_all(rec)

    # -- active checks ----------------------------------------------------------

    def due(self) -> list[str]:
        """The servers whose probe should start now, in schedule order; marks them started.

        Each listed probe must be answered by :meth:`record` before
        ``now + timeout`` or it counts as a failure. Its server's next probe
        is scheduled at ``now + interval + uniform(0, jitter)``. A server is
        never listed twice before its outstanding probe resolves (``timeout``
        is shorter than ``interval``). O(k log n) for k servers due.
        """
        return self._call(self._due)

    def _due(self, now: float) -> list[str]:
        probes, started = self._probes, []
        for rec in probes.pop_due(now):
            started.append(rec.name)
            rec.probe_started = now
            rec.late = False
            self._timers.arm(rec, _TIMEOUT, now + probes.timeout)
            probes.schedule(rec, now + probes.interval, self._rng)
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
        check_bool("ok", ok)
        return self._event_on(server, lambda rec, now: self._record(rec, ok, now))

    def _record(self, rec: _Server, ok: bool, now: float) -> StateChange | None:
        if rec.probe_started is not None:
            rec.probe_started = None
            self._timers.disarm(rec, _TIMEOUT)
        elif rec.late:
            rec.late = False
            return None
        return self._event(rec, _Event.PROBE_OK if ok else _Event.PROBE_FAIL, now)

    # -- passive checks ---------------------------------------------------------

    def observe(self, server: str, ok: bool) -> StateChange | None:
        """Report the outcome of a real request; return the ejection it caused, if any.

        Only a ``HEALTHY`` server is judged: a server already out of
        service has nothing to lose. The ``consecutive_failures``-th failure
        in a row is an ejection attempt and starts a new streak, even when
        the ``max_ejected_percent`` cap refuses it (as Envoy resets its
        counter): the server stays HEALTHY and is tried again only after
        another ``consecutive_failures`` failures in a row. O(log n).

        Raises:
            UnknownServer: the server is not tracked.
            TypeError: ``ok`` is not a bool.
        """
        check_bool("ok", ok)
        return self._event_on(server, lambda rec, now: self._observe(rec, ok, now))

    def _observe(self, rec: _Server, ok: bool, now: float) -> StateChange | None:
        if self._detectors:
            if ok:
                rec.window_ok += 1
            else:
                rec.window_failed += 1
        return self._event(rec, _Event.TRAFFIC_OK if ok else _Event.TRAFFIC_FAIL, now)

    # -- reading ----------------------------------------------------------------

    def state(self, server: str) -> HealthState:
        """The server's state now. O(log n) amortised.

        Raises:
            UnknownServer: the server is not tracked.
        """
        return self._call_on(server, lambda rec, now: rec.state)

    def is_healthy(self, server: str) -> bool:
        """Whether the server may get traffic now (its state is HEALTHY). O(log n) amortised.

        Raises:
            UnknownServer: the server is not tracked.
        """
        return self.state(server) is HealthState.HEALTHY

    def ejection_count(self, server: str) -> int:
        """The server's ejection multiplier now: its next ejection lasts one base longer.

        It drops by one for every ``outlier_interval`` seconds after the
        server's last ejection ended, HEALTHY or UNHEALTHY (as Envoy lowers
        it at each interval for every host not ejected). An ejection that
        failed probes cut short counts as ended when it would have ended.
        O(log n) amortised.

        Raises:
            UnknownServer: the server is not tracked.
        """
        return self._call_on(server, self._decayed)

    def next_deadline(self) -> float | None:
        """The earliest clock time at which a probe is due or anything can change.

        ``None`` when nothing is tracked. A time at or before now means
        ``due()`` has probes to start. O(log n) amortised.
        """
        return self._call(lambda now: self._next_deadline())

    def _next_deadline(self) -> float | None:
        times = [t for t in (self._probes.next_due(), self._timers.next_at()) if t is not None]
        return min(times) if times else None

    def next_change(self) -> float | None:
        """The earliest clock time at which a state can change by time alone.

        That is a probe timing out or an ejection ending; unlike
        :meth:`next_deadline`, probes that are merely due do not count, so a
        caller that reacts only to state changes (the Pool, on every request)
        is not woken by them. ``None`` when nothing is pending. O(log n) amortised.
        """
        return self._call(lambda now: self._timers.next_at())

    # -- transitions ------------------------------------------------------------

    def _event(self, rec: _Server, event: _Event, at: float) -> StateChange | None:
        """Apply one event to one server (lock held): count it, then the table decides."""
        self._count(rec, event)
        state = rec.state
        row = _TRANSITIONS.get((state, event))
        if row is None or not row[0](self, rec):
            return None
        new = row[1]
        self._enter(rec, new, at)
        return StateChange(rec.name, state, new, at)

    @staticmethod
    def _count(rec: _Server, event: _Event) -> None:
        """The streak counters an event moves, whatever the state does."""
        if event is _Event.PROBE_OK:
            rec.fails, rec.oks = 0, rec.oks + 1
        elif event is _Event.PROBE_FAIL:
            rec.oks, rec.fails = 0, rec.fails + 1
        elif event is _Event.TRAFFIC_OK:
            rec.passive = 0
        elif event is _Event.TRAFFIC_FAIL and rec.state is HealthState.HEALTHY:
            rec.passive += 1  # only a HEALTHY server is judged on its traffic

    def _enter(self, rec: _Server, new: HealthState, at: float) -> None:
        """Move ``rec`` into ``new``, keeping the ejection count, multiplier and end timer right."""
        old, ejection = rec.state, self._ejection
        if new is HealthState.EJECTED:
            rec.ejections = ejection.grown(self._decayed(rec, at))
        if old is HealthState.EJECTED:
            ejection.ejected -= 1
            # Failed probes cancel an ejection here; Envoy keeps it running to its end,
            # and only then does the multiplier start to decay.
            until = rec.ejected_until
            assert until is not None
            rec.decay_from = at if new is HealthState.HEALTHY else max(at, until)
            rec.ejected_until = None
            self._timers.disarm(rec, _UNEJECT)
        rec.state = new
        rec.passive = 0
        if new is HealthState.EJECTED:
            ejection.ejected += 1
            until = at + ejection.length(rec.ejections)
            rec.ejected_until = until
            self._timers.arm(rec, _UNEJECT, until)

    def _decayed(self, rec: _Server, now: float) -> int:
        if rec.state is HealthState.EJECTED:
            return rec.ejections
        return self._ejection.decayed(rec.ejections, now - rec.decay_from)

    # -- time -------------------------------------------------------------------

    def _advance(self, now: float) -> list[StateChange]:
        """Fire every timer due at or before ``now``, in time order; return the changes.

        One step per timer, however far the clock jumped. A timer set by
        another (an outlier ejection ends) and already due fires too, in a
        further pass; chains are short (sweep, ejection, its end), because a
        sweep never sets the next one at or before ``now``.
        """
        fired: list[StateChange] = []
        passes = 0
        while self._timers:
            due = self._timers.pop_due(now)
            if not due:
                break
            passes += 1
            for at, kind, rec in due:
                if kind == _SWEEP:
                    fired.extend(self._sweep(at, now))
                    continue
                assert isinstance(rec, _Server)
                if kind == _TIMEOUT:
                    rec.probe_started = None
                    rec.late = True
                    change = self._event(rec, _Event.PROBE_FAIL, at)
                else:
                    change = self._event(rec, _Event.EJECTION_END, at)
                if change is not None:
                    fired.append(change)
        if passes > 1:
            fired.sort(key=_at)  # stable: the order of each pass within a time
        return fired

    def _sweep(self, at: float, now: float) -> list[StateChange]:
        """The outlier detectors' verdict on the interval ending at ``at``; the next sweep.

        Servers already EJECTED take no part (as in Envoy); each window
        starts afresh. A clock that jumped over many intervals sweeps once
        (the skipped intervals saw no requests).
        """
        counts = {
            name: (rec.window_ok, rec.window_failed)
            for name, rec in self._records.items()
            if rec.state is not HealthState.EJECTED
        }
        for rec in self._records.values():
            rec.window_ok = rec.window_failed = 0
        interval = self._outlier_interval
        following = at + interval
        if following <= now:  # skip the missed intervals in one step
            following = at + (math.floor((now - at) / interval) + 1) * interval
            if following <= now:  # a time so large that an interval rounds to nothing
                following = math.nextafter(now, math.inf)
        self._timers.arm(self._sweeper, _SWEEP, following)
        # Every verdict (your code, perhaps) is taken and checked before any applies.
        verdicts = [(detector, _verdict(detector, counts)) for detector in self._detectors]
        changes: list[StateChange] = []
        for detector, chosen in verdicts:
            for name in chosen:
                rec = self._records[name]
                enforcing = detector.enforcing
                if enforcing < 100 and not self._rng.random() * 100 < enforcing:
                    continue
                change = self._event(rec, _Event.OUTLIER, at)
                if change is not None:
                    changes.append(change)
        return changes

    def _shift(self, delta: float) -> None:
        for rec in self._records.values():
            rec.decay_from += delta
            rec.next_probe += delta
            if rec.probe_started is not None:
                rec.probe_started += delta
            if rec.ejected_until is not None:
                rec.ejected_until += delta
        self._probes.shift(delta)
        self._timers.shift(delta)

    # -- introspection ----------------------------------------------------------

    def _check(self) -> None:
        """Assert the tracker's invariants (tests call this after every step)."""
        H = HealthState
        probes, ejection = self._probes, self._ejection
        with self._lock:
            assert len(probes) == len(self._records), (len(probes), len(self._records))
            probes._check()
            self._timers._check()
            assert ejection.ejected == sum(r.state is H.EJECTED for r in self._records.values())
            for name, rec in self._records.items():
                assert rec.name == name, rec
                assert rec.timers[PROBE] >= 0, rec
                assert min(rec.fails, rec.oks, rec.passive, rec.ejections) >= 0, rec
                assert not (rec.fails and rec.oks), rec
                assert (rec.state is H.EJECTED) == (rec.ejected_until is not None), rec
                assert (rec.ejected_until is not None) == (rec.timers[_UNEJECT] >= 0), rec
                assert (rec.probe_started is not None) == (rec.timers[_TIMEOUT] >= 0), rec
                if rec.state is H.UNKNOWN:
                    assert rec.fails == rec.oks == 0, rec
                if rec.state in (H.HEALTHY, H.EJECTED):
                    assert rec.fails < probes.unhealthy_threshold, rec
                if rec.state is H.UNHEALTHY:
                    assert rec.oks < probes.healthy_threshold, rec
                if rec.ejected_until is not None:
                    assert rec.ejections >= 1 and rec.ejected_until >= self._now, rec
                if rec.ejections:  # Envoy's bound: one step past max_ejection at most
                    assert ejection.grown(rec.ejections - 1) == rec.ejections, rec
                if rec.probe_started is not None:
                    assert not rec.late, rec
                    assert rec.probe_started + probes.timeout >= self._now, rec
                    assert rec.next_probe >= rec.probe_started + probes.timeout, rec

    def __repr__(self) -> str:
        states = {name: rec.state.value for name, rec in self._records.items()}
        probes, ejection = self._probes, self._ejection
        return (
            f"HealthTracker({states!r}, interval={probes.interval!r}, "
            f"timeout={probes.timeout!r}, unhealthy_threshold={probes.unhealthy_threshold!r}, "
            f"healthy_threshold={probes.healthy_threshold!r}, jitter={probes.jitter!r}, "
            f"initial={self._initial}, consecutive_failures={ejection.consecutive_failures!r}, "
            f"base_ejection={ejection.base_ejection!r}, max_ejection={ejection.max_ejection!r}, "
            f"max_ejected_percent={ejection.max_ejected_percent!r}, "
            f"uneject_on_probe={self._uneject_on_probe!r}"
            + (
                f", outliers={list(self._detectors)!r}, "
                f"outlier_interval={self._outlier_interval!r})"
                if self._detectors
                else ")"
            )
        )


def _detectors(outliers: object) -> tuple[OutlierDetector, ...]:
    """The detectors, each checked against the :class:`OutlierDetector` protocol by
    what it has (any kind of yours works: no list of known classes)."""
    if isinstance(outliers, (str, bytes)) or not isinstance(outliers, Iterable):
        raise TypeError(f"outliers must be an iterable of detectors, got {show(outliers)}")
    found = tuple(outliers)
    for detector in found:
        if isinstance(detector, type) or not callable(getattr(detector, "select", None)):
            raise TypeError(
                "outliers must hold detectors (with select(counts) and enforcing), "
                f"got {show(detector)}"
            )
        check_range(
            f"enforcing of {show(detector)}", getattr(detector, "enforcing", None), 0.0, 100.0
        )
    return found


def _verdict(detector: OutlierDetector, counts: Counts) -> list[str]:
    """``detector.select(counts)``, checked: a list of servers of ``counts``."""
    chosen = detector.select(counts)
    if isinstance(chosen, (str, bytes)) or not isinstance(chosen, Iterable):
        raise TypeError(
            f"{show(detector)}.select must return a list of servers, got {show(chosen)}"
        )
    servers = list(chosen)
    for server in servers:
        if not isinstance(server, str) or server not in counts:
            raise ValueError(
                f"{show(detector)}.select returned {show(server)}, not a server it was given"
            )
    return servers


def _at(change: StateChange) -> float:
    return change.at
