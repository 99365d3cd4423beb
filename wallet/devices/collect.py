"""Collecting a reading's proof bundle from a node, over its HTTP API (`NodeClient`).

The gateway that anchored a batch holds the batch (readings and leaves); the node holds the
rest. `collect_bundle` asks it for:

1. the anchor message's metadata: the milestone N that referenced it (none yet: wait);
2. the anchor's bytes, and milestone N (read from the bytes of the message that carries it);
3. the messages N referenced: its past cone down to messages an earlier milestone referenced,
   walked over `GET /messages/{id}` and its metadata (at most `max_cone` messages); their
   inclusion root must be the one N carries, else the node's answers disagree with N;
4. the device's registry entry with its audit path (`GET /devices/{id}?proof=true`). The node
   serves it at its confirmed milestone; that path proves the entry at N only while the registry
   root is still N's, so a gateway collects its proofs as soon as N is confirmed, before any
   later milestone changes the registry (`ProofUnavailableError` otherwise).

Every answer is checked when the bundle is verified (`verify_bundle`); nothing here is trusted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from tangle.ledger.inclusion import inclusion_path, inclusion_root
from tangle.ledger.registry import encode_entry
from tangle.protocol.milestone import encode_milestone
from wallet.errors import NotFoundError

from .errors import NotRegisteredError, ProofUnavailableError
from .proof import ProofBundle
from .reading import read_header

if TYPE_CHECKING:
    from tangle.protocol.ids import MessageId
    from tangle.protocol.milestone import Milestone
    from wallet.client import NodeClient

    from .batch import Batch

MAX_CONE: Final = 10_000


async def referenced_by(client: NodeClient, milestone: Milestone, max_cone: int) -> list[MessageId]:
    """The messages `milestone` referenced (its new past cone), read from the node."""
    index = milestone.essence.index
    found: list[MessageId] = []
    seen: set[MessageId] = set()
    stack = list(milestone.essence.parents)
    while stack:
        message_id = stack.pop()
        if message_id in seen:
            continue
        seen.add(message_id)
        try:
            metadata = await client.metadata(message_id)
        except NotFoundError:
            continue  # an entry point of the node (the genesis): not in any cone
        if metadata.referenced_by != index:
            continue
        found.append(message_id)
        if len(found) > max_cone:
            raise ProofUnavailableError(f"milestone {index} references over {max_cone} messages")
        stack.extend((await client.message(message_id)).message.parents)
    if inclusion_root(found) != milestone.essence.inclusion_root:
        raise ProofUnavailableError(
            f"the node's cone of milestone {index} is not the one it signed"
        )
    return found


async def collect_bundle(
    client: NodeClient,
    batch: Batch,
    index: int,
    anchor_id: MessageId,
    *,
    max_cone: int = MAX_CONE,
) -> ProofBundle:
    """The proof bundle of reading `index` of `batch`, which message `anchor_id` anchored."""
    metadata = await client.metadata(anchor_id)
    milestone_index = metadata.referenced_by
    if milestone_index is None:
        raise ProofUnavailableError("no milestone has confirmed the anchor yet")
    anchor = await client.message_bytes(anchor_id)
    _, milestone = await client.milestone(milestone_index)
    referenced = await referenced_by(client, milestone, max_cone)
    raw = batch.readings[index]
    device_id = read_header(raw).device_id
    registered = await client.device(device_id, proof=True)
    if registered is None:
        raise NotRegisteredError(device_id)
    if (
        registered.registry_root != milestone.essence.registry_root
        or registered.registry_path is None
    ):
        raise ProofUnavailableError(
            f"the registry changed after milestone {milestone_index} (the node is at "
            f"{registered.ledger_index}): the entry at the anchor's milestone is not served"
        )
    return ProofBundle(
        reading=raw,
        batch_path=batch.path(index),
        anchor=anchor,
        inclusion_path=inclusion_path(referenced, anchor_id),
        milestone=encode_milestone(milestone),
        registry_entry=encode_entry(registered.entry),
        registry_path=registered.registry_path,
    )
