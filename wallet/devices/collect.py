"""Collecting a reading's proof bundle from a node, over its HTTP API (`NodeClient`).

The gateway that anchored a batch holds the batch (readings and leaves); the node holds the
rest. `collect_bundle` asks it for:

1. the anchor message's audit path to the inclusion root of the milestone N that referenced it
   (`GET /messages/{id}/inclusion`; none while no milestone has: wait), and the anchor's bytes;
2. milestone N, read from the bytes of the message that carries it;
3. the device's registry entry with its audit path (`GET /devices/{id}?proof=true`). The node
   serves it at its confirmed milestone; that path proves the entry at N only while the registry
   root is still N's, so a gateway collects its proofs as soon as N is confirmed, before a later
   milestone changes the registry (`ProofUnavailableError` otherwise).

Nothing here is trusted: `verify_bundle` checks every link of what was collected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tangle.ledger.registry import encode_entry
from tangle.protocol.milestone import Milestone
from tangle.protocol.proof_bundle import ProofBundle, bundle_milestone
from wallet.errors import NotFoundError

from .errors import NotRegisteredError, ProofUnavailableError
from .reading import read_header

if TYPE_CHECKING:
    from tangle.protocol.ids import MessageId
    from wallet.client import NodeClient

    from .batch import Batch


async def collect_bundle(
    client: NodeClient, batch: Batch, index: int, anchor_id: MessageId
) -> ProofBundle:
    """The proof bundle of reading `index` of `batch`, which message `anchor_id` anchored."""
    inclusion = await client.inclusion(anchor_id)
    if inclusion is None:
        raise ProofUnavailableError("no milestone has confirmed the anchor yet (or it is pruned)")
    anchor = await client.message_bytes(anchor_id)
    milestone = (await client.message(inclusion.milestone_message_id)).message.payload
    if not isinstance(milestone, Milestone):
        raise ProofUnavailableError("the node's milestone message carries no milestone")
    raw = batch.readings[index]
    device_id = read_header(raw).device_id
    try:
        registered = await client.device(device_id, at=inclusion.milestone_index)
    except NotFoundError as exc:
        raise ProofUnavailableError(
            f"the node no longer keeps the registry as milestone {inclusion.milestone_index} "
            f"left it ({exc.code})"
        ) from None
    if registered is None:
        raise NotRegisteredError(device_id)
    if (
        registered.registry_root != milestone.essence.registry_root
        or registered.registry_path is None
    ):
        raise ProofUnavailableError(
            f"the node's registry at milestone {inclusion.milestone_index} is not the one that "
            "milestone signed"
        )
    return ProofBundle(
        reading=raw,
        batch_path=batch.path(index),
        anchor=anchor,
        inclusion_path=inclusion.path,
        milestone=bundle_milestone(milestone),
        registry_entry=encode_entry(registered.entry),
        registry_path=registered.registry_path,
    )
