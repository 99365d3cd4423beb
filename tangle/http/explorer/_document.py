"""The explorer's part of the OpenAPI document: its routes (`_views.py`), the JSON they answer,
the `live` parameter of the event stream and its `messages` event (`_live.py`); the registry and
anchor views are described in `_registry_document.py`."""

from __future__ import annotations

import copy
from typing import Any

from .._components import _ADDRESS_TEXT, _ID, _UINT, _array, _nullable, _object, _ref
from .._openapi import _op, _path_param
from . import _live, _search
from ._registry_document import MS as _MS
from ._registry_document import REGISTRY_SCHEMAS, registry_paths
from ._search import KINDS
from ._views import MEDIA_TYPES, MILESTONES_PER_PAGE

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
    out["components"]["schemas"].update(REGISTRY_SCHEMAS)
    registry_paths(paths)
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
