"""Batches at the VPMN: records sealed by count or age under a signed, anchored header.

The visited network collects one pair's records in a `Batcher` (sans-I/O: the clock is passed
in) and seals a batch when it holds `batch_max_records` or its oldest record has waited
`batch_max_age_s`. The header commits to the records with the RFC 6962 style Merkle root
(`tangle.protocol.merkle`) over their canonical encodings, and states the per-pair sequence
number, the count and the total charge; the VPMN signs it with its operator key. The signed header
(no record, no subscriber hash) is what goes on the ledger (`anchor_payload`); the records travel
to the HPMN off the ledger.

Header encoding (little-endian, `HEADER_SIZE` bytes; the signed form appends the signature):

```
  u8   version          HEADER_VERSION
  32   agreement        hash of the agreement version the records were rated under
  5    sender           TADIG of the VPMN (signs)
  5    recipient        TADIG of the HPMN
  u64  sequence         per pair, from 1, no gaps
  u32  count            number of records
  u64  total_charge     sum of the records' charges (minor units)
  u64  first_start      earliest start_utc of a record
  u64  last_start       latest start_utc of a record
  u64  sealed_utc       when the VPMN sealed the batch
  32   root             Merkle root of the record encodings, in batch order
  64   signature        (signed form) the sender's ed25519 signature of signing_message()
```
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from tangle.errors import DecodeError, InvalidFieldError, TrailingBytesError
from tangle.protocol.codec import Reader
from tangle.protocol.ids import MerkleRoot, PublicKey, Signature, blake2b_256
from tangle.protocol.merkle import merkle_root
from tangle.protocol.payload import TaggedData
from tangle.protocol.signature import is_valid

from ._record_bulk import decode_many
from .errors import (
    BatchingError,
    ForgedHeaderError,
    MalformedBatchError,
    MalformedRecordError,
    WrongSignerError,
)
from .pending import pack_records
from .record import RECORD_MAX_SIZE, UsageRecord, is_tadig

if TYPE_CHECKING:
    from tangle.protocol.signature import Signer

    from .agreement import Agreement

HEADER_VERSION: Final = 1
BATCH_DOMAIN: Final = b"tanglepay/roaming/batch/v1"
BATCH_TAG: Final = b"tanglepay/roaming/batch"
_HEADER: Final = struct.Struct("<B32s5s5sQIQQQQ32s")
HEADER_SIZE: Final = _HEADER.size
SIGNED_HEADER_SIZE: Final = HEADER_SIZE + 64
MAX_BATCH_RECORDS: Final = 1_000_000
_LENGTH: Final = struct.Struct("<H")


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchHeader:
    """What the VPMN states about one batch (see the module docstring)."""

    agreement: bytes
    sender: str
    recipient: str
    sequence: int
    count: int
    total_charge: int
    first_start: int
    last_start: int
    sealed_utc: int
    root: MerkleRoot

    def __post_init__(self) -> None:
        if not is_tadig(self.sender) or not is_tadig(self.recipient):
            raise MalformedBatchError("sender and recipient are TADIG codes")
        if not isinstance(self.root, MerkleRoot) or len(self.agreement) != 32:
            raise MalformedBatchError("agreement and root are 32-byte hashes")
        if self.sequence < 1 or self.first_start > self.last_start:
            raise MalformedBatchError("sequence from 1, first_start <= last_start")

    def encode(self) -> bytes:
        try:
            return _HEADER.pack(
                HEADER_VERSION,
                self.agreement,
                self.sender.encode("ascii"),
                self.recipient.encode("ascii"),
                self.sequence,
                self.count,
                self.total_charge,
                self.first_start,
                self.last_start,
                self.sealed_utc,
                self.root,
            )
        except struct.error as e:
            raise MalformedBatchError(f"a field out of range: {e}") from None

    @property
    def hash(self) -> bytes:
        """BLAKE2b-256 of the header: what the acknowledgement and the settlement name."""
        return blake2b_256(BATCH_DOMAIN, self.encode())

    def signing_message(self) -> bytes:
        return BATCH_DOMAIN + b"/sign" + self.hash

    @property
    def pair(self) -> tuple[str, str]:
        return (self.sender, self.recipient)

    @classmethod
    def decode(cls, data: bytes) -> BatchHeader:
        if len(data) != HEADER_SIZE:
            raise MalformedBatchError(f"a header is {HEADER_SIZE} bytes, got {len(data)}")
        version, agreement, sender, recipient, *numbers, root = _HEADER.unpack(data)
        if version != HEADER_VERSION:
            raise MalformedBatchError(f"unknown header version {version}")
        if not sender.isascii() or not recipient.isascii():
            raise MalformedBatchError("sender and recipient are TADIG codes")
        sequence, count, total, first, last, sealed = numbers
        return cls(
            agreement=agreement,
            sender=sender.decode("ascii"),
            recipient=recipient.decode("ascii"),
            sequence=sequence,
            count=count,
            total_charge=total,
            first_start=first,
            last_start=last,
            sealed_utc=sealed,
            root=MerkleRoot(root),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedBatchHeader:
    """A header with the sender's signature: the ledger anchor of a batch."""

    header: BatchHeader
    signature: Signature

    def encode(self) -> bytes:
        return self.header.encode() + self.signature

    @classmethod
    def decode(cls, data: bytes) -> SignedBatchHeader:
        """Exactly one signed header; `MalformedBatchError` otherwise (the signature is not
        checked here: `verify_header`)."""
        if len(data) != SIGNED_HEADER_SIZE:
            raise MalformedBatchError(f"a signed header is {SIGNED_HEADER_SIZE} bytes")
        return cls(
            header=BatchHeader.decode(data[:HEADER_SIZE]), signature=Signature(data[HEADER_SIZE:])
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """A signed header and the records it commits to, in order."""

    signed: SignedBatchHeader
    records: tuple[UsageRecord, ...]
    packed: bytes = field(init=False, repr=False, compare=False)
    """Derived: the records as a batch carries them and the stores keep them (`pack_records`),
    built once (a batch is both sent and kept); a decoded batch keeps the bytes it was read
    from, which are exactly that (`decode_batch`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "packed", pack_records(self.records))

    @classmethod
    def _received(
        cls, signed: SignedBatchHeader, records: tuple[UsageRecord, ...], packed: bytes
    ) -> Batch:
        """The batch `decode_batch` read: `records` decoded from `packed`, kept as `packed`
        without `__post_init__` packing them again (the HPMN would encode every record it just
        decoded). Only for bytes a strict decode produced `records` from: each record's
        encoding is the bytes it was decoded from and the framing is canonical, so `packed` is
        exactly `pack_records(records)`, what `__post_init__` would have built (checked by
        tests/payments/roaming/test_record_many.py)."""
        batch = object.__new__(cls)
        for name, value in (("signed", signed), ("records", records), ("packed", packed)):
            object.__setattr__(batch, name, value)
        return batch


def verify_header(
    signed: SignedBatchHeader, agreement: Agreement, known: tuple[PublicKey, ...] = ()
) -> None:
    """Raise unless `signed` is a header of `agreement` signed by its sender's key: a header of
    another agreement version or pair is `ForgedHeaderError`, a valid signature by another key
    the caller knows (`known`, e.g. the HPMN's own or another partner's) `WrongSignerError`, any
    other signature that does not verify `ForgedHeaderError`."""
    header = signed.header
    if header.agreement != agreement.hash:
        raise ForgedHeaderError("the header names another agreement version")
    tadigs = {p.tadig for p in agreement.parties}
    if {header.sender, header.recipient} != tadigs:
        raise ForgedHeaderError(f"{header.sender}->{header.recipient} is not the agreement's pair")
    message = header.signing_message()
    if is_valid(agreement.party(header.sender).key, message, signed.signature):
        return
    for key in (*(p.key for p in agreement.parties), *known):
        if is_valid(key, message, signed.signature):
            raise WrongSignerError(f"batch {header.sequence} is not signed by {header.sender}")
    raise ForgedHeaderError(f"the signature of batch {header.sequence} does not verify")


def records_root(records: tuple[UsageRecord, ...]) -> MerkleRoot:
    return merkle_root([r.encode() for r in records])


def seal(
    agreement: Agreement,
    signer: Signer,
    records: tuple[UsageRecord, ...],
    *,
    sequence: int,
    now: int,
) -> Batch:
    """Sign a batch of one pair's records (`BatchingError` if they are none or mixed pairs)."""
    if not records or len(records) > MAX_BATCH_RECORDS:
        raise BatchingError(f"a batch holds 1..{MAX_BATCH_RECORDS} records")
    sender, recipient = records[0].sender, records[0].recipient
    if {r.sender for r in records} != {sender} or {r.recipient for r in records} != {recipient}:
        raise BatchingError("a batch holds the records of one pair")
    if signer.public_key != agreement.party(sender).key:
        raise BatchingError(f"the signer is not {sender}'s operator key")
    starts = [r.start_utc for r in records]
    header = BatchHeader(
        agreement=agreement.hash,
        sender=sender,
        recipient=recipient,
        sequence=sequence,
        count=len(records),
        total_charge=sum([r.charge for r in records]),
        first_start=min(starts),
        last_start=max(starts),
        sealed_utc=now,
        root=records_root(records),
    )
    signed = SignedBatchHeader(header=header, signature=signer.sign(header.signing_message()))
    return Batch(signed=signed, records=records)


class Batcher:
    """One pair's open batch at the VPMN: `add` records, `due` says when to `flush`."""

    __slots__ = (
        "_agreement",
        "_opened",
        "_pending",
        "_recipient",
        "_sender",
        "_signer",
        "next_sequence",
    )

    def __init__(
        self,
        agreement: Agreement,
        signer: Signer,
        *,
        sender: str,
        recipient: str,
        next_sequence: int = 1,
    ) -> None:
        if sender == recipient or agreement.party(recipient).key == signer.public_key:
            raise BatchingError(f"{sender}->{recipient} is not a pair of the agreement")
        if agreement.party(sender).key != signer.public_key:
            raise BatchingError(f"the signer is not {sender}'s operator key")
        self._agreement = agreement
        self._signer = signer
        self._sender, self._recipient = sender, recipient
        self._pending: list[UsageRecord] = []
        self._opened = 0
        self.next_sequence = next_sequence

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, record: UsageRecord, now: int) -> Batch | None:
        """Take `record`; the sealed batch if this record filled it."""
        if (record.sender, record.recipient) != (self._sender, self._recipient):
            raise BatchingError(f"a record of {record.sender}->{record.recipient}, not this pair")
        if not self._pending:
            self._opened = now
        self._pending.append(record)
        if len(self._pending) >= self._agreement.batch_max_records:
            return self.flush(now)
        return None

    def due(self, now: int) -> bool:
        """Whether the open batch has waited `batch_max_age_s` (seal it with `flush`)."""
        return bool(self._pending) and now - self._opened >= self._agreement.batch_max_age_s

    def flush(self, now: int) -> Batch | None:
        """Seal what is pending (None if nothing is)."""
        if not self._pending:
            return None
        batch = seal(
            self._agreement,
            self._signer,
            tuple(self._pending),
            sequence=self.next_sequence,
            now=now,
        )
        self._pending.clear()
        self.next_sequence += 1
        return batch


