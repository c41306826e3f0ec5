"""Distribution-quality metrics: how evenly, and how stably, work is spread.

Two kinds of input:

- a *load summary*, a mapping ``server -> load``: a count of picks (see
  :func:`loads`), requests in flight, bytes served, anything additive;
- an *assignment*, a mapping ``key -> server``: two of them, taken before and
  after a membership change, for the remap metrics.

The balance metrics compare each server with its fair share. With total load
``T``, weights ``w_i`` summing to ``W`` (all equal when no weights are given),
server ``i``'s expected load is ``E_i = T * w_i / W`` and its normalised load
``r_i = L_i / E_i``: 1 is exactly fair, 2 is twice its share. Without weights
``E_i`` is the mean load, so the names read literally ("peak to mean").

A server of weight 0 expects nothing: it is left out of the comparison while
its load is 0, and makes ``peak_to_mean``, ``coefficient_of_variation`` and
``chi_square`` infinite as soon as it has any load (it should get nothing).

Every function is pure and O(n) in the size of its input. Bad input raises
``TypeError`` or ``ValueError`` naming the argument and the value.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "Summary",
    "chi_square",
    "coefficient_of_variation",
    "degrees_of_freedom",
    "loads",
    "min_to_mean",
    "moves",
    "peak_to_mean",
    "remapped_fraction",
    "summarize",
    "unnecessary_moves",
]

K = TypeVar("K", bound=Hashable)

_Pairs = list[tuple[float, float]]
"""``(L_i, E_i)``: each server's load and its expected (fair) load."""


def loads(picks: Iterable[str], servers: Iterable[str] = ()) -> dict[str, int]:
    """Count the picks per server, with a 0 for each listed server never picked.

    List every member in ``servers``: a server that got nothing is the worst
    imbalance of all, and a bare count of picks cannot show it. Servers come
    first in the order listed, then picked servers in order of first pick.

    >>> loads(["a", "b", "a"], servers=["a", "b", "c"])
    {'a': 2, 'b': 1, 'c': 0}

    Complexity: O(len(picks) + len(servers)).

    Raises:
        TypeError: a pick or server that is not a ``str``, or a bare string
            given where an iterable of ids is expected.
    """
    counts: dict[str, int] = {}
    for server in _ids("servers", servers):
        counts.setdefault(server, 0)
    for server in _ids("picks", picks):
        counts[server] = counts.get(server, 0) + 1
    return counts


def peak_to_mean(loads: Mapping[str, float], weights: Mapping[str, float] | None = None) -> float:
    """The busiest server's load relative to its fair share: ``max_i L_i / E_i``.

    1.0 is perfect balance; 1.25 means some server carries 25 % more than its
    share. The figure that decides capacity: the busiest server saturates
    first. Infinite when a server of weight 0 has load.

    >>> peak_to_mean({"a": 30, "b": 10, "c": 20})
    1.5
    >>> peak_to_mean({"a": 30, "b": 10}, weights={"a": 3, "b": 1})
    1.0

    Complexity: O(n).

    Raises:
        ValueError: empty ``loads``, a negative or non-finite load or weight,
            a total load of 0, weights all 0 or missing a server of ``loads``.
        TypeError: a load or weight that is not a number.
    """
    return _peak(_pairs(loads, weights))


def min_to_mean(loads: Mapping[str, float], weights: Mapping[str, float] | None = None) -> float:
    """The idlest server's load relative to its fair share: ``min_i L_i / E_i``.

    1.0 is perfect balance, 0.0 means some server of weight > 0 got nothing
    (a server left cold: wasted capacity, or a missed warm-up). Servers of
    weight 0 are not counted.

    >>> min_to_mean({"a": 30, "b": 10, "c": 20})
    0.5
    >>> min_to_mean({"a": 3, "b": 0}, weights={"a": 1, "b": 0})
    1.0

    Complexity: O(n).

    Raises:
        ValueError, TypeError: as :func:`peak_to_mean`.
    """
    return _floor(_pairs(loads, weights))


def coefficient_of_variation(
    loads: Mapping[str, float], weights: Mapping[str, float] | None = None
) -> float:
    """The spread of the normalised loads: ``sqrt(sum_i (E_i / T) * (r_i - 1)**2)``.

    Without weights this is the familiar population standard deviation over
    the mean, ``std(L) / mean(L)``; with weights each server's deviation from
    its share counts in proportion to that share. It equals
    ``sqrt(chi_square / T)``. 0 is perfect balance; uniform random placement
    of ``T`` picks gives about ``sqrt((n - 1) / T)``. Unlike the peak, it
    looks at every server, so it tells a smooth spread from one outlier.

    >>> coefficient_of_variation({"a": 30, "b": 10, "c": 20})  # std 8.165 / mean 20
    0.408248290463863
    >>> coefficient_of_variation({"a": 30, "b": 10}, weights={"a": 3, "b": 1})
    0.0

    Complexity: O(n).

    Raises:
        ValueError, TypeError: as :func:`peak_to_mean`.
    """
    return _cv(_pairs(loads, weights))


