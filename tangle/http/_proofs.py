"""`GET /api/v1/messages/{id}/inclusion`: the audit path of a referenced message to the
`inclusion_root` of the milestone that referenced it, with that milestone's ids (a proof bundle
adds the milestone's signed message, `GET /api/v1/milestones/{index}` with
`Accept: application/octet-stream` on its message id).

A node builds the path from the messages the milestone referenced that it still stores, and
serves it only if they hash to the milestone's inclusion root: past the pruning window, or for a
message no milestone referenced yet, the answer is 404 `proof_unavailable`, never a wrong path.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import trio
from starlette.responses import JSONResponse, Response

from tangle.ledger.inclusion import InclusionTree
from tangle.protocol.message import decode_message
from tangle.protocol.milestone import Milestone

from ._device_api import render_path
from ._openapi import _op, _path_param
from ._request import ApiError, path_message_id

if TYPE_CHECKING:
    from starlette.requests import Request

    from tangle.node.node import Node
    from tangle.protocol.ids import MessageId
    from tangle.storage.storage import Storage

_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
MAX_CACHED_MILESTONES: Final = 16
"""Milestones whose inclusion trees are kept (the most recently asked): the gateways that
collect proofs ask about the newest milestones, many readings each."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Milestone:
    """One milestone's inclusion tree, checked against its root, and its ids."""

    tree: InclusionTree
    milestone_id: str
    message_id: str
    inclusion_root: str


class Proofs:
    """The inclusion endpoint over one node, with the trees of the last
    `MAX_CACHED_MILESTONES` milestones asked about (built once each, not per request)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._trees: OrderedDict[int, _Milestone] = OrderedDict()
        self.built = 0
        """Trees built since start (what the cache saves shows here)."""

    async def inclusion(self, request: Request) -> Response:
        message_id = path_message_id(request.path_params["message_id"])

        def referenced_by(storage: Storage) -> int | str:
            metadata = storage.metadata(message_id)
            if metadata is None:
                return "unknown_message"
            index = metadata.referenced_by
            if index is None or storage.milestone(index) is None:  # not yet, or pruned
                return "proof_unavailable"
            return index

        found = await self._node.read_storage(referenced_by)
        if isinstance(found, str):
            raise ApiError(found, f"no inclusion path for {message_id.hex()} on this node")
        held = await self._tree(found)
        if held is None:
            raise ApiError("proof_unavailable", f"no inclusion path for {message_id.hex()}")
        return JSONResponse(
            {
                "message_id": message_id.hex(),
                "milestone_index": found,
                "milestone_id": held.milestone_id,
                "milestone_message_id": held.message_id,
                "inclusion_root": held.inclusion_root,
                "path": render_path(held.tree.path(message_id)),
            }
        )

    async def _tree(self, index: int) -> _Milestone | None:
        """Milestone `index`'s tree, from the cache or built from storage (None if what the
        node stores does not hash to the milestone's inclusion root)."""
        held = self._trees.get(index)
        if held is not None:
            self._trees.move_to_end(index)
            return held

        def read(storage: Storage) -> tuple[Milestone, str, str, list[MessageId]] | None:
            record = storage.milestone(index)
            if record is None:
                return None
            milestone = decode_message(record.raw).message.payload
            if not isinstance(milestone, Milestone):
                return None
            ids = record.milestone_id.hex(), record.message_id.hex()
            return milestone, *ids, storage.referenced_by(index)

        stored = await self._node.read_storage(read)
        if stored is None:
            return None
        milestone, milestone_id, message_id, referenced = stored
        tree = await trio.to_thread.run_sync(InclusionTree, referenced)
        self.built += 1
        root = milestone.essence.inclusion_root
        if tree.root != root:
            return None
        held = _Milestone(
            tree=tree,
            milestone_id=milestone_id,
            message_id=message_id,
            inclusion_root=root.hex(),
        )
        self._trees[index] = held
        while len(self._trees) > MAX_CACHED_MILESTONES:
            self._trees.popitem(last=False)
        return held


def with_proofs(document: dict[str, Any]) -> dict[str, Any]:
    """`document` (the API's OpenAPI document) with the inclusion endpoint described."""
    out = copy.deepcopy(document)
    out["paths"]["/api/v1/messages/{message_id}/inclusion"] = {
        "get": _op(
            "A referenced message's audit path to its milestone's inclusion root",
            200,
            "Inclusion",
            "invalid_id",
            "unknown_message",
            "proof_unavailable",
            params=(_path_param("message_id", _ID),),
        )
    }
    return out
