"""Batches of signed readings and the anchor that puts a batch's Merkle root on the tangle.

A batch is a list of signed readings (each as its canonical bytes, plain or sealed). Leaf `i` of
the batch's Merkle tree (`tangle.protocol.merkle`) is BLAKE2b-256 of reading `i`'s bytes, so a
sealed reading is anchored and proved by its ciphertext and the anchoring party never needs the
data key. One batch is anchored by one tagged-data message:

```
tag   ANCHOR_TAG
data  u8   version       ANCHOR_VERSION
      u64  network_id
      32   batch_root    Merkle root of the leaves
      u32  leaf_count    1..MAX_BATCH
```
The count is part of the anchor, so a batch path is checked against the tree the anchor names.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.errors import InvalidFieldError
from tangle.protocol.codec import U64_MAX, require_uint
from tangle.protocol.ids import MerkleRoot, blake2b_256
from tangle.protocol.merkle import MerklePath, merkle_path, merkle_root, root_from_path
from tangle.protocol.payload import TaggedData

from .errors import AnchorPayloadError, BatchPathError

if TYPE_CHECKING:
    from collections.abc import Sequence

ANCHOR_TAG: Final = b"tanglepay/anchor"
ANCHOR_VERSION: Final = 1
MAX_BATCH: Final = 1 << 16
"""Most readings in one batch (a batch path is then at most 16 hashes)."""

_ANCHOR: Final = struct.Struct("<BQ32sI")


@dataclass(frozen=True, slots=True, kw_only=True)
class Anchor:
    """What an anchor message's tagged data says."""

    network_id: int
    """The network of the readings."""
    batch_root: MerkleRoot
    """The Merkle root of the batch's leaves."""
    leaf_count: int
    """How many readings the batch holds."""

    def __post_init__(self) -> None:
        require_uint("Anchor.network_id", self.network_id, U64_MAX)
        if not isinstance(self.batch_root, MerkleRoot):
            raise InvalidFieldError("Anchor.batch_root", "must be a MerkleRoot")
        require_uint("Anchor.leaf_count", self.leaf_count, MAX_BATCH, minimum=1)


def anchor_payload(anchor: Anchor) -> TaggedData:
    """The tagged-data payload that anchors `anchor`."""
    data = _ANCHOR.pack(ANCHOR_VERSION, anchor.network_id, anchor.batch_root, anchor.leaf_count)
    return TaggedData(tag=ANCHOR_TAG, data=data)


def read_anchor(payload: object) -> Anchor:
    """The anchor a payload carries; `AnchorPayloadError` if it is not exactly one."""
    if not isinstance(payload, TaggedData) or payload.tag != ANCHOR_TAG:
        raise AnchorPayloadError("the message is not tagged data with the anchor tag")
    if len(payload.data) != _ANCHOR.size:
        raise AnchorPayloadError(f"anchor data of {len(payload.data)} bytes, not {_ANCHOR.size}")
    version, network_id, root, count = _ANCHOR.unpack(payload.data)
    if version != ANCHOR_VERSION:
        raise AnchorPayloadError(f"anchor version {version}, this code reads {ANCHOR_VERSION}")
    if not 1 <= count <= MAX_BATCH:
        raise AnchorPayloadError(f"leaf count {count} is outside 1..{MAX_BATCH}")
    return Anchor(network_id=network_id, batch_root=MerkleRoot(root), leaf_count=count)


def leaf_of(raw_reading: bytes) -> bytes:
    """The batch leaf of a signed reading (plain or sealed): BLAKE2b-256 of its bytes."""
    return blake2b_256(raw_reading)


def check_batch_path(raw_reading: bytes, path: MerklePath, anchor: Anchor) -> None:
    """Raise `BatchPathError` unless `path` puts `raw_reading` under the anchored root."""
    if path.size != anchor.leaf_count:
        raise BatchPathError(
            f"a path in a batch of {path.size}, the anchor names {anchor.leaf_count}"
        )
    if root_from_path(leaf_of(raw_reading), path) != anchor.batch_root:
        raise BatchPathError("the reading and its path lead to another root")


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """A closed batch of signed readings, ready to anchor."""

    network_id: int
    """The network of the readings."""
    readings: tuple[bytes, ...]
    """The raw signed readings, in leaf order (1..MAX_BATCH)."""
    leaves: tuple[bytes, ...]
    """`leaf_of` each reading."""
    root: MerkleRoot
    """Merkle root of `leaves`."""

    @classmethod
    def of(cls, network_id: int, readings: Sequence[bytes], leaves: Sequence[bytes]) -> Batch:
        """A batch of `readings` whose leaves were already computed (the gateway's path)."""
        if not 1 <= len(readings) <= MAX_BATCH or len(leaves) != len(readings):
            raise InvalidFieldError("Batch.readings", f"{len(readings)} outside 1..{MAX_BATCH}")
        return cls(
            network_id=network_id,
            readings=tuple(readings),
            leaves=tuple(leaves),
            root=merkle_root(leaves),
        )

    @property
    def anchor(self) -> Anchor:
        return Anchor(network_id=self.network_id, batch_root=self.root, leaf_count=len(self.leaves))

    def path(self, index: int) -> MerklePath:
        """The audit path of reading `index`."""
        return merkle_path(self.leaves, index)
