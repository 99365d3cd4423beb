"""The wire format of the HTTP API: error codes and JSON views of ledger objects (the OpenAPI
document in `_openapi.py` describes both).

Conventions of every JSON body: addresses are bech32m with the node's network prefix
(`tpdev1...`, see `bech32.py`) under `address`, with the same address in hex under
`address_hex`; where a path or query takes an address, either form is accepted. Ids, keys and
byte strings are lowercase hex without a prefix; amounts, network ids and nonces (u64 values
that can exceed 2**53) are decimal strings; indexes and timestamps are JSON numbers. Every error
is `{"error": {"code": ..., "message": ...}}` with one of the codes below; codes are stable,
messages are for people.

A refused message's code is derived from its `TangleError` class: the class name without its
`Error` suffix, in snake case (`InsufficientWorkError` -> `insufficient_work`,
`DecodeError` -> `decode`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from tangle import errors
from tangle.protocol.bech32 import encode_address
from tangle.protocol.channel import ChannelOutput
from tangle.protocol.device import DeviceRecord
from tangle.protocol.message import PROTOCOL_VERSION
from tangle.protocol.payload import TaggedData
from tangle.protocol.transaction import ReferenceUnlock, SignatureUnlock, Transaction

from ._devices import render_record

if TYPE_CHECKING:
    from tangle.ledger.records import MilestoneRecord
    from tangle.protocol.bech32 import Network
    from tangle.protocol.ids import Address, MessageId, OutputId
    from tangle.protocol.message import Parsed
    from tangle.protocol.milestone import Milestone
    from tangle.protocol.payload import Payload
    from tangle.protocol.transaction import Output, Unlock
    from tangle.storage.storage import MessageMetadata, StoredOutput

# -- error codes -------------------------------------------------------------------------------


def error_code_of(cls: type[errors.TangleError]) -> str:
    """`InsufficientWorkError` -> `insufficient_work`."""
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*", cls.__name__.removesuffix("Error"))
    return "_".join(word.lower() for word in words) or "tangle"


TANGLE_ERROR_CODES: Final[dict[type[errors.TangleError], str]] = {
    cls: error_code_of(cls)
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.TangleError)
}
"""The code of each error class of `tangle.errors` (HTTP 400 unless in `SERVER_SIDE_ERRORS`);
errors defined elsewhere follow the same rule."""

SERVER_SIDE_ERRORS: Final = (
    errors.NodeHaltedError,
    errors.StorageError,
    errors.NonceSpaceExhaustedError,
    errors.WorkCancelledError,
)
"""Errors that are the node's condition, not the request's fault: HTTP 503."""

API_ERROR_CODES: Final[dict[str, tuple[int, str]]] = {
    "bad_request": (400, "the request is malformed in a way no other code names"),
    "invalid_json": (400, "the body is not a JSON document"),
    "invalid_body": (400, "the JSON body lacks a field or has one of the wrong type"),
    "invalid_hex": (400, "a body field is not lowercase or uppercase hex of whole bytes"),
    "invalid_id": (
        400,
        "an id or address in the path or query is not 64 hex digits (68 for an output id)",
    ),
    "invalid_address": (400, "an address is neither 64 hex digits nor bech32m of this network"),
    "invalid_parameter": (400, "a path or query parameter is out of range"),
    "invalid_header": (400, "a header (Content-Length) cannot be read"),
    "unauthorized": (401, "an admin endpoint was called without a bearer token"),
    "forbidden": (403, "the bearer token is wrong"),
    "not_found": (404, "no such route"),
    "unknown_message": (404, "no message with this id is stored"),
    "unknown_milestone": (404, "no milestone with this index was applied"),
    "unknown_output": (
        404,
        "no output with this id is unspent or was spent inside the pruning window (one a "
        "milestone both created and spent never was)",
    ),
    "unknown_channel": (404, "no channel with this id is open or closing on the ledger"),
    "unknown_peer": (404, "no such peer"),
    "unknown_device": (404, "no device with this id is registered"),
    "unknown_device_key": (404, "the key is no registered device's current key"),
    "proof_unavailable": (404, "the message is not referenced yet, or its milestone was pruned"),
    "method_not_allowed": (405, "the route exists, the method does not"),
    "body_too_large": (413, "the body is over the size limit (checked while it is read)"),
    "unsupported_media_type": (415, "the body is neither application/json nor octet-stream"),
    "pow_rate_limited": (429, "this client used up its proof-of-work allowance (see Retry-After)"),
    "pow_in_flight": (429, "this client already has a proof-of-work running"),
    "pow_capacity": (429, "the node runs as many proofs-of-work as it allows"),
    "proof_rate_limited": (429, "this client rebuilt as many past registry trees as it may"),
    "too_many_streams": (429, "the node serves as many event streams as it allows"),
    "internal_error": (500, "a bug; the node keeps running"),
    "node_unsynced": (503, "the node is catching up with the network (see Retry-After)"),
}
"""Codes of errors the API itself raises: code -> (HTTP status, meaning)."""


def tangle_error_code(exc: errors.TangleError) -> str:
    return error_code_of(type(exc))


def tangle_error_status(exc: errors.TangleError) -> int:
    return 503 if isinstance(exc, SERVER_SIDE_ERRORS) else 400


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


# -- JSON views --------------------------------------------------------------------------------


def render_payload(payload: Payload, network: Network) -> dict[str, Any]:
    if isinstance(payload, TaggedData):
        return {"type": "tagged_data", "tag": payload.tag.hex(), "data": payload.data.hex()}
    if isinstance(payload, Transaction):
        essence = payload.essence
        return {
            "type": "transaction",
            "transaction_id": payload.id.hex(),
            "network_id": str(essence.network_id),
            "inputs": [i.hex() for i in essence.inputs],
            "outputs": [_render_output_body(o, network) for o in essence.outputs],
            "memo": essence.memo.hex(),
            "unlocks": [_render_unlock(u) for u in payload.unlocks],
        }
    if isinstance(payload, DeviceRecord):
        return {"type": "device_record", **render_record(payload)}
    return {"type": "milestone", **render_milestone_payload(payload)}


def render_milestone_payload(milestone: Milestone) -> dict[str, Any]:
    essence = milestone.essence
    change = essence.key_set_change
    return {
        "milestone_id": milestone.id.hex(),
        "index": essence.index,
        "timestamp_ms": essence.timestamp_ms,
        "previous": essence.previous.hex(),
        "parents": [p.hex() for p in essence.parents],
        "applied_merkle_root": essence.applied_merkle_root.hex(),
        "inclusion_root": essence.inclusion_root.hex(),
        "registry_root": essence.registry_root.hex(),
        "key_set_change": None
        if change is None
        else {
            "activation_index": change.activation_index,
            "threshold": change.key_set.threshold,
            "public_keys": [k.hex() for k in change.key_set.public_keys],
        },
        "signatures": [
            {"public_key": s.public_key.hex(), "signature": s.signature.hex()}
            for s in milestone.signatures
        ],
    }


def render_message(parsed: Parsed, network: Network) -> dict[str, Any]:
    message = parsed.message
    return {
        "id": parsed.id.hex(),
        "protocol_version": PROTOCOL_VERSION,
        "network_id": str(message.network_id),
        "parents": [p.hex() for p in message.parents],
        "payload": render_payload(message.payload, network),
        "nonce": str(message.nonce),
        "raw": parsed.raw.hex(),
    }


def render_metadata(message_id: MessageId, metadata: MessageMetadata) -> dict[str, Any]:
    return {
        "id": message_id.hex(),
        "solid": metadata.solid,
        "referenced_by": metadata.referenced_by,
        "inclusion": metadata.inclusion.name.lower(),
        "conflict": metadata.conflict.name.lower(),
    }


def render_milestone(record: MilestoneRecord, milestone: Milestone) -> dict[str, Any]:
    return {**render_milestone_payload(milestone), "message_id": record.message_id.hex()}


def render_address(address: Address, network: Network) -> dict[str, str]:
    """An address in both forms: `address` (bech32m) and `address_hex`."""
    return {"address": encode_address(address, network), "address_hex": address.hex()}


def render_output(output_id: OutputId, output: Output, network: Network) -> dict[str, Any]:
    return {
        "output_id": output_id.hex(),
        "transaction_id": output_id.transaction_id.hex(),
        "output_index": output_id.output_index,
        **_render_output_body(output, network),
    }


def render_stored_output(
    output_id: OutputId, stored: StoredOutput, ledger_index: int, network: Network
) -> dict[str, Any]:
    """`GET /api/v1/outputs/{output_id}`: the output, where it was created and, once spent, by
    which transaction at which milestone."""
    return {
        "ledger_index": ledger_index,
        "output": render_output(output_id, stored.output, network),
        "created_at": stored.created_at,
        "spent_by": None if stored.spent_by is None else stored.spent_by.hex(),
        "spent_at": stored.spent_at,
    }


def _render_output_body(output: Output, network: Network) -> dict[str, Any]:
    """An output's fields; a channel's address is its channel id (what it is indexed by)."""
    body: dict[str, Any] = {
        "type": "basic",
        **render_address(output.address, network),
        "amount": str(output.amount),
    }
    if isinstance(output, ChannelOutput):
        body |= {
            "type": "channel",
            "channel_id": output.channel_id.hex(),
            "payer": output.payer.hex(),
            "payee": output.payee.hex(),
            "bidirectional": output.bidirectional,
            "challenge_period": output.challenge_period,
            "expiry": output.expiry,
            "sequence": str(output.sequence),
            "payee_balance": str(output.payee_balance),
            "closing_since": output.closing_since,
        }
    return body


def _render_unlock(unlock: Unlock) -> dict[str, Any]:
    if isinstance(unlock, SignatureUnlock):
        return {
            "type": "signature",
            "public_key": unlock.public_key.hex(),
            "signature": unlock.signature.hex(),
        }
    if isinstance(unlock, ReferenceUnlock):
        return {"type": "reference", "index": unlock.index}
    proof = unlock.proof
    return {
        "type": "channel",
        "op": unlock.op.name.lower(),
        "channel_id": unlock.channel_id.hex(),
        "payer": unlock.payer.hex(),
        "payee": unlock.payee.hex(),
        "payer_signature": _hex_or_none(unlock.payer_signature),
        "payee_signature": _hex_or_none(unlock.payee_signature),
        "proof": None
        if proof is None
        else {
            "sequence": str(proof.proof.sequence),
            "payee_balance": str(proof.proof.payee_balance),
            "payer_signature": proof.payer_signature.hex(),
            "payee_signature": _hex_or_none(proof.payee_signature),
        },
    }


def _hex_or_none(value: bytes | None) -> str | None:
    return None if value is None else value.hex()
