"""Disputes and credit notes: a carrier contests an acknowledged batch (or some of its records)
within the agreement's window; the other carrier accepts (with the credit it grants) or rejects.

Both messages are signed, canonical JSON, and anchored on the ledger (`anchor_payload`), so
neither side can later deny what was claimed or granted. An accepted resolution is a credit
note: the answering carrier (usually the VPMN) owes the disputing one its `credit`, and
`Settlement.credit` nets it into what the channel must pay (it adjusts the next settlement
rather than moving money back).

The `DisputeBook` (sans-I/O, one per agreement) holds every dispute and its resolution and
refuses, by `DisputeError`: a dispute outside the window (counted from the acknowledgement) or
about a batch that was not accepted, a claim above the batch's accepted amount (less what
earlier disputes of the batch claimed), a record index outside the batch, a signature that is
not the right carrier's, a second resolution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.protocol.ids import Signature, blake2b_256
from tangle.protocol.payload import TaggedData
from tangle.protocol.signature import is_valid

from .errors import DisputeError

if TYPE_CHECKING:
    from tangle.protocol.signature import Signer

    from .acknowledgement import SignedAcknowledgement
    from .agreement import Agreement

DISPUTE_DOMAIN: Final = b"tanglepay/roaming/dispute/v1"
DISPUTE_TAG: Final = b"tanglepay/roaming/dispute"
MAX_REASON: Final = 200
MAX_INDICES: Final = 1_000
MAX_FILE: Final = 16 * 1024


def _canonical(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _fields(obj: object, names: tuple[str, ...]) -> dict[str, object]:
    if not isinstance(obj, dict) or set(obj) != set(names):
        raise DisputeError(f"an object with exactly {', '.join(names)}")
    return obj


def _uint(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise DisputeError("an integer in u64")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise DisputeError("a string")
    return value


def _hex32(value: object) -> bytes:
    if not isinstance(value, str) or len(value) != 64 or value != value.lower():
        raise DisputeError("64 lowercase hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise DisputeError("64 lowercase hex digits") from None


def _signed(data: bytes) -> tuple[object, Signature]:
    """The body and the signature of an exchanged dispute or resolution file."""
    if len(data) > MAX_FILE:
        raise DisputeError(f"more than {MAX_FILE} bytes")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise DisputeError(f"not JSON: {e}") from None
    o = _fields(obj, ("body", "signature"))
    sig = o["signature"]
    if not isinstance(sig, str) or len(sig) != 128 or sig != sig.lower():
        raise DisputeError("signature: 128 lowercase hex digits")
    try:
        return o["body"], Signature(bytes.fromhex(sig))
    except ValueError:
        raise DisputeError("signature: 128 lowercase hex digits") from None


def _check_reason(reason: str) -> None:
    if not isinstance(reason, str) or not reason.isascii() or not 0 < len(reason) <= MAX_REASON:
        raise DisputeError(f"a reason is 1..{MAX_REASON} ASCII characters")


@dataclass(frozen=True, slots=True, kw_only=True)
class Dispute:
    """A claim against one acknowledged batch."""

    agreement: bytes
    """Hash of the agreement version."""
    batch: bytes
    """Hash of the disputed batch's header (as its acknowledgement names it)."""
    raised_by: str
    """TADIG of the carrier that disputes (usually the HPMN, which paid)."""
    indices: tuple[int, ...]
    """The disputed records' positions in the batch; empty: the whole batch."""
    amount: int
    """The credit claimed, minor units."""
    reason: str
    raised_utc: int

    def __post_init__(self) -> None:
        _check_reason(self.reason)
        if len(self.indices) > MAX_INDICES or list(self.indices) != sorted(set(self.indices)):
            raise DisputeError(f"at most {MAX_INDICES} record indices, rising")
        if isinstance(self.amount, bool) or not 0 < self.amount < 2**64:
            raise DisputeError("the claimed amount is a positive u64")

    def to_json_object(self) -> dict[str, object]:
        return {
            "agreement": self.agreement.hex(),
            "amount": self.amount,
            "batch": self.batch.hex(),
            "indices": list(self.indices),
            "raised_by": self.raised_by,
            "raised_utc": self.raised_utc,
            "reason": self.reason,
        }

    @classmethod
    def from_json_object(cls, obj: object) -> Dispute:
        o = _fields(
            obj, ("agreement", "amount", "batch", "indices", "raised_by", "raised_utc", "reason")
        )
        indices = o["indices"]
        if not isinstance(indices, list) or len(indices) > MAX_INDICES:
            raise DisputeError(f"indices: a list of at most {MAX_INDICES}")
        return cls(
            agreement=_hex32(o["agreement"]), batch=_hex32(o["batch"]),
            raised_by=_text(o["raised_by"]), indices=tuple(_uint(i) for i in indices),
            amount=_uint(o["amount"]), reason=_text(o["reason"]), raised_utc=_uint(o["raised_utc"]),
        )  # fmt: skip

    def encode(self) -> bytes:
        return _canonical(self.to_json_object())

    @property
    def id(self) -> bytes:
        return blake2b_256(DISPUTE_DOMAIN, self.encode())


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution:
    """The other carrier's answer to a dispute. Accepted with a credit: a credit note."""

    dispute: bytes
    """The dispute's id."""
    accepted: bool
    credit: int
    """Granted credit, minor units (0 when rejected; at most the claim)."""
    reason: str
    resolved_utc: int

    def __post_init__(self) -> None:
        _check_reason(self.reason)
        if isinstance(self.credit, bool) or not 0 <= self.credit < 2**64:
            raise DisputeError("the credit is a u64")
        if not self.accepted and self.credit:
            raise DisputeError("a rejected dispute grants no credit")

    def to_json_object(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "credit": self.credit,
            "dispute": self.dispute.hex(),
            "reason": self.reason,
            "resolved_utc": self.resolved_utc,
        }

    @classmethod
    def from_json_object(cls, obj: object) -> Resolution:
        o = _fields(obj, ("accepted", "credit", "dispute", "reason", "resolved_utc"))
        if not isinstance(o["accepted"], bool):
            raise DisputeError("accepted: true or false")
        return cls(
            dispute=_hex32(o["dispute"]), accepted=o["accepted"], credit=_uint(o["credit"]),
            reason=_text(o["reason"]), resolved_utc=_uint(o["resolved_utc"]),
        )  # fmt: skip

    def encode(self) -> bytes:
        return _canonical(self.to_json_object())

    @property
    def id(self) -> bytes:
        return blake2b_256(DISPUTE_DOMAIN, b"/resolution", self.encode())


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedDispute:
    """A dispute with the disputing carrier's signature of its id."""

    body: Dispute
    signature: Signature

    def encode(self) -> bytes:
        """The file the carriers exchange: canonical JSON of the body and the signature."""
        return _canonical({"body": self.body.to_json_object(), "signature": self.signature.hex()})

    @classmethod
    def decode(cls, data: bytes) -> SignedDispute:
        body, signature = _signed(data)
        signed = cls(body=Dispute.from_json_object(body), signature=signature)
        if signed.encode() != data:
            raise DisputeError("not the canonical form")
        return signed


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedResolution:
    """A resolution with the answering carrier's signature of its id."""

    body: Resolution
    signature: Signature

    def encode(self) -> bytes:
        return _canonical({"body": self.body.to_json_object(), "signature": self.signature.hex()})

    @classmethod
    def decode(cls, data: bytes) -> SignedResolution:
        body, signature = _signed(data)
        signed = cls(body=Resolution.from_json_object(body), signature=signature)
        if signed.encode() != data:
            raise DisputeError("not the canonical form")
        return signed


