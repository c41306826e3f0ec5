from __future__ import annotations

import threading
from collections import Counter

from balancekit import RoundRobin


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
