"""Outlier detection as Envoy does it: success rate and failure percentage, swept every
``outlier_interval`` over that interval's requests."""

from __future__ import annotations

import math
import random
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from balancekit import (
    FailurePercentageEjection,
    HealthState,
    HealthTracker,
    ManualClock,
    Pool,
    RoundRobin,
    StateChange,
    SuccessRateEjection,
)

H = HealthState
FIVE = [f"s{i}" for i in range(5)]


def traffic(tracker: HealthTracker, server: str, ok: int, failed: int) -> None:
    """Report ``ok`` successes and ``failed`` failures, interleaved so that no failure
    streak reaches ``consecutive_failures`` (only the detectors may eject)."""
    for i in range(max(ok, failed)):
        if i < failed:
            tracker.observe(server, False)
        if i < ok:
            tracker.observe(server, True)


def make(*detectors: object, **options: object) -> tuple[HealthTracker, ManualClock]:
    clock = ManualClock()
    settings: dict[str, object] = {"max_ejected_percent": 100, "consecutive_failures": 1000}
    settings.update(options)  # no failure streak ejects unless a test says so
    tracker = HealthTracker(
        FIVE,
        outliers=detectors,  # type: ignore[arg-type]
        clock=clock,
        rng=random.Random(0),
        **settings,  # type: ignore[arg-type]
    )
    return tracker, clock


# -- the arithmetic ------------------------------------------------------------------------


def test_envoys_success_rate_threshold() -> None:
    # Envoy's OutlierUtility.SRThreshold: rates 50, 100 x 4 -> mean 90, threshold 52.
    assert SuccessRateEjection().threshold([50.0, 100.0, 100.0, 100.0, 100.0]) == (90.0, 52.0)
    # A smaller factor moves the threshold up: 90 - 1 x 20.
    assert SuccessRateEjection(stdev_factor=1.0).threshold([50.0, 100, 100, 100, 100]) == (
        90.0,
        70.0,
    )


def test_success_rate_needs_volume_and_hosts() -> None:
    detector = SuccessRateEjection()
    good = {f"s{i}": (200, 0) for i in range(4)}
    assert detector.select({**good, "bad": (200, 200)}) == ["bad"]
    assert detector.select({**good, "bad": (50, 49)}) == []  # 99 requests: below the volume
    assert detector.select({"s0": (200, 0), "s1": (200, 0), "bad": (10, 190)}) == []  # 3 < 5 hosts
    assert detector.select({f"s{i}": (100, 0) for i in range(6)}) == []  # no spread: nobody


def test_failure_percentage_is_at_least_the_threshold() -> None:
    detector = FailurePercentageEjection()
    good = {f"s{i}": (50, 0) for i in range(4)}
    assert detector.select({**good, "bad": (7, 43)}) == ["bad"]  # 86 %
    assert detector.select({**good, "edge": (15, 85)}) == ["edge"]  # exactly 85 %: >=
    assert detector.select({**good, "near": (16, 84)}) == []  # 84 %
    assert detector.select({**good, "few": (1, 48)}) == []  # 49 requests: below the volume


# -- in the tracker: Envoy's known answer ---------------------------------------------------


def test_success_rate_ejects_at_the_first_sweep_and_returns_after_the_ejection() -> None:
    # Five servers with 200 successes each; one of them also 200 failures: its
    # success rate is 50 against a mean of 90 and a threshold of 52.
    tracker, clock = make(SuccessRateEjection(), base_ejection=30.0)
    for server in FIVE:
        traffic(tracker, server, 200, 200 if server == "s4" else 0)
    assert tracker.state("s4") is H.HEALTHY
    clock.set(9.999)
    assert tracker.poll() == []
    clock.set(10.0)
    assert tracker.poll() == [StateChange("s4", H.HEALTHY, H.EJECTED, 10.0)]
    clock.set(20.0)  # an interval with no requests brings nothing
    assert tracker.poll() == [] and tracker.state("s4") is H.EJECTED
    clock.set(40.0)  # back after base_ejection x 1
    assert tracker.poll() == [StateChange("s4", H.EJECTED, H.HEALTHY, 40.0)]
    tracker._check()


