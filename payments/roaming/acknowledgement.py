"""The HPMN's signed answer to a batch: accepted, or returned with severities (as RAP does).

A batch is either rejected whole (`fatal` names why: a sequence gap, audit count or total that
do not match the records) or accepted with per-record returns: a SEVERE return excludes that
record from the accepted amount, a WARNING does not. The fixed-size summary commits to the
returns by hash, so the summary and its signature fit a ledger anchor (`anchor_payload`) however
many records came back; the returns travel with it off the ledger.

```
summary (little-endian, SUMMARY_SIZE bytes)
  u8   version           ACK_VERSION
  32   batch             hash of the batch header answered
  5    sender            VPMN          5  recipient   HPMN (signs)
  u64  sequence          the batch's sequence number
  u8   fatal             FatalCode (0: the batch is accepted)
  u32  accepted_count    records accepted
  u64  accepted_amount   sum of their charges: what the HPMN pays
  u64  acked_utc         when the HPMN answered
  32   returns_hash      BLAKE2b-256 of the returns' encoding
signature 64             the recipient's signature of signing_message()
returns                  u32 n, then n x (u32 index, u8 severity, u8 code), indices rising
```
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Final

from tangle.protocol.ids import Signature, blake2b_256
from tangle.protocol.payload import TaggedData
from tangle.protocol.signature import is_valid

from .errors import ForgedHeaderError, MalformedBatchError, WrongSignerError
from .record import is_tadig

if TYPE_CHECKING:
    from tangle.protocol.ids import PublicKey

    from .agreement import Agreement

ACK_VERSION: Final = 1
ACK_DOMAIN: Final = b"tanglepay/roaming/ack/v1"
ACK_TAG: Final = b"tanglepay/roaming/ack"
_SUMMARY: Final = struct.Struct("<B32s5s5sQBIQQ32s")
_RETURN: Final = struct.Struct("<IBB")
SUMMARY_SIZE: Final = _SUMMARY.size
MAX_RETURNS: Final = 1_000_000


class Severity(IntEnum):
    """How a returned record counts."""

    WARNING = 1
    """Accepted and paid; the VPMN should look."""
    SEVERE = 2
    """Not accepted, not paid; the VPMN may correct and resend it."""


class ReturnCode(IntEnum):
    """Why a record came back."""

    DUPLICATE = 1
    """The same event (same id) was accepted within the window, or earlier in the batch."""
    TOO_OLD = 2
    """The event is older than the duplicate window: it cannot be checked, so it is not paid."""
    CHARGE_MISMATCH = 3
    """The record's charge is not what the agreement rates it."""
    IMPOSSIBLE_VALUE = 4
    """A start in the future or outside the header's span, a duration or volume beyond bounds."""
    LATE = 5
    """Presented long after the event (a warning)."""
    BARRED = 6
    """The HPMN barred the subscriber before the event started (`bars.py`)."""


