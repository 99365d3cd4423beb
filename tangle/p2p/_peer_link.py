"""One connection to a peer on trio: a reader, a writer, a request server and a heartbeat
around one `PeerProtocol`.

The reader hands every frame to the `LinkHandler` (the peering) in order and waits for it, so a
busy node stops the reader and TCP pushes back on the peer; the time it spends waiting does not
count against the peer's deadlines. REQUEST and MILESTONE_REQUEST frames go to the request server
through a short queue, so serving a peer never stops reading from it; requests beyond the queue
are dropped (the peer asks again), and answers are queued without waiting, within the peer's
serving budget (`serve_budget`), the rest dropped. The writer sends what the outbox holds,
coalescing frames; relays are queued without waiting and dropped when the outbox is full, and a
peer whose outbox stays full, or that does not take a write in time, is dropped as too slow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

import trio

from tangle.errors import GossipError, InvalidFieldError, SlowPeerError
from tangle.node.token_bucket import TokenBucket

from .gossip import MAX_IDS, Announce, Handshake, MilestoneRequest, Request

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from tangle.protocol.ids import MessageId

    from .gossip import Frame, Heartbeat, NodeId, PeerProtocol

RECEIVE_SIZE: Final = 64 * 1024
"""Bytes asked of the socket per read."""
WRITE_SIZE: Final = 256 * 1024
"""Most bytes coalesced into one write."""


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """Where a peer listens (or, before its handshake, where it connected from)."""

    host: str
    """Host name or IP address."""
    port: int
    """TCP port."""

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise InvalidFieldError("PeerAddress.host", "must be a non-empty string")
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise InvalidFieldError("PeerAddress.port", "must be an integer")
        if not 0 <= self.port <= 0xFFFF:
            raise InvalidFieldError("PeerAddress.port", f"{self.port} is not a TCP port")

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> PeerAddress:
        """`host:port` or `[v6 host]:port`."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise InvalidFieldError("PeerAddress", f"not host:port: {text!r}")
        return cls(host.removeprefix("[").removesuffix("]"), int(port))


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSettings:
    """Queue bounds and timeouts of one connection (from the `PeeringConfig`)."""

    outbox_frames: int
    """Frames queued for sending before relays are dropped."""
    serve_queue: int
    """Requests queued for serving before more are dropped."""
    heartbeat_interval_s: float
    """Time between heartbeats."""
    write_timeout_s: float
    """Longest a single write may take."""
    slow_peer_timeout_s: float
    """Longest the outbox may stay full."""
    serve_bytes_per_s: float
    """Bytes of messages served per second, sustained."""
    serve_burst_bytes: float
    """Bytes above that rate served at once."""


class LinkHandler(Protocol):
    """What the peering does for a link."""

    async def on_handshake(self, link: Link) -> None:
        """The peer's handshake arrived and matched; raise a `GossipError` to refuse it."""

    async def on_frame(self, link: Link, frame: Frame) -> None:
        """A MESSAGE, ANNOUNCE or HEARTBEAT frame."""

    async def serve(self, link: Link, frame: Request | MilestoneRequest) -> None:
        """Answer a request."""

    def heartbeat(self) -> Heartbeat:
        """The heartbeat to send now."""


