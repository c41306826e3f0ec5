"""Assertions about any Balancer: minimal disruption, determinism, spread, exclusion, counts.

They work on every :class:`~balancekit.strategies.base.Balancer`, your own
subclasses included, and raise ``AssertionError`` saying what went wrong:
which keys moved where, the measured figure and the bound.

Helpers that change membership (:func:`assert_minimal_disruption`,
:func:`assert_only_moves_to_added`, :func:`assert_deterministic`) take a
*factory* ``servers -> Balancer`` (a strategy class is one) and build fresh
balancers, so they never change yours. Helpers that only look take your
balancer and pick with ``get_server``: that opens no lease but, like any
pick, advances a rotation (round robin) or consumes random draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..hashing import Key
from ..lease import Lease
from ..quality import loads, moves, peak_to_mean, unnecessary_moves
from ..strategies.base import Balancer, parse_servers

__all__ = [
    "Factory",
    "assert_deterministic",
    "assert_excludes",
    "assert_in_flight_consistent",
    "assert_minimal_disruption",
    "assert_never_picks",
    "assert_only_moves_to_added",
    "assert_peak_to_mean_below",
    "assignment",
]

Factory = Callable[[dict[str, float]], Balancer]
"""Builds a balancer from ``{server: weight}``: a strategy class, or e.g.
``lambda servers: Maglev(servers, table_size=251)``."""

_SHOWN = 5
"""Examples quoted in a failure message."""


def assignment(balancer: Balancer, keys: Iterable[Key]) -> dict[Key, str]:
    """``{key: balancer.get_server(key)}``: the input of the remap metrics.

    >>> from balancekit import RoundRobin
    >>> assignment(RoundRobin(["a", "b"]), ["k1", "k2", "k3"])
    {'k1': 'a', 'k2': 'b', 'k3': 'a'}

    Complexity: O(len(keys)) picks.
    """
    return {key: balancer.get_server(key) for key in keys}


def assert_minimal_disruption(
    factory: Factory,
    servers: Mapping[str, float] | Iterable[str],
    keys: Iterable[Key],
    *,
    remove: str | None = None,
    tolerance: float = 0.0,
    restore: bool = True,
) -> None:
    """Removing a server moves only its keys; adding it back returns every key.

    For ``remove`` (default: each server in turn whose removal leaves one of
    weight > 0) a fresh ``factory(servers)`` maps ``keys``, loses that server
    and maps them again. Fails when :func:`~balancekit.quality.unnecessary_moves`
    exceeds ``tolerance`` (0 for rendezvous and the ring; Maglev needs a
    little) or, with ``restore``, when more than ``tolerance`` of the keys
    are not back on their server after ``add_server``.

    Complexity: O(n * (build + len(keys) picks)), or one build for ``remove``.

    Raises:
        AssertionError: the property does not hold; the message shows moves.
        ValueError: empty ``keys``, a ``remove`` that is not a server or would
            leave no server of weight > 0, ``tolerance`` outside [0, 1].
    """
    start, sample = _setup(servers, keys, tolerance)
    candidates = [s for s in start if any(w > 0 for o, w in start.items() if o != s)]
    if remove is not None:
        if remove not in candidates:
            raise ValueError(
                f"remove must be a server whose removal leaves one of weight > 0, got {remove!r}"
            )
        candidates = [remove]
    if not candidates:
        raise ValueError(f"servers must hold two servers of weight > 0, got {start!r}")
    for server in candidates:
        lb = factory(dict(start))
        before = assignment(lb, sample)
        lb.remove_server(server)
        after = assignment(lb, sample)
        moved = moves(before, after)
        share = unnecessary_moves(before, after, removed=[server])
        if share > tolerance:
            needless = {k: m for k, m in moved.items() if m[0] != server}
            raise AssertionError(
                f"removing {server!r} moved {len(needless)} of {len(sample)} keys that were "
                f"not on it (unnecessary_moves {share:.4g} > tolerance {tolerance:g}): "
                f"{_moves_text(needless)}; balancer after: {lb!r}"
            )
        if restore:
            lb.add_server(server, start[server])
            _assert_back(lb, before, sample, tolerance, f"re-adding {server!r}")


def assert_only_moves_to_added(
    factory: Factory,
    servers: Mapping[str, float] | Iterable[str],
    keys: Iterable[Key],
    *,
    add: str | Mapping[str, float],
    tolerance: float = 0.0,
    restore: bool = True,
) -> None:
    """Adding servers moves keys only onto them; removing them again returns every key.

    ``add`` is a server id (weight 1) or ``{server: weight}``. Fails when
    :func:`~balancekit.quality.unnecessary_moves` exceeds ``tolerance`` or,
    with ``restore``, when more than ``tolerance`` of the keys are not back
    after the added servers are removed.

    Complexity: one build and O(len(keys)) picks, plus O(len(add)) changes.

    Raises:
        AssertionError: the property does not hold; the message shows moves.
        ValueError: empty ``keys``, an ``add`` server already in ``servers``,
            ``tolerance`` outside [0, 1].
    """
    start, sample = _setup(servers, keys, tolerance)
    joining = parse_servers([add] if isinstance(add, str) else add)
    clash = [s for s in joining if s in start]
    if not joining or clash:
        raise ValueError(f"add must name new servers, got {add!r}")
    lb = factory(dict(start))
    shown = repr(lb)
    before = assignment(lb, sample)
    for server, weight in joining.items():
        lb.add_server(server, weight)
    after = assignment(lb, sample)
    share = unnecessary_moves(before, after, added=list(joining))
    if share > tolerance:
        needless = {k: m for k, m in moves(before, after).items() if m[1] not in joining}
        raise AssertionError(
            f"adding {list(joining)!r} moved {len(needless)} of {len(sample)} keys between "
            f"old servers (unnecessary_moves {share:.4g} > tolerance {tolerance:g}): "
            f"{_moves_text(needless)}; balancer before: {shown}"
        )
    if restore:
        for server in joining:
            lb.remove_server(server)
        _assert_back(lb, before, sample, tolerance, f"removing {list(joining)!r} again")


def assert_deterministic(
    factory: Factory, servers: Mapping[str, float] | Iterable[str], keys: Iterable[Key]
) -> None:
    """The same servers give the same mapping whatever order they were given in.

    Compares ``factory(servers)`` with a second build in the same order, builds
    in reversed and in sorted order, and one grown from empty by
    ``add_server`` in reversed order. Jump hash fails by design (its buckets
    follow insertion order); so does round robin (it ignores keys).

    Complexity: five builds and O(len(keys)) picks each.

    Raises:
        AssertionError: two builds disagree; the message names them and keys.
        ValueError: empty ``keys``.
    """
    start, sample = _setup(servers, keys, 0.0)
    reference = assignment(factory(dict(start)), sample)
    grown = factory({})
    for server in reversed(list(start)):
        grown.add_server(server, start[server])
    builds = {
        "a second build in the same order": factory(dict(start)),
        "the reversed order": factory(dict(reversed(list(start.items())))),
        "sorted order": factory(dict(sorted(start.items()))),
        "add_server calls in reversed order": grown,
    }
    for label, lb in builds.items():
        differ = moves(reference, assignment(lb, sample))
        if differ:
            raise AssertionError(
                f"built from {label}, {len(differ)} of {len(sample)} keys map differently "
                f"(given order -> {label}): {_moves_text(differ)}; balancer: {lb!r}"
            )


def assert_peak_to_mean_below(
    balancer: Balancer, keys: Iterable[Key], bound: float, *, weighted: bool = True
) -> None:
    """Picking for ``keys`` loads no server at ``bound`` times its fair share or more.

    >>> from balancekit import RoundRobin
    >>> lb = RoundRobin({"a": 3, "b": 1})   # round robin ignores weights
    >>> assert_peak_to_mean_below(lb, range(100), 1.1, weighted=False)
    >>> assert_peak_to_mean_below(lb, range(100), 1.5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AssertionError: peak-to-mean 2 >= bound 1.5 over 100 picks; busiest servers {'a': 50, ...

    Fair shares follow the balancer's weights (``weighted=False``: equal among
    servers of weight > 0). Repeated keys count each time, so a Zipf stream
    measures the hot-key effect.

    Complexity: O(len(keys)) picks plus O(n).

    Raises:
        AssertionError: :func:`~balancekit.quality.peak_to_mean` ``>= bound``.
        ValueError: empty ``keys``, ``bound`` not a finite number > 1.
        TypeError: ``bound`` is not a number.
    """
    sample = _keys_list(keys)
    if isinstance(bound, bool) or not isinstance(bound, (int, float)):
        raise TypeError(f"bound must be a finite number > 1, got {bound!r}")
    if not 1 < bound < math.inf:
        raise ValueError(f"bound must be a finite number > 1, got {bound!r}")
    weights = dict(balancer.servers)
    shares = weights if weighted else {s: float(w > 0) for s, w in weights.items()}
    counts = loads((balancer.get_server(key) for key in sample), weights)
    figure = peak_to_mean(counts, shares)
    if figure >= bound:
        busiest = sorted(counts.items(), key=lambda item: -item[1])[:_SHOWN]
        raise AssertionError(
            f"peak-to-mean {figure:.4g} >= bound {bound:g} over {len(sample)} picks; "
            f"busiest servers {dict(busiest)!r}; balancer: {balancer!r}"
        )


def assert_never_picks(balancer: Balancer, server: str, keys: Iterable[Key]) -> None:
    """No key of ``keys`` goes to ``server`` (drained, weight 0, removed...).

    >>> from balancekit import RoundRobin
    >>> assert_never_picks(RoundRobin({"a": 1, "b": 0}), "b", range(10))
    >>> assert_never_picks(RoundRobin({"a": 1, "b": 1}), "b", range(4))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AssertionError: picked 'b' for 2 of 4 keys, e.g. [1, 3]; balancer: RoundRobin(...)

    Complexity: O(len(keys)) picks.

    Raises:
        AssertionError: some key went there; the message lists a few.
        ValueError: empty ``keys``.
    """
    sample = _keys_list(keys)
    hits = [key for key in sample if balancer.get_server(key) == server]
    if hits:
        raise AssertionError(
            f"picked {server!r} for {len(hits)} of {len(sample)} keys, e.g. "
            f"{hits[:_SHOWN]!r}; balancer: {balancer!r}"
        )


def assert_excludes(balancer: Balancer, keys: Iterable[Key], exclude: Iterable[str]) -> None:
    """No key of ``keys`` goes to a server in ``exclude`` while another can take it.

    The ``exclude=`` contract: the answer is outside ``exclude`` if some
    member of weight > 0 is, else (the exclusion dropped) any member of
    weight > 0. Use it on a strategy of your own to check its
    ``_choose_other``.

    >>> from balancekit import ConsistentHash
    >>> assert_excludes(ConsistentHash(["a", "b", "c"]), range(50), {"a"})
    >>> assert_excludes(ConsistentHash(["a"]), range(5), {"a"})   # all excluded: dropped

    Complexity: O(len(keys)) picks with ``exclude``.

    Raises:
        AssertionError: some key went to an excluded server (or to one of
            weight 0); the message lists a few.
        ValueError: empty ``keys``.
    """
    sample = _keys_list(keys)
    tried = set(exclude)
    weights = dict(balancer.servers)
    eligible = {s for s, w in weights.items() if w > 0}
    allowed = (eligible - tried) or eligible
    wrong = [
        (key, server)
        for key in sample
        if (server := balancer.get_server(key, exclude=tried)) not in allowed
    ]
    if wrong:
        raise AssertionError(
            f"picked outside {sorted(allowed)!r} with exclude={sorted(tried)!r} for "
            f"{len(wrong)} of {len(sample)} keys, e.g. {wrong[:_SHOWN]!r}; balancer: {balancer!r}"
        )


def assert_in_flight_consistent(
    balancer: Balancer, expected: Mapping[str, int] | Iterable[Lease]
) -> None:
    """Every member's ``in_flight`` equals the expected count of open requests.

    ``expected`` is ``{server: count}`` (missing servers count 0) or the
    leases you opened, of which the open ones (not ``released``) are counted.
    A lease opened before its server was removed and added again counts on
    the old membership, not the new: leave such leases out.

    >>> from balancekit import RoundRobin
    >>> lb = RoundRobin(["a", "b"])
    >>> leases = [lb.acquire() for _ in range(3)]
    >>> leases[0].release()
    True
    >>> assert_in_flight_consistent(lb, leases)
    >>> assert_in_flight_consistent(lb, {"a": 1, "b": 1})

    Complexity: O(n + len(expected)).

    Raises:
        AssertionError: some count differs; the message lists each.
    """
    if isinstance(expected, Mapping):
        want = {s: int(c) for s, c in expected.items() if c}
    else:
        want = {}
        for lease in expected:
            if not lease.released:
                want[lease.server] = want.get(lease.server, 0) + 1
    members = list(balancer.servers)
    wrong = {s: (balancer.in_flight(s), want.get(s, 0)) for s in members}
    wrong = {s: pair for s, pair in wrong.items() if pair[0] != pair[1]}
    strays = {s: c for s, c in want.items() if s not in balancer}
    if wrong or strays:
        parts = [f"{s!r}: balancer says {got}, expected {exp}" for s, (got, exp) in wrong.items()]
        parts += [f"{s!r}: not a member, expected {c}" for s, c in strays.items()]
        raise AssertionError(f"in-flight counts differ: {'; '.join(parts)}; balancer: {balancer!r}")


def _keys_list(keys: Iterable[Key]) -> list[Key]:
    if isinstance(keys, (str, bytes)):
        raise TypeError(f"keys must be an iterable of keys, got {keys!r}")
    sample = list(keys)
    if not sample:
        raise ValueError("keys must hold at least one key, got none")
    return sample


def _setup(
    servers: Mapping[str, float] | Iterable[str], keys: Iterable[Key], tolerance: float
) -> tuple[dict[str, float], list[Key]]:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
        raise TypeError(f"tolerance must be a number in [0, 1], got {tolerance!r}")
    if not 0 <= tolerance <= 1:
        raise ValueError(f"tolerance must be a number in [0, 1], got {tolerance!r}")
    return parse_servers(servers), _keys_list(keys)


def _assert_back(
    lb: Balancer, before: dict[Key, str], sample: list[Key], tolerance: float, what: str
) -> None:
    astray = moves(before, assignment(lb, sample))
    if len(astray) > tolerance * len(before):
        raise AssertionError(
            f"after {what}, {len(astray)} of {len(before)} keys are not back on their "
            f"server (tolerance {tolerance:g}): {_moves_text(astray)}; balancer: {lb!r}"
        )


def _moves_text(moved: Mapping[Any, tuple[str, str]]) -> str:
    shown = [f"{key!r}: {old!r} -> {new!r}" for key, (old, new) in list(moved.items())[:_SHOWN]]
    more = len(moved) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")
