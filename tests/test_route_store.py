from __future__ import annotations

import math
import threading
from collections import OrderedDict

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from balancekit.sticky.route_store import MemoryRouteStore, RouteStore, check_ttl


def test_is_a_route_store() -> None:
    assert isinstance(MemoryRouteStore(), RouteStore)
    assert not isinstance(object(), RouteStore)


def test_set_get_delete() -> None:
    store = MemoryRouteStore(max_entries=10)
    assert store.get("s1", 0.0) is None
    store.set("s1", "a", 0.0)
    store.set("s2", "b", 0.0)
    assert store.get("s1", 1.0) == "a" and store.get("s2", 1.0) == "b"
    store.set("s1", "c", 2.0)  # rebinding replaces
    assert store.get("s1", 2.0) == "c" and len(store) == 2
    store.delete("s1")
    store.delete("s1")  # idempotent
    store.delete("never")
    assert store.get("s1", 3.0) is None and "s1" not in store and len(store) == 1
    store.clear()
    assert len(store) == 0
    store._check()


def test_sliding_ttl_just_before_and_exactly_at() -> None:
    store = MemoryRouteStore(ttl=10.0)
    store.set("s", "a", 100.0)
    before = math.nextafter(110.0, 0.0)
    assert store.get("s", before) == "a"  # a hit: its last use is now `before`
    assert store.get("s", math.nextafter(before + 10.0, 0.0)) == "a"
    last = math.nextafter(before + 10.0, 0.0)
    assert store.get("s", last + 10.0) is None  # exactly ttl after the last use
    assert "s" not in store  # and it was dropped


def test_set_refreshes_the_expiry_too() -> None:
    store = MemoryRouteStore(ttl=5.0)
    store.set("s", "a", 0.0)
    store.set("s", "b", 4.0)
    assert store.get("s", 8.5) == "b"
    assert store.get("s", 13.5) is None


def test_without_ttl_entries_never_expire() -> None:
    store = MemoryRouteStore(max_entries=2)
    store.set("s", "a", 0.0)
    assert store.get("s", 1e12) == "a"
    assert store.expire(1e15) == 0 and store.ttl is None


def test_lru_bound_evicts_the_least_recently_used() -> None:
    store = MemoryRouteStore(max_entries=3)
    for i, key in enumerate(["k1", "k2", "k3"]):
        store.set(key, "a", float(i))
    assert store.get("k1", 3.0) == "a"  # k1 becomes most recent; k2 is now oldest
    store.set("k4", "b", 4.0)
    assert "k2" not in store and len(store) == 3
    store.set("k3", "c", 5.0)  # rebinding is a use: k1 is now oldest
    store.set("k5", "d", 6.0)
    assert sorted(store._entries) == ["k3", "k4", "k5"]
    store._check()


def test_expire_purges_only_expired_entries() -> None:
    store = MemoryRouteStore(ttl=10.0)
    for i in range(5):
        store.set(f"k{i}", "a", float(i))
    assert store.expire(12.0) == 3  # k0, k1, k2 are 12, 11, 10 s old
    assert sorted(store._entries) == ["k3", "k4"]
    assert store.expire(12.0) == 0
    store.set("k9", "b", 14.0)  # a set purges the front too
    assert sorted(store._entries) == ["k9"]


def test_a_stuttering_clock_keeps_the_order() -> None:
    # Calls can reach the store out of order from several threads: an older
    # `now` counts as the latest one seen, so the table stays in time order.
    store = MemoryRouteStore(ttl=10.0)
    store.set("k", "a", 5.0)
    store.set("j", "a", 6.0)
    assert store.get("k", 4.0) == "a"
    store.set("i", "b", 3.0)
    store._check()
    assert list(store._entries.items()) == [("j", ("a", 6.0)), ("k", ("a", 6.0)), ("i", ("b", 6.0))]
    assert store.get("j", 15.9) == "a"
    assert store.get("k", 16.0) is None
    assert store.get("i", 3.0) is None  # 3.0 counts as 16.0: i is 10 s old


@pytest.mark.parametrize(
    ("max_entries", "error"),
    [(0, ValueError), (-1, ValueError), (True, TypeError), (1.5, TypeError), ("3", TypeError)],
)
def test_bad_max_entries(max_entries: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=rf"max_entries must be an int >= 1, got {max_entries!r}"):
        MemoryRouteStore(max_entries=max_entries)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ttl", "error"),
    [
        (0, ValueError),
        (-1.0, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        (True, TypeError),
        ("5", TypeError),
    ],
)
def test_bad_ttl(ttl: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="ttl must be None or a finite number > 0, got"):
        MemoryRouteStore(ttl=ttl)  # type: ignore[arg-type]
    with pytest.raises(error, match=repr(ttl).replace("'", "")):
        check_ttl(ttl)


def test_options_and_repr() -> None:
    store = MemoryRouteStore(max_entries=50, ttl=2)
    assert store.max_entries == 50 and store.ttl == 2.0
    store.set("s1", "a", 0.0)
    assert repr(store) == "MemoryRouteStore({'s1': 'a'}, max_entries=50, ttl=2.0)"
    for i in range(20):
        store.set(f"k{i}", "b", 1.0)
    assert repr(store) == "MemoryRouteStore(<21 routes>, max_entries=50, ttl=2.0)"


def test_threads_keep_the_bound_and_the_order() -> None:
    store = MemoryRouteStore(max_entries=500, ttl=1000.0)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        barrier.wait()
        try:
            for i in range(2000):
                key = f"k{(worker * 7 + i) % 900}"
                store.set(key, f"s{worker}", float(i))
                store.get(f"k{i % 900}", float(i))
                if i % 5 == 0:
                    store.delete(f"k{(i * 3) % 900}")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(store) <= 500
    store._check()


class StoreModel(RuleBasedStateMachine):
    """MemoryRouteStore against a brute-force model: key -> (server, last use), LRU order."""

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryRouteStore(max_entries=4, ttl=10.0)
        self.model: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.now = 0.0

    def _live(self) -> None:
        for key, (_, used) in list(self.model.items()):
            if self.now - used >= 10.0:
                del self.model[key]

    @rule(key=st.sampled_from("abcdef"), server=st.sampled_from(["x", "y"]))
    def set(self, key: str, server: str) -> None:
        self.store.set(key, server, self.now)
        self._live()
        self.model.pop(key, None)
        self.model[key] = (server, self.now)
        while len(self.model) > 4:
            self.model.popitem(last=False)

    @rule(key=st.sampled_from("abcdef"))
    def get(self, key: str) -> None:
        entry = self.model.get(key)
        expected = None
        if entry is not None and self.now - entry[1] < 10.0:
            expected = entry[0]
            self.model.pop(key)
            self.model[key] = (expected, self.now)
        elif entry is not None:
            del self.model[key]
        assert self.store.get(key, self.now) == expected

    @rule(key=st.sampled_from("abcdef"))
    def delete(self, key: str) -> None:
        self.store.delete(key)
        self.model.pop(key, None)

    @rule(seconds=st.sampled_from([0.0, 1.0, 4.5, 10.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @invariant()
    def same_live_entries(self) -> None:
        self.store._check()
        live = {k: v for k, v in self.store._entries.items() if self.now - v[1] < 10.0}
        model = {k: v for k, v in self.model.items() if self.now - v[1] < 10.0}
        assert live == model


StoreModel.TestCase.settings = settings(max_examples=60, stateful_step_count=30)
TestStoreModel = StoreModel.TestCase
