"""The explorer's part of the OpenAPI document: its routes (`_views.py`), the JSON they answer,
the `live` parameter of the event stream and its `messages` event (`_live.py`)."""

from __future__ import annotations

import copy
from typing import Any

from .._components import _ADDRESS_TEXT, _HEX, _ID, _UINT, _array, _nullable, _object, _ref
from .._openapi import _op, _path_param
from . import _live, _registry, _search
from ._registry import PAGE_MAX
from ._search import KINDS
from ._views import ANCHORS_LISTED, MEDIA_TYPES, MILESTONES_PER_PAGE

_MS = {**_UINT, "description": "Unix milliseconds"}

_STATUS = {"enum": ["active", "suspended", "revoked"]}
_SIGNED = _nullable(
    {
        **_object({"message_id": _ID, "milestone_index": _UINT, "signers": _array(_ID)}),
        "description": "the record that did it, if applied since the node started",
    }
)
_PATH = _object({"index": _UINT, "size": {**_UINT, "minimum": 1}, "siblings": _array(_ID)})

_VERTEX = {
    "id": _ID,
    "parents": _array(_ID),
    "kind": {"enum": ["transaction", "tagged_data", "milestone", "device_record"]},
    "index": _nullable(_UINT),
}

SCHEMAS: dict[str, Any] = {
    "SearchResult": _object(
        {
            "kind": {"enum": list(KINDS)},
            "id": {
                **_nullable({"type": "string"}),
                "description": "what the page of that kind takes (null for none)",
            },
            "reason": {"type": "string"},
        }
    ),
    "RecentMessages": _object(
        {
            "now_ms": _MS,
            "messages": _array(
                _object(
                    {
                        **_VERTEX,
                        "at_ms": _MS,
                        "state": {
                            "enum": ["pending", "solid", "referenced", "included", "conflicting"]
                        },
                        "referenced_by": _nullable(_UINT),
                    }
                )
            ),
        }
    ),
    "ExplorerMilestones": _object(
        {
            "confirmed_milestone_index": _UINT,
            "milestones": _array(
                _object(
                    {
                        "index": _UINT,
                        "milestone_id": _ID,
                        "message_id": _ID,
                        "timestamp_ms": _MS,
                        "cone": {
                            **_nullable(
                                _object(
                                    {
                                        "referenced": _UINT,
                                        "included": _UINT,
                                        "conflicting": _UINT,
                                        "applied_at_ms": _MS,
                                    }
                                )
                            ),
                            "description": "null for a milestone applied before the node started",
                        },
                    }
                )
            ),
        }
    ),
    "MessageTiming": _object(
        {
            "id": _ID,
            "arrived_at_ms": _nullable(_MS),
            "confirmed_at_ms": _nullable(_MS),
            "milestone_index": _nullable(_UINT),
            "confirmation_ms": {
                **_nullable(_UINT),
                "description": "arrival at this node to the milestone that referenced it",
            },
        }
    ),
    "AddressHistory": _object(
        {"address_hex": _ID, "transactions": _array(_ref("TransactionEvent"))}
    ),
    "ExplorerChannels": _object(
        {
            "channels": _array(
                _object(
                    {
                        "channel_id": _ID,
                        "last_op": {"type": "string"},
                        "milestone_index": _UINT,
                        "output": {
                            **_nullable(_ref("UnspentOutput")),
                            "description": "null once the channel is settled",
                        },
                    }
                )
            )
        }
    ),
    "ExplorerPeers": _object(
        {
            "confirmed_milestone_index": _UINT,
            "peers": _nullable(
                _array(
                    _object(
                        {
                            "id": {"type": "string"},
                            "connected": _nullable({"type": "boolean"}),
                            "outbound": _nullable({"type": "boolean"}),
                            "confirmed_index": _nullable(_UINT),
                        }
                    )
                )
            ),
        }
    ),
    "Refusal": _object(
        {
            "message_id": {**_ID, "description": "BLAKE2b-256 of the refused bytes"},
            "code": {"type": "string"},
            "reason": {"type": "string"},
            "at_ms": _MS,
        }
    ),
    "Refusals": _object({"refusals": _array(_ref("Refusal"))}),
    "ExplorerDevices": _object(
        {
            "ledger_index": _UINT,
            "total": _UINT,
            "next": {**_nullable(_ID), "description": "`after` for the next page"},
            "devices": _array(
                _object(
                    {
                        "device_id": _ID,
                        "status": _STATUS,
                        "key": _ID,
                        "address": {"type": "string"},
                        "maker": _ID,
                        "capability": {"enum": ["full", "constrained"]},
                        "gateway": _nullable(_ID),
                        "endorsements": _array(_ID),
                        "quarantine": _nullable(
                            _object(
                                {
                                    "in_force": {"type": "boolean"},
                                    "reason": _UINT,
                                    "evidence_hash": _ID,
                                    "since": _UINT,
                                    "expires_after": _UINT,
                                    "record": _SIGNED,
                                }
                            )
                        ),
                    }
                )
            ),
        }
    ),
    "ExplorerIssuers": _object(
        {
            "ledger_index": _UINT,
            "total": _UINT,
            "next": _nullable(_ID),
            "issuers": _array(
                _object(
                    {
                        "key": _ID,
                        "role": {"enum": ["operator", "maker", "authority"]},
                        "admitted": {"type": "boolean"},
                        "serial": _UINT,
                        "name": {"type": "string"},
                        "record": _SIGNED,
                    }
                )
            ),
        }
    ),
    "DeviceRecordsSeen": _object(
        {
            "records": _array(
                _object(
                    {
                        "message_id": _ID,
                        "kind": {"type": "string"},
                        "milestone_index": _UINT,
                        "signers": _array(_ID),
                    }
                )
            )
        }
    ),
    "RecordSubject": _object(
        {
            "kind": {"type": "string"},
            "subject": _ID,
            "subject_kind": {"enum": ["device", "issuer"]},
        }
    ),
    "ProofFile": {
        **_object(
            {
                "version": {"const": _registry.PROOF_VERSION},
                "reading": _HEX,
                "batch_path": _PATH,
                "anchor": _HEX,
                "inclusion_path": _PATH,
                "milestone": _HEX,
                "registry_entry": _HEX,
                "registry_path": _PATH,
            }
        ),
        "additionalProperties": False,
        "description": "a proof bundle file (`tanglepay verify`), the links not held left empty",
    },
    "ExplorerAnchors": _object(
        {
            "kept": _UINT,
            "anchors": _array(
                _object(
                    {
                        "message_id": _ID,
                        "tag": {"type": "string"},
                        "tag_hex": _HEX,
                        "size": _UINT,
                        "head": {**_HEX, "description": "the data's first 256 bytes"},
                        "at_ms": _MS,
                        "milestone_index": {
                            **_nullable(_UINT),
                            "description": "the milestone that confirmed it (null: pending)",
                        },
                    }
                )
            ),
        }
    ),
    "MessagesEvent": _object(
        {
            "at_ms": _MS,
            "messages": _array(_object(_VERTEX)),
            "solid": _array(_ID),
            "refused": _array({"type": "string"}),
        }
    ),
}


