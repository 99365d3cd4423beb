"""A network of nodes in one process for the peering tests: nodes on sqlite, their peerings on
loopback TCP, a coordinator beside the first, and signed transfers from genesis outputs."""

from __future__ import annotations

import contextlib
import itertools
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import trio

from coordinator import Coordinator, Journal, KeySigner
from tangle.errors import NoTipsError
from tangle.ledger.committee import KeySchedule
from tangle.node.core import Parameters
from tangle.node.ledger_node import LedgerNode
from tangle.node.node import Node
from tangle.p2p.gossip import Handshake, NodeId, encode_frame, key_set_digest
from tangle.p2p.peering import PeerInfo, Peering, PeeringConfig
from tangle.protocol.message import encode_message, prepare
from tangle.protocol.milestone import KeySet
from tangle.window.dag import GENESIS_ID
from tangle.window.tip_selection import UniformRandomTips
from tangle.work import search
from tests.builders import NET, address, genesis, key, transfer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from nacl.signing import SigningKey

    from tangle.node.core import NodeCore
    from tangle.protocol.ids import MessageId, OutputId
    from tangle.protocol.payload import Payload

PARAMS = Parameters(network_id=NET, work_per_kib=16, min_output_amount=1)
SIGNERS = sorted((KeySigner(bytes([i]) * 32) for i in range(1, 6)), key=lambda s: s.public_key)
KEY_SET = KeySet(threshold=3, public_keys=tuple(s.public_key for s in SIGNERS))
SCHEDULE = KeySchedule(entries=((1, KEY_SET),))
ACCOUNTS = [key(i) for i in range(1, 129)]
GENESIS = genesis([(k, 1_000_000) for k in ACCOUNTS])
FUNDS: list[tuple[OutputId, SigningKey]] = list(zip(GENESIS.outputs(), ACCOUNTS, strict=True))
"""Each genesis output and its owner: one transfer each, so no two transfers conflict."""

FAST = PeeringConfig(
    heartbeat_interval_s=0.5,
    solidify_interval_s=0.25,
    request_timeout_s=0.5,
    retry_backoff_s=0.25,
    sync_timeout_s=1.0,
    sync_grace_s=0.3,
    reconnect_min_s=0.05,
    reconnect_max_s=0.5,
)
"""Short timers for tests on the real clock."""


@dataclass
class Peer:
    """One node of the test network."""

    ledger: LedgerNode
    node: Node
    peering: Peering
    path: Path
    port: int = 0
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    stopped: trio.Event = field(default_factory=trio.Event)

    async def confirmed(self) -> int:
        return await self.node.read_core(lambda core: core.confirmed_index)

    async def state(self) -> tuple[int, bytes]:
        return await self.node.read_core(
            lambda core: (core.confirmed_index, core.ledger.state_hash)
        )

    async def knows(self, message_id: MessageId) -> bool:
        return await self.node.read_core(lambda core: core.knows(message_id))


class Network:
    """Nodes started in a nursery; each peering runs in its own cancel scope."""

    def __init__(self, tmp_path: Path, nursery: trio.Nursery) -> None:
        self._tmp_path = tmp_path
        self._nursery = nursery
        self._count = itertools.count()
        self.peers: list[Peer] = []
        self._ledgers: list[LedgerNode] = []
        self._fakes: list[FakePeer] = []
        self.journal: Journal | None = None

    async def start(self, config: PeeringConfig = FAST, *, path: Path | None = None) -> Peer:
        """A node on a new database (or the one at `path`) with its peering running."""
        path = path or self._tmp_path / f"node{next(self._count)}.db"
        ledger = LedgerNode.open(path, genesis=GENESIS, params=PARAMS, schedule=SCHEDULE)
        self._ledgers.append(ledger)
        node = Node(ledger)
        peer = Peer(ledger=ledger, node=node, peering=Peering(node, config), path=path)
        peer.port = await self._nursery.start(self._run, peer)
        self.peers.append(peer)
        return peer

    async def _run(self, peer: Peer, *, task_status: trio.TaskStatus[int]) -> None:
        try:
            with peer.scope:
                await peer.peering.run(task_status=task_status)
        finally:
            peer.stopped.set()

    async def stop(self, peer: Peer) -> None:
        """Stop its peering and close its database (as a node shutting down)."""
        peer.scope.cancel()
        await peer.stopped.wait()
        self._ledgers.remove(peer.ledger)
        peer.ledger.close()

    def coordinator(self, peer: Peer) -> Coordinator:
        self.journal = Journal.open(self._tmp_path / "journal.db")
        return Coordinator(peer.node, self.journal, SIGNERS[:3])

    async def run_coordinator(self, peer: Peer, interval_s: float) -> trio.CancelScope:
        """Run a coordinator beside `peer`, publishing through its peering; cancel the returned
        scope to stop it."""
        coordinator = self.coordinator(peer)
        scope = trio.CancelScope()

        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            with scope:
                await coordinator.run(peer.peering.publish, interval_s, task_status=task_status)

        await self._nursery.start(run)
        return scope

    async def fake(self, peer: Peer, node_id: NodeId | None = None) -> FakePeer:
        """A hand-driven peer connected to `peer` (closed with the network)."""
        stream = await trio.open_tcp_stream("127.0.0.1", peer.port)
        fake = FakePeer(stream, node_id or NodeId(secrets.token_bytes(32)))
        self._fakes.append(fake)
        return fake

    async def close_fakes(self) -> None:
        with trio.CancelScope(shield=True):
            for fake in self._fakes:
                await fake.stream.aclose()

    def close(self) -> None:
        for ledger in self._ledgers:
            ledger.close()
        if self.journal is not None:
            self.journal.close()


