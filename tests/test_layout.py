"""The import rules of the layout (docs/ARCHITECTURE.md), read from the source with `ast`.

Every module of our packages is parsed and every import it makes is collected: at the top, under
`TYPE_CHECKING` and inside functions, absolute or relative. Each module belongs to a *room* (a
subpackage of `tangle`, or a top-level package) and a room may import only the rooms below it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parent.parent
PACKAGES: Final = ("tangle", "tanglepay", "coordinator", "wallet", "payments")

TANGLE_ROOMS: Final = ("protocol", "ledger", "window", "work", "storage", "node", "p2p", "http")
TANGLE_ROOT_MODULES: Final = {
    "tangle": "tangle",
    "tangle._numba_cache": "tangle",
    "tangle.errors": "errors",
    "tangle.service": "service",
}
_BELOW_NODE: Final = frozenset({"errors", "protocol", "ledger", "window", "storage"})
ALLOWED: Final[dict[str, frozenset[str]]] = {
    "tangle": frozenset(),
    "errors": frozenset(),
    "protocol": frozenset({"errors"}),
    "ledger": frozenset({"errors", "protocol"}),
    "window": frozenset({"errors", "protocol"}),
    "work": frozenset({"errors", "protocol"}),
    "storage": frozenset({"errors", "protocol", "ledger", "window"}),
    "node": _BELOW_NODE,
    "p2p": _BELOW_NODE | {"node"},
    "http": _BELOW_NODE | {"node", "work"},
    "service": _BELOW_NODE | {"node", "work", "p2p", "http"},
    "coordinator": frozenset({"errors", "protocol", "ledger", "window", "work", "node", "service"}),
    "wallet": frozenset({"errors", "protocol", "ledger", "work"}),
    "payments": frozenset({"errors", "protocol", "ledger", "wallet"}),
    "tanglepay": frozenset(
        {*TANGLE_ROOMS, "errors", "service", "coordinator", "wallet", "payments"}
    ),
}
"""Which rooms each room may import, besides itself and the light `tangle` package."""
PROTOCOL_THIRD_PARTY: Final = frozenset({"nacl", "numpy", "numba"})
SANS_IO: Final = frozenset(
    {"tangle.node.core", "tangle.p2p.gossip", "tangle.p2p._gossip_frames", "tangle.p2p.sync"}
    | {"tangle.p2p._milestone_sync"}
)
"""The state machines of the node and of gossip, besides the protocol, ledger and window rooms."""
SANS_IO_ROOMS: Final = frozenset({"protocol", "ledger", "window"})
IO: Final = frozenset({"trio", "anyio", "asyncio", "sqlite3", "socket", "threading", "httpx"})
"""What a sans-I/O module may not import, besides the storage room."""


@dataclass(frozen=True, slots=True)
class Import:
    importer: str
    """The importing module."""
    target: str
    """The module imported (for `from X import name`, `X.name` when that is a module)."""
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports(importer: str, *, package: bool, text: str) -> list[Import]:
    """The imports in `text`, the source of module `importer` (a package's `__init__` if
    `package`), resolved to absolute module names the way Python resolves them."""
    base_package = importer if package else importer.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found += [Import(importer, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base_package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                target = submodule if _is_module(submodule) else source
                found.append(Import(importer, target, node.lineno))
    return found


def _all_imports() -> list[Import]:
    return [
        found
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for found in _imports(
            _module_name(path), package=path.name == "__init__.py", text=path.read_text()
        )
    ]


def room(module: str) -> str | None:
    """The room of one of our modules, None for a module of someone else."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    if parts[0] != "tangle":
        return parts[0]
    if len(parts) > 1 and parts[1] in TANGLE_ROOMS:
        return parts[1]
    return TANGLE_ROOT_MODULES.get(module, "unknown")


IMPORTS: Final = _all_imports()


def test_every_module_of_tangle_has_a_room() -> None:
    modules = {found.importer for found in IMPORTS} | {
        _module_name(path) for path in (ROOT / "tangle").rglob("*.py")
    }
    assert sorted(m for m in modules if room(m) == "unknown") == []


def _forbidden(imports: list[Import]) -> list[str]:
    broken = []
    for found in imports:
        source, target = room(found.importer), room(found.target)
        sans_io = found.importer in SANS_IO or source in SANS_IO_ROOMS
        if sans_io and (found.target.split(".")[0] in IO or target == "storage"):
            broken.append(f"{found.importer}:{found.line} (sans-I/O) imports {found.target}")
            continue
        if source is None or target is None or target in (source, "tangle"):
            continue
        if target not in ALLOWED[source]:
            broken.append(f"{found.importer}:{found.line} ({source}) imports {found.target}")
    return broken


def test_each_room_imports_only_the_rooms_below_it() -> None:
    assert _forbidden(IMPORTS) == []


def test_nothing_imports_tanglepay() -> None:
    broken = [
        f"{found.importer}:{found.line}"
        for found in IMPORTS
        if room(found.target) == "tanglepay" and room(found.importer) != "tanglepay"
    ]
    assert broken == []


def test_tangle_never_imports_the_packages_built_on_it() -> None:
    above = {"tanglepay", "coordinator", "wallet", "payments"}
    broken = [
        f"{found.importer}:{found.line} imports {found.target}"
        for found in IMPORTS
        if found.importer.split(".")[0] == "tangle" and found.target.split(".")[0] in above
    ]
    assert broken == []


def test_protocol_imports_only_the_standard_library_nacl_numpy_and_numba() -> None:
    foreign = {
        found.target
        for found in IMPORTS
        if room(found.importer) == "protocol" and room(found.target) is None
    }
    allowed = set(sys.stdlib_module_names) | PROTOCOL_THIRD_PARTY
    assert sorted(t for t in foreign if t.split(".")[0] not in allowed) == []


@pytest.mark.parametrize(
    "source",
    [
        "from ..storage.storage import Storage",
        "from tangle import p2p",
        "import trio",
        "import tangle.http",
        "def f() -> None:\n    from coordinator.service import Coordinator",
        "if TYPE_CHECKING:\n    from tangle.storage import Storage",
    ],
)
def test_a_node_core_that_imports_storage_or_above_is_caught(source: str) -> None:
    """The scanner sees relative, submodule, function-local and TYPE_CHECKING imports."""
    found = _imports("tangle.node.core", package=False, text=source)
    assert len(_forbidden(found)) == 1


def test_import_tangle_protocol_loads_no_sqlite_trio_or_numba() -> None:
    heavy = ("sqlite3", "_sqlite3", "trio", "numba", "numba.core", "anyio", "starlette")
    code = f"import sys, tangle.protocol; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert loaded == ""
