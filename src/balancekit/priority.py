"""PriorityPool: priority levels of Pools, with Envoy's health-based split of the traffic.

Level 0 takes all the traffic while it is healthy enough; as its servers
fail, a share proportional to its lost health spills to level 1, then to
level 2, and so on (Envoy's priority levels; HAProxy's and nginx's ``backup``
servers do the all-or-nothing version). The arithmetic is Envoy's, in whole
percents:

- a level's *health* is ``min(100, factor% * healthy // total)`` for
  ``factor% = round(100 * overprovisioning_factor)`` (140 by default): with
  the default factor a level at 72 % healthy still counts as fully healthy;
- the *normalised total* is ``min(100, sum of the healths)``; level ``i``
  gets ``min(remaining, health_i * 100 // total)`` percent in level order, and
  the rounding remainder goes to the first level with any health;
- panic is judged per level, only when the normalised total is below 100: a
  level is in panic when its healthy share is below its Pool's
  ``panic_threshold``; when every level is, the split follows the number of
  servers per level instead (Envoy's *total panic*);
- with no health anywhere and no level in panic, level 0 gets everything.

A level's servers are its Pool's members of weight > 0; the healthy ones are
those its HealthTracker calls healthy (all of them without a tracker).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import NoServerAvailable
from .lease import Lease
from .pool import Pool
from .strategies._exclude import check_exclude
from .validate import check_int, check_positive, check_range, check_sequence

__all__ = ["PriorityPool", "priority_loads"]


def priority_loads(
    healthy: Sequence[int],
    total: Sequence[int],
    *,
    overprovisioning_factor: float = 1.4,
    panic_thresholds: Sequence[float] | None = None,
) -> list[int]:
    """Envoy's percent of the traffic for each level, from healthy and total server counts.

    ``panic_thresholds`` are the levels' thresholds as fractions (0.5 each
    when ``None``). O(levels).

    >>> priority_loads([1, 4], [2, 4])          # level 0 at 50 %: 50 x 1.4 = 70
    [70, 30]
    >>> priority_loads([1, 1, 1], [4, 4, 5], panic_thresholds=[0, 0, 0])  # 35, 35, 28
    [37, 35, 28]
    >>> priority_loads([1, 1, 1], [4, 4, 5])    # every level below 50 % healthy: total panic
    [32, 30, 38]
    >>> priority_loads([0, 0], [1, 2])          # total panic: by number of servers
    [34, 66]

    Raises:
        TypeError: a count not an int, the factor or a threshold not a number, or
            an argument not a sequence.
        ValueError: no level; sequences of different lengths; a count below 0, or
            more healthy than total servers; a factor not > 0; a threshold
            outside [0, 1].
    """
    healthy, total, factor, thresholds = _checked(
        healthy, total, overprovisioning_factor, panic_thresholds
    )
    health = _health(healthy, total, round(100 * factor))
    normalised = min(100, sum(health))
    if normalised < 100 and all(_panics(healthy, total, thresholds)):
        return _spread(list(total))
    if normalised == 0:
        return [100] + [0] * (len(total) - 1)
    loads = []
    remaining = 100
    for score in health:
        load = min(remaining, score * 100 // normalised)
        loads.append(load)
        remaining -= load
    if remaining:
        loads[next(i for i, score in enumerate(health) if score > 0)] += remaining
    return loads


def _checked(
    healthy: object, total: object, factor: object, thresholds: object
) -> tuple[list[int], list[int], float, list[float]]:
    """``priority_loads``' arguments, checked. O(levels)."""
    totals = [check_int(f"total[{i}]", t, 0) for i, t in enumerate(check_sequence("total", total))]
    if not totals:
        raise ValueError("total must count the servers of at least one level, got []")
    healthies = [
        check_int(f"healthy[{i}]", h, 0, totals[i])
        for i, h in enumerate(check_sequence("healthy", healthy, len(totals)))
    ]
    positive = check_positive("overprovisioning_factor", factor)
    if thresholds is None:
        return healthies, totals, positive, [0.5] * len(totals)
    levels = check_sequence("panic_thresholds", thresholds, len(totals))
    checked = [check_range(f"panic_thresholds[{i}]", t, 0.0, 1.0) for i, t in enumerate(levels)]
    return healthies, totals, positive, checked


