"""Drainer: take servers out of service without dropping the requests they hold.

Administration is a state machine of its own, apart from health: a server is
``ACTIVE``, ``DRAINING`` (no new work, in-flight leases finish) or
``DRAINED``. The caller (normally a Pool) reports every lease with
``opened``/``closed``, so the drainer knows when the last one is gone; a drain
that reaches its deadline first is reported by ``poll()`` with the number of
leases still open, for the caller to force-close. With
``sticky_until_deadline`` a drain always lasts until its deadline, because
bound clients may still come back. All transitions are in
:data:`_TRANSITIONS` (drawn in docs/drain.md).
"""

from __future__ import annotations

import enum
import math
import threading
from collections.abc import Callable, Iterable

from .clock import Clock, monotonic
from .errors import DuplicateServer, UnknownServer
from .events import StateChange
from .strategies.base import check_server

__all__ = ["DrainState", "Drainer"]


class DrainState(enum.Enum):
    """The administrative state of one server; only ``ACTIVE`` accepts new work."""

    ACTIVE = "active"
    """In service."""
    DRAINING = "draining"
    """No new work; open leases finish until the last closes or the deadline passes."""
    DRAINED = "drained"
    """Out of service: nothing left in flight, or the deadline passed."""


class _Event(enum.Enum):
    DRAIN = "drain"
    DRAIN_IDLE = "drain with nothing in flight"
    CANCEL = "cancel"
    LAST_CLOSED = "last lease closed"
    DEADLINE = "deadline passed"


_TRANSITIONS: dict[tuple[DrainState, _Event], DrainState] = {
    (DrainState.ACTIVE, _Event.DRAIN): DrainState.DRAINING,
    (DrainState.ACTIVE, _Event.DRAIN_IDLE): DrainState.DRAINED,
    (DrainState.DRAINING, _Event.LAST_CLOSED): DrainState.DRAINED,
    (DrainState.DRAINING, _Event.DEADLINE): DrainState.DRAINED,
    (DrainState.DRAINING, _Event.CANCEL): DrainState.ACTIVE,
    (DrainState.DRAINED, _Event.CANCEL): DrainState.ACTIVE,
}
"""Every legal (state, event) pair and where it leads; any other pair is illegal.

With ``sticky_until_deadline`` no LAST_CLOSED event is raised and an idle
drain with a timeout is a DRAIN, not a DRAIN_IDLE (see ``closed`` and
``drain``): bound clients may come back, so only DEADLINE or CANCEL ends it."""


class _Server:
    __slots__ = ("deadline", "in_flight", "name", "state")

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = DrainState.ACTIVE
        self.in_flight = 0
        self.deadline: float | None = None  # set while DRAINING

    def __repr__(self) -> str:
        return (
            f"_Server({self.name!r}, {self.state.value}, in_flight={self.in_flight}, "
            f"deadline={self.deadline!r})"
        )


