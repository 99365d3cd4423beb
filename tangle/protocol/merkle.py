"""Merkle tree hash in the style of RFC 6962 section 2.1, with BLAKE2b-256.

```
MTH({})       = BLAKE2b-256()
MTH({d0})     = BLAKE2b-256(0x00 || d0)
MTH(D[0:n])   = BLAKE2b-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))   k = largest power of 2 < n
```
The prefixes keep leaves and inner nodes apart, so no inner node can pass as a leaf.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ids import MerkleRoot, blake2b_256

if TYPE_CHECKING:
    from collections.abc import Sequence

_LEAF = b"\x00"
_NODE = b"\x01"


def merkle_root(leaves: Sequence[bytes]) -> MerkleRoot:
    """The tree hash of `leaves`, in order."""
    return MerkleRoot(_hash(leaves))


def _hash(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return blake2b_256()
    if n == 1:
        return blake2b_256(_LEAF, leaves[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return blake2b_256(_NODE, _hash(leaves[:k]), _hash(leaves[k:]))
