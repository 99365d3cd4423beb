"""`GET /api/v1/messages/{id}/inclusion`: the audit path of a referenced message to the
`inclusion_root` of the milestone that referenced it, with that milestone's ids (a proof bundle
adds the milestone's signed message, `GET /api/v1/milestones/{index}` with
`Accept: application/octet-stream` on its message id).

A node builds the path from the messages the milestone referenced that it still stores, and
serves it only if they hash to the milestone's inclusion root: past the pruning window, or for a
message no milestone referenced yet, the answer is 404 `proof_unavailable`, never a wrong path.
`InclusionCache.inclusion_of` finds it (the explorer's proof file uses the same cache: one per
app, `app.state.inclusions`); the tree over the sorted referenced set of the last
REFERENCED_KEPT milestones it checked is kept, by milestone id (which commits to the inclusion
root, so the set is the same on any node that stores that milestone).
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from starlette.responses import JSONResponse, Response

from tangle.errors import InvalidFieldError
from tangle.ledger.inclusion import InclusionTree
from tangle.protocol.message import decode_message
from tangle.protocol.milestone import Milestone

from ._device_api import render_path
from ._openapi import _op, _path_param
from ._request import ApiError, path_message_id

if TYPE_CHECKING:
    from starlette.requests import Request

    from tangle.ledger.records import MilestoneRecord
    from tangle.node.node import Node
    from tangle.protocol.ids import MessageId, MilestoneId
    from tangle.protocol.merkle import MerklePath
    from tangle.storage.storage import Storage

_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
REFERENCED_KEPT: Final = 16
"""Milestones whose inclusion tree `InclusionCache` keeps (the most recently asked)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Inclusion:
    """A referenced message's audit path to the inclusion root of the milestone that
    referenced it."""

    index: int
    record: MilestoneRecord
    milestone: Milestone
    path: MerklePath


class InclusionCache:
    """The inclusion trees of the last REFERENCED_KEPT milestones asked about, for one node's
    app; `inclusion_of` runs in worker threads, beside each other."""

    def __init__(self) -> None:
        self._trees: OrderedDict[MilestoneId, InclusionTree] = OrderedDict()
        self._lock = threading.Lock()

    def kept(self) -> list[MilestoneId]:
        """The milestones whose trees are kept, the most recently asked last."""
        with self._lock:
            return list(self._trees)

    def inclusion_of(self, storage: Storage, message_id: MessageId) -> Inclusion:
        """The inclusion of `message_id` from what `storage` holds; `ApiError`
        `unknown_message` for a message it does not store, `proof_unavailable` for one no
        milestone referenced yet, whose milestone is pruned, or whose referenced messages do
        not hash to its root."""
        text = f"no inclusion path for {message_id.hex()} on this node"
        metadata = storage.metadata(message_id)
        if metadata is None:
            raise ApiError("unknown_message", text)
        index = metadata.referenced_by
        record = None if index is None else storage.milestone(index)
        milestone = None if record is None else decode_message(record.raw).message.payload
        unavailable = ApiError("proof_unavailable", text)
        if index is None or record is None or not isinstance(milestone, Milestone):
            raise unavailable
        trees = self._trees
        with self._lock:
            held = trees.get(record.milestone_id)
            if held is not None:
                trees.move_to_end(record.milestone_id)
        if held is None:
            held = InclusionTree(storage.referenced_by(index))
            if held.root != milestone.essence.inclusion_root:
                raise unavailable
            with self._lock:
                trees[record.milestone_id] = held
                while len(trees) > REFERENCED_KEPT:
                    trees.popitem(last=False)
        try:
            path = held.path(message_id)
        except InvalidFieldError:
            raise unavailable from None
        return Inclusion(index=index, record=record, milestone=milestone, path=path)


class Proofs:
    """The inclusion endpoint over one node, with the app's `inclusions`."""

    def __init__(self, node: Node, inclusions: InclusionCache) -> None:
        self._node = node
        self._inclusions = inclusions

    async def inclusion(self, request: Request) -> Response:
        message_id = path_message_id(request.path_params["message_id"])

        found = await self._node.read_storage(
            lambda storage: self._inclusions.inclusion_of(storage, message_id)
        )
        return JSONResponse(
            {
                "message_id": message_id.hex(),
                "milestone_index": found.index,
                "milestone_id": found.record.milestone_id.hex(),
                "milestone_message_id": found.record.message_id.hex(),
                "inclusion_root": found.milestone.essence.inclusion_root.hex(),
                "path": render_path(found.path),
            }
        )


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
