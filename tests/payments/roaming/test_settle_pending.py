"""The VPMN's pending records kept as whole files and taken ranges: ids in import order across
files and pairs, a batch or a refusal taking only what is still pending and of its pair, the
per-pair bound, and `file_ids` naming a file's records as imported."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.roaming import pending
from payments.roaming.batch import seal
from payments.roaming.errors import RoamingStoreError
from payments.roaming.partner_file import FileKind, ImportedFile, PartnerFile
from payments.roaming.store import RoamingStore
from tangle.protocol.ids import blake2b_256
from tests.payments.roaming.settle_crash_child import A
from tests.payments.roaming.settle_support import HOME, T0, VISITED, VISITED_KEY, record

if TYPE_CHECKING:
    from payments.roaming.record import UsageRecord

PAIRS = ((VISITED, HOME), (HOME, VISITED))


def imported(
    pair: tuple[str, str], sequence: int, records: tuple[UsageRecord, ...]
) -> ImportedFile:
    digest = blake2b_256(*(r.encode() for r in records))
    meta = PartnerFile(
        kind=FileKind.JSON_LINES, sender=pair[0], recipient=pair[1], sequence=sequence,
        digest=digest,
    )  # fmt: skip
    return ImportedFile(meta=meta, records=records)


def usage(pair: tuple[str, str], first: int, count: int) -> tuple[UsageRecord, ...]:
    return tuple(
        record(sender=pair[0], recipient=pair[1], up=i + 1, start=T0 + i)
        for i in range(first, first + count)
    )


def test_ids_follow_import_order_and_a_batch_takes_its_ids_across_files(tmp_path: Path) -> None:
    mine, theirs = PAIRS
    with RoamingStore(tmp_path / "r.db") as store:
        first, second, other = usage(mine, 0, 3), usage(mine, 3, 4), usage(theirs, 0, 2)
        a, b, c = imported(mine, 1, first), imported(mine, 2, second), imported(theirs, 1, other)
        for f in (a, b, c):
            store.import_file(f)
        assert (store.file_ids(a.meta), store.file_ids(b.meta)) == (range(1, 4), range(4, 8))
        assert store.file_ids(c.meta) == range(8, 10)
        assert store.file_ids(imported(mine, 3, first).meta) == range(0)  # never imported
        # a batch of the last record of file 1 and the first of file 2
        batch = seal(A, VISITED_KEY, (first[2], second[0]), sequence=1, now=T0 + 60)
        store.save_batch(batch, [3, 4])
        assert store.pending(*mine, 100) == (*first[:2], *second[1:])
        # an id of the other pair's records, or of one batched already: nothing is kept
        later = seal(A, VISITED_KEY, (second[1], second[2]), sequence=2, now=T0 + 60)
        for ids in ([5, 8], [3, 5], [5, 5]):
            with pytest.raises(RoamingStoreError, match="not pending"):
                store.save_batch(later, ids)
            assert store.batch(*mine, 2) is None
            assert store.pending(*mine, 100) == (*first[:2], *second[1:])
        store.save_batch(later, [5, 6])
        assert store.pending(*mine, 100) == (*first[:2], *second[3:])
        assert store.pending(*theirs, 100) == other
        store.refuse_pending([2, 3, 6, 9, 99])  # 3 and 6 are batched already, 99 is no record
        assert store.pending_rows(*mine, 100) == [(1, first[0]), (7, second[3])]
        assert store.pending(*theirs, 100) == other[:1]
        assert store.pending_rows(*mine, 1) == [(1, first[0])]
        assert store.batch(*mine, 1) == batch
    with RoamingStore(tmp_path / "r.db") as store:  # reopened: the same
        assert store.pending_rows(*mine, 100) == [(1, first[0]), (7, second[3])]


def test_a_pair_holds_at_most_the_bound_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pending, "MAX_PENDING_PER_PAIR", 5)
    mine, theirs = PAIRS
    with RoamingStore(tmp_path / "r.db") as store:
        store.import_file(imported(mine, 1, usage(mine, 0, 4)))
        store.import_file(imported(theirs, 1, usage(theirs, 0, 5)))  # its own bound
        with pytest.raises(RoamingStoreError, match="pending"):
            store.import_file(imported(mine, 2, usage(mine, 4, 2)))
        assert store.file_ids(imported(mine, 2, usage(mine, 4, 2)).meta) == range(0)
        store.refuse_pending([1])
        store.import_file(imported(mine, 2, usage(mine, 4, 2)))
        assert len(store.pending(*mine, 100)) == 5


def test_an_empty_file_is_kept_and_takes_no_id(tmp_path: Path) -> None:
    mine = PAIRS[0]
    with RoamingStore(tmp_path / "r.db") as store:
        empty = imported(mine, 1, ())
        store.import_file(empty)
        store.import_file(imported(mine, 2, usage(mine, 0, 2)))
        assert store.file_ids(empty.meta) == range(1, 1)
        assert store.pending_rows(*mine, 5) == [
            (1, usage(mine, 0, 1)[0]),
            (2, usage(mine, 1, 1)[0]),
        ]


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("import"), st.integers(0, 1), st.integers(0, 6)),
        st.tuples(st.just("refuse"), st.lists(st.integers(0, 40), max_size=8)),
        st.tuples(st.just("batch"), st.integers(0, 1), st.integers(1, 5)),
    ),
    max_size=10,
)


@settings(max_examples=30, deadline=None)
@given(ops=_OPS)
def test_the_store_keeps_what_a_list_of_records_would(ops: list[tuple[object, ...]]) -> None:
    """Against a model (every record with its id and pair, and the set of ids taken): importing,
    refusing any ids (others' and unknown ones included) and batching the oldest pending."""
    model: list[tuple[int, int, UsageRecord]] = []
    taken: set[int] = set()
    files = [0, 0]
    sequences = [0, 0]
    with tempfile.TemporaryDirectory() as tmp, RoamingStore(Path(tmp) / "r.db") as store:
        for op in ops:
            if op[0] == "import":
                p, n = int(str(op[1])), int(str(op[2]))
                files[p] += 1
                records = usage(PAIRS[p], 100 * files[p], n)
                store.import_file(imported(PAIRS[p], files[p], records))
                model += [(len(model) + 1 + k, p, r) for k, r in enumerate(records)]
            elif op[0] == "refuse":
                ids = [int(i) for i in op[1]]  # type: ignore[attr-defined]
                store.refuse_pending(ids)
                taken.update(i for i in ids if 1 <= i <= len(model))
            else:
                p, n = int(str(op[1])), int(str(op[2]))
                rows = store.pending_rows(*PAIRS[p], n)
                if not rows or p == 1:  # the store's agreement signs the first pair's only
                    continue
                sequences[p] += 1
                records = tuple(r for _, r in rows)
                batch = seal(A, VISITED_KEY, records, sequence=sequences[p], now=T0 + 60)
                store.save_batch(batch, [i for i, _ in rows])
                taken.update(i for i, _ in rows)
            for p, pair in enumerate(PAIRS):
                expected = [(i, r) for i, q, r in model if q == p and i not in taken]
                assert store.pending_rows(*pair, 1_000) == expected


def test_a_damaged_file_row_and_ids_out_of_range_raise_only_store_errors(tmp_path: Path) -> None:
    """A packed file cut short, or a record in it changed, is `RoamingStoreError` on reading;
    ids no record can have (zero, negative, past sqlite's integers) change nothing."""
    mine = PAIRS[0]
    with RoamingStore(tmp_path / "r.db") as store:
        store.import_file(imported(mine, 1, usage(mine, 0, 3)))
        store.refuse_pending([0, -1, 1 << 64, 10**30])
        assert len(store.pending(*mine, 10)) == 3
    db = sqlite3.connect(tmp_path / "r.db")
    (packed,) = db.execute("SELECT records FROM file_records").fetchone()
    for damaged in (packed[:-1], packed[:3] + b"\xff" + packed[4:], packed + b"\x00"):
        with db:
            db.execute("UPDATE file_records SET records = ?", (damaged,))
        with RoamingStore(tmp_path / "r.db") as store, pytest.raises(RoamingStoreError):
            store.pending(*mine, 10)
    db.close()


@given(st.integers(-3, pending.MAX_ID + 3), st.integers(-3, pending.MAX_ID + 3), st.integers(1, 3))
def test_runs_of_a_range_are_the_runs_of_its_ids(start: int, stop: int, step: int) -> None:
    """A range of step 1 (what `file_ids` gives) is one run computed from its ends; the same
    runs as its ids listed one by one (clamped to 1..MAX_ID, none when empty)."""
    ids = range(start, min(stop, start + 50), step)
    assert list(pending._runs(ids)) == list(pending._runs(list(ids)))
