"""`SortedMerkleTree`, updated in place over random histories of replacements and insertions,
always has the root `merkle_root` computes from scratch over the leaves in key order, and its
audit paths prove every leaf; `root_with` leaves the tree as it was."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tangle.protocol.merkle import SortedMerkleTree, merkle_root, root_from_path

keys = st.binary(min_size=1, max_size=2)
steps = st.lists(st.dictionaries(keys, st.binary(max_size=8), min_size=1, max_size=40), max_size=8)


def _scratch(leaves: dict[bytes, bytes]) -> bytes:
    return merkle_root([leaves[k] for k in sorted(leaves)])


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(keys, st.binary(max_size=8), max_size=300), steps)
def test_updates_keep_the_from_scratch_root(
    start: dict[bytes, bytes], history: list[dict[bytes, bytes]]
) -> None:
    tree = SortedMerkleTree(start)
    leaves = dict(start)
    assert tree.root == _scratch(leaves)
    for change in history:
        before = tree.root
        expected = _scratch({**leaves, **change})
        root, updated = tree.root_with(change)
        assert root == expected
        assert tree.root == before  # root_with changed nothing
        assert updated is None or updated.root == expected
        tree.update(change)
        leaves.update(change)
        assert tree.root == expected
        assert len(tree) == len(leaves)
    for key in list(leaves)[:5]:
        index = tree.index(key)
        assert index is not None
        assert root_from_path(leaves[key], tree.path(index)) == tree.root
    assert tree.index(b"\xff\xff\xff") is None


def test_a_large_tree_changed_one_leaf_at_a_time() -> None:
    # Enough leaves for many kept subtrees (KEPT_FROM = 32); replacements and insertions at the
    # front, middle and end, each checked against the from-scratch root.
    leaves = {i.to_bytes(4, "big"): bytes([i % 251]) for i in range(0, 4000, 2)}
    tree = SortedMerkleTree(leaves)
    changes = [0, 1, 1999, 2000, 2001, 3998, 3999, 5000, 7, 1234]
    for n, position in enumerate(changes):
        change = {position.to_bytes(4, "big"): b"changed" + bytes([n])}
        tree.update(change)
        leaves.update(change)
        assert tree.root == _scratch(leaves), position
