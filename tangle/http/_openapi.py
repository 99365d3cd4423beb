"""The OpenAPI 3.1 document of the HTTP API (`GET /openapi.json`): every route, its parameters
with the limits the server enforces, its bodies, responses and error codes, and the events of
the event stream. The wire conventions it describes are those of `_schema.py`."""

from __future__ import annotations

from typing import Any

from tangle.protocol.codec import U32_MAX
from tangle.protocol.message import MAX_PARENTS

from . import _schema
from ._components import (
    _ADDRESS_TEXT,
    _ID,
    _OUTPUT_ID,
    _SCHEMAS,
    _TANGLE_CODES,
    _array,
    _object,
    _ref,
)
from ._schema import API_ERROR_CODES


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
        "/api/v1/outputs/{output_id}": {
            "get": _op(
                "An output: unspent, or spent inside the pruning window (by which transaction, "
                "at which milestone); unknown once spent at or below the pruning index, and for "
                "an output one milestone both created and spent (never in the UTXO set)",
                200,
                "StoredOutput",
                "invalid_id",
                "unknown_output",
                params=(_path_param("output_id", _OUTPUT_ID),),
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
        "/api/v1/alarms": {
            "get": _op(
                "Equivocations seen (two committee-signed milestones for one index); while any "
                "is listed the node applies no milestone until an operator restarts it",
                200,
                "Alarms",
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
            "description": _schema.__doc__,
        },
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
