"""Messages: the vertices of the tangle.

```
u8     version        PROTOCOL_VERSION
u64    network_id
u8     parent_count   1..8
32 x n parents        strictly increasing (sorted, unique)
u32    payload_length then the payload (type byte + body), exactly payload_length bytes
u64    nonce
```
The whole encoding is at most MAX_MESSAGE_SIZE bytes. The message id is BLAKE2b-256 of it.

Proof-of-work covers the *work root*, BLAKE2b-256 of version, network id, payload length and
payload: everything except the parents and the nonce. A device can therefore do the work once and
attach the result to whatever tips are fresh when it sends. The target scales with
`size_bound`, the size the message would have with 8 parents, so the choice of parents never
changes the work required.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final

from tangle.errors import (
    InvalidFieldError,
    MalformedError,
    NonCanonicalError,
    OversizedError,
    UnknownVersionError,
    WrongNetworkError,
)

from . import pow as work
from .codec import U64_MAX, Reader, require_uint, u8, u32, u64
from .device import DeviceRecord
from .ids import MessageId, WorkRoot, blake2b_256
from .milestone import Milestone
from .payload import Payload, TaggedData, decode_payload, encode_payload

PROTOCOL_VERSION: Final = 1
MAX_MESSAGE_SIZE: Final = 32 * 1024
MIN_PARENTS: Final = 1
MAX_PARENTS: Final = 8
_FIXED_SIZE: Final = 1 + 8 + 1 + 4 + 8  # version, network id, parent count, length, nonce


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A vertex of the tangle: parents it approves, a payload, and proof-of-work."""

    network_id: int
    """The network the message belongs to."""
    parents: tuple[MessageId, ...]
    """1..8 earlier messages this one approves, sorted and unique."""
    payload: Payload
    """What the message carries."""
    nonce: int
    """Proof-of-work nonce over the work root (u64)."""

    def __post_init__(self) -> None:
        require_uint("Message.network_id", self.network_id, U64_MAX)
        require_uint("Message.nonce", self.nonce, U64_MAX)
        if not MIN_PARENTS <= len(self.parents) <= MAX_PARENTS:
            raise InvalidFieldError("Message.parents", f"count {len(self.parents)}")
        if not all(isinstance(p, MessageId) for p in self.parents):
            raise InvalidFieldError("Message.parents", "must be MessageIds")
        if any(a >= b for a, b in zip(self.parents, self.parents[1:], strict=False)):
            raise InvalidFieldError("Message.parents", "must be sorted and unique")
        if isinstance(self.payload, Milestone) and self.payload.essence.parents != self.parents:
            raise InvalidFieldError("Message.parents", "differ from the milestone's parents")


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsent:
    """A payload prepared for sending: its work root and target, before parents are chosen."""

    network_id: int
    """The network."""
    payload: Payload
    """The payload."""
    payload_bytes: bytes
    """Its encoding."""
    root: WorkRoot
    """The work root a nonce must be found for."""
    target: int
    """The largest valid work value."""

    def attach(self, parents: tuple[MessageId, ...], nonce: int) -> Message:
        """The message with these parents; the nonce stays valid for any parents."""
        return Message(
            network_id=self.network_id, parents=parents, payload=self.payload, nonce=nonce
        )


def prepare(network_id: int, payload: Payload, work_per_kib: int) -> Unsent:
    """Compute what a sender needs to do the proof-of-work for `payload`."""
    body = encode_payload(payload)
    root = _work_root(network_id, body)
    size = _FIXED_SIZE + MAX_PARENTS * 32 + len(body)
    if size > MAX_MESSAGE_SIZE:
        raise InvalidFieldError(
            "payload", f"message would be {size} bytes, over {MAX_MESSAGE_SIZE}"
        )
    target = work.target(work.work_units(size), work_per_kib)
    return Unsent(
        network_id=network_id, payload=payload, payload_bytes=body, root=root, target=target
    )


def _work_root(network_id: int, payload_bytes: bytes) -> WorkRoot:
    return WorkRoot(
        blake2b_256(u8(PROTOCOL_VERSION), u64(network_id), u32(len(payload_bytes)), payload_bytes)
    )


def encode_message(message: Message) -> bytes:
    body = encode_payload(message.payload)
    data = b"".join(
        (
            u8(PROTOCOL_VERSION),
            u64(message.network_id),
            u8(len(message.parents)),
            *message.parents,
            u32(len(body)),
            body,
            u64(message.nonce),
        )
    )
    if len(data) > MAX_MESSAGE_SIZE:
        raise InvalidFieldError("Message", f"{len(data)} bytes, over {MAX_MESSAGE_SIZE}")
    return data


@dataclass(frozen=True, slots=True, kw_only=True)
class Parsed:
    """A decoded message together with the digests every receiver needs."""

    message: Message
    """The decoded message."""
    raw: bytes
    """Its canonical encoding."""
    id: MessageId
    """BLAKE2b-256 of `raw`."""
    root: WorkRoot
    """Its work root."""
    size_bound: int
    """Its size with 8 parents, which sets the work target."""


def decode_message(data: bytes | bytearray | memoryview) -> Parsed:
    """Decode a message strictly: any malformed input raises a `DecodeError`."""
    raw = bytes(data)
    if len(raw) > MAX_MESSAGE_SIZE:
        raise OversizedError("message size", len(raw), MAX_MESSAGE_SIZE)
    r = Reader(raw, "message")
    version = r.u8("version")
    if version != PROTOCOL_VERSION:
        raise UnknownVersionError(version)
    network_id = r.u64("network_id")
    count = r.u8("parent_count")
    if not MIN_PARENTS <= count <= MAX_PARENTS:
        raise NonCanonicalError(f"parent count {count} is outside {MIN_PARENTS}..{MAX_PARENTS}")
    parents = tuple(MessageId(r.take(32, "parent")) for _ in range(count))
    if any(a >= b for a, b in itertools.pairwise(parents)):
        raise NonCanonicalError("parents are not sorted and unique")
    body = r.sized(4, MAX_MESSAGE_SIZE, "payload")
    body_reader = Reader(body, "payload")
    try:
        payload = decode_payload(body_reader)
        body_reader.finish()
        nonce = r.u64("nonce")
        r.finish()
        message = Message(network_id=network_id, parents=parents, payload=payload, nonce=nonce)
    except InvalidFieldError as exc:
        raise MalformedError(str(exc)) from exc
    size_bound = len(raw) + (MAX_PARENTS - count) * 32
    return Parsed(
        message=message,
        raw=raw,
        id=MessageId(blake2b_256(raw)),
        root=_work_root(network_id, body),
        size_bound=size_bound,
    )


def message_id(message: Message) -> MessageId:
    return MessageId(blake2b_256(encode_message(message)))


def check_message(parsed: Parsed, network_id: int, work_per_kib: int) -> None:
    """Stateless checks every node makes before gossip: network, then proof-of-work."""
    message = parsed.message
    if message.network_id != network_id:
        raise WrongNetworkError(network_id, message.network_id)
    payload = message.payload
    if isinstance(payload, DeviceRecord) and payload.network_id != network_id:
        raise WrongNetworkError(network_id, payload.network_id)
    if (
        not isinstance(payload, TaggedData | DeviceRecord)
        and payload.essence.network_id != network_id
    ):
        raise WrongNetworkError(network_id, payload.essence.network_id)
    target = work.target(work.work_units(parsed.size_bound), work_per_kib)
    work.verify_work(parsed.root, parsed.message.nonce, target)
