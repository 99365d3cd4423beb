"""A whole node on one trio run: ledger, gossip, HTTP API and periodic pruning.

`run_node` is what `tanglepay node` runs, and what the coordinator process runs under its
coordinator: it opens the database (rebuilding the node after a crash), starts the peering and
the API, warms the kernels up, reports both bound ports through
`task_status.started(Running(...))`, prunes every `prune_every_s`, and closes the database when
cancelled. What stops it starting (a database it cannot open, a port taken) is one
`StartupError` whose message names the cause and the fix, before the slow warm-up.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import trio

from tangle.http.api import ApiConfig, create_app, serve_api
from tangle.node.ledger_node import LedgerNode
from tangle.node.node import Node
from tangle.p2p._peering_config import PeeringConfig
from tangle.p2p.peering import Peering
from tangle.storage.snapshot import create_from_snapshot, read_snapshot
from tangle.window import tip_selection

from .errors import ConfigError, InvalidFieldError, StartupError, StorageError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from tangle.node.config import NodeConfig
    from tangle.p2p._peering_config import PeerInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Running:
    """A started node."""

    node: Node
    """Its state."""
    peering: Peering
    """Its peers."""
    p2p_port: int
    """Where it accepts peers."""
    api_port: int
    """Where it serves the HTTP API."""


def _render(info: PeerInfo) -> dict[str, object]:
    fields = dataclasses.asdict(info)
    fields["id"] = info.node_id.hex() if info.node_id is not None else info.address
    return fields


class PeeringAdmin:
    """The HTTP API's view of a `Peering` (its `PeerAdmin` protocol)."""

    __slots__ = ("_peering",)

    def __init__(self, peering: Peering) -> None:
        self._peering = peering

    def peers(self) -> list[Mapping[str, object]]:
        return [_render(info) for info in self._peering.peers()]

    async def add_peer(self, host: str, port: int) -> Mapping[str, object]:
        if not host or not 0 < port < 65536:
            raise ValueError(f"not a peer address: {host}:{port}")
        address = self._peering.add_peer(host, port)
        return {"id": str(address), "address": str(address), "connected": False}

    async def remove_peer(self, peer: str) -> bool:
        try:
            key: str | bytes = bytes.fromhex(peer) if len(peer) == 64 else peer
            return self._peering.remove_peer(key)
        except (ValueError, InvalidFieldError):
            return False

    async def publish(self, raw: bytes) -> None:
        await self._peering.publish(raw)

    def gossip_counters(self) -> dict[str, float]:
        counters = self._peering.counters
        return {
            "received_bytes_total": counters.traffic.total_in,
            "sent_bytes_total": counters.traffic.total_out,
            "unique_message_bytes_total": counters.unique_message_bytes,
            "messages_received_total": counters.messages_received,
            "messages_duplicate_total": counters.messages_duplicate,
            "messages_published_total": counters.published,
            "bans_total": counters.bans,
            **{
                SIZE_NAMES[name]: float(value)
                for name, value in dataclasses.asdict(self._peering.sizes()).items()
            },
        }


SIZE_NAMES: Final = {
    "links": "links",
    "inbound_links": "inbound_links",
    "inbound_connections": "inbound_connections",
    "inbound_hosts": "inbound_hosts",
    "wanted": "wanted_ids",
    "wanted_announced": "wanted_announced_ids",
    "wanted_by_one_peer": "wanted_by_one_peer_ids",
    "request_schedule": "request_schedule_entries",
    "bans": "ban_entries",
    "errors": "closing_reasons",
}
"""Gauge names (`tangle_gossip_<name>`) of the bounded tables `Peering.sizes` reports."""


async def _prune_forever(node: Node, keep: int, every_s: float) -> None:
    while True:
        await trio.sleep(every_s)
        confirmed = await node.read_core(lambda core: core.confirmed_index)
        if confirmed > keep:
            pruned = await node.write(lambda ledger: ledger.prune(keep))
            log.info("pruned below milestone %d: %d messages", pruned.pruned_index, pruned.messages)


