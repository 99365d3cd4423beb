"""A node started from a snapshot follows the network it was exported from.

Node A (a `LedgerNode` with its coordinator) confirms signed transfers for a few milestones and
holds some it has not confirmed yet; its snapshot starts node B. B receives A's unreferenced
messages, then everything A receives: more transfers, and every milestone with its checkpoints.
B must solidify and apply each milestone and end where A is: same confirmed index, ledger state
hash, UTXO set and message metadata. After a committee rotation, B takes the key schedule from
the snapshot and applies the milestones the new committee signs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from coordinator import Coordinator, Journal, KeySigner
from tangle.errors import StaleMilestoneError
from tangle.ledger.committee import KeySchedule
from tangle.ledger.ledger import Conflict
from tangle.node.ledger_node import LedgerNode
from tangle.node.node import Node
from tangle.protocol.message import decode_message
from tangle.protocol.milestone import KeySet, KeySetChange
from tangle.protocol.payload import TaggedData
from tangle.storage.snapshot import create_from_snapshot, export_snapshot, read_snapshot
from tangle.window.tip_pool import Score
from tests.builders import address, genesis, key, message, on_tips, transfer
from tests.coordinator.test_coordinator import KEY_SET, PARAMS, SIGNERS

if TYPE_CHECKING:
    from pathlib import Path

    from tangle.protocol.ids import MessageId, OutputId
    from tangle.protocol.payload import Payload
    from tangle.protocol.transaction import Transaction

KEYS = [key(seed) for seed in range(1, 5)]
OWNER = {address(k): k for k in KEYS}
GENESIS = genesis([(k, 1_000_000) for k in KEYS])


def open_node(path: Path) -> LedgerNode:
    return LedgerNode.open(
        path, genesis=GENESIS, params=PARAMS, schedule=KeySchedule(entries=((1, KEY_SET),))
    )


class Network:
    """Node A and its coordinator; every message A receives or issues reaches the followers."""

    def __init__(self, tmp_path: Path) -> None:
        self.a = open_node(tmp_path / "a.db")
        self.journal = Journal.open(tmp_path / "journal.db")
        self.coordinator = Coordinator(Node(self.a), self.journal, SIGNERS[:3])
        self.followers: list[LedgerNode] = []
        self.rng = np.random.default_rng(11)
        self.used: set[OutputId] = set()
        """Outputs a sent transfer spends (confirmed or not): the next ones spend others."""
        self.sent: list[MessageId] = []

    def receive(self, raw: bytes) -> MessageId:
        """A message reaches A, which gossips it to the followers."""
        self.a.submit(raw)
        for node in self.followers:
            node.submit(raw)
        mid = decode_message(raw).id
        self.sent.append(mid)
        return mid

    async def _publish(self, raw: bytes) -> None:
        for node in self.followers:
            node.submit(raw)
        self.sent.append(decode_message(raw).id)

    async def milestone(self) -> None:
        await self.coordinator.issue(self._publish)
        for node in self.followers:
            assert node.core.confirmed_index == self.a.core.confirmed_index
            assert node.core.ledger.state_hash == self.a.core.ledger.state_hash

    def spend(self) -> Transaction:
        """A transfer of part of an unused confirmed output to a random holder."""
        unspent = self.a.core.ledger.unspent
        candidates = sorted(oid for oid, out in unspent.items() if oid not in self.used)
        oid = candidates[int(self.rng.integers(len(candidates)))]
        self.used.add(oid)
        output = unspent[oid]
        signer = OWNER[output.address]
        to = address(KEYS[int(self.rng.integers(len(KEYS)))])
        part = int(self.rng.integers(1, output.amount))
        return transfer([(oid, signer)], [(to, part), (address(signer), output.amount - part)])

    def pay(self, payload: Payload | None = None) -> MessageId:
        """A message on A's tips carrying `payload` (default: a new transfer)."""
        return self.receive(on_tips(self.a.core, payload or self.spend(), self.rng))


