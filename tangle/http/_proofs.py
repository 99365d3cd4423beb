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
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from tangle.ledger.inclusion import inclusion_path, inclusion_root
from tangle.protocol.message import decode_message
from tangle.protocol.milestone import Milestone

from ._device_api import render_path
from ._openapi import _op, _path_param
from ._request import ApiError, path_message_id

if TYPE_CHECKING:
    from starlette.requests import Request

    from tangle.node.node import Node
    from tangle.storage.storage import Storage

_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}


class Proofs:
    """The inclusion endpoint over one node."""

    def __init__(self, node: Node) -> None:
        self._node = node

    async def inclusion(self, request: Request) -> Response:
        message_id = path_message_id(request.path_params["message_id"])

        def read(storage: Storage) -> dict[str, Any] | str:
            metadata = storage.metadata(message_id)
            if metadata is None:
                return "unknown_message"
            index = metadata.referenced_by
            record = None if index is None else storage.milestone(index)
            if index is None or record is None:
                return "proof_unavailable"
            milestone = decode_message(record.raw).message.payload
            referenced = storage.referenced_by(index)
            if (
                not isinstance(milestone, Milestone)
                or inclusion_root(referenced) != milestone.essence.inclusion_root
            ):
                return "proof_unavailable"
            return {
                "message_id": message_id.hex(),
                "milestone_index": index,
                "milestone_id": record.milestone_id.hex(),
                "milestone_message_id": record.message_id.hex(),
                "inclusion_root": milestone.essence.inclusion_root.hex(),
                "path": render_path(inclusion_path(referenced, message_id)),
            }

        found = await self._node.read_storage(read)
        if isinstance(found, str):
            raise ApiError(found, f"no inclusion path for {message_id.hex()} on this node")
        return JSONResponse(found)


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
