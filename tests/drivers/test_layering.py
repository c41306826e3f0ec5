"""The core never imports the drivers, and the drivers package imports no third party."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PYTHONPATH": str(SRC)},
    ).stdout
    return set(out.split())


def test_the_core_imports_no_driver_and_no_driver_package() -> None:
    modules = loaded_after("import balancekit")
    assert not {m for m in modules if m.startswith("balancekit.drivers")}
    assert not modules & {"httpx", "redis", "httpcore", "anyio"}


def test_the_drivers_package_imports_neither_httpx_nor_redis() -> None:
    modules = loaded_after("import balancekit.drivers, balancekit.drivers.dns")
    assert not modules & {"httpx", "redis"}
    modules = loaded_after(
        "import balancekit.drivers.checks; balancekit.drivers.checks.tcp_probe()"
    )
    assert not modules & {"httpx", "redis"}  # httpx only for http_probe
