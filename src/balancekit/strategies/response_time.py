"""LeastResponseTime: peak-EWMA latency times open requests, as Finagle and Linkerd."""

from __future__ import annotations

import math
from typing import Any

from ..clock import Clock
from ..errors import UnknownServer
from .base import Balancer, Member, Servers

__all__ = ["LeastResponseTime"]


class _Estimate:
    """One server's latency estimate, the time it was last updated, its last pick."""

    __slots__ = ("member", "picked", "rtt", "stamp")

    def __init__(self, member: Member, rtt: float, stamp: float, picked: int) -> None:
        self.member = member
        self.rtt = rtt
        self.stamp = stamp
        self.picked = picked

    def __repr__(self) -> str:
        return (
            f"_Estimate({self.member.server!r}, rtt={self.rtt!r}, "
            f"stamp={self.stamp!r}, picked={self.picked})"
        )


def _option(name: str, value: object, *, positive: bool) -> float:
    bound = "> 0" if positive else ">= 0"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a finite number {bound}, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


class LeastResponseTime(Balancer):
    """The server with the lowest expected wait: peak-EWMA latency x (in-flight + 1) / weight.

    Each server keeps a latency estimate ``e`` (seconds) and the time
    ``t_prev`` it was last updated; a server starts at ``default_rtt`` when
    it is added. When a lease closes with latency ``rtt`` at time ``t``:

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
    otherwise look like the fastest one and attract more traffic. Every
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

    Complexity: a pick scans the servers, O(n) (with an ``exp`` each); a
    release, ``load`` and membership or weight changes O(1); memory O(n).
    For thousands of servers prefer :class:`PowerOfTwoChoices`, whose O(1)
    pick ignores latency.

    Raises:
        TypeError: an option is not a number (``bool`` included).
        ValueError: ``decay`` not finite and > 0; ``default_rtt`` or
            ``failure_penalty`` not finite and >= 0.
    """

    def __init__(
        self,
        servers: Servers = (),
        *,
        decay: float = 10.0,
        default_rtt: float = 0.030,
        failure_penalty: float = 0.3,
        clock: Clock | None = None,
    ) -> None:
        self._decay = _option("decay", decay, positive=True)
        self._default_rtt = _option("default_rtt", default_rtt, positive=False)
        self._failure_penalty = _option("failure_penalty", failure_penalty, positive=False)
        self._estimates: dict[Member, _Estimate] = {}
        self._tick = 0
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
        now = self._clock()
        old = self._estimates
        self._estimates = {m: old.get(m) or self._fresh(m, now) for m in self._members.values()}

    def _fresh(self, member: Member, now: float) -> _Estimate:
        self._tick += 1
        return _Estimate(member, self._default_rtt, now, self._tick)

    def _added(self, member: Member) -> None:
        self._estimates[member] = self._fresh(member, self._clock())

    def _removed(self, member: Member) -> None:
        del self._estimates[member]

    def _reweighted(self, member: Member, old: float) -> None:
        return  # the weight is read at each pick

    def _choose(self, key: Any) -> Member:
        now = self._clock()
        exp = math.exp
        decay = self._decay
        best: _Estimate | None = None
        best_load = math.inf
        best_picked = self._tick + 1
        for est in self._estimates.values():
            member = est.member
            weight = member.weight
            if weight <= 0:
                continue
            # A clock that stood still or an estimate updated "later" reads as no decay.
            age = now - est.stamp
            decayed = est.rtt * exp(-age / decay) if age > 0 else est.rtt
            load = decayed * (member.in_flight + 1) / weight
            if load < best_load or (load == best_load and est.picked < best_picked):
                best, best_load, best_picked = est, load, est.picked
        if best is None:
            raise self._unavailable()
        self._tick += 1
        best.picked = self._tick
        return best.member

    def _released(self, member: Member, latency: float, ok: bool, now: float) -> None:
        est = self._estimates[member]
        rtt = latency if ok else max(latency, self._failure_penalty)
        if rtt > est.rtt:
            est.rtt = rtt
        else:
            age = now - est.stamp
            keep = math.exp(-age / self._decay) if age > 0 else 1.0
            # This form leaves the estimate exactly unchanged when rtt == e.
            est.rtt += (rtt - est.rtt) * (1.0 - keep)
        est.stamp = now

    def load(self, server: str) -> float:
        """Decayed latency estimate x (in-flight + 1) / weight, at the clock's now. O(1).

        A server of weight 0 has infinite load (it must get nothing).

        Raises:
            UnknownServer: the server is not a member.
        """
        now = self._clock()
        with self._lock:
            member = self._members.get(server)
            if member is None:
                raise UnknownServer(server)
            if member.weight <= 0:
                return math.inf
            est = self._estimates[member]
            age = now - est.stamp
            decayed = est.rtt * math.exp(-age / self._decay) if age > 0 else est.rtt
            return decayed * (member.in_flight + 1) / member.weight

    def _check(self) -> None:
        """Assert the base invariants and one sane estimate per member."""
        super()._check()
        assert set(self._estimates) == set(self._members.values())
        ticks = set()
        for member, est in self._estimates.items():
            assert est.member is member, (member, est)
            assert math.isfinite(est.rtt) and est.rtt >= 0, est
            assert math.isfinite(est.stamp), est
            assert 0 < est.picked <= self._tick, (est, self._tick)
            ticks.add(est.picked)
        assert len(ticks) == len(self._estimates), "two servers share a tie-break tick"
