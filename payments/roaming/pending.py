"""The VPMN's imported files and their pending records, on the roaming store's connection.

A file is kept whole: one row holds its import key, its digest and its records packed (u16
length, record encoding, in file order), so importing a file of n records writes one row, not n.
Its records get consecutive ids from the row's `first`, after the last file's: ids only grow, so
id order is import order. What leaves the pending records (sealed in a batch, or refused) is
kept as ranges of indexes into its file, with the batch sequence (`REFUSED` for a refusal); each
file keeps the count of its records still pending, which bounds a pair's pending records and
finds the files to read without reading the others.

```
files(id PK, sender, recipient, kind, file_seq, digest, first, count, pending)
                      one row per imported file, unique per (sender, recipient, kind, file_seq)
file_records(file PK, records)           its records, packed (apart: `pending` changes)
taken(file, first PK, last, batch_seq)   records first..last (indexes, inclusive) of a file
                                         taken out of the pending ones
```

A store an earlier version wrote (`imports`, and a row per record in `records`) is moved to
this layout when it opens (`migrate_record_rows`).

The functions run inside the caller's transaction (`RoamingStore`): they read and write with
the connection they are given and neither begin nor commit.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Final

from .errors import MalformedRecordError, RoamingStoreError
from .record import UsageRecord

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable, Iterator

    from .partner_file import PartnerFile

REFUSED: Final = 0
"""The batch sequence of records the VPMN refused (their subscriber barred): never batched
(batch sequence numbers start at 1)."""
MAX_PENDING_PER_PAIR: Final = 20_000_000
"""Records waiting to be batched, per pair: a partner cannot fill the disk through imports."""

SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS files (
        id INTEGER PRIMARY KEY, sender TEXT NOT NULL, recipient TEXT NOT NULL,
        kind TEXT NOT NULL, file_seq INTEGER NOT NULL, digest BLOB NOT NULL,
        first INTEGER NOT NULL, count INTEGER NOT NULL, pending INTEGER NOT NULL,
        UNIQUE (sender, recipient, kind, file_seq))""",
    """CREATE TABLE IF NOT EXISTS file_records (
        file INTEGER PRIMARY KEY REFERENCES files (id), records BLOB NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS files_first ON files (first) WHERE count > 0""",
    """CREATE INDEX IF NOT EXISTS files_pending ON files (sender, recipient, first)
        WHERE pending > 0""",
    """CREATE TABLE IF NOT EXISTS taken (
        file INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,
        batch_seq INTEGER NOT NULL, PRIMARY KEY (file, first)) WITHOUT ROWID""",
)
_LENGTH: Final = struct.Struct("<H")
MAX_ID: Final = (1 << 63) - 1
"""sqlite's largest integer: no record id is larger."""


MIGRATED: Final = "migrated"
"""The `kind` of the file rows that hold the pending records of a store an earlier version
wrote: no `FileKind` has this value, so no imported file's key is ever one of them."""
MIGRATED_PER_FILE: Final = 1_000_000
"""Records per migrated file row (its `file_seq` counts them from 0): a row stays well under
sqlite's 1 GB value limit."""


def migrate_record_rows(db: sqlite3.Connection) -> None:
    """Move a store an earlier version wrote, which kept the imports apart (`imports`) and a
    row per record (`records`), to `files`, inside the caller's transaction: each import
    becomes a file row with its key and digest (no records, so its re-import is a duplicate),
    the records still pending (batch_seq NULL) become file rows of their pair under the key
    (sender, recipient, `MIGRATED`, n), in id order, and both old tables go. Records already
    batched or refused are dropped: their batches are kept in `batches`."""
    old = {
        str(name)
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('records', 'imports')"
        )
    }
    if "imports" in old:
        db.execute(
            "INSERT INTO files (sender, recipient, kind, file_seq, digest, first, count, pending)"
            " SELECT sender, recipient, kind, file_seq, digest, 0, 0, 0 FROM imports"
        )
        db.execute("DROP TABLE imports")
    if "records" in old:
        pairs = db.execute(
            "SELECT DISTINCT sender, recipient FROM records WHERE batch_seq IS NULL"
        ).fetchall()
        for sender, recipient in pairs:
            rows = db.execute(
                "SELECT record FROM records WHERE sender = ? AND recipient = ?"
                " AND batch_seq IS NULL ORDER BY id",
                (sender, recipient),
            )
            n, chunk = 0, [bytes(r) for (r,) in rows.fetchmany(MIGRATED_PER_FILE)]
            while chunk:
                if any(len(e) > 0xFFFF for e in chunk):
                    raise RoamingStoreError("an earlier version's record is too long to keep")
                _add_packed(db, (sender, recipient, MIGRATED, n), chunk, b"")
                n, chunk = n + 1, [bytes(r) for (r,) in rows.fetchmany(MIGRATED_PER_FILE)]
        db.execute("DROP TABLE records")


