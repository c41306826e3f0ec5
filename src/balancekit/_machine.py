"""The shell shared by the clocked state machines (HealthTracker, Drainer): records,
timers, time and events.

A machine keeps one record per server, a heap of timers (:class:`Timers`),
the last clock reading, the time-driven changes not yet polled, and its
subscribers. Its transitions are its own (a table in each module); the shell
does the rest the same way for every machine:

- **Time.** Every reading of the clock is checked (:func:`~balancekit.validate.check_time`)
  before anything changes, and never goes back: a reading earlier than the
  last one (threads reading before they lock) counts as the last one.
- **Timers.** Each record holds at most one live timer per kind; a rescheduled
  or cancelled timer leaves a stale heap entry that is dropped when it
  surfaces, and the heap is compacted whenever stale entries outnumber live
  ones, so its size stays proportional to the live timers whatever the churn.
  Firing is one pop per timer, whatever the time jumped by.
- **Events.** Changes are queued in an :class:`Outbox` under the lock and
  delivered after it is released, so a callback may call any public method.
  A Pool that owns a machine gives it its own lock and outbox: one lock per
  operation, and every change reaches the Pool's ``on_change`` in order.
"""

from __future__ import annotations

import abc
import heapq
import itertools
import math
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar

from .clock import Clock, monotonic
from .errors import UnknownServer
from .events import StateChange
from .validate import check_callable, check_time

__all__ = ["Callback", "Machine", "Outbox", "Timed", "Timers"]

Callback = Callable[[StateChange], object]
"""A subscriber: called with every change, after every lock is released."""


class Timed(Protocol):
    """What a timer needs of a record: a slot per timer kind (the live entry's number, or -1)."""

    timers: list[int]


R = TypeVar("R", bound=Timed)
T = TypeVar("T")
C = TypeVar("C", bound="StateChange | None")


class Timers(Generic[R]):
    """A heap of ``(at, number, kind, record)`` entries, at most one live per (record, kind).

    >>> from types import SimpleNamespace
    >>> timers = Timers(itertools.count())
    >>> rec = SimpleNamespace(timers=[-1])
    >>> timers.arm(rec, 0, 5.0); timers.arm(rec, 0, 7.0)   # the second replaces the first
    >>> timers.next_at(), len(timers)
    (7.0, 1)
    >>> [at for at, kind, r in timers.pop_due(10.0)], len(timers)
    ([7.0], 0)

    Complexity: ``arm`` O(log n) amortised, ``disarm`` O(1) amortised (a
    compaction, O(n), follows at least n / 2 stale entries); ``pop_due`` O(log n) per entry;
    ``next_at`` O(log n) amortised; ``shift`` O(n). Not locked: the machine
    that owns it calls it under its lock.
    """

    __slots__ = ("_heap", "_live", "_seq")

    def __init__(self, seq: Iterator[int]) -> None:
        self._heap: list[tuple[float, int, int, R]] = []
        self._live = 0
        self._seq = seq  # shared by a machine's heaps: ties go in the order they were set

    def arm(self, rec: R, kind: int, at: float) -> None:
        """Set ``rec``'s ``kind`` timer to ``at``, replacing any earlier one."""
        if rec.timers[kind] < 0:
            self._live += 1
        seq = next(self._seq)
        rec.timers[kind] = seq
        heap = self._heap
        heapq.heappush(heap, (at, seq, kind, rec))
        if len(heap) > 2 * self._live + 32:
            self._compact()

    def disarm(self, rec: R, kind: int) -> None:
        """Cancel ``rec``'s ``kind`` timer, if set; its entry goes stale."""
        if rec.timers[kind] >= 0:
            rec.timers[kind] = -1
            self._live -= 1
            if len(self._heap) > 2 * self._live + 32:
                self._compact()

    def disarm_all(self, rec: R) -> None:
        """Cancel every timer of ``rec`` (it is leaving)."""
        for kind in range(len(rec.timers)):
            self.disarm(rec, kind)

    def pop_due(self, now: float) -> list[tuple[float, int, R]]:
        """Disarm and return the live timers due at or before ``now``, in time order.

        They are all taken before any is acted on, so a timer set again at
        once (a time so large that adding an interval rounds to nothing)
        waits for the next call instead of looping.
        """
        heap, due = self._heap, []
        while heap and heap[0][0] <= now:
            at, seq, kind, rec = heapq.heappop(heap)
            if rec.timers[kind] == seq:
                rec.timers[kind] = -1
                self._live -= 1
                due.append((at, kind, rec))
        return due

    def next_at(self) -> float | None:
        """When the earliest live timer is due, ``None`` if there is none."""
        heap = self._heap
        while heap and heap[0][3].timers[heap[0][2]] != heap[0][1]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def shift(self, delta: float) -> None:
        """Move every timer by ``delta`` seconds (a new clock); order is kept."""
        self._heap = [(at + delta, seq, kind, rec) for at, seq, kind, rec in self._heap]

    def _compact(self) -> None:
        self._heap = [entry for entry in self._heap if entry[3].timers[entry[2]] == entry[1]]
        heapq.heapify(self._heap)

    def __len__(self) -> int:
        return self._live

    def _check(self) -> None:
        live = [e for e in self._heap if e[3].timers[e[2]] == e[1]]
        assert len(live) == self._live, (len(live), self._live)
        assert len(self._heap) <= 2 * self._live + 32, (len(self._heap), self._live)

    def __repr__(self) -> str:
        return f"Timers(live={self._live}, entries={len(self._heap)})"