def encode_batch(batch: Batch) -> bytes:
    """The batch as it travels to the HPMN: the signed header, u32 n, then n times (u16
    length, record encoding): the records as the stores keep them (`pack_records`)."""
    return batch.signed.encode() + struct.pack("<I", len(batch.records)) + batch.packed


def decode_batch(data: bytes) -> Batch:
    """Exactly one encoded batch; `MalformedBatchError` for anything else (signatures and
    the Merkle root are checked by the validator)."""
    try:
        r = Reader(data, "batch")
        signed = SignedBatchHeader.decode(r.take(SIGNED_HEADER_SIZE, "header"))
        n = r.u32("count")
        if n > MAX_BATCH_RECORDS:
            raise MalformedBatchError(f"{n} records, at most {MAX_BATCH_RECORDS}")
        packed = r.take(r.remaining, "records")
        records = tuple(decode_many(_frames(packed, n)))
    except (DecodeError, InvalidFieldError, MalformedRecordError) as e:
        raise MalformedBatchError(str(e)) from None
    return Batch._received(signed, records, packed)


def _frames(data: bytes, n: int) -> list[bytes]:
    """Exactly `n` records of (u16 length, at most `RECORD_MAX_SIZE` bytes) filling `data`."""
    out: list[bytes] = []
    append, length, pos, size = out.append, _LENGTH.unpack_from, 0, len(data)
    for _ in range(n):
        start = pos + 2
        if (
            start > size
            or (end := start + length(data, pos)[0]) > size
            or end - start > RECORD_MAX_SIZE
        ):
            # the reader names what is wrong: a truncated or oversized record
            Reader(data[pos:], "batch").sized(2, RECORD_MAX_SIZE, "record")
        append(data[start:end])
        pos = end
    if pos != size:
        raise TrailingBytesError("batch", size - pos)
    return out


def anchor_payload(signed: SignedBatchHeader) -> TaggedData:
    """The tagged-data payload that anchors a signed header on the ledger."""
    return TaggedData(tag=BATCH_TAG, data=signed.encode())


def header_from_payload(payload: TaggedData) -> SignedBatchHeader:
    """The signed header an anchor carries (`MalformedBatchError` for anything else)."""
    if payload.tag != BATCH_TAG:
        raise MalformedBatchError("not a batch anchor")
    try:
        return SignedBatchHeader.decode(payload.data)
    except (DecodeError, InvalidFieldError) as e:
        raise MalformedBatchError(str(e)) from None
