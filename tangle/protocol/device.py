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
rule (`tangle/ledger/registry_rules.py`); here only the layout is checked.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Final, TypeVar

from tangle.errors import InvalidFieldError, NonCanonicalError, UnknownTypeError

from .codec import U32_MAX, U64_MAX, Reader, require_bytes, require_uint, sized, u8, u32, u64
from .ids import Address, FixedBytes, PublicKey, Signature, blake2b_256

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .signature import Signer

SIGNING_DOMAIN: Final = b"tanglepay/device-record/v1"
DEVICE_ID_DOMAIN: Final = b"tanglepay/device-id/v1"
MAX_SIGNERS: Final = 16
MAX_NAME: Final = 64
MAX_URI: Final = 200
NO_GATEWAY: Final = bytes(32)
_E = TypeVar("_E", bound=IntEnum)


class DeviceId(FixedBytes):
    """H(DEVICE_ID_DOMAIN || the device's first key)."""


def device_id_of(first_key: bytes) -> DeviceId:
    return DeviceId(blake2b_256(DEVICE_ID_DOMAIN, PublicKey(first_key)))


class RecordKind(IntEnum):
    ADMIT_ISSUER = 0
    REGISTER = 1
    UPDATE = 2
    ROTATE_KEY = 3
    SET_STATUS = 4
    QUARANTINE = 5
    LIFT_QUARANTINE = 6


class IssuerRole(IntEnum):
    """What an admitted issuer may vouch for."""

    OPERATOR = 1
    MAKER = 2
    AUTHORITY = 3


class Capability(IntEnum):
    FULL = 0
    """Sends its own messages."""
    CONSTRAINED = 1
    """Reaches the ledger only through its gateway."""


class DeviceStatus(IntEnum):
    ACTIVE = 1
    SUSPENDED = 2
    REVOKED = 3
    """Final: no record changes a revoked device again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AdmitIssuer:
    """The committee admits (or removes) an issuer."""

    issuer: PublicKey
    """The issuer's key."""
    role: IssuerRole
    """What it may vouch for."""
    admitted: bool
    """False removes it."""
    serial: int
    """Above the serial of the last admission record for this key (replays are refused)."""
    name: bytes
    """Display name, at most MAX_NAME bytes."""

    def __post_init__(self) -> None:
        _check_body(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Register:
    """A new device, signed by its key and endorsed by issuers."""

    device_key: PublicKey
    """Its signing key; the device id derives from it."""
    address: Address
    """Its ledger address."""
    maker: PublicKey
    """The maker's issuer key."""
    model: bytes
    """Model name, at most MAX_NAME bytes."""
    capability: Capability
    """Full-function or constrained."""
    gateway: bytes
    """The gateway's device id for a constrained device; NO_GATEWAY for a full one."""
    attributes_hash: bytes
    """H of the attribute document kept off-ledger."""
    uri: bytes
    """Where that document lives (may be empty), at most MAX_URI bytes."""

    def __post_init__(self) -> None:
        _check_body(self)

    @property
    def device_id(self) -> DeviceId:
        return device_id_of(self.device_key)


@dataclass(frozen=True, slots=True, kw_only=True)
class Update:
    """New attributes, signed by the device's current key."""

    device_id: DeviceId
    serial: int
    """Above the device's last serial."""
    attributes_hash: bytes
    uri: bytes

    def __post_init__(self) -> None:
        _check_body(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class RotateKey:
    """A new key, signed by the old key, the new key and an issuer."""

    device_id: DeviceId
    serial: int
    new_key: PublicKey
    new_address: Address

    def __post_init__(self) -> None:
        _check_body(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetStatus:
    """Suspend, reinstate or revoke, signed by an operator or the device's maker."""

    device_id: DeviceId
    serial: int
    status: DeviceStatus

    def __post_init__(self) -> None:
        _check_body(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Quarantine:
    """Cut a device off, signed by at least the network's threshold of operators."""

    device_id: DeviceId
    serial: int
    """Above the device's last quarantine serial."""
    reason: int
    """A reason code (u8), for people."""
    evidence_hash: bytes
    """H of the evidence kept off-ledger."""
    expires_after: int
    """The last milestone index the quarantine holds at."""

    def __post_init__(self) -> None:
        _check_body(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiftQuarantine:
    """End a quarantine, signed by the same quorum."""

    device_id: DeviceId
    serial: int

    def __post_init__(self) -> None:
        _check_body(self)


Body = AdmitIssuer | Register | Update | RotateKey | SetStatus | Quarantine | LiftQuarantine

_KINDS: Final[dict[type, RecordKind]] = {
    AdmitIssuer: RecordKind.ADMIT_ISSUER,
    Register: RecordKind.REGISTER,
    Update: RecordKind.UPDATE,
    RotateKey: RecordKind.ROTATE_KEY,
    SetStatus: RecordKind.SET_STATUS,
    Quarantine: RecordKind.QUARANTINE,
    LiftQuarantine: RecordKind.LIFT_QUARANTINE,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordSignature:
    public_key: PublicKey
    signature: Signature


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
        if type(self.body) not in _KINDS:
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


def _check_body(body: Body) -> None:
    """The field checks of every body (their `__post_init__`)."""
    if isinstance(body, AdmitIssuer):
        _require_enum("AdmitIssuer.role", body.role, IssuerRole)
        if not isinstance(body.admitted, bool):
            raise InvalidFieldError("AdmitIssuer.admitted", "must be a bool")
        require_bytes("AdmitIssuer.name", body.name, MAX_NAME)
    elif isinstance(body, Register):
        require_bytes("Register.model", body.model, MAX_NAME)
        require_bytes("Register.uri", body.uri, MAX_URI)
        _require_hash("Register.attributes_hash", body.attributes_hash)
        _require_hash("Register.gateway", body.gateway)
        _require_enum("Register.capability", body.capability, Capability)
        if (body.capability is Capability.FULL) != (body.gateway == NO_GATEWAY):
            raise InvalidFieldError("Register.gateway", "constrained devices name a gateway")
        return
    elif isinstance(body, Update):
        _require_hash("Update.attributes_hash", body.attributes_hash)
        require_bytes("Update.uri", body.uri, MAX_URI)
    elif isinstance(body, SetStatus):
        _require_enum("SetStatus.status", body.status, DeviceStatus)
    elif isinstance(body, Quarantine):
        require_uint("Quarantine.reason", body.reason, 0xFF)
        _require_hash("Quarantine.evidence_hash", body.evidence_hash)
        require_uint("Quarantine.expires_after", body.expires_after, U32_MAX, minimum=1)
    require_uint(f"{type(body).__name__}.serial", body.serial, U32_MAX, minimum=1)


def _require_enum(field: str, value: object, enum: type[IntEnum]) -> None:
    if not isinstance(value, enum):
        raise InvalidFieldError(field, f"must be a {enum.__name__}")


def _require_hash(field: str, value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvalidFieldError(field, "must be 32 bytes")


# -- encoding --------------------------------------------------------------------------------


def encode_body(network_id: int, body: Body) -> bytes:
    head = u8(_KINDS[type(body)]) + u64(network_id)
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
