"""The storage contract: reads, metadata and the ledger agree with an in-memory replay.

Milestones are built the way a node builds them: signed transactions in messages, a cone walked
by `white_flag`, the diff applied to an in-memory `LedgerState` (the model), and the same result
handed to `Storage.apply_milestone`. The crash test SIGKILLs a child process that applies such a
chain and checks that the database always reopens at a milestone boundary.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import trio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tangle.errors import InvalidFieldError, StorageError
from tangle.ledger.ledger import (
    Conflict,
    Genesis,
    Inclusion,
    LedgerDiff,
    LedgerState,
    Spend,
    apply_diff,
    genesis_state,
    ledger_state_hash,
    output_leaf,
)
from tangle.ledger.records import MilestoneRecord, milestone_record
from tangle.ledger.white_flag import ConeMessage, WhiteFlagResult, white_flag
from tangle.protocol.ids import MessageId, MilestoneId, OutputId
from tangle.protocol.message import Message, Parsed, decode_message, encode_message
from tangle.protocol.payload import Payload, TaggedData
from tangle.protocol.transaction import Transaction
from tangle.storage.snapshot import create_from_snapshot, export_snapshot
from tangle.storage.storage import (
    ZERO_MILESTONE_ID,
    IncompatibleDatabaseError,
    InconsistentWriteError,
    Storage,
)
from tests.builders import NET, address, committee, genesis, key, milestone, schedule, transfer

ROOT = Path(__file__).resolve().parents[3]
KEYS = [key(seed) for seed in range(1, 7)]
OWNER = {address(k): k for k in KEYS}
COMMITTEE, _ = committee(1, 1)
GENESIS_PARENT = MessageId(bytes(32))
"""The entry point the first messages approve."""


def make_genesis() -> Genesis:
    return genesis([(k, 1_000_000 * (i + 1)) for i, k in enumerate(KEYS)])


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One milestone as a node stores it."""

    messages: tuple[Parsed, ...]
    """The cone's messages and the milestone message, in attachment order."""
    record: MilestoneRecord
    """The milestone record."""
    result: WhiteFlagResult
    """White-flag's result."""
    state_hash: bytes
    """The model's state hash after the milestone."""


@dataclass(slots=True)
class Model:
    """An in-memory node that builds milestones and keeps the ledger they lead to."""

    state: LedgerState
    cone: dict[MessageId, ConeMessage] = field(default_factory=dict)
    referenced: dict[MessageId, int] = field(default_factory=dict)
    spent: set[OutputId] = field(default_factory=set)
    previous: MilestoneId = ZERO_MILESTONE_ID
    tip: MessageId = GENESIS_PARENT
    milestone_tip: MessageId = GENESIS_PARENT
    nonce: int = 0

    def attach(
        self, payload: Payload, parents: tuple[MessageId, ...] | None = None, *, tip: bool = True
    ) -> Parsed:
        """A new message; unless `tip` is false, the next message approves it."""
        ps = parents if parents is not None else tuple(sorted({self.tip, self.milestone_tip}))
        self.nonce += 1
        parsed = decode_message(
            encode_message(Message(network_id=NET, parents=ps, payload=payload, nonce=self.nonce))
        )
        tx = payload if isinstance(payload, Transaction) else None
        self.cone[parsed.id] = ConeMessage(parents=ps, transaction=tx, referenced=False)
        if tip:
            self.tip = parsed.id
        return parsed

    def lookup(self, mid: MessageId) -> ConeMessage | None:
        msg = self.cone.get(mid)
        if msg is None:
            return None
        return replace(msg, referenced=mid in self.referenced)

    def milestone(self, payloads: list[Payload]) -> Step:
        messages = [self.attach(p) for p in payloads]
        index = self.state.milestone_index + 1
        parents = (self.tip,)
        result = white_flag(
            index=index,
            parents=parents,
            lookup=self.lookup,
            is_entry_point=lambda mid: mid == GENESIS_PARENT,
            unspent=self.state.unspent,
            is_spent=self.spent.__contains__,
        )
        ms = milestone(
            index=index,
            previous=self.previous,
            parents=parents,
            root=result.merkle_root,
            signers=COMMITTEE,
            timestamp_ms=1_700_000_000_000 + index,
        )
        carrier = self.attach(ms, parents)
        self.milestone_tip = carrier.id
        apply_diff(self.state, result.diff)
        self.referenced.update((mid, index) for mid in result.referenced)
        self.spent.update(s.output_id for s in result.diff.consumed)
        self.previous = ms.id
        return Step(
            messages=(*messages, carrier),
            record=milestone_record(carrier),
            result=result,
            state_hash=self.state.state_hash,
        )

    def entry_points(self, index: int, pruned: int = -1) -> list[tuple[MessageId, int]]:
        """Referenced at or below `index` and approved by a message unreferenced at `index`, or
        approved by no message (a tip) and referenced after `pruned` (older tips were dropped)."""
        found: dict[MessageId, int] = {}
        approved: set[MessageId] = set()
        for child, msg in self.cone.items():
            approved.update(msg.parents)
            if self.referenced.get(child, index + 1) <= index:
                continue
            for parent in msg.parents:
                at = self.referenced.get(parent)
                if at is not None and at <= index:
                    found[parent] = at
        found.update(
            (mid, at)
            for mid, at in self.referenced.items()
            if pruned < at <= index and mid not in approved
        )
        return sorted(found.items())


