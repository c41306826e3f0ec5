"""Hypothesis strategies for what a balancer is given: server ids, weighted sets, keys, churn.

:func:`server_ids`, :func:`server_sets` and :func:`keys` draw input any
strategy accepts; :func:`membership_changes` draws sequences of
:data:`Change` values (:class:`AddServer`, :class:`RemoveServer`,
:class:`SetWeight`), each valid after the ones before it. Every strategy
costs O(size) per example. Key streams and request workloads are in
:mod:`balancekit.testing.workloads`.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import strategies as st

from ..hashing import Key
from ..strategies.base import parse_servers

__all__ = [
    "AddServer",
    "Change",
    "RemoveServer",
    "SetWeight",
    "check_sizes",
    "keys",
    "membership_changes",
    "server_ids",
    "server_sets",
]

_TEXT = st.characters(codec="utf-8")  # lone surrogates cannot be encoded, so cannot be hashed
_NAME = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_lowercase),
    st.text(string.ascii_lowercase + string.digits + "-", max_size=11),
)
_POSITIVE = st.one_of(st.integers(1, 10).map(float), st.floats(0.1, 10.0))
_ANY_WEIGHT = st.one_of(st.just(0.0), _POSITIVE)


def server_ids(kind: Literal["any", "name", "address", "text"] = "any") -> st.SearchStrategy[str]:
    """Server ids of one ``kind``: every one a valid, non-empty ``str``.

    ``"name"`` (``web-3``), ``"address"`` (``10.0.0.7:8080``,
    ``[2001:db8::1]:443``), ``"text"`` (any non-empty Unicode but lone
    surrogates, which cannot be encoded) or ``"any"`` of these.

    Raises:
        ValueError: an unknown ``kind``.
    """
    name = _NAME
    address = st.builds(
        lambda ip, port: f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}",
        st.ip_addresses(),
        st.integers(1, 65535),
    )
    text = st.text(_TEXT, min_size=1, max_size=24)
    choices = {
        "name": name,
        "address": address,
        "text": text,
        "any": st.one_of(name, address, text),
    }
    if kind not in choices:
        raise ValueError(f"kind must be one of {sorted(choices)}, got {kind!r}")
    return choices[kind]


def server_sets(
    min_size: int = 1,
    max_size: int = 20,
    *,
    weighted: bool = True,
    allow_zero: bool = False,
    ids: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[dict[str, float]]:
    """``{server: weight}`` dicts any strategy accepts.

    Weights are 1.0 unless ``weighted`` (then in [0.1, 10], whole numbers
    often); ``allow_zero`` adds weight-0 members, but a non-empty set always
    keeps one server of weight > 0, so picking works.

    Raises:
        ValueError: ``min_size < 0`` or ``max_size < min_size``.
    """
    check_sizes(min_size, max_size)
    weight = (_ANY_WEIGHT if allow_zero else _POSITIVE) if weighted else st.just(1.0)
    pairs = st.lists(
        st.tuples(_NAME if ids is None else ids, weight),
        min_size=min_size,
        max_size=max_size,
        unique_by=lambda pair: pair[0],
    )
    return pairs.map(_with_one_positive)


def _with_one_positive(pairs: list[tuple[str, float]]) -> dict[str, float]:
    servers = dict(pairs)
    if servers and not any(servers.values()):
        servers[pairs[0][0]] = 1.0  # weights all drawn 0: someone must take the work
    return servers


def keys(
    kinds: Iterable[Literal["str", "bytes", "int"]] = ("str", "bytes", "int"),
) -> st.SearchStrategy[Key]:
    """Keys as hash strategies take them: ``str``, ``bytes``, ``int`` in [0, 2**64).

    Raises:
        ValueError: no kind, or an unknown one.
    """
    options: dict[str, st.SearchStrategy[Key]] = {
        "str": st.text(_TEXT, max_size=32),
        "bytes": st.binary(max_size=32),
        "int": st.integers(0, 2**64 - 1),
    }
    chosen = list(kinds)
    if not chosen or any(kind not in options for kind in chosen):
        raise ValueError(f"kinds must be a non-empty subset of {sorted(options)}, got {chosen!r}")
    return st.one_of(*(options[kind] for kind in chosen))


@dataclass(frozen=True, slots=True)
class AddServer:
    """Add ``server`` with ``weight``."""

    server: str
    weight: float = 1.0

    def apply(self, target: Any) -> None:
        """Apply to a balancer (or anything with ``add_server``)."""
        target.add_server(self.server, self.weight)

    def apply_model(self, model: dict[str, float]) -> None:
        """Apply to a ``{server: weight}`` reference model."""
        model[self.server] = self.weight


@dataclass(frozen=True, slots=True)
class RemoveServer:
    """Remove ``server``."""

    server: str

    def apply(self, target: Any) -> None:
        """Apply to a balancer (or anything with ``remove_server``)."""
        target.remove_server(self.server)

    def apply_model(self, model: dict[str, float]) -> None:
        """Apply to a ``{server: weight}`` reference model."""
        del model[self.server]


@dataclass(frozen=True, slots=True)
class SetWeight:
    """Set ``server``'s weight."""

    server: str
    weight: float

    def apply(self, target: Any) -> None:
        """Apply to a balancer (or anything with ``set_weight``)."""
        target.set_weight(self.server, self.weight)

    def apply_model(self, model: dict[str, float]) -> None:
        """Apply to a ``{server: weight}`` reference model."""
        model[self.server] = self.weight