class Outbox:
    """Changes waiting to be delivered, each with the subscribers it goes to.

    ``put`` is called under the owner's lock; ``flush`` after it is released.
    One thread delivers at a time, in order; a change queued while another
    thread (or a callback of this one) is delivering is delivered by that
    delivery loop, so callbacks never wait for one another and never nest.
    ``listeners`` get every change (a Pool's ``on_change``). A callback that
    raises loses no change for the others (see :meth:`flush`).

    >>> import enum
    >>> E = enum.Enum("E", "X Y")
    >>> box, seen = Outbox(), []
    >>> box.put([StateChange("a", E.X, E.Y, 1.0)], [seen.append])
    >>> box.flush(); [c.server for c in seen]
    ['a']

    Complexity: ``put`` O(k) for k changes; ``flush`` O(k x callbacks).
    """

    __slots__ = ("_delivering", "_queue", "listeners")

    def __init__(self) -> None:
        self._queue: deque[tuple[StateChange, list[Callback]]] = deque()
        self._delivering = threading.Lock()
        self.listeners: list[Callback] = []

    def put(self, changes: list[StateChange], subscribers: list[Callback]) -> None:
        for change in changes:
            self._queue.append((change, subscribers))

    def flush(self) -> None:
        """Deliver every queued change, unless another delivery loop is running.

        Every change reaches every callback, even when one of them raises: the
        first ``Exception`` is kept and raised once the queue is empty (the
        later ones are dropped; a ``BaseException`` such as ``KeyboardInterrupt``
        stops the loop at once, and what is still queued goes out next time).
        """
        queue = self._queue
        error: Exception | None = None
        while queue:
            if not self._delivering.acquire(blocking=False):
                break  # the running loop delivers ours too
            try:
                while queue:
                    change, subscribers = queue.popleft()
                    for callback in (*self.listeners, *subscribers):
                        try:
                            callback(change)
                        except Exception as exc:  # the others still get this change
                            if error is None:
                                error = exc
            finally:
                self._delivering.release()
        if error is not None:
            raise error

    def __len__(self) -> int:
        return len(self._queue)

    def __repr__(self) -> str:
        return f"Outbox(queued={len(self._queue)}, listeners={len(self.listeners)})"