def _message(body: Dispute | Resolution) -> bytes:
    return DISPUTE_DOMAIN + b"/sign" + body.id


def sign_dispute(dispute: Dispute, signer: Signer) -> SignedDispute:
    return SignedDispute(body=dispute, signature=signer.sign(_message(dispute)))


def sign_resolution(resolution: Resolution, signer: Signer) -> SignedResolution:
    return SignedResolution(body=resolution, signature=signer.sign(_message(resolution)))


def anchor_payload(signed: SignedDispute | SignedResolution) -> TaggedData:
    """The ledger anchor: the id and the signature (the body travels between the carriers)."""
    return TaggedData(tag=DISPUTE_TAG, data=signed.body.id + signed.signature)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditNote:
    """What an accepted dispute makes the answering carrier owe the disputing one."""

    dispute: bytes
    """The dispute's id: what a settlement is idempotent by."""
    debtor: str
    """The carrier that grants the credit (usually the VPMN, the batch's sender)."""
    creditor: str
    """The carrier that raised the dispute and receives the credit."""
    amount: int


@dataclass(slots=True)
class _Case:
    dispute: SignedDispute
    ack: SignedAcknowledgement
    resolution: SignedResolution | None = None


class DisputeBook:
    """Every dispute of one agreement and its resolution (see the module docstring)."""

    __slots__ = ("_agreement", "_cases", "_max_cases")

    def __init__(self, agreement: Agreement, *, max_cases: int = 100_000) -> None:
        self._agreement = agreement
        self._cases: dict[bytes, _Case] = {}
        self._max_cases = max_cases

    def raise_dispute(self, signed: SignedDispute, ack: SignedAcknowledgement) -> bytes:
        """Open `signed` against the batch `ack` acknowledged (the caller verified `ack`);
        its id. The same dispute again changes nothing."""
        d, a = signed.body, ack.ack
        if d.id in self._cases:
            return d.id
        if len(self._cases) >= self._max_cases:
            raise DisputeError(f"more than {self._max_cases} disputes")
        if d.agreement != self._agreement.hash or d.batch != a.batch:
            raise DisputeError("the dispute names another agreement or batch")
        if d.raised_by not in (a.sender, a.recipient):
            raise DisputeError(f"{d.raised_by} is not a carrier of the batch")
        party = self._agreement.party(d.raised_by)
        if not is_valid(party.key, _message(d), signed.signature):
            raise DisputeError(f"not signed by {d.raised_by}")
        if not a.accepted:
            raise DisputeError("the batch was rejected: nothing to dispute")
        if not a.acked_utc <= d.raised_utc <= a.acked_utc + self._agreement.dispute_window_s:
            raise DisputeError("raised outside the agreement's dispute window")
        if d.indices and d.indices[-1] >= a.accepted_count + len(a.returns):
            raise DisputeError("a record index outside the batch")
        claimed = sum(c.dispute.body.amount for c in self._cases.values() if c.ack.ack == a)
        if claimed + d.amount > a.accepted_amount:
            raise DisputeError(
                f"claims {claimed + d.amount}, the batch accepted {a.accepted_amount}"
            )
        self._cases[d.id] = _Case(dispute=signed, ack=ack)
        return d.id

    def resolve(self, signed: SignedResolution) -> CreditNote | None:
        """Close a dispute with the other carrier's answer; the credit note if it grants one."""
        r = signed.body
        case = self._cases.get(r.dispute)
        if case is None:
            raise DisputeError("no such dispute")
        if case.resolution is not None:
            if case.resolution == signed:
                return self._note(case)
            raise DisputeError("the dispute is already resolved")
        d, a = case.dispute.body, case.ack.ack
        answerer = a.sender if d.raised_by == a.recipient else a.recipient
        if not is_valid(self._agreement.party(answerer).key, _message(r), signed.signature):
            raise DisputeError(f"not signed by {answerer}")
        if r.credit > d.amount:
            raise DisputeError(f"grants {r.credit}, the claim was {d.amount}")
        case.resolution = signed
        return self._note(case)

    def _note(self, case: _Case) -> CreditNote | None:
        r = case.resolution
        if r is None or not r.body.accepted or r.body.credit == 0:
            return None
        a, by = case.ack.ack, case.dispute.body.raised_by
        debtor = a.sender if by == a.recipient else a.recipient
        return CreditNote(dispute=r.body.dispute, debtor=debtor, creditor=by, amount=r.body.credit)

    def open(self) -> list[SignedDispute]:
        """Disputes not yet resolved."""
        return [c.dispute for c in self._cases.values() if c.resolution is None]

    def credit_notes(self) -> list[CreditNote]:
        return [n for n in (self._note(c) for c in self._cases.values()) if n is not None]

    def history(self) -> list[tuple[SignedDispute, SignedResolution | None]]:
        """Every dispute with its resolution, in the order raised."""
        return [(c.dispute, c.resolution) for c in self._cases.values()]
