"""Stickiness: send a client back to the server it used before.

:class:`StickySession` binds clients by signed cookie, source address or
session id; a :class:`RouteStore` keeps session bindings (in memory here,
shared ones in :mod:`balancekit.drivers`). The cookie codec is private.
"""

from .route_store import MemoryRouteStore, RouteStore
from .session import StickySession

__all__ = ["MemoryRouteStore", "RouteStore", "StickySession"]
