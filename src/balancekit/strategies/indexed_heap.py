"""IndexedHeap: a binary min-heap that knows where each item sits.

A plain :mod:`heapq` list can only pop its top; changing the key of an item
in the middle, or removing it, means a linear search and a re-heapify, O(n).
Keeping a map from item to position lets the one changed entry be sifted
into place in O(log n), with no re-heapify ever. LeastConnections keeps the
distinct loads of its servers in one.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterator
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["IndexedHeap"]


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


T = TypeVar("T", bound=Hashable)
K = TypeVar("K", bound=_Ordered)


class IndexedHeap(Generic[T, K]):
    """A min-heap of distinct hashable items, each with a key that may change.

    Keys are compared with ``<`` only; give them a unique tie-breaker (for
    example a ``(load, sequence)`` tuple) if the order of equal keys matters.

    >>> heap = IndexedHeap[str, int]()
    >>> for item, key in [("a", 3), ("b", 1), ("c", 2)]:
    ...     heap.push(item, key)
    >>> heap.peek()
    'b'
    >>> heap.update("a", 0)
    >>> heap.peek(), heap.key("a")
    ('a', 0)
    >>> heap.remove("a")
    >>> heap.peek(), len(heap)
    ('b', 2)

    Complexity: ``peek``, ``key``, ``len``, ``in`` O(1); ``push``,
    ``remove`` and ``update`` O(log n), and O(1) when the changed key
    stays within a level of its place; memory O(n).
    """

    __slots__ = ("_items", "_keys", "_pos")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._keys: list[K] = []
        self._pos: dict[T, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item: object) -> bool:
        return item in self._pos

    def __iter__(self) -> Iterator[T]:
        """The items in heap-array order (not sorted). O(n)."""
        return iter(list(self._items))

    def peek(self) -> T:
        """The item with the smallest key. O(1).

        Raises:
            IndexError: the heap is empty.
        """
        if not self._items:
            raise IndexError("peek from an empty IndexedHeap")
        return self._items[0]

    def ascending(self) -> Iterator[T]:
        """The items in ascending key order, lazily; equal keys in array order.

        A best-first walk of the heap array: the ``j``-th item costs
        O(log j), so taking the first few is cheap whatever ``n``. The heap
        must not change while the iterator is in use.

        >>> heap = IndexedHeap[str, int]()
        >>> for item, key in [("a", 3), ("b", 1), ("c", 2), ("d", 0)]:
        ...     heap.push(item, key)
        >>> list(heap.ascending())
        ['d', 'b', 'c', 'a']
        """
        items, keys = self._items, self._keys
        end = len(items)
        if not end:
            return
        frontier: list[tuple[K, int]] = [(keys[0], 0)]
        while frontier:
            _, i = heapq.heappop(frontier)
            yield items[i]
            child = 2 * i + 1
            if child < end:
                heapq.heappush(frontier, (keys[child], child))
                if child + 1 < end:
                    heapq.heappush(frontier, (keys[child + 1], child + 1))

    def key(self, item: T) -> K:
        """The key of ``item``. O(1).

        Raises:
            KeyError: ``item`` is not in the heap.
        """
        return self._keys[self._pos[item]]

    def push(self, item: T, key: K) -> None:
        """Insert ``item`` with ``key``. O(log n).

        Raises:
            ValueError: ``item`` is already in the heap.
        """
        if item in self._pos:
            raise ValueError(f"item {item!r} is already in the heap")
        self._items.append(item)
        self._keys.append(key)
        self._pos[item] = len(self._items) - 1
        self._sift_up(len(self._items) - 1)

    def remove(self, item: T) -> None:
        """Take ``item`` out of the heap. O(log n).

        Raises:
            KeyError: ``item`` is not in the heap.
        """
        i = self._pos.pop(item)
        items, keys = self._items, self._keys
        last_item = items.pop()
        last_key = keys.pop()
        if i == len(items):
            return  # it was the last slot: nothing to fill
        items[i] = last_item
        keys[i] = last_key
        self._pos[last_item] = i
        # The filler came from a leaf; it may belong above or below slot i.
        if i and last_key < keys[(i - 1) >> 1]:
            self._sift_up(i)
        else:
            self._sift_down(i)

    def update(self, item: T, key: K) -> None:
        """Give ``item`` a new key and move it to its place. O(log n).

        Raises:
            KeyError: ``item`` is not in the heap.
        """
        i = self._pos[item]
        keys = self._keys
        old = keys[i]
        keys[i] = key
        if key < old:
            self._sift_up(i)
        elif old < key:
            self._sift_down(i)

    def _sift_up(self, i: int) -> None:
        items, keys, pos = self._items, self._keys, self._pos
        item, key = items[i], keys[i]
        while i:
            parent = (i - 1) >> 1
            parent_key = keys[parent]
            if not key < parent_key:
                break
            parent_item = items[parent]
            items[i] = parent_item
            keys[i] = parent_key
            pos[parent_item] = i
            i = parent
        items[i] = item
        keys[i] = key
        pos[item] = i

    def _sift_down(self, i: int) -> None:
        # Textbook, with the early exit: the common update is a small rise of
        # the top's key (a tie-break tick, one more request in flight) that
        # leaves it at or near its place, so stop at the first level where
        # neither child is smaller rather than walking to a leaf and back.
        items, keys, pos = self._items, self._keys, self._pos
        end = len(items)
        item, key = items[i], keys[i]
        child = 2 * i + 1
        while child < end:
            child_key = keys[child]
            right = child + 1
            if right < end and keys[right] < child_key:
                child = right
                child_key = keys[right]
            if not child_key < key:
                break
            child_item = items[child]
            items[i] = child_item
            keys[i] = child_key
            pos[child_item] = i
            i = child
            child = 2 * i + 1
        items[i] = item
        keys[i] = key
        pos[item] = i

    def _check(self) -> None:
        """Assert heap order and that the position map matches the array."""
        items, keys, pos = self._items, self._keys, self._pos
        assert len(items) == len(keys) == len(pos), (len(items), len(keys), len(pos))
        for i, item in enumerate(items):
            assert pos[item] == i, (item, pos[item], i)
            if i:
                assert not keys[i] < keys[(i - 1) >> 1], (i, keys[i], keys[(i - 1) >> 1])

    def __repr__(self) -> str:
        pairs = ", ".join(
            f"{item!r}: {key!r}" for item, key in zip(self._items, self._keys, strict=True)
        )
        return f"IndexedHeap({{{pairs}}})"
