"""validate.py, and the validation holes of the runtime layer: each refused call names the
argument and the value, raises TypeError or ValueError (never OverflowError or
AttributeError), and changes nothing."""

from __future__ import annotations

import math
import random

import pytest

from balancekit import (
    BoundedLoadHash,
    Drainer,
    HealthTracker,
    Maglev,
    ManualClock,
    MemoryRouteStore,
    Pool,
    RoundRobin,
    StickySession,
    UnknownServer,
)
from balancekit.validate import (
    check_callable,
    check_instance,
    check_int,
    check_number,
    check_range,
    check_seed,
    check_server_list,
    check_time,
    show,
)

HUGE = 10**400  # too large for a float
ENORMOUS = 10**5000  # too long for Python to print


def test_show_summarises_ints_too_long_to_print() -> None:
    assert show(ENORMOUS) == f"<int of {ENORMOUS.bit_length()} bits>"
    assert show(-5) == "-5" and show("x") == "'x'"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert show(Broken()) == "<Broken object>"


@pytest.mark.parametrize("value", [HUGE, -HUGE, math.nan, math.inf])
def test_numbers_too_large_or_not_finite_are_value_errors(value: object) -> None:
    with pytest.raises(ValueError, match="x must be a finite number"):
        check_number("x", value)
    with pytest.raises(ValueError, match=r"x must be a finite number in \[0, 1\]"):
        check_range("x", value, 0.0, 1.0)


@pytest.mark.parametrize("value", [True, "1", None, 1j])
def test_non_numbers_are_type_errors(value: object) -> None:
    with pytest.raises(TypeError, match="x must be a number"):
        check_range("x", value, 0.0)


def test_range_bounds_open_and_closed() -> None:
    assert check_range("x", 1, 0.0, 1.0, low_open=True) == 1.0
    with pytest.raises(ValueError, match=r"x must be a finite number in \(0, 1\], got 0"):
        check_range("x", 0, 0.0, 1.0, low_open=True)
    with pytest.raises(ValueError, match="x must be a finite number > 0, got -1"):
        check_range("x", -1, 0.0, low_open=True)


def test_int_checks() -> None:
    assert check_int("n", 5, 1, 10) == 5
    with pytest.raises(ValueError, match=r"n must be an int in \[1, 10\], got <int of"):
        check_int("n", ENORMOUS, 1, 10)
    with pytest.raises(TypeError, match=r"n must be an int >= 1, got 2\.0"):
        check_int("n", 2.0, 1)
    with pytest.raises(TypeError, match="n must be an int >= 1, got True"):
        check_int("n", True, 1)


def test_seeds() -> None:
    assert check_seed(2**64 - 1) == 2**64 - 1
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*64\), got 18446"):
        check_seed(2**64)
    with pytest.raises(TypeError, match="seed must be an int"):
        check_seed(1.0)


@pytest.mark.parametrize(
    ("reading", "error"),
    [
        (None, TypeError),
        ("1", TypeError),
        (True, TypeError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        (-math.inf, ValueError),
        (HUGE, ValueError),
    ],
)
def test_clock_readings(reading: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="the clock must return"):
        check_time(reading)


def test_clock_readings_that_pass() -> None:
    assert check_time(3) == 3.0 and check_time(-1.5) == -1.5 and check_time(1e17) == 1e17


def test_server_lists_are_linear_and_refuse_repeats() -> None:
    names = [f"s{i}" for i in range(50_000)]
    assert check_server_list(iter(names)) == names
    with pytest.raises(ValueError, match="server 's7' is already a member"):
        check_server_list([*names[:10], "s7"])
    with pytest.raises(TypeError, match="servers must be an iterable of ids"):
        check_server_list("abc")


def test_callables_and_instances() -> None:
    with pytest.raises(TypeError, match="callback must be callable, got 42"):
        check_callable("callback", 42)
    with pytest.raises(
        TypeError, match="health must be a HealthTracker or None, got <object object>"
    ):
        check_instance("health", object(), HealthTracker, optional=True)
    check_instance("health", None, HealthTracker, optional=True)


def test_unknown_server_of_an_enormous_int_prints() -> None:
    assert str(UnknownServer(ENORMOUS)).startswith("unknown server <int of")
    with pytest.raises(UnknownServer) as caught:
        RoundRobin(["a"]).in_flight(ENORMOUS)  # type: ignore[arg-type]
    assert "int of" in str(caught.value)


# -- the holes, one by one --------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    ["panic_threshold", "slow_start", "slow_start_aggression", "slow_start_min_weight_percent"],
)
def test_pool_options_too_large_for_a_float(option: str) -> None:
    with pytest.raises(ValueError, match=option):
        Pool(RoundRobin(["a"]), **{option: HUGE})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("strategy", object()),
        ("health", object()),
        ("drainer", HealthTracker()),
        ("sticky", "secret"),
        ("on_change", 42),
        ("clock", 1.0),
    ],
)
def test_pool_components_of_the_wrong_type(option: str, value: object) -> None:
    kwargs: dict[str, object] = {"strategy": RoundRobin(["a"]), option: value}
    with pytest.raises(TypeError, match=option):
        Pool(**kwargs)  # type: ignore[arg-type]


