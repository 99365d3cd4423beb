"""The allowed import arrows between the concerns of `payments`, checked on the source: the error
tree imports nothing of the package (no cycle through it), the channel cores import no transport,
ledger adapter or pay-per-use module, and the wallet never imports `payments` (payments build on
the wallet, not the reverse)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ALLOWED = {
    "payments.errors": set(),
    "payments.channels": {"payments.errors", "payments.channels"},
    "payments.transports": {"payments.errors", "payments.channels", "payments.transports"},
    "payments.ledger": {"payments.errors", "payments.channels", "payments.ledger"},
    "payments.payperuse": {"payments.errors", "payments.channels", "payments.payperuse"},
    "payments.charging": {
        "payments.errors",
        "payments.channels",
        "payments.payperuse",
        "payments.charging",
    },
    "payments.roaming": {"payments.errors", "payments.channels", "payments.roaming"},
}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """Every module `path` imports (relative imports resolved), type-only ones included."""
    package = _module(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            if node.module is None:  # `from . import funder`
                found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _concern(module: str) -> str | None:
    return next((c for c in ALLOWED if module == c or module.startswith(c + ".")), None)


def _payments_modules() -> list[Path]:
    return [p for p in sorted((ROOT / "payments").rglob("*.py")) if _concern(_module(p))]


@pytest.mark.parametrize("path", _payments_modules(), ids=lambda p: _module(p))
def test_each_payments_module_imports_only_its_allowed_concerns(path: Path) -> None:
    concern = _concern(_module(path))
    assert concern is not None
    inner = {m for m in _imports(path) if m == "payments" or m.startswith("payments.")}
    outside = {m for m in inner if _concern(m) not in ALLOWED[concern]}
    assert not outside, f"{_module(path)} ({concern}) imports {sorted(outside)}"


def test_the_wallet_never_imports_payments() -> None:
    for path in sorted((ROOT / "wallet").rglob("*.py")):
        payments = {m for m in _imports(path) if m == "payments" or m.startswith("payments.")}
        assert not payments, f"{_module(path)} imports {sorted(payments)}"
