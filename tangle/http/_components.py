"""The JSON Schemas of the HTTP API's bodies (the `components` of its OpenAPI document, see
`_api_openapi.py`), and the building blocks the document's other parts use."""

from __future__ import annotations

from typing import Any

from tangle.ledger.ledger import Conflict
from tangle.protocol.message import MAX_MESSAGE_SIZE

from ._admin import MAX_HOST_LENGTH
from ._devices import DEVICE_SCHEMAS
from ._schema import API_ERROR_CODES, TANGLE_ERROR_CODES

_HEX = {"type": "string", "pattern": "^([0-9a-fA-F]{2})*$"}
_MESSAGE_HEX = {
    "type": "string",
    "pattern": "^([0-9a-fA-F]{2})+$",
    "maxLength": 2 * MAX_MESSAGE_SIZE,
    "description": "bytes in hex, at least one",
}
_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
_OUTPUT_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{68}$"}
_U64 = {"type": "string", "pattern": "^[0-9]{1,20}$", "description": "u64, decimal"}
_UINT = {"type": "integer", "minimum": 0}
_BECH32 = {
    "type": "string",
    "pattern": "^[a-z]{1,83}1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$",
    "description": "bech32m address with the node's network prefix",
}
_ADDRESS_FIELDS = {"address": _BECH32, "address_hex": _ID}
_ADDRESS_TEXT = {
    "anyOf": [
        _ID,
        {
            **_BECH32,
            "pattern": "^([a-z]{1,83}1[02-9ac-hj-np-z]{58}|[A-Z]{1,83}1[02-9AC-HJ-NP-Z]{58})$",
        },
    ],
    "description": "an address: 64 hex digits, or bech32m with the node's network prefix",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


_TANGLE_CODES = sorted(set(TANGLE_ERROR_CODES.values()))

_SCHEMAS: dict[str, Any] = {
    "Error": _object(
        {
            "error": _object(
                {
                    "code": {"type": "string", "enum": sorted({*API_ERROR_CODES, *_TANGLE_CODES})},
                    "message": {"type": "string"},
                }
            )
        }
    ),
    "Info": _object(
        {
            "network_id": _U64,
            "protocol_version": _UINT,
            "confirmed_milestone_index": _UINT,
            "latest_milestone_index": _UINT,
            "latest_milestone_timestamp_ms": _nullable(_UINT),
            "ledger_state_hash": _ID,
            "pruned_index": _UINT,
            "peers_configured": {
                **_nullable(_UINT),
                "description": "peers this node dials (configured or added); null without peering",
            },
            "peers_connected": {
                **_nullable(_UINT),
                "description": "peers with a connection up now, either way; null without peering",
            },
            "healthy": {"type": "boolean"},
            "work_per_kib": _UINT,
            "min_output_amount": _U64,
        }
    ),
    "SubmitJson": _object({"message": _MESSAGE_HEX}),
    "PowRequest": _object({"payload": _MESSAGE_HEX}),
    "Submitted": _object({"id": _ID}),
    "Output": {
        "oneOf": [
            _object({"type": {"const": "basic"}, **_ADDRESS_FIELDS, "amount": _U64}),
            _object(
                {
                    "type": {"const": "channel"},
                    **_ADDRESS_FIELDS,
                    "amount": _U64,
                    "channel_id": _ID,
                    "payer": _ID,
                    "payee": _ID,
                    "bidirectional": {"type": "boolean"},
                    "challenge_period": _UINT,
                    "expiry": _UINT,
                    "sequence": _U64,
                    "payee_balance": _U64,
                    "closing_since": _UINT,
                }
            ),
        ]
    },
    "Payload": {
        "oneOf": [
            _object({"type": {"const": "tagged_data"}, "tag": _HEX, "data": _HEX}),
            _object(
                {
                    "type": {"const": "transaction"},
                    "transaction_id": _ID,
                    "network_id": _U64,
                    "inputs": _array({"type": "string", "pattern": "^[0-9a-f]{68}$"}),
                    "outputs": _array(_ref("Output")),
                    "memo": _HEX,
                    "unlocks": _array({"type": "object"}),
                }
            ),
            {"allOf": [_object({"type": {"const": "milestone"}}), _ref("Milestone")]},
            {"allOf": [_object({"type": {"const": "device_record"}}), _ref("DeviceRecord")]},
        ]
    },
    "Message": _object(
        {
            "id": _ID,
            "protocol_version": _UINT,
            "network_id": _U64,
            "parents": _array(_ID),
            "payload": _ref("Payload"),
            "nonce": _U64,
            "raw": _HEX,
        }
    ),
    "Metadata": _object(
        {
            "id": _ID,
            "solid": {"type": "boolean"},
            "referenced_by": _nullable(_UINT),
            "inclusion": {"enum": ["no_transaction", "included", "conflicting"]},
            "conflict": {"enum": [c.name.lower() for c in Conflict]},
        }
    ),
    "Tips": _object({"tips": _array(_ID)}),
    "Alarms": _object(
        {
            "applying_milestones": {"type": "boolean"},
            "equivocations": _array(
                _object(
                    {
                        "index": _UINT,
                        "milestone_ids": {
                            "type": "array",
                            "items": {"type": "string", "pattern": "^([0-9a-f]{64})?$"},
                            "minItems": 2,
                            "maxItems": 2,
                        },
                    }
                )
            ),
        }
    ),
    "Milestone": _object(
        {
            "milestone_id": _ID,
            "index": _UINT,
            "timestamp_ms": _UINT,
            "previous": _ID,
            "parents": _array(_ID),
            "applied_merkle_root": _ID,
            "inclusion_root": _ID,
            "registry_root": _ID,
            "key_set_change": _nullable({"type": "object"}),
            "signatures": _array(_object({"public_key": _ID, "signature": _HEX})),
        },
        {"message_id": _ID},
    ),
    "Outputs": _object(
        {
            **_ADDRESS_FIELDS,
            "ledger_index": _UINT,
            "outputs": _array(_ref("UnspentOutput")),
        }
    ),
    "UnspentOutput": {
        "allOf": [
            _object(
                {"output_id": {"type": "string"}, "transaction_id": _ID, "output_index": _UINT}
            ),
            _ref("Output"),
        ]
    },
    "Channel": _object({"ledger_index": _UINT, "output": _ref("UnspentOutput")}),
    "StoredOutput": _object(
        {
            "ledger_index": _UINT,
            "output": _ref("UnspentOutput"),
            "created_at": _UINT,
            "spent_by": _nullable(_ID),
            "spent_at": _nullable(_UINT),
        }
    ),
    "Balance": _object(
        {**_ADDRESS_FIELDS, "ledger_index": _UINT, "balance": _U64, "output_count": _UINT}
    ),
    "Peers": _object({"peers": _array({"type": "object"})}),
    "AddPeer": _object(
        {
            "host": {"type": "string", "minLength": 1, "maxLength": MAX_HOST_LENGTH},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        }
    ),
    "Pruned": _object(
        {"pruned_index": _UINT, "messages": _UINT, "spent_outputs": _UINT, "window_dropped": _UINT}
    ),
    **DEVICE_SCHEMAS,
}