@contextlib.asynccontextmanager
async def network(tmp_path: Path) -> AsyncIterator[Network]:
    async with trio.open_nursery() as nursery:
        net = Network(tmp_path, nursery)
        try:
            yield net
        finally:
            nursery.cancel_scope.cancel()
            await net.close_fakes()
    net.close()


def link(a: Peer, b: Peer) -> None:
    """`a` dials `b`."""
    a.peering.add_peer("127.0.0.1", b.port)


def full_mesh(peers: list[Peer]) -> None:
    for i, a in enumerate(peers):
        for b in peers[i + 1 :]:
            link(a, b)


def _tips(core: NodeCore, rng: np.random.Generator) -> tuple[MessageId, ...]:
    try:
        return UniformRandomTips().select(core.dag, rng, 2)
    except NoTipsError:
        return (GENESIS_ID,)


async def send(peer: Peer, payload: Payload, rng: np.random.Generator) -> bytes:
    """Attach `payload` to tips of `peer`, submit it there and publish it (as the API does)."""
    unsent = prepare(NET, payload, PARAMS.work_per_kib)
    nonce = search(unsent.root, unsent.target, threads=1)
    parents = await peer.node.read_core(lambda core: _tips(core, rng))
    raw = encode_message(unsent.attach(parents, nonce))
    await peer.node.submit(raw)
    await peer.peering.publish(raw)
    return raw


async def send_transfer(peer: Peer, n: int, rng: np.random.Generator) -> bytes:
    """Spend genesis output `n` to the next account (one transfer per output)."""
    oid, owner = FUNDS[n]
    to = ACCOUNTS[(n + 1) % len(ACCOUNTS)]
    tx = transfer([(oid, owner)], [(address(to), 400_000), (address(owner), 600_000)])
    return await send(peer, tx, rng)


async def until(condition: Callable[[], Awaitable[bool]], poll: float = 0.05) -> None:
    """Poll `condition` until it holds (wrap it in `trio.fail_after`)."""
    while True:
        if await condition():
            return
        await trio.sleep(poll)


def rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)


class FakePeer:
    """A hand-driven peer on a raw TCP connection: sends whatever bytes a test wants."""

    def __init__(self, stream: trio.SocketStream, node_id: NodeId) -> None:
        self.stream = stream
        self.node_id = node_id

    def hello(self, **changes: Any) -> Handshake:
        fields: dict[str, Any] = {
            "network_id": NET,
            "key_set_digest": key_set_digest(KEY_SET),
            "node_id": self.node_id,
            "listen_port": 0,
            "confirmed_index": 0,
        }
        fields.update(changes)
        return Handshake(**fields)

    async def handshake(self, **changes: Any) -> None:
        """Send our handshake (with `changes`)."""
        await self.stream.send_all(encode_frame(self.hello(**changes)))

    async def send(self, data: bytes) -> None:
        """Send `data`; the node may close the connection before it has read it all."""
        with contextlib.suppress(trio.BrokenResourceError):
            await self.stream.send_all(data)

    async def closed(self) -> None:
        """Read (and drop) everything until the node closes the connection."""
        with contextlib.suppress(trio.BrokenResourceError):
            while await self.stream.receive_some(65536):
                pass


def info(peer: Peer, node_id: NodeId) -> PeerInfo | None:
    """What `peer` reports about `node_id`."""
    return next((p for p in peer.peering.peers() if p.node_id == node_id), None)


async def connected(*peers: Peer, count: int) -> None:
    """Wait until each of `peers` has `count` connected peers."""

    async def check() -> bool:
        return all(sum(info.connected for info in peer.peering.peers()) == count for peer in peers)

    await until(check)
