"""The OpenAPI 3.1 document of the HTTP API (`GET /openapi.json`): every route, its parameters
with the limits the server enforces, its bodies, responses and error codes, and the events of
the event stream. The wire conventions it describes are those of `_api_schema.py`."""

from __future__ import annotations

from typing import Any

from . import _api_schema
from ._api_admin import MAX_HOST_LENGTH
from ._api_schema import API_ERROR_CODES, TANGLE_ERROR_CODES
from .codec import U32_MAX
from .message import MAX_MESSAGE_SIZE, MAX_PARENTS

_HEX = {"type": "string", "pattern": "^([0-9a-fA-F]{2})*$"}
_MESSAGE_HEX = {
    "type": "string",
    "pattern": "^([0-9a-fA-F]{2})+$",
    "maxLength": 2 * MAX_MESSAGE_SIZE,
    "description": "bytes in hex, at least one",
}
_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
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
            "conflict": {
                "enum": [
                    "none",
                    "input_not_found",
                    "input_spent",
                    "amount_mismatch",
                    "unlock_address_mismatch",
                ]
            },
        }
    ),
    "Tips": _object({"tips": _array(_ID)}),
    "Milestone": _object(
        {
            "milestone_id": _ID,
            "index": _UINT,
            "timestamp_ms": _UINT,
            "previous": _ID,
            "parents": _array(_ID),
            "applied_merkle_root": _ID,
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
}


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(schema)}}}


def _errors(*codes: str) -> dict[str, Any]:
    """Error responses by status, each naming the codes it can carry."""
    by_status: dict[int, list[str]] = {}
    for code in ("internal_error", *codes):
        by_status.setdefault(API_ERROR_CODES[code][0], []).append(code)
    return {
        str(status): {"description": "codes: " + ", ".join(sorted(found)), **_json("Error")}
        for status, found in sorted(by_status.items())
    }


def _refused() -> dict[str, Any]:
    return {
        "400": {
            "description": "the node refused the message; codes: " + ", ".join(_TANGLE_CODES),
            **_json("Error"),
        },
        "503": {"description": "the node halted or its storage failed", **_json("Error")},
    }


def _op(
    summary: str,
    status: int,
    schema: str | None,
    *codes: str,
    params: tuple[dict[str, Any], ...] = (),
    body: dict[str, Any] | None = None,
    admin: bool = False,
    refusals: bool = False,
) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "success"}
    if schema is not None:
        ok.update(_json(schema))
    responses = {str(status): ok, **(_refused() if refusals else {})}
    for status_key, response in _errors(*codes).items():
        if status_key in responses:  # one status, two kinds of refusal: name both
            both = f"{responses[status_key]['description']}; {response['description']}"
            response = {**response, "description": both}
        responses[status_key] = response
    if admin:
        responses.update(_errors("unauthorized", "forbidden"))
    op: dict[str, Any] = {"summary": summary, "responses": dict(sorted(responses.items()))}
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    if admin:
        op["security"] = [{"bearer": []}]
    return op


def _path_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


_MESSAGE_ID = _path_param("message_id", _ID)
_ADDRESS = _path_param("address", _ADDRESS_TEXT)
_BAD_BODY = ("invalid_json", "invalid_body", "invalid_hex", "body_too_large")