def start_from_snapshot(config: NodeConfig, path: Path) -> None:
    """Create the node's database from the snapshot file at `path` (refused if it exists or if
    the snapshot belongs to another network: id, supply or committee at genesis differ)."""
    database = config.data_dir / "node.db"
    if database.exists():
        raise ConfigError(f"{database} exists; a snapshot only starts a new node")
    snapshot = read_snapshot(path)
    network = config.network
    if (snapshot.network_id, snapshot.supply, snapshot.key_schedule.key_set_at(1)) != (
        network.params.network_id,
        network.genesis.supply,
        network.key_set,
    ):
        raise ConfigError(f"{path} is a snapshot of another network")
    config.data_dir.mkdir(parents=True, exist_ok=True)
    create_from_snapshot(database, snapshot).close()


def _bind_error(exc: BaseException) -> OSError | None:
    """The `OSError` that `exc` is, or that a group of one holds (how a listener that cannot
    bind fails inside a nursery)."""
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _bind_error(exc.exceptions[0])
    return exc if isinstance(exc, OSError) else None


async def start_listener(
    nursery: trio.Nursery, serve: Callable[..., Any], *, what: str, where: str, fix: str
) -> int:
    """Start `serve` (a listener that reports its port) in `nursery`; an address it cannot bind
    is a `StartupError` naming `what` listens `where`, why not, and `fix`."""
    try:
        port: int = await nursery.start(serve)
    except (OSError, BaseExceptionGroup) as exc:
        error = _bind_error(exc)
        if error is None:
            raise
        raise StartupError(
            f"cannot listen for {what} on {where}: {error.strerror or error}; {fix}"
        ) from None
    return port


def _fix(section: str) -> str:
    return f"stop what uses it, or set another {section}.port in the node's node.json"


def _open_ledger(config: NodeConfig) -> LedgerNode:
    database = config.data_dir / "node.db"
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        return LedgerNode.open(
            database,
            genesis=config.network.genesis,
            params=config.network.params,
            schedule=config.network.schedule,
        )
    except OSError as exc:
        raise StartupError(
            f"cannot create the data directory {config.data_dir}: {exc.strerror}; "
            "fix its permissions or set another data_dir"
        ) from None
    except StorageError as exc:
        raise StartupError(
            f"cannot open the database {database}: {exc}; restore it from a backup, or move "
            "it away and start the node again (from a snapshot with --snapshot)"
        ) from None


async def run_node(
    config: NodeConfig, *, task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run the node of `config` until cancelled. A database it cannot open or a port it cannot
    bind is a `StartupError`, raised before the kernels warm up."""
    ledger = await trio.to_thread.run_sync(_open_ledger, config)
    try:
        node = Node(ledger)
        peering = Peering(
            node,
            PeeringConfig(
                host=config.p2p.host,
                port=config.p2p.port,
                peers=tuple((p.host, p.port) for p in config.peers),
            ),
        )
        async with trio.open_nursery() as nursery:
            p2p_port = await start_listener(
                nursery, peering.run, what="peers", where=str(config.p2p), fix=_fix("p2p")
            )
            app = create_app(
                node, ApiConfig(admin_token=config.admin_token), peers=PeeringAdmin(peering)
            )
            serve = partial(serve_api, app, config.api.host, config.api.port)
            api_port = await start_listener(
                nursery, serve, what="the API", where=str(config.api), fix=_fix("api")
            )
            # Compile (or load from Numba's cache) the window kernels now, not in the first
            # milestone; after binding, so that a taken port fails fast.
            await trio.to_thread.run_sync(tip_selection.warm_up)
            nursery.start_soon(_prune_forever, node, config.keep_milestones, config.prune_every_s)
            task_status.started(
                Running(node=node, peering=peering, p2p_port=p2p_port, api_port=api_port)
            )
    finally:
        ledger.close()
