from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest

from balancekit import RoundRobin, WeightedRoundRobin
from balancekit.strategies import round_robin

from .contract import run_in_threads


def test_exact_rotation_in_insertion_order() -> None:
    lb = RoundRobin(["a", "b", "c"])
    assert [lb.get_server() for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]


def test_weights_only_decide_membership() -> None:
    lb = RoundRobin({"a": 5, "b": 0, "c": 1})
    assert [lb.get_server() for _ in range(4)] == ["a", "c", "a", "c"]


def test_rotation_continues_across_membership_changes() -> None:
    lb = RoundRobin(["a", "b", "c"])
    assert lb.get_server() == "a"
    lb.remove_server("b")
    assert [lb.get_server() for _ in range(4)] == ["c", "a", "c", "a"]
    lb.add_server("d")
    assert Counter(lb.get_server() for _ in range(30)) == {"a": 10, "c": 10, "d": 10}


def test_eight_threads_get_exactly_equal_counts() -> None:
    servers = [f"s{i}" for i in range(5)]
    lb = RoundRobin(servers)
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def work() -> None:
        mine: Counter[str] = Counter()
        barrier.wait()
        for _ in range(5000):
            with lb.acquire() as lease:
                mine[lease.server] += 1
        with lock:
            counts.update(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts == {server: 8 * 5000 // 5 for server in servers}


def count_in_threads(pick: Callable[[], str], per_thread: int) -> Counter[str]:
    """Counts of ``pick()`` called ``per_thread`` times in each of 8 threads at once."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def work(index: int) -> None:
        mine = Counter(pick() for _ in range(per_thread))
        with lock:
            counts.update(mine)

    run_in_threads(work, 8)
    return counts


def test_lock_free_get_server_is_exact_under_eight_threads() -> None:
    servers = [f"s{i}" for i in range(7)]
    lb = RoundRobin(servers)
    lb.get_server()  # start mid-rotation: full cycles are still exact
    counts = count_in_threads(lb.get_server, 7 * 1000)
    assert counts == {server: 8 * 1000 for server in servers}
    # and the rotation is still where 56,001 picks leave it
    assert lb.get_server() == servers[(1 + 8 * 7 * 1000) % 7]


def test_weighted_replay_is_exact_under_eight_threads() -> None:
    weights = {"a": 5, "b": 3, "c": 1, "d": 1}
    lb = WeightedRoundRobin(weights)
    for _ in range(3 * 10):  # until the period is recorded and replayed
        lb.get_server()
    assert lb.period == 10
    counts = count_in_threads(lb.get_server, 10 * 700)
    assert counts == {server: w * 8 * 700 for server, w in weights.items()}
    lb._check()


def test_without_an_atomic_next_picks_take_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    # A free-threaded build: get_server goes through the locked path, same picks.
    monkeypatch.setattr(round_robin, "_ATOMIC_NEXT", False)
    lb = RoundRobin(["a", "b", "c"])
    wrr = WeightedRoundRobin({"a": 2, "b": 1})
    picks = [wrr.get_server() for _ in range(9)]
    assert [lb.get_server() for _ in range(4)] == ["a", "b", "c", "a"]
    assert picks == ["a", "b", "a"] * 3 and wrr.period == 3
    counts = count_in_threads(lb.get_server, 3 * 500)
    assert counts == {"a": 8 * 500, "b": 8 * 500, "c": 8 * 500}
