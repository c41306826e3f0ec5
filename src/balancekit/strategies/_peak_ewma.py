"""The peak-EWMA latency estimate of one server, shared by the latency-aware strategies.

Finagle's, Linkerd's and tower's load metric. Each server keeps an estimate
``e`` (seconds) and the time ``t_prev`` it was last updated. A sample ``rtt``
at time ``t``:

- if ``rtt > e``, the estimate jumps to ``rtt`` (the *peak*: a server that
  slows down is avoided at once);
- otherwise it moves toward ``rtt`` by ``1 - exp(-(t - t_prev) / decay)``.

Between samples the reading ``e * exp(-(now - t_prev) / decay)`` decays toward
0, so a server that stopped getting traffic is tried again. The load of a
server is that reading times ``(in_flight + 1) / weight``. Since every reading
decays by the same factor, the order of two loads never changes with time
alone: comparing ``log e + t_prev / decay + log((in_flight + 1) / weight)``
needs no clock (:meth:`Estimate.log_key`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Container, Iterable

from .base import Member

__all__ = ["Estimate", "carry_over", "check_option"]


def check_option(name: str, value: object, *, positive: bool) -> float:
    """A finite number ``> 0`` (``positive``) or ``>= 0``, ``bool`` excluded. O(1).

    >>> check_option("decay", 0, positive=True)
    Traceback (most recent call last):
    ...
    ValueError: decay must be a finite number > 0, got 0
    """
    bound = "> 0" if positive else ">= 0"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a finite number {bound}, got {value!r}")
    # NaN fails every comparison; an int beyond the largest float is refused, not overflowed.
    if not 0 <= value <= sys.float_info.max or (positive and value == 0):
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


class Estimate:
    """One server's peak-EWMA latency estimate and the time it was last updated.

    >>> est = Estimate(Member("a", 1.0), rtt=0.030, stamp=0.0)
    >>> est.observe(0.200, ok=True, now=1.0, decay=10.0, penalty=0.0)   # slower: the peak
    >>> est.rtt
    0.2
    >>> round(est.reading(now=11.0, decay=10.0), 4)                      # one decay later
    0.0736

    All methods O(1).
    """

    __slots__ = ("member", "rtt", "stamp")

    def __init__(self, member: Member, rtt: float, stamp: float) -> None:
        self.member = member
        self.rtt = rtt
        self.stamp = stamp

    def observe(
        self, latency: float, *, ok: bool | None, now: float, decay: float, penalty: float
    ) -> None:
        """Take a sample: ``latency``, or ``max(latency, penalty)`` for a failure.

        An abandoned request (``ok=None``) is a plain sample: the caller gave
        up, which says nothing against the server.
        """
        rtt = max(latency, penalty) if ok is False else latency
        if rtt > self.rtt:
            self.rtt = rtt
        else:
            age = now - self.stamp
            keep = math.exp(-age / decay) if age > 0 else 1.0
            # This form leaves the estimate exactly unchanged when rtt == e.
            self.rtt += (rtt - self.rtt) * (1.0 - keep)
        self.stamp = now

    def restart(self, rtt: float, now: float) -> None:
        """Forget the past: the estimate is ``rtt`` as of ``now`` (a fresh start)."""
        self.rtt = rtt
        self.stamp = now

    def reading(self, now: float, decay: float) -> float:
        """The estimate decayed to ``now``."""
        age = now - self.stamp
        return self.rtt * math.exp(-age / decay) if age > 0 else self.rtt

    def log_key(self, origin: float, decay: float) -> float:
        """``log(load)`` at time ``origin``, up to the same constant for every server.

        ``-inf`` when the estimate is 0 (load 0 whatever the open leases).
        """
        member = self.member
        if self.rtt <= 0:
            return -math.inf
        scale = math.log((member.in_flight + 1) / member.weight)
        return math.log(self.rtt) + (self.stamp - origin) / decay + scale

    def load(self, now: float, decay: float) -> float:
        """The server's load at ``now``: reading x (in-flight + 1) / weight; inf at weight 0."""
        member = self.member
        if member.weight <= 0:
            return math.inf
        return self.reading(now, decay) * (member.in_flight + 1) / member.weight

    def __repr__(self) -> str:
        return f"Estimate({self.member.server!r}, rtt={self.rtt!r}, stamp={self.stamp!r})"


def carry_over(
    old: dict[Member, Estimate],
    members: Iterable[Member],
    eligible_before: Container[Member],
    default_rtt: float,
    now: float,
) -> dict[Member, Estimate]:
    """The estimates after a rebuild: kept for the members that stay, ``default_rtt``
    dated ``now`` for new ones, and a fresh start for those whose weight went from
    0 to positive (not in ``eligible_before``). O(n)."""
    estimates: dict[Member, Estimate] = {}
    for member in members:
        est = old.get(member)
        if est is None:
            est = Estimate(member, default_rtt, now)
        elif member.weight > 0 and member not in eligible_before:
            est.restart(default_rtt, now)
        estimates[member] = est
    return estimates