def _files(summary: str, *codes: str, params: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    op = _op(summary, 200, None, *codes, params=params)
    op["responses"]["200"]["content"] = {
        media.split(";")[0]: {"schema": {"type": "string"}} for media in MEDIA_TYPES.values()
    }
    return op


def with_explorer(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with the explorer's routes, schemas and live events described."""
    out = copy.deepcopy(document)
    out["components"]["schemas"].update(SCHEMAS)
    paths = out["paths"]
    paths["/"] = {"get": _files("The explorer: a dashboard of this node and its network")}
    paths["/explorer/{file}"] = {
        "get": _files(
            "One of the explorer's scripts or styles",
            "not_found",
            params=(_path_param("file", {"type": "string"}),),
        )
    }
    paths["/api/v1/explorer/search"] = {
        "get": _op(
            "What a search names: a message (stored or refused), channel, address or milestone",
            200,
            "SearchResult",
            params=(
                {
                    "name": "q",
                    "in": "query",
                    "required": False,
                    "description": _search.__doc__,
                    "schema": {"type": "string"},
                },
            ),
        )
    }
    paths["/api/v1/explorer/recent"] = {
        "get": _op(
            "The latest messages this node received, with their parents and state, oldest first",
            200,
            "RecentMessages",
        )
    }
    count = {"type": "integer", "minimum": 1, "maximum": MILESTONES_PER_PAGE}
    paths["/api/v1/explorer/milestones"] = {
        "get": _op(
            "Applied milestones, newest first, with their cones as this node counted them",
            200,
            "ExplorerMilestones",
            "invalid_parameter",
            params=(
                {"name": "count", "in": "query", "required": False, "schema": count},
                {
                    "name": "before",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 2**32 - 1},
                },
            ),
        )
    }
    paths["/api/v1/explorer/messages/{message_id}/timing"] = {
        "get": _op(
            "When this node received a message and when a milestone confirmed it",
            200,
            "MessageTiming",
            "invalid_id",
            params=(_path_param("message_id", _ID),),
        )
    }
    paths["/api/v1/explorer/addresses/{address}/history"] = {
        "get": _op(
            "The latest transactions touching an address (up to 100) since the node started",
            200,
            "AddressHistory",
            "invalid_address",
            params=(_path_param("address", _ADDRESS_TEXT),),
        )
    }
    paths["/api/v1/explorer/channels"] = {
        "get": _op(
            "Payment channels recent transactions opened or used, with their ledger state",
            200,
            "ExplorerChannels",
        )
    }
    paths["/api/v1/explorer/peers"] = {
        "get": _op(
            "This node's peers and the latest milestone each reported (null without peering)",
            200,
            "ExplorerPeers",
        )
    }
    paths["/api/v1/explorer/refusals"] = {
        "get": _op("The latest messages this node refused, and why", 200, "Refusals")
    }
    paths["/api/v1/explorer/refusals/{message_id}"] = {
        "get": _op(
            "Why this node refused a message (among the last 1,024 it refused)",
            200,
            "Refusal",
            "invalid_id",
            "unknown_message",
            params=(_path_param("message_id", _ID),),
        )
    }
    _registry_paths(paths)
    events = paths["/api/v1/events"]["get"]
    events["parameters"].append(
        {
            "name": "live",
            "in": "query",
            "required": False,
            "description": _live.__doc__,
            "schema": {"type": "boolean"},
        }
    )
    stream = events["responses"]["200"]["content"]["text/event-stream"]["schema"]
    stream["oneOf"].append(
        _object(
            {
                "event": {"const": "messages"},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": _ref("MessagesEvent"),
                },
            }
        )
    )
    return out


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _registry_paths(paths: dict[str, Any]) -> None:
    """The anchors view and the registry views (`_registry.py`)."""
    count = _query("count", {"type": "integer", "minimum": 1, "maximum": PAGE_MAX})
    flag = {"enum": ["true", "false"]}
    paths["/api/v1/explorer/anchors"] = {
        "get": _op(
            "The latest tanglepay/ tagged-data anchors this node received, newest first",
            200,
            "ExplorerAnchors",
            "invalid_parameter",
            params=(
                _query("count", {"type": "integer", "minimum": 1, "maximum": ANCHORS_LISTED}),
                _query("prefix", {"type": "string", "pattern": "^tanglepay/", "maxLength": 64}),
            ),
        )
    }
    paths["/api/v1/explorer/devices"] = {
        "get": _op(
            "Registered devices by id (or those under a quarantine in force), a page at a time",
            200,
            "ExplorerDevices",
            "invalid_parameter",
            "invalid_id",
            params=(count, _query("after", _ID), _query("quarantined", flag)),
        )
    }
    paths["/api/v1/explorer/issuers"] = {
        "get": _op(
            "Issuers the committee admitted (or removed), by key, a page at a time",
            200,
            "ExplorerIssuers",
            "invalid_parameter",
            "invalid_id",
            params=(count, _query("after", _ID)),
        )
    }
    paths["/api/v1/explorer/devices/{device_id}/records"] = {
        "get": _op(
            "Registry records applied to a device or an issuer since the node started",
            200,
            "DeviceRecordsSeen",
            "invalid_id",
            params=(_path_param("device_id", _ID),),
        )
    }
    paths["/api/v1/explorer/messages/{message_id}/subject"] = {
        "get": _op(
            "The device (its id) or issuer a stored device registry record is about",
            200,
            "RecordSubject",
            "invalid_id",
            "invalid_parameter",
            "unknown_message",
            params=(_path_param("message_id", _ID),),
        )
    }
    paths["/api/v1/explorer/proof"] = {
        "get": _op(
            "The links of a proof bundle this node holds, as a file (`_registry.py`)",
            200,
            "ProofFile",
            "invalid_parameter",
            "invalid_id",
            "unknown_device",
            "unknown_message",
            "proof_unavailable",
            params=(_query("device", _ID), _query("message", _ID)),
        )
    }
    paths["/api/v1/explorer/proof"]["get"]["description"] = _registry.__doc__
