"""Round robin and nginx's smooth weighted round robin."""

from __future__ import annotations

from typing import Any

from .base import Balancer, Member

__all__ = ["RoundRobin"]


class RoundRobin(Balancer):
    """Exact rotation over the servers of weight > 0, in insertion order.

    Weights only decide membership of the rotation (0 = skip); for weighted
    rotation use :class:`WeightedRoundRobin`. The key is ignored.

    >>> lb = RoundRobin(["a", "b", "c"])
    >>> [lb.get_server() for _ in range(4)]
    ['a', 'b', 'c', 'a']

    Complexity: ``get_server`` and ``acquire`` O(1); membership changes O(n).
    Under concurrent callers every server still gets exactly its share.
    """

    def _rebuild(self) -> None:
        self._rotation = [m for m in self._members.values() if m.weight > 0]
        self._next = getattr(self, "_next", 0) % max(len(self._rotation), 1)

    def _choose(self, key: Any) -> Member:
        rotation = self._rotation
        if not rotation:
            raise self._unavailable()
        i = self._next
        self._next = i + 1 if i + 1 < len(rotation) else 0
        return rotation[i]
