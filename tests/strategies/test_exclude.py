"""``exclude=``: never a server already tried while another one can take the request."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Set as AbstractSet
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit import (
    BoundedLoadHash,
    ConsistentHash,
    IPHash,
    JumpHash,
    LeastConnections,
    LeastResponseTime,
    Maglev,
    NoServerAvailable,
    PowerOfTwoChoices,
    Rendezvous,
    RoundRobin,
    WeightedRoundRobin,
)
from balancekit.clock import ManualClock
from balancekit.strategies.base import Balancer, Member
from balancekit.testing import assert_excludes

from .contract import KEYS, STRATEGIES, run_in_threads

NAMES = [f"s{i}" for i in range(8)]
HASHED = [cls for cls in STRATEGIES if cls.requires_key]


def build(cls: type[Balancer], servers: dict[str, float], **options: Any) -> Balancer:
    """A balancer of ``cls``; Maglev with a small table so that examples stay fast."""
    if cls is Maglev:
        options.setdefault("table_size", 1009)
    if cls is PowerOfTwoChoices:
        options.setdefault("rng", random.Random(1))
    return cls(servers, **options)  # type: ignore[call-arg]


server_sets = st.dictionaries(
    st.sampled_from(NAMES), st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]), min_size=1, max_size=8
)
exclusions = st.sets(st.sampled_from([*NAMES, "not-a-member"]), max_size=9)


def allowed(servers: dict[str, float], exclude: set[str]) -> set[str]:
    """What the contract allows: the eligible servers outside ``exclude``, or all eligible."""
    eligible = {s for s, w in servers.items() if w > 0}
    return (eligible - exclude) or eligible


@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda cls: cls.__name__)
@settings(max_examples=60)
@given(servers=server_sets, exclude=exclusions, keys=st.lists(st.sampled_from(KEYS), max_size=6))
def test_exclude_is_honoured(
    cls: type[Balancer], servers: dict[str, float], exclude: set[str], keys: list[str]
) -> None:
    lb = build(cls, servers)
    ok = allowed(servers, exclude)
    leases = []
    for key in keys or [KEYS[0]]:
        if not ok:
            with pytest.raises(NoServerAvailable):
                lb.get_server(key, exclude=exclude)
            with pytest.raises(NoServerAvailable):
                lb.acquire(key, exclude=exclude)
            continue
        assert lb.get_server(key, exclude=exclude) in ok
        lease = lb.acquire(key, exclude=list(exclude))  # any collection will do
        assert lease.server in ok
        leases.append(lease)
        lb._check()
    for lease in leases:
        lease.release()
    assert all(lb.in_flight(s) == 0 for s in servers)
    lb._check()


@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda cls: cls.__name__)
def test_exclude_under_load_and_retries(cls: type[Balancer]) -> None:
    # A request retried until every server was tried: each attempt on a new server.
    servers = {s: 1 + i % 3 for i, s in enumerate(NAMES[:5])}
    lb = build(cls, servers)
    held = [lb.acquire(KEYS[i]) for i in range(7)]  # some load on the pool
    for key in KEYS[:40]:
        tried: list[str] = []
        for _ in range(len(servers)):
            lease = lb.acquire(key, exclude=tried)
            assert lease.server not in tried
            tried.append(lease.server)
            lease.release(ok=False)
        assert sorted(tried) == sorted(servers)
        # Everything tried: the exclusion is dropped, the pool still answers.
        lease = lb.acquire(key, exclude=tried)
        assert lease.server in servers
        lease.release()
    for lease in held:
        lease.release()
    lb._check()


@pytest.mark.parametrize("cls", HASHED, ids=lambda cls: cls.__name__)
@settings(max_examples=40)
@given(servers=server_sets, exclude=exclusions)
def test_hash_order_is_fixed_per_key(
    cls: type[Balancer], servers: dict[str, float], exclude: set[str]
) -> None:
    lb = build(cls, servers)
    eligible = {s for s, w in servers.items() if w > 0}
    if not eligible:
        return
    for key in KEYS[:20]:
        own = lb.get_server(key)
        other = lb.get_server(key, exclude=exclude)
        if own not in exclude or eligible <= exclude:
            assert other == own  # starts at the key's own server; all excluded: dropped
        # excluding what came before the answer changes nothing
        assert lb.get_server(key, exclude=exclude | {own} if own != other else exclude) == other


@pytest.mark.parametrize("cls", [c for c in HASHED if c is not JumpHash], ids=lambda c: c.__name__)
@settings(max_examples=30)
@given(servers=server_sets, exclude=exclusions)
def test_hash_exclusion_ignores_insertion_order(
    cls: type[Balancer], servers: dict[str, float], exclude: set[str]
) -> None:
    if not any(servers.values()):
        return
    forward = build(cls, servers)
    backward = build(cls, dict(reversed(list(servers.items()))))
    for key in KEYS[:20]:
        assert forward.get_server(key, exclude=exclude) == backward.get_server(key, exclude=exclude)


@pytest.mark.parametrize(
    "cls", [ConsistentHash, IPHash, Rendezvous, BoundedLoadHash], ids=lambda c: c.__name__
)
@settings(max_examples=40)
@given(servers=server_sets, exclude=exclusions)
def test_ring_and_rendezvous_follow_get_n_servers(
    cls: type[Balancer], servers: dict[str, float], exclude: set[str]
) -> None:
    lb = build(cls, servers)  # BoundedLoadHash idle: its ring's order
    if not any(servers.values()):
        return
    for key in KEYS[:20]:
        ranked = lb.get_n_servers(key, len(servers))  # type: ignore[attr-defined]
        expected = next((s for s in ranked if s not in exclude), ranked[0])
        assert lb.get_server(key, exclude=exclude) == expected
        lease = lb.acquire(key, exclude=exclude)
        assert lease.server == expected
        lease.release()


@pytest.mark.parametrize(
    "cls", [ConsistentHash, IPHash, Rendezvous, JumpHash], ids=lambda c: c.__name__
)
@settings(max_examples=40)
@given(servers=server_sets, exclude=exclusions)
def test_exclusion_is_where_the_key_goes_at_weight_zero(
    cls: type[Balancer], servers: dict[str, float], exclude: set[str]
) -> None:
    # A retry lands where the key will live if the pool ejects the servers tried.
    lb = build(cls, servers)
    zeroed = {s: (0.0 if s in exclude else w) for s, w in servers.items()}
    if not any(zeroed.values()):
        return
    ejected = build(cls, zeroed)
    for key in KEYS[:20]:
        assert lb.get_server(key, exclude=exclude) == ejected.get_server(key)


def test_bounded_load_skips_full_and_excluded_servers() -> None:
    lb = BoundedLoadHash(["a", "b", "c", "d"], balance_factor=1.0)
    ranked = lb.get_n_servers("hot", 4)
    leases = [lb.acquire("hot") for _ in range(3)]  # fills ranked[0..2] in turn
    assert [lease.server for lease in leases] == ranked[:3]
    # The fourth lease: 4 in flight, each server's cap 1, so only ranked[3] has room.
    assert lb.get_server("hot", exclude={ranked[3]}) in ranked[:3]  # all full: least loaded
    assert lb.get_server("hot", exclude={ranked[0]}) == ranked[3]


def test_maglev_spreads_an_excluded_servers_keys() -> None:
    servers = [f"m{i}" for i in range(5)]
    lb = Maglev(servers, table_size=5003)
    moved: Counter[str] = Counter()
    keys = [f"key-{i}" for i in range(20000)]
    for key in keys:
        if lb.get_server(key) == "m0":
            moved[lb.get_server(key, exclude={"m0"})] += 1
    total = sum(moved.values())
    assert set(moved) == {"m1", "m2", "m3", "m4"}
    # about a quarter each (4,000 keys of m0, so one share is ~1,000 +- 30)
    assert all(0.18 * total < count < 0.32 * total for count in moved.values()), moved


def nginx_smooth(weights: dict[str, float], current: dict[str, float], tried: set[str]) -> str:
    """nginx's scan (ngx_http_upstream_get_peer): tried peers neither gain nor count."""
    best, total = None, 0.0
    for server, weight in weights.items():
        if server in tried or weight <= 0:
            continue
        current[server] += weight
        total += weight
        if best is None or current[server] > current[best]:
            best = server
    assert best is not None
    current[best] -= total
    return best


