"""The coordinator process: a full node (ledger, gossip, API) with the coordinator beside it.

`coordinator.json`:
```
{"node": path to the node's node.json, "journal": path, "interval_s": float,
 "signers": path to a 0600 JSON file {"seeds": [hex, ...]} of the committee keys held here}
```
Paths are relative to the file. Milestones are published through the node's peering, after the
coordinator submitted them to its own node (see `service.py` for the order that keeps one
milestone per index).
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from tangle.errors import ConfigError
from tangle.node.config import NodeConfig, load_node_config
from tangle.service import Running, run_node

from .journal import Journal
from .service import Coordinator
from .signers import KeySigner


@dataclass(frozen=True, slots=True, kw_only=True)
class CoordinatorConfig:
    """How the coordinator process runs."""

    node: NodeConfig
    """Its node."""
    journal: Path
    """The issuance journal."""
    interval_s: float
    """Seconds between milestones."""
    signers: tuple[KeySigner, ...]
    """The committee keys held by this process."""


def _load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not JSON ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected an object")
    return doc


def load_coordinator_config(path: str | Path) -> CoordinatorConfig:
    path = Path(path)
    doc = _load(path)
    unknown = set(doc) - {"node", "journal", "interval_s", "signers"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}")
    try:
        node, journal, interval, signers = (
            doc["node"],
            doc["journal"],
            doc["interval_s"],
            doc["signers"],
        )
    except KeyError as exc:
        raise ConfigError(f"{path}: missing {exc.args[0]!r}") from None
    if not all(isinstance(v, str) for v in (node, journal, signers)):
        raise ConfigError(f"{path}: node, journal and signers are paths")
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise ConfigError(f"{path}.interval_s: expected a positive number")
    signers_path = path.parent / signers
    seeds = _load(signers_path).get("seeds")
    if stat.S_IMODE(signers_path.stat().st_mode) & 0o077:
        raise ConfigError(f"{signers_path}: holds secret keys; make it readable by you only (0600)")
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError(f"{signers_path}: expected {{'seeds': [hex, ...]}}")
    try:
        keys = tuple(KeySigner(bytes.fromhex(str(s))) for s in seeds)
    except ValueError:
        raise ConfigError(f"{signers_path}: seeds must be 32-byte hex strings") from None
    return CoordinatorConfig(
        node=load_node_config(path.parent / node),
        journal=path.parent / journal,
        interval_s=float(interval),
        signers=keys,
    )


async def run_coordinator(
    config: CoordinatorConfig, *, task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the node and issue a milestone every interval until cancelled."""
    journal = Journal.open(config.journal)
    try:
        async with trio.open_nursery() as nursery:
            running: Running = await nursery.start(run_node, config.node)
            coordinator = Coordinator(running.node, journal, config.signers)
            await nursery.start(coordinator.run, running.peering.publish, config.interval_s)
            task_status.started(running)
    finally:
        journal.close()