def _health(healthy: Sequence[int], total: Sequence[int], factor: int) -> list[int]:
    """Envoy's health score per level, for the factor in percent."""
    return [min(100, factor * h // t) if t else 0 for h, t in zip(healthy, total, strict=True)]


def _panics(
    healthy: Sequence[int], total: Sequence[int], thresholds: Sequence[float]
) -> list[bool]:
    """Whether each level's healthy share is below its panic threshold (an empty level is)."""
    return [
        t == 0 or 100.0 * h / t < 100.0 * threshold
        for h, t, threshold in zip(healthy, total, thresholds, strict=True)
    ]


def _spread(sizes: list[int]) -> list[int]:
    """Percents in proportion to ``sizes``; the remainder to the first non-empty level."""
    count = sum(sizes)
    if not count:
        return [100] + [0] * (len(sizes) - 1)
    loads = [100 * size // count for size in sizes]
    loads[next(i for i, size in enumerate(sizes) if size)] += 100 - sum(loads)
    return loads


class PriorityPool:
    """Pools in priority order; traffic spills to later levels as earlier ones lose health.

    >>> from balancekit import HealthTracker, ManualClock, RoundRobin
    >>> clock = ManualClock()
    >>> def level(*servers):
    ...     tracker = HealthTracker(servers, unhealthy_threshold=1, clock=clock)
    ...     return Pool(RoundRobin(servers), health=tracker, clock=clock)
    >>> primary, backup = level("a", "b"), level("c", "d")
    >>> pools = PriorityPool([primary, backup], rng=random.Random(1))
    >>> pools.level_loads()
    [1.0, 0.0]
    >>> _ = primary.record_check("a", ok=False)     # half of level 0 is down
    >>> pools.level_health(), pools.level_loads()
    ([70, 100], [0.7, 0.3])
    >>> pools.acquire().server in {"b", "c", "d"}
    True

    Complexity: ``level_loads`` and ``acquire`` read every level's health,
    O(n) for ``n`` servers in all (each a health lookup), plus the chosen
    Pool's ``acquire``. Thread-safe as the Pools are; the level draw comes
    from ``rng`` (a seedable :class:`random.Random`).

    Raises:
        TypeError: ``levels`` is not a sequence of Pools, ``rng`` not a Random,
            or the factor not a number.
        ValueError: no level, a Pool given twice, or a factor that is not > 0.
    """

    def __init__(
        self,
        levels: Sequence[Pool],
        *,
        overprovisioning_factor: float = 1.4,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence):
            raise TypeError(f"levels must be a sequence of Pools, got {levels!r}")
        for pool in levels:
            if not isinstance(pool, Pool):
                raise TypeError(f"levels must hold Pools, got {pool!r}")
        if not levels:
            raise ValueError("levels must hold at least one Pool, got none")
        if len({id(pool) for pool in levels}) != len(levels):
            raise ValueError("levels must not repeat a Pool")
        self._factor = check_positive("overprovisioning_factor", overprovisioning_factor)
        if rng is not None and not isinstance(rng, random.Random):
            raise TypeError(f"rng must be a random.Random, got {rng!r}")
        self._levels = tuple(levels)
        self._rng = random.Random() if rng is None else rng

    @property
    def levels(self) -> tuple[Pool, ...]:
        """The Pools, level 0 first."""
        return self._levels

    @property
    def overprovisioning_factor(self) -> float:
        """How much capacity each level has beyond its share (1.4: 40 % more)."""
        return self._factor

    @property
    def rng(self) -> random.Random:
        """The source of the level draws."""
        return self._rng

    def _counts(self) -> tuple[list[int], list[int]]:
        """(healthy, total) servers of weight > 0 per level, now."""
        healthy, total = [], []
        for pool in self._levels:
            tracker = pool.health
            members = [server for server, weight in pool.servers.items() if weight > 0]
            total.append(len(members))
            if tracker is None:
                healthy.append(len(members))
            else:
                healthy.append(sum(1 for server in members if tracker.is_healthy(server)))
        return healthy, total

    def level_health(self) -> list[int]:
        """Each level's health score, 0 to 100 (the healthy share x the factor, capped). O(n)."""
        return _health(*self._counts(), round(100 * self._factor))

    def level_panic(self) -> list[bool]:
        """Whether each level is in panic as Envoy judges it (never while the total is 100)."""
        healthy, total = self._counts()
        if sum(_health(healthy, total, round(100 * self._factor))) >= 100:
            return [False] * len(total)
        return _panics(healthy, total, [pool.panic_threshold for pool in self._levels])

    def _percents(self) -> list[int]:
        healthy, total = self._counts()
        return priority_loads(
            healthy,
            total,
            overprovisioning_factor=self._factor,
            panic_thresholds=[pool.panic_threshold for pool in self._levels],
        )

    def level_loads(self) -> list[float]:
        """The share of the traffic each level gets now; they sum to 1. O(n)."""
        return [percent / 100 for percent in self._percents()]

    def acquire(
        self,
        key: Any = None,
        *,
        exclude: Iterable[str] = (),
        cookie: str | bytes | None = None,
        session: str | None = None,
    ) -> Lease:
        """Draw a level by its load, then acquire from its Pool (same arguments as Pool.acquire).

        Should the drawn level have no eligible server (every one drained, or
        its health changed since the draw), the other levels are tried in
        order: a healthy but drained server still counts in its level's health.

        Raises:
            NoServerAvailable: no level could serve.
            TypeError, ValueError: as the Pool's ``acquire``; the rng is then
                where it was before the call.
        """
        # Bad input must leave no trace, and the level's Pool judges some of it only
        # after the draw: check what every level would refuse first, and keep the
        # rng's state (a copy of 625 words, as costly as a third of a call) only when
        # the drawn level alone can tell.
        excluded = check_exclude(exclude)
        percents = self._percents()
        options: dict[str, Any] = {"exclude": excluded, "cookie": cookie, "session": session}
        if not self._may_refuse(key, cookie, session):
            return self._acquire(percents, self._rng.randrange(100), key, options)
        before = self._rng.getstate()
        try:
            return self._acquire(percents, self._rng.randrange(100), key, options)
        except (TypeError, ValueError):
            self._rng.setstate(before)
            raise

    def _may_refuse(self, key: Any, cookie: object, session: object) -> bool:
        """Whether some level's Pool could refuse these arguments. O(levels)."""
        if cookie is not None or session is not None:
            return True  # a cookie's type, a session without StickySession
        return any(pool.strategy.requires_key for pool in self._levels)  # a missing or bad key

    def _acquire(self, percents: list[int], draw: int, key: Any, options: dict[str, Any]) -> Lease:
        chosen = 0
        for i, percent in enumerate(percents):
            if draw < percent:
                chosen = i
                break
            draw -= percent
        order = [chosen] + [i for i in range(len(percents)) if i != chosen]
        failure: NoServerAvailable | None = None
        for i in order:
            try:
                return self._levels[i].acquire(key, **options)
            except NoServerAvailable as error:
                failure = failure or error
        assert failure is not None
        raise failure

    def __repr__(self) -> str:
        return (
            f"PriorityPool({list(self._levels)!r}, "
            f"overprovisioning_factor={self._factor!r}, loads={self._percents()!r})"
        )