def random_payloads(model: Model, rng: random.Random) -> list[Payload]:
    """A few transfers, chained and conflicting spends among them, and some tagged data."""
    payloads: list[Payload] = [TaggedData(tag=b"sensor", data=rng.randbytes(rng.randint(0, 64)))]
    owned = sorted(model.state.unspent.items())
    for oid, output in rng.sample(owned, k=min(3, len(owned))):
        signer = OWNER[output.address]
        if output.amount < 2:
            continue
        first = rng.randint(1, output.amount - 1)
        to = address(rng.choice(KEYS))
        tx = transfer([(oid, signer)], [(to, first), (address(signer), output.amount - first)])
        payloads.append(tx)
        kind = rng.random()
        if kind < 0.2:  # a double spend: conflicting, INPUT_SPENT
            payloads.append(transfer([(oid, signer)], [(to, output.amount)], memo=b"again"))
        elif kind < 0.4:  # a chained spend of an output created in the same cone
            payloads.append(transfer([(tx.output_id(0), OWNER[to])], [(address(signer), first)]))
        elif kind < 0.5:  # wrong amount: conflicting, AMOUNT_MISMATCH
            payloads.append(transfer([(tx.output_id(1), signer)], [(to, 1)]))
    return payloads


def build_chain(length: int, seed: int = 7) -> tuple[Genesis, list[Step]]:
    """A deterministic chain of `length` milestones (the crash child rebuilds the same one)."""
    g = make_genesis()
    model = Model(state=genesis_state(g))
    rng = random.Random(seed)
    return g, [model.milestone(random_payloads(model, rng)) for _ in range(length)]


def replay(g: Genesis, steps: list[Step], upto: int) -> LedgerState:
    state = genesis_state(g)
    for step in steps[:upto]:
        apply_diff(state, step.result.diff)
    return state


def store(storage: Storage, step: Step) -> None:
    storage.put_messages(step.messages)
    storage.apply_milestone(step.record, step.result, step.state_hash)


def assert_ledger(storage: Storage, state: LedgerState) -> None:
    loaded = storage.load_ledger()
    assert loaded.milestone_index == state.milestone_index == storage.confirmed_index()
    assert loaded.unspent == state.unspent
    assert loaded.state_hash == state.state_hash == storage.head().state_hash
    for k in KEYS:
        owned = sorted((oid, o) for oid, o in state.unspent.items() if o.address == address(k))
        assert storage.outputs_of(address(k)) == owned
        assert storage.balance(address(k)) == sum(o.amount for _, o in owned)


