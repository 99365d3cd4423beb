"""The off-chain channel protocol's messages, their byte layouts, and signed proofs as bytes.

A standalone signed balance proof (HTTP headers and bodies, files):

```
u64 network_id || 32 channel_id || u64 sequence || u64 payee_balance || 64 payer_signature
|| u8 has_payee_signature (0 or 1) || 64 payee_signature if 1                  (121 or 185 bytes)
```

The messages of a session (`Event`), each the body of one frame on a stream (TCP; the frame codec
is `frames.py`), all integers little-endian:

```
frame        u32 body_length || u8 type || body       (body_length bounded per type)
0 HELLO        u8 version || u64 network_id || 32 channel_id || u8 has_proof
               || if 1: u64 sequence || u64 payee_balance || 64 payer_signature
                        || u8 has_payee_signature || 64 payee_signature if 1
1 PAY          u64 sequence || u64 payee_balance || 64 payer_signature || u8 tag_length (<= 64)
               || tag
2 ACK          u64 sequence                    every payment up to it is durable at the payee
3 REJECT       u64 sequence || u16 code || u8 reason_length || reason (UTF-8)
4 PROPOSE      u64 sequence || u64 payee_balance || 64 proposer_signature       (two-way)
5 COUNTERSIGN  u64 sequence || 64 countersigner_signature                       (two-way)
```

The payer opens with HELLO carrying its latest proof (or none); the payee answers with HELLO
carrying its own latest proof, so a payer that lost its database learns the newest state it
signed (as µRaiden's receiver returns the last balance proof), and a payee that lost payments in
flight gets the payer's newest proof again. On a two-way channel the dialer opens the same way
with its latest co-signed state; then either party sends PROPOSE (a payment to the other, at the
next sequence number of its parity: the payer's odd, the payee's even), and the other answers
COUNTERSIGN once the state is durable, or REJECT (`twoway_tcp.py`).

Every decoder is strict (`ChannelFrameError` for anything but the one canonical encoding) and
`decode(encode(x)) == x`, `encode(decode(b)) == b`.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.protocol.channel import BalanceProof, SignedBalanceProof
from tangle.protocol.codec import U16_MAX, U64_MAX
from tangle.protocol.ids import ChannelId, Signature

from ..errors import ChannelFrameError, InvalidAmountError
from .core import check_uint

if TYPE_CHECKING:
    from .core import ChannelCore

PROTOCOL_VERSION: Final = 1
MAX_TAG: Final = 64
"""Longest request tag a PAY may carry (bytes)."""
MAX_REASON: Final = 200
"""Longest REJECT reason (UTF-8 bytes)."""

SIGNATURE_SIZE: Final = 64
PROOF_LAYOUT: Final = struct.Struct("<Q32sQQ64sB")
"""A standalone signed proof up to its flag (the payee's signature, if any, follows)."""
PAY_LAYOUT: Final = struct.Struct("<QQ64sB")
"""A PAY body up to its tag."""
ACK_LAYOUT: Final = struct.Struct("<Q")
PROPOSE_LAYOUT: Final = struct.Struct("<QQ64s")
COUNTERSIGN_LAYOUT: Final = struct.Struct("<Q64s")
HELLO_LAYOUT: Final = struct.Struct("<BQ32sB")
"""A HELLO body up to its has_proof flag (`STATE_LAYOUT` follows if it is 1)."""
STATE_LAYOUT: Final = struct.Struct("<QQ64sB")
"""The proof a HELLO carries, up to its flag (the payee's signature, if any, follows)."""
REJECT_LAYOUT: Final = struct.Struct("<QHB")
"""A REJECT body up to its reason."""


class FrameType(enum.IntEnum):
    """The type byte of a frame: which message its body holds."""

    HELLO = 0
    PAY = 1
    ACK = 2
    REJECT = 3
    PROPOSE = 4
    COUNTERSIGN = 5


BODY_LIMITS: Final = {
    FrameType.HELLO: HELLO_LAYOUT.size + STATE_LAYOUT.size + SIGNATURE_SIZE,
    FrameType.PAY: PAY_LAYOUT.size + MAX_TAG,
    FrameType.ACK: ACK_LAYOUT.size,
    FrameType.REJECT: REJECT_LAYOUT.size + MAX_REASON,
    FrameType.PROPOSE: PROPOSE_LAYOUT.size,
    FrameType.COUNTERSIGN: COUNTERSIGN_LAYOUT.size,
}
"""The largest body of each frame type; a longer length is refused from the header alone."""
MAX_BODY: Final = max(BODY_LIMITS.values())


class RejectCode(enum.IntEnum):
    """Why a REJECT was sent (an unknown code from a newer peer is kept as a plain int)."""

    PROTOCOL = 1
    UNKNOWN_CHANNEL = 2
    WRONG_CHANNEL = 3
    INVALID_PROOF = 4
    STALE_PROOF = 5
    BALANCE_DECREASED = 6
    INSUFFICIENT_DEPOSIT = 7
    CHANNEL_CLOSED = 8
    INVALID_AMOUNT = 9
    INTERNAL = 10
    CHANNEL_EXPIRING = 11


def _u64(field: str, value: int) -> None:
    check_uint(field, value, U64_MAX)


def _signature(field: str, value: Signature) -> None:
    if not isinstance(value, Signature):
        raise InvalidAmountError(field, value, "must be a Signature")


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    """Opens a session on one channel, both ways; carries the sender's latest proof."""

    network_id: int
    """The channel's network."""
    channel_id: ChannelId
    """The channel this connection is about."""
    latest: SignedBalanceProof | None = None
    """The sender's newest proof of this channel (None: it has none)."""
    version: int = PROTOCOL_VERSION
    """The channel protocol version the sender speaks."""

    def __post_init__(self) -> None:
        _u64("Hello.network_id", self.network_id)
        if not isinstance(self.channel_id, ChannelId):
            raise InvalidAmountError("Hello.channel_id", self.channel_id, "must be a ChannelId")
        if not 0 <= self.version <= 0xFF:
            raise InvalidAmountError("Hello.version", self.version, "not a u8")
        latest = self.latest
        if latest is not None and (
            latest.proof.network_id != self.network_id or latest.proof.channel_id != self.channel_id
        ):
            raise InvalidAmountError("Hello.latest", latest.proof, "for another channel")

    @classmethod
    def of(cls, channel: ChannelCore) -> Hello:
        """The HELLO of `channel`, carrying its latest state."""
        terms = channel.terms
        return cls(network_id=terms.network_id, channel_id=terms.channel_id, latest=channel.latest)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pay:
    """One payment of a one-way channel: the payer's next signed proof (payer to payee)."""

    sequence: int
    """The proof's sequence number."""
    payee_balance: int
    """The cumulative amount paid."""
    payer_signature: Signature
    """The payer's signature of the proof."""
    tag: bytes = b""
    """An opaque request tag (<= 64 bytes) the payee may tie the payment to."""

    def __post_init__(self) -> None:
        _u64("Pay.sequence", self.sequence)
        _u64("Pay.payee_balance", self.payee_balance)
        _signature("Pay.payer_signature", self.payer_signature)
        if not isinstance(self.tag, bytes) or len(self.tag) > MAX_TAG:
            raise InvalidAmountError("Pay.tag", self.tag, f"must be bytes of at most {MAX_TAG}")

    @classmethod
    def of(cls, signed: SignedBalanceProof, tag: bytes = b"") -> Pay:
        return cls(
            sequence=signed.proof.sequence,
            payee_balance=signed.proof.payee_balance,
            payer_signature=signed.payer_signature,
            tag=tag,
        )

    def to_proof(self, network_id: int, channel_id: ChannelId) -> SignedBalanceProof:
        """The signed proof this payment carries, on the session's channel."""
        proof = BalanceProof(
            network_id=network_id,
            channel_id=channel_id,
            sequence=self.sequence,
            payee_balance=self.payee_balance,
        )
        return SignedBalanceProof(proof=proof, payer_signature=self.payer_signature)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """Every payment up to `sequence` is durable at the payee (payee to payer)."""

    sequence: int
    """The highest durable sequence number."""

    def __post_init__(self) -> None:
        _u64("Ack.sequence", self.sequence)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    """A refusal: of the payment or proposal `sequence`, or of the session (sequence 0)."""

    sequence: int
    """The refused sequence number (0: the session itself)."""
    code: int
    """A `RejectCode` (a u16)."""
    reason: str = ""
    """Human-readable detail, at most 200 UTF-8 bytes."""

    def __post_init__(self) -> None:
        _u64("Reject.sequence", self.sequence)
        if isinstance(self.code, bool) or not isinstance(self.code, int):
            raise InvalidAmountError("Reject.code", self.code, "not an integer")
        if not 0 <= self.code <= U16_MAX:
            raise InvalidAmountError("Reject.code", self.code, "not a u16")
        try:
            size = len(self.reason.encode()) if isinstance(self.reason, str) else MAX_REASON + 1
        except UnicodeEncodeError:
            raise InvalidAmountError("Reject.reason", self.reason, "not UTF-8 text") from None
        if size > MAX_REASON:
            raise InvalidAmountError("Reject.reason", self.reason, f"at most {MAX_REASON} bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class Propose:
    """A two-way state signed by its proposer (either party)."""

    sequence: int
    """The proposed sequence number."""
    payee_balance: int
    """The proposed payee (party B) share."""
    signature: Signature
    """The proposer's signature of the state."""

    def __post_init__(self) -> None:
        _u64("Propose.sequence", self.sequence)
        _u64("Propose.payee_balance", self.payee_balance)
        _signature("Propose.signature", self.signature)


@dataclass(frozen=True, slots=True, kw_only=True)
class Countersign:
    """The other party's signature of the proposed state `sequence`."""

    sequence: int
    """The countersigned sequence number."""
    signature: Signature
    """The countersigner's signature."""

    def __post_init__(self) -> None:
        _u64("Countersign.sequence", self.sequence)
        _signature("Countersign.signature", self.signature)


Event = Hello | Pay | Ack | Reject | Propose | Countersign


def encode_signed_proof(signed: SignedBalanceProof) -> bytes:
    """The standalone encoding of `signed` (121 or 185 bytes)."""
    p = signed.proof
    extra = signed.payee_signature
    head = PROOF_LAYOUT.pack(
        p.network_id,
        p.channel_id,
        p.sequence,
        p.payee_balance,
        signed.payer_signature,
        0 if extra is None else 1,
    )
    return head if extra is None else head + extra


def decode_signed_proof(data: bytes) -> SignedBalanceProof:
    """Decode a standalone signed proof; `ChannelFrameError` unless `data` is exactly one canonical
    encoding."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ChannelFrameError("signed proof", f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < PROOF_LAYOUT.size:
        raise ChannelFrameError(
            "signed proof", f"{len(data)} bytes, at least {PROOF_LAYOUT.size} needed"
        )
    network_id, channel_id, sequence, balance, payer_sig, flag = PROOF_LAYOUT.unpack_from(data)
    expected = PROOF_LAYOUT.size + (SIGNATURE_SIZE if flag == 1 else 0)
    if flag > 1:
        raise ChannelFrameError("signed proof", f"has_payee_signature is {flag}, not 0 or 1")
    if len(data) != expected:
        raise ChannelFrameError("signed proof", f"{len(data)} bytes, expected {expected}")
    proof = BalanceProof(
        network_id=network_id,
        channel_id=ChannelId(channel_id),
        sequence=sequence,
        payee_balance=balance,
    )
    payee_sig = Signature(data[PROOF_LAYOUT.size :]) if flag == 1 else None
    return SignedBalanceProof(
        proof=proof, payer_signature=Signature(payer_sig), payee_signature=payee_sig
    )
