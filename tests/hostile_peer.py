"""A hostile gossip peer: speaks the real protocol (the frame codec of `tangle.p2p.gossip`) over
loopback TCP to a node's p2p port, and sends whatever a test wants.

Start nodes as the other tests do (`_gossip_net.network` in one process, or
`_network_harness.cluster` as processes), name the node's p2p port with a `Target`, then::

    async with hostile(Target.of(peer)) as bad:           # handshakes as a random node id
        await bad.announce(random_ids(50_000))            # an announce flood
        await bad.send(Request(ids=...))                  # any frame, or bad.send_raw(bytes)
        await bad.message(reattach(raw, (other_id,)))     # a copied payload+nonce, new parent
        await bad.closed.wait()                           # the node closed the link

`hostile(..., node_id=..., listen_port=..., local_host="127.0.0.2")` chooses the node id the
handshake claims, the listening port it names and the loopback address the link comes from
(every 127.x address reaches the node; the node sees a different host); `handshake=False`
leaves the handshake to the test. `swarm(target, n)` opens `n` links from one address at once.

A background task reads everything the node sends into `HostilePeer.frames` (so the node never
finds the peer slow), counts the bytes, and sets `closed` when the node ends the connection.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from tangle.p2p.gossip import (
    MAX_IDS,
    Announce,
    FrameReader,
    Handshake,
    MessageFrame,
    MilestoneRequest,
    NodeId,
    Request,
    encode_frame,
    key_set_digest,
)
from tangle.protocol.ids import MessageId
from tangle.protocol.message import Message, decode_message, encode_message, prepare
from tangle.protocol.payload import TaggedData
from tangle.protocol.pow import work_value
from tangle.window.dag import GENESIS_ID

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable

    from tangle.node.config import NetworkSpec
    from tangle.p2p.gossip import Frame
    from tests._gossip_net import Peer


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A node's p2p port, and what a handshake to it must say."""

    host: str
    """Where it listens."""
    port: int
    """Its p2p port."""
    network_id: int
    """Its network."""
    key_set_digest: bytes
    """`key_set_digest` of its first committee key set."""
    work_per_kib: int
    """Its proof-of-work difficulty."""

    @classmethod
    def of(cls, peer: Peer) -> Target:
        """A node of `_gossip_net.Network`."""
        from tests._gossip_net import KEY_SET, PARAMS

        return cls(
            host="127.0.0.1",
            port=peer.port,
            network_id=PARAMS.network_id,
            key_set_digest=key_set_digest(KEY_SET),
            work_per_kib=PARAMS.work_per_kib,
        )

    @classmethod
    def of_spec(cls, spec: NetworkSpec, address: tuple[str, int]) -> Target:
        """A node process of `_network_harness.Cluster` (`cluster.p2p(name)`)."""
        host, port = address
        return cls(
            host=host,
            port=port,
            network_id=spec.params.network_id,
            key_set_digest=key_set_digest(spec.key_set),
            work_per_kib=spec.params.work_per_kib,
        )


def random_ids(count: int) -> list[MessageId]:
    """`count` random message ids (nobody has them)."""
    return [MessageId(secrets.token_bytes(32)) for _ in range(count)]


def bad_work(target: Target, parents: tuple[MessageId, ...] = (GENESIS_ID,)) -> bytes:
    """A well-formed message whose nonce misses its proof-of-work target (the node refuses it
    for cause and bans the sender)."""
    unsent = prepare(target.network_id, TaggedData(tag=b"spam", data=b"x"), target.work_per_kib)
    nonce = next(n for n in range(1 << 16) if work_value(unsent.root, n) > unsent.target)
    return encode_message(unsent.attach(parents, nonce))


def reattach(raw: bytes, parents: Iterable[MessageId]) -> bytes:
    """The message `raw` with its payload and nonce copied onto other parents (the work stays
    valid: it covers the payload only)."""
    message = decode_message(raw).message
    copy = Message(
        network_id=message.network_id,
        parents=tuple(sorted(set(parents))),
        payload=message.payload,
        nonce=message.nonce,
    )
    return encode_message(copy)


