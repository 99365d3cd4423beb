"""A store the earlier layout wrote (commit c3288c9: `imports`, a row per record in `records`,
the duplicate window as a `window` table) opens with nothing lost: its imports stay
duplicates, its pending records stay pending, its batches, acks and window stay."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import TYPE_CHECKING

import pytest

from payments.roaming import pending
from payments.roaming.acknowledgement import ReturnCode
from payments.roaming.batch import seal
from payments.roaming.errors import ReplayedBatchError, RoamingStoreError
from payments.roaming.partner_file import ImportOutcome
from payments.roaming.store import RoamingStore
from payments.roaming.validation import Validator
from tests.payments.roaming.settle_crash_child import A, batch
from tests.payments.roaming.settle_support import HOME, HOME_KEY, T0, VISITED, VISITED_KEY
from tests.payments.roaming.test_settle_pending import PAIRS, imported, usage

if TYPE_CHECKING:
    from pathlib import Path

    from payments.roaming.partner_file import ImportedFile

OLD_SCHEMA = (
    # The earlier layout's tables, as `git show c3288c9:payments/roaming/store.py` creates them.
    """CREATE TABLE agreements (
        hash BLOB PRIMARY KEY, version INTEGER NOT NULL, signed BLOB NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE imports (
        sender TEXT NOT NULL, recipient TEXT NOT NULL, kind TEXT NOT NULL,
        file_seq INTEGER NOT NULL, digest BLOB NOT NULL, records INTEGER NOT NULL,
        PRIMARY KEY (sender, recipient, kind, file_seq)) WITHOUT ROWID""",
    """CREATE TABLE records (
        id INTEGER PRIMARY KEY, sender TEXT NOT NULL, recipient TEXT NOT NULL,
        batch_seq INTEGER, record BLOB NOT NULL)""",
    """CREATE INDEX records_pending ON records (sender, recipient, batch_seq)""",
    """CREATE TABLE batches (
        sender TEXT NOT NULL, recipient TEXT NOT NULL, sequence INTEGER NOT NULL,
        header BLOB NOT NULL, records BLOB NOT NULL,
        PRIMARY KEY (sender, recipient, sequence)) WITHOUT ROWID""",
    """CREATE TABLE acks (
        sender TEXT NOT NULL, recipient TEXT NOT NULL, sequence INTEGER NOT NULL,
        accepted INTEGER NOT NULL, ack BLOB NOT NULL,
        PRIMARY KEY (sender, recipient, sequence)) WITHOUT ROWID""",
    """CREATE TABLE window (
        event_id BLOB PRIMARY KEY, start_utc INTEGER NOT NULL) WITHOUT ROWID""",
    """CREATE INDEX window_start ON window (start_utc)""",
    """CREATE TABLE disputes (
        id BLOB PRIMARY KEY, sender TEXT NOT NULL, recipient TEXT NOT NULL,
        sequence INTEGER NOT NULL, dispute BLOB NOT NULL, resolution BLOB) WITHOUT ROWID""",
    """CREATE TABLE bars (
        imsi_hash BLOB PRIMARY KEY, since INTEGER NOT NULL, signed BLOB NOT NULL) WITHOUT ROWID""",
)


def old_store(path: Path, files: list[ImportedFile], batch_seqs: dict[int, int]) -> None:
    """An earlier-layout store holding `files` imported (records numbered from 1 in order),
    record n marked with `batch_seqs[n]` (pending if absent), the HPMN's acknowledgement of
    `batch(1)` and its events in `window`."""
    validator = Validator(A, HOME_KEY)
    first = batch(1)
    ack = validator.validate(first, T0 + 3_600)
    with closing(sqlite3.connect(path)) as db, db:
        for statement in OLD_SCHEMA:
            db.execute(statement)
        n = 0
        for f in files:
            m = f.meta
            db.execute(
                "INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?)",
                (m.sender, m.recipient, m.kind.value, m.sequence, m.digest, len(f.records)),
            )
            for r in f.records:
                n += 1
                db.execute(
                    "INSERT INTO records VALUES (?, ?, ?, ?, ?)",
                    (n, r.sender, r.recipient, batch_seqs.get(n), r.encode()),
                )
        a = ack.ack
        db.execute(
            "INSERT INTO acks VALUES (?, ?, ?, ?, ?)",
            (a.sender, a.recipient, a.sequence, int(a.accepted), ack.encode()),
        )
        db.executemany(
            "INSERT INTO window VALUES (?, ?)", [(r.event_id, r.start_utc) for r in first.records]
        )


def test_an_old_store_opens_with_its_imports_pending_records_acks_and_window(
    tmp_path: Path,
) -> None:
    mine, theirs = PAIRS
    one, two, other = usage(mine, 0, 3), usage(mine, 3, 2), usage(theirs, 0, 2)
    files = [imported(mine, 1, one), imported(theirs, 1, other), imported(mine, 2, two)]
    # old ids: mine 1-3 and 6-7, theirs 4-5; 1 and 4 batched, 6 refused
    path = tmp_path / "old.db"
    old_store(path, files, {1: 1, 4: 1, 6: pending.REFUSED})
    for _ in range(2):  # the second open finds nothing left to move
        with RoamingStore(path) as store:
            for f in files:
                assert store.import_file(f) is ImportOutcome.ALREADY_IMPORTED
                assert store.file_ids(f.meta) == range(0)  # no records kept under its key
            assert store.import_file(imported(mine, 1, two)) is ImportOutcome.CONFLICT
            assert store.pending(*mine, 100) == (one[1], one[2], two[1])
            assert store.pending(*theirs, 100) == other[1:]
            assert store.acks(VISITED, HOME) == [
                Validator(A, HOME_KEY).validate(batch(1), T0 + 3_600)
            ]
            v = Validator(
                A, HOME_KEY, next_sequence=store.next_expected(VISITED, HOME),
                window=store.window(100),
            )  # fmt: skip
            with pytest.raises(ReplayedBatchError):
                v.validate(batch(1), T0 + 3_600)
            again = seal(A, VISITED_KEY, batch(1).records[:1], sequence=2, now=T0 + 3_600)
            assert v.validate(again, T0 + 3_600).ack.returns[0].code is ReturnCode.DUPLICATE
    with closing(sqlite3.connect(path)) as db:
        tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not tables & {"imports", "records", "window"}
    with RoamingStore(path) as store:  # the migrated records batch and new files follow them
        rows = store.pending_rows(*mine, 100)
        sealed = seal(A, VISITED_KEY, tuple(r for _, r in rows), sequence=2, now=T0 + 60)
        store.save_batch(sealed, [i for i, _ in rows])
        assert store.pending(*mine, 100) == ()
        later = imported(mine, 3, usage(mine, 10, 2))
        assert store.import_file(later) is ImportOutcome.NEW
        assert store.pending(*mine, 100) == later.records
        assert min(store.file_ids(later.meta)) > max(i for i, _ in rows)


def test_an_old_store_with_a_damaged_table_is_refused_whole(tmp_path: Path) -> None:
    """A `records` table without the earlier layout's columns: `RoamingStoreError`, and the
    store is left as it was (the migration is one transaction)."""
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(OLD_SCHEMA[1])
        db.execute("INSERT INTO imports VALUES ('A', 'B', 'jsonl', 1, x'00', 0)")
        db.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, record BLOB)")
        db.execute("INSERT INTO records VALUES (1, x'00')")
    with pytest.raises(RoamingStoreError):
        RoamingStore(path)
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM imports").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM files").fetchone() == (0,)
