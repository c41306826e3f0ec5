from __future__ import annotations

import itertools
import math
import random
import threading
from collections.abc import Callable

import pytest

from balancekit.clock import ManualClock
from balancekit.errors import DuplicateServer, UnknownServer
from balancekit.events import StateChange
from balancekit.health import HealthState, HealthTracker
from balancekit.health._ejection import Ejection

H = HealthState


def make(servers: tuple[str, ...] = ("a",), **options: object) -> tuple[HealthTracker, ManualClock]:
    clock = ManualClock()
    tracker = HealthTracker(servers, clock=clock, **options)  # type: ignore[arg-type]
    tracker._check()
    return tracker, clock


def change(server: str, old: HealthState, new: HealthState, at: float) -> StateChange:
    return StateChange(server, old, new, at)


def eject(tracker: HealthTracker, server: str) -> StateChange | None:
    """Fail real requests until one call changes something (or the streak is spent)."""
    result = None
    for _ in range(tracker.consecutive_failures):
        result = tracker.observe(server, ok=False)
    tracker._check()
    return result


# -- options ---------------------------------------------------------------------


def test_defaults_are_the_documented_ones() -> None:
    tracker = HealthTracker()
    assert (tracker.interval, tracker.timeout) == (5.0, 2.0)
    assert (tracker.unhealthy_threshold, tracker.healthy_threshold) == (3, 2)
    assert tracker.jitter == 0.0 and tracker.initial is H.HEALTHY
    assert tracker.consecutive_failures == 5
    assert (tracker.base_ejection, tracker.max_ejection) == (30.0, 300.0)
    assert tracker.max_ejected_percent == 10.0
    assert len(tracker) == 0 and tracker.servers == () and tracker.next_deadline() is None


def test_repr_shows_states_and_options() -> None:
    tracker, _ = make(("a", "b"), unhealthy_threshold=1)
    tracker.record("b", ok=False)
    text = repr(tracker)
    assert text.startswith("HealthTracker({'a': 'healthy', 'b': 'unhealthy'}, interval=5.0")
    assert "unhealthy_threshold=1" in text and "max_ejected_percent=10.0" in text


BAD_OPTIONS: list[tuple[str, object, type[Exception]]] = [
    ("interval", 0, ValueError),
    ("interval", -1.0, ValueError),
    ("interval", math.nan, ValueError),
    ("interval", math.inf, ValueError),
    ("interval", "5", TypeError),
    ("interval", True, TypeError),
    ("timeout", 0.0, ValueError),
    ("timeout", 5.0, ValueError),  # must be < interval
    ("timeout", None, TypeError),
    ("unhealthy_threshold", 0, ValueError),
    ("unhealthy_threshold", 2.0, TypeError),
    ("unhealthy_threshold", True, TypeError),
    ("healthy_threshold", -3, ValueError),
    ("healthy_threshold", False, TypeError),
    ("jitter", -0.5, ValueError),
    ("jitter", 5.0, ValueError),  # must be < interval
    ("jitter", math.nan, ValueError),
    ("initial", H.UNHEALTHY, ValueError),
    ("initial", H.EJECTED, ValueError),
    ("initial", "healthy", TypeError),
    ("consecutive_failures", 0, ValueError),
    ("consecutive_failures", True, TypeError),
    ("base_ejection", 0, ValueError),
    ("base_ejection", math.inf, ValueError),
    ("max_ejection", 10.0, ValueError),  # must be >= base_ejection (30)
    ("max_ejected_percent", -1, ValueError),
    ("max_ejected_percent", 100.5, ValueError),
    ("max_ejected_percent", math.nan, ValueError),
    ("rng", 1, TypeError),
]


