"""Gossip frames: the wire format between nodes, strict both ways (see `gossip.py`).

```
frame      u8 type || u32 body_length || body          (length bounded per type)
0 HANDSHAKE          u8 version || u64 network_id || 32 key_set_digest || 32 node_id
                     || u16 listen_port || u32 confirmed_index
1 MESSAGE            one raw message (1..32768 bytes)
2 ANNOUNCE           u16 count (1..1024) || count x 32-byte message ids, unique
3 REQUEST            u16 count (1..1024) || count x 32-byte message ids, unique
4 MILESTONE_REQUEST  u32 start (>= 1) || u16 count (1..256)
5 HEARTBEAT          u32 confirmed_index || u32 pruned_index || u16 peer_count
```

Decoding raises `FrameError` (its `__cause__` the `DecodeError` or `InvalidFieldError`) for
anything but a canonical encoding, and `ProtocolVersionMismatchError` for a handshake of another
version; `FrameReader` refuses an unknown type from its first byte and an oversized length from
its header, before the body arrives.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.errors import (
    DecodeError,
    FrameError,
    InvalidFieldError,
    NonCanonicalError,
    OversizedError,
    ProtocolVersionMismatchError,
    UnknownTypeError,
)
from tangle.protocol.codec import (
    U16_MAX,
    U32_MAX,
    U64_MAX,
    Reader,
    require_bytes,
    require_uint,
    u8,
    u16,
    u32,
    u64,
)
from tangle.protocol.ids import FixedBytes, MessageId, blake2b_256
from tangle.protocol.message import MAX_MESSAGE_SIZE

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tangle.protocol.milestone import KeySet

GOSSIP_VERSION: Final = 1
HEADER_SIZE: Final = 5
MAX_IDS: Final = 1024
"""Most message ids in one ANNOUNCE or REQUEST."""
MAX_MILESTONE_WINDOW: Final = 256
"""Most milestones one MILESTONE_REQUEST asks for."""
_KEY_SET_DOMAIN: Final = b"tanglepay/key-set/v1"


class NodeId(FixedBytes):
    """32 random bytes a node draws at start: detects self- and duplicate connections."""


class FrameType(enum.IntEnum):
    HANDSHAKE = 0
    MESSAGE = 1
    ANNOUNCE = 2
    REQUEST = 3
    MILESTONE_REQUEST = 4
    HEARTBEAT = 5


HANDSHAKE_SIZE: Final = 1 + 8 + 32 + 32 + 2 + 4
BODY_LIMITS: Final = {
    FrameType.HANDSHAKE: 256,  # room for later versions; version 1 is exactly HANDSHAKE_SIZE
    FrameType.MESSAGE: MAX_MESSAGE_SIZE,
    FrameType.ANNOUNCE: 2 + 32 * MAX_IDS,
    FrameType.REQUEST: 2 + 32 * MAX_IDS,
    FrameType.MILESTONE_REQUEST: 4 + 2,
    FrameType.HEARTBEAT: 4 + 4 + 2,
}
"""The largest body of each frame type; a longer length prefix is refused at once."""


def key_set_digest(key_set: KeySet) -> bytes:
    """BLAKE2b-256 of "tanglepay/key-set/v1" || u8 threshold || u8 n || the n sorted keys."""
    keys = key_set.public_keys
    return blake2b_256(_KEY_SET_DOMAIN, u8(key_set.threshold), u8(len(keys)), *keys)


# -- frames ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Handshake:
    """The first frame each side sends."""

    network_id: int
    """The sender's network."""
    key_set_digest: bytes
    """`key_set_digest` of the first key set of the sender's committee schedule."""
    node_id: NodeId
    """The sender's random node id."""
    listen_port: int
    """Where the sender accepts connections (0: it does not)."""
    confirmed_index: int
    """The sender's confirmed milestone index."""
    version: int = GOSSIP_VERSION
    """Gossip protocol version."""

    def __post_init__(self) -> None:
        require_uint("Handshake.version", self.version, 0xFF)
        require_uint("Handshake.network_id", self.network_id, U64_MAX)
        if not isinstance(self.key_set_digest, bytes) or len(self.key_set_digest) != 32:
            raise InvalidFieldError("Handshake.key_set_digest", "must be 32 bytes")
        if not isinstance(self.node_id, NodeId):
            raise InvalidFieldError("Handshake.node_id", "must be a NodeId")
        require_uint("Handshake.listen_port", self.listen_port, U16_MAX)
        require_uint("Handshake.confirmed_index", self.confirmed_index, U32_MAX)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageFrame:
    """One raw message (decoded and checked by the node, not here)."""

    raw: bytes
    """The message bytes."""

    def __post_init__(self) -> None:
        require_bytes("MessageFrame.raw", self.raw, MAX_MESSAGE_SIZE)
        if not self.raw:
            raise InvalidFieldError("MessageFrame.raw", "empty")

    @property
    def message_id(self) -> MessageId:
        return MessageId(blake2b_256(self.raw))


