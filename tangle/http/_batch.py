"""Batch submission, `POST /api/v1/messages/batch`: for gateways that front many devices and
forward their messages together (one HTTP request, one trip to the node's writer thread and one
storage commit for up to `MAX_BATCH` messages, where one request each costs the gateway and the
node far more than checking the message itself).

The body is one of

```
application/octet-stream   u16 count (1..MAX_BATCH), then count x (u32 length, message bytes)
                           (`tangle.protocol.gateway_request.decode_batch`):
                           each length at most MAX_MESSAGE_SIZE, nothing after the last message;
                           the whole body at most BATCH_BODY_LIMIT bytes
application/json           {"messages": [hex, ...]} with 1..MAX_BATCH messages
```

A body that cannot be read as a batch is refused as a whole, with the codes of the single
endpoint (a malformed octet framing with the `DecodeError` code that names it). Otherwise the
answer is 200 and one result per message, in the order sent: `{"id"}` if the node accepted it,
`{"id", "error": {"code", "message"}}` if it refused it (the codes of a refused single message:
`duplicate_message` means it is already there). The id is BLAKE2b-256 of the bytes sent, so a
gateway can match results to messages either way. Messages are checked in order, so a message
may approve one sent before it in the same batch.

A gateway signs its batches (headers `Tangle-Gateway`, `Tangle-Gateway-Signature`, see
`tangle/protocol/gateway_request.py`): a constrained device's message is taken only from the
gateway it is registered behind (`unserved_device`, `gateway_not_serving` otherwise), and a
gateway's batch carries no other device's message (`tangle/ledger/gateway_rule.py`). A claim
that does not hold refuses the whole batch (`gateway_signature`, `gateway_not_serving`).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Final

from tangle.errors import TangleError
from tangle.protocol.gateway_request import MAX_BATCH as MAX_BATCH
from tangle.protocol.gateway_request import decode_batch as decode_batch
from tangle.protocol.gateway_request import encode_batch as encode_batch
from tangle.protocol.ids import blake2b_256

from ._components import _ID, _MESSAGE_HEX, _TANGLE_CODES, _UINT, _array, _object, _ref
from ._openapi import _BAD_BODY, _op
from ._schema import tangle_error_code

if TYPE_CHECKING:
    from tangle.protocol.message import Parsed

BATCH_BODY_LIMIT: Final = 1 << 20
"""Largest octet-stream body; a JSON body may be twice that (hex) and a little more."""
BATCH_JSON_LIMIT: Final = 2 * BATCH_BODY_LIMIT + 1024


def batch_result(raw: bytes, result: Parsed | TangleError) -> dict[str, Any]:
    """The JSON result of one message of a batch."""
    if isinstance(result, TangleError):
        return {
            "id": blake2b_256(raw).hex(),
            "error": {"code": tangle_error_code(result), "message": str(result)},
        }
    return {"id": result.id.hex()}


_SCHEMAS: Final[dict[str, Any]] = {
    "SubmitBatchJson": _object(
        {"messages": {**_array(_MESSAGE_HEX), "minItems": 1, "maxItems": MAX_BATCH}}
    ),
    "BatchResult": _object(
        {"id": _ID},
        {
            "error": _object(
                {"code": {"type": "string", "enum": _TANGLE_CODES}, "message": {"type": "string"}}
            )
        },
    ),
    "Batch": _object(
        {
            "accepted": _UINT,
            "rejected": _UINT,
            "results": _array(_ref("BatchResult")),
        }
    ),
}


def with_batch(document: dict[str, Any]) -> dict[str, Any]:
    """`document` (the API's OpenAPI document) with the batch endpoint described."""
    out = copy.deepcopy(document)
    operation = _op(
        "Submit up to 256 messages at once (gateways); one result per message, in order",
        200,
        "Batch",
        *_BAD_BODY,
        "unsupported_media_type",
        body={
            "application/octet-stream": {
                "schema": {"type": "string", "contentMediaType": "application/octet-stream"}
            },
            "application/json": {"schema": _ref("SubmitBatchJson")},
        },
        refusals=True,
    )
    operation["description"] = __doc__
    out["paths"]["/api/v1/messages/batch"] = {"post": operation}
    out["components"]["schemas"].update(_SCHEMAS)
    return out
