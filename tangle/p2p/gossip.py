"""The gossip protocol between nodes, sans I/O: one peer's state machine, rate limits and the
ids each peer is known to have.

Bytes and the current time (a float, seconds) go in; frames, the bytes to send and named errors
come out, as h11 does for HTTP. `peering.py` runs it over TCP with trio; the frames themselves
are in `_gossip_frames.py` (re-exported here) and docs/PROTOCOL.md section 9.

A `PeerProtocol` starts in AWAIT_HANDSHAKE: the peer's first frame must be a HANDSHAKE of this
gossip version, network and committee (`key_set_digest`) from another node, and any other frame
is refused; then ACTIVE, where a second handshake is refused. Each received frame is charged to
two token buckets (frames and bytes): the reader waits while they are in debt, and a peer that
overdraws one by a whole burst is refused. Deadlines: the handshake within
`handshake_timeout_s`, every frame within `frame_deadline_s` of its first byte (slowloris), and
some bytes every `idle_timeout_s`. The first `GossipError` closes the protocol for good.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tangle.errors import (
    FrameTimeoutError,
    HandshakeTimeoutError,
    IdleTimeoutError,
    InvalidFieldError,
    KeySetMismatchError,
    NetworkMismatchError,
    RateLimitedError,
    SelfConnectionError,
    UnexpectedFrameError,
)
from tangle.node.token_bucket import TokenBucket
from tangle.protocol.codec import require_uint

from ._gossip_frames import BODY_LIMITS as BODY_LIMITS
from ._gossip_frames import GOSSIP_VERSION as GOSSIP_VERSION
from ._gossip_frames import HANDSHAKE_SIZE as HANDSHAKE_SIZE
from ._gossip_frames import HEADER_SIZE as HEADER_SIZE
from ._gossip_frames import MAX_IDS as MAX_IDS
from ._gossip_frames import MAX_MILESTONE_WINDOW as MAX_MILESTONE_WINDOW
from ._gossip_frames import Announce as Announce
from ._gossip_frames import Frame as Frame
from ._gossip_frames import FrameReader as FrameReader
from ._gossip_frames import FrameType as FrameType
from ._gossip_frames import Handshake as Handshake
from ._gossip_frames import Heartbeat as Heartbeat
from ._gossip_frames import MessageFrame as MessageFrame
from ._gossip_frames import MilestoneRequest as MilestoneRequest
from ._gossip_frames import NodeId as NodeId
from ._gossip_frames import Request as Request
from ._gossip_frames import decode_body as decode_body
from ._gossip_frames import decode_frame as decode_frame
from ._gossip_frames import encode_frame as encode_frame
from ._gossip_frames import frame_type as frame_type
from ._gossip_frames import key_set_digest as key_set_digest

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tangle.protocol.ids import MessageId


# -- known ids ---------------------------------------------------------------------------------


class KnownIds:
    """A bounded set of message ids; the one least recently added (or re-added) goes first."""

    __slots__ = ("_capacity", "_ids")

    def __init__(self, capacity: int) -> None:
        require_uint("KnownIds.capacity", capacity, 1 << 32, minimum=1)
        self._capacity = capacity
        self._ids: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, message_id: bytes) -> bool:
        """Remember `message_id`; True if it was new."""
        ids = self._ids
        if message_id in ids:
            ids.move_to_end(message_id)
            return False
        ids[message_id] = None
        if len(ids) > self._capacity:
            ids.popitem(last=False)
        return True

    def add_new(self, message_ids: Iterable[MessageId]) -> list[MessageId]:
        """Remember every id; return those that were not known, in order."""
        return [i for i in message_ids if self.add(i)]

    def discard(self, message_id: bytes) -> None:
        self._ids.pop(message_id, None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """What one peer may do before it is slowed down or dropped."""

    frames_per_s: float = 2_000.0
    """Frames a peer may send per second, sustained."""
    frame_burst: float = 4_000.0
    """Frames above the sustained rate it may send at once."""
    bytes_per_s: float = 8 * 1024 * 1024
    """Bytes a peer may send per second, sustained."""
    byte_burst: float = 16 * 1024 * 1024
    """Bytes above the sustained rate it may send at once."""
    handshake_timeout_s: float = 5.0
    """Time from connection to the peer's handshake."""
    frame_deadline_s: float = 10.0
    """Time from a frame's first byte to its last (slowloris)."""
    idle_timeout_s: float = 20.0
    """Longest silence; heartbeats come every `heartbeat_interval_s` of the peering config."""
    known_ids: int = 16_384
    """Ids remembered per peer as known to it."""

    def __post_init__(self) -> None:
        for name in (
            "frames_per_s",
            "frame_burst",
            "bytes_per_s",
            "byte_burst",
            "handshake_timeout_s",
            "frame_deadline_s",
            "idle_timeout_s",
        ):
            if not getattr(self, name) > 0:
                raise InvalidFieldError(f"Limits.{name}", "must be positive")
        require_uint("Limits.known_ids", self.known_ids, 1 << 32, minimum=1)


