"""Several nodes, one coordinator, messages arriving in any order: the ledgers must agree.

A hypothesis state machine drives random transfers (double spends included) through a
coordinator's node, issues milestones, and delivers every message to follower nodes in a
shuffled order. Invariants: the supply is conserved, no output is spent twice, and every node has
the same confirmed index and ledger state hash as the coordinator's.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import trio
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from coordinator import Coordinator, Journal, KeySigner
from tangle.errors import DuplicateMessageError
from tangle.ledger.committee import KeySchedule
from tangle.node.core import Parameters
from tangle.node.ledger_node import LedgerNode
from tangle.node.node import Node
from tangle.protocol.message import decode_message
from tangle.protocol.milestone import KeySet
from tests.builders import NET, address, genesis, key, on_tips, transfer

if TYPE_CHECKING:
    from tangle.protocol.ids import OutputId

PARAMS = Parameters(network_id=NET, work_per_kib=16, min_output_amount=1)
SIGNERS = [KeySigner(bytes([i]) * 32) for i in (1, 2, 3)]
SCHEDULE = KeySchedule(
    entries=((1, KeySet(threshold=2, public_keys=tuple(sorted(s.public_key for s in SIGNERS)))),)
)
OWNERS = [key(i) for i in range(1, 5)]
GENESIS = genesis([(owner, 1_000) for owner in OWNERS])
FOLLOWERS = 2


async def _ignore(raw: bytes) -> None:
    del raw


class LedgerAgreement(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        root = Path(self.dir.name)
        self.origin = LedgerNode.open(
            root / "origin.db", genesis=GENESIS, params=PARAMS, schedule=SCHEDULE
        )
        self.followers = [
            LedgerNode.open(root / f"f{i}.db", genesis=GENESIS, params=PARAMS, schedule=SCHEDULE)
            for i in range(FOLLOWERS)
        ]
        self.coordinator = Coordinator(
            Node(self.origin), Journal.open(root / "journal.db"), SIGNERS
        )
        self.rng = np.random.default_rng(0)
        # Every output ever created (owner, amount), spent or not: double spends pick from it.
        self.outputs: list[tuple[OutputId, int, int]] = [
            (oid, i, out.amount) for i, (oid, out) in enumerate(GENESIS.outputs().items())
        ]
        self.undelivered: list[bytes] = []

    def teardown(self) -> None:
        for node in (self.origin, *self.followers):
            node.close()
        self.dir.cleanup()

    @rule(data=st.data(), split=st.booleans())
    def send(self, data: st.DataObject, split: bool) -> None:
        oid, owner, amount = data.draw(st.sampled_from(self.outputs))
        receiver = data.draw(st.integers(0, len(OWNERS) - 1))
        outputs = [(receiver, amount)]
        if split and amount > 1:
            outputs = [(receiver, amount // 2), (owner, amount - amount // 2)]
        memo = len(self.outputs).to_bytes(4, "little")  # every send is a distinct transaction
        tx = transfer(
            [(oid, OWNERS[owner])], [(address(OWNERS[w]), a) for w, a in outputs], memo=memo
        )
        raw = on_tips(self.origin.core, tx, self.rng)
        self.origin.submit(raw)
        self.undelivered.append(raw)
        self.outputs.extend((tx.output_id(i), w, a) for i, (w, a) in enumerate(outputs))

    @rule(data=st.data())
    def milestone(self, data: st.DataObject) -> None:
        issue = trio.run(self.coordinator.issue, _ignore)
        self.undelivered.extend(issue.messages)
        for raw in self.undelivered:
            metadata = self.origin.storage.metadata(decode_message(raw).id)
            assert metadata is not None
            event(metadata.inclusion.name)
        for follower in self.followers:
            for raw in data.draw(st.permutations(self.undelivered)):
                with contextlib.suppress(DuplicateMessageError):
                    follower.submit(raw)
        self.undelivered.clear()

    @invariant()
    def nodes_agree(self) -> None:
        head = self.origin.storage.head()
        assert head.state_hash == self.origin.core.ledger.state_hash
        for follower in self.followers:
            assert follower.core.confirmed_index == self.origin.core.confirmed_index
            assert follower.core.ledger.state_hash == self.origin.core.ledger.state_hash
            assert follower.storage.head().state_hash == head.state_hash

    @invariant()
    def supply_is_conserved(self) -> None:
        for node in (self.origin, *self.followers):
            assert sum(o.amount for o in node.core.ledger.unspent.values()) == GENESIS.supply

    @invariant()
    def no_output_is_spent_twice(self) -> None:
        for node in (self.origin, *self.followers):
            ledger = node.core.ledger
            for oid, _, _ in self.outputs:
                if node.storage.is_spent(oid):
                    assert oid not in ledger.unspent


LedgerAgreement.TestCase.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)
TestLedgerAgreement = LedgerAgreement.TestCase
