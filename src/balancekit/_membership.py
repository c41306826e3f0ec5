"""The Pool's membership: servers join, leave and change weight, by hand or by discovery.

A part of :class:`balancekit.pool.Pool` kept apart (a mixin) so that each
module holds one idea: here every change of membership, each done in one
operation under the pool's lock (see docs/pool.md, "Discovery").
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._machine import Outbox
from .drain import Drainer, DrainState
from .errors import DuplicateServer, UnknownServer
from .events import StateChange
from .health import HealthTracker
from .sticky import StickySession
from .strategies.base import Balancer
from .validate import check_server, check_weight, parse_servers

__all__ = ["Membership"]

_ACTIVE = DrainState.ACTIVE


class _Record:
    """The Pool's per-server bookkeeping (one per membership: a re-added server is new)."""

    __slots__ = (
        "abandoned",
        "effective",
        "errors",
        "latency_max",
        "latency_sum",
        "overflows",
        "requests",
        "since",
        "weight",
    )

    def __init__(self, weight: float, effective: float, since: float) -> None:
        self.weight = weight  # as configured by the user
        self.effective = effective  # as last given to the strategy
        self.since = since  # when it last became eligible: the start of its ramp
        self.requests = 0
        self.errors = 0
        self.latency_sum = 0.0
        self.latency_max = 0.0
        self.abandoned = 0
        self.overflows = 0


