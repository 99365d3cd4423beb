"""Merkle audit paths, batches and anchors."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tangle.protocol.ids import MerkleRoot
from tangle.protocol.merkle import MerklePath, merkle_path, merkle_root, root_from_path
from tangle.protocol.payload import TaggedData
from wallet.devices.batch import (
    ANCHOR_TAG,
    Anchor,
    Batch,
    anchor_payload,
    check_batch_path,
    leaf_of,
    read_anchor,
)
from wallet.devices.errors import AnchorPayloadError, BatchPathError

from ._support import NETWORK, raw_reading


def _leaves(n: int) -> list[bytes]:
    return [i.to_bytes(4, "little") for i in range(n)]


@pytest.mark.parametrize("size", [*range(1, 18), 31, 32, 33, 100])
def test_every_path_of_every_small_tree_leads_to_the_root(size: int) -> None:
    leaves = _leaves(size)
    root = merkle_root(leaves)
    for index in range(size):
        path = merkle_path(leaves, index)
        assert len(path.siblings) <= max(1, (size - 1).bit_length())
        assert root_from_path(leaves[index], path) == root
        assert root_from_path(b"other", path) != root


@given(st.integers(2, 300), st.data())
def test_a_path_proves_only_its_own_position(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size)
    index = data.draw(st.integers(0, size - 1))
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    path = merkle_path(leaves, index)
    moved = MerklePath(index=other, size=size, siblings=path.siblings)
    assert root_from_path(leaves[index], moved) != merkle_root(leaves)


def test_a_path_of_the_wrong_length_leads_nowhere() -> None:
    leaves = _leaves(5)
    path = merkle_path(leaves, 4)
    longer = MerklePath(index=4, size=5, siblings=(*path.siblings, path.siblings[0]))
    shorter = MerklePath(index=4, size=5, siblings=path.siblings[:-1])
    assert root_from_path(leaves[4], longer) is None
    assert root_from_path(leaves[4], shorter) is None


def test_an_anchor_round_trips_and_is_read_strictly() -> None:
    anchor = Anchor(network_id=NETWORK, batch_root=MerkleRoot(bytes(range(32))), leaf_count=9)
    payload = anchor_payload(anchor)
    assert read_anchor(payload) == anchor
    for bad in (
        TaggedData(tag=b"other", data=payload.data),
        TaggedData(tag=ANCHOR_TAG, data=payload.data + b"\x00"),
        TaggedData(tag=ANCHOR_TAG, data=b"\x02" + payload.data[1:]),
        TaggedData(tag=ANCHOR_TAG, data=payload.data[:-4] + bytes(4)),
    ):
        with pytest.raises(AnchorPayloadError):
            read_anchor(bad)


def test_every_reading_of_a_batch_is_proved_under_its_anchor() -> None:
    readings = [raw_reading(1, c) for c in range(1, 8)]
    batch = Batch.of(NETWORK, readings, [leaf_of(r) for r in readings])
    anchor = read_anchor(anchor_payload(batch.anchor))
    for index, raw in enumerate(readings):
        check_batch_path(raw, batch.path(index), anchor)
    with pytest.raises(BatchPathError):
        check_batch_path(readings[0], batch.path(1), anchor)
    with pytest.raises(BatchPathError):
        check_batch_path(raw_reading(1, 99), batch.path(0), anchor)
    shorter = read_anchor(anchor_payload(dataclasses.replace(anchor, leaf_count=6)))
    with pytest.raises(BatchPathError, match="the anchor names 6"):
        check_batch_path(readings[0], batch.path(0), shorter)
