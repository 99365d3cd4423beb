"""The roaming store: idempotent, all-or-nothing imports, sealed batches, acknowledgements and
the duplicate window surviving a restart, and an HPMN SIGKILLed mid-run losing no batch it
acknowledged."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from payments.roaming import store as store_module
from payments.roaming.acknowledgement import ReturnCode
from payments.roaming.batch import seal
from payments.roaming.errors import ReplayedBatchError, RoamingStoreError
from payments.roaming.partner_file import FileKind, ImportedFile, ImportOutcome, PartnerFile
from payments.roaming.store import PAGE_SIZE, RoamingStore
from payments.roaming.validation import Validator
from tangle.protocol.ids import blake2b_256
from tests.payments.roaming.settle_crash_child import A, batch
from tests.payments.roaming.settle_support import (
    HOME,
    HOME_KEY,
    T0,
    VISITED,
    VISITED_KEY,
    record,
    signed,
)

if TYPE_CHECKING:
    from payments.roaming.record import UsageRecord

ROOT = Path(__file__).resolve().parents[3]


def partner_file(sequence: int, records: tuple[UsageRecord, ...]) -> ImportedFile:
    """A JSON Lines file of `records` (its digest over their encodings)."""
    digest = blake2b_256(*(r.encode() for r in records))
    meta = PartnerFile(
        kind=FileKind.JSON_LINES, sender=VISITED, recipient=HOME, sequence=sequence, digest=digest
    )
    return ImportedFile(meta=meta, records=records)


def test_a_file_is_imported_once_and_whole(tmp_path: Path) -> None:
    records = tuple(record(up=i + 1, start=T0 + i) for i in range(5))
    with RoamingStore(tmp_path / "r.db") as store:
        assert store.import_file(partner_file(7, records)) is ImportOutcome.NEW
        assert store.import_file(partner_file(7, records)) is ImportOutcome.ALREADY_IMPORTED
        assert store.import_file(partner_file(7, records[:1])) is ImportOutcome.CONFLICT
        mixed = (*records, record(sender=HOME, recipient=VISITED))
        with pytest.raises(RoamingStoreError):
            store.import_file(partner_file(8, mixed))
        assert store.pending(VISITED, HOME, 100) == records  # nothing of file 8
        rows = store.pending_rows(VISITED, HOME, 3)
        b = seal(A, VISITED_KEY, tuple(r for _, r in rows), sequence=1, now=T0 + 60)
        store.save_batch(b, [i for i, _ in rows])
        assert store.pending(VISITED, HOME, 100) == records[3:]
        assert store.batch(VISITED, HOME, 1) == b
        assert store.next_batch_sequence(VISITED, HOME) == 2
        store.put_agreement(signed(A))
        store.put_agreement(signed(A))
        assert store.agreements() == [signed(A)]


def test_a_batch_marks_the_rows_it_was_sealed_from_not_the_oldest_pending(
    tmp_path: Path,
) -> None:
    """The batch marks its own row ids, so a record it never sent stays pending; one of its
    records refused between the read and the save (another `batch` run) refuses the batch,
    nothing kept."""
    records = tuple(record(up=i + 1, start=T0 + i) for i in range(3))
    with RoamingStore(tmp_path / "r.db") as store:
        store.import_file(partner_file(1, records))
        rows = store.pending_rows(VISITED, HOME, 2)
        b = seal(A, VISITED_KEY, tuple(r for _, r in rows), sequence=1, now=T0 + 60)
        store.refuse_pending([rows[0][0]])
        with pytest.raises(RoamingStoreError, match="not pending"):
            store.save_batch(b, [i for i, _ in rows])
        assert store.batch(VISITED, HOME, 1) is None
        assert store.pending(VISITED, HOME, 100) == records[1:]
        rows = rows[1:]
        b = seal(A, VISITED_KEY, tuple(r for _, r in rows), sequence=1, now=T0 + 60)
        store.save_batch(b, [i for i, _ in rows])
        assert store.pending(VISITED, HOME, 100) == records[2:]
        with pytest.raises(RoamingStoreError, match="row ids"):
            store.save_batch(replace(b, records=b.records * 2), [i for i, _ in rows])


def test_acks_and_the_duplicate_window_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with RoamingStore(path) as store:
        v = Validator(A, HOME_KEY)
        first = batch(1)
        ack = v.validate(first, T0 + 3_600)
        assert store.save_ack(ack, accepted=first.records)
        assert not store.save_ack(ack, accepted=first.records)
        other = replace(ack, ack=replace(ack.ack, acked_utc=ack.ack.acked_utc + 1))
        with pytest.raises(RoamingStoreError, match="another"):
            store.save_ack(other)
    with RoamingStore(path) as store:
        assert store.acks(VISITED, HOME) == [ack]
        v = Validator(
            A, HOME_KEY, next_sequence=store.next_expected(VISITED, HOME), window=store.window(100)
        )
        with pytest.raises(ReplayedBatchError):
            v.validate(first, T0 + 3_600)
        again = seal(A, VISITED_KEY, first.records[:1], sequence=2, now=T0 + 3_600)
        assert v.validate(again, T0 + 3_600).ack.returns[0].code is ReturnCode.DUPLICATE


@pytest.mark.slow
def test_an_hpmn_killed_mid_run_keeps_every_batch_it_acknowledged(tmp_path: Path) -> None:
    path = tmp_path / "hpmn.db"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    printed: list[int] = []
    for run in range(2):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.payments.roaming.settle_crash_child", str(path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        for _ in range(5 + 10 * run):
            line = child.stdout.readline()
            assert line.startswith("acked "), line
            printed.append(int(line.split()[1]))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        with RoamingStore(path) as store:
            kept = [a.ack.sequence for a in store.acks(VISITED, HOME)]
            assert set(printed) <= set(kept)
            assert kept == list(range(1, len(kept) + 1))  # no gap, no duplicate
            assert store.next_expected(VISITED, HOME) == len(kept) + 1
            for a in store.acks(VISITED, HOME):
                assert a.ack.accepted_count == 20  # none was returned as a duplicate


def test_a_new_store_has_large_pages_and_an_earlier_one_keeps_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store created now has `PAGE_SIZE` pages (a batch's rows are written as fewer pages).
    One the earlier code wrote (the same store at sqlite's 4 KiB pages) holding a batch and its
    acknowledgement keeps its pages: the new code reads both back equal, the batch's packed
    bytes too, resumes from it and keeps more batches."""
    first, second = batch(1), batch(2)
    pair = (first.signed.header.sender, first.signed.header.recipient)
    with monkeypatch.context() as earlier_code:
        earlier_code.setattr(store_module, "PAGE_SIZE", 4096)
        with RoamingStore(tmp_path / "earlier.db") as store:
            acked = Validator(A, HOME_KEY).validate(first, first.signed.header.sealed_utc)
            assert store.save_ack(acked, accepted=first.records, batch=first)
    with RoamingStore(tmp_path / "earlier.db") as store:
        kept = store.batch(*pair, 1)
        assert kept == first
        assert kept is not None
        assert kept.packed == first.packed
        assert store.ack(*pair, 1) == acked
        v = Validator(
            A, HOME_KEY, next_sequence=store.next_expected(*pair), window=store.window(100)
        )
        later = v.validate(second, second.signed.header.sealed_utc)
        assert later.ack.accepted_count == len(second.records)  # none a duplicate of batch 1
        assert store.save_ack(later, accepted=second.records, batch=second)
    with RoamingStore(tmp_path / "earlier.db") as store:
        assert store.acks(*pair) == [acked, later]
        assert store.batch(*pair, 2) == second
    with RoamingStore(tmp_path / "new.db") as store:
        store.save_batch(first)
        assert store.batch(*pair, 1) == first
    sizes = []
    for name in ("new.db", "earlier.db"):
        db = sqlite3.connect(tmp_path / name)
        sizes.append(db.execute("PRAGMA page_size").fetchone()[0])
        db.close()
    assert sizes == [PAGE_SIZE, 4096]
