"""Merkle tree hash in the style of RFC 6962 section 2.1, with BLAKE2b-256.

```
MTH({})       = BLAKE2b-256()
MTH({d0})     = BLAKE2b-256(0x00 || d0)
MTH(D[0:n])   = BLAKE2b-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))   k = largest power of 2 < n
```
The prefixes keep leaves and inner nodes apart, so no inner node can pass as a leaf. An audit
path (`merkle_path`) proves one leaf under a root without the other leaves (`root_from_path`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tangle.errors import InvalidFieldError

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


def leaf_hash(leaf: bytes) -> bytes:
    """The hash of one leaf in the tree (`MTH({d})`)."""
    return blake2b_256(_LEAF, leaf)


def merkle_path(leaves: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    """The audit path of leaf `index` (RFC 9162 section 2.1.3.1): the sibling hashes from the
    leaf up to the root, nearest first."""
    if not 0 <= index < len(leaves):
        raise InvalidFieldError("merkle_path.index", f"{index} outside 0..{len(leaves) - 1}")
    path: list[bytes] = []
    lo, hi = 0, len(leaves)
    while hi - lo > 1:
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        if index - lo < k:
            path.append(_hash(leaves[lo + k : hi]))
            hi = lo + k
        else:
            path.append(_hash(leaves[lo : lo + k]))
            lo += k
    path.reverse()
    return tuple(path)


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> MerkleRoot:
    """The root that `path` proves `leaf` at `index` of a tree of `size` leaves to be under
    (RFC 9162 section 2.1.3.2); `InvalidFieldError` when the path cannot belong to such a tree
    (index outside the tree, or too many or too few hashes)."""
    if not 0 <= index < size:
        raise InvalidFieldError("merkle path index", f"{index} outside a tree of {size}")
    fn, sn = index, size - 1
    node = leaf_hash(leaf)
    for sibling in path:
        if sn == 0:
            raise InvalidFieldError("merkle path", "longer than the tree is deep")
        if fn & 1 or fn == sn:
            node = blake2b_256(_NODE, sibling, node)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            node = blake2b_256(_NODE, node, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidFieldError("merkle path", "shorter than the tree is deep")
    return MerkleRoot(node)
