"""Property-test your own balancer or pool: hypothesis strategies and assertions.

This module needs hypothesis: ``pip install -e ".[test]"`` from a clone (or just
``pip install hypothesis``). The rest of balancekit never imports it.

- **Strategies** draw what a balancer meets in production: server sets with
  weights (:func:`server_sets`), keys (:func:`keys`), uniform and Zipf-skewed
  key streams (:func:`key_streams`), membership changes
  (:func:`membership_changes`) and request workloads (:func:`workloads`,
  driven through any balancer or pool by :func:`replay`).
- **Assertions** work on any :class:`~balancekit.strategies.base.Balancer`,
  your own subclasses included, and raise ``AssertionError`` saying what
  went wrong: which keys moved where, the measured figure and the bound.

Helpers that change membership (:func:`assert_minimal_disruption`,
:func:`assert_only_moves_to_added`, :func:`assert_deterministic`) take a
*factory* ``servers -> Balancer`` (a strategy class is one) and build fresh
balancers, so they never change yours. Helpers that only look take your
balancer and pick with ``get_server``: that opens no lease but, like any
pick, advances a rotation (round robin) or consumes random draws.

Every name is importable from ``balancekit.testing``; the code lives in
:mod:`~balancekit.testing.strategies` (servers, keys, membership changes),
:mod:`~balancekit.testing.workloads` (key streams, request workloads,
replay) and :mod:`~balancekit.testing.assertions`.
:class:`~balancekit.clock.ManualClock` is re-exported for convenience.
The hypothesis strategies cost O(size) per example. A typical test::

    @given(server_sets(min_size=2, max_size=8))
    def test_a_leaving_node_moves_only_its_keys(servers):
        assert_minimal_disruption(Rendezvous, servers, [f"user:{i}" for i in range(500)])
"""

from ..clock import ManualClock
from .assertions import (
    Factory,
    assert_deterministic,
    assert_excludes,
    assert_in_flight_consistent,
    assert_minimal_disruption,
    assert_never_picks,
    assert_only_moves_to_added,
    assert_peak_to_mean_below,
    assignment,
)
from .strategies import (
    AddServer,
    Change,
    RemoveServer,
    SetWeight,
    keys,
    membership_changes,
    server_ids,
    server_sets,
)
from .workloads import Request, key_streams, replay, sample_keys, workloads

__all__ = [
    "AddServer",
    "Change",
    "Factory",
    "ManualClock",
    "RemoveServer",
    "Request",
    "SetWeight",
    "assert_deterministic",
    "assert_excludes",
    "assert_in_flight_consistent",
    "assert_minimal_disruption",
    "assert_never_picks",
    "assert_only_moves_to_added",
    "assert_peak_to_mean_below",
    "assignment",
    "key_streams",
    "keys",
    "membership_changes",
    "replay",
    "sample_keys",
    "server_ids",
    "server_sets",
    "workloads",
]
