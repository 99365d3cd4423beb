"""`GET /api/v1/devices/{device_id}`: one device as the registry holds it at the confirmed
milestone (status, keys, endorsements, quarantine), the versions of its entry each milestone
left (history, from storage), and with `?proof=true` the audit path of its entry to the
confirmed milestone's `registry_root` (what a proof bundle carries to show the device's status).

With `?at=<milestone index>` the device as milestone `at` left it, with its audit path to that
milestone's `registry_root`: a gateway can collect a proof after the registry changed again.
The node rebuilds the registry tree of `at` from its current one by undoing the changes since
(`Registry.rewind_from`), for the last `MAX_PAST_CHANGES` (64) milestones that changed the
registry (and at most 65,536 changed entries in all); the entry comes from the device's stored
history (its newest 256 versions). Beyond that: 404 `proof_unavailable`. Those changes are
kept in memory only: after a restart the node can rebuild no earlier tree, and `?at=` an
earlier milestone is `proof_unavailable` until the registry has changed again since.

The last `MAX_PAST_TREES` trees rebuilt are kept. A rebuild costs a copy of the tree on the
node's writer thread and the undoing in a worker, so: requests for a root being rebuilt wait
for that rebuild (one flight per root), one rebuild runs at a time, and each client may start
`past_proofs_per_minute` rebuilds a minute (`ApiConfig`; a token bucket as for the
proof-of-work endpoint; past that 429 `proof_rate_limited` with `Retry-After`). Answers from a
kept tree are not charged.

`GET /api/v1/keys/{key}/device`: the same answer for the device whose current key `key` is
(the registry's index of current keys, `Registry.by_key`), or 404 `unknown_device_key`. A device
that rotated its key is found by its new key only: a key it gave up is no device's.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final

import trio
from starlette.responses import JSONResponse, Response

from tangle.ledger.registry import DeviceEntry, encode_entry, registry_path
from tangle.node.token_bucket import ClientBuckets
from tangle.protocol.bech32 import encode_address
from tangle.protocol.codec import U32_MAX
from tangle.protocol.device import NO_GATEWAY, DeviceId
from tangle.protocol.ids import PublicKey
from tangle.protocol.merkle import root_from_path
from tangle.protocol.message import decode_message
from tangle.protocol.milestone import Milestone
from tangle.storage.registry import MAX_HISTORY

from ._openapi import _op, _path_param
from ._request import ApiError, client_of, path_id, query_uint

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request

    from tangle.ledger.registry import Registry
    from tangle.node.core import NodeCore
    from tangle.node.node import Node
    from tangle.protocol.bech32 import Network
    from tangle.protocol.ids import MerkleRoot
    from tangle.protocol.merkle import MerklePath, SortedMerkleTree
    from tangle.storage.storage import Storage

    from ._config import ApiConfig

_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
_FLAGS = {"true": True, "false": False}
MAX_PAST_TREES: Final = 4
"""Registry trees of earlier milestones kept (rebuilding one costs a copy of the tree)."""


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


def _with_proof(request: Request) -> bool:
    proof_text = request.query_params.get("proof", "false")
    if proof_text not in _FLAGS:
        raise ApiError("invalid_parameter", "proof is true or false")
    return _FLAGS[proof_text]


def render_path(path: MerklePath) -> dict[str, Any]:
    return {"index": path.index, "size": path.size, "siblings": [s.hex() for s in path.siblings]}


class _Flight:
    """One rebuild under way: requests for the same root wait for it (`done`)."""

    __slots__ = ("done", "finished", "tree")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.finished = False
        """False if the rebuild was cancelled: a waiter tries again."""
        self.tree: SortedMerkleTree | None = None


class Devices:
    """The device endpoint over one node, served as `config` says."""

    def __init__(self, node: Node, config: ApiConfig) -> None:
        self._node = node
        self._network = config.network
        self._past: OrderedDict[bytes, SortedMerkleTree] = OrderedDict()
        """Rebuilt trees by their root, the most recently used last."""
        self._flights: dict[bytes, _Flight] = {}
        """The rebuild under way for each root (at most one a root)."""
        self._rebuild = trio.CapacityLimiter(1)
        self._rates = ClientBuckets(config.past_proofs_per_minute)

    async def device(self, request: Request) -> Response:
        device_id = DeviceId(path_id(request.path_params["device_id"]))
        at_text = request.query_params.get("at")
        if at_text is not None:
            at = query_uint(at_text, "at", 1, U32_MAX)
            return await self._device_at(device_id, at, client_of(request))
        found = await self._current(lambda registry: device_id, _with_proof(request))
        if found is None:
            raise ApiError("unknown_device", f"no device {device_id.hex()} is registered")
        return found

    async def device_by_key(self, request: Request) -> Response:
        """The device whose current key is `{key}` (`Registry.by_key`): a device that rotated
        is found by its new key, not by its old ones."""
        key = PublicKey(path_id(request.path_params["key"]))
        found = await self._current(lambda registry: registry.by_key.get(key), _with_proof(request))
        if found is None:
            raise ApiError("unknown_device_key", f"{key.hex()} is no device's current key")
        return found

    async def _current(
        self, find: Callable[[Registry], DeviceId | None], with_proof: bool
    ) -> Response | None:
        """The device `find` picks in the registry at the confirmed milestone; None if none."""

        def current(
            core: NodeCore,
        ) -> tuple[int, MerkleRoot, DeviceEntry, MerklePath | None] | None:
            registry = core.ledger.registry
            device_id = find(registry)
            entry = None if device_id is None else registry.devices.get(device_id)
            if entry is None:
                return None
            path = registry_path(registry, entry.device_id)[1] if with_proof else None
            return core.confirmed_index, registry.root, entry, path

        found = await self._node.read_core(current)
        if found is None:
            return None
        index, root, entry, path = found

        def history(storage: Storage) -> list[tuple[int, DeviceEntry]]:
            stored = storage.device(entry.device_id)
            return [] if stored is None else stored[1]

        versions = await self._node.read_storage(history)
        return JSONResponse(self._body(index, root, entry, versions, path))

    def _body(
        self,
        index: int,
        root: bytes,
        entry: DeviceEntry,
        versions: list[tuple[int, DeviceEntry]],
        path: MerklePath | None,
    ) -> dict[str, Any]:
        return {
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

    async def _device_at(self, device_id: DeviceId, at: int, client: str) -> Response:
        """The device as milestone `at` left it, with its path to that milestone's root."""

        def stored(storage: Storage) -> tuple[bytes, list[tuple[int, DeviceEntry]]] | None:
            record = storage.milestone(at)
            if record is None:
                return None
            milestone = decode_message(record.raw).message.payload
            if not isinstance(milestone, Milestone):
                return None
            found = storage.device(device_id)
            return milestone.essence.registry_root, [] if found is None else found[1]

        found = await self._node.read_storage(stored)
        if found is None:
            raise ApiError("unknown_milestone", f"no milestone {at} is stored")
        root, versions = found
        then = [version for index, version in versions if index <= at]
        if not then:
            if len(versions) >= MAX_HISTORY:
                raise ApiError("proof_unavailable", f"the entry at milestone {at} is not kept")
            raise ApiError("unknown_device", f"no device {device_id.hex()} at milestone {at}")
        entry = then[-1]
        tree = await self._tree_at(root, client)
        position = None if tree is None else tree.index(device_id)
        if tree is None or position is None:
            raise ApiError("proof_unavailable", f"the registry at milestone {at} is not kept")
        path = tree.path(position)
        if root_from_path(encode_entry(entry), path) != root:
            raise ApiError("proof_unavailable", f"the entry at milestone {at} is not kept")
        return JSONResponse(self._body(at, root, entry, versions, path))

    async def _tree_at(self, root: bytes, client: str) -> SortedMerkleTree | None:
        """The registry tree whose root is `root`: kept, being rebuilt (waited for), or rebuilt
        here, charged to `client`; None if the node cannot rebuild it."""
        while True:
            held = self._past.get(root)
            if held is not None:
                self._past.move_to_end(root)
                return held
            flight = self._flights.get(root)
            if flight is None:
                break
            await flight.done.wait()
            if flight.finished:
                return flight.tree
        wait = self._rates.take(client, trio.current_time())
        if wait > 0:
            raise ApiError(
                "proof_rate_limited",
                f"{self._rates.per_minute} rebuilt registry trees a minute",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        flight = self._flights[root] = _Flight()
        try:
            async with self._rebuild:
                rewind = await self._node.read_core(
                    lambda core: core.ledger.registry.rewind_from(root)
                )
                tree = None if rewind is None else await trio.to_thread.run_sync(rewind.run)
            flight.tree, flight.finished = tree, True
        finally:
            del self._flights[root]
            flight.done.set()
        if tree is not None:
            self._past[root] = tree
            while len(self._past) > MAX_PAST_TREES:
                self._past.popitem(last=False)
        return tree


def with_devices(document: dict[str, Any]) -> dict[str, Any]:
    """`document` (the API's OpenAPI document) with the device endpoint described."""
    out = copy.deepcopy(document)
    proof = {
        "name": "proof",
        "in": "query",
        "required": False,
        "schema": {"enum": ["true", "false"]},
    }
    at = {
        "name": "at",
        "in": "query",
        "required": False,
        "description": "a milestone index: the entry and its path at that milestone",
        "schema": {"type": "integer", "minimum": 1, "maximum": U32_MAX},
    }
    out["paths"]["/api/v1/devices/{device_id}"] = {
        "get": _op(
            "A registered device: status, keys, endorsements, quarantine and history; with "
            "proof=true the audit path of its entry to the registry root; with at=<index> "
            "the entry and its path at that milestone (the last 64 registry changes)",
            200,
            "Device",
            "invalid_id",
            "invalid_parameter",
            "unknown_device",
            "unknown_milestone",
            "proof_unavailable",
            "proof_rate_limited",
            params=(_path_param("device_id", _ID), proof, at),
        )
    }
    out["paths"]["/api/v1/keys/{key}/device"] = {
        "get": _op(
            "The registered device whose current key is this one (a device that rotated its "
            "key is found by its new key only), as GET /api/v1/devices/{device_id} answers it; "
            "with proof=true the audit path of its entry to the registry root",
            200,
            "Device",
            "invalid_id",
            "invalid_parameter",
            "unknown_device_key",
            params=(_path_param("key", _ID), proof),
        )
    }
    return out