@pytest.mark.parametrize(("name", "value", "error"), BAD_OPTIONS)
def test_bad_option_names_the_option_and_the_value(
    name: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        HealthTracker(["a"], **{name: value})  # type: ignore[arg-type]
    assert name in str(info.value) and repr(value) in str(info.value)


def test_edge_options_are_accepted() -> None:
    tracker = HealthTracker(
        interval=1, timeout=0.999, jitter=0.999, max_ejected_percent=0, max_ejection=30
    )
    assert tracker.interval == 1.0 and tracker.jitter == 0.999
    assert HealthTracker(max_ejected_percent=100).max_ejected_percent == 100.0


@pytest.mark.parametrize(
    ("servers", "error"),
    [("ab", TypeError), (b"ab", TypeError), (5, TypeError), (["a", 1], TypeError),
     (["a", ""], ValueError), (["a", "a"], DuplicateServer)],
)  # fmt: skip
def test_bad_servers_are_rejected(servers: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        HealthTracker(servers)  # type: ignore[arg-type]


# -- membership --------------------------------------------------------------------


def test_membership() -> None:
    tracker, _ = make(("a", "b"))
    tracker.add_server("c")
    assert tracker.servers == ("a", "b", "c") and len(tracker) == 3 and "c" in tracker
    tracker.remove_server("a")
    assert list(tracker.servers) == ["b", "c"] and "a" not in tracker and 7 not in tracker
    tracker._check()


def test_add_duplicate_or_bad_id_raises_and_changes_nothing() -> None:
    tracker, _ = make(("a",), unhealthy_threshold=1)
    tracker.record("a", ok=False)
    with pytest.raises(DuplicateServer, match="'a'"):
        tracker.add_server("a")
    with pytest.raises(TypeError, match="server"):
        tracker.add_server(3)  # type: ignore[arg-type]
    assert tracker.servers == ("a",) and tracker.state("a") is H.UNHEALTHY
    tracker._check()


def test_unknown_server_raises_everywhere_and_changes_nothing() -> None:
    tracker, _ = make(("a",))
    for call in (
        lambda: tracker.remove_server("x"),
        lambda: tracker.record("x", ok=True),
        lambda: tracker.observe("x", ok=False),
        lambda: tracker.state("x"),
        lambda: tracker.is_healthy("x"),
        lambda: tracker.ejection_count("x"),
    ):
        with pytest.raises(UnknownServer, match="'x'"):
            call()
    assert tracker.servers == ("a",)
    tracker._check()


@pytest.mark.parametrize("ok", [1, None, "yes"])
def test_ok_must_be_a_bool_and_a_bad_one_changes_nothing(ok: object) -> None:
    tracker, _ = make(("a",), unhealthy_threshold=2, consecutive_failures=2)
    tracker.record("a", ok=False)
    tracker.observe("a", ok=False)
    for method in (tracker.record, tracker.observe):
        with pytest.raises(TypeError, match="ok must be a bool"):
            method("a", ok)  # type: ignore[arg-type]
    # Each streak is still at one: one more failure of each kind completes it.
    assert tracker.record("a", ok=False) == change("a", H.HEALTHY, H.UNHEALTHY, 0.0)


def test_removed_server_leaves_no_timers_behind() -> None:
    tracker, clock = make(("a", "b"), unhealthy_threshold=1, max_ejected_percent=100)
    assert tracker.due() == ["a", "b"]
    eject(tracker, "b")
    tracker.remove_server("a")
    tracker.remove_server("b")
    tracker.add_server("a")  # a new record under the old name
    clock.advance(100)
    assert tracker.poll() == [] and tracker.state("a") is H.HEALTHY
    tracker._check()


# -- one test per transition -----------------------------------------------------------


def test_healthy_to_unhealthy_after_threshold_failed_probes() -> None:
    tracker, _ = make(unhealthy_threshold=3)
    assert tracker.record("a", ok=False) is None
    assert tracker.record("a", ok=False) is None
    assert tracker.is_healthy("a")
    assert tracker.record("a", ok=False) == change("a", H.HEALTHY, H.UNHEALTHY, 0.0)
    assert tracker.record("a", ok=False) is None
    assert not tracker.is_healthy("a")
    tracker._check()


def test_unhealthy_to_healthy_after_threshold_passed_probes() -> None:
    tracker, clock = make(unhealthy_threshold=1, healthy_threshold=3)
    tracker.record("a", ok=False)
    clock.advance(1)
    assert tracker.record("a", ok=True) is None
    assert tracker.record("a", ok=True) is None
    assert tracker.state("a") is H.UNHEALTHY
    assert tracker.record("a", ok=True) == change("a", H.UNHEALTHY, H.HEALTHY, 1.0)
    tracker._check()


def test_unknown_to_healthy_on_the_first_passed_probe() -> None:
    tracker, _ = make(("a",), initial=H.UNKNOWN, healthy_threshold=3)
    assert tracker.state("a") is H.UNKNOWN and not tracker.is_healthy("a")
    assert tracker.record("a", ok=True) == change("a", H.UNKNOWN, H.HEALTHY, 0.0)
    tracker._check()


def test_unknown_to_unhealthy_on_the_first_failed_probe() -> None:
    tracker, _ = make(("a",), initial=H.UNKNOWN, unhealthy_threshold=3, healthy_threshold=2)
    assert tracker.record("a", ok=False) == change("a", H.UNKNOWN, H.UNHEALTHY, 0.0)
    # From there it is an ordinary unhealthy server: healthy_threshold passes.
    assert tracker.record("a", ok=True) is None
    assert tracker.record("a", ok=True) == change("a", H.UNHEALTHY, H.HEALTHY, 0.0)
    tracker._check()


def test_healthy_to_ejected_after_consecutive_failed_requests() -> None:
    tracker, _ = make(("a",), consecutive_failures=3, base_ejection=10, max_ejected_percent=100)
    assert tracker.observe("a", ok=False) is None
    assert tracker.observe("a", ok=False) is None
    assert tracker.observe("a", ok=False) == change("a", H.HEALTHY, H.EJECTED, 0.0)
    assert not tracker.is_healthy("a") and tracker.ejection_count("a") == 1
    tracker._check()


def test_ejected_to_healthy_when_the_ejection_ends_exactly_at_its_deadline() -> None:
    tracker, clock = make(("a",), base_ejection=10, max_ejected_percent=100, uneject_on_probe=False)
    tracker.due()
    tracker.record("a", ok=True)
    eject(tracker, "a")
    clock.set(4.999)
    assert tracker.next_deadline() == 5.0  # the next probe comes first
    clock.set(5.0)
    assert tracker.due() == ["a"]  # an ejected server is still probed
    clock.set(9.999)
    assert tracker.poll() == [] and tracker.state("a") is H.EJECTED
    tracker.record("a", ok=True)  # a passing probe does not cut an ejection short
    assert tracker.next_deadline() == 10.0
    clock.set(10.0)
    assert tracker.poll() == [change("a", H.EJECTED, H.HEALTHY, 10.0)]
    assert tracker.poll() == [] and tracker.is_healthy("a")
    tracker._check()


def test_ejected_to_unhealthy_when_probes_fail_too() -> None:
    tracker, clock = make(("a",), unhealthy_threshold=2, max_ejected_percent=100)
    tracker.record("a", ok=False)  # a streak begun while healthy carries on
    eject(tracker, "a")
    clock.advance(1)
    assert tracker.record("a", ok=False) == change("a", H.EJECTED, H.UNHEALTHY, 1.0)
    # The ejection is over for good: its end changes nothing.
    clock.advance(1000)
    assert tracker.poll() == [] and tracker.state("a") is H.UNHEALTHY
    tracker._check()


def test_a_success_resets_the_failure_streak_and_vice_versa() -> None:
    tracker, _ = make(unhealthy_threshold=3, healthy_threshold=3)
    for ok in (False, False, True, False, False, True):
        assert tracker.record("a", ok=ok) is None
    assert tracker.record("a", ok=False) is None
    assert tracker.record("a", ok=False) is None
    assert tracker.record("a", ok=False) is not None  # three in a row at last
    for ok in (True, True, False, True, True):
        assert tracker.record("a", ok=ok) is None
    assert tracker.record("a", ok=True) == change("a", H.UNHEALTHY, H.HEALTHY, 0.0)


def test_a_passed_request_resets_the_passive_streak() -> None:
    tracker, _ = make(("a",), consecutive_failures=3, max_ejected_percent=100)
    for ok in (False, False, True, False, False):
        assert tracker.observe("a", ok=ok) is None
    assert tracker.observe("a", ok=False) is not None


@pytest.mark.parametrize("start", [H.UNHEALTHY, H.UNKNOWN, H.EJECTED])
def test_real_traffic_is_not_judged_on_a_server_already_out(start: HealthState) -> None:
    tracker, _ = make(("a",), initial=H.UNKNOWN, max_ejected_percent=100)
    if start is H.UNHEALTHY:
        tracker.record("a", ok=False)
    elif start is H.EJECTED:
        tracker.record("a", ok=True)
        eject(tracker, "a")
    assert tracker.state("a") is start
    for _ in range(20):
        assert tracker.observe("a", ok=False) is None
    assert tracker.state("a") is start and tracker.ejection_count("a") == (start is H.EJECTED)
    tracker._check()


def test_a_returning_server_starts_a_fresh_passive_streak() -> None:
    tracker, clock = make(("a",), consecutive_failures=3, base_ejection=10, max_ejected_percent=100)
    tracker.observe("a", ok=False)
    tracker.observe("a", ok=False)
    tracker.observe("a", ok=False)
    clock.advance(10)
    assert tracker.observe("a", ok=False) is None  # one failure, not four
    assert tracker.state("a") is H.HEALTHY


# -- active checks on the clock ---------------------------------------------------------


def test_first_probe_is_due_at_once_then_every_interval() -> None:
    tracker, clock = make(("a", "b"))
    assert tracker.next_deadline() == 0.0
    assert tracker.due() == ["a", "b"]
    assert tracker.due() == []
    tracker.record("a", ok=True)
    tracker.record("b", ok=True)
    assert tracker.next_deadline() == 5.0
    clock.set(4.999)
    assert tracker.due() == []
    clock.set(5.0)
    assert tracker.due() == ["a", "b"]
    tracker._check()


def test_a_late_caller_probes_once_and_the_schedule_restarts_from_then() -> None:
    tracker, clock = make(("a",))
    tracker.due()
    tracker.record("a", ok=True)
    clock.set(23.0)  # four intervals missed: one probe, not four
    assert tracker.due() == ["a"]
    assert tracker.due() == []
    assert tracker.next_deadline() == 25.0  # its timeout
    tracker.record("a", ok=True)
    assert tracker.next_deadline() == 28.0


def test_a_server_added_later_is_due_when_added() -> None:
    tracker, clock = make(("a",))
    tracker.due()
    clock.set(3.0)
    tracker.add_server("b")
    assert tracker.due() == ["b"]
    tracker._check()


def test_probe_reported_just_before_its_timeout_counts() -> None:
    tracker, clock = make(("a",), unhealthy_threshold=1)
    tracker.due()
    clock.set(1.999)
    assert tracker.record("a", ok=True) is None
    clock.set(2.0)
    assert tracker.poll() == [] and tracker.is_healthy("a")


def test_probe_not_reported_by_its_timeout_is_a_failure_at_exactly_the_timeout() -> None:
    tracker, clock = make(("a",), unhealthy_threshold=1)
    tracker.due()
    clock.set(1.999)
    assert tracker.poll() == [] and tracker.is_healthy("a")
    clock.set(2.0)
    assert not tracker.is_healthy("a")  # any call that reads the clock notices
    assert tracker.poll() == [change("a", H.HEALTHY, H.UNHEALTHY, 2.0)]
    assert tracker.poll() == []  # reported once
    tracker._check()


def test_late_result_of_a_timed_out_probe_is_ignored_once() -> None:
    tracker, clock = make(("a",), unhealthy_threshold=2, healthy_threshold=1)
    tracker.due()
    clock.set(2.0)  # the probe timed out: one failure
    assert tracker.record("a", ok=True) is None  # its late answer: ignored
    assert tracker.record("a", ok=False) == change("a", H.HEALTHY, H.UNHEALTHY, 2.0)
    # The next result stands on its own again.
    assert tracker.record("a", ok=True) == change("a", H.UNHEALTHY, H.HEALTHY, 2.0)


def test_a_new_probe_forgets_the_late_one() -> None:
    tracker, clock = make(("a",), unhealthy_threshold=2)
    tracker.due()
    clock.set(5.0)  # timed out at 2.0, the next probe starts now
    assert tracker.due() == ["a"]
    # This result answers the probe started at 5.0: a failure, the second.
    assert tracker.record("a", ok=False) == change("a", H.HEALTHY, H.UNHEALTHY, 5.0)


def test_record_needs_no_due_and_leaves_the_schedule_alone() -> None:
    tracker, clock = make(("a",), unhealthy_threshold=2)
    tracker.due()
    tracker.record("a", ok=True)
    clock.set(1.0)
    assert tracker.record("a", ok=False) is None
    assert tracker.record("a", ok=False) == change("a", H.HEALTHY, H.UNHEALTHY, 1.0)
    assert tracker.next_deadline() == 5.0


def run_probes(
    tracker: HealthTracker,
    clock: ManualClock,
    until: float,
    answer: Callable[[str, float], bool | None],
) -> list[StateChange]:
    """Drive the tracker like an event loop: sleep to each deadline, probe what is due.

    ``answer(server, now)`` is the probe's result, reported at once, or
    ``None`` for a probe that hangs.
    """
    changes: list[StateChange] = []
    while (deadline := tracker.next_deadline()) is not None and deadline <= until:
        clock.set(max(deadline, clock()))
        for server in tracker.due():
            result = answer(server, clock())
            if result is not None:
                found = tracker.record(server, result)
                changes += [found] if found else []
        changes += tracker.poll()
        tracker._check()
    return sorted(changes, key=lambda c: c.at)


def test_detection_time_is_interval_times_threshold() -> None:
    # The article's numbers: 5 s x 3 = 15 s to detect, 5 s x 2 = 10 s to recover.
    tracker, clock = make(("a", "b"))
    dead = (0.5, 30.5)  # a dies just after its probe at 0 and revives before 35
    changes = run_probes(tracker, clock, 60, lambda s, t: s == "b" or not dead[0] < t < dead[1])
    assert changes == [
        change("a", H.HEALTHY, H.UNHEALTHY, 15.0),  # last good probe at 0 + 5 x 3
        change("a", H.UNHEALTHY, H.HEALTHY, 40.0),  # first good probe at 35, + 5 x (2 - 1)
    ]


def test_detection_time_with_hanging_probes_adds_one_timeout() -> None:
    tracker, clock = make(("a",))
    changes = run_probes(tracker, clock, 60, lambda s, t: True if t < 1 else None)
    assert changes[0] == change("a", H.HEALTHY, H.UNHEALTHY, 5.0 * 3 + 2.0)
    assert len(changes) == 1


# -- jitter -------------------------------------------------------------------------------


def probe_starts(
    tracker: HealthTracker, clock: ManualClock, until: float
) -> dict[str, list[float]]:
    starts: dict[str, list[float]] = {s: [] for s in tracker.servers}

    def answer(server: str, now: float) -> bool:
        starts[server].append(now)
        return True

    run_probes(tracker, clock, until, answer)
    return starts


def test_jitter_spreads_probes_and_bounds_every_interval() -> None:
    servers = tuple(f"s{i}" for i in range(100))
    tracker, clock = make(servers, interval=5.0, jitter=1.0, rng=random.Random(1))
    starts = probe_starts(tracker, clock, 60)
    for times in starts.values():
        assert 0 <= times[0] <= 1.0  # the first probe is spread as well
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(gaps) >= 9
        assert all(5.0 - 1.0 <= gap <= 5.0 + 1.0 for gap in gaps), gaps
        assert all(gap >= 5.0 for gap in gaps)  # the offset is one-sided: [0, jitter]
    for round_ in range(3):
        instants = {times[round_] for times in starts.values()}
        assert len(instants) > 90, round_  # no storm: nearly every start is distinct


def test_jitter_is_seeded() -> None:
    servers = tuple(f"s{i}" for i in range(10))
    runs = []
    for seed in (7, 7, 8):
        tracker, clock = make(servers, jitter=2.0, rng=random.Random(seed))
        runs.append(probe_starts(tracker, clock, 30))
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_without_jitter_the_rng_is_never_used() -> None:
    rng = random.Random(3)
    state = rng.getstate()
    tracker, clock = make(("a", "b"), rng=rng)
    probe_starts(tracker, clock, 30)
    assert rng.getstate() == state


# -- ejection lengths, decay and the cap ---------------------------------------------------


def test_flapping_server_is_ejected_longer_each_time_up_to_the_cap() -> None:
    tracker, clock = make(("a",), base_ejection=30, max_ejection=100, max_ejected_percent=100)
    lengths = []
    for _ in range(6):
        start = clock()
        assert eject(tracker, "a") == change("a", H.HEALTHY, H.EJECTED, start)
        ended: list[StateChange] = []
        while not ended:
            clock.advance(0.5)
            ended = tracker.poll()
        assert ended == [change("a", H.EJECTED, H.HEALTHY, clock())]
        lengths.append(clock() - start)
    assert lengths == [30, 60, 90, 100, 100, 100]


def ejected_for(tracker: HealthTracker, clock: ManualClock, server: str) -> float:
    """Eject ``server`` now and return how long the ejection lasts (ManualClock steps)."""
    start = clock()
    assert eject(tracker, server) == change(server, H.HEALTHY, H.EJECTED, start)
    end = tracker.next_change()
    assert end is not None
    clock.set(end)
    assert tracker.poll() == [change(server, H.EJECTED, H.HEALTHY, end)]
    return end - start


def test_envoys_eject_time_backoff_test() -> None:
    # Envoy's OutlierDetectorImplTest.EjectTimeBackoff: base_ejection_time 10 s, the
    # default interval (10 s) and max_ejection_time (300 s). Ejected at 0, 10 and 30,
    # back at 10, 30 and 60; two healthy intervals (70, 80) bring the multiplier from
    # 3 to 1, so an ejection at 80 lasts 20 s; after 50 healthy intervals one at 610
    # lasts 10 s again.
    tracker, clock = make(("a",), base_ejection=10)
    assert tracker.outlier_interval == 10.0 and tracker.max_ejection == 300.0
    assert [ejected_for(tracker, clock, "a") for _ in range(3)] == [10, 20, 30]
    assert clock() == 60 and tracker.ejection_count("a") == 3
    clock.set(69.999)
    assert tracker.ejection_count("a") == 3
    clock.set(70)
    assert tracker.ejection_count("a") == 2
    clock.set(80)
    assert tracker.ejection_count("a") == 1
    assert ejected_for(tracker, clock, "a") == 20
    assert clock() == 100
    clock.set(610)
    assert tracker.ejection_count("a") == 0
    assert ejected_for(tracker, clock, "a") == 10
    tracker._check()


def test_the_multiplier_decays_one_per_outlier_interval_not_per_base_ejection() -> None:
    # The defaults: base_ejection 30 s, outlier_interval 10 s (Envoy's interval).
    tracker, clock = make(("a",))
    assert [ejected_for(tracker, clock, "a") for _ in range(3)] == [30, 60, 90]
    back = clock()
    clock.set(back + 9.999)
    assert tracker.ejection_count("a") == 3
    clock.set(back + 10)
    assert tracker.ejection_count("a") == 2
    clock.set(back + 20)
    assert tracker.ejection_count("a") == 1  # was 3: one step per 30 s
    assert ejected_for(tracker, clock, "a") == 60  # was 120
    assert Ejection(5, 30, 300, 10).decayed(3, unejected_for=20) == 1
    # Before the ejection's end (a re-ejection while a cut-short one would still
    # run): no decay, and never a rise.
    assert Ejection(5, 30, 300, 10).decayed(3, unejected_for=-25) == 3
    tracker._check()


def test_the_decay_follows_the_outlier_interval() -> None:
    tracker, clock = make(("a",), base_ejection=10, outlier_interval=2.5)
    assert [ejected_for(tracker, clock, "a") for _ in range(3)] == [10, 20, 30]
    clock.advance(5)
    assert tracker.ejection_count("a") == 1
    clock.advance(2.5)
    assert tracker.ejection_count("a") == 0
    tracker._check()


def test_the_multiplier_stops_one_base_past_max_ejection_as_envoys() -> None:
    # Envoy raises the multiplier only while multiplier x base < max + base: with
    # base 10 s and max 30 s it stops at 4, so three intervals bring it back to 1.
    tracker, clock = make(("a",), base_ejection=10, max_ejection=30)
    lengths = [ejected_for(tracker, clock, "a") for _ in range(10)]
    assert lengths == [10, 20, 30, 30, 30, 30, 30, 30, 30, 30]
    assert tracker.ejection_count("a") == 4  # was 10
    clock.advance(30)
    assert tracker.ejection_count("a") == 1
    assert ejected_for(tracker, clock, "a") == 20  # was 30 (10 - 3 + 1 = 8 bases, capped)
    tracker._check()


@pytest.mark.parametrize("interval", [0, -1.0, math.nan, math.inf, "10"])
def test_a_bad_decay_interval_is_named(interval: object) -> None:
    error = TypeError if isinstance(interval, str) else ValueError
    with pytest.raises(error, match="interval"):
        Ejection(5, 30, 300, 10, interval)  # type: ignore[arg-type]
    ejection = Ejection(5, 30, 300, 10, 2.0)
    assert (ejection.interval, ejection.decayed(4, 5.0)) == (2.0, 2)
    assert repr(ejection).endswith("interval=2.0, ejected=0)")


def test_envoys_max_eject_time_test() -> None:
    # Envoy's OutlierDetectorImplTest.MaxEjectTime: base 10 s, max 300 s; 30 ejections
    # in a row last 10, 20, ..., 300 s, the nine after them 300 s each.
    tracker, clock = make(("a",), base_ejection=10, max_ejection=300)
    lengths = [ejected_for(tracker, clock, "a") for _ in range(39)]
    assert lengths == [10.0 * i for i in range(1, 31)] + [300.0] * 9
    assert tracker.ejection_count("a") == 31  # 31 x 10 >= 300 + 10: no further
    tracker._check()


def test_time_out_of_service_decays_the_multiplier_once_the_ejection_is_over() -> None:
    # Envoy lowers the multiplier of every host not ejected, failing active checks or
    # not; an ejection cut short by failed probes would still have run to its end.
    tracker, clock = make(("a",), unhealthy_threshold=1, base_ejection=10)
    assert [ejected_for(tracker, clock, "a") for _ in range(2)] == [10, 20]
    eject(tracker, "a")  # the third, at 30, would end at 60
    clock.set(35)
    assert tracker.record("a", ok=False) == change("a", H.EJECTED, H.UNHEALTHY, 35.0)
    clock.set(69.999)
    assert tracker.ejection_count("a") == 3  # one interval after 60 is 70
    clock.set(70)
    assert tracker.ejection_count("a") == 2
    clock.set(90)
    assert tracker.ejection_count("a") == 0  # was 3: UNHEALTHY time did not count
    tracker.record("a", ok=True)
    assert tracker.record("a", ok=True) == change("a", H.UNHEALTHY, H.HEALTHY, 90.0)
    assert tracker.ejection_count("a") == 0
    assert ejected_for(tracker, clock, "a") == 10
    tracker._check()


def test_a_probe_that_ends_an_ejection_starts_the_decay_at_once() -> None:
    tracker, clock = make(("a",), base_ejection=10)
    eject(tracker, "a")
    clock.set(4)
    assert tracker.record("a", ok=True) == change("a", H.EJECTED, H.HEALTHY, 4.0)
    clock.set(13.999)
    assert tracker.ejection_count("a") == 1
    clock.set(14)
    assert tracker.ejection_count("a") == 0
    tracker._check()


def test_max_ejected_percent_caps_ejections_and_a_refused_one_spends_the_streak() -> None:
    servers = tuple(f"s{i}" for i in range(10))
    tracker, clock = make(servers, base_ejection=10)  # 10 % of 10: one server
    assert eject(tracker, "s0") is not None
    assert eject(tracker, "s1") is None  # refused: the streak is spent, no change
    assert tracker.state("s1") is H.HEALTHY
    assert tracker._records["s1"].passive == 0
    clock.set(10)  # s0 is back: there is room again
    assert tracker.poll() == [change("s0", H.EJECTED, H.HEALTHY, 10.0)]
    for _ in range(4):
        assert tracker.observe("s1", ok=False) is None  # was: the first one ejected s1
    assert tracker.observe("s1", ok=False) == change("s1", H.HEALTHY, H.EJECTED, 10.0)
    tracker._check()


def test_a_refused_ejection_resets_the_streak_as_envoy_does() -> None:
    # Envoy's onConsecutiveErrorWorker resets the consecutive-5xx counter after
    # every ejection attempt, also one that max_ejection_percent refused: a
    # server needs a whole new streak, not one more failure.
    tracker, clock = make(("a", "b", "c"), consecutive_failures=5, max_ejected_percent=10)
    assert eject(tracker, "a") == change("a", H.HEALTHY, H.EJECTED, 0.0)
    assert eject(tracker, "b") is None  # refused: 2 of 3 is over 10 %
    assert tracker.state("b") is H.HEALTHY
    clock.advance(30.1)
    assert tracker.poll() == [change("a", H.EJECTED, H.HEALTHY, 30.0)]
    assert eject(tracker, "a") == change("a", H.HEALTHY, H.EJECTED, 30.1)
    assert tracker.record("a", True) == change("a", H.EJECTED, H.HEALTHY, 30.1)
    for _ in range(4):
        assert tracker.observe("b", ok=False) is None  # was: the first one ejected b
    assert tracker.observe("b", ok=False) == change("b", H.HEALTHY, H.EJECTED, 30.1)
    tracker._check()


def test_every_refused_attempt_spends_its_own_streak() -> None:
    tracker, _ = make(("a", "b"), consecutive_failures=3, max_ejected_percent=10)
    eject(tracker, "a")
    outcomes = [tracker.observe("b", ok=False) for _ in range(9)]
    assert outcomes == [None] * 9 and tracker.state("b") is H.HEALTHY
    assert tracker._records["b"].passive == 0  # three attempts, each refused
    tracker.observe("b", ok=False)
    assert tracker._records["b"].passive == 1
    tracker._check()


@pytest.mark.parametrize(
    ("servers", "percent", "allowed"),
    [(20, 10.0, 2), (3, 10.0, 1), (4, 50.0, 2), (5, 100.0, 5), (10, 0.0, 0), (7, 30.0, 2)],
)
def test_how_many_servers_may_be_ejected_at_once(
    servers: int, percent: float, allowed: int
) -> None:
    names = tuple(f"s{i}" for i in range(servers))
    tracker, _ = make(names, max_ejected_percent=percent)
    results = [eject(tracker, name) for name in names]
    assert sum(r is not None for r in results) == allowed
    assert sum(tracker.state(n) is H.EJECTED for n in names) == allowed


def test_removing_an_ejected_server_frees_its_place() -> None:
    tracker, _ = make(tuple(f"s{i}" for i in range(10)))
    eject(tracker, "s0")
    assert eject(tracker, "s1") is None
    tracker.remove_server("s0")
    assert eject(tracker, "s1") == change("s1", H.HEALTHY, H.EJECTED, 0.0)  # a new streak
    tracker._check()


# -- polling, deadlines, subscribers, clocks ------------------------------------------------


def test_poll_returns_time_driven_changes_in_time_order() -> None:
    tracker, clock = make(("a", "b", "c"), unhealthy_threshold=1, base_ejection=3,
                          max_ejected_percent=100)  # fmt: skip
    clock.set(0.5)
    eject(tracker, "c")  # ends at 3.5
    clock.set(1.0)
    assert tracker.due() == ["a", "b", "c"]  # time out at 3.0
    tracker.record("a", ok=True)
    clock.set(4.0)
    assert tracker.poll() == [
        change("b", H.HEALTHY, H.UNHEALTHY, 3.0),
        change("c", H.EJECTED, H.UNHEALTHY, 3.0),
    ]


def test_next_deadline_is_the_earliest_of_probes_timeouts_and_ejections() -> None:
    tracker, clock = make(("a", "b"), base_ejection=1.5, max_ejected_percent=100)
    assert tracker.next_deadline() == 0.0
    tracker.due()
    assert tracker.next_deadline() == 2.0  # timeouts
    eject(tracker, "a")
    assert tracker.next_deadline() == 1.5  # the ejection ends first
    tracker.record("a", ok=True)
    tracker.record("b", ok=True)
    clock.set(1.5)
    assert tracker.next_deadline() == 5.0
    for server in ("a", "b"):
        tracker.remove_server(server)
    assert tracker.next_deadline() is None


def test_subscribers_see_every_change_once_and_can_unsubscribe() -> None:
    tracker, clock = make(("a",), unhealthy_threshold=1, healthy_threshold=1)
    seen: list[StateChange] = []
    unsubscribe = tracker.subscribe(seen.append)
    tracker.due()
    clock.set(2.0)
    assert tracker.state("a") is H.UNHEALTHY  # noticed here, delivered here
    assert seen == [change("a", H.HEALTHY, H.UNHEALTHY, 2.0)]
    assert tracker.poll() == seen
    returned = tracker.record("a", ok=True)  # the timed-out probe's late answer
    assert returned is None and len(seen) == 1
    tracker.record("a", ok=True)
    assert seen[-1] == change("a", H.UNHEALTHY, H.HEALTHY, 2.0) and len(seen) == 2
    unsubscribe()
    unsubscribe()  # idempotent
    tracker.record("a", ok=False)
    assert len(seen) == 2


def test_a_raising_subscriber_loses_no_change_for_the_others() -> None:
    tracker, clock = make(("a", "b", "c"), unhealthy_threshold=1)
    first: list[str] = []
    second: list[str] = []

    def raises(c: StateChange) -> None:
        first.append(c.server)
        raise RuntimeError(f"subscriber failed on {c.server}")

    tracker.subscribe(raises)
    tracker.subscribe(lambda c: second.append(c.server))
    tracker.due()
    clock.set(2.0)  # three probes time out: three changes in one delivery
    with pytest.raises(RuntimeError, match=r"failed on a$"):  # the first error, once
        tracker.poll()
    assert first == second == ["a", "b", "c"]  # each change went to both
    assert all(tracker.state(s) is H.UNHEALTHY for s in "abc")
    assert len(tracker._outbox) == 0
    tracker._check()


def test_a_subscriber_may_call_back_into_the_tracker() -> None:
    tracker, _ = make(("a", "b"), unhealthy_threshold=1)
    states: list[HealthState] = []
    tracker.subscribe(lambda c: states.append(tracker.state(c.server)))
    tracker.record("a", ok=False)
    assert states == [H.UNHEALTHY]


def test_reads_the_clock_once_per_call_and_never_goes_back() -> None:
    times = iter([0.0, 0.0, 10.0, 3.0, 3.0])
    reads = []

    def clock() -> float:
        reads.append(1)
        return next(times)

    tracker = HealthTracker(["a"], unhealthy_threshold=1, clock=clock)  # reads 1
    assert tracker.due() == ["a"]  # reads 2
    assert tracker.state("a") is H.UNHEALTHY  # at 10: timed out at 2.0
    assert tracker.record("a", ok=True) is None  # the late answer, at "3" taken as 10
    assert tracker.next_deadline() == 5.0  # the overdue probe, for due() to start
    assert len(reads) == 5


def test_adopt_clock_moves_pending_times_onto_the_pool_clock() -> None:
    tracker = HealthTracker(["a"], base_ejection=10, max_ejected_percent=100)
    eject(tracker, "a")
    pool_clock = ManualClock(100.0)
    tracker._adopt_clock(pool_clock)
    assert tracker.clock is pool_clock
    assert tracker.next_deadline() == pytest.approx(100.0, abs=0.1)  # the first probe
    tracker.due()
    pool_clock.set(109.9)
    assert tracker.state("a") is H.EJECTED
    pool_clock.set(110.1)
    assert tracker.state("a") is H.HEALTHY
    tracker._adopt_clock(pool_clock)  # the same clock again: fine
    tracker._check()


def test_adopt_clock_refuses_a_second_explicit_clock() -> None:
    tracker, clock = make(("a",))
    other = ManualClock()
    with pytest.raises(ValueError, match="own clock"):
        tracker._adopt_clock(other)
    assert tracker.clock is clock
    tracker._adopt_clock(clock)


# -- threads --------------------------------------------------------------------------------


def test_racing_threads_never_eject_more_than_the_cap() -> None:
    servers = [f"s{i}" for i in range(100)]
    # 10 % of 100; passing probes must not end the ejections being counted
    tracker, _ = make(tuple(servers), consecutive_failures=3, uneject_on_probe=False)
    barrier = threading.Barrier(8)

    def work(mine: list[str]) -> None:
        barrier.wait()
        for _ in range(3):
            for server in mine:
                tracker.observe(server, ok=False)
                tracker.record(server, ok=True)

    threads = [threading.Thread(target=work, args=(servers[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert sum(tracker.state(s) is H.EJECTED for s in servers) == 10
    tracker._check()


def test_next_change_ignores_due_probes_but_not_timers() -> None:
    clock = ManualClock()
    tracker = HealthTracker(["a"], interval=5.0, timeout=2.0, consecutive_failures=1, clock=clock)
    assert tracker.next_deadline() == 0.0  # the first probe is due at once
    assert tracker.next_change() is None  # but nothing can change by itself
    assert tracker.due() == ["a"]
    assert tracker.next_change() == 2.0  # the probe times out at 2 s
    tracker.record("a", True)
    assert tracker.next_change() is None
    change = tracker.observe("a", False)
    assert change is not None and change.new is HealthState.EJECTED
    assert tracker.next_change() == tracker.base_ejection


def test_a_passing_probe_ends_an_ejection_as_envoy_does() -> None:
    # successful_active_health_check_uneject_host: one pass, whatever healthy_threshold.
    tracker, clock = make(("a", "b"), healthy_threshold=3, consecutive_failures=1)
    tracker.observe("a", ok=False)
    assert tracker.state("a") is H.EJECTED
    assert tracker.record("a", ok=False) is None  # a failed probe changes nothing yet
    clock.advance(1.0)
    assert tracker.record("a", ok=True) == change("a", H.EJECTED, H.HEALTHY, 1.0)
    assert tracker.next_change() is None  # the ejection's end timer is gone
    assert tracker.ejection_count("a") == 1  # a next ejection lasts longer
    tracker._check()


def test_uneject_on_probe_can_be_turned_off() -> None:
    tracker, _ = make(("a", "b"), consecutive_failures=1, uneject_on_probe=False)
    tracker.observe("a", ok=False)
    assert tracker.record("a", ok=True) is None and tracker.state("a") is H.EJECTED
    assert not tracker.uneject_on_probe and "uneject_on_probe=False" in repr(tracker)
    with pytest.raises(TypeError, match="uneject_on_probe must be a bool, got 1"):
        HealthTracker(uneject_on_probe=1)  # type: ignore[arg-type]
