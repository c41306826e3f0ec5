from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from balancekit.strategies.indexed_heap import IndexedHeap


def smallest(reference: dict[str, int]) -> str:
    return min(reference, key=lambda item: (reference[item], item))


def test_peek_follows_updates_in_both_directions() -> None:
    heap = IndexedHeap[str, tuple[int, str]]()
    for item, key in [("a", 5), ("b", 3), ("c", 8), ("d", 1), ("e", 4)]:
        heap.push(item, (key, item))
        heap._check()
    assert heap.peek() == "d"
    heap.update("d", (9, "d"))  # grows: sinks
    heap._check()
    assert heap.peek() == "b"
    heap.update("c", (0, "c"))  # shrinks: rises to the top
    heap._check()
    assert heap.peek() == "c"
    assert heap.key("d") == (9, "d")
    assert len(heap) == 5 and "e" in heap and "z" not in heap


def test_remove_from_middle_top_and_last_slot() -> None:
    heap = IndexedHeap[str, int]()
    for i, item in enumerate("abcdefg"):
        heap.push(item, i)
    heap.remove("d")
    heap._check()
    heap.remove("a")
    heap._check()
    assert heap.peek() == "b"
    last = list(heap)[-1]
    heap.remove(last)
    heap._check()
    assert sorted(heap) == sorted(set("bcefg") - {last})


def test_remove_filler_that_must_rise() -> None:
    # The last leaf (key 3) replaces a removed node under a larger parent
    # branch: it has to move up, not down.
    heap = IndexedHeap[str, int]()
    for item, key in [("r", 0), ("x", 10), ("y", 1), ("x1", 11), ("x2", 12), ("y1", 2), ("y2", 3)]:
        heap.push(item, key)
    heap.remove("x1")
    heap._check()
    assert heap.key("y2") == 3


def test_errors_leave_the_heap_unchanged() -> None:
    heap = IndexedHeap[str, int]()
    with pytest.raises(IndexError, match="empty"):
        heap.peek()
    heap.push("a", 1)
    with pytest.raises(ValueError, match="'a'"):
        heap.push("a", 0)
    with pytest.raises(KeyError):
        heap.remove("b")
    with pytest.raises(KeyError):
        heap.update("b", 0)
    with pytest.raises(KeyError):
        heap.key("b")
    assert list(heap) == ["a"] and heap.key("a") == 1
    heap._check()


def test_repr_shows_items_and_keys() -> None:
    heap = IndexedHeap[str, int]()
    heap.push("a", 2)
    assert repr(heap) == "IndexedHeap({'a': 2})"


def test_check_catches_a_broken_heap() -> None:
    heap = IndexedHeap[str, int]()
    heap.push("a", 1)
    heap.push("b", 2)
    heap._keys[0] = 5  # corrupt the order behind the heap's back
    with pytest.raises(AssertionError):
        heap._check()


operations = st.lists(
    st.tuples(
        st.sampled_from(["push", "remove", "update"]),
        st.integers(0, 15),
        st.integers(-20, 20),
    ),
    max_size=80,
)


@settings(max_examples=150)
@given(operations)
def test_matches_a_dict_reference(ops: list[tuple[str, int, int]]) -> None:
    heap = IndexedHeap[str, tuple[int, str]]()
    reference: dict[str, int] = {}
    for op, n, key in ops:
        item = f"s{n}"
        if op == "push" and item not in reference:
            heap.push(item, (key, item))
            reference[item] = key
        elif op == "remove" and item in reference:
            heap.remove(item)
            del reference[item]
        elif op == "update" and item in reference:
            heap.update(item, (key, item))
            reference[item] = key
        heap._check()
        assert len(heap) == len(reference)
        if reference:
            assert heap.peek() == smallest(reference)


@given(st.lists(st.integers(-50, 50), max_size=60), st.integers(0, 60))
def test_ascending_is_sorted_and_lazy(keys: list[int], take: int) -> None:
    heap = IndexedHeap[int, tuple[int, int]]()
    for item, key in enumerate(keys):
        heap.push(item, (key, item))
    expected = sorted(range(len(keys)), key=lambda item: (keys[item], item))
    assert list(heap.ascending()) == expected
    walk = heap.ascending()
    assert [next(walk) for _ in range(min(take, len(keys)))] == expected[:take]
    heap._check()
