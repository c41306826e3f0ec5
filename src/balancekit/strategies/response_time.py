"""LeastResponseTime: peak-EWMA latency times open requests, after Finagle and Linkerd.

Unlike theirs, a reading of the load never changes the estimate (see
docs/strategies/response-time.md for the one consequence).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Set
from math import log
from typing import Any

from ..clock import Clock
from ..errors import UnknownServer
from ..lease import Lease, LeaseOwner
from ..validate import check_time
from ._peak_ewma import Estimate, carry_over, check_option
from .base import Balancer, Member, Servers

__all__ = ["LeastResponseTime"]

_Entry = tuple[float, int, Member, float]
"""A heap entry: (log load at the origin, tie-break tick, member, log of the member's
reading at the origin); live while it is the member's entry in ``_live``, stale once
superseded. Ticks are unique, so entries compare by their first two fields."""

_REBASE = float(1 << 20)
"""Decay periods after which heap keys are re-based to keep their precision."""


class LeastResponseTime(Balancer):
    """The server with the lowest expected wait: peak-EWMA latency x (in-flight + 1) / weight.

    Each server keeps a latency estimate ``e`` (seconds) and the time
    ``t_prev`` it was last updated; a server starts at ``default_rtt`` when
    it is added, and starts afresh (``default_rtt`` as of now) when its
    weight goes from 0 to positive, so that a server back from an ejection
    is not starved by a penalty it earned before it went down. When a lease
    closes with latency ``rtt`` at time ``t``:

    - if ``rtt > e`` the estimate jumps to ``rtt`` (the *peak*: a server
      that slows down is avoided at once);
    - otherwise it moves toward ``rtt`` by ``1 - exp(-(t - t_prev) / decay)``,
      so a long-idle estimate is mostly replaced and a recent one barely moves.

    ``load(server)`` at time ``now`` is
    ``e * exp(-(now - t_prev) / decay) * (in_flight + 1) / weight``: between
    updates the reading decays toward 0, so a server that stopped getting
    traffic (after one slow answer, say) is tried again. Reading never
    changes the estimate. A failed lease (``ok=False``) is recorded as the
    latency ``max(rtt, failure_penalty)``: a server that fails fast would
    otherwise look like the fastest one and attract more traffic. An
    abandoned lease (``ok=None``) is recorded as its elapsed time, a lower
    bound of its latency, without the penalty. Every
    pick is a server of minimum load among those of weight > 0; among equal
    loads the server picked least recently goes first.

    >>> from balancekit.clock import ManualClock
    >>> clock = ManualClock()
    >>> lb = LeastResponseTime(["a", "b"], decay=1.0, default_rtt=0.02, clock=clock)
    >>> lease = lb.acquire()
    >>> clock.advance(0.2)
    0.2
    >>> lease.release()
    True
    >>> round(lb.load("a"), 3), lb.get_server()   # a answered slowly: b
    (0.2, 'b')

    Complexity: every reading decays by the same factor
    ``exp(-elapsed / decay)``, so the order of the servers' loads changes
    only when a lease opens or closes, never by the passing of time alone.
    The servers therefore sit in a ``heapq`` keyed by the logarithm of their
    load at a fixed reference time (a change pushes a new entry and leaves
    the old one stale, dropped when it surfaces or at a compaction once the
    heap holds twice the servers), and ``get_server``, ``acquire``, a
    release and membership or weight changes are O(log n) amortised (no
    per-pick scan of n ``exp`` calls); ``load`` O(1); memory O(n). After
    2**20 decay periods the keys are re-based, one O(n) step, so that they
    keep their precision.

    Raises:
        TypeError: an option is not a number (``bool`` included).
        ValueError: ``decay`` not finite and > 0; ``default_rtt`` or
            ``failure_penalty`` not finite and >= 0.
    """

    _incremental = True  # set_weights: a few servers move in the heap

    def __init__(
        self,
        servers: Servers = (),
        *,
        decay: float = 10.0,
        default_rtt: float = 0.030,
        failure_penalty: float = 0.3,
        clock: Clock | None = None,
    ) -> None:
        self._decay = check_option("decay", decay, positive=True)
        self._default_rtt = check_option("default_rtt", default_rtt, positive=False)
        self._failure_penalty = check_option("failure_penalty", failure_penalty, positive=False)
        super().__init__(servers, clock=clock)

    @property
    def decay(self) -> float:
        """Seconds for the estimate to fall to 1/e of itself without new samples."""
        return self._decay

    @property
    def default_rtt(self) -> float:
        """The estimate a server starts with, in seconds."""
        return self._default_rtt

    @property
    def failure_penalty(self) -> float:
        """The least latency a failed request counts as, in seconds."""
        return self._failure_penalty

    def _options(self) -> dict[str, object]:
        return {
            "decay": self._decay,
            "default_rtt": self._default_rtt,
            "failure_penalty": self._failure_penalty,
        }

    def _rebuild(self) -> None:
        now = self._time()
        old: dict[Member, Estimate] = getattr(self, "_estimates", {})
        live = getattr(self, "_live", ())
        self._estimates = carry_over(old, self._members.values(), live, self._default_rtt, now)
        self._rebase(now)

    def _rebase(self, origin: float) -> None:
        # Keys are log(load) at time `origin`: log e + (t_prev - origin) / decay
        # + log((in_flight + 1) / weight). The middle term grows with time and
        # eats the key's precision, so every 2**20 decays it restarts near 0.
        self._origin = origin
        self._tick = 0
        self._live: dict[Member, _Entry] = {}
        for est in self._estimates.values():
            if est.member.weight > 0:
                self._tick += 1
                self._live[est.member] = self._entry(est, self._tick)
        self._heap = list(self._live.values())
        heapq.heapify(self._heap)

    def _entry(self, est: Estimate, tick: int) -> _Entry:
        """The heap entry of ``est`` as it stands, with ``tick``."""
        member = est.member
        rtt = est.rtt
        # The same sum, in the same order, as Estimate.log_key: equal to the bit.
        reading = log(rtt) + (est.stamp - self._origin) / self._decay if rtt > 0 else -math.inf
        return (reading + log((member.in_flight + 1) / member.weight), tick, member, reading)

    def _set(self, entry: _Entry) -> None:
        # A new entry supersedes the member's old one, which goes stale in the
        # heap. When the member's entry is on top (the server just picked)
        # the new one takes its place in one C call.
        member = entry[2]
        self._live[member] = entry
        heap = self._heap
        if heap[0][2] is member:
            # heapq.heapreplace always sifts down to a leaf and back; the new
            # key is often still the least (distinct loads, a new tick), which
            # two comparisons settle.
            end = len(heap)
            if (end > 1 and heap[1] < entry) or (end > 2 and heap[2] < entry):
                heapq.heapreplace(heap, entry)
            else:
                heap[0] = entry
        else:
            heapq.heappush(heap, entry)
            if len(heap) > 2 * len(self._live) + 32:
                self._heap = list(self._live.values())
                heapq.heapify(self._heap)

    def _update(self, est: Estimate, picked: bool) -> None:
        """Re-key ``est`` after a change; ``picked`` makes it the newest pick."""
        entry = self._live.get(est.member)
        if entry is None:
            return  # weight 0, or a removed member's late release
        if (est.stamp - self._origin) / self._decay > _REBASE:
            self._rebase(est.stamp)
            return
        if picked:
            self._tick += 1
            tick = self._tick
        else:
            tick = entry[1]
        self._set(self._entry(est, tick))

    def _added(self, member: Member) -> None:
        est = Estimate(member, self._default_rtt, self._time())
        self._estimates[member] = est
        if member.weight > 0:
            self._push(est)

    def _push(self, est: Estimate) -> None:
        self._tick += 1
        entry = self._entry(est, self._tick)
        self._live[est.member] = entry
        heapq.heappush(self._heap, entry)

    def _removed(self, member: Member) -> None:
        del self._estimates[member]
        self._live.pop(member, None)  # its entry goes stale

    def _reweighted(self, member: Member, old: float) -> None:
        if member.weight == 0:
            del self._live[member]  # old > 0: set_weight skips no-op changes
        elif member in self._live:
            self._update(self._estimates[member], picked=False)
        else:
            # Back from weight 0: a fresh start, so that a penalty or a slow
            # answer from before it went away does not starve it now.
            est = self._estimates[member]
            est.restart(self._default_rtt, self._time())
            self._push(est)

    def _choose(self, key: Any) -> Member:
        """The member of the live entry of least key, stale ones popped on the way.

        O(log n) amortised: each stale entry is popped once.
        """
        heap, live = self._heap, self._live
        while heap:
            entry = heap[0]
            if live.get(entry[2]) is entry:
                return entry[2]
            heapq.heappop(heap)
        raise self._unavailable()

    def _take(self, opened: bool) -> Member:
        """The least loaded member, made the newest pick; ``opened`` also counts a
        lease on it. O(log n) amortised.

        The pick path of get_server and acquire in one call: _choose, then
        _update(picked=True) for the top (its reading is unchanged, so the
        new key needs no estimate), written out because it runs on every
        request.
        """
        heap, live = self._heap, self._live
        while heap:
            entry = heap[0]
            member = entry[2]
            if live.get(member) is entry:
                break
            heapq.heappop(heap)
        else:
            raise self._unavailable()
        reading = entry[3]
        if opened:
            member.in_flight += 1
            key = reading + log((member.in_flight + 1) / member.weight)
        else:
            key = entry[0]
        self._tick += 1
        entry = (key, self._tick, member, reading)
        live[member] = entry
        end = len(heap)  # as _set does for the top
        if (end > 1 and heap[1] < entry) or (end > 2 and heap[2] < entry):
            heapq.heapreplace(heap, entry)
        else:
            heap[0] = entry
        return member

    def _choose_other(self, key: Any, exclude: Set[str]) -> Member | None:
        # The least loaded server outside exclude: a best-first walk of the
        # heap array, O((k + s) log(k + s)) for the k excluded servers and
        # s stale entries that rank above it.
        heap, live = self._heap, self._live
        end = len(heap)
        frontier = [(heap[0], 0)] if heap else []
        while frontier:
            entry, i = heapq.heappop(frontier)
            member = entry[2]
            if live.get(member) is entry and member.server not in exclude:
                return member
            for child in (2 * i + 1, 2 * i + 2):
                if child < end:
                    heapq.heappush(frontier, (heap[child], child))
        return None

    def get_server(self, key: Any = None, exclude: Iterable[str] = ()) -> str:
        """The server of least load outside ``exclude``, without counting a request. O(log n).

        The pick moves the server behind its equals, so repeated calls
        rotate among servers that tie.

        Raises:
            NoServerAvailable: no member has a weight > 0.
            TypeError: a bad ``exclude`` (see :meth:`Balancer.get_server`).
        """
        with self._lock:
            if exclude:
                member = self._pick(key, exclude)
                self._update(self._estimates[member], picked=True)
                return member.server
            return self._take(False).server

    def _open(
        self,
        owner: LeaseOwner,
        key: Any,
        server: str | None,
        exclude: Iterable[str] = (),
        now: float | None = None,
    ) -> Lease:
        # Balancer._open with the plain pick in one call (_take); a pinned
        # server or an exclusion takes the general path, _acquired included.
        if server is not None or exclude:
            return super()._open(owner, key, server, exclude, now)
        if now is None:
            now = self._clock()
            if type(now) is not float or now - now != 0.0:  # the usual reading in one test
                now = check_time(now)
        with self._lock:
            member = self._take(True)
        return Lease(owner, member.server, now, member)

    def _acquired(self, member: Member, now: float) -> None:
        # _update(picked=True) without the estimate: opening a lease changes only
        # the count, so the reading in the entry stands (and so does the stamp
        # the rebase test reads).
        entry = self._live.get(member)
        if entry is not None:
            self._tick += 1
            reading = entry[3]
            key = reading + log((member.in_flight + 1) / member.weight)
            self._set((key, self._tick, member, reading))

    def _released(self, member: Member, latency: float | None, ok: bool | None, now: float) -> None:
        est = self._estimates[member]
        decay = self._decay
        if latency is not None:  # else no usable clock reading: re-key for the count only
            est.observe(latency, ok=ok, now=now, decay=decay, penalty=self._failure_penalty)
        # _update(est, picked=False), written out: this runs once per request.
        entry = self._live.get(member)
        if entry is None:
            return  # weight 0, or a removed member's late release
        age = est.stamp - self._origin
        if age / decay > _REBASE:
            self._rebase(est.stamp)
            return
        rtt = est.rtt
        reading = log(rtt) + age / decay if rtt > 0 else -math.inf  # as _entry
        key = reading + log((member.in_flight + 1) / member.weight)
        self._set((key, entry[1], member, reading))

    def load(self, server: str) -> float:
        """Decayed latency estimate x (in-flight + 1) / weight, at the clock's now. O(1).

        A server of weight 0 has infinite load (it must get nothing).

        Raises:
            UnknownServer: the server is not a member.
        """
        now = check_time(self._clock())
        with self._lock:
            member = self._members.get(server)
            if member is None:
                raise UnknownServer(server)
            return self._estimates[member].load(now, self._decay)

    def _check(self) -> None:
        """Assert the base invariants, one sane estimate per member, heap keys."""
        super()._check()
        assert set(self._estimates) == set(self._members.values())
        heap, live = self._heap, self._live
        for i in range(1, len(heap)):
            assert not heap[i] < heap[(i - 1) >> 1], (i, heap[i], heap[(i - 1) >> 1])
        in_heap = {id(entry) for entry in heap}
        ticks = set()
        for member, est in self._estimates.items():
            assert est.member is member, (member, est)
            assert math.isfinite(est.rtt) and est.rtt >= 0, est
            assert math.isfinite(est.stamp), est
            if member.weight > 0:
                entry = live[member]
                key, tick, owner, _ = entry
                assert owner is member and id(entry) in in_heap, (member, entry)
                expected = est.log_key(self._origin, self._decay)
                assert key == expected, (est, key, expected)
                assert entry == self._entry(est, tick), (entry, self._entry(est, tick))
                assert 0 < tick <= self._tick, (est, tick, self._tick)
                ticks.add(tick)
            else:
                assert member not in live, member
        assert len(ticks) == len(live), "two servers share a tie-break tick"
        assert len(heap) <= 2 * len(live) + 33, (len(heap), len(live))
