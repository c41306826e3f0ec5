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
from collections.abc import Iterable

from ._machine import Machine, Timers
from .clock import Clock
from .errors import DuplicateServer
from .events import StateChange
from .validate import MAX_SECONDS, check_bool, check_range, check_server, check_server_list

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
    __slots__ = ("deadline", "in_flight", "name", "state", "timers")

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = DrainState.ACTIVE
        self.in_flight = 0
        self.deadline: float | None = None  # set while DRAINING
        self.timers = [-1]  # the deadline timer, while DRAINING

    def __repr__(self) -> str:
        return (
            f"_Server({self.name!r}, {self.state.value}, in_flight={self.in_flight}, "
            f"deadline={self.deadline!r})"
        )


_DEADLINE = 0
"""The one timer kind: a drain's deadline."""


class Drainer(Machine[_Server]):
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

    Complexity: ``opened``, ``is_active`` and ``in_flight`` O(1);
    ``closed``, ``drain``, ``cancel``, ``state``, ``accepts_sticky`` and
    ``next_deadline`` O(log d) for d servers draining; ``poll`` O(k log d)
    for k deadlines passed. Thread-safe; inside a Pool, the Pool's lock.

    Raises:
        TypeError, ValueError: a bad option, naming it and its value.
        DuplicateServer: ``servers`` repeats an id.
    """

    _name = "Drainer"

    def __init__(
        self,
        servers: Iterable[str] = (),
        *,
        timeout: float = 30.0,
        sticky_until_deadline: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self._timeout = check_range("timeout", timeout, 0.0, MAX_SECONDS)
        self._sticky_until_deadline = check_bool("sticky_until_deadline", sticky_until_deadline)
        names = check_server_list(servers)
        super().__init__(clock)
        self._records = {name: _Server(name) for name in names}
        self._deadlines: Timers[_Server] = Timers(self._seq)

    @property
    def timeout(self) -> float:
        """Default seconds a drain waits for open leases before giving up on them."""
        return self._timeout

    @property
    def sticky_until_deadline(self) -> bool:
        """Whether bound (sticky) clients may still reach a draining server."""
        return self._sticky_until_deadline

    # -- membership -------------------------------------------------------------

    def add_server(self, server: str) -> None:
        """Start administering a server, ACTIVE with nothing in flight. O(1).

        Raises:
            DuplicateServer: (a ``ValueError``) it is already a member.
            TypeError, ValueError: the id is not a non-empty str.
        """
        check_server(server)
        with self._lock:
            self._add(server)

    def remove_server(self, server: str) -> None:
        """Forget a server, whatever its state; later ``closed()`` calls for it do nothing. O(1).

        Raises:
            UnknownServer: (a ``KeyError``) it is not a member.
        """
        with self._lock:
            self._remove(server)

    def _add(self, server: str) -> None:
        if server in self._records:
            raise DuplicateServer(server)
        self._records[server] = _Server(server)

    def _remove(self, server: str) -> None:
        rec = self._lookup(server)
        del self._records[server]
        self._deadlines.disarm_all(rec)

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
        """Count one lease closed; return DRAINING -> DRAINED when it was the last.

        With ``sticky_until_deadline`` the last close ends nothing: the drain
        lasts until its deadline.

        Never makes a count negative (a lease force-closed after its drain's
        deadline may still be released), and a server that is no longer a
        member is ignored, so releases are always safe.
        """
        with self._lock:
            rec = self._records.get(server)
            if rec is None or rec.in_flight == 0:
                return None
            change = self._closed(rec, self._tick())
            self._emit_one(change)
        self._outbox.flush()
        return change

    def _closed(self, rec: _Server, now: float) -> StateChange | None:
        """One lease on ``rec`` closed at ``now`` (lock held)."""
        if rec.in_flight == 0:
            return None
        rec.in_flight -= 1
        if (
            rec.in_flight == 0
            and rec.state is DrainState.DRAINING
            and not self._sticky_until_deadline  # bound clients may still come back
        ):
            return self._event(rec, _Event.LAST_CLOSED, now)
        return None

    def in_flight(self, server: str) -> int:
        """Leases open on ``server`` as reported by ``opened``/``closed``. O(1).

        Raises:
            UnknownServer: it is not a member.
        """
        return self._lookup(server).in_flight

    # -- administration ---------------------------------------------------------

    def drain(self, server: str, timeout: float | None = None) -> StateChange:
        """Stop new work to an ACTIVE server; return its transition. O(log d).

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
        seconds = self._seconds(timeout)
        return self._event_on(server, lambda rec, now: self._drain(rec, seconds, now))

    def _seconds(self, timeout: float | None) -> float:
        if timeout is None:
            return self._timeout
        return check_range("timeout", timeout, 0.0, MAX_SECONDS)

    def _drain(self, rec: _Server, seconds: float, now: float) -> StateChange:
        waits = rec.in_flight or (self._sticky_until_deadline and seconds > 0)
        event = _Event.DRAIN if waits else _Event.DRAIN_IDLE
        return self._event(rec, event, now, deadline=now + seconds)

    def cancel(self, server: str) -> StateChange:
        """Put a DRAINING or DRAINED server back in service; return its transition. O(log d).

        Raises:
            UnknownServer: it is not a member.
            ValueError: it is ACTIVE (nothing changes).
        """
        return self._event_on(server, self._cancel)

    def _cancel(self, rec: _Server, now: float) -> StateChange:
        return self._event(rec, _Event.CANCEL, now)

    # -- reading ----------------------------------------------------------------

    def state(self, server: str) -> DrainState:
        """The server's state now. O(log d).

        Raises:
            UnknownServer: it is not a member.
        """
        return self._call_on(server, lambda rec, now: rec.state)

    def is_active(self, server: str) -> bool:
        """Whether the server accepts new work (it is ACTIVE). O(1).

        Raises:
            UnknownServer: it is not a member.
        """
        return self._lookup(server).state is DrainState.ACTIVE

    def accepts_sticky(self, server: str) -> bool:
        """Whether a client bound to this server may still reach it. O(log d).

        True when ACTIVE, or DRAINING before its deadline with
        ``sticky_until_deadline=True``.

        Raises:
            UnknownServer: it is not a member.
        """
        return self._call_on(server, lambda rec, now: self._accepts_sticky(rec))

    def _accepts_sticky(self, rec: _Server) -> bool:
        state = rec.state
        return state is DrainState.ACTIVE or (
            state is DrainState.DRAINING and self._sticky_until_deadline
        )

    def next_deadline(self) -> float | None:
        """The earliest deadline of a draining server, ``None`` when none drains. O(log d)."""
        return self._call(lambda now: self._deadlines.next_at())

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
            assert deadline is not None
            rec.deadline = deadline
            self._deadlines.arm(rec, _DEADLINE, deadline)
        else:
            rec.deadline = None
            self._deadlines.disarm(rec, _DEADLINE)
        left = rec.in_flight if event is _Event.DEADLINE else 0
        return StateChange(rec.name, old, new, at, left)

    # -- time -------------------------------------------------------------------

    def _advance(self, now: float) -> list[StateChange]:
        """Fire the deadlines passed at ``now``, in time order (ties in drain order)."""
        if not self._deadlines:
            return []
        return [
            self._event(rec, _Event.DEADLINE, at) for at, _, rec in self._deadlines.pop_due(now)
        ]

    def _shift(self, delta: float) -> None:
        for rec in self._records.values():
            if rec.deadline is not None:
                rec.deadline += delta
        self._deadlines.shift(delta)

    def _check(self) -> None:
        """Assert the drainer's invariants (tests call this after every step)."""
        with self._lock:
            draining = 0
            for name, rec in self._records.items():
                assert rec.name == name and rec.in_flight >= 0, rec
                assert (rec.state is DrainState.DRAINING) == (rec.deadline is not None), rec
                assert (rec.deadline is not None) == (rec.timers[_DEADLINE] >= 0), rec
                if rec.deadline is not None:
                    draining += 1
                    # A sticky drain waits for its deadline even with nothing in flight.
                    assert rec.in_flight > 0 or self._sticky_until_deadline, rec
                    assert rec.deadline >= self._now, rec
            assert draining == len(self._deadlines), (draining, self._deadlines)
            self._deadlines._check()

    def __repr__(self) -> str:
        states = {name: rec.state.value for name, rec in self._records.items()}
        return (
            f"Drainer({states!r}, timeout={self._timeout!r}, "
            f"sticky_until_deadline={self._sticky_until_deadline!r})"
        )
