"""The coordinator beside its node: issuance, checkpoints, the committee, rotation, recovery."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from coordinator import Coordinator, Journal, JournalError, KeySigner, NotEnoughSignersError
from coordinator.issuer import checkpoint_payload
from tangle.errors import DuplicatePayloadError, InvalidFieldError
from tangle.ledger.committee import KeySchedule
from tangle.ledger.ledger import Inclusion
from tangle.node.core import Parameters, Requested
from tangle.node.ledger_node import LedgerNode
from tangle.node.node import Node
from tangle.protocol.ids import MessageId, MilestoneId
from tangle.protocol.message import decode_message, encode_message, prepare
from tangle.protocol.milestone import KeySet, KeySetChange, Milestone
from tangle.protocol.payload import TaggedData
from tangle.window.dag import GENESIS_ID
from tangle.work import search
from tests.builders import NET, address, genesis, key, message, on_tips, transfer

if TYPE_CHECKING:
    from pathlib import Path

PARAMS = Parameters(network_id=NET, work_per_kib=16, min_output_amount=1)
SIGNERS = sorted((KeySigner(bytes([i]) * 32) for i in range(1, 6)), key=lambda s: s.public_key)
KEY_SET = KeySet(threshold=3, public_keys=tuple(s.public_key for s in SIGNERS))
ALICE, BOB = key(1), key(2)
GENESIS = genesis([(ALICE, 1_000_000)])


def _open(tmp_path: Path) -> LedgerNode:
    return LedgerNode.open(
        tmp_path / "node.db",
        genesis=GENESIS,
        params=PARAMS,
        schedule=KeySchedule(entries=((1, KEY_SET),)),
    )


class Sink:
    def __init__(self) -> None:
        self.published: list[bytes] = []

    async def __call__(self, raw: bytes) -> None:
        self.published.append(raw)


async def test_milestones_confirm_transfers(tmp_path: Path) -> None:
    node = _open(tmp_path)
    coordinator = Coordinator(Node(node), Journal.open(tmp_path / "journal.db"), SIGNERS[:3])
    sink = Sink()
    rng = np.random.default_rng(1)
    (oid,) = GENESIS.outputs()
    tx = transfer([(oid, ALICE)], [(address(BOB), 400_000), (address(ALICE), 600_000)])
    raw = on_tips(node.core, tx, rng)
    node.submit(raw)
    issue = await coordinator.issue(sink)
    assert issue.index == node.core.confirmed_index == 1
    assert sink.published == list(issue.messages)
    metadata = node.storage.metadata(decode_message(raw).id)
    assert metadata is not None
    assert metadata.referenced_by == 1
    assert metadata.inclusion is Inclusion.INCLUDED
    assert node.storage.balance(address(BOB)) == 400_000
    assert node.storage.head().state_hash == node.core.ledger.state_hash
    await coordinator.issue(sink)
    assert node.core.confirmed_index == 2


async def test_more_tips_than_parents_go_through_checkpoints(tmp_path: Path) -> None:
    node = _open(tmp_path)
    coordinator = Coordinator(Node(node), Journal.open(tmp_path / "journal.db"), SIGNERS[:3])
    await coordinator.issue(Sink())
    (milestone_tip,) = node.core.dag.tips()
    for i in range(70):
        payload = TaggedData(tag=b"s", data=i.to_bytes(4, "little"))
        node.submit(message(payload, (milestone_tip,), work_per_kib=PARAMS.work_per_kib))
    assert len(node.core.dag.tips()) == 70
    issue = await coordinator.issue(Sink())
    assert len(issue.messages) == 1 + 9 + 2  # two layers of checkpoints, then the milestone
    assert node.core.confirmed_index == 2
    assert node.core.dag.tips() == (decode_message(issue.messages[-1]).id,)


def test_checkpoint_payloads_cannot_be_predicted() -> None:
    previous = MilestoneId(b"\x05" * 32)
    first, second = (checkpoint_payload(7, 0, previous) for _ in range(2))
    assert first.data[:38] == second.data[:38] == (7).to_bytes(4, "little") + bytes(2) + previous
    assert first.data != second.data  # 16 fresh random bytes each time


async def test_checkpoint_squatting_does_not_stop_issuance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A squatter who knows a checkpoint's payload before the coordinator publishes it (as
    anyone did when it was `index || sequence`) attaches copies first: one on real tips (it
    holds the payload's slot), one on a parent that does not exist. Issuance goes on."""
    node = _open(tmp_path)
    coordinator = Coordinator(Node(node), Journal.open(tmp_path / "journal.db"), SIGNERS[:3])
    await coordinator.issue(Sink())
    (milestone_tip,) = node.core.dag.tips()
    for i in range(20):
        payload = TaggedData(tag=b"s", data=i.to_bytes(4, "little"))
        node.submit(message(payload, (milestone_tip,), work_per_kib=PARAMS.work_per_kib))
    salt = b"\x11" * 16
    monkeypatch.setattr("coordinator.issuer.secrets.token_bytes", lambda n: salt[:n])
    previous = node.core.confirmed_id
    tips = node.core.dag.tips()
    node.submit(message(checkpoint_payload(2, 0, previous), tips[:2], work_per_kib=16))
    fake_parent = (MessageId(b"\xee" * 32),)
    node.submit(message(checkpoint_payload(2, 1, previous), fake_parent, work_per_kib=16))
    issue = await coordinator.issue(Sink())
    assert node.core.confirmed_index == 2
    assert len(issue.messages) == 1 + 2  # checkpoint 0 was refused; 1 and the milestone went
    await coordinator.issue(Sink())  # the tips checkpoint 0 would have covered come next
    assert node.core.confirmed_index == 3