def _require_ids(field_name: str, ids: tuple[MessageId, ...]) -> None:
    if not 1 <= len(ids) <= MAX_IDS:
        raise InvalidFieldError(field_name, f"{len(ids)} ids, 1..{MAX_IDS} allowed")
    if not all(isinstance(i, MessageId) for i in ids):
        raise InvalidFieldError(field_name, "must be MessageIds")
    if len(set(ids)) != len(ids):
        raise InvalidFieldError(field_name, "ids must be unique")


@dataclass(frozen=True, slots=True, kw_only=True)
class Announce:
    """Ids of messages the sender has (and the receiver may request)."""

    ids: tuple[MessageId, ...]
    """1..MAX_IDS unique ids, in the order the sender accepted them."""

    def __post_init__(self) -> None:
        _require_ids("Announce.ids", self.ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """Ids of messages the sender wants; the receiver sends those it has as MESSAGE frames."""

    ids: tuple[MessageId, ...]
    """1..MAX_IDS unique ids."""

    def __post_init__(self) -> None:
        _require_ids("Request.ids", self.ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class MilestoneRequest:
    """Milestones `start .. start + count - 1`, wanted as their MESSAGE frames."""

    start: int
    """First index, from 1."""
    count: int
    """1..MAX_MILESTONE_WINDOW."""

    def __post_init__(self) -> None:
        require_uint("MilestoneRequest.start", self.start, U32_MAX, minimum=1)
        require_uint("MilestoneRequest.count", self.count, MAX_MILESTONE_WINDOW, minimum=1)
        if self.start + self.count - 1 > U32_MAX:
            raise InvalidFieldError("MilestoneRequest", "window ends above 2**32 - 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    """Sent every heartbeat interval: where the sender's ledger is."""

    confirmed_index: int
    """Its confirmed milestone index."""
    pruned_index: int
    """Messages referenced at or below this index may be gone from its storage."""
    peer_count: int
    """How many peers it is connected to."""

    def __post_init__(self) -> None:
        require_uint("Heartbeat.confirmed_index", self.confirmed_index, U32_MAX)
        require_uint("Heartbeat.pruned_index", self.pruned_index, self.confirmed_index)
        require_uint("Heartbeat.peer_count", self.peer_count, U16_MAX)


Frame = Handshake | MessageFrame | Announce | Request | MilestoneRequest | Heartbeat

_TYPES: Final[dict[type[Frame], FrameType]] = {
    Handshake: FrameType.HANDSHAKE,
    MessageFrame: FrameType.MESSAGE,
    Announce: FrameType.ANNOUNCE,
    Request: FrameType.REQUEST,
    MilestoneRequest: FrameType.MILESTONE_REQUEST,
    Heartbeat: FrameType.HEARTBEAT,
}


def frame_type(frame: Frame) -> FrameType:
    return _TYPES[type(frame)]


def _encode_body(frame: Frame) -> bytes:
    if isinstance(frame, Handshake):
        return b"".join(
            (
                u8(frame.version),
                u64(frame.network_id),
                frame.key_set_digest,
                frame.node_id,
                u16(frame.listen_port),
                u32(frame.confirmed_index),
            )
        )
    if isinstance(frame, MessageFrame):
        return frame.raw
    if isinstance(frame, Announce | Request):
        return u16(len(frame.ids)) + b"".join(frame.ids)
    if isinstance(frame, MilestoneRequest):
        return u32(frame.start) + u16(frame.count)
    return u32(frame.confirmed_index) + u32(frame.pruned_index) + u16(frame.peer_count)


def encode_frame(frame: Frame) -> bytes:
    """`u8 type || u32 length || body`."""
    body = _encode_body(frame)
    return u8(frame_type(frame)) + u32(len(body)) + body


def _read_ids(r: Reader) -> tuple[MessageId, ...]:
    count = r.u16("count")
    if not 1 <= count <= MAX_IDS:
        raise NonCanonicalError(f"id count {count} is outside 1..{MAX_IDS}")
    ids = tuple(MessageId(r.take(32, "id")) for _ in range(count))
    if len(set(ids)) != count:
        raise NonCanonicalError("duplicate ids")
    return ids


def _decode_body(kind: FrameType, r: Reader) -> Frame:
    if kind is FrameType.HANDSHAKE:
        version = r.u8("version")
        if version != GOSSIP_VERSION:
            raise ProtocolVersionMismatchError(GOSSIP_VERSION, version)
        return Handshake(
            version=version,
            network_id=r.u64("network_id"),
            key_set_digest=r.take(32, "key_set_digest"),
            node_id=NodeId(r.take(32, "node_id")),
            listen_port=r.u16("listen_port"),
            confirmed_index=r.u32("confirmed_index"),
        )
    if kind is FrameType.MESSAGE:
        return MessageFrame(raw=r.take(r.remaining, "message"))
    if kind is FrameType.ANNOUNCE:
        return Announce(ids=_read_ids(r))
    if kind is FrameType.REQUEST:
        return Request(ids=_read_ids(r))
    if kind is FrameType.MILESTONE_REQUEST:
        return MilestoneRequest(start=r.u32("start"), count=r.u16("count"))
    return Heartbeat(
        confirmed_index=r.u32("confirmed_index"),
        pruned_index=r.u32("pruned_index"),
        peer_count=r.u16("peer_count"),
    )


def _frame_kind(tag: int) -> FrameType:
    try:
        return FrameType(tag)
    except ValueError:
        error = UnknownTypeError("frame", tag)
        raise FrameError(tag, str(error)) from error


def _check_length(kind: FrameType, length: int) -> None:
    limit = BODY_LIMITS[kind]
    if length > limit:
        error = OversizedError("frame body", length, limit)
        raise FrameError(kind, str(error)) from error


def decode_body(kind: FrameType, body: bytes) -> Frame:
    """Decode one frame body strictly: a `FrameError` (or `ProtocolVersionMismatchError` for a
    handshake of another version) for anything but a canonical encoding."""
    _check_length(kind, len(body))
    r = Reader(body, kind.name.lower())
    try:
        frame = _decode_body(kind, r)
        r.finish()
    except DecodeError as exc:
        raise FrameError(kind, str(exc)) from exc
    except InvalidFieldError as exc:
        raise FrameError(kind, str(exc)) from exc
    return frame


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one whole frame (header and body)."""
    r = Reader(data, "frame")
    try:
        kind = _frame_kind(r.u8("type"))
        length = r.u32("length")
        _check_length(kind, length)
        body = r.take(length, "body")
        r.finish()
    except DecodeError as exc:
        raise FrameError(None, str(exc)) from exc
    return decode_body(kind, body)


class FrameReader:
    """Cuts a byte stream into frames; remembers when an unfinished frame began."""

    __slots__ = ("_buffer", "_started")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._started: float | None = None

    @property
    def partial_since(self) -> float | None:
        """When the first byte of the unfinished frame arrived (None: nothing buffered)."""
        return self._started

    def shift(self, seconds: float) -> None:
        """Move the start of the unfinished frame `seconds` later (time the reader spent not
        reading is not the peer's fault)."""
        if self._started is not None:
            self._started += seconds

    def feed(self, data: bytes, now: float) -> Iterator[tuple[Frame, int]]:
        """Append `data`; yield the frames it completes, with their size on the wire, one at a
        time: a frame is consumed before the next is checked, so an error about a later frame
        comes after the earlier ones were handled (a handshake is known when a bad frame that
        followed it in the same segment gets the peer banned)."""
        self._buffer += data
        if self._buffer and self._started is None:
            self._started = now
        return self._frames(now)

    def _frames(self, now: float) -> Iterator[tuple[Frame, int]]:
        buffer = self._buffer
        while buffer:
            kind = _frame_kind(buffer[0])  # garbage is refused from its first byte
            if len(buffer) < HEADER_SIZE:
                return
            length = int.from_bytes(buffer[1:HEADER_SIZE], "little")
            _check_length(kind, length)  # and an oversized frame before its body arrives
            end = HEADER_SIZE + length
            if end > len(buffer):
                return
            body = bytes(buffer[HEADER_SIZE:end])
            del buffer[:end]
            self._started = now if buffer else None
            yield decode_body(kind, body), end