@pytest.fixture(scope="module")
def chain() -> tuple[Genesis, list[Step]]:
    return build_chain(12)


# -- opening ---------------------------------------------------------------------------------


def test_genesis_is_milestone_zero(tmp_path: Path) -> None:
    g = make_genesis()
    with Storage.create(tmp_path / "db", g) as storage:
        assert storage.network_id == NET
        assert storage.supply == g.supply
        assert storage.head().milestone_id == ZERO_MILESTONE_ID == storage.milestone_id(0)
        assert storage.milestone(0) is None
        assert storage.solid_entry_points(0) == []
        assert_ledger(storage, genesis_state(g))
    with Storage.open(tmp_path / "db", network_id=NET) as storage:
        assert_ledger(storage, genesis_state(g))
    with Storage.open_or_create(tmp_path / "db", g) as storage:
        assert storage.confirmed_index() == 0


def test_open_refuses_foreign_files(tmp_path: Path) -> None:
    g = make_genesis()
    Storage.create(tmp_path / "db", g).close()
    with pytest.raises(IncompatibleDatabaseError, match="belongs to network 42, not 43"):
        Storage.open(tmp_path / "db", network_id=NET + 1)
    with pytest.raises(IncompatibleDatabaseError, match="supply"):
        Storage.open_or_create(tmp_path / "db", genesis([(KEYS[0], 5)]))
    with pytest.raises(StorageError, match="already holds a database"):
        Storage.create(tmp_path / "db", g)
    with pytest.raises(StorageError, match="no database"):
        Storage.open(tmp_path / "missing", network_id=NET)

    (tmp_path / "text").write_bytes(b"not a database at all" * 100)
    with pytest.raises(IncompatibleDatabaseError, match="not"):
        Storage.open(tmp_path / "text", network_id=NET)
    other = sqlite3.connect(tmp_path / "other")
    other.execute("CREATE TABLE t (x)")
    other.close()
    with pytest.raises(IncompatibleDatabaseError, match="not a tanglepay database"):
        Storage.open(tmp_path / "other", network_id=NET)

    raw = sqlite3.connect(tmp_path / "db")
    raw.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()
    with pytest.raises(IncompatibleDatabaseError, match="schema version 99; this build reads"):
        Storage.open(tmp_path / "db", network_id=NET)


def test_entry_points_must_precede_the_origin(tmp_path: Path) -> None:
    state = genesis_state(make_genesis())
    late = [(MessageId(b"\x01" * 32), 0), (MessageId(b"\x02" * 32), 1)]
    with pytest.raises(InconsistentWriteError, match=r"\['0202.*referenced after milestone 0"):
        Storage.create_from_ledger(tmp_path / "db", state, ZERO_MILESTONE_ID, entry_points=late)
    assert not (tmp_path / "db").exists()
    with Storage.create_from_ledger(
        tmp_path / "db", state, ZERO_MILESTONE_ID, entry_points=late[:1]
    ) as storage:
        assert storage.solid_entry_points(0) == late[:1]


def test_open_or_create_creates_once(tmp_path: Path) -> None:
    g = make_genesis()
    with Storage.open_or_create(tmp_path / "db", g) as storage:
        assert storage.confirmed_index() == 0
    with Storage.open_or_create(tmp_path / "db", g) as storage:
        assert_ledger(storage, genesis_state(g))


# -- the contract ----------------------------------------------------------------------------