def pack_records(records: Iterable[UsageRecord]) -> bytes:
    """Records as stored: each its u16 length and its encoding, in order."""
    return _pack_encodings([r.encode() for r in records])


def _pack_encodings(encodings: list[bytes]) -> bytes:
    # one concatenation a record, then one join: some twice as fast as joining the lengths
    # and the encodings as separate parts
    return b"".join([len(e).to_bytes(2, "little") + e for e in encodings])


def _offsets(data: bytes) -> list[int]:
    """Where each packed record's length starts (`RoamingStoreError` if one runs past the
    end)."""
    out, pos, size = [], 0, len(data)
    while pos < size:
        out.append(pos)
        if pos + 2 > size:
            raise RoamingStoreError("a packed record runs past the end")
        pos += 2 + _LENGTH.unpack_from(data, pos)[0]
    if pos != size:
        raise RoamingStoreError("a packed record runs past the end")
    return out


def _at(data: bytes, offset: int) -> UsageRecord:
    (n,) = _LENGTH.unpack_from(data, offset)
    try:
        return UsageRecord.decode(data[offset + 2 : offset + 2 + n])
    except MalformedRecordError as e:
        raise RoamingStoreError(f"an unreadable record: {e}") from None


def unpack_records(data: bytes) -> tuple[UsageRecord, ...]:
    """The records `pack_records` packed."""
    return tuple(_at(data, offset) for offset in _offsets(data))


def held(db: sqlite3.Connection, meta: PartnerFile) -> bytes | None:
    """The digest of the file kept under `meta`'s import key, if any."""
    row = db.execute(
        "SELECT digest FROM files WHERE sender = ? AND recipient = ? AND kind = ? AND file_seq = ?",
        (meta.sender, meta.recipient, meta.kind.value, meta.sequence),
    ).fetchone()
    return None if row is None else bytes(row[0])


def file_ids(db: sqlite3.Connection, meta: PartnerFile) -> range:
    """The record ids of the file kept under `meta`'s key with its digest (empty if none)."""
    row = db.execute(
        "SELECT first, count FROM files WHERE sender = ? AND recipient = ? AND kind = ?"
        " AND file_seq = ? AND digest = ?",
        (meta.sender, meta.recipient, meta.kind.value, meta.sequence, meta.digest),
    ).fetchone()
    return range(0) if row is None else range(int(row[0]), int(row[0]) + int(row[1]))


def pending_count(db: sqlite3.Connection, sender: str, recipient: str) -> int:
    (total,) = db.execute(
        "SELECT total(pending) FROM files WHERE sender = ? AND recipient = ? AND pending > 0",
        (sender, recipient),
    ).fetchone()
    return int(total)


def add_file(db: sqlite3.Connection, meta: PartnerFile, records: tuple[UsageRecord, ...]) -> None:
    """Keep a new file (its key not held: `held`) and its records, all pending."""
    if pending_count(db, meta.sender, meta.recipient) + len(records) > MAX_PENDING_PER_PAIR:
        raise RoamingStoreError(f"more than {MAX_PENDING_PER_PAIR} records pending")
    key = (meta.sender, meta.recipient, meta.kind.value, meta.sequence)
    _add_packed(db, key, [r.encode() for r in records], meta.digest)