class Drainer:
    """Connection draining for a set of servers, driven by the caller.

    ``drain(server)`` stops new work: the server becomes ``DRAINED`` when its
    last lease closes, or at ``now + timeout`` with the count of leases still
    open. With ``sticky_until_deadline=True`` a draining server still takes
    clients already bound to it until its deadline (HAProxy's ``drain``), so
    it stays DRAINING until then even when nothing is in flight: a sticky
    client between two requests holds no lease.

    >>> from balancekit.clock import ManualClock
    >>> clock = ManualClock()
    >>> drainer = Drainer(["a", "b"], timeout=10.0, clock=clock)
    >>> drainer.opened("a"); drainer.opened("a"); drainer.opened("b")
    >>> drainer.drain("a").new
    <DrainState.DRAINING: 'draining'>
    >>> drainer.closed("a")
    >>> drainer.closed("a").new
    <DrainState.DRAINED: 'drained'>
    >>> drainer.drain("b").new, drainer.next_deadline()
    (<DrainState.DRAINING: 'draining'>, 10.0)
    >>> clock.advance(10.0)
    10.0
    >>> [(c.server, c.new.value, c.in_flight) for c in drainer.poll()]
    [('b', 'drained', 1)]

    Complexity: ``opened``, ``closed``, ``drain``, ``cancel``, ``is_active``
    and ``in_flight`` O(1); ``state``, ``accepts_sticky``, ``poll`` and
    ``next_deadline`` O(d) for d servers draining.

    Raises:
        TypeError, ValueError: a bad option, naming it and its value.
        DuplicateServer: ``servers`` repeats an id.
    """

    def __init__(
        self,
        servers: Iterable[str] = (),
        *,
        timeout: float = 30.0,
        sticky_until_deadline: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self._timeout = _seconds("timeout", timeout)
        if not isinstance(sticky_until_deadline, bool):
            raise TypeError(f"sticky_until_deadline must be a bool, got {sticky_until_deadline!r}")
        self._sticky_until_deadline = sticky_until_deadline
        if isinstance(servers, (str, bytes)) or not isinstance(servers, Iterable):
            raise TypeError(f"servers must be an iterable of ids, got {servers!r}")
        records: dict[str, _Server] = {}
        for server in servers:
            if check_server(server) in records:
                raise DuplicateServer(server)
            records[server] = _Server(server)
        self._servers = records
        self._draining: dict[str, _Server] = {}  # in the order drains began
        self._clock: Clock = monotonic if clock is None else clock
        self._clock_explicit = clock is not None
        self._lock = threading.Lock()
        self._pending: list[StateChange] = []
        self._subscribers: list[Callable[[StateChange], None]] = []
        self._now = -math.inf

    @property
    def timeout(self) -> float:
        """Default seconds a drain waits for open leases before giving up on them."""
        return self._timeout

    @property
    def sticky_until_deadline(self) -> bool:
        """Whether bound (sticky) clients may still reach a draining server."""
        return self._sticky_until_deadline

    @property
    def clock(self) -> Clock:
        """The clock deadlines are measured on."""
        return self._clock

    # -- membership -------------------------------------------------------------

    def add_server(self, server: str) -> None:
        """Start administering a server, ACTIVE with nothing in flight. O(1).

        Raises:
            DuplicateServer: (a ``ValueError``) it is already a member.
            TypeError, ValueError: the id is not a non-empty str.
        """
        check_server(server)
        with self._lock:
            if server in self._servers:
                raise DuplicateServer(server)
            self._servers[server] = _Server(server)

    def remove_server(self, server: str) -> None:
        """Forget a server, whatever its state; later ``closed()`` calls for it do nothing. O(1).

        Raises:
            UnknownServer: (a ``KeyError``) it is not a member.
        """
        with self._lock:
            self._lookup(server)
            del self._servers[server]
            self._draining.pop(server, None)

    @property
    def servers(self) -> tuple[str, ...]:
        """The members in insertion order. O(n)."""
        with self._lock:
            return tuple(self._servers)

    def __len__(self) -> int:
        return len(self._servers)

    def __contains__(self, server: object) -> bool:
        return server in self._servers

    # -- leases -----------------------------------------------------------------

    def opened(self, server: str) -> None:
        """Count one lease opened on ``server``, in any state. O(1).

        The drainer counts; it does not police. Which servers may get new
        work is for the caller to ask (:meth:`is_active`, :meth:`accepts_sticky`).

        Raises:
            UnknownServer: it is not a member.
        """
        with self._lock:
            self._lookup(server).in_flight += 1

    def closed(self, server: str) -> StateChange | None:
        """Count one lease closed; return DRAINING -> DRAINED when it was the last. O(1).

        With ``sticky_until_deadline`` the last close ends nothing: the drain
        lasts until its deadline.

        Never makes a count negative (a lease force-closed after its drain's
        deadline may still be released), and a server that is no longer a
        member is ignored, so releases are always safe.
        """
        with self._lock:
            rec = self._servers.get(server)
            if rec is None or rec.in_flight == 0:
                return None
            now = self._read_clock()
            fired = self._advance(now)
            rec.in_flight -= 1
            change = None
            if (
                rec.in_flight == 0
                and rec.state is DrainState.DRAINING
                and not self._sticky_until_deadline  # bound clients may still come back
            ):
                change = self._event(rec, _Event.LAST_CLOSED, now)
        self._notify(fired, change)
        return change

    def in_flight(self, server: str) -> int:
        """Leases open on ``server`` as reported by ``opened``/``closed``. O(1).

        Raises:
            UnknownServer: it is not a member.
        """
        return self._lookup(server).in_flight

    # -- administration ---------------------------------------------------------

    def drain(self, server: str, timeout: float | None = None) -> StateChange:
        """Stop new work to an ACTIVE server; return its transition. O(1).

        It becomes DRAINING until its last lease closes or ``now + timeout``
        (default: the drainer's ``timeout``; 0 gives up on open leases at
        once), or DRAINED at once when nothing is in flight. With
        ``sticky_until_deadline`` it stays DRAINING until ``now + timeout``
        whatever is in flight (DRAINED at once only when idle with timeout 0).

        Raises:
            UnknownServer: it is not a member.
            ValueError: it is already DRAINING or DRAINED (nothing changes), or
                ``timeout`` is negative or not finite.
            TypeError: ``timeout`` is not a number.
        """
        seconds = self._timeout if timeout is None else _seconds("timeout", timeout)
        with self._lock:
            rec = self._lookup(server)
            now = self._read_clock()
            fired = self._advance(now)
            waits = rec.in_flight or (self._sticky_until_deadline and seconds > 0)
            event = _Event.DRAIN if waits else _Event.DRAIN_IDLE
            change = self._event(rec, event, now, deadline=now + seconds)
        self._notify(fired, change)
        return change

    def cancel(self, server: str) -> StateChange:
        """Put a DRAINING or DRAINED server back in service; return its transition. O(1).

        Raises:
            UnknownServer: it is not a member.
            ValueError: it is ACTIVE (nothing changes).
        """
        with self._lock:
            rec = self._lookup(server)
            now = self._read_clock()
            fired = self._advance(now)
            change = self._event(rec, _Event.CANCEL, now)
        self._notify(fired, change)
        return change

    # -- reading ----------------------------------------------------------------

    def state(self, server: str) -> DrainState:
        """The server's state now. O(d).

        Raises:
            UnknownServer: it is not a member.
        """
        with self._lock:
            rec = self._lookup(server)
            fired = self._advance(self._read_clock())
            state = rec.state
        self._notify(fired)
        return state

    def is_active(self, server: str) -> bool:
        """Whether the server accepts new work (it is ACTIVE). O(1).

        Raises:
            UnknownServer: it is not a member.
        """
        return self._lookup(server).state is DrainState.ACTIVE

    def accepts_sticky(self, server: str) -> bool:
        """Whether a client bound to this server may still reach it. O(d).

        True when ACTIVE, or DRAINING before its deadline with
        ``sticky_until_deadline=True``.

        Raises:
            UnknownServer: it is not a member.
        """
        with self._lock:
            rec = self._lookup(server)
            fired = self._advance(self._read_clock())
            state = rec.state
        self._notify(fired)
        return state is DrainState.ACTIVE or (
            state is DrainState.DRAINING and self._sticky_until_deadline
        )

    def poll(self) -> list[StateChange]:
        """Drains that hit their deadline since the last poll, in time order. O(d).

        Each change carries ``in_flight``, the leases still open, for the
        caller to force-close. Changes returned by other calls are not
        repeated here.
        """
        with self._lock:
            fired = self._advance(self._read_clock())
            changes, self._pending = self._pending, []
        self._notify(fired)
        return changes

    def next_deadline(self) -> float | None:
        """The earliest deadline of a draining server, ``None`` when none drains. O(d)."""
        with self._lock:
            fired = self._advance(self._read_clock())
            deadlines = [
                rec.deadline for rec in self._draining.values() if rec.deadline is not None
            ]
        self._notify(fired)
        return min(deadlines) if deadlines else None

    def subscribe(self, callback: Callable[[StateChange], None]) -> Callable[[], None]:
        """Call ``callback(change)`` for every transition; return a function that unsubscribes.

        Callbacks run after the lock is released and must not raise. O(1).
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # -- the transition table ---------------------------------------------------

    def _event(
        self, rec: _Server, event: _Event, at: float, deadline: float | None = None
    ) -> StateChange:
        """Apply one event; an illegal one raises ``ValueError`` before anything changes."""
        old = rec.state
        new = _TRANSITIONS.get((old, event))
        if new is None:
            verb = "drain" if event is _Event.DRAIN_IDLE else event.value
            raise ValueError(f"cannot {verb} server {rec.name!r}: it is {old.value}")
        rec.state = new
        if new is DrainState.DRAINING:
            rec.deadline = deadline
            self._draining[rec.name] = rec
        else:
            rec.deadline = None
            self._draining.pop(rec.name, None)
        left = rec.in_flight if event is _Event.DEADLINE else 0
        return StateChange(rec.name, old, new, at, left)

    # -- time -------------------------------------------------------------------

    def _read_clock(self) -> float:
        now = self._clock()
        if now < self._now:  # a thread that read the clock earlier took the lock later
            now = self._now
        self._now = now
        return now

    def _advance(self, now: float) -> list[StateChange]:
        if not self._draining:
            return []
        expired = [
            r for r in self._draining.values() if r.deadline is not None and r.deadline <= now
        ]
        expired.sort(key=lambda rec: rec.deadline or 0.0)  # stable: ties keep drain order
        fired = [self._event(rec, _Event.DEADLINE, rec.deadline or now) for rec in expired]
        self._pending.extend(fired)
        return fired

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
        """Share a Pool's clock, moving pending deadlines onto it.

        Raises:
            ValueError: this drainer was created with a different clock.
        """
        if clock is self._clock:
            return
        if self._clock_explicit:
            raise ValueError(f"Drainer has its own clock {self._clock!r}, not the pool's {clock!r}")
        with self._lock:
            delta = clock() - self._clock()
            self._clock = clock
            self._now += delta
            for rec in self._draining.values():
                if rec.deadline is not None:
                    rec.deadline += delta

    def _check(self) -> None:
        """Assert the drainer's invariants (tests call this after every step)."""
        with self._lock:
            for name, rec in self._servers.items():
                assert rec.name == name and rec.in_flight >= 0, rec
                draining = rec.state is DrainState.DRAINING
                assert draining == (name in self._draining) == (rec.deadline is not None), rec
                if draining:
                    # A sticky drain waits for its deadline even with nothing in flight.
                    assert rec.in_flight > 0 or self._sticky_until_deadline, rec
                    assert rec.deadline is not None and rec.deadline >= self._now, rec
            assert all(self._servers.get(name) is rec for name, rec in self._draining.items())

    def __repr__(self) -> str:
        states = {name: rec.state.value for name, rec in self._servers.items()}
        return (
            f"Drainer({states!r}, timeout={self._timeout!r}, "
            f"sticky_until_deadline={self._sticky_until_deadline!r})"
        )


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a finite number >= 0, got {value!r}")
    result = float(value)
    if not (math.isfinite(result) and result >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return result