class RateLimiter:
    """Token buckets on frames and bytes. Reading pauses until the buckets are out of debt;
    a peer whose debt exceeds a whole burst (it sent far more than allowed at once) is
    refused with `RateLimitedError`."""

    __slots__ = ("_bytes", "_frames")

    def __init__(self, limits: Limits, now: float) -> None:
        self._frames = TokenBucket(limits.frames_per_s, limits.frame_burst, now)
        self._bytes = TokenBucket(limits.bytes_per_s, limits.byte_burst, now)

    def charge(self, size: int, now: float) -> None:
        for bucket, cost, what in ((self._frames, 1, "frames"), (self._bytes, size, "bytes")):
            if bucket.charge(cost, now) < -bucket.burst:
                raise RateLimitedError(what, bucket.rate, bucket.burst)

    def ready_at(self) -> float:
        """When reading may go on."""
        return max(self._frames.ready_at(), self._bytes.ready_at())


# -- one peer ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Traffic:
    """Frames and bytes (header included) by frame type, both ways; mutable counters."""

    frames_in: dict[FrameType, int] = field(default_factory=lambda: dict.fromkeys(FrameType, 0))
    bytes_in: dict[FrameType, int] = field(default_factory=lambda: dict.fromkeys(FrameType, 0))
    frames_out: dict[FrameType, int] = field(default_factory=lambda: dict.fromkeys(FrameType, 0))
    bytes_out: dict[FrameType, int] = field(default_factory=lambda: dict.fromkeys(FrameType, 0))

    def received(self, kind: FrameType, size: int) -> None:
        self.frames_in[kind] += 1
        self.bytes_in[kind] += size

    def sent(self, kind: FrameType, size: int) -> None:
        self.frames_out[kind] += 1
        self.bytes_out[kind] += size

    @property
    def total_in(self) -> int:
        return sum(self.bytes_in.values())

    @property
    def total_out(self) -> int:
        return sum(self.bytes_out.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalNode:
    """What a node says about itself in its handshake, and checks in the peer's."""

    network_id: int
    """Its network."""
    key_set_digest: bytes
    """`key_set_digest` of the first key set of its committee schedule."""
    node_id: NodeId
    """Its random node id."""
    listen_port: int
    """Where it accepts connections (0: nowhere)."""


class PeerState(enum.Enum):
    AWAIT_HANDSHAKE = "await handshake"
    ACTIVE = "active"
    CLOSED = "closed"


class PeerProtocol:
    """One connection's protocol state: the handshake rule, frame cutting, rate limits,
    deadlines, traffic counters and the ids known to the peer."""

    __slots__ = (
        "_deadline_base",
        "_heard_at",
        "_limiter",
        "_limits",
        "_local",
        "_reader",
        "_remote",
        "_state",
        "_totals",
        "known",
        "traffic",
    )

    def __init__(
        self, local: LocalNode, limits: Limits, now: float, *, totals: Traffic | None = None
    ) -> None:
        self._local = local
        self._limits = limits
        self._state = PeerState.AWAIT_HANDSHAKE
        self._remote: Handshake | None = None
        self._reader = FrameReader()
        self._limiter = RateLimiter(limits, now)
        self._heard_at = now
        self._deadline_base = now
        self._totals = totals
        self.traffic = Traffic()
        """This connection's counters."""
        self.known = KnownIds(limits.known_ids)
        """Ids the peer has (it sent or announced them, or we sent them to it)."""

    @property
    def state(self) -> PeerState:
        return self._state

    @property
    def remote(self) -> Handshake | None:
        """The peer's handshake, once it arrived."""
        return self._remote

    def close(self) -> None:
        self._state = PeerState.CLOSED

    # -- sending -------------------------------------------------------------------------------

    def hello(self, confirmed_index: int) -> bytes:
        """Our handshake frame: the first bytes to send."""
        local = self._local
        return self.send(
            Handshake(
                network_id=local.network_id,
                key_set_digest=local.key_set_digest,
                node_id=local.node_id,
                listen_port=local.listen_port,
                confirmed_index=confirmed_index,
            )
        )

    def send(self, frame: Frame) -> bytes:
        """Encode `frame`, count it, and remember what it tells the peer we have."""
        if self._state is PeerState.CLOSED:
            raise UnexpectedFrameError("the connection is closed")
        data = encode_frame(frame)
        kind = frame_type(frame)
        self.traffic.sent(kind, len(data))
        if self._totals is not None:
            self._totals.sent(kind, len(data))
        if isinstance(frame, MessageFrame):
            self.known.add(frame.message_id)
        elif isinstance(frame, Announce):
            self.known.add_new(frame.ids)
        return data

    def unknown_to_peer(self, message_ids: Iterable[MessageId]) -> list[MessageId]:
        """The ids the peer is not known to have, in order."""
        known = self.known
        return [i for i in message_ids if i not in known]

    # -- receiving -----------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Frame]:
        """Feed received bytes; return the frames they complete. Raises a `GossipError` for
        any violation, after which the protocol is closed."""
        if self._state is PeerState.CLOSED:
            raise UnexpectedFrameError("the connection is closed")
        try:
            return self._receive(data, now)
        except BaseException:
            self._state = PeerState.CLOSED
            raise

    def _receive(self, data: bytes, now: float) -> list[Frame]:
        if data:
            self._heard_at = max(self._heard_at, now)
        frames: list[Frame] = []
        for frame, size in self._reader.feed(data, now):
            kind = frame_type(frame)
            self._limiter.charge(size, now)
            if self._state is PeerState.AWAIT_HANDSHAKE:
                if not isinstance(frame, Handshake):
                    raise UnexpectedFrameError(f"{kind.name} before the handshake")
                self._check_handshake(frame)
                self._remote = frame
                self._state = PeerState.ACTIVE
            elif isinstance(frame, Handshake):
                raise UnexpectedFrameError("a second handshake")
            elif isinstance(frame, MessageFrame):
                self.known.add(frame.message_id)
            elif isinstance(frame, Announce):
                self.known.add_new(frame.ids)
            self.traffic.received(kind, size)
            if self._totals is not None:
                self._totals.received(kind, size)
            frames.append(frame)
        return frames

    def _check_handshake(self, frame: Handshake) -> None:
        local = self._local
        if frame.network_id != local.network_id:
            raise NetworkMismatchError(local.network_id, frame.network_id)
        if frame.key_set_digest != local.key_set_digest:
            raise KeySetMismatchError(local.key_set_digest, frame.key_set_digest)
        if frame.node_id == local.node_id:
            raise SelfConnectionError("connected to this node itself")

    # -- time ----------------------------------------------------------------------------------

    def ready_at(self) -> float:
        """When reading may go on (later than now while the peer is over its rate)."""
        return self._limiter.ready_at()

    def pause(self, seconds: float) -> None:
        """The reader did not read for `seconds` (busy downstream): move the deadlines."""
        self._reader.shift(seconds)
        self._heard_at += seconds
        self._deadline_base += seconds

    def deadline(self) -> float:
        """The next time `check_time` may raise."""
        limits = self._limits
        if self._state is PeerState.AWAIT_HANDSHAKE:
            return self._deadline_base + limits.handshake_timeout_s
        deadline = self._heard_at + limits.idle_timeout_s
        partial = self._reader.partial_since
        if partial is not None:
            deadline = min(deadline, partial + limits.frame_deadline_s)
        return deadline

    def check_time(self, now: float) -> None:
        """Raise the `PeerTimeoutError` that is due at `now`, if any."""
        limits = self._limits
        error: Exception | None = None
        if self._state is PeerState.AWAIT_HANDSHAKE:
            if now >= self._deadline_base + limits.handshake_timeout_s:
                error = HandshakeTimeoutError("no handshake", limits.handshake_timeout_s)
        else:
            partial = self._reader.partial_since
            if partial is not None and now >= partial + limits.frame_deadline_s:
                error = FrameTimeoutError("frame not finished", limits.frame_deadline_s)
            elif now >= self._heard_at + limits.idle_timeout_s:
                error = IdleTimeoutError("nothing received", limits.idle_timeout_s)
        if error is not None:
            self._state = PeerState.CLOSED
            raise error