def test_each_interval_counts_only_its_own_requests() -> None:
    tracker, clock = make(FailurePercentageEjection())
    for server in FIVE[:4]:
        traffic(tracker, server, 50, 0)
    traffic(tracker, "s4", 10, 40)  # 80 %: not enough
    clock.set(10.0)
    assert tracker.poll() == []
    for server in FIVE[:4]:
        traffic(tracker, server, 50, 0)
    traffic(tracker, "s4", 5, 45)  # 90 % in this interval alone
    clock.set(20.0)
    assert [(c.server, c.new, c.at) for c in tracker.poll()] == [("s4", H.EJECTED, 20.0)]


def test_max_ejected_percent_still_applies_and_one_is_always_allowed() -> None:
    tracker, clock = make(FailurePercentageEjection(), max_ejected_percent=10)
    for server in FIVE:
        traffic(tracker, server, 50 if server < "s3" else 0, 0 if server < "s3" else 50)
    clock.set(10.0)
    ejected = [c.server for c in tracker.poll()]
    assert ejected == ["s3"]  # s3 and s4 stand out, but 10 % of 5 allows one
    tracker._check()


@pytest.mark.parametrize(("enforcing", "expected"), [(0.0, []), (100.0, ["s4"])])
def test_enforcing(enforcing: float, expected: list[str]) -> None:
    tracker, clock = make(SuccessRateEjection(enforcing=enforcing))
    for server in FIVE:
        traffic(tracker, server, 200, 200 if server == "s4" else 0)
    clock.set(10.0)
    assert [c.server for c in tracker.poll()] == expected


def test_enforcing_is_a_seeded_draw() -> None:
    outcomes = []
    for seed in range(40):
        clock = ManualClock()
        tracker = HealthTracker(
            FIVE,
            outliers=[SuccessRateEjection(enforcing=50.0)],
            clock=clock,
            rng=random.Random(seed),
        )
        for server in FIVE:
            traffic(tracker, server, 200, 200 if server == "s4" else 0)
        clock.set(10.0)
        outcomes.append(bool(tracker.poll()))
    assert 8 <= sum(outcomes) <= 32  # about half of 40, with a wide margin


def test_ejected_servers_take_no_part_and_unhealthy_ones_are_not_ejected() -> None:
    tracker, clock = make(FailurePercentageEjection(minimum_hosts=4), unhealthy_threshold=1)
    tracker.record("s0", False)  # UNHEALTHY: still counted, never ejected by a detector
    for server in FIVE:
        traffic(
            tracker,
            server,
            0 if server in ("s0", "s4") else 50,
            50 if server in ("s0", "s4") else 0,
        )
    clock.set(10.0)
    assert [c.server for c in tracker.poll()] == ["s4"]
    assert tracker.state("s0") is H.UNHEALTHY


