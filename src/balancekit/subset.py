"""Deterministic subsetting: each of many clients connects to a few servers, evenly.

With ``C`` clients each connected to all ``n`` servers there are ``C * n``
connections. The algorithm of Google's SRE book ("Load Balancing in the
Datacenter") gives each client ``subset_size`` servers so that every server
gets the same number of clients:

- ``subset_count = n // subset_size`` subsets fit in the server list;
- clients are grouped in *rounds* of ``subset_count`` consecutive indexes,
  ``round = client_index // subset_count``;
- each round shuffles the sorted server list with its own deterministic
  generator, seeded from ``(seed, round)``; client ``client_index`` takes
  slice ``client_index % subset_count`` of that shuffle.

So the clients of one round get disjoint subsets that together cover
``subset_count * subset_size`` servers: all of them when ``subset_size``
divides ``n``; otherwise the ``n % subset_size`` servers at the end of that
round's shuffle get no client of that round (they are different servers in
different rounds, so the imbalance is at most one client per round).

The generator is a Fisher-Yates shuffle drawing 64-bit numbers from XXH3
(``xxh3_64("<round>:<draw>", seed)``, rejection-sampled to avoid bias): it
is the same in every process, Python version and language that implements
it, unlike ``random.shuffle`` and never Python's randomised built-in hash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import xxhash

from .validate import check_int, check_seed

__all__ = ["deterministic_subset"]

_LIMIT = 1 << 64


def _servers(servers: object) -> list[str]:
    if isinstance(servers, (str, bytes)) or not isinstance(servers, Iterable):
        raise TypeError(f"servers must be an iterable of server ids, got {servers!r}")
    found = list(servers)
    for server in found:
        if not isinstance(server, str) or not server:
            raise TypeError(f"servers must hold non-empty str ids, got {server!r}")
    if len(set(found)) != len(found):
        repeated = sorted(s for s, n in Counter(found).items() if n > 1)
        raise ValueError(f"servers must not repeat an id, got {repeated!r} more than once")
    return sorted(found)


def _shuffled(servers: list[str], seed: int, round_: int) -> list[str]:
    """``servers`` shuffled by Fisher-Yates on an XXH3 counter stream. O(n)."""
    order = list(servers)
    draw = 0
    prefix = f"{round_}:"
    for i in range(len(order) - 1, 0, -1):
        span = i + 1
        limit = _LIMIT - _LIMIT % span  # draws at or above are rejected: no modulo bias
        while True:
            value = xxhash.xxh3_64_intdigest(f"{prefix}{draw}".encode(), seed)
            draw += 1
            if value < limit:
                break
        j = value % span
        order[i], order[j] = order[j], order[i]
    return order


def deterministic_subset(
    servers: Iterable[str], client_index: int, subset_size: int, *, seed: int = 0
) -> list[str]:
    """The ``subset_size`` servers client number ``client_index`` connects to.

    Every client runs this with the same server list (in any order) and its
    own index ``0, 1, 2, ...``; each gets a subset, and every server is in the
    subsets of the same number of clients (within one per round when
    ``subset_size`` does not divide the number of servers).

    >>> servers = [f"10.0.0.{i}" for i in range(6)]
    >>> deterministic_subset(servers, 0, 3)
    ['10.0.0.4', '10.0.0.5', '10.0.0.1']
    >>> deterministic_subset(servers, 1, 3)        # same round: the other half
    ['10.0.0.3', '10.0.0.2', '10.0.0.0']
    >>> deterministic_subset(reversed(servers), 1, 3) == deterministic_subset(servers, 1, 3)
    True

    Complexity: O(n log n) to sort and O(n) to shuffle, for ``n`` servers.

    Raises:
        TypeError: ``servers`` is not an iterable of str ids (a bare str
            included), or an argument is not an int.
        ValueError: a repeated id, ``subset_size`` < 1 or more than the
            servers, a negative ``client_index``, or ``seed`` outside [0, 2**64).
    """
    ordered = _servers(servers)
    index = check_int("client_index", client_index, 0)
    size = check_int("subset_size", subset_size, 1)
    if size > len(ordered):
        raise ValueError(
            f"subset_size must be at most the {len(ordered)} servers, got {subset_size!r}"
        )
    salt = check_seed(seed)
    count = len(ordered) // size
    round_, slot = divmod(index, count)
    start = slot * size
    return _shuffled(ordered, salt, round_)[start : start + size]
