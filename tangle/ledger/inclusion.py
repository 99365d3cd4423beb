"""The inclusion root: a milestone's commitment to every message it references.

`applied_merkle_root` covers only the transactions a milestone applied, so tagged data (a batch
anchor, say) had no proof of inclusion. The inclusion root is the Merkle root
(`tangle.protocol.merkle`) of the ids of all messages the milestone newly references, whatever
they carry or whether they conflict, sorted bytewise (an order anyone holding the set can
rebuild, whatever order it was stored in). `inclusion_path` gives one message's audit path to it.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from tangle.errors import InvalidFieldError
from tangle.protocol.merkle import MerklePath, merkle_path, merkle_root, root_from_path

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tangle.protocol.ids import MerkleRoot, MessageId


def inclusion_root(referenced: Iterable[MessageId]) -> MerkleRoot:
    """The inclusion root of the messages a milestone references."""
    return merkle_root(sorted(referenced))


def inclusion_path(referenced: Iterable[MessageId], message_id: MessageId) -> MerklePath:
    """The audit path of `message_id` to the inclusion root of `referenced`; raises
    `InvalidFieldError` if it is not among them."""
    leaves = sorted(referenced)
    position = bisect.bisect_left(leaves, message_id)
    if position == len(leaves) or leaves[position] != message_id:
        raise InvalidFieldError("message_id", f"{message_id.hex()} is not referenced")
    return merkle_path(leaves, position)


def is_included(message_id: MessageId, path: MerklePath, root: MerkleRoot) -> bool:
    """True iff `path` shows `message_id` under inclusion root `root`."""
    return root_from_path(message_id, path) == root