async def test_too_few_signers_issue_nothing(tmp_path: Path) -> None:
    node = _open(tmp_path)
    journal = Journal.open(tmp_path / "journal.db")
    with pytest.raises(NotEnoughSignersError):
        await Coordinator(Node(node), journal, SIGNERS[:2]).issue(Sink())
    assert journal.last() is None
    assert node.core.confirmed_index == 0


async def test_rotation_hands_over_to_the_new_committee(tmp_path: Path) -> None:
    node = _open(tmp_path)
    journal = Journal.open(tmp_path / "journal.db")
    new = sorted((KeySigner(bytes([i]) * 32) for i in range(10, 13)), key=lambda s: s.public_key)
    new_set = KeySet(threshold=2, public_keys=tuple(s.public_key for s in new))
    old_coordinator = Coordinator(Node(node), journal, SIGNERS[:3])
    old_coordinator.schedule_rotation(KeySetChange(activation_index=3, key_set=new_set))
    first = await old_coordinator.issue(Sink())
    payload = decode_message(first.messages[-1]).message.payload
    assert isinstance(payload, Milestone)
    assert payload.essence.key_set_change is not None
    await old_coordinator.issue(Sink())
    with pytest.raises(NotEnoughSignersError):
        await old_coordinator.issue(Sink())
    new_coordinator = Coordinator(Node(node), journal, new)
    await new_coordinator.issue(Sink())
    assert node.core.confirmed_index == 3
    node.close()
    reopened = _open(tmp_path)
    assert reopened.core.schedule.key_set_at(3) == new_set


async def test_recovery_republishes_the_journaled_bytes(tmp_path: Path) -> None:
    node = _open(tmp_path)
    journal = Journal.open(tmp_path / "journal.db")
    await Coordinator(Node(node), journal, SIGNERS[:3]).issue(Sink())
    issue = await Coordinator(Node(node), journal, SIGNERS[:3]).build()
    journal.record(issue)  # crash after journaling, before publishing
    node.close()
    node = _open(tmp_path)
    assert node.core.confirmed_index == 1
    sink = Sink()
    await Coordinator(Node(node), journal, SIGNERS[3:] + SIGNERS[:1]).recover(sink)
    assert sink.published == list(issue.messages)
    assert node.core.confirmed_index == 2
    with pytest.raises(JournalError):
        journal.record(issue)