def openapi_document(*, keep_milestones_minimum: int) -> dict[str, Any]:
    """The OpenAPI 3.1 description of every endpoint `create_app` serves (the batch endpoint
    and the event stream's events are added by `with_batch` and `with_events`); pruning must
    keep at least `keep_milestones_minimum` milestones (the network's max depth, and one)."""
    prune = _object(
        {
            "keep_milestones": {
                "type": "integer",
                "minimum": keep_milestones_minimum,
                "maximum": U32_MAX,
            }
        }
    )
    index = _path_param("index", {"type": "integer", "minimum": 1, "maximum": U32_MAX})
    paths: dict[str, Any] = {
        "/api/v1/info": {"get": _op("Node and network status", 200, "Info")},
        "/api/v1/messages": {
            "post": _op(
                "Submit a message with its proof-of-work",
                201,
                "Submitted",
                *_BAD_BODY,
                "unsupported_media_type",
                body={
                    "application/octet-stream": {
                        "schema": {"type": "string", "contentMediaType": "application/octet-stream"}
                    },
                    "application/json": {"schema": _ref("SubmitJson")},
                },
                refusals=True,
            )
        },
        "/api/v1/messages/pow": {
            "post": _op(
                "Submit a payload; the node chooses parents and does the proof-of-work",
                201,
                "Submitted",
                *_BAD_BODY,
                "pow_rate_limited",
                "pow_in_flight",
                "pow_capacity",
                "node_unsynced",
                body={"application/json": {"schema": _ref("PowRequest")}},
                refusals=True,
            )
        },
        "/api/v1/messages/{message_id}": {
            "get": _op(
                "A message, decoded (JSON) or raw (Accept: application/octet-stream)",
                200,
                "Message",
                "invalid_id",
                "unknown_message",
                params=(_MESSAGE_ID,),
            )
        },
        "/api/v1/messages/{message_id}/metadata": {
            "get": _op(
                "Solidity and confirmation of a message",
                200,
                "Metadata",
                "invalid_id",
                "unknown_message",
                params=(_MESSAGE_ID,),
            )
        },
        "/api/v1/tips": {
            "get": _op(
                "Parents a new message should approve (URTS)",
                200,
                "Tips",
                "invalid_parameter",
                "node_unsynced",
                params=(
                    {
                        "name": "count",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PARENTS},
                    },
                ),
            )
        },
        "/api/v1/addresses/{address}/outputs": {
            "get": _op(
                "Unspent outputs of an address",
                200,
                "Outputs",
                "invalid_address",
                params=(_ADDRESS,),
            )
        },
        "/api/v1/addresses/{address}/balance": {
            "get": _op(
                "Balance of an address", 200, "Balance", "invalid_address", params=(_ADDRESS,)
            )
        },
        "/api/v1/channels/{channel_id}": {
            "get": _op(
                "A payment channel's output on the ledger (gone once it is settled)",
                200,
                "Channel",
                "invalid_id",
                "unknown_channel",
                params=(_path_param("channel_id", _ID),),
            )
        },
        "/api/v1/milestones/latest": {
            "get": _op("The confirmed milestone", 200, "Milestone", "unknown_milestone")
        },
        "/api/v1/milestones/{index}": {
            "get": _op(
                "An applied milestone",
                200,
                "Milestone",
                "invalid_parameter",
                "unknown_milestone",
                params=(index,),
            )
        },
        "/api/v1/events": {
            "get": {
                **_op(
                    "Server-sent events: `milestone` for every confirmed milestone, "
                    "`transaction` for each confirmed or conflicting transaction (only those "
                    "touching one of the `address` parameters, if any are given), `dropped` "
                    "when the node drops a client that reads too slowly; `:` comments keep "
                    "the connection alive",
                    200,
                    None,
                    "invalid_address",
                    "invalid_parameter",
                    "too_many_streams",
                    params=(
                        {
                            "name": "address",
                            "in": "query",
                            "required": False,
                            "schema": {**_array(_ADDRESS_TEXT), "maxItems": 16},
                            "style": "form",
                            "explode": True,
                        },
                    ),
                ),
            }
        },
        "/metrics": {"get": _op("Prometheus text exposition", 200, None)},
        "/openapi.json": {"get": _op("This document", 200, None)},
        "/api/v1/admin/peers": {
            "get": _op("Connected and configured peers", 200, "Peers", "not_found", admin=True),
            "post": _op(
                "Add a peer",
                201,
                None,
                *_BAD_BODY,
                "invalid_parameter",
                "not_found",
                body={"application/json": {"schema": _ref("AddPeer")}},
                admin=True,
            ),
        },
        "/api/v1/admin/peers/{peer}": {
            "delete": _op(
                "Remove a peer",
                204,
                None,
                "unknown_peer",
                "not_found",
                params=(_path_param("peer", {"type": "string"}),),
                admin=True,
            )
        },
        "/api/v1/admin/prune": {
            "post": _op(
                "Forget messages of milestones older than `keep_milestones`",
                200,
                "Pruned",
                *_BAD_BODY,
                "invalid_parameter",
                body={"application/json": {"schema": prune}},
                admin=True,
            )
        },
        "/api/v1/admin/snapshot": {
            "get": _op(
                "The ledger snapshot at the confirmed milestone (docs/PROTOCOL.md section 8)",
                200,
                None,
                admin=True,
            )
        },
    }
    paths["/api/v1/admin/snapshot"]["get"]["responses"]["200"]["content"] = {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
    }
    paths["/metrics"]["get"]["responses"]["200"]["content"] = {
        "text/plain": {"schema": {"type": "string"}}
    }
    paths["/openapi.json"]["get"]["responses"]["200"]["content"] = {
        "application/json": {"schema": {"type": "object"}}
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tanglepay node API",
            "version": "1.0.0",
            "description": _api_schema.__doc__,
        },
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
