"""Device registry records: the payload that admits issuers and registers, changes and
quarantines devices (payload type 3, see `payload.py`).

Every record is one kind byte, the network id, the kind's body, then the signatures of everyone
who vouches for it, all over one message: `SIGNING_DOMAIN || H(kind || network_id || body)`.

```
u8   kind            0 admit issuer   1 register   2 update   3 rotate key
                     4 set status     5 quarantine 6 lift quarantine
u64  network_id
body:
  0 admit:     32 issuer key, u8 role (1 operator, 2 maker, 3 authority), u8 admitted (0|1),
               u32 serial, u8 name_length (<= 64), name
  1 register:  32 device key, 32 address, 32 maker (an issuer key), u8 model_length (<= 64),
               model, u8 capability (0 full, 1 constrained), 32 gateway (a device id; all zero
               iff full), 32 attributes_hash, u8 uri_length (<= 200), uri
  2 update:    32 device id, u32 serial, 32 attributes_hash, u8 uri_length, uri
  3 rotate:    32 device id, u32 serial, 32 new key, 32 new address
  4 status:    32 device id, u32 serial, u8 status (1 active, 2 suspended, 3 revoked)
  5 quarantine:32 device id, u32 serial, u8 reason, 32 evidence_hash, u32 expires_after (index)
  6 lift:      32 device id, u32 serial
u8   signature_count (1..MAX_SIGNERS), then (public key 32, signature 64), sorted by key, unique
```

A device's id is `H("tanglepay/device-id/v1" || the key it registered with)`: it never changes,
whatever key the device rotates to. Whether the signers are the ones a record needs is a ledger
rule (`tangle/ledger/registry_rules.py`); here only the layout is checked. The bodies and
their enums are in `device_bodies.py`, re-exported here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Final, TypeVar

from tangle.errors import InvalidFieldError, NonCanonicalError, UnknownTypeError

from .codec import U64_MAX, Reader, require_uint, sized, u8, u32, u64
from .device_bodies import DEVICE_ID_DOMAIN as DEVICE_ID_DOMAIN
from .device_bodies import KINDS
from .device_bodies import MAX_NAME as MAX_NAME
from .device_bodies import MAX_URI as MAX_URI
from .device_bodies import NO_GATEWAY as NO_GATEWAY
from .device_bodies import AdmitIssuer as AdmitIssuer
from .device_bodies import Body as Body
from .device_bodies import Capability as Capability
from .device_bodies import DeviceId as DeviceId
from .device_bodies import DeviceStatus as DeviceStatus
from .device_bodies import IssuerRole as IssuerRole
from .device_bodies import LiftQuarantine as LiftQuarantine
from .device_bodies import Quarantine as Quarantine
from .device_bodies import RecordKind as RecordKind
from .device_bodies import Register as Register
from .device_bodies import RotateKey as RotateKey
from .device_bodies import SetStatus as SetStatus
from .device_bodies import Update as Update
from .device_bodies import device_id_of as device_id_of
from .ids import Address, PublicKey, Signature, blake2b_256

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .signature import Signer

SIGNING_DOMAIN: Final = b"tanglepay/device-record/v1"
MAX_SIGNERS: Final = 16
_E = TypeVar("_E", bound=IntEnum)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordSignature:
    """One signer's signature of a record."""

    public_key: PublicKey
    """The signer's key."""
    signature: Signature
    """ed25519 over the record's `signing_message()`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceRecord:
    """A signed registry record."""

    network_id: int
    """The network it is for."""
    body: Body
    """What it does."""
    signatures: tuple[RecordSignature, ...]
    """1..MAX_SIGNERS signatures of `signing_message()`, sorted by key, unique."""

    def __post_init__(self) -> None:
        require_uint("DeviceRecord.network_id", self.network_id, U64_MAX)
        if type(self.body) not in KINDS:
            raise InvalidFieldError("DeviceRecord.body", f"unknown body {type(self.body).__name__}")
        if not 1 <= len(self.signatures) <= MAX_SIGNERS:
            raise InvalidFieldError("DeviceRecord.signatures", f"count {len(self.signatures)}")
        keys = [s.public_key for s in self.signatures]
        if not all(a < b for a, b in itertools.pairwise(keys)):
            raise InvalidFieldError("DeviceRecord.signatures", "must be sorted by key and unique")

    @property
    def signers(self) -> frozenset[PublicKey]:
        return frozenset(s.public_key for s in self.signatures)

    def signing_message(self) -> bytes:
        return record_signing_message(self.network_id, self.body)


def record_signing_message(network_id: int, body: Body) -> bytes:
    """What every signer of a record signs."""
    return SIGNING_DOMAIN + blake2b_256(encode_body(network_id, body))


# -- encoding --------------------------------------------------------------------------------


def encode_body(network_id: int, body: Body) -> bytes:
    head = u8(KINDS[type(body)]) + u64(network_id)
    if isinstance(body, AdmitIssuer):
        rest = (body.issuer, u8(body.role), u8(body.admitted), u32(body.serial))
        return b"".join((head, *rest, sized(1, body.name)))
    if isinstance(body, Register):
        return b"".join(
            (
                head,
                body.device_key,
                body.address,
                body.maker,
                sized(1, body.model),
                u8(body.capability),
                body.gateway,
                body.attributes_hash,
                sized(1, body.uri),
            )
        )
    prefix = head + body.device_id + u32(body.serial)
    if isinstance(body, Update):
        return prefix + body.attributes_hash + sized(1, body.uri)
    if isinstance(body, RotateKey):
        return prefix + body.new_key + body.new_address
    if isinstance(body, SetStatus):
        return prefix + u8(body.status)
    if isinstance(body, Quarantine):
        return b"".join((prefix, u8(body.reason), body.evidence_hash, u32(body.expires_after)))
    return prefix


def encode_record(record: DeviceRecord) -> bytes:
    sigs = b"".join(s.public_key + s.signature for s in record.signatures)
    return encode_body(record.network_id, record.body) + u8(len(record.signatures)) + sigs


def _flag(r: Reader, what: str) -> bool:
    value = r.u8(what)
    if value > 1:
        raise NonCanonicalError(f"{what} is {value}, not 0 or 1")
    return value == 1


def read_enum(r: Reader, what: str, enum: type[_E]) -> _E:
    """A u8 that must be a member of `enum` (`UnknownTypeError` otherwise)."""
    value = r.u8(what)
    try:
        return enum(value)
    except ValueError:
        raise UnknownTypeError(what, value) from None


def _decode_body(r: Reader, kind: RecordKind) -> Body:
    if kind is RecordKind.ADMIT_ISSUER:
        return AdmitIssuer(
            issuer=PublicKey(r.take(32, "issuer")),
            role=read_enum(r, "role", IssuerRole),
            admitted=_flag(r, "admitted"),
            serial=r.u32("serial"),
            name=r.sized(1, MAX_NAME, "name"),
        )
    if kind is RecordKind.REGISTER:
        return Register(
            device_key=PublicKey(r.take(32, "device_key")),
            address=Address(r.take(32, "address")),
            maker=PublicKey(r.take(32, "maker")),
            model=r.sized(1, MAX_NAME, "model"),
            capability=read_enum(r, "capability", Capability),
            gateway=r.take(32, "gateway"),
            attributes_hash=r.take(32, "attributes_hash"),
            uri=r.sized(1, MAX_URI, "uri"),
        )
    device_id = DeviceId(r.take(32, "device_id"))
    serial = r.u32("serial")
    if kind is RecordKind.UPDATE:
        return Update(
            device_id=device_id,
            serial=serial,
            attributes_hash=r.take(32, "attributes_hash"),
            uri=r.sized(1, MAX_URI, "uri"),
        )
    if kind is RecordKind.ROTATE_KEY:
        return RotateKey(
            device_id=device_id,
            serial=serial,
            new_key=PublicKey(r.take(32, "new_key")),
            new_address=Address(r.take(32, "new_address")),
        )
    if kind is RecordKind.SET_STATUS:
        return SetStatus(
            device_id=device_id, serial=serial, status=read_enum(r, "status", DeviceStatus)
        )
    if kind is RecordKind.QUARANTINE:
        return Quarantine(
            device_id=device_id,
            serial=serial,
            reason=r.u8("reason"),
            evidence_hash=r.take(32, "evidence_hash"),
            expires_after=r.u32("expires_after"),
        )
    return LiftQuarantine(device_id=device_id, serial=serial)


def decode_record(r: Reader) -> DeviceRecord:
    """Read a record body; the caller checks that nothing trails it. A value out of range
    raises `InvalidFieldError` from the constructors."""
    kind = read_enum(r, "record.kind", RecordKind)
    network_id = r.u64("network_id")
    body = _decode_body(r, kind)
    count = r.u8("signature_count")
    if not 1 <= count <= MAX_SIGNERS:
        raise NonCanonicalError(f"signature_count {count} is outside 1..{MAX_SIGNERS}")
    signatures = tuple(
        RecordSignature(
            public_key=PublicKey(r.take(32, "signer")),
            signature=Signature(r.take(64, "signature")),
        )
        for _ in range(count)
    )
    return DeviceRecord(network_id=network_id, body=body, signatures=signatures)


def sign_record(network_id: int, body: Body, signers: Sequence[Signer]) -> DeviceRecord:
    """The record of `body` signed by each of `signers` (a key given twice signs once)."""
    message = record_signing_message(network_id, body)
    by_key = {s.public_key: s for s in signers}
    signatures = tuple(
        RecordSignature(public_key=k, signature=by_key[k].sign(message)) for k in sorted(by_key)
    )
    return DeviceRecord(network_id=network_id, body=body, signatures=signatures)
