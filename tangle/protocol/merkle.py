"""Merkle tree hash in the style of RFC 6962 section 2.1, with BLAKE2b-256.

```
MTH({})       = BLAKE2b-256()
MTH({d0})     = BLAKE2b-256(0x00 || d0)
MTH(D[0:n])   = BLAKE2b-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))   k = largest power of 2 < n
```
The prefixes keep leaves and inner nodes apart, so no inner node can pass as a leaf. An audit
path (`merkle_path`) shows one leaf's place under a root without the other leaves
(`root_from_path`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.errors import InvalidFieldError

from .codec import require_uint
from .ids import HASH_SIZE, MerkleRoot, blake2b_256

if TYPE_CHECKING:
    from collections.abc import Sequence

_LEAF = b"\x00"
_NODE = b"\x01"
MAX_DEPTH: Final = 32
MAX_LEAVES: Final = 1 << MAX_DEPTH


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


@dataclass(frozen=True, slots=True, kw_only=True)
class MerklePath:
    """An audit path: what shows that one leaf is at `index` of a tree of `size` leaves.

    `siblings` are the roots of the subtrees beside the leaf's branch, from the leaf up (the
    audit path of RFC 6962 section 2.1.1)."""

    index: int
    """The leaf's position, 0..size-1."""
    size: int
    """How many leaves the tree has, 1..MAX_LEAVES."""
    siblings: tuple[bytes, ...]
    """32-byte subtree hashes, bottom up; at most MAX_DEPTH of them."""

    def __post_init__(self) -> None:
        require_uint("MerklePath.size", self.size, MAX_LEAVES, minimum=1)
        require_uint("MerklePath.index", self.index, self.size - 1)
        if len(self.siblings) > MAX_DEPTH or any(
            not isinstance(s, bytes) or len(s) != HASH_SIZE for s in self.siblings
        ):
            raise InvalidFieldError(
                "MerklePath.siblings", f"at most {MAX_DEPTH} hashes of 32 bytes"
            )


def merkle_path(leaves: Sequence[bytes], index: int) -> MerklePath:
    """The audit path of leaf `index` of `leaves` (for several paths over the same leaves,
    build one `MerkleTree`)."""
    require_uint("merkle_path.index", index, len(leaves) - 1)
    return MerkleTree(leaves).path(index)


class MerkleTree:
    """The tree over `leaves` (kept by reference: do not change them), built once, keeping the
    hashes of its subtrees of `KEPT_FROM` leaves or more: after the O(n) build each audit path
    costs at most about 2 x KEPT_FROM + depth hashes, and the kept hashes take about
    n / KEPT_FROM x 2 entries."""

    KEPT_FROM: Final = 256

    __slots__ = ("_kept", "_leaves", "root")

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self._leaves = leaves
        self._kept: dict[tuple[int, int], bytes] = {}
        self.root = MerkleRoot(self._subtree(0, len(leaves)))

    def path(self, index: int) -> MerklePath:
        """The audit path of leaf `index`."""
        require_uint("MerkleTree.path.index", index, len(self._leaves) - 1)
        siblings: list[bytes] = []
        lo, hi, m = 0, len(self._leaves), index
        # Descend from the root to the leaf, keeping the subtree beside each step.
        while hi - lo > 1:
            k = 1 << ((hi - lo - 1).bit_length() - 1)
            if m < k:
                siblings.append(self._subtree(lo + k, hi))
                hi = lo + k
            else:
                siblings.append(self._subtree(lo, lo + k))
                lo, m = lo + k, m - k
        return MerklePath(index=index, size=len(self._leaves), siblings=tuple(reversed(siblings)))

    def _subtree(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n < self.KEPT_FROM:
            return _hash(self._leaves[lo:hi])
        held = self._kept.get((lo, hi))
        if held is None:
            k = 1 << ((n - 1).bit_length() - 1)
            held = blake2b_256(_NODE, self._subtree(lo, lo + k), self._subtree(lo + k, hi))
            self._kept[(lo, hi)] = held
        return held


def root_from_path(leaf: bytes, path: MerklePath) -> MerkleRoot | None:
    """The root a tree with `leaf` at `path.index` has, or None when the path's length does
    not fit a tree of `path.size` leaves."""
    # The shape of the tree fixes, at each level from the leaf up, whether the sibling is on
    # the left or the right; walk the same descent as `merkle_path` to learn it.
    sides: list[bool] = []  # True: the sibling is on the right
    lo, hi, m = 0, path.size, path.index
    while hi - lo > 1:
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        sides.append(m < k)
        if m < k:
            hi = lo + k
        else:
            lo, m = lo + k, m - k
    if len(sides) != len(path.siblings):
        return None
    node = blake2b_256(_LEAF, leaf)
    for sibling, right in zip(path.siblings, reversed(sides), strict=True):
        node = blake2b_256(_NODE, node, sibling) if right else blake2b_256(_NODE, sibling, node)
    return MerkleRoot(node)
