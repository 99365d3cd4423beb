"""OCPI 2.2.1 Sessions and Tokens, and the pieces CDRs share with them (`CdrToken`,
`CdrDimension`, `CdrChargingPeriod`), as value objects with strict JSON parsing and writing.

Volumes (kWh, hours, A, kW, %) are integers of 1/10,000 of their OCPI unit (`VOLUME_DIGITS`:
OCPI numbers carry at most 4 decimals); money is in minor units of the session's currency.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import ocpi_json as j
from .errors import OcpiFieldError
from .ocpi_tariff import parse_price, price_to_json

if TYPE_CHECKING:
    import datetime as dt

    from .tariff import Price

VOLUME_DIGITS = 4
"""Volumes are integers of 10**-VOLUME_DIGITS of their OCPI unit."""


class TokenType(enum.Enum):
    AD_HOC_USER = "AD_HOC_USER"
    APP_USER = "APP_USER"
    OTHER = "OTHER"
    RFID = "RFID"


class AuthMethod(enum.Enum):
    AUTH_REQUEST = "AUTH_REQUEST"
    COMMAND = "COMMAND"
    WHITELIST = "WHITELIST"


class SessionStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"
    RESERVATION = "RESERVATION"


class WhitelistType(enum.Enum):
    ALWAYS = "ALWAYS"
    ALLOWED = "ALLOWED"
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE"
    NEVER = "NEVER"


class ProfileType(enum.Enum):
    CHEAP = "CHEAP"
    FAST = "FAST"
    GREEN = "GREEN"
    REGULAR = "REGULAR"


class CdrDimensionType(enum.Enum):
    """What a CDR dimension measures, and in which OCPI unit."""

    CURRENT = "CURRENT"  # A
    ENERGY = "ENERGY"  # kWh
    ENERGY_EXPORT = "ENERGY_EXPORT"  # kWh
    ENERGY_IMPORT = "ENERGY_IMPORT"  # kWh
    MAX_CURRENT = "MAX_CURRENT"  # A
    MIN_CURRENT = "MIN_CURRENT"  # A
    MAX_POWER = "MAX_POWER"  # kW
    MIN_POWER = "MIN_POWER"  # kW
    PARKING_TIME = "PARKING_TIME"  # hours
    POWER = "POWER"  # kW
    RESERVATION_TIME = "RESERVATION_TIME"  # hours
    STATE_OF_CHARGE = "STATE_OF_CHARGE"  # %
    TIME = "TIME"  # hours


@dataclass(frozen=True, slots=True, kw_only=True)
class CdrToken:
    """The token a session was authorized with."""

    country_code: str
    """Country of the eMSP that issued the token."""
    party_id: str
    """The issuing eMSP."""
    uid: str
    """The token's unique id (RFID UID, app user id), at most 36 characters."""
    type: TokenType
    """What kind of token."""
    contract_id: str
    """The driver's contract (eMA id), at most 36 characters."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CdrDimension:
    """One measured volume of a charging period."""

    type: CdrDimensionType
    """What it measures."""
    volume: int
    """In 10**-VOLUME_DIGITS of the dimension's unit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CdrChargingPeriod:
    """A period of a session or CDR with its measured volumes."""

    start_date_time: dt.datetime
    """When the period starts; it lasts until the next one (or the session's end)."""
    dimensions: tuple[CdrDimension, ...]
    """At least one."""
    tariff_id: str | None = None
    """The tariff that priced the period."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """An OCPI Session: a charging session as the CPO reports it while it runs."""

    country_code: str
    party_id: str
    id: str
    start_date_time: dt.datetime
    kwh: int
    """Energy so far, 10**-VOLUME_DIGITS kWh."""
    cdr_token: CdrToken
    auth_method: AuthMethod
    location_id: str
    evse_uid: str
    connector_id: str
    currency: str
    status: SessionStatus
    last_updated: dt.datetime
    end_date_time: dt.datetime | None = None
    authorization_reference: str | None = None
    meter_id: str | None = None
    charging_periods: tuple[CdrChargingPeriod, ...] = ()
    total_cost: Price | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """An OCPI Token an eMSP issued to a driver (pushed to the CPO for authorization)."""

    country_code: str
    party_id: str
    uid: str
    type: TokenType
    contract_id: str
    issuer: str
    valid: bool
    whitelist: WhitelistType
    last_updated: dt.datetime
    visual_number: str | None = None
    group_id: str | None = None
    language: str | None = None
    default_profile_type: ProfileType | None = None
    energy_contract: tuple[str, str | None] | None = None
    """(supplier_name, contract_id) of the driver's own energy contract."""