def test_chain_agrees_with_in_memory_replay(
    tmp_path: Path, chain: tuple[Genesis, list[Step]]
) -> None:
    g, steps = chain
    conflicts = {c for step in steps for _, c in step.result.conflicts}
    assert {Conflict.INPUT_SPENT, Conflict.AMOUNT_MISMATCH} <= conflicts  # the chain covers them
    with Storage.create(tmp_path / "db", g) as storage:
        for n, step in enumerate(steps, start=1):
            store(storage, step)
            assert_ledger(storage, replay(g, steps, n))
            assert storage.milestone(n) == step.record
            assert storage.milestone_id(n) == step.record.milestone_id
            assert storage.head().milestone_id == step.record.milestone_id
        for step in steps:
            included, conflicting = set(step.result.included), dict(step.result.conflicts)
            for mid in step.result.referenced:
                meta = storage.metadata(mid)
                assert meta is not None
                assert meta.solid
                assert meta.referenced_by == step.record.index
                if mid in included:
                    assert (meta.inclusion, meta.conflict) == (Inclusion.INCLUDED, Conflict.NONE)
                elif mid in conflicting:
                    assert meta.inclusion == Inclusion.CONFLICTING
                    assert meta.conflict == conflicting[mid]
                else:
                    assert meta.inclusion == Inclusion.NO_TRANSACTION
            for spend in step.result.diff.consumed:
                assert storage.is_spent(spend.output_id)
            for parsed in step.messages:
                assert storage.message(parsed.id) == parsed.raw
        last = steps[-1].messages[-1]  # the last milestone's own message: nothing references it
        meta = storage.metadata(last.id)
        assert meta is not None
        assert (meta.solid, meta.referenced_by, meta.inclusion) == (
            False,
            None,
            Inclusion.NO_TRANSACTION,
        )
    with Storage.open(tmp_path / "db", network_id=NET) as storage:
        assert_ledger(storage, replay(g, steps, len(steps)))


def test_messages_are_stored_once_and_marked_solid(
    tmp_path: Path, chain: tuple[Genesis, list[Step]]
) -> None:
    g, steps = chain
    messages = steps[0].messages
    with Storage.create(tmp_path / "db", g) as storage:
        assert storage.put_messages(messages) == len(messages)
        assert storage.put_messages([*messages, *messages]) == 0
        assert storage.put_messages([]) == 0
        assert storage.unreferenced_messages() == [p.raw for p in messages]
        assert storage.message(MessageId(b"\x01" * 32)) is None
        assert storage.metadata(MessageId(b"\x01" * 32)) is None
        assert storage.mark_solid([messages[0].id, MessageId(b"\x01" * 32)]) == 1
        assert storage.mark_solid([messages[0].id]) == 0
        first, second = storage.metadata(messages[0].id), storage.metadata(messages[1].id)
        assert first is not None
        assert second is not None
        assert first.solid
        assert not second.solid
        storage.apply_milestone(steps[0].record, steps[0].result, steps[0].state_hash)
        assert storage.unreferenced_messages() == [messages[-1].raw]  # the milestone's message


@pytest.mark.parametrize("lost_carriers", [False, True])
def test_solid_entry_points_match_the_model(
    tmp_path: Path, chain: tuple[Genesis, list[Step]], lost_carriers: bool
) -> None:
    """With `lost_carriers`, the messages of odd milestones never arrive: nothing stored
    approves the tips of those cones, so they stay entry points until pruning passes them."""
    g, steps = chain
    lost = {s.messages[-1].id for s in steps if lost_carriers and s.record.index % 2}
    model = Model(state=genesis_state(g))
    model.cone = {p.id: cone_message(p) for s in steps for p in s.messages if p.id not in lost}
    model.referenced = {mid: s.record.index for s in steps for mid in s.result.referenced}
    with Storage.create(tmp_path / "db", g) as storage:
        for step in steps:
            storage.put_messages(p for p in step.messages if p.id not in lost)
            storage.apply_milestone(step.record, step.result, step.state_hash)
        for index in range(len(steps) + 1):
            assert storage.solid_entry_points(index) == model.entry_points(index)
        assert storage.solid_entry_points(len(steps))  # the last cone is approved
        tips = {mid for mid, _ in model.entry_points(len(steps))} - {
            parent for p in model.cone.values() for parent in p.parents
        }
        assert len(tips) == (len(steps) // 2 if lost_carriers else 0)
        storage.prune(keep_milestones=4)
        bound = len(steps) - 4
        for index in range(bound, len(steps) + 1):
            assert storage.solid_entry_points(index) == model.entry_points(index, pruned=bound)
        with pytest.raises(StorageError, match="outside"):
            storage.solid_entry_points(len(steps) - 5)
        with pytest.raises(StorageError, match="outside"):
            storage.solid_entry_points(len(steps) + 1)


def cone_message(parsed: Parsed) -> ConeMessage:
    payload = parsed.message.payload
    tx = payload if isinstance(payload, Transaction) else None
    return ConeMessage(parents=parsed.message.parents, transaction=tx, referenced=False)


async def test_reads_from_other_threads_see_whole_milestones(
    tmp_path: Path, chain: tuple[Genesis, list[Step]]
) -> None:
    g, steps = chain
    hashes = {n: replay(g, steps, n).state_hash for n in range(len(steps) + 1)}
    seen: list[tuple[int, bytes]] = []
    with Storage.create(tmp_path / "db", g) as storage:
        done = threading.Event()

        def reader() -> None:
            while not done.is_set():
                state = storage.load_ledger()
                seen.append((state.milestone_index, state.state_hash))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, reader)
            for step in steps:
                await trio.to_thread.run_sync(store, storage, step)
            done.set()
    assert seen
    assert all(hashes[index] == state_hash for index, state_hash in seen)