async def test_a_foreign_journal_is_refused(tmp_path: Path) -> None:
    node = _open(tmp_path)
    await Coordinator(Node(node), Journal.open(tmp_path / "a.db"), SIGNERS[:3]).issue(Sink())
    with pytest.raises(JournalError):
        await Coordinator(Node(node), Journal.open(tmp_path / "b.db"), SIGNERS[:3]).recover(Sink())


async def test_pruning_bounds_the_window_and_survives_a_restart(tmp_path: Path) -> None:
    node = _open(tmp_path)
    coordinator = Coordinator(Node(node), Journal.open(tmp_path / "journal.db"), SIGNERS[:3])
    rng = np.random.default_rng(3)
    first = None
    for i in range(30):
        raw = on_tips(node.core, TaggedData(tag=b"p", data=i.to_bytes(2, "little")), rng)
        node.submit(raw)
        first = first or decode_message(raw).id
        await coordinator.issue(Sink())
    with pytest.raises(InvalidFieldError):
        node.prune(15)
    pruned = node.prune(16)
    assert pruned.pruned_index == 30 - 16
    assert pruned.messages > 0
    assert pruned.window_dropped > 0
    assert first is not None
    assert node.storage.message(first) is None
    assert not node.core.knows(first)
    state = node.core.ledger.state_hash
    node.close()
    node = _open(tmp_path)
    assert node.core.ledger.state_hash == state
    await Coordinator(Node(node), Journal.open(tmp_path / "journal.db"), SIGNERS[:3]).issue(Sink())
    assert node.core.confirmed_index == 31


async def test_pending_messages_from_before_a_restart_expire(tmp_path: Path) -> None:
    """A message whose parent never came is stored, and comes back pending after a restart
    (issue 16's `tangle_pending_messages` that stayed for minutes): it is dropped from memory
    once it has waited longer than the pending limit allows."""
    node = _open(tmp_path)
    orphan = message(TaggedData(tag=b"o", data=b""), (MessageId(b"\xaa" * 32),), work_per_kib=16)
    node.submit(orphan)
    node.close()
    node = _open(tmp_path)
    assert node.core.dag.pending_count() == 1
    assert node.core.dag.missing() == {MessageId(b"\xaa" * 32)}
    coordinator = Coordinator(Node(node), Journal.open(tmp_path / "journal.db"), SIGNERS[:3])
    max_age = node.core.dag.pending_limits.max_age
    for _ in range(max_age):
        await coordinator.issue(Sink())
    assert node.core.dag.pending_count() == 1
    await coordinator.issue(Sink())
    assert node.core.dag.pending_count() == 0
    assert node.core.dag.missing() == frozenset()
    assert not node.core.knows(decode_message(orphan).id)  # it may be sent again


async def test_a_squatted_transfer_is_confirmed_on_every_node(tmp_path: Path) -> None:
    """Node B receives a copy of a transfer's payload and nonce on other parents before the
    transfer itself, so it refuses the real one; the milestone that confirms the real one then
    reaches B, which takes the real message when it comes again and follows the chain."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = _open(tmp_path / "a"), _open(tmp_path / "b")
    other = message(TaggedData(tag=b"t", data=b""), (GENESIS_ID,), work_per_kib=16)
    (oid,) = GENESIS.outputs()
    unsent = prepare(NET, transfer([(oid, ALICE)], [(address(BOB), 1_000_000)]), 16)
    nonce = search(unsent.root, unsent.target, threads=1)
    real = encode_message(unsent.attach((GENESIS_ID,), nonce))
    copy = encode_message(unsent.attach((decode_message(other).id,), nonce))
    for raw in (other, real):
        a.submit(raw)
    for raw in (other, copy):
        b.submit(raw)
    with pytest.raises(DuplicatePayloadError):
        b.submit(real)
    issue = await Coordinator(Node(a), Journal.open(tmp_path / "j.db"), SIGNERS[:3]).issue(Sink())
    events = b.submit(issue.messages[-1])  # the milestone waits for the real transfer
    assert [e.ids for e in events if isinstance(e, Requested)] == [(decode_message(real).id,)]
    b.submit(real)
    assert b.core.confirmed_index == 1
    assert b.core.ledger.state_hash == a.core.ledger.state_hash
    assert b.storage.balance(address(BOB)) == 1_000_000