def parse_cdr_token(value: object, path: str) -> CdrToken:
    o = j.obj(value, path)
    return CdrToken(
        country_code=j.need_text(o, "country_code", path, max_len=2),
        party_id=j.need_text(o, "party_id", path, max_len=3),
        uid=j.need_text(o, "uid", path, max_len=36),
        type=j.need_member(TokenType, o, "type", path),
        contract_id=j.need_text(o, "contract_id", path, max_len=36),
    )


def cdr_token_to_json(token: CdrToken) -> dict[str, object]:
    return {
        "country_code": token.country_code,
        "party_id": token.party_id,
        "uid": token.uid,
        "type": token.type.name,
        "contract_id": token.contract_id,
    }


def parse_charging_period(value: object, path: str) -> CdrChargingPeriod:
    o = j.obj(value, path)
    raw = j.items(o.get("dimensions"), f"{path}.dimensions")
    if not raw:
        raise OcpiFieldError(f"{path}.dimensions", "empty")
    dimensions = []
    for n, d in enumerate(raw):
        where = f"{path}.dimensions[{n}]"
        od = j.obj(d, where)
        kind = j.need_member(CdrDimensionType, od, "type", where)
        volume = j.need_scaled(od, "volume", where, VOLUME_DIGITS)
        dimensions.append(CdrDimension(type=kind, volume=volume))
    return CdrChargingPeriod(
        start_date_time=j.need_timestamp(o, "start_date_time", path),
        dimensions=tuple(dimensions),
        tariff_id=j.text(o, "tariff_id", path, max_len=36, required=False),
    )


def charging_period_to_json(period: CdrChargingPeriod) -> dict[str, object]:
    out: dict[str, object] = {
        "start_date_time": j.format_timestamp(period.start_date_time),
        "dimensions": [
            {"type": d.type.name, "volume": j.decimal(d.volume, VOLUME_DIGITS)}
            for d in period.dimensions
        ],
    }
    if period.tariff_id is not None:
        out["tariff_id"] = period.tariff_id
    return out


def parse_session(value: object, path: str = "session") -> Session:
    o = j.obj(value, path)
    currency = j.need_text(o, "currency", path, max_len=3)
    j.currency_digits(currency)
    periods = j.items(o.get("charging_periods"), f"{path}.charging_periods", required=False)
    return Session(
        country_code=j.need_text(o, "country_code", path, max_len=2),
        party_id=j.need_text(o, "party_id", path, max_len=3),
        id=j.need_text(o, "id", path, max_len=36),
        start_date_time=j.need_timestamp(o, "start_date_time", path),
        end_date_time=j.timestamp(o, "end_date_time", path, required=False),
        kwh=j.need_scaled(o, "kwh", path, VOLUME_DIGITS),
        cdr_token=parse_cdr_token(o.get("cdr_token"), f"{path}.cdr_token"),
        auth_method=j.need_member(AuthMethod, o, "auth_method", path),
        authorization_reference=j.text(
            o, "authorization_reference", path, max_len=36, required=False
        ),
        location_id=j.need_text(o, "location_id", path, max_len=36),
        evse_uid=j.need_text(o, "evse_uid", path, max_len=36),
        connector_id=j.need_text(o, "connector_id", path, max_len=36),
        meter_id=j.text(o, "meter_id", path, max_len=255, required=False),
        currency=currency,
        charging_periods=tuple(
            parse_charging_period(p, f"{path}.charging_periods[{n}]") for n, p in enumerate(periods)
        ),
        total_cost=None
        if o.get("total_cost") is None
        else parse_price(o["total_cost"], f"{path}.total_cost", currency),
        status=j.need_member(SessionStatus, o, "status", path),
        last_updated=j.need_timestamp(o, "last_updated", path),
    )