# -- refusals and atomicity ------------------------------------------------------------------


def snapshot_of(storage: Storage) -> tuple[object, ...]:
    """Everything a refused write could have touched."""
    db = sqlite3.connect(storage.path)
    try:
        return tuple(
            db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("ledger", "milestones", "metadata", "unspent", "spent", "messages")
        )
    finally:
        db.close()


def test_refused_milestones_write_nothing(
    tmp_path: Path, chain: tuple[Genesis, list[Step]]
) -> None:
    g, steps = chain
    one, two = steps[0], steps[1]
    with Storage.create(tmp_path / "db", g) as storage:
        storage.put_messages(one.messages + two.messages)
        before = snapshot_of(storage)
        with pytest.raises(InconsistentWriteError, match="cannot follow the confirmed milestone 0"):
            storage.apply_milestone(two.record, two.result, two.state_hash)
        with pytest.raises(InconsistentWriteError, match="state hash"):
            storage.apply_milestone(one.record, one.result, two.state_hash)
        with pytest.raises(InconsistentWriteError, match="diff of milestone 2"):
            storage.apply_milestone(one.record, two.result, one.state_hash)
        twice = replace(one.result, referenced=one.result.referenced * 2)
        with pytest.raises(InconsistentWriteError, match="twice"):
            storage.apply_milestone(one.record, twice, one.state_hash)
        assert snapshot_of(storage) == before
        store(storage, one)
        assert_ledger(storage, replay(g, steps, 1))


def spend_again(storage: Storage, step: Step, diff: LedgerDiff) -> None:
    """Apply `step`'s record with `diff`, and the state hash that diff leads to."""
    acc = storage.load_ledger().accumulator
    acc -= sum(output_leaf(s.output_id, s.output) for s in diff.consumed)
    acc += sum(output_leaf(oid, out) for oid, out in diff.created)
    state_hash = ledger_state_hash(diff.index, acc % 2**256)
    storage.apply_milestone(step.record, replace(step.result, diff=diff), state_hash)


