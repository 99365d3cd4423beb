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


def _leaf_hashes(leaves: dict[bytes, bytes]) -> dict[bytes, bytes]:
    tree = SortedMerkleTree(leaves)
    return {k: h for k in leaves if (h := tree.leaf_hash(k)) is not None}


def test_set_hashes_moves_many_keys_in_one_pass_across_power_of_two_sizes() -> None:
    # Trees just under, at and over each power of two (the shape of the tree changes there),
    # taken back and forth by set_hashes moving one key, several, and all of them at once
    # (removals and insertions mixed, at the front, middle and end): the root is always
    # `merkle_root` of the leaves in key order, and audit paths prove the leaves.
    for exponent in range(11):
        for size in {max(0, (1 << exponent) + d) for d in (-1, 0, 1)}:
            leaves = {(2 * i + 2).to_bytes(4, "big"): bytes([i % 251]) for i in range(size)}
            tree = SortedMerkleTree(leaves)
            tree.path(0) if size else None  # fill the kept subtrees
            before = _leaf_hashes(leaves)
            gone = list(leaves)[:: max(1, size // 7)]
            new = [(2 * i + 1).to_bytes(4, "big") for i in (0, 1, size // 2, size + 1)]
            for removed in ([], gone[:1], gone, list(leaves)):
                for added in ([], new[:1], new):
                    after = {k: v for k, v in leaves.items() if k not in removed}
                    after |= {k: b"new" + k for k in added}
                    change: dict[bytes, bytes | None] = dict.fromkeys(removed)
                    change |= _leaf_hashes({k: b"new" + k for k in added})
                    tree.set_hashes(change)
                    assert tree.root == _scratch(after), (size, len(removed), len(added))
                    assert len(tree) == len(after)
                    for key in list(after)[:: max(1, len(after) // 3)]:
                        index = tree.index(key)
                        assert index is not None
                        assert root_from_path(after[key], tree.path(index)) == tree.root
                    back: dict[bytes, bytes | None] = dict.fromkeys(added)
                    back |= {k: before[k] for k in removed}
                    tree.set_hashes(back)
                    assert tree.root == _scratch(leaves), (size, len(removed), len(added))


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(keys, st.binary(max_size=8), max_size=300),
    st.dictionaries(keys, st.one_of(st.none(), st.binary(max_size=8)), max_size=60),
)
def test_set_hashes_matches_the_from_scratch_root(
    start: dict[bytes, bytes], change: dict[bytes, bytes | None]
) -> None:
    tree = SortedMerkleTree(start)
    assert tree.root == _scratch(start)
    after = {k: v for k, v in start.items() if change.get(k, v) is not None}
    after |= {k: v for k, v in change.items() if v is not None}
    leaf_hashes = _leaf_hashes({k: v for k, v in change.items() if v is not None})
    tree.set_hashes({k: None if v is None else leaf_hashes[k] for k, v in change.items()})
    assert tree.root == _scratch(after)
    assert len(tree) == len(after)