def test_a_far_jump_sweeps_once() -> None:
    tracker, clock = make(SuccessRateEjection(), outlier_interval=1e-13)
    for server in FIVE:
        traffic(tracker, server, 200, 200 if server == "s4" else 0)
    clock.set(1e17)
    polled: list[StateChange] = []
    worker = threading.Thread(target=lambda: polled.extend(tracker.poll()), daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "the sweep walked the missed intervals"
    # Ejected at the first sweep, and back 30 s later: long ago by now.
    assert [(c.server, c.new, c.at) for c in polled] == [
        ("s4", H.EJECTED, 1e-13),
        ("s4", H.HEALTHY, 30.0 + 1e-13),
    ]
    tracker._check()


def test_a_pool_feeds_the_detectors_with_its_releases() -> None:
    clock = ManualClock()
    # No failure streak ejects here: only the detector can.
    tracker = HealthTracker(
        consecutive_failures=100, outliers=[FailurePercentageEjection(request_volume=20)]
    )
    pool = Pool(RoundRobin(FIVE), health=tracker, clock=clock)
    for i in range(100):  # 20 requests each; s4 fails 18 of its 20 (90 %)
        lease = pool.acquire()
        lease.release(ok=not (lease.server == "s4" and i not in (49, 99)))
    assert pool.stats()["s4"].health is H.HEALTHY
    clock.set(10.0)
    assert [(c.server, c.new) for c in pool.poll()] == [("s4", H.EJECTED)]
    assert not pool.is_eligible("s4")
    pool._check()


@pytest.mark.parametrize(
    ("factory", "error"),
    [
        (lambda: SuccessRateEjection(stdev_factor=0), ValueError),
        (lambda: SuccessRateEjection(stdev_factor=math.nan), ValueError),
        (lambda: SuccessRateEjection(minimum_hosts=0), ValueError),
        (lambda: SuccessRateEjection(request_volume=1.5), TypeError),
        (lambda: SuccessRateEjection(enforcing=101), ValueError),
        (lambda: FailurePercentageEjection(threshold=-1), ValueError),
        (lambda: FailurePercentageEjection(minimum_hosts=10**400), ValueError),
        (lambda: FailurePercentageEjection(enforcing="all"), TypeError),
        (lambda: HealthTracker(outliers=[object()]), TypeError),
        (lambda: HealthTracker(outliers=[SuccessRateEjection]), TypeError),  # the class
        (lambda: HealthTracker(outliers=[NoEnforcing()]), TypeError),
        (lambda: HealthTracker(outliers=[Worst(enforcing=101)]), ValueError),
        (lambda: HealthTracker(outliers=[Worst(enforcing="all")]), TypeError),
        (lambda: HealthTracker(outliers=SuccessRateEjection()), TypeError),
        (lambda: HealthTracker(outlier_interval=0), ValueError),
        (lambda: HealthTracker(outlier_interval=10**400), ValueError),
    ],
)
def test_bad_options(factory: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        factory()  # type: ignore[operator]


# -- detectors of your own: anything with select(counts) and enforcing ---------------------


class Worst:
    """A tiny detector of a kind the tracker has never heard of: the server with the
    most failures in the interval, if it failed at least once."""

    def __init__(self, enforcing: object = 100.0, answer: object = None) -> None:
        self.enforcing = enforcing
        self.answer = answer  # what select returns instead, when set

    def select(self, counts: Mapping[str, tuple[int, int]]) -> Any:
        if self.answer is not None:
            return self.answer
        worst = max(counts, key=lambda server: counts[server][1])
        return [worst] if counts[worst][1] else []


class NoEnforcing:
    def select(self, counts: Mapping[str, tuple[int, int]]) -> list[str]:
        return []


def test_a_detector_of_your_own_ejects_through_the_transition_table() -> None:
    tracker, clock = make(Worst())
    traffic(tracker, "s2", 3, 1)
    traffic(tracker, "s3", 0, 2)
    clock.set(10.0)
    assert tracker.poll() == [StateChange("s3", H.HEALTHY, H.EJECTED, 10.0)]
    assert tracker.outliers[0].__class__ is Worst
    clock.set(20.0)  # nobody failed in this interval: nobody more
    assert tracker.poll() == [] and tracker.state("s2") is H.HEALTHY
    tracker._check()


def test_an_object_that_is_no_detector_is_named_in_the_error() -> None:
    with pytest.raises(TypeError, match=r"outliers must hold detectors .*got 'select'"):
        HealthTracker(outliers=["select"])
    with pytest.raises(ValueError, match=r"enforcing of .*Worst.* in \[0, 100\], got 101"):
        HealthTracker(outliers=[Worst(enforcing=101)])


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        (["nobody"], ValueError, "returned 'nobody', not a server it was given"),
        ([3], ValueError, "returned 3"),
        ("s0", TypeError, "must return a list of servers, got 's0'"),
        (42, TypeError, "got 42"),
    ],
)
def test_a_bad_verdict_is_refused_before_any_applies(
    answer: object, error: type[Exception], words: str
) -> None:
    # The good detector comes first: its verdict must not apply either.
    tracker, clock = make(Worst(), Worst(answer=answer))
    traffic(tracker, "s1", 0, 3)
    clock.set(10.0)
    with pytest.raises(error, match=words):
        tracker.poll()
    assert all(tracker.state(s) is H.HEALTHY for s in FIVE)
    tracker._check()


def test_the_docs_detector_example_runs() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "health.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", doc, re.DOTALL) if "AnyFailure" in b]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/health.md", "exec"), namespace)
    assert namespace["tracker"].state("b") is H.EJECTED