def test_a_failure_midway_leaves_nothing_behind(
    tmp_path: Path, chain: tuple[Genesis, list[Step]]
) -> None:
    g, steps = chain
    one, two = steps[0], steps[1]
    spent = one.result.diff.consumed[0]
    with Storage.create(tmp_path / "db", g) as storage:
        store(storage, one)
        storage.put_messages(two.messages)
        before = snapshot_of(storage)
        # Re-create an output milestone 1 spent and spend it again: the spent table's primary
        # key refuses the second spend after the record, metadata and outputs were written.
        output = (spent.output_id, spent.output)
        diff = LedgerDiff(index=2, created=(output,), consumed=(spent,))
        with pytest.raises(InconsistentWriteError, match=r"UNIQUE constraint failed: spent"):
            spend_again(storage, two, diff)
        assert snapshot_of(storage) == before
        # Spending one output twice in a milestone, or an output that is not unspent.
        unspent_id, unspent_output = sorted(storage.load_ledger().unspent.items())[0]
        twice = Spend(
            output_id=unspent_id, output=unspent_output, transaction_id=spent.transaction_id
        )
        with pytest.raises(InconsistentWriteError, match="UNIQUE constraint failed: spent"):
            spend_again(storage, two, LedgerDiff(index=2, created=(), consumed=(twice, twice)))
        with pytest.raises(InconsistentWriteError, match="not unspent as given"):
            spend_again(storage, two, LedgerDiff(index=2, created=(), consumed=(spent,)))
        # A message milestone 1 already referenced.
        again = replace(two.result, referenced=(*two.result.referenced, one.result.referenced[0]))
        with pytest.raises(InconsistentWriteError, match="re-references"):
            storage.apply_milestone(two.record, again, two.state_hash)
        assert snapshot_of(storage) == before
        store(storage, two)
        assert_ledger(storage, replay(g, steps, 2))


def test_an_uncommitted_transaction_is_gone_after_reopening(
    tmp_path: Path, chain: tuple[Genesis, list[Step]]
) -> None:
    g, steps = chain
    with Storage.create(tmp_path / "db", g) as storage:
        store(storage, steps[0])
    # Another connection writes half a milestone and goes away without committing.
    raw = sqlite3.connect(tmp_path / "db", isolation_level=None)
    raw.execute("BEGIN IMMEDIATE")
    raw.execute("INSERT INTO milestones VALUES (2, x'00', x'00', 0, x'00')")
    raw.execute("DELETE FROM unspent")
    raw.execute("UPDATE ledger SET confirmed_index = 2")
    raw.close()
    with Storage.open(tmp_path / "db", network_id=NET) as storage:
        assert storage.milestone(2) is None
        assert_ledger(storage, replay(g, steps, 1))
        store(storage, steps[1])
        assert_ledger(storage, replay(g, steps, 2))


def test_large_timestamps_and_record_checks() -> None:
    record = MilestoneRecord(
        index=1,
        milestone_id=MilestoneId(bytes(32)),
        message_id=MessageId(bytes(32)),
        timestamp_ms=2**64 - 1,
        raw=b"\x01",
    )
    assert record.timestamp_ms == 2**64 - 1
    with pytest.raises(InvalidFieldError):
        replace(record, index=0)
    with pytest.raises(InvalidFieldError):
        replace(record, timestamp_ms=2**64)


# -- pruning ---------------------------------------------------------------------------------


def test_prune_keeps_the_ledger_and_milestones(
    tmp_path: Path, chain: tuple[Genesis, list[Step]]
) -> None:
    g, steps = chain
    with Storage.create(tmp_path / "db", g) as storage:
        for step in steps:
            store(storage, step)
        orphan = Model(state=genesis_state(g)).attach(TaggedData(tag=b"orphan", data=b""))
        storage.put_messages([orphan])
        result = storage.prune(keep_milestones=5, batch_size=7)
        bound = len(steps) - 5
        assert result.pruned_index == bound == storage.head().pruned_index
        assert result.messages == sum(len(s.result.referenced) for s in steps[:bound])
        assert result.spent_outputs == sum(len(s.result.diff.consumed) for s in steps[:bound])
        assert_ledger(storage, replay(g, steps, len(steps)))
        for step in steps:
            old = step.record.index <= bound
            assert storage.milestone(step.record.index) == step.record
            for mid in step.result.referenced:
                assert (storage.message(mid) is None) == old
                assert (storage.metadata(mid) is None) == old
            for spend in step.result.diff.consumed:
                assert storage.is_spent(spend.output_id) == (not old)
        assert storage.message(orphan.id) == orphan.raw  # stored at 12, not expired yet
        assert storage.prune(keep_milestones=5) == replace(result, messages=0, spent_outputs=0)
        assert storage.prune(keep_milestones=0).pruned_index == len(steps)
        assert storage.message(orphan.id) is None  # unreferenced for 0 milestones: expired
    with Storage.open(tmp_path / "db", network_id=NET) as storage:
        assert_ledger(storage, replay(g, steps, len(steps)))


