"""Property-test your own balancer or pool: hypothesis strategies and assertions.

This module needs hypothesis: ``pip install "balancekit[test]"`` (or just
``pip install hypothesis``). The rest of balancekit never imports it.

- **Strategies** draw what a balancer meets in production: server sets with
  weights (:func:`server_sets`), keys (:func:`keys`), uniform and Zipf-skewed
  key streams (:func:`key_streams`), membership changes
  (:func:`membership_changes`) and request workloads (:func:`workloads`,
  driven through any balancer or pool by :func:`replay`).
- **Assertions** work on any :class:`~balancekit.strategies.base.Balancer`,
  your own subclasses included, and raise ``AssertionError`` saying what
  went wrong: which keys moved where, the measured figure and the bound.

Helpers that change membership (:func:`assert_minimal_disruption`,
:func:`assert_only_moves_to_added`, :func:`assert_deterministic`) take a
*factory* ``servers -> Balancer`` (a strategy class is one) and build fresh
balancers, so they never change yours. Helpers that only look take your
balancer and pick with ``get_server``: that opens no lease but, like any
pick, advances a rotation (round robin) or consumes random draws.

:class:`~balancekit.clock.ManualClock` is re-exported for convenience.
The hypothesis strategies cost O(size) per example. A typical test::

    @given(server_sets(min_size=2, max_size=8))
    def test_a_leaving_node_moves_only_its_keys(servers):
        assert_minimal_disruption(Rendezvous, servers, [f"user:{i}" for i in range(500)])
"""

from __future__ import annotations

import heapq
import math
import random
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal

from hypothesis import strategies as st

from ..clock import ManualClock
from ..hashing import Key
from ..lease import Lease
from ..quality import loads, moves, peak_to_mean, unnecessary_moves
from ..strategies.base import Balancer, parse_servers

__all__ = [
    "AddServer",
    "Change",
    "Factory",
    "ManualClock",
    "RemoveServer",
    "Request",
    "SetWeight",
    "assert_deterministic",
    "assert_in_flight_consistent",
    "assert_minimal_disruption",
    "assert_never_picks",
    "assert_only_moves_to_added",
    "assert_peak_to_mean_below",
    "assignment",
    "key_streams",
    "keys",
    "membership_changes",
    "replay",
    "sample_keys",
    "server_ids",
    "server_sets",
    "workloads",
]

Factory = Callable[[dict[str, float]], Balancer]
"""Builds a balancer from ``{server: weight}``: a strategy class, or e.g.
``lambda servers: Maglev(servers, table_size=251)``."""

_SHOWN = 5
"""Examples quoted in a failure message."""

_TEXT = st.characters(codec="utf-8")  # lone surrogates cannot be encoded, so cannot be hashed
_NAME = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_lowercase),
    st.text(string.ascii_lowercase + string.digits + "-", max_size=11),
)
_POSITIVE = st.one_of(st.integers(1, 10).map(float), st.floats(0.1, 10.0))
_ANY_WEIGHT = st.one_of(st.just(0.0), _POSITIVE)

# -- hypothesis strategies ----------------------------------------------------------


def server_ids(kind: Literal["any", "name", "address", "text"] = "any") -> st.SearchStrategy[str]:
    """Server ids of one ``kind``: every one a valid, non-empty ``str``.

    ``"name"`` (``web-3``), ``"address"`` (``10.0.0.7:8080``,
    ``[2001:db8::1]:443``), ``"text"`` (any non-empty Unicode but lone
    surrogates, which cannot be encoded) or ``"any"`` of these.

    Raises:
        ValueError: an unknown ``kind``.
    """
    name = _NAME
    address = st.builds(
        lambda ip, port: f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}",
        st.ip_addresses(),
        st.integers(1, 65535),
    )
    text = st.text(_TEXT, min_size=1, max_size=24)
    choices = {
        "name": name,
        "address": address,
        "text": text,
        "any": st.one_of(name, address, text),
    }
    if kind not in choices:
        raise ValueError(f"kind must be one of {sorted(choices)}, got {kind!r}")
    return choices[kind]


