"""The frame codec of the channel protocol: events to frames and back (layouts in `wire.py`).

A frame is `u32 body_length || u8 type || body`, little-endian. `check_header` refuses an unknown
type or a body longer than its type allows from the header alone, before the body arrives;
`decode_body` decodes a body of a known type; `decode_frame` one whole frame. Every decoder is
strict (`ChannelFrameError` for anything but the one canonical encoding) and
`decode_frame(encode_event(e)) == e`, `encode_event(decode_frame(b)) == b`.
"""

from __future__ import annotations

import struct
from typing import Final

from tangle.errors import TangleError
from tangle.protocol.channel import BalanceProof, SignedBalanceProof
from tangle.protocol.ids import ChannelId, Signature

from ..errors import ChannelFrameError, InvalidAmountError
from .wire import (
    ACK_LAYOUT,
    BODY_LIMITS,
    COUNTERSIGN_LAYOUT,
    HELLO_LAYOUT,
    PAY_LAYOUT,
    PROPOSE_LAYOUT,
    REJECT_LAYOUT,
    SIGNATURE_SIZE,
    STATE_LAYOUT,
    Ack,
    Countersign,
    Event,
    FrameType,
    Hello,
    Pay,
    Propose,
    Reject,
)

HEADER: Final = struct.Struct("<IB")
"""A frame's header: the body's length and the frame type."""
HEADER_SIZE: Final = HEADER.size


def _frame(kind: FrameType, body: bytes) -> bytes:
    return HEADER.pack(len(body), kind) + body


def encode_event(event: Event) -> bytes:
    """The frame (header and body) of `event`."""
    if isinstance(event, Pay):
        body = PAY_LAYOUT.pack(
            event.sequence, event.payee_balance, event.payer_signature, len(event.tag)
        )
        return _frame(FrameType.PAY, body + event.tag)
    if isinstance(event, Ack):
        return _frame(FrameType.ACK, ACK_LAYOUT.pack(event.sequence))
    if isinstance(event, Hello):
        latest = event.latest
        body = HELLO_LAYOUT.pack(
            event.version, event.network_id, event.channel_id, latest is not None
        )
        if latest is not None:
            extra = latest.payee_signature
            body += STATE_LAYOUT.pack(
                latest.proof.sequence,
                latest.proof.payee_balance,
                latest.payer_signature,
                extra is not None,
            ) + (extra or b"")
        return _frame(FrameType.HELLO, body)
    if isinstance(event, Reject):
        reason = event.reason.encode()
        return _frame(
            FrameType.REJECT, REJECT_LAYOUT.pack(event.sequence, event.code, len(reason)) + reason
        )
    if isinstance(event, Propose):
        body = PROPOSE_LAYOUT.pack(event.sequence, event.payee_balance, event.signature)
        return _frame(FrameType.PROPOSE, body)
    return _frame(FrameType.COUNTERSIGN, COUNTERSIGN_LAYOUT.pack(event.sequence, event.signature))


def check_header(kind_byte: int, length: int) -> FrameType:
    """The frame type of a header; `ChannelFrameError` for an unknown type or an oversized
    length."""
    if kind_byte > max(FrameType):
        raise ChannelFrameError("frame", f"unknown type {kind_byte}")
    kind = FrameType(kind_byte)
    if length > BODY_LIMITS[kind]:
        raise ChannelFrameError(kind.name, f"body of {length} bytes, at most {BODY_LIMITS[kind]}")
    return kind


def _exact(kind: FrameType, body: bytes, size: int) -> None:
    if len(body) != size:
        raise ChannelFrameError(kind.name, f"body of {len(body)} bytes, expected {size}")


def _flag(kind: FrameType, value: int, what: str) -> bool:
    if value > 1:
        raise ChannelFrameError(kind.name, f"{what} is {value}, not 0 or 1")
    return value == 1


