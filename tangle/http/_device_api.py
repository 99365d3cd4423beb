"""`GET /api/v1/devices/{device_id}`: one device as the registry holds it at the confirmed
milestone (status, keys, endorsements, quarantine), the versions of its entry each milestone
left (history, from storage), and with `?proof=true` the audit path of its entry to the
confirmed milestone's `registry_root` (what a proof bundle carries to show the device's status).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from tangle.ledger.registry import DeviceEntry, encode_entry, registry_path
from tangle.protocol.bech32 import encode_address
from tangle.protocol.device import NO_GATEWAY, DeviceId

from ._openapi import _op, _path_param
from ._request import ApiError, path_id

if TYPE_CHECKING:
    from starlette.requests import Request

    from tangle.node.core import NodeCore
    from tangle.node.node import Node
    from tangle.protocol.bech32 import Network
    from tangle.protocol.ids import MerkleRoot
    from tangle.protocol.merkle import MerklePath
    from tangle.storage.storage import Storage

_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
_FLAGS = {"true": True, "false": False}


def render_entry(
    entry: DeviceEntry, network: Network, index: int, *, with_entry: bool = True
) -> dict[str, Any]:
    """An entry as JSON; `index` (the confirmed milestone) tells whether a quarantine holds;
    `with_entry`: with the entry's encoding too."""
    q = entry.quarantine
    out: dict[str, Any] = {
        "device_id": entry.device_id.hex(),
        "status": entry.status.name.lower(),
        "key": entry.key.hex(),
        "address": encode_address(entry.address, network),
        "address_hex": entry.address.hex(),
        "maker": entry.maker.hex(),
        "model": entry.model.hex(),
        "capability": entry.capability.name.lower(),
        "gateway": None if entry.gateway == NO_GATEWAY else entry.gateway.hex(),
        "attributes_hash": entry.attributes_hash.hex(),
        "uri": entry.uri.hex(),
        "serial": entry.serial,
        "registered_at": entry.registered_at,
        "updated_at": entry.updated_at,
        "endorsements": [k.hex() for k in entry.endorsers],
        "quarantine_serial": entry.quarantine_serial,
        "quarantine": None
        if q is None
        else {
            "in_force": entry.quarantined_at(index),
            "reason": q.reason,
            "evidence_hash": q.evidence_hash.hex(),
            "since": q.since,
            "expires_after": q.expires_after,
        },
    }
    if with_entry:
        out["entry"] = encode_entry(entry).hex()
    return out


def render_path(path: MerklePath) -> dict[str, Any]:
    return {"index": path.index, "size": path.size, "siblings": [s.hex() for s in path.siblings]}


class Devices:
    """The device endpoint over one node."""

    def __init__(self, node: Node, network: Network) -> None:
        self._node = node
        self._network = network

    async def device(self, request: Request) -> Response:
        device_id = DeviceId(path_id(request.path_params["device_id"]))
        proof_text = request.query_params.get("proof", "false")
        if proof_text not in _FLAGS:
            raise ApiError("invalid_parameter", "proof is true or false")
        with_proof = _FLAGS[proof_text]

        def current(
            core: NodeCore,
        ) -> tuple[int, MerkleRoot, DeviceEntry, MerklePath | None] | None:
            registry = core.ledger.registry
            entry = registry.devices.get(device_id)
            if entry is None:
                return None
            path = registry_path(registry, device_id)[1] if with_proof else None
            return core.confirmed_index, registry.root, entry, path

        found = await self._node.read_core(current)
        if found is None:
            raise ApiError("unknown_device", f"no device {device_id.hex()} is registered")
        index, root, entry, path = found

        def history(storage: Storage) -> list[tuple[int, DeviceEntry]]:
            stored = storage.device(device_id)
            return [] if stored is None else stored[1]

        versions = await self._node.read_storage(history)
        body = {
            "ledger_index": index,
            "registry_root": root.hex(),
            **render_entry(entry, self._network, index),
            "history": [
                {
                    "milestone_index": at,
                    "status": version.status.name.lower(),
                    "key": version.key.hex(),
                    "serial": version.serial,
                    "quarantined": version.quarantined_at(at),
                }
                for at, version in versions
                if at <= index
            ],
            "registry_path": None if path is None else render_path(path),
        }
        return JSONResponse(body)


def with_devices(document: dict[str, Any]) -> dict[str, Any]:
    """`document` (the API's OpenAPI document) with the device endpoint described."""
    out = copy.deepcopy(document)
    proof = {
        "name": "proof",
        "in": "query",
        "required": False,
        "schema": {"enum": ["true", "false"]},
    }
    out["paths"]["/api/v1/devices/{device_id}"] = {
        "get": _op(
            "A registered device: status, keys, endorsements, quarantine and history; with "
            "proof=true the audit path of its entry to the registry root",
            200,
            "Device",
            "invalid_id",
            "invalid_parameter",
            "unknown_device",
            params=(_path_param("device_id", _ID), proof),
        )
    }
    return out