class Link:
    """One connection, before and after its handshake."""

    __slots__ = (
        "_closing",
        "_full_since",
        "_out_receive",
        "_out_send",
        "_pending",
        "_ready",
        "_scope",
        "_serve_receive",
        "_serve_send",
        "_settings",
        "address",
        "dropped_frames",
        "dropped_requests",
        "error",
        "messages_in",
        "outbound",
        "protocol",
        "remote_confirmed",
        "serve_budget",
        "since",
        "source",
        "stream",
        "unique_bytes_in",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: PeerProtocol,
        *,
        address: PeerAddress,
        outbound: bool,
        settings: LinkSettings,
    ) -> None:
        self.stream = stream
        self.protocol = protocol
        self.address = address
        """The peer's listening address (its source address until its handshake)."""
        self.source = address
        """The address this connection really goes to: the one dialed, or the one it came from
        (never what the peer claims: bans are keyed by it)."""
        self.outbound = outbound
        """True if this node dialed."""
        self.since: float | None = None
        """When the peering accepted its handshake."""
        self.error: GossipError | None = None
        """Why this node closed the connection (None: closed by the peer, or removed)."""
        self.remote_confirmed = 0
        self.messages_in = 0
        self.unique_bytes_in = 0
        self.dropped_frames = 0
        self.dropped_requests = 0
        self.serve_budget = TokenBucket(
            settings.serve_bytes_per_s, settings.serve_burst_bytes, trio.current_time()
        )
        """Bytes of messages this node may still send in answer to the peer's requests."""
        self._settings = settings
        self._out_send, self._out_receive = trio.open_memory_channel[bytes](settings.outbox_frames)
        self._serve_send, self._serve_receive = trio.open_memory_channel[
            Request | MilestoneRequest
        ](settings.serve_queue)
        self._pending: dict[MessageId, None] = {}
        self._full_since: float | None = None
        self._scope: trio.CancelScope | None = None
        self._ready = trio.Event()
        self._closing = False

    @property
    def node_id(self) -> NodeId | None:
        remote = self.protocol.remote
        return None if remote is None else remote.node_id

    def close(self, error: GossipError | None = None) -> None:
        """Close the connection; the first call's `error` is the reason kept in `error`."""
        if self._closing:
            return
        self._closing = True
        self.error = error
        self.protocol.close()
        if self._scope is not None:
            self._scope.cancel()

    # -- sending -------------------------------------------------------------------------------

    def push(self, frame: Frame) -> bool:
        """Queue `frame` without waiting; False (and dropped) if the outbox is full or the
        connection is closing."""
        if self._closing:
            return False
        stats = self._out_send.statistics()
        if stats.current_buffer_used >= stats.max_buffer_size:
            self.dropped_frames += 1
            if self._full_since is None:
                self._full_since = trio.current_time()
            self._check_slow()
            return False
        self._out_send.send_nowait(self.protocol.send(frame))
        return True

    def announce(self, ids: Iterable[MessageId]) -> int:
        """Queue the ids the peer is not known to have for the next ANNOUNCE."""
        fresh = [i for i in self.protocol.unknown_to_peer(ids) if i not in self._pending]
        self._pending.update(dict.fromkeys(fresh))
        return len(fresh)

    def flush_announces(self) -> None:
        """Send the queued ids as ANNOUNCE frames."""
        if not self._pending or self.since is None:
            return
        ids = tuple(self._pending)
        self._pending.clear()
        for start in range(0, len(ids), MAX_IDS):
            self.push(Announce(ids=ids[start : start + MAX_IDS]))

    # -- running -------------------------------------------------------------------------------

    async def run(self, handler: LinkHandler, confirmed_index: int) -> None:
        """Run until the connection ends (why is in `error`); the caller closes the stream."""
        try:
            if self._closing:  # closed before it ran
                return
            self._out_send.send_nowait(self.protocol.hello(confirmed_index))
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                nursery.start_soon(self._guard, self._write)
                nursery.start_soon(self._guard, self._serve, handler)
                nursery.start_soon(self._guard, self._beat, handler)
                await self._guard(self._read, handler)
                nursery.cancel_scope.cancel()
        finally:
            self.protocol.close()

    async def _guard(self, task: Callable[..., Awaitable[None]], *args: object) -> None:
        try:
            await task(*args)
        except GossipError as exc:
            self.close(exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.close()

    async def _read(self, handler: LinkHandler) -> None:
        protocol = self.protocol
        while True:
            ready = protocol.ready_at()
            now = trio.current_time()
            if ready > now:  # over its rate: stop reading, TCP slows the peer down
                await trio.sleep_until(ready)
                protocol.pause(trio.current_time() - now)
            data: bytes | None = None
            with trio.move_on_at(protocol.deadline()):
                data = bytes(await self.stream.receive_some(RECEIVE_SIZE))
            now = trio.current_time()
            if data is None:
                protocol.check_time(now)
                continue
            if not data:
                return
            for frame in protocol.receive_data(data, now):
                if isinstance(frame, Handshake):
                    await handler.on_handshake(self)
                    self._ready.set()
                elif isinstance(frame, Request | MilestoneRequest):
                    try:
                        self._serve_send.send_nowait(frame)
                    except trio.WouldBlock:
                        self.dropped_requests += 1
                else:
                    await handler.on_frame(self, frame)
            busy = trio.current_time() - now
            if busy > 0:
                protocol.pause(busy)

    async def _write(self) -> None:
        settings = self._settings
        receive = self._out_receive
        async for first in receive:
            chunks = [first]
            size = len(first)
            while size < WRITE_SIZE:
                try:
                    data = receive.receive_nowait()
                except trio.WouldBlock:
                    break
                chunks.append(data)
                size += len(data)
            with trio.move_on_after(settings.write_timeout_s) as scope:
                await self.stream.send_all(b"".join(chunks))
            if scope.cancelled_caught:
                raise SlowPeerError(f"a write took over {settings.write_timeout_s:g} s")
            stats = self._out_send.statistics()
            if stats.current_buffer_used * 2 < stats.max_buffer_size:
                self._full_since = None

    async def _serve(self, handler: LinkHandler) -> None:
        async for frame in self._serve_receive:
            await handler.serve(self, frame)

    async def _beat(self, handler: LinkHandler) -> None:
        await self._ready.wait()
        interval = self._settings.heartbeat_interval_s
        while True:
            await trio.sleep(interval)
            self.push(handler.heartbeat())
            self._check_slow()

    def _check_slow(self) -> None:
        timeout = self._settings.slow_peer_timeout_s
        if self._full_since is not None and trio.current_time() - self._full_since > timeout:
            self.close(SlowPeerError(f"its outbox stayed full for over {timeout:g} s"))
