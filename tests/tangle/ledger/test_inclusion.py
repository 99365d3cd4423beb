"""The inclusion root: a milestone commits to every message it references, tagged data too, and
a node refuses (and stops at) a milestone whose inclusion or registry root is not its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tangle.errors import InclusionRootMismatchError, NodeHaltedError, RegistryRootMismatchError
from tangle.ledger.committee import KeySchedule
from tangle.ledger.inclusion import inclusion_path, inclusion_root, is_included
from tangle.node.core import Confirmed, Parameters
from tangle.node.ledger_node import LedgerNode
from tangle.protocol.ids import MerkleRoot, MessageId, MilestoneId
from tangle.protocol.message import decode_message
from tangle.protocol.payload import TaggedData
from tangle.window.dag import GENESIS_ID
from tests.builders import NET, committee, genesis, key, message, milestone

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PARAMS = Parameters(network_id=NET, work_per_kib=16, min_output_amount=1)
KEYS, KEY_SET = committee(4, 3)
ZERO = MilestoneId(bytes(32))


@pytest.fixture
def node(tmp_path: Path) -> Iterator[LedgerNode]:
    opened = LedgerNode.open(
        tmp_path / "node.db",
        genesis=genesis([(key(1), 1_000)]),
        params=PARAMS,
        schedule=KeySchedule(entries=((1, KEY_SET),)),
    )
    yield opened
    opened.close()


def _anchors(node: LedgerNode, count: int) -> list[MessageId]:
    ids = []
    parent = GENESIS_ID
    for n in range(count):
        raw = message(TaggedData(tag=b"anchor", data=bytes([n]) * 32), (parent,), work_per_kib=16)
        node.submit(raw)
        parent = decode_message(raw).id
        ids.append(parent)
    return ids


def test_a_tagged_data_anchor_has_a_path_to_the_milestone_it_is_confirmed_by(
    node: LedgerNode,
) -> None:
    anchors = _anchors(node, 5)
    ms = milestone(index=1, previous=ZERO, parents=(anchors[-1],), signers=KEYS[:3], core=node.core)
    events = node.submit(message(ms, (anchors[-1],), work_per_kib=16))
    (confirmed,) = [e for e in events if isinstance(e, Confirmed)]
    assert sorted(confirmed.result.referenced) == sorted(anchors)
    assert confirmed.result.included == ()  # no transaction: applied_merkle_root covers none
    root = ms.essence.inclusion_root
    assert root == inclusion_root(anchors)
    for anchor in anchors:
        path = inclusion_path(confirmed.result.referenced, anchor)
        assert is_included(anchor, path, root)
        assert not is_included(MessageId(bytes(32)), path, root)


def test_a_message_outside_the_cone_has_no_path() -> None:
    from tangle.errors import InvalidFieldError

    with pytest.raises(InvalidFieldError):
        inclusion_path([MessageId(b"\x01" * 32)], MessageId(b"\x02" * 32))


@pytest.mark.parametrize("which", ["inclusion", "registry"])
def test_a_milestone_with_another_root_stops_the_node(node: LedgerNode, which: str) -> None:
    anchors = _anchors(node, 2)
    wrong = MerkleRoot(b"\x07" * 32)
    ms = milestone(
        index=1,
        previous=ZERO,
        parents=(anchors[-1],),
        signers=KEYS[:3],
        core=node.core,
        inclusion=wrong if which == "inclusion" else None,
        registry=wrong if which == "registry" else None,
    )
    expected = InclusionRootMismatchError if which == "inclusion" else RegistryRootMismatchError
    with pytest.raises(expected):
        node.submit(message(ms, (anchors[-1],), work_per_kib=16))
    assert node.core.confirmed_index == 0
    with pytest.raises(NodeHaltedError):
        node.submit(message(TaggedData(tag=b"", data=b"late"), (GENESIS_ID,), work_per_kib=16))