def test_orphans_expire_from_their_arrival(
    tmp_path: Path, chain: tuple[Genesis, list[Step]]
) -> None:
    """A message stored at the origin's index is not older than the keep window just because
    the pruning boundary starts there (at 0 for a genesis, at a snapshot's index)."""
    g, steps = chain
    orphan = Model(state=genesis_state(g)).attach(TaggedData(tag=b"early", data=b""))
    with Storage.create(tmp_path / "db", g) as storage:
        storage.put_messages([orphan])
        for step in steps[:3]:
            store(storage, step)
        assert storage.prune(keep_milestones=5).messages == 0
        assert storage.message(orphan.id) == orphan.raw
        for step in steps[3:5]:
            store(storage, step)
        storage.prune(keep_milestones=5)
        assert storage.message(orphan.id) is None  # stored at 0, confirmed 5: expired


def file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def test_disk_use_stays_bounded_under_pruning(tmp_path: Path) -> None:
    g = make_genesis()
    model = Model(state=genesis_state(g))
    rng = random.Random(3)
    sizes: list[int] = []
    first_orphans: list[Parsed] = []
    with Storage.create(tmp_path / "db", g) as storage:
        for _ in range(36):
            payloads: list[Payload] = [
                TaggedData(tag=b"blob", data=rng.randbytes(1500)) for _ in range(40)
            ]
            store(storage, model.milestone(payloads))
            orphans = [
                model.attach(TaggedData(tag=b"orphan", data=rng.randbytes(1500)), tip=False)
                for _ in range(5)
            ]
            first_orphans = first_orphans or orphans
            storage.put_messages(orphans)
            storage.prune(keep_milestones=4)
            sizes.append(file_size(tmp_path / "db"))
        kept = storage.head().pruned_index
        assert all(storage.message(o.id) is None for o in first_orphans)
        assert all(storage.message(o.id) == o.raw for o in orphans)
        # A backlog of unpruned milestones goes back to the file system when pruned.
        for _ in range(12):
            blobs = [TaggedData(tag=b"blob", data=rng.randbytes(1500)) for _ in range(40)]
            store(storage, model.milestone(list(blobs)))
        backlog = file_size(tmp_path / "db")
        storage.prune(keep_milestones=4)
        assert file_size(tmp_path / "db") < backlog / 2
    # Each milestone adds ~70 KB; with 4 kept the file settles instead of growing with time.
    assert max(sizes[12:]) <= 1.25 * max(sizes[:12])
    assert sizes[-1] < 36 * 70_000 / 3
    assert kept == 32


# -- agreement under any order of operations ------------------------------------------------

AGREEMENT_CHAIN = build_chain(24, seed=19)


