"""Server ids as network addresses: ``"host:port"``, ``"[v6]:port"`` or a base URL.

The drivers accept the same ids everywhere: the HTTP transport and probes use
base URLs (``"http://10.0.0.1:8080"``), the TCP probe and DNS discovery also
plain ``"host:port"``. This module turns either into ``(scheme, host, port)``
and back, with IPv6 addresses in brackets as in a URL.

>>> split_server("http://[::1]:8080")
('http', '::1', 8080)
>>> split_server("10.0.0.1:80")
(None, '10.0.0.1', 80)
>>> join_server("::1", 53)
'[::1]:53'
"""

from __future__ import annotations

__all__ = ["DEFAULT_PORTS", "join_server", "split_server"]

DEFAULT_PORTS = {"http": 80, "https": 443}


def split_server(server: str) -> tuple[str | None, str, int]:
    """``(scheme or None, host, port)`` of a server id; O(len(server)).

    A URL without a port gets its scheme's default port; anything after the
    authority (a path) is ignored.

    Raises:
        ValueError: no host, no port where one is needed, or a bad port,
            naming the server id.
    """
    scheme: str | None = None
    rest = server
    if "://" in server:
        scheme, rest = server.split("://", 1)
        scheme = scheme.lower()
        rest = rest.split("/", 1)[0]
    if rest.startswith("["):
        host, sep, tail = rest[1:].partition("]")
        if not sep or (tail and not tail.startswith(":")):
            raise ValueError(f"server must be 'host:port' or a base URL, got {server!r}")
        port_text = tail[1:] if tail else ""
    else:
        host, _, port_text = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if not port_text and scheme in DEFAULT_PORTS:
        port_text = str(DEFAULT_PORTS[scheme])
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"server must be 'host:port' or a base URL, got {server!r}")
    return scheme, host, int(port_text)


def join_server(host: str, port: int, scheme: str | None = None) -> str:
    """The server id of an address: ``"host:port"`` or ``"scheme://host:port"``. O(1)."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return authority if scheme is None else f"{scheme}://{authority}"