def _add_packed(
    db: sqlite3.Connection, key: tuple[str, str, str, int], encodings: list[bytes], digest: bytes
) -> None:
    """Keep a file under `key` (sender, recipient, kind, file_seq) whose records are
    `encodings`, all pending, their ids after the last file's."""
    last = db.execute(
        "SELECT first + count FROM files WHERE count > 0 ORDER BY first DESC LIMIT 1"
    ).fetchone()
    n = len(encodings)
    file = db.execute(
        "INSERT INTO files (sender, recipient, kind, file_seq, digest, first, count, pending)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (*key, digest, 1 if last is None else int(last[0]), n, n),
    ).lastrowid
    db.execute(
        "INSERT INTO file_records (file, records) VALUES (?, ?)", (file, _pack_encodings(encodings))
    )


def _taken(db: sqlite3.Connection, file: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """The taken ranges of `file` that meet indexes lo..hi, in order."""
    rows = db.execute(
        "SELECT first, last FROM taken WHERE file = ? AND first <= ? AND last >= ? ORDER BY first",
        (file, hi, lo),
    )
    return [(int(a), int(b)) for a, b in rows]


def _free(lo: int, hi: int, taken: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """The parts of lo..hi (inclusive) outside the sorted, disjoint `taken` ranges."""
    for a, b in taken:
        if a > lo:
            yield lo, min(a - 1, hi)
        lo = max(lo, b + 1)
    if lo <= hi:
        yield lo, hi


def pending_rows(
    db: sqlite3.Connection, sender: str, recipient: str, limit: int
) -> list[tuple[int, UsageRecord]]:
    """Up to `limit` pending records of the pair with their ids, in import order."""
    out: list[tuple[int, UsageRecord]] = []
    files = db.execute(
        "SELECT id, first, count, records FROM files JOIN file_records ON file = id"
        " WHERE sender = ? AND recipient = ? AND pending > 0 ORDER BY first",
        (sender, recipient),
    )
    for file, first, count, data in files:
        offsets = _offsets(data)
        if len(offsets) != count:
            raise RoamingStoreError(f"file {file} holds {len(offsets)} records, not {count}")
        for lo, hi in _free(0, count - 1, _taken(db, file, 0, count - 1)):
            end = min(hi + 1, lo + limit - len(out))
            out.extend((first + i, _at(data, offsets[i])) for i in range(lo, end))
            if len(out) >= limit:
                return out
    return out


def _runs(ids: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Sorted distinct `ids` as runs of consecutive ids (inclusive); none outside 1..`MAX_ID`
    names a record (a range of step 1, what `file_ids` gives, is one run without a sort)."""
    if isinstance(ids, range) and ids.step == 1:
        lo, hi = max(ids.start, 1), min(ids.stop - 1, MAX_ID)
        if lo <= hi:
            yield lo, hi
        return
    run: list[int] = []
    for i in sorted({i for i in ids if 1 <= i <= MAX_ID}):
        if run and i == run[1] + 1:
            run[1] = i
            continue
        if run:
            yield run[0], run[1]
        run = [i, i]
    if run:
        yield run[0], run[1]


def take(
    db: sqlite3.Connection, ids: Iterable[int], batch_seq: int, pair: tuple[str, str] | None
) -> int:
    """Take the records `ids` out of the pending ones under `batch_seq`: those of the pair
    (any pair if None) still pending; ids of no such record change nothing. How many were
    taken."""
    done = 0
    for lo, hi in _runs(ids):
        while lo <= hi:
            row = db.execute(
                "SELECT id, sender, recipient, first, count FROM files WHERE first <= ?"
                " AND count > 0 ORDER BY first DESC LIMIT 1",
                (lo,),
            ).fetchone()
            if row is None or lo >= row[3] + row[4]:
                break  # past the last record: no file holds these ids
            file, first = int(row[0]), int(row[3])
            end = min(hi, first + int(row[4]) - 1)
            if pair is None or (row[1], row[2]) == pair:
                spans = list(
                    _free(lo - first, end - first, _taken(db, file, lo - first, end - first))
                )
                db.executemany(
                    "INSERT INTO taken (file, first, last, batch_seq) VALUES (?, ?, ?, ?)",
                    [(file, a, b, batch_seq) for a, b in spans],
                )
                count = sum(b - a + 1 for a, b in spans)
                db.execute("UPDATE files SET pending = pending - ? WHERE id = ?", (count, file))
                done += count
            lo = end + 1
    return done