def decode_body(kind: FrameType, body: bytes) -> Event:
    """Decode one frame body of type `kind`; `ChannelFrameError` unless canonical."""
    try:
        return _decode_body(kind, body)
    except (TangleError, InvalidAmountError, UnicodeDecodeError) as e:
        raise ChannelFrameError(kind.name, str(e)) from e


def _decode_body(kind: FrameType, body: bytes) -> Event:
    if kind is FrameType.PAY:
        if len(body) < PAY_LAYOUT.size:
            raise ChannelFrameError(
                kind.name, f"body of {len(body)} bytes, at least {PAY_LAYOUT.size}"
            )
        sequence, balance, signature, tag_length = PAY_LAYOUT.unpack_from(body)
        _exact(kind, body, PAY_LAYOUT.size + tag_length)
        return Pay(
            sequence=sequence,
            payee_balance=balance,
            payer_signature=Signature(signature),
            tag=body[PAY_LAYOUT.size :],
        )
    if kind is FrameType.ACK:
        _exact(kind, body, ACK_LAYOUT.size)
        return Ack(sequence=ACK_LAYOUT.unpack(body)[0])
    if kind is FrameType.HELLO:
        if len(body) < HELLO_LAYOUT.size:
            raise ChannelFrameError(
                kind.name, f"body of {len(body)} bytes, at least {HELLO_LAYOUT.size}"
            )
        version, network_id, channel_id, has_proof = HELLO_LAYOUT.unpack_from(body)
        if not _flag(kind, has_proof, "has_proof"):
            _exact(kind, body, HELLO_LAYOUT.size)
            return Hello(version=version, network_id=network_id, channel_id=ChannelId(channel_id))
        end = HELLO_LAYOUT.size + STATE_LAYOUT.size
        if len(body) < end:
            raise ChannelFrameError(kind.name, f"body of {len(body)} bytes ends inside the proof")
        sequence, balance, payer_sig, has_payee = STATE_LAYOUT.unpack_from(body, HELLO_LAYOUT.size)
        two = _flag(kind, has_payee, "has_payee_signature")
        _exact(kind, body, end + (SIGNATURE_SIZE if two else 0))
        proof = BalanceProof(
            network_id=network_id,
            channel_id=ChannelId(channel_id),
            sequence=sequence,
            payee_balance=balance,
        )
        signed = SignedBalanceProof(
            proof=proof,
            payer_signature=Signature(payer_sig),
            payee_signature=Signature(body[end:]) if two else None,
        )
        return Hello(
            version=version, network_id=network_id, channel_id=ChannelId(channel_id), latest=signed
        )
    if kind is FrameType.REJECT:
        if len(body) < REJECT_LAYOUT.size:
            raise ChannelFrameError(
                kind.name, f"body of {len(body)} bytes, at least {REJECT_LAYOUT.size}"
            )
        sequence, code, length = REJECT_LAYOUT.unpack_from(body)
        _exact(kind, body, REJECT_LAYOUT.size + length)
        return Reject(sequence=sequence, code=code, reason=body[REJECT_LAYOUT.size :].decode())
    if kind is FrameType.PROPOSE:
        _exact(kind, body, PROPOSE_LAYOUT.size)
        sequence, balance, signature = PROPOSE_LAYOUT.unpack(body)
        return Propose(sequence=sequence, payee_balance=balance, signature=Signature(signature))
    _exact(kind, body, COUNTERSIGN_LAYOUT.size)
    sequence, signature = COUNTERSIGN_LAYOUT.unpack(body)
    return Countersign(sequence=sequence, signature=Signature(signature))


def decode_frame(data: bytes) -> Event:
    """Decode exactly one whole frame (header and body)."""
    if len(data) < HEADER_SIZE:
        raise ChannelFrameError("frame", f"{len(data)} bytes, shorter than the header")
    length, kind_byte = HEADER.unpack_from(data)
    kind = check_header(kind_byte, length)
    if len(data) != HEADER_SIZE + length:
        raise ChannelFrameError(
            kind.name, f"{len(data)} bytes, the header says {HEADER_SIZE + length}"
        )
    return decode_body(kind, data[HEADER_SIZE:])
