"""Snapshots: canonical round trips, a fresh database from a snapshot, its solid entry points and
its committee key schedule, named errors for bad files."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tangle.errors import (
    DecodeError,
    InvalidFieldError,
    MalformedError,
    NonCanonicalError,
    StorageError,
    TrailingBytesError,
    TruncatedError,
    UnknownTypeError,
    UnknownVersionError,
)
from tangle.ledger.committee import KeySchedule, encode_key_schedule
from tangle.ledger.ledger import genesis_state
from tangle.protocol.ids import Address, MessageId, MilestoneId, OutputId
from tangle.protocol.message import decode_message
from tangle.protocol.transaction import BasicOutput
from tangle.storage.snapshot import (
    MAGIC,
    BadMagicError,
    LateEntryPointError,
    Snapshot,
    SnapshotError,
    StateHashMismatchError,
    SupplyMismatchError,
    create_from_snapshot,
    decode_snapshot,
    encode_snapshot,
    export_snapshot,
    read_snapshot,
    write_snapshot,
)
from tangle.storage.storage import ZERO_MILESTONE_ID, InconsistentWriteError, Storage
from tests.builders import NET, address, committee
from tests.tangle.storage.test_storage import (
    KEYS,
    Step,
    assert_ledger,
    build_chain,
    make_genesis,
    replay,
    store,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tangle.ledger.ledger import Genesis

SCHEDULE = KeySchedule(entries=((1, committee(3, 2)[1]), (5, committee(2, 2, offset=2000)[1])))
"""A committee at genesis and a rotation to another from milestone 5."""
SCHEDULE_AT = len(MAGIC) + 1 + 8 + 8 + 4 + 32
"""Where the key schedule starts."""
HEADER = SCHEDULE_AT + len(encode_key_schedule(SCHEDULE)) + 8
"""Bytes before the first output."""
ENTRY = 34 + 1 + 32 + 8
"""Bytes per output."""
POINT = 32 + 4
"""Bytes per entry point."""
POINTS = ((MessageId(b"\x01" * 32), 0), (MessageId(b"\x02" * 32), 0))
"""Entry points of the small snapshot (carried as they are: no hash covers them)."""


def create_source(path: Path, g: Genesis) -> Storage:
    """A database created from genesis, with the key schedule a node records in it."""
    storage = Storage.create(path, g)
    storage.record_key_schedule(SCHEDULE)
    return storage


@pytest.fixture(scope="module")
def chain() -> tuple[Genesis, list[Step]]:
    return build_chain(10, seed=3)


def small_snapshot(entry_points: tuple[tuple[MessageId, int], ...] = POINTS) -> bytes:
    state = genesis_state(make_genesis())
    return encode_snapshot(
        Snapshot(
            network_id=NET,
            supply=state.supply,
            milestone_index=0,
            milestone_id=ZERO_MILESTONE_ID,
            key_schedule=SCHEDULE,
            outputs=tuple(sorted(state.unspent.items(), key=lambda item: item[0])),
            entry_points=entry_points,
            state_hash=state.state_hash,
        )
    )


def test_export_read_create_continue(tmp_path: Path, chain: tuple[Genesis, list[Step]]) -> None:
    g, steps = chain
    with create_source(tmp_path / "a.db", g) as source:
        for step in steps[:6]:
            store(source, step)
        written = export_snapshot(source, tmp_path / "ledger.snap")
        source_head = source.head()
    raw = (tmp_path / "ledger.snap").read_bytes()
    snapshot = read_snapshot(tmp_path / "ledger.snap")
    assert snapshot == written
    assert encode_snapshot(snapshot) == raw
    assert (snapshot.milestone_index, snapshot.milestone_id) == (6, steps[5].record.milestone_id)
    # Milestone 6's own message is unreferenced: what it approves is where its past ends.
    (cone_tip,) = steps[5].messages[-1].message.parents
    assert snapshot.entry_points == ((cone_tip, 6),)
    assert snapshot.state_hash == source_head.state_hash == replay(g, steps, 6).state_hash
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    with create_from_snapshot(tmp_path / "b.db", snapshot) as fresh:
        assert fresh.head() == replace(source_head, pruned_index=6)
        assert fresh.milestone_id(6) == steps[5].record.milestone_id
        assert fresh.milestone(6) is None  # the record itself is not in the snapshot
        assert fresh.solid_entry_points(6) == list(snapshot.entry_points)
        assert_ledger(fresh, replay(g, steps, 6))
        for k in KEYS:
            assert fresh.balance(address(k)) == sum(
                o.amount for o in replay(g, steps, 6).unspent.values() if o.address == address(k)
            )
        # The chain goes on from the snapshot's milestone.
        for step in steps[6:]:
            store(fresh, step)
        assert_ledger(fresh, replay(g, steps, len(steps)))
        assert export_snapshot(fresh, tmp_path / "ledger.snap").milestone_index == len(steps)
    with pytest.raises(StorageError, match="already holds"):
        create_from_snapshot(tmp_path / "b.db", snapshot)


def test_entry_points_of_a_fresh_database_agree_with_its_source(
    tmp_path: Path, chain: tuple[Genesis, list[Step]]
) -> None:
    """Entry points nothing approves yet are tips: a second snapshot carries them on and pruning
    keeps them inside the window. Once the fresh database has the unreferenced messages and the
    later milestones, its entry points are those of the database it came from."""
    g, steps = chain
    with create_source(tmp_path / "a.db", g) as source:
        for step in steps[:6]:
            store(source, step)
        snapshot = export_snapshot(source, tmp_path / "a.snap")
        unreferenced = [decode_message(raw) for raw in source.unreferenced_messages()]
        for step in steps[6:]:
            store(source, step)
        expected = {i: source.solid_entry_points(i) for i in range(6, len(steps) + 1)}
        source.prune(keep_milestones=3)
        pruned = {i: source.solid_entry_points(i) for i in range(len(steps) - 3, len(steps) + 1)}
    assert [p.id for p in unreferenced] == [steps[5].messages[-1].id]
    with create_from_snapshot(tmp_path / "b.db", snapshot) as fresh:
        assert export_snapshot(fresh, tmp_path / "b.snap") == snapshot
        fresh.prune(keep_milestones=3)
        assert fresh.solid_entry_points(6) == list(snapshot.entry_points)
        fresh.put_messages(unreferenced)
        fresh.prune(keep_milestones=3)
        assert fresh.unreferenced_messages() == [p.raw for p in unreferenced]
        assert fresh.solid_entry_points(6) == list(snapshot.entry_points)
        for step in steps[6:]:
            store(fresh, step)
        assert {i: fresh.solid_entry_points(i) for i in expected} == expected
        fresh.prune(keep_milestones=3)
        assert {i: fresh.solid_entry_points(i) for i in pruned} == pruned


def test_genesis_snapshot(tmp_path: Path) -> None:
    g = make_genesis()
    with create_source(tmp_path / "db", g) as storage:
        snapshot = export_snapshot(storage, tmp_path / "genesis.snap")
    assert encode_snapshot(snapshot) == small_snapshot(entry_points=())
    assert snapshot.milestone_id == ZERO_MILESTONE_ID
    with create_from_snapshot(tmp_path / "copy", read_snapshot(tmp_path / "genesis.snap")) as copy:
        assert_ledger(copy, genesis_state(g))


def test_named_errors_for_each_defect() -> None:
    raw = small_snapshot()
    with pytest.raises(BadMagicError):
        decode_snapshot(b"TPSNAQ" + raw[6:])
    with pytest.raises(UnknownVersionError):
        decode_snapshot(raw[:6] + b"\x04" + raw[7:])
    with pytest.raises(UnknownVersionError):  # version 1 had no key schedule
        decode_snapshot(raw[:6] + b"\x01" + raw[7:])
    with pytest.raises(UnknownVersionError):  # version 2 had no device registry
        decode_snapshot(raw[:6] + b"\x02" + raw[7:])
    with pytest.raises(TrailingBytesError):
        decode_snapshot(raw + b"\x00")
    with pytest.raises(TruncatedError):
        decode_snapshot(raw[:-1])
    huge_count = raw[: HEADER - 8] + (2**64 - 1).to_bytes(8, "little") + raw[HEADER:]
    with pytest.raises(TruncatedError):
        decode_snapshot(huge_count)
    first, second = raw[HEADER : HEADER + ENTRY], raw[HEADER + ENTRY : HEADER + 2 * ENTRY]
    swapped = raw[:HEADER] + second + first + raw[HEADER + 2 * ENTRY :]
    with pytest.raises(NonCanonicalError, match="out of order"):
        decode_snapshot(swapped)
    repeated = raw[:HEADER] + first + first + raw[HEADER + 2 * ENTRY :]
    with pytest.raises(NonCanonicalError, match="repeated"):
        decode_snapshot(repeated)
    with pytest.raises(UnknownTypeError):
        decode_snapshot(raw[: HEADER + 34] + b"\x07" + raw[HEADER + 35 :])
    zero_amount = raw[: HEADER + ENTRY - 8] + bytes(8) + raw[HEADER + ENTRY :]
    with pytest.raises(NonCanonicalError, match="amount 0"):
        decode_snapshot(zero_amount)
    supply_at = len(MAGIC) + 1 + 8
    more = int.from_bytes(raw[supply_at : supply_at + 8], "little") + 1
    with pytest.raises(SupplyMismatchError):
        decode_snapshot(raw[:supply_at] + more.to_bytes(8, "little") + raw[supply_at + 8 :])
    with pytest.raises(StateHashMismatchError):
        decode_snapshot(raw[:-1] + bytes([raw[-1] ^ 1]))
    index_at = supply_at + 8
    with pytest.raises(StateHashMismatchError):  # the state hash commits to the index
        decode_snapshot(raw[:index_at] + (1).to_bytes(4, "little") + raw[index_at + 4 :])


def test_named_errors_for_each_entry_point_defect() -> None:
    raw = small_snapshot()
    at = len(raw) - 32 - 8 - len(POINTS) * POINT - 4  # the entry point count
    first, second = raw[at + 4 : at + 4 + POINT], raw[at + 4 + POINT : at + 4 + 2 * POINT]
    state_hash = raw[-40:]  # no devices, no issuers, the state hash
    assert decode_snapshot(raw).entry_points == POINTS
    huge_count = raw[:at] + (2**32 - 1).to_bytes(4, "little") + raw[at + 4 :]
    with pytest.raises(TruncatedError, match="entry_points"):
        decode_snapshot(huge_count)
    with pytest.raises(NonCanonicalError, match="out of order"):
        decode_snapshot(raw[: at + 4] + second + first + state_hash)
    with pytest.raises(NonCanonicalError, match="repeated"):
        decode_snapshot(raw[: at + 4] + first + first + state_hash)
    late = first[:32] + (1).to_bytes(4, "little")
    with pytest.raises(LateEntryPointError, match="after the snapshot's milestone 0") as caught:
        decode_snapshot(raw[: at + 4] + late + second + state_hash)
    assert (caught.value.message_id, caught.value.index) == (POINTS[0][0], 1)
    assert isinstance(caught.value, DecodeError)
    with pytest.raises(TruncatedError):  # one entry point fewer: the rest reads as devices
        decode_snapshot(raw[:at] + (1).to_bytes(4, "little") + raw[at + 4 :])
    none = small_snapshot(entry_points=())
    assert none == raw[:at] + bytes(4) + state_hash
    assert decode_snapshot(none).entry_points == ()


def test_named_errors_for_each_key_schedule_defect() -> None:
    raw = small_snapshot()
    end = HEADER - 8
    entry = 4 + 1 + 1 + 3 * 32  # the first key set: three keys
    second = SCHEDULE_AT + 4 + entry  # where the second entry starts
    assert decode_snapshot(raw).key_schedule == SCHEDULE

    def patched(at: int, data: bytes) -> bytes:
        return raw[:at] + data + raw[at + len(data) :]

    with pytest.raises(TruncatedError, match="key_schedule"):
        decode_snapshot(patched(SCHEDULE_AT, (2**32 - 1).to_bytes(4, "little")))
    with pytest.raises(MalformedError, match="must start at milestone 1"):
        decode_snapshot(patched(SCHEDULE_AT + 4, (2).to_bytes(4, "little")))
    with pytest.raises(MalformedError, match="must start at milestone 1"):  # an empty schedule
        decode_snapshot(raw[:SCHEDULE_AT] + bytes(4) + raw[end:])
    with pytest.raises(MalformedError, match="must increase"):
        decode_snapshot(patched(second, (1).to_bytes(4, "little")))
    with pytest.raises(MalformedError, match="threshold"):
        decode_snapshot(patched(second + 4, b"\x03"))  # 3 of 2 keys
    with pytest.raises(NonCanonicalError, match="key_count 0"):
        decode_snapshot(patched(second + 5, b"\x00"))
    keys = raw[second + 6 : end]
    with pytest.raises(MalformedError, match="sorted and unique"):
        decode_snapshot(patched(second + 6, keys[32:] + keys[:32]))


def test_every_truncation_is_a_truncated_error() -> None:
    raw = small_snapshot()
    for cut in range(len(raw)):
        with pytest.raises(TruncatedError):
            decode_snapshot(raw[:cut])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutations_decode_canonically_or_raise_named_errors(data: st.DataObject) -> None:
    raw = bytearray(small_snapshot())
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] ^= data.draw(st.integers(1, 255))
    try:
        snapshot = decode_snapshot(bytes(raw))
    except (DecodeError, SnapshotError):
        return
    assert encode_snapshot(snapshot) == bytes(raw)  # only fields the hash does not cover


@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_escape_the_error_tree(raw: bytes) -> None:
    with pytest.raises((DecodeError, SnapshotError)):
        decode_snapshot(MAGIC + raw)


def test_snapshot_objects_are_checked(tmp_path: Path) -> None:
    good = decode_snapshot(small_snapshot())
    with pytest.raises(InvalidFieldError):
        replace(good, outputs=tuple(reversed(good.outputs)))
    with pytest.raises(InvalidFieldError):
        replace(good, supply=0)
    with pytest.raises(InvalidFieldError):
        replace(good, state_hash=b"short")
    with pytest.raises(InvalidFieldError, match="sorted"):
        replace(good, entry_points=tuple(reversed(good.entry_points)))
    with pytest.raises(InvalidFieldError, match="sorted"):
        replace(good, entry_points=good.entry_points[:1] * 2)
    with pytest.raises(InvalidFieldError, match="index"):
        replace(good, entry_points=((POINTS[0][0], 1),))
    with pytest.raises(InvalidFieldError, match="MessageIds"):
        replace(good, entry_points=((bytes(32), 0),))  # type: ignore[arg-type]
    extra = (OutputId(b"\xff" * 34), BasicOutput(address=Address(bytes(32)), amount=1))
    with pytest.raises(SupplyMismatchError):
        create_from_snapshot(tmp_path / "db", replace(good, outputs=(*good.outputs, extra)))
    with pytest.raises(StateHashMismatchError):
        create_from_snapshot(tmp_path / "db", replace(good, milestone_index=3))
    assert not (tmp_path / "db").exists()
    bad_id = replace(good, milestone_id=MilestoneId(b"\x01" * 32))
    assert decode_snapshot(encode_snapshot(bad_id)) == bad_id  # the id is carried, not hashed
    other_points = replace(good, entry_points=((MessageId(b"\x03" * 32), 0),))
    assert decode_snapshot(encode_snapshot(other_points)) == other_points  # so are these
    genesis_only = replace(good, key_schedule=KeySchedule(entries=SCHEDULE.entries[:1]))
    assert decode_snapshot(encode_snapshot(genesis_only)) == genesis_only  # and the schedule
    with pytest.raises(InvalidFieldError, match="KeySchedule"):
        replace(good, key_schedule=SCHEDULE.entries)  # type: ignore[arg-type]


def test_the_database_records_its_key_schedule_once(tmp_path: Path) -> None:
    with Storage.create(tmp_path / "db", make_genesis()) as storage:
        assert storage.key_schedule() is None
        with pytest.raises(SnapshotError, match="records no key schedule"):
            export_snapshot(storage, tmp_path / "ledger.snap")
        storage.record_key_schedule(SCHEDULE)
        with pytest.raises(InconsistentWriteError):
            storage.record_key_schedule(KeySchedule(entries=SCHEDULE.entries[:1]))
    with Storage.open(tmp_path / "db", network_id=NET) as storage:
        assert storage.key_schedule() == SCHEDULE
        snapshot = export_snapshot(storage, tmp_path / "ledger.snap")
    with create_from_snapshot(tmp_path / "copy.db", snapshot) as copy:
        assert copy.key_schedule() == SCHEDULE


def test_writes_are_atomic(tmp_path: Path) -> None:
    good = decode_snapshot(small_snapshot())
    target = tmp_path / "ledger.snap"
    write_snapshot(good, target)
    write_snapshot(replace(good, milestone_id=MilestoneId(b"\x02" * 32)), target)
    assert read_snapshot(target).milestone_id == MilestoneId(b"\x02" * 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.snap"]
    with pytest.raises(SnapshotError, match="cannot write"):
        write_snapshot(good, tmp_path / "missing" / "ledger.snap")
    with pytest.raises(SnapshotError, match="cannot read"):
        read_snapshot(tmp_path / "missing.snap")
    (tmp_path / "ledger.snap").write_bytes(b"TPSNAP")
    with pytest.raises(TruncatedError):
        read_snapshot(tmp_path / "ledger.snap")
