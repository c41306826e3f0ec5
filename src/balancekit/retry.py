"""RetryBudget: how many retries a client may send, as Finagle budgets them.

Retries multiply load exactly when a service is struggling: three attempts per
request can triple the traffic of a failing backend. A budget caps them at a
fraction of the requests, plus a small reserve for clients that send few
requests. Finagle's ``RetryBudget`` is the model, with its defaults:

- ``deposit()`` once per request (first attempts only);
- ``try_withdraw()`` once per retry: ``True`` spends one retry, ``False``
  means "do not retry" and changes nothing;
- every deposit and every withdrawal expires ``ttl`` seconds after it was
  made, so at time ``t`` the retries available are
  ``min_retries_per_second * ttl + ratio * D - W``, with ``D`` the deposits
  and ``W`` the withdrawals of the window ``(t - ttl, t]``.

Since a withdrawal needs one retry available, the retries in the ``ttl``
window ending at any retry number at most
``min_retries_per_second * ttl + ratio * requests`` of that window.

Finagle counts in integer tokens (1,000 per request, ``int(1000 / ratio)``
per retry) and expires them in ten slices of ``ttl``, so its figures are
within one retry of that formula and its expiry up to ``ttl / 10`` early;
here the arithmetic is exact up to float rounding (1e-9 of a retry), and an
event expires exactly ``ttl`` after it was made, except that events closer
than ``ttl / 1000`` to the first of a group share its expiry, which bounds
the memory to about 1,000 groups whatever the request rate.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque

from .clock import Clock, monotonic
from .validate import check_callable, check_range, check_time

__all__ = ["MAX_RETRIES_PER_SECOND", "RetryBudget"]

_GROUPS = 1000
"""Events within ``ttl / _GROUPS`` of a group's first share its expiry."""

_SLACK = 1e-9
"""Float rounding allowed in ``ratio * requests``: 0.29 * 100 is 28.999999999999996."""


class _Group:
    """Deposits and withdrawals made from ``start`` on, expiring at ``start + ttl``."""

    __slots__ = ("deposits", "start", "withdrawals")

    def __init__(self, start: float) -> None:
        self.start = start
        self.deposits = 0
        self.withdrawals = 0

    def __repr__(self) -> str:
        counts = f"deposits={self.deposits}, withdrawals={self.withdrawals}"
        return f"_Group(start={self.start!r}, {counts})"


MAX_RETRIES_PER_SECOND = 1e6
"""The largest ``min_retries_per_second``: a million retries a second is no budget at all."""


class RetryBudget:
    """A budget of retries: ``ratio`` of the requests plus a reserve, over a sliding ``ttl``.

    >>> from balancekit import ManualClock
    >>> clock = ManualClock()
    >>> budget = RetryBudget(ratio=0.2, min_retries_per_second=0, ttl=10, clock=clock)
    >>> for _ in range(10):
    ...     budget.deposit()
    >>> budget.balance                      # 20 % of 10 requests
    2
    >>> [budget.try_withdraw() for _ in range(3)]
    [True, True, False]
    >>> _ = clock.advance(10)               # everything expired
    >>> budget.balance
    0

    The defaults are Finagle's: 20 % of requests, a reserve of 10 retries
    per second over a ``ttl`` of 10 s (100 retries at start).

    Options: ``ratio`` in [0, 1000] (Finagle's ``percentCanRetry``: 0.2
    allows one retry per five requests, 2.0 two per request),
    ``min_retries_per_second`` >= 0 (0: no reserve), ``ttl`` in [1, 60]
    seconds, ``clock`` a zero-argument callable returning monotonic
    seconds (default :func:`time.monotonic`).

    Complexity: ``deposit``, ``try_withdraw`` and ``balance`` O(1)
    amortised (each group of events is added once and expired once);
    memory O(min(events in ``ttl``, 1000)). Thread-safe: one lock.

    Raises:
        TypeError: an option is not a number (``bool`` included), or
            ``clock`` is not callable.
        ValueError: an option out of range or not finite.
    """

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_retries_per_second: float = 10.0,
        ttl: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self._ratio = check_range("ratio", ratio, 0.0, 1000.0)
        # Bounded (Finagle takes an Int) so that the reserve and balance stay finite.
        self._min_rate = check_range(
            "min_retries_per_second", min_retries_per_second, 0.0, MAX_RETRIES_PER_SECOND
        )
        self._ttl = check_range("ttl", ttl, 1.0, 60.0)
        self._clock: Clock = monotonic if clock is None else check_callable("clock", clock)
        self._reserve = self._min_rate * self._ttl
        self._width = self._ttl / _GROUPS
        self._groups: deque[_Group] = deque()
        self._deposits = 0  # in the window, over all groups
        self._withdrawals = 0
        self._lock = threading.Lock()

    @property
    def ratio(self) -> float:
        """Retries allowed per request deposited."""
        return self._ratio

    @property
    def min_retries_per_second(self) -> float:
        """The reserve, in retries per second of ``ttl``."""
        return self._min_rate

    @property
    def ttl(self) -> float:
        """Seconds after which a deposit or a withdrawal expires."""
        return self._ttl

    @property
    def clock(self) -> Clock:
        """The clock that dates deposits and withdrawals."""
        return self._clock

    def deposit(self) -> None:
        """Count one request (a first attempt, not a retry). O(1) amortised.

        Raises:
            TypeError, ValueError: the clock returned something other than a
                finite number; nothing changes.
        """
        now = self._now()
        with self._lock:
            self._expire(now)
            self._group(now).deposits += 1
            self._deposits += 1

    def try_withdraw(self) -> bool:
        """Spend one retry if one is available now; ``False`` changes nothing. O(1) amortised.

        Raises:
            TypeError, ValueError: as :meth:`deposit`.
        """
        now = self._now()
        with self._lock:
            self._expire(now)
            if self._available() < 1 - _SLACK:
                return False
            self._group(now).withdrawals += 1
            self._withdrawals += 1
            return True

    @property
    def balance(self) -> int:
        """Retries available now: ``floor(reserve + ratio * D - W)``, at least 0.

        O(1) amortised.

        Raises:
            TypeError, ValueError: as :meth:`deposit`.
        """
        now = self._now()
        with self._lock:
            self._expire(now)
            return max(0, math.floor(self._available() + _SLACK))

    def _now(self) -> float:
        return check_time(self._clock())

    def _available(self) -> float:
        return self._reserve + self._ratio * self._deposits - self._withdrawals

    def _expire(self, now: float) -> None:
        # An event made at t counts while now < t + ttl.
        groups = self._groups
        cutoff = now - self._ttl
        while groups and groups[0].start <= cutoff:
            gone = groups.popleft()
            self._deposits -= gone.deposits
            self._withdrawals -= gone.withdrawals

    def _group(self, now: float) -> _Group:
        groups = self._groups
        if groups and now - groups[-1].start < self._width:
            return groups[-1]
        group = _Group(now)
        groups.append(group)
        return group

    def _check(self) -> None:
        """Assert the window totals and the group order (tests call this)."""
        groups = list(self._groups)
        assert self._deposits == sum(g.deposits for g in groups) >= 0
        assert self._withdrawals == sum(g.withdrawals for g in groups) >= 0
        assert all(a.start < b.start for a, b in itertools.pairwise(groups))
        assert len(groups) <= _GROUPS + 2, len(groups)  # + rounding

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self._ratio!r}, min_retries_per_second={self._min_rate!r}, "
            f"ttl={self._ttl!r}; in the window: {self._deposits} deposits, "
            f"{self._withdrawals} withdrawals)"
        )