class Membership:
    """Adding, removing and reweighting servers, and reconciling with discovery."""

    _lock: threading.Lock
    _strategy: Balancer
    _health: HealthTracker | None
    _drainer: Drainer
    _sticky: StickySession | None
    _records: dict[str, _Record]
    _leaving: set[str]
    _full: set[str]
    _joining: dict[str, None]
    _gone: dict[str, None]
    _outbox: Outbox

    if TYPE_CHECKING:  # the pool's own steps

        def _begin(self, *, refreshes: bool = False) -> float: ...

        def _refresh(self, now: float) -> None: ...

        def _changed(
            self, changes: list[StateChange], now: float, *, poll: bool = True
        ) -> None: ...

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
            now = self._begin(refreshes=True)
            if server in self._records:
                raise DuplicateServer(server)
            self._strategy._admit({**self._configured(), server: value})
            joined = self._register(server, now)
            self._join(server, value, now)  # the refresh adds it to the strategy
            try:
                self._refresh(now)
            except BaseException:
                # A strategy whose _admit did not foresee the refusal: undo the
                # join everywhere, then re-push the weights it had accepted.
                self._leave(server)
                self._unregister(server, joined)
                self._refresh(now)
                raise
        self._outbox.flush()

    def remove_server(self, server: str) -> None:
        """Remove a server everywhere; its open leases may still be released.

        Raises:
            UnknownServer: it is not a member.
        """
        with self._lock:
            now = self._begin(refreshes=True)
            if server not in self._records:
                raise UnknownServer(server)
            self._remove(server)
            self._refresh(now)
        self._outbox.flush()

    def _join(self, server: str, weight: float, now: float) -> None:
        """A new member (lock held); the next ``_refresh`` adds it to the strategy,
        with every other change of the operation, in one batch."""
        self._records[server] = _Record(weight, 0.0, now)
        self._joining[server] = None

    def _leave(self, server: str) -> None:
        """Forget ``server`` (lock held); the next ``_refresh`` removes it from the
        strategy, with every other change of the operation, in one batch."""
        del self._records[server]
        self._leaving.discard(server)
        self._full.discard(server)
        if server in self._joining:
            del self._joining[server]  # never reached the strategy
        else:
            self._gone[server] = None

    def _remove(self, server: str) -> None:
        self._leave(server)
        self._unregister(server, [self._health, self._drainer, self._sticky])

    def update(self, servers: Mapping[str, float] | Iterable[str]) -> list[StateChange]:
        """Reconcile the membership with a discovery result, in one step; return the changes.

        ``servers`` is the whole current membership: a mapping ``{id: weight}``
        (weights apply) or an iterable of ids (new ones get weight 1, known
        ones keep theirs). New servers join (and slow-start); a server no
        longer listed is drained: at once when nothing is in flight on it
        (it goes DRAINED and leaves), else with the drainer's timeout, and it
        leaves when drained or at its deadline. A leaving server listed again
        returns to service. The drains and returns are the changes returned
        (and go to ``on_change``).

        >>> from balancekit import ManualClock, Pool, RoundRobin
        >>> pool = Pool(RoundRobin(["a", "b", "c"]), clock=ManualClock())
        >>> lease = pool.acquire()              # "a" is busy
        >>> [(c.server, c.new.value) for c in pool.update({"b": 1, "d": 2})]
        [('a', 'draining'), ('c', 'drained')]
        >>> sorted(pool.servers.items())        # "c" was idle: gone at once
        [('a', 1.0), ('b', 1.0), ('d', 2.0)]
        >>> lease.release(); "a" in pool        # "a" leaves with its last lease
        True
        False

        Complexity: O(n) plus one batch for the strategy (joins, departures
        and weights together, :meth:`Balancer._update_members`): at most one
        rebuild, however many servers join or leave. Thread-safe.

        Raises:
            TypeError, ValueError: a bad id or weight, a repeated id, or weights
                the strategy cannot hold (``_admit``); nothing changes then.
        """
        weights = parse_servers(servers)
        explicit = isinstance(servers, Mapping)
        with self._lock:
            now = self._begin(refreshes=True)
            records, drainer = self._records, self._drainer
            target = {s: r.weight for s, r in records.items()}
            for server, weight in weights.items():
                if explicit or server not in records:
                    target[server] = weight
            self._strategy._admit(target)
            changes: list[StateChange] = []
            for server, weight in weights.items():
                record = records.get(server)
                if record is None:
                    self._register(server, now)
                    self._join(server, weight, now)
                    continue
                record.weight = target[server]
                if server in self._leaving:  # listed again: back in service
                    self._leaving.discard(server)
                    rec = drainer._records[server]
                    if rec.state is not _ACTIVE:
                        changes.append(drainer._cancel(rec, now))
            for server in [s for s in records if s not in weights]:
                rec = drainer._records[server]
                self._leaving.add(server)
                if rec.state is _ACTIVE:
                    # Idle: DRAINED at once (timeout 0), and the change removes it.
                    timeout = drainer.timeout if rec.in_flight else 0.0
                    changes.append(drainer._drain(rec, timeout, now))
                elif rec.in_flight == 0 or rec.state is DrainState.DRAINED:
                    self._remove(server)  # drained already, or idle in a drain of yours
                # else DRAINING with leases open: it leaves when drained
            self._changed(changes, now, poll=False)
            self._refresh(now)
        self._outbox.flush()
        return changes

    def set_weight(self, server: str, weight: float) -> None:
        """Change a server's configured weight (the Pool derives the effective one).

        Raises:
            UnknownServer: it is not a member. TypeError, ValueError: a bad weight.
        """
        value = check_weight(weight)
        with self._lock:
            now = self._begin(refreshes=True)
            record = self._records.get(server)
            if record is None:
                raise UnknownServer(server)
            self._strategy._admit({**self._configured(), server: value})
            old, record.weight = record.weight, value
            try:
                self._refresh(now)
            except BaseException:
                record.weight = old  # refused after all (see add_server): keep the old one
                self._refresh(now)
                raise
        self._outbox.flush()

    def _configured(self) -> dict[str, float]:
        return {server: record.weight for server, record in self._records.items()}

    def _register(self, server: str, now: float) -> list[Any]:
        """Add ``server`` to every component lacking it; returns those it was added to."""
        done: list[Any] = []
        try:
            if self._health is not None and server not in self._health:
                self._health._add(server, now)
                done.append(self._health)
            if server not in self._drainer:
                self._drainer._add(server)
                done.append(self._drainer)
            if self._sticky is not None and server not in self._sticky:
                self._sticky.add_server(server)
                done.append(self._sticky)
        except BaseException:
            self._unregister(server, done)
            raise
        return done

    def _unregister(self, server: str, components: list[Any]) -> None:
        for component in components:
            if component is not None and server in component:
                if isinstance(component, StickySession):
                    component.remove_server(server)  # its own lock: membership only
                else:
                    component._remove(server)

    @property
    def servers(self) -> Mapping[str, float]:
        """A snapshot of the configured weights ``{server: weight}``. O(n)."""
        with self._lock:
            return self._configured()

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, server: object) -> bool:
        return server in self._records
