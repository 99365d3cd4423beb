"""The gossip layer on trio: connections to peers, relay, requests, catch-up and bans.

`Peering(node, config).run()` listens for peers, dials the static ones (again, with backoff,
whenever a connection ends) and runs everything in its own nursery. This module decides who is
connected (handshake checks, duplicates, bans, administration); one connection is
`_peer_link.py`, what flows over them is `_relay.py`, what to request when is `sync.py`, and the
protocol itself is `gossip.py` (docs/PROTOCOL.md section 9).

**Admission.** Of `max_peers` slots, peers that dialed in take at most `max_inbound`: the rest
are kept for the peers this node dials, and a dialed peer that finds every slot taken replaces
the newest inbound one. One host (IPv4 address, IPv6 /64) may hold `max_inbound_per_host`
connections in, handshaken or not. Bans are by node id and by host for connections in, by node
id and dialed address for connections out (`_admission.py`).

**Relay.** A message that originates here (`publish`: the HTTP API's submissions, the
coordinator's milestones) is pushed in full to every peer. A message from a peer that the node
accepts is *announced*: its id goes, batched every `announce_interval_s`, to every peer not known
to have it. An announced id this node does not have is requested after `request_delay_s` (the
push from its origin is normally here by then) from one announcer at a time. So each node
receives each message about once, plus a 32-byte id from each other peer.

**Inbound pipeline.** Messages from all peers go through one bounded channel to a batcher
(`max_batch` messages or `batch_window_s`) and `Node.submit_many`; when the node falls behind,
the channel fills and the readers stop reading from their sockets. Accepted messages are relayed,
missing parents requested (first from the peer that sent the child), and the senders of messages
refused for cause (`InsufficientWorkError`, `InvalidTransactionError`, `BadSignatureError` of a
milestone, `DecodeError`, `WrongNetworkError`) disconnected and banned; duplicates and stale
milestones are only counted.

**Catch-up.** The solidifier re-requests ids that pending messages still miss; when a peer's
handshake or heartbeat shows a higher confirmed index, the milestones after ours are requested
in windows, and their past cones follow as missing parents. Messages fetched for the past are
not relayed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import trio

from tangle.errors import (
    DuplicateConnectionError,
    FrameError,
    FrameTimeoutError,
    KeySetMismatchError,
    MisbehavingPeerError,
    NetworkMismatchError,
    PeerBannedError,
    ProtocolVersionMismatchError,
    RateLimitedError,
    SelfConnectionError,
    TooManyPeersError,
    UnexpectedFrameError,
)

from ._admission import Admission, ban_key, remember
from ._peer_link import Link, LinkSettings
from ._peer_link import PeerAddress as PeerAddress
from ._peering_config import PeerInfo as PeerInfo
from ._peering_config import PeeringConfig as PeeringConfig
from ._peering_config import PeeringCounters as PeeringCounters
from ._peering_config import PeeringSizes as PeeringSizes
from ._relay import BENIGN as BENIGN
from ._relay import REFUSED_FOR_CAUSE as REFUSED_FOR_CAUSE
from ._relay import Relay
from .gossip import LocalNode, NodeId, PeerProtocol, key_set_digest

if TYPE_CHECKING:
    from tangle.node.node import Node

    from .gossip import Frame, Heartbeat, MilestoneRequest, Request

BANNED_FOR: Final = (
    FrameError,
    UnexpectedFrameError,
    ProtocolVersionMismatchError,
    NetworkMismatchError,
    KeySetMismatchError,
    FrameTimeoutError,
    RateLimitedError,
    MisbehavingPeerError,
)
"""Reasons to close a connection that also get the peer banned."""


@dataclass(slots=True)
class _Dial:
    address: PeerAddress
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    node_id: NodeId | None = None


def _preferred(outbound: bool, ours: NodeId, theirs: NodeId) -> bool:
    """Of two connections between the same nodes, both keep the one the lower id dialed."""
    return outbound == (ours < theirs)


class Peering:
    """A node's peers: connections, bans and administration; the gossip itself is `Relay`."""

    def __init__(
        self, node: Node, config: PeeringConfig | None = None, *, node_id: NodeId | None = None
    ) -> None:
        self._node = node
        self._config = config = config if config is not None else PeeringConfig()
        self._node_id = node_id if node_id is not None else NodeId(secrets.token_bytes(32))
        self._settings = LinkSettings(
            outbox_frames=config.outbox_frames,
            serve_queue=config.serve_queue,
            heartbeat_interval_s=config.heartbeat_interval_s,
            write_timeout_s=config.write_timeout_s,
            slow_peer_timeout_s=config.slow_peer_timeout_s,
            serve_bytes_per_s=config.serve_bytes_per_s,
            serve_burst_bytes=config.serve_burst_bytes,
        )
        self._local: LocalNode | None = None
        self._nursery: trio.Nursery | None = None
        self._links: dict[NodeId, Link] = {}
        self._dials: dict[PeerAddress, _Dial] = {}
        self._admission = Admission(config)
        self._errors: dict[NodeId | PeerAddress, str] = {}
        self._addresses: dict[NodeId, PeerAddress] = {}
        self._sources: dict[NodeId, tuple[str | PeerAddress, PeerAddress]] = {}
        self._port: int | None = None
        self.counters = PeeringCounters()
        """Monotonic counters over all peers."""
        self._relay = Relay(node, config, self.counters, self._links, self._punish)
        for host, port in config.peers:
            self.add_peer(host, port)

    # -- queries -------------------------------------------------------------------------------

    @property
    def node_id(self) -> NodeId:
        return self._node_id

    @property
    def port(self) -> int | None:
        """The port it listens on, once `run` started."""
        return self._port

    @property
    def bytes_received_per_unique_message_byte(self) -> float:
        """All bytes received from peers (every frame, headers included) over the bytes of the
        messages among them that the node accepted (0.0 before any). A flood that pushes every
        message to every peer costs about the peer count; the target is at most 2.0."""
        unique = self.counters.unique_message_bytes
        return self.counters.traffic.total_in / unique if unique else 0.0

    def peers(self) -> list[PeerInfo]:
        """Connected peers, then dialed peers not connected, then other banned peers."""
        now = trio.current_time()
        infos: list[PeerInfo] = []
        seen: set[NodeId | PeerAddress | None] = set()
        for node_id, link in self._links.items():
            seen.update((node_id, link.address))
            traffic = link.protocol.traffic
            infos.append(
                PeerInfo(
                    node_id=node_id,
                    address=str(link.address),
                    connected=True,
                    outbound=link.outbound,
                    since=link.since,
                    confirmed_index=link.remote_confirmed,
                    bytes_in=traffic.total_in,
                    bytes_out=traffic.total_out,
                    messages_in=link.messages_in,
                    unique_message_bytes_in=link.unique_bytes_in,
                    bytes_in_by_type={k.name: v for k, v in traffic.bytes_in.items()},
                    bytes_out_by_type={k.name: v for k, v in traffic.bytes_out.items()},
                    banned_until=None,
                    last_error=None,
                )
            )
        admission = self._admission
        offline = [
            (dial.node_id, address, admission.ban_of(dial.node_id, address, now))
            for address, dial in self._dials.items()
        ]
        offline += [(ban.node_id, ban.address, ban) for ban in admission.banned()]
        for peer_id, address, ban in offline:
            if address in seen or (peer_id is not None and peer_id in seen):
                continue
            outbound = address in self._dials
            if ban is not None and ban.until <= now:
                ban = None
            if not outbound and ban is None:
                continue
            seen.update((peer_id, address))
            error = self._errors.get(peer_id) if peer_id is not None else None
            infos.append(
                PeerInfo(
                    node_id=peer_id,
                    address=str(address),
                    connected=False,
                    outbound=outbound,
                    since=None,
                    confirmed_index=None,
                    bytes_in=0,
                    bytes_out=0,
                    messages_in=0,
                    unique_message_bytes_in=0,
                    bytes_in_by_type={},
                    bytes_out_by_type={},
                    banned_until=None if ban is None else ban.until,
                    last_error=error or self._errors.get(address),
                )
            )
        return infos

    def sizes(self) -> PeeringSizes:
        """The sizes of the tables peers can grow, now."""
        requests = self._relay.requests
        return PeeringSizes(
            links=len(self._links),
            inbound_links=sum(not link.outbound for link in self._links.values()),
            inbound_connections=self._admission.inbound_connections,
            inbound_hosts=self._admission.hosts,
            wanted=len(requests),
            wanted_announced=requests.announced_only,
            wanted_by_one_peer=max(map(requests.announced_by, self._links), default=0),
            request_schedule=requests.scheduled,
            bans=self._admission.bans,
            errors=len(self._errors),
        )

    # -- administration ------------------------------------------------------------------------

    def add_peer(self, host: str, port: int) -> PeerAddress:
        """Dial `host:port` and keep dialing it; returns its address."""
        address = PeerAddress(host, port)
        if address not in self._dials:
            dial = self._dials[address] = _Dial(address)
            if self._nursery is not None:
                self._nursery.start_soon(self._dial, dial)
        return address

    def remove_peer(self, peer: str | PeerAddress | bytes) -> bool:
        """Stop dialing a peer (by `host:port` or node id) and close its connection; it may
        still dial in. Returns whether anything matched."""
        node_id: NodeId | None = None
        address: PeerAddress | None = None
        if isinstance(peer, PeerAddress):
            address = peer
        elif isinstance(peer, str):
            address = PeerAddress.parse(peer)
        else:
            node_id = NodeId(peer)
        found = False
        for key, dial in list(self._dials.items()):
            if key == address or (node_id is not None and dial.node_id == node_id):
                dial.scope.cancel()
                del self._dials[key]
                node_id = node_id or dial.node_id
                found = True
        for link in list(self._links.values()):
            if link.address == address or link.node_id == node_id:
                link.close()
                found = True
        return found

    async def publish(self, raw: bytes) -> None:
        """Push a message that originates here (already accepted by the node: an API
        submission, a coordinator issue) in full to every peer."""
        await self._relay.publish(raw)

    # -- running -------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, dial the peers and gossip until cancelled; reports the bound port."""
        config = self._config
        node = self._node
        digest = await node.read_core(lambda core: key_set_digest(core.schedule.entries[0][1]))
        await self._relay.load()
        listeners = await trio.open_tcp_listeners(config.port, host=config.host)
        try:
            self._port = int(listeners[0].socket.getsockname()[1])
            self._local = LocalNode(
                network_id=node.network_id,
                key_set_digest=digest,
                node_id=self._node_id,
                listen_port=self._port,
            )
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._relay.run)
                nursery.start_soon(trio.serve_listeners, self._accept, listeners)
                for dial in self._dials.values():
                    nursery.start_soon(self._dial, dial)
                task_status.started(self._port)
        finally:
            self._nursery = None
            for listener in listeners:
                await trio.aclose_forcefully(listener)

    async def _accept(self, stream: trio.SocketStream) -> None:
        try:
            host, port = stream.socket.getpeername()[:2]
            key = self._admission.open_inbound(str(host))
        except OSError:  # gone already
            await trio.aclose_forcefully(stream)
            return
        except TooManyPeersError as exc:  # refused before reading a byte
            self._count_drop(exc)
            await trio.aclose_forcefully(stream)
            return
        try:
            await self._run_link(stream, PeerAddress(str(host), int(port)), outbound=False)
        finally:
            self._admission.close_inbound(key)

    async def _dial(self, dial: _Dial) -> None:
        config = self._config
        address = dial.address
        backoff = config.reconnect_min_s
        with dial.scope:
            while True:
                ban = self._admission.ban_of(dial.node_id, address, trio.current_time())
                if ban is not None:
                    await trio.sleep_until(ban.until)
                    continue
                if dial.node_id in self._links or any(
                    link.address == address for link in self._links.values()
                ):
                    await trio.sleep(config.reconnect_min_s)
                    continue
                try:
                    stream = await trio.open_tcp_stream(address.host, address.port)
                except OSError as exc:
                    remember(self._errors, address, f"cannot connect: {exc}")
                else:
                    link = await self._run_link(stream, address, outbound=True)
                    dial.node_id = link.node_id or dial.node_id
                    if isinstance(link.error, SelfConnectionError):
                        return
                    if link.since is not None:
                        backoff = config.reconnect_min_s
                await trio.sleep(backoff)
                backoff = min(config.reconnect_max_s, backoff * 2)

    async def _run_link(
        self, stream: trio.SocketStream, address: PeerAddress, *, outbound: bool
    ) -> Link:
        if self._local is None:  # pragma: no cover - links run inside `run`
            raise RuntimeError("Peering.run has not started")
        protocol = PeerProtocol(
            self._local, self._config.limits, trio.current_time(), totals=self.counters.traffic
        )
        link = Link(stream, protocol, address=address, outbound=outbound, settings=self._settings)
        self.counters.connections += 1
        try:
            await link.run(self, self._relay.confirmed)
        finally:
            self._closed(link)  # before the peer sees the connection close
            await trio.aclose_forcefully(stream)
        return link

    def _closed(self, link: Link) -> None:
        node_id = link.node_id
        if node_id is not None and self._links.get(node_id) is link:
            del self._links[node_id]
            self._relay.left(node_id)
        error = link.error
        if error is None:
            return
        self._count_drop(error)
        remember(self._errors, link.address, str(error))
        if node_id is not None:
            remember(self._errors, node_id, str(error))
        if isinstance(error, BANNED_FOR):
            # By node id and by the observed host (or dialed address), never by what the peer
            # claims: its listening port could name an honest neighbour on the same host.
            self._ban(node_id, ban_key(link), link.source)

    def _count_drop(self, error: Exception) -> None:
        dropped = self.counters.dropped
        dropped[type(error).__name__] = dropped.get(type(error).__name__, 0) + 1

    def _ban(self, node_id: NodeId | None, key: str | PeerAddress, address: PeerAddress) -> None:
        self._admission.ban(node_id, key, address, trio.current_time())
        self.counters.bans += 1

    def _punish(self, peer: NodeId, error: MisbehavingPeerError) -> None:
        """The node refused a message from `peer` for cause: close and ban."""
        link = self._links.get(peer)
        if link is not None:
            link.close(error)  # banned as it closes
        else:
            remember(self._errors, peer, str(error))
            unknown = PeerAddress("unknown", 0)
            key, address = self._sources.get(peer, (unknown, unknown))
            self._ban(peer, key, address)

    # -- what each link asks of the peering --------------------------------------------------------

    async def on_handshake(self, link: Link) -> None:
        remote = link.protocol.remote
        if remote is None:  # pragma: no cover - the link calls this after the handshake
            raise UnexpectedFrameError("no handshake")
        node_id = remote.node_id
        if not link.outbound and remote.listen_port:
            link.address = PeerAddress(link.address.host, remote.listen_port)
        ban = self._admission.ban_of(node_id, ban_key(link), trio.current_time())
        if ban is not None:
            raise PeerBannedError(str(link.source), ban.until)
        existing = self._links.get(node_id)
        if existing is not None:
            if not _preferred(link.outbound, self._node_id, node_id):
                raise DuplicateConnectionError(f"already connected to {node_id.hex()[:16]}")
            del self._links[node_id]
            existing.close(DuplicateConnectionError("replaced by the preferred connection"))
        else:
            evicted = self._admission.slot(self._links, link)
            if evicted is not None and evicted.node_id is not None:
                del self._links[evicted.node_id]
                self._relay.left(evicted.node_id)
                evicted.close(TooManyPeersError("its slot went to a peer this node dials"))
        self._links[node_id] = link
        link.since = trio.current_time()
        remember(self._addresses, node_id, link.address)
        remember(self._sources, node_id, (ban_key(link), link.source))
        dial = self._dials.get(link.address) if link.outbound else None
        if dial is not None:
            dial.node_id = node_id
        self.counters.handshakes += 1
        link.remote_confirmed = remote.confirmed_index
        await self._relay.joined(node_id, link, remote.confirmed_index)

    async def on_frame(self, link: Link, frame: Frame) -> None:
        node_id = link.node_id
        if node_id is None:  # pragma: no cover - frames come after the handshake
            raise UnexpectedFrameError("frame before the handshake")
        await self._relay.on_frame(node_id, link, frame)

    async def serve(self, link: Link, frame: Request | MilestoneRequest) -> None:
        await self._relay.serve(link, frame)

    def heartbeat(self) -> Heartbeat:
        return self._relay.heartbeat()
