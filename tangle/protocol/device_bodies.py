"""The bodies of device registry records: what each record kind says (layouts in `device.py`),
the enums they use, and the device id. Each body checks its fields when it is built."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from tangle.errors import InvalidFieldError

from .codec import U32_MAX, require_bytes, require_uint
from .ids import Address, FixedBytes, PublicKey, blake2b_256

DEVICE_ID_DOMAIN: Final = b"tanglepay/device-id/v1"
MAX_NAME: Final = 64
MAX_URI: Final = 200
NO_GATEWAY: Final = bytes(32)


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

KINDS: Final[dict[type, RecordKind]] = {
    AdmitIssuer: RecordKind.ADMIT_ISSUER,
    Register: RecordKind.REGISTER,
    Update: RecordKind.UPDATE,
    RotateKey: RecordKind.ROTATE_KEY,
    SetStatus: RecordKind.SET_STATUS,
    Quarantine: RecordKind.QUARANTINE,
    LiftQuarantine: RecordKind.LIFT_QUARANTINE,
}


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
