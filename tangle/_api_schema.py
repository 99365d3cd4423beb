"""The wire format of the HTTP API: error codes, JSON views of ledger objects, and the OpenAPI
document that describes both.

Conventions of every JSON body: ids, addresses, keys and byte strings are lowercase hex without a
prefix; amounts, network ids and nonces (u64 values that can exceed 2**53) are decimal strings;
indexes and timestamps are JSON numbers. Every error is `{"error": {"code": ..., "message": ...}}`
with one of the codes below; codes are stable, messages are for people.

A refused message's code is derived from its `TangleError` class: the class name without its
`Error` suffix, in snake case (`InsufficientWorkError` -> `insufficient_work`,
`DecodeError` -> `decode`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from tangle import errors
from tangle.protocol.channel import ChannelOutput
from tangle.protocol.message import PROTOCOL_VERSION
from tangle.protocol.payload import TaggedData
from tangle.protocol.transaction import ReferenceUnlock, SignatureUnlock, Transaction

if TYPE_CHECKING:
    from tangle.ledger.records import MilestoneRecord
    from tangle.protocol.ids import MessageId, OutputId
    from tangle.protocol.message import Parsed
    from tangle.protocol.milestone import Milestone
    from tangle.protocol.payload import Payload
    from tangle.protocol.transaction import Output, Unlock
    from tangle.storage.storage import MessageMetadata

# -- error codes -------------------------------------------------------------------------------


def error_code_of(cls: type[errors.TangleError]) -> str:
    """`InsufficientWorkError` -> `insufficient_work`."""
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*", cls.__name__.removesuffix("Error"))
    return "_".join(word.lower() for word in words) or "tangle"


TANGLE_ERROR_CODES: Final[dict[type[errors.TangleError], str]] = {
    cls: error_code_of(cls)
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.TangleError)
}
"""The code of each error class of `tangle.errors` (HTTP 400 unless in `SERVER_SIDE_ERRORS`);
errors defined elsewhere follow the same rule."""

SERVER_SIDE_ERRORS: Final = (
    errors.NodeHaltedError,
    errors.StorageError,
    errors.NonceSpaceExhaustedError,
    errors.WorkCancelledError,
)
"""Errors that are the node's condition, not the request's fault: HTTP 503."""

API_ERROR_CODES: Final[dict[str, tuple[int, str]]] = {
    "bad_request": (400, "the request is malformed in a way no other code names"),
    "invalid_json": (400, "the body is not a JSON document"),
    "invalid_body": (400, "the JSON body lacks a field or has one of the wrong type"),
    "invalid_hex": (400, "a body field is not lowercase or uppercase hex of whole bytes"),
    "invalid_id": (400, "an id or address in the path or query is not 64 hex digits"),
    "invalid_parameter": (400, "a path or query parameter is out of range"),
    "invalid_header": (400, "a header (Content-Length) cannot be read"),
    "unauthorized": (401, "an admin endpoint was called without a bearer token"),
    "forbidden": (403, "the bearer token is wrong"),
    "not_found": (404, "no such route"),
    "unknown_message": (404, "no message with this id is stored"),
    "unknown_milestone": (404, "no milestone with this index was applied"),
    "unknown_channel": (404, "no channel with this id is open or closing on the ledger"),
    "unknown_peer": (404, "no such peer"),
    "method_not_allowed": (405, "the route exists, the method does not"),
    "body_too_large": (413, "the body is over the size limit (checked while it is read)"),
    "unsupported_media_type": (415, "the body is neither application/json nor octet-stream"),
    "pow_rate_limited": (429, "this client used up its proof-of-work allowance (see Retry-After)"),
    "pow_in_flight": (429, "this client already has a proof-of-work running"),
    "pow_capacity": (429, "the node runs as many proofs-of-work as it allows"),
    "too_many_streams": (429, "the node serves as many event streams as it allows"),
    "internal_error": (500, "a bug; the node keeps running"),
    "node_unsynced": (503, "the node is catching up with the network (see Retry-After)"),
}
"""Codes of errors the API itself raises: code -> (HTTP status, meaning)."""


def tangle_error_code(exc: errors.TangleError) -> str:
    return error_code_of(type(exc))


def tangle_error_status(exc: errors.TangleError) -> int:
    return 503 if isinstance(exc, SERVER_SIDE_ERRORS) else 400


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


# -- JSON views --------------------------------------------------------------------------------


def render_payload(payload: Payload) -> dict[str, Any]:
    if isinstance(payload, TaggedData):
        return {"type": "tagged_data", "tag": payload.tag.hex(), "data": payload.data.hex()}
    if isinstance(payload, Transaction):
        essence = payload.essence
        return {
            "type": "transaction",
            "transaction_id": payload.id.hex(),
            "network_id": str(essence.network_id),
            "inputs": [i.hex() for i in essence.inputs],
            "outputs": [_render_output_body(o) for o in essence.outputs],
            "memo": essence.memo.hex(),
            "unlocks": [_render_unlock(u) for u in payload.unlocks],
        }
    return {"type": "milestone", **render_milestone_payload(payload)}


def render_milestone_payload(milestone: Milestone) -> dict[str, Any]:
    essence = milestone.essence
    change = essence.key_set_change
    return {
        "milestone_id": milestone.id.hex(),
        "index": essence.index,
        "timestamp_ms": essence.timestamp_ms,
        "previous": essence.previous.hex(),
        "parents": [p.hex() for p in essence.parents],
        "applied_merkle_root": essence.applied_merkle_root.hex(),
        "key_set_change": None
        if change is None
        else {
            "activation_index": change.activation_index,
            "threshold": change.key_set.threshold,
            "public_keys": [k.hex() for k in change.key_set.public_keys],
        },
        "signatures": [
            {"public_key": s.public_key.hex(), "signature": s.signature.hex()}
            for s in milestone.signatures
        ],
    }


def render_message(parsed: Parsed) -> dict[str, Any]:
    message = parsed.message
    return {
        "id": parsed.id.hex(),
        "protocol_version": PROTOCOL_VERSION,
        "network_id": str(message.network_id),
        "parents": [p.hex() for p in message.parents],
        "payload": render_payload(message.payload),
        "nonce": str(message.nonce),
        "raw": parsed.raw.hex(),
    }


def render_metadata(message_id: MessageId, metadata: MessageMetadata) -> dict[str, Any]:
    return {
        "id": message_id.hex(),
        "solid": metadata.solid,
        "referenced_by": metadata.referenced_by,
        "inclusion": metadata.inclusion.name.lower(),
        "conflict": metadata.conflict.name.lower(),
    }


def render_milestone(record: MilestoneRecord, milestone: Milestone) -> dict[str, Any]:
    return {**render_milestone_payload(milestone), "message_id": record.message_id.hex()}


def render_output(output_id: OutputId, output: Output) -> dict[str, Any]:
    return {
        "output_id": output_id.hex(),
        "transaction_id": output_id.transaction_id.hex(),
        "output_index": output_id.output_index,
        **_render_output_body(output),
    }


def _render_output_body(output: Output) -> dict[str, Any]:
    """An output's fields; a channel's `address` is its channel id (what it is indexed by)."""
    body: dict[str, Any] = {
        "type": "basic",
        "address": output.address.hex(),
        "amount": str(output.amount),
    }
    if isinstance(output, ChannelOutput):
        body |= {
            "type": "channel",
            "channel_id": output.channel_id.hex(),
            "payer": output.payer.hex(),
            "payee": output.payee.hex(),
            "bidirectional": output.bidirectional,
            "challenge_period": output.challenge_period,
            "expiry": output.expiry,
            "sequence": str(output.sequence),
            "payee_balance": str(output.payee_balance),
            "closing_since": output.closing_since,
        }
    return body


def _render_unlock(unlock: Unlock) -> dict[str, Any]:
    if isinstance(unlock, SignatureUnlock):
        return {
            "type": "signature",
            "public_key": unlock.public_key.hex(),
            "signature": unlock.signature.hex(),
        }
    if isinstance(unlock, ReferenceUnlock):
        return {"type": "reference", "index": unlock.index}
    proof = unlock.proof
    return {
        "type": "channel",
        "op": unlock.op.name.lower(),
        "channel_id": unlock.channel_id.hex(),
        "payer": unlock.payer.hex(),
        "payee": unlock.payee.hex(),
        "payer_signature": _hex_or_none(unlock.payer_signature),
        "payee_signature": _hex_or_none(unlock.payee_signature),
        "proof": None
        if proof is None
        else {
            "sequence": str(proof.proof.sequence),
            "payee_balance": str(proof.proof.payee_balance),
            "payer_signature": proof.payer_signature.hex(),
            "payee_signature": _hex_or_none(proof.payee_signature),
        },
    }


def _hex_or_none(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


# -- the OpenAPI document ----------------------------------------------------------------------

_HEX = {"type": "string", "pattern": "^([0-9a-fA-F]{2})*$"}
_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
_U64 = {"type": "string", "pattern": "^[0-9]{1,20}$", "description": "u64, decimal"}
_UINT = {"type": "integer", "minimum": 0}


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
            "peers": _nullable(_UINT),
            "healthy": {"type": "boolean"},
            "work_per_kib": _UINT,
            "min_output_amount": _U64,
        }
    ),
    "SubmitJson": _object({"message": _HEX}),
    "PowRequest": _object({"payload": _HEX}),
    "Submitted": _object({"id": _ID}),
    "Output": {
        "oneOf": [
            _object({"type": {"const": "basic"}, "address": _ID, "amount": _U64}),
            _object(
                {
                    "type": {"const": "channel"},
                    "address": _ID,
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
            "address": _ID,
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
        {"address": _ID, "ledger_index": _UINT, "balance": _U64, "output_count": _UINT}
    ),
    "Peers": _object({"peers": _array({"type": "object"})}),
    "AddPeer": _object({"host": {"type": "string"}, "port": {"type": "integer"}}),
    "Prune": _object({"keep_milestones": _UINT}),
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
_ADDRESS = _path_param("address", _ID)
_BAD_BODY = ("invalid_json", "invalid_body", "invalid_hex", "body_too_large")


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every endpoint `create_app` serves."""
    index = _path_param("index", {"type": "integer", "minimum": 1, "maximum": 2**32 - 1})
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
                        "schema": {"type": "integer", "minimum": 1, "maximum": 8},
                    },
                ),
            )
        },
        "/api/v1/addresses/{address}/outputs": {
            "get": _op(
                "Unspent outputs of an address", 200, "Outputs", "invalid_id", params=(_ADDRESS,)
            )
        },
        "/api/v1/addresses/{address}/balance": {
            "get": _op("Balance of an address", 200, "Balance", "invalid_id", params=(_ADDRESS,))
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
                    "invalid_id",
                    "invalid_parameter",
                    "too_many_streams",
                    params=(
                        {
                            "name": "address",
                            "in": "query",
                            "required": False,
                            "schema": _array(_ID),
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
                body={"application/json": {"schema": _ref("Prune")}},
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
    paths["/api/v1/events"]["get"]["responses"]["200"]["content"] = {
        "text/event-stream": {"schema": {"type": "string"}}
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
            "description": __doc__,
        },
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
