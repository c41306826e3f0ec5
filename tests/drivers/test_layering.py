"""The core never imports the drivers, and the drivers package imports no third party."""

from __future__ import annotations

from ..processes import outputs_under_hash_seeds


def loaded_after(statement: str) -> set[str]:
    """The modules loaded in a fresh interpreter after ``statement``."""
    (out,) = outputs_under_hash_seeds(
        f"import sys; {statement}; print(' '.join(sys.modules))", ("0",)
    )
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