def session_to_json(session: Session) -> dict[str, object]:
    out: dict[str, object] = {
        "country_code": session.country_code,
        "party_id": session.party_id,
        "id": session.id,
        "start_date_time": j.format_timestamp(session.start_date_time),
        "kwh": j.decimal(session.kwh, VOLUME_DIGITS),
        "cdr_token": cdr_token_to_json(session.cdr_token),
        "auth_method": session.auth_method.name,
        "location_id": session.location_id,
        "evse_uid": session.evse_uid,
        "connector_id": session.connector_id,
        "currency": session.currency,
        "status": session.status.name,
        "last_updated": j.format_timestamp(session.last_updated),
    }
    if session.charging_periods:
        out["charging_periods"] = [charging_period_to_json(p) for p in session.charging_periods]
    if session.end_date_time is not None:
        out["end_date_time"] = j.format_timestamp(session.end_date_time)
    if session.authorization_reference is not None:
        out["authorization_reference"] = session.authorization_reference
    if session.meter_id is not None:
        out["meter_id"] = session.meter_id
    if session.total_cost is not None:
        out["total_cost"] = price_to_json(session.total_cost, session.currency)
    return out


def parse_token(value: object, path: str = "token") -> Token:
    o = j.obj(value, path)
    contract = o.get("energy_contract")
    energy_contract = None
    if contract is not None:
        oc = j.obj(contract, f"{path}.energy_contract")
        energy_contract = (
            j.need_text(oc, "supplier_name", f"{path}.energy_contract", max_len=64),
            j.text(oc, "contract_id", f"{path}.energy_contract", max_len=64, required=False),
        )
    return Token(
        country_code=j.need_text(o, "country_code", path, max_len=2),
        party_id=j.need_text(o, "party_id", path, max_len=3),
        uid=j.need_text(o, "uid", path, max_len=36),
        type=j.need_member(TokenType, o, "type", path),
        contract_id=j.need_text(o, "contract_id", path, max_len=36),
        visual_number=j.text(o, "visual_number", path, max_len=64, required=False),
        issuer=j.need_text(o, "issuer", path, max_len=64),
        group_id=j.text(o, "group_id", path, max_len=36, required=False),
        valid=j.boolean(o, "valid", path),
        whitelist=j.need_member(WhitelistType, o, "whitelist", path),
        language=j.text(o, "language", path, max_len=2, required=False),
        default_profile_type=j.member(ProfileType, o, "default_profile_type", path, required=False),
        energy_contract=energy_contract,
        last_updated=j.need_timestamp(o, "last_updated", path),
    )


def token_to_json(token: Token) -> dict[str, object]:
    out: dict[str, object] = {
        "country_code": token.country_code,
        "party_id": token.party_id,
        "uid": token.uid,
        "type": token.type.name,
        "contract_id": token.contract_id,
        "issuer": token.issuer,
        "valid": token.valid,
        "whitelist": token.whitelist.name,
        "last_updated": j.format_timestamp(token.last_updated),
    }
    optional = {
        "visual_number": token.visual_number,
        "group_id": token.group_id,
        "language": token.language,
        "default_profile_type": None
        if token.default_profile_type is None
        else token.default_profile_type.name,
    }
    out.update((k, v) for k, v in optional.items() if v is not None)
    if token.energy_contract is not None:
        supplier, contract_id = token.energy_contract
        out["energy_contract"] = {"supplier_name": supplier} | (
            {} if contract_id is None else {"contract_id": contract_id}
        )
    return out


def patch_session(session: Session, patch: object) -> Session:
    """`session` with an OCPI PATCH object's fields applied (the result parsed strictly)."""
    return parse_session(session_to_json(session) | dict(j.obj(patch, "patch")))


def patch_token(token: Token, patch: object) -> Token:
    """`token` with an OCPI PATCH object's fields applied (the result parsed strictly)."""
    return parse_token(token_to_json(token) | dict(j.obj(patch, "patch")))