class Machine(abc.ABC, Generic[R]):
    """Records, time, pending changes and subscribers of one clocked state machine.

    Subclasses keep their records in ``self._records`` and implement
    ``_advance(now)`` (fire the timers due, return the changes) and
    ``_shift(delta)`` (move every stored time onto a new clock).
    """

    _name = "Machine"

    def __init__(self, clock: Clock | None) -> None:
        if clock is not None:
            check_callable("clock", clock)
        self._clock: Clock = monotonic if clock is None else clock
        self._clock_explicit = clock is not None
        self._lock = threading.Lock()
        self._records: dict[str, R] = {}
        self._seq = itertools.count()
        self._pending: list[StateChange] = []
        self._subscribers: list[Callback] = []
        self._outbox = Outbox()
        self._owned = False  # joined to a Pool
        # Tells the Pool of a change made here; weak, so that a Pool and its
        # components make no reference cycle (they are freed without the collector).
        self._nudge: weakref.WeakMethod[Callable[[], None]] | None = None
        self._now = -math.inf

    # -- membership -------------------------------------------------------------

    @property
    def servers(self) -> tuple[str, ...]:
        """The servers, in insertion order. O(n)."""
        with self._lock:
            return tuple(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, server: object) -> bool:
        return server in self._records

    def _lookup(self, server: str) -> R:
        rec = self._records.get(server)
        if rec is None:
            raise UnknownServer(server)
        return rec

    # -- time -------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        """The clock every deadline is measured on."""
        return self._clock

    def _read_clock(self) -> float:
        """The clock, checked, and never earlier than the last reading (lock held)."""
        now = check_time(self._clock())
        if now < self._now:
            return self._now
        self._now = now
        return now

    def _at(self, now: float) -> float:
        """Take ``now`` from an owner that read the clock (lock held)."""
        if now < self._now:
            return self._now
        self._now = now
        return now

    def _tick(self) -> float:
        """Read the clock and fire the timers due (lock held, standalone use)."""
        now = self._read_clock()
        fired = self._advance(now)
        if fired:
            self._pending.extend(fired)
            self._emit(fired)
            self._tell_owner()
        return now

    def _call(self, act: Callable[[float], T]) -> T:
        """One public call used standalone: under the lock, read the clock and fire the
        timers due, then ``act(now)``; the changes go out after the lock is released."""
        with self._lock:
            result = act(self._tick())
        self._outbox.flush()
        return result

    def _call_on(self, server: str, act: Callable[[R, float], T]) -> T:
        """:meth:`_call` for one member: an unknown server is refused before the clock
        is read, so a refused call changes nothing."""
        with self._lock:
            rec = self._lookup(server)
            result = act(rec, self._tick())
        self._outbox.flush()
        return result

    def _event_on(self, server: str, act: Callable[[R, float], C]) -> C:
        """:meth:`_call_on` for a transition: its change, if any, is delivered too."""

        def event(rec: R, now: float) -> C:
            change = act(rec, now)
            self._emit_one(change)
            return change

        return self._call_on(server, event)

    @abc.abstractmethod
    def _advance(self, now: float) -> list[StateChange]:
        """Fire the component's timers due at ``now`` (lock held); the changes they made."""

    @abc.abstractmethod
    def _shift(self, delta: float) -> None:
        """Move every pending time of the component by ``delta`` (adopting another clock)."""

    def _adopt_clock(self, clock: Clock) -> None:
        """Share a Pool's clock, moving every pending time onto it.

        Raises:
            ValueError: this machine was created with a different clock; or
                either clock returned a bad reading (nothing changes then).
        """
        if clock is self._clock:
            return
        if self._clock_explicit:
            raise ValueError(
                f"{self._name} has its own clock {self._clock!r}, not the pool's {clock!r}"
            )
        with self._lock:
            ours = self._read_clock()
            delta = check_time(clock()) - ours
            self._clock = clock
            self._now += delta
            self._shift(delta)

    def _join(self, lock: threading.Lock, outbox: Outbox, nudge: Callable[[], None]) -> None:
        """Be part of a Pool: its lock guards this machine, its outbox delivers our
        events, and ``nudge`` tells it of a change made by a call on us directly."""
        self._lock = lock
        self._outbox = outbox
        self._nudge = weakref.WeakMethod(nudge)
        self._owned = True

    # -- events -----------------------------------------------------------------

    def _emit(self, changes: list[StateChange]) -> None:
        """Queue changes for this machine's subscribers (and its Pool's ``on_change``).

        Internal steps never emit; the public method (or the Pool) that
        called them emits what they returned, once.
        """
        self._outbox.put(changes, self._subscribers)

    def _emit_one(self, change: StateChange | None) -> None:
        """Queue the change a public call of this machine caused (and tell its Pool)."""
        if change is not None:
            self._outbox.put([change], self._subscribers)
            self._tell_owner()

    def _tell_owner(self) -> None:
        nudge = None if self._nudge is None else self._nudge()
        if nudge is not None:
            nudge()

    def poll(self) -> list[StateChange]:
        """The time-driven changes since the last poll, in time order.

        Changes returned by other calls are not repeated here. O(k log n)
        for k timers passed.
        """
        with self._lock:
            self._tick()
            changes, self._pending = self._pending, []
        self._outbox.flush()
        return changes

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(change)`` for every transition; return a function that unsubscribes.

        Callbacks run after every lock is released (so they may call any
        public method, of this machine or of the Pool that owns it), one
        change at a time and in order. They should not raise; if one does,
        every change still reaches every other callback, and the first
        exception propagates to the call that delivered it once the queue is
        empty (after that call's own work is done). Return values (and a
        Pool's ``on_change``) remain the primary channel. O(1); unsubscribing
        twice is harmless.

        Raises:
            TypeError: ``callback`` is not callable (nothing is registered).
        """
        check_callable("callback", callback)
        with self._lock:
            # Copy on write: a queued change keeps the list it was queued with.
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    remaining = list(self._subscribers)
                    remaining.remove(callback)
                    self._subscribers = remaining

        return unsubscribe
