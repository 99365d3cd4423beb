"""The roaming agreement: one canonical, versioned file both carriers sign.

An agreement names the two parties (TADIG code and operator ledger key), its validity period,
the currency and its decimal places (TAP's `tapDecimalPlaces`), what each party charges as the
visited network (a `Plan` per service, see `rating.py`), tax, the settlement cadence, the fraud
thresholds and the dispute window. Its canonical form is JSON with sorted keys, no whitespace and
ASCII only; `decode` accepts nothing else (`encode(decode(b)) == b`). Its hash is BLAKE2b-256 of
`AGREEMENT_DOMAIN` and that form; both parties sign the hash (`signing_message`) and the hash is
what goes on the ledger. An amendment is a new version whose `previous` is the hash of the version
it replaces, with the same parties.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from tangle.protocol.codec import U64_MAX
from tangle.protocol.ids import PublicKey, Signature, blake2b_256
from tangle.protocol.payload import TaggedData
from tangle.protocol.signature import is_valid

from .errors import (
    AgreementError,
    AgreementSignatureError,
    AmendmentError,
    MalformedAgreementError,
)
from .rating import Plan, plan_from_json
from .record import EventType, is_tadig

if TYPE_CHECKING:
    from tangle.protocol.signature import Signer

AGREEMENT_DOMAIN: Final = b"tanglepay/roaming/agreement/v1"
AGREEMENT_TAG: Final = b"tanglepay/roaming/agreement"
MAX_AGREEMENT_SIZE: Final = 64 * 1024
MAX_DECIMAL_PLACES: Final = 6
"""TAP allows up to six decimal places."""
MAX_TAX_BP: Final = 10_000
_CURRENCY: Final = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Party:
    """One carrier of the agreement and what it charges when it is the visited network."""

    tadig: str
    """Its TADIG code."""
    key: PublicKey
    """Its operator ledger key: signs the agreement, its batch headers and acknowledgements."""
    plans: tuple[Plan, ...]
    """One plan per `EventType`, in `EventType` order: its rates as the VPMN."""

    def __post_init__(self) -> None:
        if not is_tadig(self.tadig):
            raise AgreementError("tadig", f"{self.tadig!r} is not a TADIG code")
        if not isinstance(self.key, PublicKey):
            raise AgreementError("key", "must be a PublicKey")
        if tuple(p.service for p in self.plans) != tuple(EventType):
            raise AgreementError("plans", "one plan per event type, in EventType order")

    def plan(self, service: EventType) -> Plan:
        """The plan this party charges for `service`."""
        return self.plans[service]


@dataclass(frozen=True, slots=True, kw_only=True)
class Agreement:
    """One version of a bilateral roaming agreement (see the module docstring)."""

    version: int
    """1 for the first version, +1 for each amendment."""
    previous: bytes | None
    """The hash of the version this one amends (None for version 1)."""
    parties: tuple[Party, Party]
    """The two carriers, in TADIG order."""
    valid_from: int
    """First second (UTC, since the epoch) of an event the agreement covers."""
    valid_until: int
    """First second after the events it covers."""
    currency: str
    """ISO 4217 code of every amount."""
    decimal_places: int
    """Minor units: amounts are integers in 10**-decimal_places of the currency."""
    tax_bp: int
    """Tax on every charge, in basis points (1/100 of a percent)."""
    batch_max_records: int
    """The VPMN seals a batch at this many records ..."""
    batch_max_age_s: int
    """... or when its oldest record has waited this long."""
    fraud_charge_4h: int
    """Charges per IMSI within 4 hours above which the HPMN is alerted."""
    dispute_window_s: int
    """How long after a batch is acknowledged its records may be disputed."""

    def __post_init__(self) -> None:
        _uint("version", self.version, 1, U64_MAX)
        if (self.version == 1) != (self.previous is None):
            raise AmendmentError("version 1 has no previous hash, every later version has one")
        if self.previous is not None and (
            not isinstance(self.previous, bytes) or len(self.previous) != 32
        ):
            raise AgreementError("previous", "must be 32 bytes")
        a, b = self.parties
        if a.tadig >= b.tadig or a.key == b.key:
            raise AgreementError("parties", "two distinct carriers, in TADIG order")
        _uint("valid_from", self.valid_from, 0, U64_MAX)
        _uint("valid_until", self.valid_until, self.valid_from + 1, U64_MAX)
        if not isinstance(self.currency, str) or not _CURRENCY.fullmatch(self.currency):
            raise AgreementError("currency", "an ISO 4217 code: three capital letters")
        _uint("decimal_places", self.decimal_places, 0, MAX_DECIMAL_PLACES)
        _uint("tax_bp", self.tax_bp, 0, MAX_TAX_BP)
        _uint("batch_max_records", self.batch_max_records, 1, 1_000_000)
        _uint("batch_max_age_s", self.batch_max_age_s, 1, 86_400)
        _uint("fraud_charge_4h", self.fraud_charge_4h, 0, U64_MAX)
        _uint("dispute_window_s", self.dispute_window_s, 0, 400 * 86_400)

    def party(self, tadig: str) -> Party:
        """The party with TADIG `tadig` (`AgreementError` if it is neither)."""
        for p in self.parties:
            if p.tadig == tadig:
                return p
        raise AgreementError("party", f"{tadig!r} is not a party of this agreement")

    def counterparty(self, tadig: str) -> Party:
        """The party that is not `tadig`."""
        a, b = self.parties
        return b if self.party(tadig) is a else a

    def to_json_object(self) -> dict[str, object]:
        return {
            "batch_max_age_s": self.batch_max_age_s,
            "batch_max_records": self.batch_max_records,
            "currency": self.currency,
            "decimal_places": self.decimal_places,
            "dispute_window_s": self.dispute_window_s,
            "fraud_charge_4h": self.fraud_charge_4h,
            "parties": [
                {
                    "key": p.key.hex(),
                    "plans": [plan.to_json_object() for plan in p.plans],
                    "tadig": p.tadig,
                }
                for p in self.parties
            ],
            "previous": None if self.previous is None else self.previous.hex(),
            "tax_bp": self.tax_bp,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "version": self.version,
        }

    def encode(self) -> bytes:
        """The canonical form: JSON, keys sorted, no whitespace, ASCII."""
        return json.dumps(self.to_json_object(), sort_keys=True, separators=(",", ":")).encode()

    @property
    def hash(self) -> bytes:
        """BLAKE2b-256 of the domain and the canonical form: what is signed and anchored."""
        return blake2b_256(AGREEMENT_DOMAIN, self.encode())

    def signing_message(self) -> bytes:
        return AGREEMENT_DOMAIN + b"/sign" + self.hash

    def amend(self, **changes: object) -> Agreement:
        """The next version with `changes` (any field but version, previous and parties)."""
        if {"version", "previous", "parties"} & set(changes):
            raise AmendmentError("an amendment keeps the parties; version and previous follow")
        return replace(self, version=self.version + 1, previous=self.hash, **changes)  # type: ignore[arg-type]

    @classmethod
    def decode(cls, data: bytes) -> Agreement:
        """The agreement in its canonical form; anything else raises `MalformedAgreementError`."""
        if len(data) > MAX_AGREEMENT_SIZE:
            raise MalformedAgreementError(f"{len(data)} bytes, at most {MAX_AGREEMENT_SIZE}")
        try:
            obj = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise MalformedAgreementError(f"not JSON: {e}") from None
        try:
            agreement = cls.from_json_object(obj)
        except MalformedAgreementError:
            raise
        except AgreementError as e:
            raise MalformedAgreementError(str(e)) from None
        if agreement.encode() != data:
            raise MalformedAgreementError("not the canonical form")
        return agreement

    @classmethod
    def from_json_object(cls, obj: object) -> Agreement:
        o = _fields(obj, "agreement", _AGREEMENT_FIELDS)
        parties = o["parties"]
        if not isinstance(parties, list) or len(parties) != 2:
            raise MalformedAgreementError("parties: a list of two")
        previous = o["previous"]
        return cls(
            version=_int(o, "version"),
            previous=None if previous is None else _hex(previous, "previous", 32),
            parties=(_party(parties[0]), _party(parties[1])),
            valid_from=_int(o, "valid_from"),
            valid_until=_int(o, "valid_until"),
            currency=_str(o, "currency"),
            decimal_places=_int(o, "decimal_places"),
            tax_bp=_int(o, "tax_bp"),
            batch_max_records=_int(o, "batch_max_records"),
            batch_max_age_s=_int(o, "batch_max_age_s"),
            fraud_charge_4h=_int(o, "fraud_charge_4h"),
            dispute_window_s=_int(o, "dispute_window_s"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedAgreement:
    """An agreement with both parties' signatures of its hash, in party order."""

    agreement: Agreement
    signatures: tuple[Signature, Signature]

    def __post_init__(self) -> None:
        message = self.agreement.signing_message()
        for party, signature in zip(self.agreement.parties, self.signatures, strict=True):
            if not isinstance(signature, Signature) or not is_valid(party.key, message, signature):
                raise AgreementSignatureError(party.tadig, "does not verify")

    def check_amends(self, previous: SignedAgreement) -> None:
        """Raise `AmendmentError` unless this version amends `previous`."""
        new, old = self.agreement, previous.agreement
        if new.previous != old.hash or new.version != old.version + 1:
            raise AmendmentError(f"version {new.version} does not follow {old.version}")
        if [(p.tadig, p.key) for p in new.parties] != [(p.tadig, p.key) for p in old.parties]:
            raise AmendmentError("the parties changed")

    def encode(self) -> bytes:
        """The shared file: canonical JSON of the agreement and the signatures (hex)."""
        doc = {
            "agreement": self.agreement.to_json_object(),
            "signatures": [s.hex() for s in self.signatures],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> SignedAgreement:
        if len(data) > MAX_AGREEMENT_SIZE:
            raise MalformedAgreementError(f"{len(data)} bytes, at most {MAX_AGREEMENT_SIZE}")
        try:
            obj = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise MalformedAgreementError(f"not JSON: {e}") from None
        o = _fields(obj, "signed agreement", ("agreement", "signatures"))
        sigs = o["signatures"]
        if not isinstance(sigs, list) or len(sigs) != 2:
            raise MalformedAgreementError("signatures: a list of two")
        signed = cls(
            agreement=Agreement.from_json_object(o["agreement"]),
            signatures=(
                Signature(_hex(sigs[0], "signature", 64)),
                Signature(_hex(sigs[1], "signature", 64)),
            ),
        )
        if signed.encode() != data:
            raise MalformedAgreementError("not the canonical form")
        return signed


def sign_agreement(agreement: Agreement, signer: Signer) -> Signature:
    """`signer`'s signature of `agreement` (`AgreementSignatureError` if it is no party's key)."""
    if signer.public_key not in (p.key for p in agreement.parties):
        raise AgreementSignatureError("signer", "the key is neither party's")
    return signer.sign(agreement.signing_message())


def anchor_payload(signed: SignedAgreement) -> TaggedData:
    """The ledger anchor of a signed agreement version: its hash and both signatures."""
    return TaggedData(tag=AGREEMENT_TAG, data=signed.agreement.hash + b"".join(signed.signatures))


def countersigned(agreement: Agreement, a: Signature, b: Signature) -> SignedAgreement:
    """The agreement with both signatures (in party order), each checked."""
    return SignedAgreement(agreement=agreement, signatures=(a, b))


_AGREEMENT_FIELDS: Final = (
    "batch_max_age_s",
    "batch_max_records",
    "currency",
    "decimal_places",
    "dispute_window_s",
    "fraud_charge_4h",
    "parties",
    "previous",
    "tax_bp",
    "valid_from",
    "valid_until",
    "version",
)


def _uint(name: str, value: int, minimum: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise AgreementError(name, f"an integer in [{minimum}, {maximum}]")


def _fields(obj: object, what: str, names: tuple[str, ...]) -> dict[str, object]:
    if not isinstance(obj, dict) or set(obj) != set(names):
        raise MalformedAgreementError(f"{what}: an object with exactly {', '.join(names)}")
    return obj


def _int(o: dict[str, object], name: str) -> int:
    value = o[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedAgreementError(f"{name} must be an integer")
    return value


def _str(o: dict[str, object], name: str) -> str:
    value = o[name]
    if not isinstance(value, str):
        raise MalformedAgreementError(f"{name} must be a string")
    return value


def _hex(value: object, name: str, size: int) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size or value != value.lower():
        raise MalformedAgreementError(f"{name}: {2 * size} lowercase hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MalformedAgreementError(f"{name}: {2 * size} lowercase hex digits") from None


def _party(obj: object) -> Party:
    o = _fields(obj, "party", ("key", "plans", "tadig"))
    plans = o["plans"]
    if not isinstance(plans, list) or len(plans) != len(EventType):
        raise MalformedAgreementError(f"plans: a list of {len(EventType)}")
    return Party(
        tadig=_str(o, "tadig"),
        key=PublicKey(_hex(o["key"], "key", 32)),
        plans=tuple(plan_from_json(p) for p in plans),
    )