def test_a_refused_pool_changes_no_component() -> None:
    tracker_clock = ManualClock(100.0)
    tracker = HealthTracker(["a"], interval=5.0, clock=None)
    drainer = Drainer(["a"])
    before = (tracker.clock, tracker.next_deadline(), drainer.clock)
    for bad in ({"panic_threshold": 2.0}, {"sticky": object()}, {"slow_start": -1}):
        with pytest.raises((TypeError, ValueError)):
            Pool(RoundRobin(["a"]), health=tracker, drainer=drainer, clock=tracker_clock, **bad)  # type: ignore[arg-type]
    assert (tracker.clock, tracker.next_deadline(), drainer.clock) == before
    # A clock that cannot be read refuses the pool before anything adopts it.
    with pytest.raises(TypeError, match="the clock must return"):
        Pool(RoundRobin(["a"]), health=tracker, clock=lambda: None)  # type: ignore[arg-type, return-value]
    assert tracker.clock is before[0]
    Pool(RoundRobin(["a"]), health=tracker, drainer=drainer, clock=tracker_clock)  # still usable


def test_a_component_belongs_to_one_pool() -> None:
    tracker = HealthTracker()
    Pool(RoundRobin(["a"]), health=tracker)
    with pytest.raises(ValueError, match="already belongs to a Pool"):
        Pool(RoundRobin(["b"]), health=tracker)
    drainer = Drainer()
    Pool(RoundRobin(["a"]), drainer=drainer)
    with pytest.raises(ValueError, match="already belongs to a Pool"):
        Pool(RoundRobin(["b"]), drainer=drainer)


def test_a_strategy_belongs_to_one_pool() -> None:
    # Two Pools would each push their own weights into it: a drain in one
    # starves the other of a server its stats still call active.
    strategy = RoundRobin(["a", "b"])
    pool = Pool(strategy)
    with pytest.raises(ValueError, match=r"RoundRobin\(.*already belongs to a Pool"):
        Pool(strategy)
    pool.drain("a")
    assert {pool.acquire().server for _ in range(4)} == {"b"}
    pool.cancel_drain("a")
    assert {pool.acquire().server for _ in range(4)} == {"a", "b"}


def test_bounded_load_factor_is_bounded() -> None:
    with pytest.raises(
        ValueError, match=r"balance_factor must be a finite number in \[1, 1e\+06\]"
    ):
        BoundedLoadHash(["a"], balance_factor=1e308)
    lb = BoundedLoadHash(["a", "b"], balance_factor=1e6)
    with lb.acquire("k") as lease:  # the largest factor still picks without overflow
        assert lease.server in ("a", "b")


def test_maglev_table_size_is_bounded() -> None:
    with pytest.raises(ValueError, match=r"table_size must be an int in \[2, 5000011\]"):
        Maglev(["a"], table_size=2**31 - 1)


def test_subscribe_refuses_what_cannot_be_called() -> None:
    for machine in (HealthTracker(["a"]), Drainer(["a"])):
        with pytest.raises(TypeError, match="callback must be callable, got 42"):
            machine.subscribe(42)  # type: ignore[arg-type]
        assert machine._subscribers == []


@pytest.mark.parametrize(
    ("key", "server", "now", "error"),
    [
        (1, "a", 0.0, TypeError),
        ("", "a", 0.0, ValueError),
        ("k", None, 0.0, TypeError),
        ("k", "", 0.0, ValueError),
        ("k", "a", math.nan, ValueError),
        ("k", "a", None, TypeError),
    ],
)
def test_route_store_set_checks_and_stores_nothing_refused(
    key: object, server: object, now: object, error: type[Exception]
) -> None:
    store = MemoryRouteStore(ttl=10.0)
    with pytest.raises(error):
        store.set(key, server, now)  # type: ignore[arg-type]
    assert len(store) == 0
    store._check()


def test_route_store_get_refuses_a_bad_time_before_anything_moves() -> None:
    store = MemoryRouteStore(ttl=10.0)
    store.set("k", "a", 5.0)
    with pytest.raises(ValueError):
        store.get("k", math.nan)
    assert store.get("k", 6.0) == "a"  # the NaN did not poison the table's time
    assert store._latest == 6.0


def test_sticky_options() -> None:
    with pytest.raises(ValueError, match="seed must be an int"):
        StickySession("k", seed=ENORMOUS)
    with pytest.raises(ValueError, match="max_routes must be an int >= 1"):
        StickySession("k", max_routes=0)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("interval", HUGE),
        ("timeout", 1e10),
        ("base_ejection", HUGE),
        ("max_ejection", 1e300),
        ("jitter", HUGE),
        ("max_ejected_percent", HUGE),
        ("consecutive_failures", 0),
    ],
)
def test_health_options_are_bounded(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        HealthTracker(**{option: value})  # type: ignore[arg-type]


def test_health_rng_and_initial_types() -> None:
    with pytest.raises(TypeError, match="rng must be a Random or None"):
        HealthTracker(rng=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="initial must be a HealthState"):
        HealthTracker(initial="healthy")  # type: ignore[arg-type]
    HealthTracker(rng=random.Random(1))


def test_drain_timeout_is_bounded() -> None:
    drainer = Drainer(["a"])
    drainer.opened("a")
    with pytest.raises(ValueError, match="timeout must be a finite number in"):
        drainer.drain("a", 1e300)
    assert drainer.is_active("a")
    with pytest.raises(ValueError, match="timeout"):
        Drainer(timeout=HUGE)


@pytest.mark.parametrize("sticky", [False, True])
def test_a_cookie_of_the_wrong_type_is_refused_with_or_without_stickiness(sticky: bool) -> None:
    pool = Pool(RoundRobin(["a", "b"]), sticky=StickySession("k") if sticky else None)
    with pytest.raises(TypeError, match="cookie must be str, bytes or None, got int"):
        pool.acquire(cookie=5)  # type: ignore[arg-type]
    assert pool.stats()["a"].in_flight == pool.stats()["b"].in_flight == 0
    assert pool.acquire(cookie="not-a-cookie").server in ("a", "b")  # a bad value is ignored