class StorageAgreesWithReplay(RuleBasedStateMachine):
    """Messages arriving early, milestones, prunes, restarts and snapshot restores, in any order:
    the stored ledger always equals a replay of the milestones applied so far."""

    def __init__(self) -> None:
        super().__init__()
        self.genesis, self.steps = AGREEMENT_CHAIN
        self.folder = tempfile.TemporaryDirectory()
        self.generation = 0
        self.storage = Storage.create(self.db_path(), self.genesis)
        self.storage.record_key_schedule(schedule(committee(1, 1)[1]))  # as a node does

    def db_path(self) -> Path:
        return Path(self.folder.name) / f"db{self.generation}"

    @property
    def applied(self) -> int:
        return self.storage.confirmed_index()

    @precondition(lambda self: self.applied < len(self.steps))
    @rule(ahead=st.integers(0, 2))
    def messages_arrive_early(self, ahead: int) -> None:
        step = self.steps[min(self.applied + ahead, len(self.steps) - 1)]
        self.storage.put_messages(step.messages)

    @precondition(lambda self: self.applied < len(self.steps))
    @rule()
    def apply_next(self) -> None:
        store(self.storage, self.steps[self.applied])

    @rule(keep=st.integers(0, 6))
    def prune(self, keep: int) -> None:
        self.storage.prune(keep_milestones=keep, batch_size=5)

    @rule()
    def restart(self) -> None:
        self.storage.close()
        self.storage = Storage.open(self.db_path(), network_id=NET)

    @rule()
    def restore_from_snapshot(self) -> None:
        snapshot = export_snapshot(self.storage, Path(self.folder.name) / "snap")
        assert list(snapshot.entry_points) == self.storage.solid_entry_points(self.applied)
        self.storage.close()
        self.generation += 1
        self.storage = create_from_snapshot(self.db_path(), snapshot)
        assert self.storage.solid_entry_points(self.applied) == list(snapshot.entry_points)
        assert self.storage.key_schedule() == snapshot.key_schedule

    @invariant()
    def ledger_agrees(self) -> None:
        n = self.applied
        assert_ledger(self.storage, replay(self.genesis, self.steps, n))
        assert self.storage.milestone_id(n) == (
            self.steps[n - 1].record.milestone_id if n else ZERO_MILESTONE_ID
        )

    def teardown(self) -> None:
        self.storage.close()
        self.folder.cleanup()


StorageAgreesWithReplay.TestCase.settings = settings(
    max_examples=15, stateful_step_count=25, deadline=None
)
test_storage_agrees_with_replay = StorageAgreesWithReplay.TestCase


# -- crash safety ----------------------------------------------------------------------------

CRASH_CHAIN = 500
CHILD = "import sys, tests.tangle.storage.test_storage as t; t.crash_child(sys.argv[1])"


def crash_child(path: str) -> None:
    """Apply the crash chain to the database at `path`, printing each index, until killed."""
    g, steps = build_chain(CRASH_CHAIN, seed=11)
    with Storage.open_or_create(path, g) as storage:
        print("ready", storage.confirmed_index(), flush=True)
        for step in steps[storage.confirmed_index() :]:
            store(storage, step)
            if step.record.index % 16 == 0:
                storage.prune(keep_milestones=10, batch_size=50)
            print(step.record.index, flush=True)


@pytest.mark.slow
def test_sigkill_leaves_a_milestone_boundary(tmp_path: Path) -> None:
    g, steps = build_chain(CRASH_CHAIN, seed=11)
    path = tmp_path / "db"
    rng = random.Random(5)
    confirmed: list[int] = []
    for _ in range(7):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert child.stdout is not None
        ready, start = child.stdout.readline().split()
        assert ready == b"ready"
        # Let it apply a random number of milestones, then kill it a random moment later.
        target, last = int(start) + rng.randint(5, 60), int(start)
        while last < min(target, CRASH_CHAIN) and (line := child.stdout.readline()):
            last = int(line)
        time.sleep(rng.uniform(0, 0.004))
        child.send_signal(signal.SIGKILL)
        child.wait()
        last = max([last, *map(int, child.stdout.read().split())])
        child.stdout.close()
        with Storage.open(path, network_id=NET) as storage:
            index = storage.confirmed_index()
            assert index in (last, last + 1)  # the last printed milestone, or one just committed
            assert_ledger(storage, replay(g, steps, index))
            assert storage.milestone(index + 1) is None
            if index:
                assert storage.milestone(index) == steps[index - 1].record
            if index < CRASH_CHAIN:
                for mid in steps[index].result.referenced:
                    meta = storage.metadata(mid)
                    assert meta is None or meta.referenced_by is None
            storage.prune(keep_milestones=10)  # finishes a prune the kill interrupted
            assert_ledger(storage, replay(g, steps, index))
        confirmed.append(index)
    assert confirmed == sorted(confirmed)
    assert len(set(confirmed)) == len(confirmed)
