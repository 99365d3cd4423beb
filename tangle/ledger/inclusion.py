"""The inclusion root: a milestone's commitment to every message it references.

`applied_merkle_root` covers only the transactions a milestone applied, so tagged data (a batch
anchor, say) had no proof of inclusion. The inclusion root is the Merkle root
(`tangle.protocol.merkle`) of the ids of all messages the milestone newly references, whatever
they carry or whether they conflict, sorted bytewise (an order anyone holding the set can
rebuild, whatever order it was stored in). `inclusion_path` gives one message's audit path to it;
`InclusionTree` keeps one milestone's tree for many paths (O(log n) subtree lookups each after
the O(n) build).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from tangle.errors import InvalidFieldError
from tangle.protocol.merkle import MerklePath, MerkleTree, merkle_root, root_from_path

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tangle.protocol.ids import MerkleRoot, MessageId


def inclusion_root(referenced: Iterable[MessageId]) -> MerkleRoot:
    """The inclusion root of the messages a milestone references."""
    return merkle_root(sorted(referenced))


class InclusionTree:
    """The inclusion tree of one milestone's referenced messages, built once."""

    __slots__ = ("_ids", "_tree")

    def __init__(self, referenced: Iterable[MessageId]) -> None:
        self._ids = sorted(referenced)
        self._tree = MerkleTree(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def root(self) -> MerkleRoot:
        return self._tree.root

    def path(self, message_id: MessageId) -> MerklePath:
        """The audit path of `message_id`; `InvalidFieldError` if it is not referenced."""
        position = bisect.bisect_left(self._ids, message_id)
        if position == len(self._ids) or self._ids[position] != message_id:
            raise InvalidFieldError("message_id", f"{message_id.hex()} is not referenced")
        return self._tree.path(position)


def inclusion_path(referenced: Iterable[MessageId], message_id: MessageId) -> MerklePath:
    """The audit path of `message_id` to the inclusion root of `referenced`; raises
    `InvalidFieldError` if it is not among them."""
    return InclusionTree(referenced).path(message_id)


def is_included(message_id: MessageId, path: MerklePath, root: MerkleRoot) -> bool:
    """True iff `path` shows `message_id` under inclusion root `root`."""
    return root_from_path(message_id, path) == root