@pytest.mark.parametrize("order", ["arrival", "reversed"])
async def test_a_node_from_a_snapshot_applies_every_later_milestone(
    tmp_path: Path, order: str
) -> None:
    net = Network(tmp_path)
    a = net.a
    confirmed_early: list[MessageId] = []
    for _ in range(4):
        confirmed_early += [net.pay() for _ in range(3)]
        await net.milestone()
    assert a.core.confirmed_index == 4

    # Not confirmed when the snapshot is taken: transfers on the tips, a double spend, and a
    # transfer approving a message milestone 3 referenced (not a tip any more).
    net.pay()
    first = net.spend()
    (spent_twice,) = first.essence.inputs
    output = a.core.ledger.unspent[spent_twice]
    again = transfer([(spent_twice, OWNER[output.address])], [(address(KEYS[0]), output.amount)])
    double_spend = (net.pay(first), net.pay(again))
    old = confirmed_early[6]
    meta = a.storage.metadata(old)
    assert meta is not None
    assert meta.referenced_by == 3
    late = net.receive(message(net.spend(), (old,), work_per_kib=PARAMS.work_per_kib))

    snapshot = export_snapshot(a.storage, tmp_path / "a.snap")
    unreferenced = a.storage.unreferenced_messages()
    milestone_4 = a.storage.milestone(4)
    assert milestone_4 is not None
    assert milestone_4.raw in unreferenced  # a milestone never references its own message
    # The entry points are exactly the referenced parents of the unreferenced messages.
    expected: dict[MessageId, int] = {}
    for raw in unreferenced:
        for parent in decode_message(raw).message.parents:
            meta = a.storage.metadata(parent)
            if meta is not None and meta.referenced_by is not None:
                expected[parent] = meta.referenced_by
    assert dict(snapshot.entry_points) == expected
    assert expected[old] == 3
    assert {expected[p] for p in decode_message(milestone_4.raw).message.parents} == {4}

    create_from_snapshot(tmp_path / "b.db", read_snapshot(tmp_path / "a.snap")).close()
    b = open_node(tmp_path / "b.db")
    assert b.core.confirmed_index == 4
    assert b.core.dag.entry_points() == dict(snapshot.entry_points)
    result = b.submit_many(unreferenced if order == "arrival" else reversed(unreferenced))
    assert result.rejected == ()
    assert b.core.dag.pending_count() == 0
    for score in Score:
        assert b.core.dag.tips(score) == a.core.dag.tips(score)
    net.followers.append(b)
    net.sent = [decode_message(raw).id for raw in unreferenced]

    await net.milestone()
    outcomes = [b.storage.metadata(mid) for mid in (*double_spend, late)]
    assert [(m.referenced_by, m.conflict) if m else None for m in outcomes] in (
        [(5, Conflict.NONE), (5, Conflict.INPUT_SPENT), (5, Conflict.NONE)],
        [(5, Conflict.INPUT_SPENT), (5, Conflict.NONE), (5, Conflict.NONE)],
    )  # one spend of the output wins, in white-flag order
    for _ in range(2):
        net.pay()
        net.pay()
        await net.milestone()
    (tip,) = a.core.dag.tips()  # the last milestone's message
    for i in range(10):  # more tips than a message has parents: the milestone needs checkpoints
        data = TaggedData(tag=b"burst", data=i.to_bytes(4, "little"))
        net.receive(message(data, (tip,), work_per_kib=PARAMS.work_per_kib))
    net.pay()
    issued = len(net.sent)
    await net.milestone()
    assert len(net.sent) - issued > 1  # checkpoints, then the milestone
    b.close()
    b = open_node(tmp_path / "b.db")  # restarted from its own storage
    net.followers = [b]
    net.pay()
    await net.milestone()

    assert b.core.confirmed_index == a.core.confirmed_index == 9
    assert b.storage.head().state_hash == a.storage.head().state_hash == a.core.ledger.state_hash
    assert b.storage.load_ledger().unspent == a.storage.load_ledger().unspent
    assert {mid: b.storage.metadata(mid) for mid in net.sent} == {
        mid: a.storage.metadata(mid) for mid in net.sent
    }
    b.close()
    a.close()


async def test_a_snapshot_after_a_committee_rotation_starts_a_node(tmp_path: Path) -> None:
    """A snapshot taken while a rotation is scheduled, and one taken after it took effect: a node
    started from either applies the milestones the new committee signs (the configuration still
    names only the committee at genesis), and so does each after a restart."""
    net = Network(tmp_path)
    new = sorted((KeySigner(bytes([i]) * 32) for i in range(20, 23)), key=lambda s: s.public_key)
    new_set = KeySet(threshold=2, public_keys=tuple(s.public_key for s in new))
    net.coordinator.schedule_rotation(KeySetChange(activation_index=3, key_set=new_set))
    net.pay()
    await net.milestone()
    net.pay()
    await net.milestone()  # milestone 2: the old committee's last
    scheduled = export_snapshot(net.a.storage, tmp_path / "scheduled.snap")
    assert scheduled.key_schedule.entries == ((1, KEY_SET), (3, new_set))

    def start(name: str) -> LedgerNode:
        create_from_snapshot(tmp_path / f"{name}.db", read_snapshot(tmp_path / f"{name}.snap"))
        node = open_node(tmp_path / f"{name}.db")
        assert node.submit_many(net.a.storage.unreferenced_messages()).rejected == ()
        net.followers.append(node)
        return node

    early = start("scheduled")
    net.coordinator = Coordinator(Node(net.a), net.journal, new)
    net.pay()
    await net.milestone()  # milestone 3, signed by the new committee only
    net.pay()
    await net.milestone()
    rotated = export_snapshot(net.a.storage, tmp_path / "rotated.snap")
    assert rotated.milestone_index == 4
    assert rotated.key_schedule == scheduled.key_schedule
    late = start("rotated")
    for _ in range(2):
        net.pay()
        await net.milestone()  # the followers assert they applied it
    for node in (early, late):
        assert node.core.confirmed_index == net.a.core.confirmed_index == 6
        assert node.core.schedule.key_set_at(7) == new_set
        node.close()
    net.followers = [open_node(tmp_path / "scheduled.db"), open_node(tmp_path / "rotated.db")]
    net.pay()
    await net.milestone()
    for node in net.followers:
        assert node.storage.head().state_hash == net.a.core.ledger.state_hash
        node.close()
    net.a.close()


async def test_old_milestones_replayed_to_a_snapshot_node_raise_no_alarm(tmp_path: Path) -> None:
    """A node started from a snapshot at milestone 3 does not know the ids of milestones 1 and
    2: their messages sent again are stale, not evidence of an equivocation."""
    net = Network(tmp_path)
    for _ in range(3):
        net.pay()
        await net.milestone()
    old = [record.raw for i in (1, 2) if (record := net.a.storage.milestone(i)) is not None]
    export_snapshot(net.a.storage, tmp_path / "a.snap")
    create_from_snapshot(tmp_path / "b.db", read_snapshot(tmp_path / "a.snap")).close()
    b = open_node(tmp_path / "b.db")
    for raw in old:
        with pytest.raises(StaleMilestoneError):
            b.submit(raw)
    assert b.core.alarms == ()
    b.close()
