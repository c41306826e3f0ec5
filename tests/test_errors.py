"""The exceptions print, whatever they were given."""

from __future__ import annotations

import pytest

import balancekit as bk
from balancekit.errors import BalancekitError, DuplicateServer, UnknownServer


def test_an_int_too_long_to_print_is_summarised_in_str_and_repr() -> None:
    huge = 10**5000
    assert repr(UnknownServer(huge)) == "UnknownServer(<int of 16610 bits>)"
    assert str(UnknownServer(huge)) == "unknown server <int of 16610 bits>"
    assert repr(BalancekitError(huge)) == "BalancekitError(<int of 16610 bits>)"
    assert str(BalancekitError(huge)) == "<int of 16610 bits>"
    lb = bk.RoundRobin(["a"])
    with pytest.raises(UnknownServer) as info:
        lb.remove_server(huge)  # type: ignore[arg-type]
    assert "<int of 16610 bits>" in repr(info.value)


def test_ordinary_messages_are_as_before() -> None:
    assert str(UnknownServer("a")) == "unknown server 'a'"
    assert repr(UnknownServer("a")) == "UnknownServer('a')"
    assert str(DuplicateServer("a")) == "server 'a' is already a member"
    assert str(bk.NoServerAvailable(3, "all weights are 0")) == (
        "no server available among 3: all weights are 0"
    )
    assert repr(BalancekitError("x", 2)) == "BalancekitError('x', 2)"
    assert str(BalancekitError("x", 2)) == "'x', 2"
