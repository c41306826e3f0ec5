"""The client examples of docs/http-client.md run as written, against real backends."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .backends import Backend

DOC = Path(__file__).resolve().parents[2] / "docs" / "http-client.md"
README = Path(__file__).resolve().parents[2] / "README.md"


def blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.DOTALL)


def with_backends(code: str, urls: list[str]) -> str:
    for placeholder, url in zip(
        ("http://10.0.0.1:8080", "http://10.0.0.2:8080", "http://10.0.0.3:8080"), urls, strict=True
    ):
        code = code.replace(placeholder, url)
    return code


def test_the_ten_line_client(backends: Callable[..., Backend]) -> None:
    three = [backends(name) for name in ("a", "b", "c")]
    code = with_backends(blocks(DOC)[0], [b.url for b in three])
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    assert namespace["response"].status_code == 200
    assert sum(b.hits["GET /users/42"] for b in three) == 100
    assert all(s.in_flight == 0 for s in namespace["pool"].stats().values())
    assert namespace["pool"].panic_threshold == 0


def test_the_async_client(backends: Callable[..., Backend]) -> None:
    three = [backends(name) for name in ("a", "b", "c")]
    namespace: dict[str, Any] = {}
    exec(compile(blocks(DOC)[1], str(DOC), "exec"), namespace)
    asyncio.run(asyncio.wait_for(namespace["main"]([b.url for b in three]), 20.0))
    assert sum(b.requests for b in three) == 100


def test_the_readme_example(backends: Callable[..., Backend]) -> None:
    three = [backends(name) for name in ("a", "b", "c")]
    code = next(block for block in blocks(README) if "BalancedTransport" in block)
    namespace: dict[str, Any] = {}
    exec(compile(with_backends(code, [b.url for b in three]), str(README), "exec"), namespace)
    assert sum(b.requests for b in three) >= 1
    # a client pool without panic: tests/drivers/test_httpx_panic.py shows why
    assert namespace["pool"].panic_threshold == 0
