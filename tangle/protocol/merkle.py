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

import bisect
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.errors import InvalidFieldError

from .codec import require_uint
from .ids import HASH_SIZE, MerkleRoot, blake2b_256

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_LEAF = b"\x00"
_NODE = b"\x01"
MAX_DEPTH: Final = 32
MAX_LEAVES: Final = 1 << MAX_DEPTH


def merkle_root(leaves: Sequence[bytes]) -> MerkleRoot:
    """The tree hash of `leaves`, in order."""
    return MerkleRoot(_hash(leaves))


def _hash(leaves: Sequence[bytes]) -> bytes:
    """MTH, bottom up: pairing each level's nodes from the left, an odd last node carried up
    as it is, builds the same tree as the split at the largest power of two below n (the left
    part is always a complete subtree), without the recursion and the slices."""
    if not leaves:
        return blake2b_256()
    blake2b = hashlib.blake2b
    level = [blake2b(_LEAF + leaf, digest_size=HASH_SIZE).digest() for leaf in leaves]
    while len(level) > 1:
        pairs = [
            blake2b(_NODE + level[i] + level[i + 1], digest_size=HASH_SIZE).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            pairs.append(level[-1])
        level = pairs
    return level[0]


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


class SortedMerkleTree:
    """The tree over leaves kept in the order of their keys (the registry's: device ids), whose
    root is `merkle_root` of the leaves in key order, updated in place as leaves change.

    It holds each leaf's hash `H(0x00 || leaf)` (not the leaf) and the hashes of its subtrees of
    `KEPT_FROM` leaves or more, by leaf range. Replacing a leaf drops the kept subtrees on its
    path, so the next root costs O(log n + KEPT_FROM) hashes. Inserting a key moves every leaf
    after it, so the subtrees ending at or after the first insertion are dropped and rebuilt
    (O(n - position) hashes of two children; the leaves are not hashed again). A kept range that
    ends before the first insertion is an aligned complete subtree (only the right spine is
    not), which is a subtree of every larger tree too, so it stays valid and on the path of its
    leaves. `set_hashes` takes a tree back to an earlier state, removing keys as it must (the
    same rule, the other way).
    """

    KEPT_FROM: Final = 32

    __slots__ = ("_hashes", "_kept", "_keys")

    def __init__(self, leaves: Mapping[bytes, bytes] | None = None) -> None:
        keys = sorted(leaves or {})
        self._keys: list[bytes] = keys
        self._hashes: list[bytes] = [blake2b_256(_LEAF, (leaves or {})[k]) for k in keys]
        self._kept: dict[tuple[int, int], bytes] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def copy(self) -> SortedMerkleTree:
        """An independent copy (the lists and the kept hashes are copied, not the hashes)."""
        other = SortedMerkleTree()
        other._keys = self._keys.copy()
        other._hashes = self._hashes.copy()
        other._kept = self._kept.copy()
        return other

    def root_with(
        self, leaves: Mapping[bytes, bytes]
    ) -> tuple[MerkleRoot, SortedMerkleTree | None]:
        """The root the tree would have with `leaves` set, the tree unchanged. When every key is
        already there this costs what the update would (the changed leaves and kept subtrees
        are put back after); otherwise the updated copy comes back too, to use instead of
        updating this tree again."""
        found = [(self.index(key), leaf) for key, leaf in leaves.items()]
        changes = [(position, leaf) for position, leaf in found if position is not None]
        if len(changes) < len(found):
            other = self.copy()
            other.update(leaves)
            return other.root, other
        hashes, kept = self._hashes, self._kept
        old_hashes: dict[int, bytes] = {}
        old_kept: dict[tuple[int, int], bytes | None] = {}
        for position, leaf in changes:
            old_hashes.setdefault(position, hashes[position])
            hashes[position] = blake2b_256(_LEAF, leaf)
            for r in self._path(position):
                old_kept.setdefault(r, kept.pop(r, None))
        root = self.root
        for position, held in old_hashes.items():
            hashes[position] = held
        for r, value in old_kept.items():
            if value is None:
                kept.pop(r, None)
            else:
                kept[r] = value
        return root, None

    def update(self, leaves: Mapping[bytes, bytes]) -> None:
        """Set the leaf of each key in `leaves` (a new key is inserted in order)."""
        keys, hashes = self._keys, self._hashes
        fresh: list[bytes] = []
        for key, leaf in leaves.items():
            position = bisect.bisect_left(keys, key)
            if position < len(keys) and keys[position] == key:
                hashes[position] = blake2b_256(_LEAF, leaf)
                self._drop_path(position)
            else:
                fresh.append(key)
        if fresh:
            self._move({key: blake2b_256(_LEAF, leaves[key]) for key in fresh})

    def leaf_hash(self, key: bytes) -> bytes | None:
        """`H(0x00 || leaf)` of `key`'s leaf, None if the tree does not hold it."""
        index = self.index(key)
        return None if index is None else self._hashes[index]

    def set_hashes(self, hashes: Mapping[bytes, bytes | None]) -> None:
        """Set each key's leaf hash as `leaf_hash` gives it (None: remove the key): what
        takes a tree back to an earlier state."""
        moved: dict[bytes, bytes | None] = {}
        for key, held in hashes.items():
            position = self.index(key)
            if position is not None and held is not None:
                self._hashes[position] = held
                self._drop_path(position)
            elif position is not None or held is not None:
                moved[key] = held
        if moved:
            self._move(moved)

    def _move(self, moved: Mapping[bytes, bytes | None]) -> None:
        """Insert each key of `moved` with its leaf hash, or remove it (None), the keys new or
        held as that asks. One key is one list insertion or deletion; several are one merge
        pass over the lists (O(n + m log m), not m shifts of O(n) each). The kept subtrees
        ending at or after the first moved position are dropped."""
        keys, hashes = self._keys, self._hashes
        order = sorted(moved)
        first = bisect.bisect_left(keys, order[0])
        self._kept = {r: h for r, h in self._kept.items() if r[1] < first}
        if len(order) == 1:
            key = order[0]
            held = moved[key]
            if held is None:
                del keys[first], hashes[first]
            else:
                keys.insert(first, key)
                hashes.insert(first, held)
            return
        new_keys, new_hashes = keys[:first], hashes[:first]
        i, n = first, len(keys)
        for key in order:
            j = bisect.bisect_left(keys, key, i)
            new_keys += keys[i:j]
            new_hashes += hashes[i:j]
            held = moved[key]
            if held is None:  # held at j: skip it
                j += 1
            else:
                new_keys.append(key)
                new_hashes.append(held)
            i = j
        new_keys += keys[i:n]
        new_hashes += hashes[i:n]
        self._keys, self._hashes = new_keys, new_hashes

    def _drop_path(self, index: int) -> None:
        for r in self._path(index):
            self._kept.pop(r, None)

    def _path(self, index: int) -> list[tuple[int, int]]:
        """The ranges of the kept-size subtrees that hold leaf `index`."""
        ranges = []
        lo, hi = 0, len(self._keys)
        while hi - lo >= self.KEPT_FROM:
            ranges.append((lo, hi))
            k = 1 << ((hi - lo - 1).bit_length() - 1)
            if index < lo + k:
                hi = lo + k
            else:
                lo += k
        return ranges

    @property
    def root(self) -> MerkleRoot:
        return MerkleRoot(self._subtree(0, len(self._keys)))

    def index(self, key: bytes) -> int | None:
        """The position of `key`'s leaf, None if the tree does not hold it."""
        position = bisect.bisect_left(self._keys, key)
        found = position < len(self._keys) and self._keys[position] == key
        return position if found else None

    def path(self, index: int) -> MerklePath:
        """The audit path of leaf `index`."""
        require_uint("SortedMerkleTree.path.index", index, len(self._keys) - 1)
        siblings: list[bytes] = []
        lo, hi = 0, len(self._keys)
        while hi - lo > 1:
            k = 1 << ((hi - lo - 1).bit_length() - 1)
            if index < lo + k:
                siblings.append(self._subtree(lo + k, hi))
                hi = lo + k
            else:
                siblings.append(self._subtree(lo, lo + k))
                lo += k
        return MerklePath(index=index, size=len(self._keys), siblings=tuple(reversed(siblings)))

    def _subtree(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 0:
            return blake2b_256()
        if n == 1:
            return self._hashes[lo]
        held = self._kept.get((lo, hi)) if n >= self.KEPT_FROM else None
        if held is None:
            k = 1 << ((n - 1).bit_length() - 1)
            held = blake2b_256(_NODE, self._subtree(lo, lo + k), self._subtree(lo + k, hi))
            if n >= self.KEPT_FROM:
                self._kept[(lo, hi)] = held
        return held
