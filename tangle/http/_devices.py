"""The device registry and proofs in the HTTP API: JSON views of registry records, and the JSON
Schemas of records, devices and inclusion paths (merged into the OpenAPI components by
`_components.py`)."""

from __future__ import annotations

from typing import Any, Final

from tangle.protocol.device import (
    AdmitIssuer,
    DeviceRecord,
    Quarantine,
    Register,
    RotateKey,
    SetStatus,
    Update,
)


def render_body(record: DeviceRecord) -> dict[str, Any]:
    """The record's body: its kind and fields (keys, ids and hashes in hex)."""
    body = record.body
    if isinstance(body, AdmitIssuer):
        return {
            "kind": "admit_issuer",
            "issuer": body.issuer.hex(),
            "role": body.role.name.lower(),
            "admitted": body.admitted,
            "serial": body.serial,
            "name": body.name.hex(),
        }
    if isinstance(body, Register):
        return {
            "kind": "register",
            "device_id": body.device_id.hex(),
            "device_key": body.device_key.hex(),
            "address_hex": body.address.hex(),
            "maker": body.maker.hex(),
            "model": body.model.hex(),
            "capability": body.capability.name.lower(),
            "gateway": body.gateway.hex(),
            "attributes_hash": body.attributes_hash.hex(),
            "uri": body.uri.hex(),
        }
    common: dict[str, Any] = {"device_id": body.device_id.hex(), "serial": body.serial}
    if isinstance(body, Update):
        return {
            "kind": "update",
            **common,
            "attributes_hash": body.attributes_hash.hex(),
            "uri": body.uri.hex(),
        }
    if isinstance(body, RotateKey):
        return {
            "kind": "rotate_key",
            **common,
            "new_key": body.new_key.hex(),
            "new_address_hex": body.new_address.hex(),
        }
    if isinstance(body, SetStatus):
        return {"kind": "set_status", **common, "status": body.status.name.lower()}
    if isinstance(body, Quarantine):
        return {
            "kind": "quarantine",
            **common,
            "reason": body.reason,
            "evidence_hash": body.evidence_hash.hex(),
            "expires_after": body.expires_after,
        }
    return {"kind": "lift_quarantine", **common}


def render_record(record: DeviceRecord) -> dict[str, Any]:
    return {
        "network_id": str(record.network_id),
        "body": render_body(record),
        "signatures": [
            {"public_key": s.public_key.hex(), "signature": s.signature.hex()}
            for s in record.signatures
        ],
    }


_ID: Final = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_HEX: Final = {"type": "string", "pattern": "^([0-9a-f]{2})*$"}
_UINT: Final = {"type": "integer", "minimum": 0}


def _object(fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": sorted(fields), "properties": fields}


_NULLABLE_ID: Final = {"oneOf": [_ID, {"type": "null"}]}

_PATH: Final = _object({"index": _UINT, "size": _UINT, "siblings": {"type": "array", "items": _ID}})

DEVICE_SCHEMAS: Final[dict[str, Any]] = {
    "Inclusion": _object(
        {
            "message_id": _ID,
            "milestone_index": _UINT,
            "milestone_id": _ID,
            "milestone_message_id": _ID,
            "inclusion_root": _ID,
            "path": _PATH,
        }
    ),
    "Device": _object(
        {
            "ledger_index": _UINT,
            "registry_root": _ID,
            "device_id": _ID,
            "status": {"enum": ["active", "suspended", "revoked"]},
            "key": _ID,
            "address": {"type": "string"},
            "address_hex": _ID,
            "maker": _ID,
            "model": _HEX,
            "capability": {"enum": ["full", "constrained"]},
            "gateway": _NULLABLE_ID,
            "attributes_hash": _ID,
            "uri": _HEX,
            "serial": _UINT,
            "registered_at": _UINT,
            "updated_at": _UINT,
            "endorsements": {"type": "array", "items": _ID},
            "quarantine_serial": _UINT,
            "quarantine": {
                "oneOf": [
                    _object(
                        {
                            "in_force": {"type": "boolean"},
                            "reason": _UINT,
                            "evidence_hash": _ID,
                            "since": _UINT,
                            "expires_after": _UINT,
                        }
                    ),
                    {"type": "null"},
                ]
            },
            "entry": _HEX,
            "history": {
                "type": "array",
                "items": _object(
                    {
                        "milestone_index": _UINT,
                        "status": {"enum": ["active", "suspended", "revoked"]},
                        "key": _ID,
                        "serial": _UINT,
                        "quarantined": {"type": "boolean"},
                    }
                ),
            },
            "registry_path": {"oneOf": [_PATH, {"type": "null"}]},
        }
    ),
    "DeviceRecord": _object(
        {
            "network_id": {"type": "string", "pattern": "^[0-9]{1,20}$"},
            "body": {
                "type": "object",
                "required": ["kind"],
                "properties": {
                    "kind": {
                        "enum": [
                            "admit_issuer",
                            "register",
                            "update",
                            "rotate_key",
                            "set_status",
                            "quarantine",
                            "lift_quarantine",
                        ]
                    }
                },
            },
            "signatures": {
                "type": "array",
                "items": _object({"public_key": _ID, "signature": _HEX}),
            },
        }
    ),
}