@dataclass(slots=True)
class HostilePeer:
    """One link to the node; every send tolerates the node closing it first."""

    stream: trio.SocketStream
    target: Target
    node_id: NodeId
    """The node id its handshake claims."""
    listen_port: int = 0
    """The listening port its handshake names."""
    frames: list[Frame] = field(default_factory=list)
    """Every frame the node sent, in order."""
    bytes_in: int = 0
    """Bytes the node sent."""
    bytes_out: int = 0
    """Bytes sent to the node."""
    closed: trio.Event = field(default_factory=trio.Event)
    """Set when the node closed (or reset) the connection."""
    _arrived: trio.Event = field(default_factory=trio.Event)

    @property
    def local_port(self) -> int:
        """This end's source port."""
        return int(self.stream.socket.getsockname()[1])

    def hello(self, **changes: Any) -> Handshake:
        """A valid handshake from `node_id`, with `changes`."""
        fields: dict[str, Any] = {
            "network_id": self.target.network_id,
            "key_set_digest": self.target.key_set_digest,
            "node_id": self.node_id,
            "listen_port": self.listen_port,
            "confirmed_index": 0,
        }
        fields.update(changes)
        return Handshake(**fields)

    async def handshake(self, **changes: Any) -> None:
        await self.send(self.hello(**changes))

    async def send_raw(self, data: bytes) -> None:
        """Send `data` (the node may have closed the link: then nothing happens)."""
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.stream.send_all(data)
            self.bytes_out += len(data)

    async def send(self, *frames: Frame) -> None:
        """Send `frames` in one write."""
        await self.send_raw(b"".join(encode_frame(frame) for frame in frames))

    async def announce(self, ids: Iterable[MessageId]) -> None:
        """ANNOUNCE `ids`, `MAX_IDS` per frame."""
        ids = list(ids)
        for start in range(0, len(ids), MAX_IDS):
            await self.send(Announce(ids=tuple(ids[start : start + MAX_IDS])))

    async def request(self, ids: Iterable[MessageId]) -> None:
        """REQUEST `ids`, `MAX_IDS` per frame."""
        ids = list(ids)
        for start in range(0, len(ids), MAX_IDS):
            await self.send(Request(ids=tuple(ids[start : start + MAX_IDS])))

    async def request_milestones(self, start: int, count: int) -> None:
        await self.send(MilestoneRequest(start=start, count=count))

    async def message(self, raw: bytes) -> None:
        """Send one MESSAGE frame (any bytes, well-formed or not)."""
        await self.send(MessageFrame(raw=raw))

    def messages(self) -> list[bytes]:
        """The raw messages the node sent."""
        return [frame.raw for frame in self.frames if isinstance(frame, MessageFrame)]

    async def wait_for(self, condition: Callable[[HostilePeer], bool]) -> None:
        """Wait until `condition(self)` holds, re-checked as frames arrive (wrap it in
        `trio.fail_after`); returns early if the node closes the link."""
        while not condition(self) and not self.closed.is_set():
            await self._arrived.wait()

    async def _read(self) -> None:
        reader = FrameReader()
        try:
            while data := await self.stream.receive_some(65536):
                self.bytes_in += len(data)
                for frame, _ in reader.feed(bytes(data), trio.current_time()):
                    self.frames.append(frame)
                self._arrived.set()
                self._arrived = trio.Event()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # reset: closed all the same
        finally:
            self.closed.set()
            self._arrived.set()


async def _open(target: Target, local_host: str | None) -> trio.SocketStream:
    if local_host is None:
        return await trio.open_tcp_stream(target.host, target.port)
    return await trio.open_tcp_stream(target.host, target.port, local_address=local_host)


@contextlib.asynccontextmanager
async def hostile(
    target: Target,
    *,
    node_id: NodeId | None = None,
    listen_port: int = 0,
    local_host: str | None = None,
    handshake: bool = True,
) -> AsyncIterator[HostilePeer]:
    """A link to `target` (from `local_host`, a loopback address), handshaken as `node_id`
    (random if None) unless `handshake` is False; closed on leaving."""
    stream = await _open(target, local_host)
    peer = HostilePeer(
        stream, target, node_id or NodeId(secrets.token_bytes(32)), listen_port=listen_port
    )
    async with stream, trio.open_nursery() as nursery:
        nursery.start_soon(peer._read)
        if handshake:
            await peer.handshake()
        try:
            yield peer
        finally:
            nursery.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def swarm(
    target: Target, count: int, *, local_host: str | None = None, handshake: bool = True
) -> AsyncIterator[list[HostilePeer]]:
    """`count` links from one address, each as its own random node id."""
    async with contextlib.AsyncExitStack() as stack:
        peers = [
            await stack.enter_async_context(
                hostile(target, local_host=local_host, handshake=handshake)
            )
            for _ in range(count)
        ]
        yield peers