def test_weighted_round_robin_follows_nginx_with_tried_peers() -> None:
    weights = {"a": 5.0, "b": 1.0, "c": 1.0, "d": 2.0}
    lb = WeightedRoundRobin(weights)
    current = dict.fromkeys(weights, 0.0)
    rng = random.Random(3)
    for step in range(400):
        tried = set(rng.sample(sorted(weights), rng.choice([0, 0, 0, 1, 2]))) if step % 3 else set()
        expected = nginx_smooth(weights, current, tried)
        assert lb.get_server(exclude=tried) == expected, step
        lb._check()


def test_round_robin_goes_on_past_the_excluded() -> None:
    lb = RoundRobin(["a", "b", "c", "d"])
    assert lb.get_server(exclude={"a", "b"}) == "c"
    assert lb.get_server() == "d"
    assert lb.get_server(exclude={"a"}) == "b"
    assert [lb.get_server() for _ in range(3)] == ["c", "d", "a"]


@pytest.mark.parametrize("cls", [LeastConnections, LeastResponseTime], ids=lambda c: c.__name__)
def test_least_load_is_the_least_outside_the_exclusion(cls: type[Balancer]) -> None:
    clock = ManualClock()
    lb = cls({"a": 1, "b": 1, "c": 2, "d": 1}, clock=clock)  # type: ignore[call-arg]
    held = [lb.acquire() for _ in range(9)]
    rng = random.Random(5)
    for _ in range(200):
        exclude = set(rng.sample("abcd", rng.randint(0, 3)))
        server = lb.get_server(exclude=exclude)
        loads = {s: lb.load(s) for s in "abcd" if s not in exclude}
        assert server not in exclude and loads[server] == min(loads.values())
        lease = lb.acquire(exclude=exclude)
        assert lease.server not in exclude
        clock.advance(0.01)
        held.append(lease)
        held.pop(rng.randrange(len(held))).release(ok=rng.random() < 0.8)
        lb._check()