def server_sets(
    min_size: int = 1,
    max_size: int = 20,
    *,
    weighted: bool = True,
    allow_zero: bool = False,
    ids: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[dict[str, float]]:
    """``{server: weight}`` dicts any strategy accepts.

    Weights are 1.0 unless ``weighted`` (then in [0.1, 10], whole numbers
    often); ``allow_zero`` adds weight-0 members, but a non-empty set always
    keeps one server of weight > 0, so picking works.

    Raises:
        ValueError: ``min_size < 0`` or ``max_size < min_size``.
    """
    _check_sizes(min_size, max_size)
    weight = (_ANY_WEIGHT if allow_zero else _POSITIVE) if weighted else st.just(1.0)
    pairs = st.lists(
        st.tuples(_NAME if ids is None else ids, weight),
        min_size=min_size,
        max_size=max_size,
        unique_by=lambda pair: pair[0],
    )
    return pairs.map(_with_one_positive)


def _with_one_positive(pairs: list[tuple[str, float]]) -> dict[str, float]:
    servers = dict(pairs)
    if servers and not any(servers.values()):
        servers[pairs[0][0]] = 1.0  # weights all drawn 0: someone must take the work
    return servers


def keys(
    kinds: Iterable[Literal["str", "bytes", "int"]] = ("str", "bytes", "int"),
) -> st.SearchStrategy[Key]:
    """Keys as hash strategies take them: ``str``, ``bytes``, ``int`` in [0, 2**64).

    Raises:
        ValueError: no kind, or an unknown one.
    """
    options: dict[str, st.SearchStrategy[Key]] = {
        "str": st.text(_TEXT, max_size=32),
        "bytes": st.binary(max_size=32),
        "int": st.integers(0, 2**64 - 1),
    }
    chosen = list(kinds)
    if not chosen or any(kind not in options for kind in chosen):
        raise ValueError(f"kinds must be a non-empty subset of {sorted(options)}, got {chosen!r}")
    return st.one_of(*(options[kind] for kind in chosen))


def sample_keys(
    n: int,
    *,
    distribution: Literal["uniform", "zipf"] = "uniform",
    s: float = 1.1,
    universe: int = 1000,
    rng: random.Random,
    prefix: str = "key-",
) -> list[str]:
    """``n`` keys ``prefix + rank`` drawn from ``universe`` ranks, deterministically from ``rng``.

    Zipf: rank ``r`` (0-based) has probability proportional to ``1 / (r + 1) ** s``,
    so ``key-0`` is the hot key; uniform: every rank alike.

    >>> sample_keys(5, distribution="zipf", s=2.0, universe=50, rng=random.Random(1))
    ['key-0', 'key-3', 'key-1', 'key-0', 'key-0']

    Complexity: O(universe + n log universe).

    Raises:
        ValueError: ``n < 0``, ``universe < 1``, ``s`` not finite and > 0, or
            an unknown ``distribution``.
    """
    _check_sizes(0, n, "n")
    if isinstance(universe, bool) or not isinstance(universe, int) or universe < 1:
        raise ValueError(f"universe must be an int >= 1, got {universe!r}")
    ranks = range(universe)
    if distribution == "uniform":
        picks = [rng.randrange(universe) for _ in range(n)]
    elif distribution == "zipf":
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s < math.inf:
            raise ValueError(f"s must be a finite number > 0, got {s!r}")
        cumulative = list(accumulate((r + 1) ** -s for r in ranks))
        picks = rng.choices(ranks, cum_weights=cumulative, k=n)
    else:
        raise ValueError(f"distribution must be 'uniform' or 'zipf', got {distribution!r}")
    return [f"{prefix}{rank}" for rank in picks]


def key_streams(
    n: int,
    *,
    distribution: Literal["uniform", "zipf"] = "uniform",
    s: float = 1.1,
    universe: int = 1000,
) -> st.SearchStrategy[list[str]]:
    """Streams of ``n`` keys (repeats included), uniform or Zipf-skewed.

    Hypothesis draws a seed; :func:`sample_keys` builds the stream from it,
    so a long stream costs one draw and a failure replays exactly. The key
    names include the seed, so the hot key lands on a different server in
    different examples.

    Raises:
        ValueError: as :func:`sample_keys`, at once.
    """
    sample_keys(0, distribution=distribution, s=s, universe=universe, rng=random.Random(0))
    _check_sizes(0, n, "n")
    return st.integers(0, 2**32 - 1).map(
        lambda seed: sample_keys(
            n,
            distribution=distribution,
            s=s,
            universe=universe,
            rng=random.Random(seed),
            prefix=f"key-{seed:x}-",
        )
    )


@dataclass(frozen=True, slots=True)
class AddServer:
    """Add ``server`` with ``weight``."""

    server: str
    weight: float = 1.0

    def apply(self, target: Any) -> None:
        """Apply to a balancer (or anything with ``add_server``)."""
        target.add_server(self.server, self.weight)

    def apply_model(self, model: dict[str, float]) -> None:
        """Apply to a ``{server: weight}`` reference model."""
        model[self.server] = self.weight


@dataclass(frozen=True, slots=True)
class RemoveServer:
    """Remove ``server``."""

    server: str

    def apply(self, target: Any) -> None:
        """Apply to a balancer (or anything with ``remove_server``)."""
        target.remove_server(self.server)

    def apply_model(self, model: dict[str, float]) -> None:
        """Apply to a ``{server: weight}`` reference model."""
        del model[self.server]


@dataclass(frozen=True, slots=True)
class SetWeight:
    """Set ``server``'s weight."""

    server: str
    weight: float

    def apply(self, target: Any) -> None:
        """Apply to a balancer (or anything with ``set_weight``)."""
        target.set_weight(self.server, self.weight)

    def apply_model(self, model: dict[str, float]) -> None:
        """Apply to a ``{server: weight}`` reference model."""
        model[self.server] = self.weight


Change = AddServer | RemoveServer | SetWeight
"""One membership change, a frozen dataclass with a ``repr`` to paste into a test.

``change.apply(balancer)`` performs it (at the balancer's cost for that
change); ``change.apply_model(d)`` applies it to a plain dict in O(1).
"""


def membership_changes(
    servers: Mapping[str, float] | Iterable[str],
    *,
    min_size: int = 1,
    max_size: int = 10,
    weighted: bool = True,
    keep_one: bool = True,
    ids: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[list[Change]]:
    """Sequences of changes, each valid after the ones before it, starting from ``servers``.

    Only members are removed or reweighted; added servers are new ids or
    ones removed earlier (re-adding is where a hash strategy should give a
    server its keys back). With ``keep_one``, after every change some
    server has a weight > 0, so picking never fails.

    Raises:
        TypeError, ValueError: bad ``servers`` (as a strategy constructor), or
            ``max_size < min_size``.
    """
    start = parse_servers(servers)
    _check_sizes(min_size, max_size)
    new_ids = _NAME if ids is None else ids
    weight = _ANY_WEIGHT if weighted else st.sampled_from([0.0, 1.0])

    @st.composite
    def build(draw: st.DrawFn) -> list[Change]:
        model = dict(start)
        gone: dict[str, None] = {}  # removed servers, in order: candidates to come back
        changes: list[Change] = []

        def spare(server: str) -> bool:
            # May this server stop taking work? Only if another one still does.
            return not keep_one or any(w > 0 for s, w in model.items() if s != server)

        for _ in range(draw(st.integers(min_size, max_size))):
            kinds = ["add"] + (["remove", "set"] if model else [])
            kind = draw(st.sampled_from(kinds))
            change: Change
            if kind == "add":
                fresh = new_ids.filter(lambda s: s not in model)
                name = draw(st.sampled_from(list(gone)) | fresh if gone else fresh)
                value = draw(weight) if weighted else 1.0
                if keep_one and not any(model.values()):
                    value = value or 1.0  # the pool has no server taking work: this one must
                change = AddServer(name, value)
            elif kind == "remove" and any(spare(s) for s in model):
                change = RemoveServer(draw(st.sampled_from([s for s in model if spare(s)])))
            else:
                server = draw(st.sampled_from(list(model)))
                value = draw(weight)
                change = SetWeight(server, value if value > 0 or spare(server) else 1.0)
            change.apply_model(model)
            if isinstance(change, RemoveServer):
                gone[change.server] = None
            else:
                gone.pop(change.server, None)
            changes.append(change)
        return changes

    return build()


@dataclass(frozen=True, slots=True)
class Request:
    """One request: ``gap`` seconds after the previous one, it takes ``service`` seconds."""

    gap: float
    service: float
    key: Key | None = None


def workloads(
    min_size: int = 1,
    max_size: int = 50,
    *,
    max_gap: float = 0.1,
    service: tuple[float, float] = (0.001, 10.0),
    keys: st.SearchStrategy[Key] | None = None,
) -> st.SearchStrategy[list[Request]]:
    """Request sequences: arrival gaps in [0, ``max_gap``], service times in ``service``.

    Gaps of 0 (bursts) and service times at both ends of the range (a
    10-second request among millisecond ones) come up early, as hypothesis
    favours boundaries. Give ``keys`` for hash strategies.

    Raises:
        ValueError: bad sizes, or ranges that are not finite and >= 0.
    """
    _check_sizes(min_size, max_size)
    _check_number("max_gap", max_gap)
    low, high = (_check_number("service", v) for v in service)
    if low > high:
        raise ValueError(f"service must be (low, high) with low <= high, got {service!r}")
    request = st.builds(
        Request,
        st.floats(0.0, max_gap),
        st.floats(low, high),
        st.none() if keys is None else keys,
    )
    return st.lists(request, min_size=min_size, max_size=max_size)


def replay(
    target: Any,
    requests: Iterable[Request],
    clock: ManualClock,
    *,
    after_each: Callable[[Lease, list[Lease]], None] | None = None,
) -> list[str]:
    """Drive ``target.acquire`` with ``requests`` on ``clock``; return the servers picked.

    ``target`` is a balancer or a pool built with ``clock``. Each lease is
    released (ok) when its service time is up, with the clock set to that
    moment, so latencies are exact; all are released by the end.
    ``after_each(lease, open_leases)`` runs after every arrival with the new
    lease and all open ones in arrival order: a place for
    :func:`assert_in_flight_consistent` and checks of the pick. This is a
    test driver, not the simulator: no capacities, failures or queues.

    Complexity: O(r log r) for r requests, plus the picks, plus
    O(open log open) per ``after_each`` call.
    """
    pending: list[tuple[float, int, Lease]] = []
    picks: list[str] = []
    for order, request in enumerate(requests):
        arrival = clock() + request.gap
        while pending and pending[0][0] <= arrival:
            done, _, lease = heapq.heappop(pending)
            clock.set(done)
            lease.release(ok=True)
        clock.set(arrival)
        lease = target.acquire(request.key)
        picks.append(lease.server)
        heapq.heappush(pending, (arrival + request.service, order, lease))
        if after_each is not None:
            after_each(lease, [entry[2] for entry in sorted(pending, key=_arrival)])
    while pending:
        done, _, lease = heapq.heappop(pending)
        clock.set(done)
        lease.release(ok=True)
    return picks


# -- assertions -----------------------------------------------------------------------


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


def assert_in_flight_consistent(
    balancer: Balancer, expected: Mapping[str, int] | Iterable[Lease]
) -> None:
    """Every member's ``in_flight`` equals the expected count of open requests.

    ``expected`` is ``{server: count}`` (missing servers count 0) or the
    leases you opened, of which the open ones (``ok is None``) are counted.
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
            if lease.ok is None:
                want[lease.server] = want.get(lease.server, 0) + 1
    members = list(balancer.servers)
    wrong = {s: (balancer.in_flight(s), want.get(s, 0)) for s in members}
    wrong = {s: pair for s, pair in wrong.items() if pair[0] != pair[1]}
    strays = {s: c for s, c in want.items() if s not in balancer}
    if wrong or strays:
        parts = [f"{s!r}: balancer says {got}, expected {exp}" for s, (got, exp) in wrong.items()]
        parts += [f"{s!r}: not a member, expected {c}" for s, c in strays.items()]
        raise AssertionError(f"in-flight counts differ: {'; '.join(parts)}; balancer: {balancer!r}")


# -- helpers --------------------------------------------------------------------------


def _check_sizes(min_size: int, max_size: int, name: str = "max_size") -> None:
    for label, value in (("min_size", min_size), (name, max_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{label} must be an int >= 0, got {value!r}")
    if max_size < min_size:
        raise ValueError(f"{name} must be >= min_size {min_size}, got {max_size!r}")


def _arrival(entry: tuple[float, int, Lease]) -> int:
    return entry[1]


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a finite number >= 0, got {value!r}")
    if not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


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