def chi_square(loads: Mapping[str, float], weights: Mapping[str, float] | None = None) -> float:
    """Pearson's statistic against the weights: ``sum_i (L_i - E_i)**2 / E_i``.

    Meaningful for *counts* (picks, not latencies). If each pick went to a
    server at random with probability ``w_i / W``, the statistic would follow
    a chi-square law with :func:`degrees_of_freedom` degrees of freedom, of
    mean ``dof`` and standard deviation ``sqrt(2 * dof)``: a hash strategy
    far above that is biased, round robin sits far below it (it is better than
    random). For a p-value, feed it and the dof to
    ``scipy.stats.chi2.sf`` (balancekit does not depend on scipy).

    >>> chi_square({"a": 30, "b": 10, "c": 20})  # (100 + 100 + 0) / 20
    10.0
    >>> chi_square({"a": 50, "b": 30}, weights={"a": 3, "b": 1})  # 100/60 + 100/20
    6.666666666666667

    Complexity: O(n).

    Raises:
        ValueError, TypeError: as :func:`peak_to_mean`.
    """
    return _chi(_pairs(loads, weights))


def degrees_of_freedom(
    loads: Mapping[str, float], weights: Mapping[str, float] | None = None
) -> int:
    """The chi-square degrees of freedom: servers expected to get load, minus 1.

    >>> degrees_of_freedom({"a": 1, "b": 2, "c": 0}, weights={"a": 1, "b": 1, "c": 0})
    1

    Complexity: O(n).

    Raises:
        ValueError, TypeError: as :func:`peak_to_mean`.
    """
    return _dof(_pairs(loads, weights))


@dataclass(frozen=True, slots=True)
class Summary:
    """Every balance metric of one load summary, from :func:`summarize`.

    >>> summarize({"a": 30, "b": 10, "c": 20})
    Summary(servers=3, total=60.0, peak_to_mean=1.5, min_to_mean=0.5,
            coefficient_of_variation=0.408248290463863, chi_square=10.0, degrees_of_freedom=2)
    """

    servers: int
    """Servers compared (those of ``loads`` and ``weights`` together)."""
    total: float
    """The total load ``T``."""
    peak_to_mean: float
    min_to_mean: float
    coefficient_of_variation: float
    chi_square: float
    degrees_of_freedom: int


def summarize(loads: Mapping[str, float], weights: Mapping[str, float] | None = None) -> Summary:
    """All balance metrics at once, validating the input once.

    >>> summarize({"a": 2, "b": 2}).peak_to_mean
    1.0

    Complexity: O(n).

    Raises:
        ValueError, TypeError: as :func:`peak_to_mean`.
    """
    pairs = _pairs(loads, weights)
    return Summary(
        servers=len(pairs),
        total=math.fsum(observed for observed, _ in pairs),
        peak_to_mean=_peak(pairs),
        min_to_mean=_floor(pairs),
        coefficient_of_variation=_cv(pairs),
        chi_square=_chi(pairs),
        degrees_of_freedom=_dof(pairs),
    )


# -- remapping --------------------------------------------------------------------


def moves(before: Mapping[K, str], after: Mapping[K, str]) -> dict[K, tuple[str, str]]:
    """The keys present in both assignments whose server changed: ``key -> (old, new)``.

    >>> moves({1: "a", 2: "b", 3: "c"}, {1: "a", 2: "c", 4: "c"})
    {2: ('b', 'c')}

    Complexity: O(len(before)).

    Raises:
        TypeError: ``before`` or ``after`` is not a mapping.
    """
    _check_mapping("before", before)
    _check_mapping("after", after)
    missing = object()
    moved: dict[K, tuple[str, str]] = {}
    for key, old in before.items():
        new = after.get(key, missing)
        if new is not missing and new != old:
            moved[key] = (old, new)  # type: ignore[assignment]
    return moved


def remapped_fraction(before: Mapping[K, str], after: Mapping[K, str]) -> float:
    """The fraction of keys, among those in both assignments, whose server changed.

    After removing one of ``n`` equal servers, a consistent strategy moves
    about ``1 / n`` of the keys (the removed server's); ``hash % n`` moves
    about ``1 - 1 / n`` of them.

    >>> remapped_fraction({1: "a", 2: "b", 3: "c", 4: "a"}, {1: "a", 2: "c", 3: "c", 4: "b"})
    0.5

    Complexity: O(len(before)).

    Raises:
        ValueError: the assignments have no key in common.
        TypeError: ``before`` or ``after`` is not a mapping.
    """
    moved = moves(before, after)
    return len(moved) / _common(before, after)


