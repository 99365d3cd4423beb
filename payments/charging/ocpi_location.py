"""The location of a session as a CDR freezes it (OCPI 2.2.1 `CdrLocation`), parsed strictly:
connector standard, format and power type must be values OCPI defines."""

from __future__ import annotations

from dataclasses import dataclass

from . import ocpi_json as j
from .errors import UnknownEnumError

CONNECTOR_STANDARDS = frozenset(
    {"CHADEMO", "CHAOJI", "GBT_AC", "GBT_DC", "TESLA_R", "TESLA_S"}
    | {f"DOMESTIC_{c}" for c in "ABCDEFGHIJKLMNO"}
    | {f"IEC_60309_2_{s}" for s in ("single_16", "three_16", "three_32", "three_64")}
    | {f"IEC_62196_{t}" for t in ("T1", "T1_COMBO", "T2", "T2_COMBO", "T3A", "T3C")}
    | {f"NEMA_{n}" for n in ("5_20", "6_30", "6_50", "10_30", "10_50", "14_30", "14_50")}
    | {"PANTOGRAPH_BOTTOM_UP", "PANTOGRAPH_TOP_DOWN"}
)
CONNECTOR_FORMATS = frozenset({"SOCKET", "CABLE"})
POWER_TYPES = frozenset({"AC_1_PHASE", "AC_2_PHASE", "AC_2_PHASE_SPLIT", "AC_3_PHASE", "DC"})


@dataclass(frozen=True, slots=True, kw_only=True)
class CdrLocation:
    """Where the session took place, frozen into the CDR."""

    id: str
    address: str
    city: str
    country: str
    """ISO 3166 alpha-3."""
    latitude: str
    longitude: str
    evse_uid: str
    evse_id: str
    connector_id: str
    connector_standard: str
    """An OCPI ConnectorType (`CONNECTOR_STANDARDS`)."""
    connector_format: str
    """SOCKET or CABLE."""
    connector_power_type: str
    """An OCPI PowerType (`POWER_TYPES`)."""
    name: str | None = None
    postal_code: str | None = None
    state: str | None = None


def _one_of(o: j.Json, key: str, path: str, allowed: frozenset[str], enum: str) -> str:
    value = j.need_text(o, key, path, max_len=32)
    if value not in allowed:
        raise UnknownEnumError(f"{path}.{key}", value, enum)
    return value


def parse_cdr_location(value: object, path: str) -> CdrLocation:
    o = j.obj(value, path)
    coordinates = j.obj(o.get("coordinates"), f"{path}.coordinates")
    return CdrLocation(
        id=j.need_text(o, "id", path, max_len=36),
        name=j.text(o, "name", path, max_len=255, required=False),
        address=j.need_text(o, "address", path, max_len=45),
        city=j.need_text(o, "city", path, max_len=45),
        postal_code=j.text(o, "postal_code", path, max_len=10, required=False),
        state=j.text(o, "state", path, max_len=20, required=False),
        country=j.need_text(o, "country", path, max_len=3),
        latitude=j.need_text(coordinates, "latitude", f"{path}.coordinates", max_len=10),
        longitude=j.need_text(coordinates, "longitude", f"{path}.coordinates", max_len=11),
        evse_uid=j.need_text(o, "evse_uid", path, max_len=36),
        evse_id=j.need_text(o, "evse_id", path, max_len=48),
        connector_id=j.need_text(o, "connector_id", path, max_len=36),
        connector_standard=_one_of(
            o, "connector_standard", path, CONNECTOR_STANDARDS, "ConnectorType"
        ),
        connector_format=_one_of(o, "connector_format", path, CONNECTOR_FORMATS, "ConnectorFormat"),
        connector_power_type=_one_of(o, "connector_power_type", path, POWER_TYPES, "PowerType"),
    )


def cdr_location_to_json(location: CdrLocation) -> dict[str, object]:
    out: dict[str, object] = {
        "id": location.id,
        "address": location.address,
        "city": location.city,
        "country": location.country,
        "coordinates": {"latitude": location.latitude, "longitude": location.longitude},
        "evse_uid": location.evse_uid,
        "evse_id": location.evse_id,
        "connector_id": location.connector_id,
        "connector_standard": location.connector_standard,
        "connector_format": location.connector_format,
        "connector_power_type": location.connector_power_type,
    }
    optional = {"name": location.name, "postal_code": location.postal_code, "state": location.state}
    out.update((k, v) for k, v in optional.items() if v is not None)
    return out