class FatalCode(IntEnum):
    """Why a whole batch was rejected (NONE: it was not)."""

    NONE = 0
    SEQUENCE_GAP = 1
    """A sequence number above the next expected one: a batch is missing."""
    AUDIT_COUNT = 2
    """The header's count is not the number of records."""
    AUDIT_TOTAL = 3
    """The header's total charge is not the sum of the records' charges."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordReturn:
    """One returned record."""

    index: int
    """Its position in the batch."""
    severity: Severity
    code: ReturnCode


@dataclass(frozen=True, slots=True, kw_only=True)
class Acknowledgement:
    """The HPMN's answer to one batch (see the module docstring)."""

    batch: bytes
    sender: str
    recipient: str
    sequence: int
    fatal: FatalCode
    accepted_count: int
    accepted_amount: int
    acked_utc: int
    returns: tuple[RecordReturn, ...]

    def __post_init__(self) -> None:
        if not is_tadig(self.sender) or not is_tadig(self.recipient) or len(self.batch) != 32:
            raise MalformedBatchError("an acknowledgement names a batch hash and two TADIGs")
        if len(self.returns) > MAX_RETURNS:
            raise MalformedBatchError(f"at most {MAX_RETURNS} returns")
        indices = [r.index for r in self.returns]
        if indices != sorted(set(indices)):
            raise MalformedBatchError("returns by rising index, one per record")
        if self.fatal is not FatalCode.NONE and (self.accepted_count or self.accepted_amount):
            raise MalformedBatchError("a rejected batch accepts nothing")

    @property
    def accepted(self) -> bool:
        return self.fatal is FatalCode.NONE

    def encode_returns(self) -> bytes:
        parts = [struct.pack("<I", len(self.returns))]
        parts.extend(_RETURN.pack(r.index, r.severity, r.code) for r in self.returns)
        return b"".join(parts)

    def summary(self) -> bytes:
        try:
            return _SUMMARY.pack(
                ACK_VERSION,
                self.batch,
                self.sender.encode("ascii"),
                self.recipient.encode("ascii"),
                self.sequence,
                self.fatal,
                self.accepted_count,
                self.accepted_amount,
                self.acked_utc,
                blake2b_256(self.encode_returns()),
            )
        except struct.error as e:
            raise MalformedBatchError(f"a field out of range: {e}") from None

    @property
    def hash(self) -> bytes:
        return blake2b_256(ACK_DOMAIN, self.summary())

    def signing_message(self) -> bytes:
        return ACK_DOMAIN + b"/sign" + self.hash


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedAcknowledgement:
    """An acknowledgement with the HPMN's signature."""

    ack: Acknowledgement
    signature: Signature

    def encode(self) -> bytes:
        return self.ack.summary() + self.signature + self.ack.encode_returns()

    @classmethod
    def decode(cls, data: bytes) -> SignedAcknowledgement:
        """Exactly one signed acknowledgement (signature not checked: `verify_ack`)."""
        head = SUMMARY_SIZE + 64
        if len(data) < head + 4:
            raise MalformedBatchError("an acknowledgement is truncated")
        fields = _SUMMARY.unpack_from(data)
        version, batch, sender, recipient, seq, fatal, count, amount, acked, returns_hash = fields
        (n,) = struct.unpack_from("<I", data, head)
        if version != ACK_VERSION or n > MAX_RETURNS or len(data) != head + 4 + n * _RETURN.size:
            raise MalformedBatchError("not one canonical acknowledgement")
        if blake2b_256(data[head:]) != returns_hash:
            raise MalformedBatchError("the returns do not match the signed summary")
        try:
            returns = tuple(
                RecordReturn(index=i, severity=Severity(s), code=ReturnCode(c))
                for i, s, c in _RETURN.iter_unpack(data[head + 4 :])
            )
            fatal_code = FatalCode(fatal)
        except ValueError:
            raise MalformedBatchError("an unknown severity or code") from None
        if not sender.isascii() or not recipient.isascii():
            raise MalformedBatchError("sender and recipient are TADIG codes")
        ack = Acknowledgement(
            batch=batch,
            sender=sender.decode("ascii"),
            recipient=recipient.decode("ascii"),
            sequence=seq,
            fatal=fatal_code,
            accepted_count=count,
            accepted_amount=amount,
            acked_utc=acked,
            returns=returns,
        )
        return cls(ack=ack, signature=Signature(data[SUMMARY_SIZE:head]))


def verify_ack(
    signed: SignedAcknowledgement, agreement: Agreement, known: tuple[PublicKey, ...] = ()
) -> None:
    """Raise unless `signed` is signed by the HPMN (its recipient) of `agreement`: a valid
    signature by another known key is `WrongSignerError`, any other `ForgedHeaderError`."""
    ack = signed.ack
    if {ack.sender, ack.recipient} != {p.tadig for p in agreement.parties}:
        raise ForgedHeaderError(f"{ack.sender}->{ack.recipient} is not the agreement's pair")
    message = ack.signing_message()
    if is_valid(agreement.party(ack.recipient).key, message, signed.signature):
        return
    for key in (*(p.key for p in agreement.parties), *known):
        if is_valid(key, message, signed.signature):
            raise WrongSignerError(
                f"the ack of batch {ack.sequence} is not signed by {ack.recipient}"
            )
    raise ForgedHeaderError(f"the signature of the ack of batch {ack.sequence} does not verify")


def anchor_payload(signed: SignedAcknowledgement) -> TaggedData:
    """The ledger anchor of an acknowledgement: its summary and signature (fixed size)."""
    return TaggedData(tag=ACK_TAG, data=signed.ack.summary() + signed.signature)