def unnecessary_moves(
    before: Mapping[K, str],
    after: Mapping[K, str],
    removed: Collection[str] = (),
    added: Collection[str] = (),
) -> float:
    """The fraction of moved keys that had no reason to move.

    A move ``old -> new`` (of a key present in both assignments) is
    *necessary* when the key's old server left (``old in removed``) or when
    the key moved onto a server that joined (``new in added``); any other
    move is unnecessary: the key left a server that is still there for one
    that was there before. A weight change fits the same rule: pass a server
    whose weight grew in ``added`` and one whose weight shrank in
    ``removed``. Returns 0.0 when nothing moved.

    Rendezvous hashing and a consistent-hash ring score 0; Maglev a little
    above 0; ``hash % n`` most of its moves.

    >>> before = {1: "a", 2: "b", 3: "c", 4: "a"}
    >>> after = {1: "a", 2: "a", 3: "c", 4: "c"}   # b removed; key 4 moved for no reason
    >>> unnecessary_moves(before, after, removed=["b"])
    0.5

    Complexity: O(len(before) + len(removed) + len(added)).

    Raises:
        ValueError: the assignments have no key in common.
        TypeError: a mapping that is not one, or ``removed`` / ``added``
            given as a bare string (which would be read as its characters).
    """
    gone = set(_ids("removed", removed))
    joined = set(_ids("added", added))
    moved = moves(before, after)
    _common(before, after)
    if not moved:
        return 0.0
    needless = sum(1 for old, new in moved.values() if old not in gone and new not in joined)
    return needless / len(moved)


# -- validation -------------------------------------------------------------------


def _ids(name: str, values: Iterable[str]) -> Iterable[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be an iterable of server ids, got {values!r}")
    for value in values:
        if not isinstance(value, str):
            raise TypeError(f"{name} must hold server ids (str), got {value!r}")
        yield value


def _check_mapping(name: str, value: object) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping, got {value!r}")


def _common(before: Mapping[K, str], after: Mapping[K, str]) -> int:
    common = sum(1 for key in before if key in after)
    if not common:
        raise ValueError(
            f"before and after must share at least one key, got {len(before)} and "
            f"{len(after)} keys with none in common"
        )
    return common


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a finite number >= 0, got {value!r}")
    result = float(value)
    if not (math.isfinite(result) and result >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return result


def _check_loads(loads: object) -> dict[str, float]:
    if not isinstance(loads, Mapping):
        raise TypeError(f"loads must be a mapping of server to load, got {loads!r}")
    if not loads:
        raise ValueError("loads must name at least one server, got {}")
    checked = {server: _number(f"loads[{server!r}]", value) for server, value in loads.items()}
    if not any(checked.values()):
        raise ValueError(f"loads must have a total > 0, got {dict(loads)!r}")
    return checked


def _pairs(loads: Mapping[str, float], weights: Mapping[str, float] | None) -> _Pairs:
    """``(L_i, E_i)`` for every server of ``loads`` and ``weights``."""
    observed = _check_loads(loads)
    total = math.fsum(observed.values())
    if weights is None:
        mean = total / len(observed)
        return [(value, mean) for value in observed.values()]
    _check_mapping("weights", weights)
    shares = {server: _number(f"weights[{server!r}]", w) for server, w in weights.items()}
    missing = [server for server in observed if server not in shares]
    if missing:
        raise ValueError(f"weights must cover every server of loads, missing {missing!r}")
    weight_sum = math.fsum(shares.values())
    if weight_sum == 0:
        raise ValueError(f"weights must not all be 0, got {dict(weights)!r}")
    # A server in weights but not in loads got nothing: a Counter of picks omits it.
    return [(observed.get(server, 0.0), total * w / weight_sum) for server, w in shares.items()]


# The metrics proper, over the (L_i, E_i) pairs; at least one E_i > 0 and T > 0.


def _peak(pairs: _Pairs) -> float:
    return max(
        observed / expected if expected > 0 else (math.inf if observed > 0 else 0.0)
        for observed, expected in pairs
    )


def _floor(pairs: _Pairs) -> float:
    return min(observed / expected for observed, expected in pairs if expected > 0)


def _chi(pairs: _Pairs) -> float:
    statistic = 0.0
    for observed, expected in pairs:
        if expected > 0:
            statistic += (observed - expected) ** 2 / expected
        elif observed > 0:
            return math.inf
    return statistic


def _cv(pairs: _Pairs) -> float:
    return math.sqrt(_chi(pairs) / math.fsum(observed for observed, _ in pairs))


def _dof(pairs: _Pairs) -> int:
    return sum(1 for _, expected in pairs if expected > 0) - 1
