"""``exclude=`` in the compatible mappings: the same rules as the native ones.

A compat ring or table answers ``get_server`` with its own lookup; with
``exclude`` it must still walk from where that lookup answers, never return
an excluded server while another is eligible, and drop the exclusion when
everything is excluded.
"""

from __future__ import annotations

import pytest

from balancekit import ConsistentHash, Maglev
from balancekit.strategies.base import Balancer

SERVERS = ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211", "10.0.0.4:11211"]


def _balancers() -> list[Balancer]:
    return [
        ConsistentHash(SERVERS, compat="ketama"),
        ConsistentHash(SERVERS, compat="envoy"),
        Maglev(SERVERS, compat="envoy", table_size=101),
    ]


@pytest.mark.parametrize("lb", _balancers(), ids=repr)
def test_exclude_is_honoured_and_dropped_when_it_leaves_nobody(lb: Balancer) -> None:
    for i in range(300):
        key = f"key-{i}"
        own = lb.get_server(key)
        other = lb.get_server(key, exclude=[own])
        assert other != own
        assert lb.get_server(key, exclude=[own, other]) not in (own, other)
        assert lb.get_server(key, exclude=SERVERS) in SERVERS
        with lb.acquire(key, exclude=[own]) as lease:
            assert lease.server != own


@pytest.mark.parametrize("lb", _balancers()[:2], ids=repr)
def test_compat_ring_exclude_follows_get_n_servers(lb: ConsistentHash) -> None:
    for i in range(300):
        key = f"key-{i}"
        order = lb.get_n_servers(key, len(SERVERS))
        assert lb.get_server(key) == order[0]
        assert lb.get_server(key, exclude=order[:1]) == order[1]
        assert lb.get_server(key, exclude=order[:3]) == order[3]
