"""Audit paths: every leaf of every tree size proves itself, and nothing else does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tangle.errors import InvalidFieldError
from tangle.protocol.merkle import (
    MerklePath,
    MerkleTree,
    merkle_path,
    merkle_root,
    root_from_path,
)

leaf_lists = st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=40)


@given(leaf_lists, st.data())
def test_every_leaf_proves_itself(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = merkle_path(leaves, index)
    assert root_from_path(leaves[index], path) == merkle_root(leaves)


@given(leaf_lists, st.data())
def test_another_leaf_index_or_sibling_does_not(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = merkle_path(leaves, index)
    root = merkle_root(leaves)
    assert root_from_path(leaves[index] + b"x", path) != root
    if path.siblings:
        which = data.draw(st.integers(0, len(path.siblings) - 1))
        flipped = bytearray(path.siblings[which])
        flipped[0] ^= 1
        siblings = (*path.siblings[:which], bytes(flipped), *path.siblings[which + 1 :])
        forged = MerklePath(index=index, size=path.size, siblings=siblings)
        assert root_from_path(leaves[index], forged) != root
    if len(leaves) > 1:
        other = (index + 1) % len(leaves)
        moved = MerklePath(index=other, size=path.size, siblings=path.siblings)
        if leaves[other] != leaves[index]:
            assert root_from_path(leaves[index], moved) != root


def test_a_path_of_the_wrong_length_gives_no_root() -> None:
    leaves = [bytes([i]) for i in range(5)]
    assert len(merkle_path(leaves, 4).siblings) == 1  # beside the subtree of the first 4
    path = merkle_path(leaves, 0)
    assert len(path.siblings) == 3
    short = MerklePath(index=0, size=5, siblings=path.siblings[:2])
    assert root_from_path(leaves[0], short) is None
    long = MerklePath(index=4, size=5, siblings=path.siblings)
    assert root_from_path(leaves[4], long) is None


def test_a_single_leaf_has_an_empty_path() -> None:
    path = merkle_path([b"only"], 0)
    assert path.siblings == ()
    assert root_from_path(b"only", path) == merkle_root([b"only"])


@pytest.mark.parametrize(("index", "size"), [(0, 0), (3, 3), (-1, 2)])
def test_out_of_range_paths_are_refused(index: int, size: int) -> None:
    with pytest.raises(InvalidFieldError):
        MerklePath(index=index, size=size, siblings=())


def test_a_path_for_no_leaf_is_refused() -> None:
    with pytest.raises(InvalidFieldError):
        merkle_path([], 0)
    with pytest.raises(InvalidFieldError):
        MerklePath(index=0, size=2, siblings=(b"short",))


def test_a_tree_with_kept_subtrees_gives_the_same_root_and_paths() -> None:
    leaves = [i.to_bytes(4, "little") for i in range(3 * MerkleTree.KEPT_FROM + 5)]
    tree = MerkleTree(leaves)
    assert tree.root == merkle_root(leaves)
    for index in (0, 1, 255, 256, 511, 512, 700, len(leaves) - 1):
        path = tree.path(index)
        assert root_from_path(leaves[index], path) == tree.root
        assert root_from_path(leaves[index - 1 if index else 1], path) != tree.root
