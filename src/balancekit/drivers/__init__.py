"""The drivers: the I/O that balancekit's sans-I/O core asks for.

Each driver is a module of its own, imported by name, and only it imports
its third-party package (an optional extra), so ``import balancekit.drivers``
costs nothing:

- :mod:`balancekit.drivers.httpx`: ``BalancedTransport`` and
  ``AsyncBalancedTransport``, httpx transports over a Pool (the ``httpx`` extra);
- :mod:`balancekit.drivers.checks`: ``HealthChecker`` (a thread) and
  ``AsyncHealthChecker`` (an asyncio task) with ``http_probe`` (needs httpx)
  and ``tcp_probe``;
- :mod:`balancekit.drivers.dns`: ``resolve`` and ``DNSDiscovery`` (stdlib only);
- :mod:`balancekit.drivers.redis`: ``RedisRouteStore``, a route store shared by
  many proxies (the ``redis`` extra).

The core never imports this package.
"""