def test_power_of_two_choices_draws_among_the_others() -> None:
    lb = PowerOfTwoChoices(["a", "b", "c"], rng=random.Random(2))
    busy = lb.acquire(exclude={"b", "c"})
    assert busy.server == "a"
    # a is busier, and excluding c leaves a and b: the draw always compares the two
    assert {lb.get_server(exclude={"c"}) for _ in range(50)} == {"b"}
    picks = Counter(lb.get_server(exclude={"a"}) for _ in range(600))
    assert set(picks) == {"b", "c"} and min(picks.values()) > 200


BAD_EXCLUDES = ["a", b"ab", 5, [1], {"a": 1, 2: 2}, [None]]


@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("bad", BAD_EXCLUDES, ids=repr)
def test_bad_exclude_is_refused_and_changes_nothing(cls: type[Balancer], bad: object) -> None:
    lb = build(cls, {"a": 1, "b": 2, "c": 1})
    held = lb.acquire(KEYS[0])
    before = (repr(lb), {s: lb.in_flight(s) for s in "abc"})
    with pytest.raises(TypeError, match="exclude") as info:
        lb.get_server(KEYS[1], exclude=bad)  # type: ignore[arg-type]
    assert repr(bad)[:3] in str(info.value)
    with pytest.raises(TypeError, match="exclude"):
        lb.acquire(KEYS[1], exclude=bad)  # type: ignore[arg-type]
    assert (repr(lb), {s: lb.in_flight(s) for s in "abc"}) == before
    held.release()
    lb._check()


@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda cls: cls.__name__)
def test_exclude_from_many_threads(cls: type[Balancer]) -> None:
    servers = {s: 1 + i % 3 for i, s in enumerate(NAMES)}
    lb = build(cls, servers)

    def work(offset: int) -> None:
        rng = random.Random(offset)
        for i in range(300):
            exclude = set(rng.sample(NAMES, rng.randint(1, 7)))
            lease = lb.acquire(KEYS[(offset * 7 + i) % len(KEYS)], exclude=exclude)
            assert lease.server not in exclude, (lease.server, exclude)
            lease.release(ok=rng.choice([True, False, None]))

    run_in_threads(work, 4)
    assert all(lb.in_flight(s) == 0 for s in servers)
    lb._check()


class IgnoresExclude(RoundRobin):
    """A broken strategy: it answers as if nothing were excluded."""

    def _choose_other(self, key: object, exclude: AbstractSet[str]) -> Member | None:
        return self._choose(key)


@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda cls: cls.__name__)
def test_assert_excludes_passes_every_strategy(cls: type[Balancer]) -> None:
    lb = build(cls, {"a": 1, "b": 2, "c": 0, "d": 1})
    assert_excludes(lb, KEYS[:50], {"a"})
    assert_excludes(lb, KEYS[:50], {"a", "b", "d", "gone"})  # all excluded: any eligible


def test_assert_excludes_catches_a_strategy_that_ignores_it() -> None:
    with pytest.raises(AssertionError, match=r"exclude=\['a'\] for 2 of 4 keys"):
        assert_excludes(IgnoresExclude(["a", "b"]), range(4), {"a"})
    with pytest.raises(ValueError):
        assert_excludes(RoundRobin(["a"]), [], {"a"})
