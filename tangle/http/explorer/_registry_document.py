"""The OpenAPI part of the explorer's registry views (`_registry.py`) and anchors view
(`_views.py`, `_notes.py`): their routes and the JSON they answer."""

from __future__ import annotations

from typing import Any

from tangle.protocol.proof_bundle import BUNDLE_VERSION

from .._components import _HEX, _ID, _UINT, _array, _nullable, _object
from .._devices import _PATH
from .._openapi import _op, _path_param
from . import _registry
from ._registry import PAGE_MAX
from ._views import ANCHORS_LISTED

MS = {**_UINT, "description": "Unix milliseconds"}
"""A time in the JSON (`_document.py` uses it too)."""
_STATUS = {"enum": ["active", "suspended", "revoked"]}
_SIGNED = _nullable(
    {
        **_object({"message_id": _ID, "milestone_index": _UINT, "signers": _array(_ID)}),
        "description": "the record that did it, if applied since the node started",
    }
)

REGISTRY_SCHEMAS: dict[str, Any] = {
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
                "version": {"const": BUNDLE_VERSION},
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
                        "at_ms": MS,
                        "milestone_index": {
                            **_nullable(_UINT),
                            "description": "the milestone that confirmed it (null: pending)",
                        },
                    }
                )
            ),
        }
    ),
}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def registry_paths(paths: dict[str, Any]) -> None:
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
            "Issuers the committee admitted (or removed), by key, a page at a time; with keys,"
            " those issuers only (keys it does not hold are left out)",
            200,
            "ExplorerIssuers",
            "invalid_parameter",
            "invalid_id",
            params=(
                count,
                _query("after", _ID),
                _query(
                    "keys", {"type": "string", "pattern": "^[0-9a-fA-F]{64}(,[0-9a-fA-F]{64})*$"}
                ),
            ),
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
