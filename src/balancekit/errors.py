"""The exception hierarchy.

Every error balancekit raises on purpose is a :class:`BalancekitError`, and
also an instance of the built-in exception a caller would naturally catch
(``LookupError``, ``KeyError``, ``ValueError``), so both styles work::

    try:
        server = lb.get_server()
    except LookupError:      # or: except balancekit.NoServerAvailable
        ...

Argument validation (bad weights, bad options, wrong key types) raises plain
``ValueError`` / ``TypeError`` whose message names the argument and the value.
"""

from __future__ import annotations

__all__ = [
    "AllServersBusy",
    "BalancekitError",
    "DuplicateServer",
    "NoServerAvailable",
    "UnknownServer",
]


class BalancekitError(Exception):
    """Base class of every exception defined by balancekit.

    Its ``repr`` and ``str`` never fail, whatever the arguments (Python refuses
    to print an int of more than 4,300 digits, which a bad argument may be).

    >>> repr(UnknownServer(10**5000))
    'UnknownServer(<int of 16610 bits>)'
    """

    def __repr__(self) -> str:
        from .validate import show

        return f"{type(self).__name__}({', '.join(show(arg) for arg in self.args)})"

    def __str__(self) -> str:
        from .validate import show

        args = self.args
        if len(args) == 1 and isinstance(args[0], str):
            return args[0]
        return ", ".join(show(arg) for arg in args) if len(args) != 1 else show(args[0])


class NoServerAvailable(BalancekitError, LookupError):
    """No server could be chosen.

    ``servers`` is how many servers the balancer holds (including those it
    could not use) and ``reason`` says why none was eligible.

    >>> str(NoServerAvailable(3, "all weights are 0"))
    'no server available among 3: all weights are 0'
    """

    def __init__(self, servers: int, reason: str) -> None:
        self.servers = servers
        self.reason = reason
        super().__init__(f"no server available among {servers}: {reason}")


class AllServersBusy(NoServerAvailable):
    """Every eligible server already has ``max_in_flight`` requests open (a Pool's cap).

    >>> isinstance(AllServersBusy(4, "all 4 eligible servers are full"), NoServerAvailable)
    True
    """


class UnknownServer(BalancekitError, KeyError):
    """The server is not a member.

    >>> str(UnknownServer("10.0.0.9:80"))
    "unknown server '10.0.0.9:80'"
    """

    def __init__(self, server: object) -> None:
        self.server = server
        super().__init__(server)

    def __str__(self) -> str:
        # KeyError.__str__ shows only the repr of the key; say what it means. Any
        # object may arrive here (a lookup by a wrong key), even an int too long to print.
        from .validate import show

        return f"unknown server {show(self.server)}"


class DuplicateServer(BalancekitError, ValueError):
    """The server is already a member.

    >>> str(DuplicateServer("a"))
    "server 'a' is already a member"
    """

    def __init__(self, server: str) -> None:
        self.server = server
        super().__init__(f"server {server!r} is already a member")