Change = AddServer | RemoveServer | SetWeight
"""One membership change, a frozen dataclass with a ``repr`` to paste into a test.

``change.apply(balancer)`` performs it (at the balancer's cost for that
change); ``change.apply_model(d)`` applies it to a plain dict in O(1).
"""


def membership_changes(
    servers: Mapping[str, float] | Iterable[str],
    *,
    min_size: int = 1,
    max_size: int = 10,
    weighted: bool = True,
    keep_one: bool = True,
    ids: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[list[Change]]:
    """Sequences of changes, each valid after the ones before it, starting from ``servers``.

    Only members are removed or reweighted; added servers are new ids or
    ones removed earlier (re-adding is where a hash strategy should give a
    server its keys back). With ``keep_one``, after every change some
    server has a weight > 0, so picking never fails.

    Raises:
        TypeError, ValueError: bad ``servers`` (as a strategy constructor), or
            ``max_size < min_size``.
    """
    start = parse_servers(servers)
    check_sizes(min_size, max_size)
    new_ids = _NAME if ids is None else ids
    weight = _ANY_WEIGHT if weighted else st.sampled_from([0.0, 1.0])

    @st.composite
    def build(draw: st.DrawFn) -> list[Change]:
        model = dict(start)
        gone: dict[str, None] = {}  # removed servers, in order: candidates to come back
        changes: list[Change] = []

        def spare(server: str) -> bool:
            # May this server stop taking work? Only if another one still does.
            return not keep_one or any(w > 0 for s, w in model.items() if s != server)

        for _ in range(draw(st.integers(min_size, max_size))):
            kinds = ["add"] + (["remove", "set"] if model else [])
            kind = draw(st.sampled_from(kinds))
            change: Change
            if kind == "add":
                fresh = new_ids.filter(lambda s: s not in model)
                name = draw(st.sampled_from(list(gone)) | fresh if gone else fresh)
                value = draw(weight) if weighted else 1.0
                if keep_one and not any(model.values()):
                    value = value or 1.0  # the pool has no server taking work: this one must
                change = AddServer(name, value)
            elif kind == "remove" and any(spare(s) for s in model):
                change = RemoveServer(draw(st.sampled_from([s for s in model if spare(s)])))
            else:
                server = draw(st.sampled_from(list(model)))
                value = draw(weight)
                change = SetWeight(server, value if value > 0 or spare(server) else 1.0)
            change.apply_model(model)
            if isinstance(change, RemoveServer):
                gone[change.server] = None
            else:
                gone.pop(change.server, None)
            changes.append(change)
        return changes

    return build()


def check_sizes(min_size: int, max_size: int, name: str = "max_size") -> None:
    """Check a ``(min_size, max_size)`` pair of ints >= 0 in order; ``name`` names the upper one.

    Raises:
        ValueError: a bound that is not an int >= 0, or ``max_size < min_size``.
    """
    for label, value in (("min_size", min_size), (name, max_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{label} must be an int >= 0, got {value!r}")
    if max_size < min_size:
        raise ValueError(f"{name} must be >= min_size {min_size}, got {max_size!r}")
