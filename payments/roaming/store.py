"""The roaming database of one carrier: agreements, imported files, pending records, sealed
batches, acknowledgements and the duplicate window, on embedded sqlite.

It opens through the wallet's one opener (`wallet.database.open_database`: WAL,
`synchronous=FULL`), so a method that returned has fsync'd its transaction: an acknowledged
batch is never lost, even to SIGKILL or a power cut. Every write is one transaction, so a crash
leaves either all of it or none (a file is imported whole or not at all; a batch is sealed with
its records marked, an acknowledgement saved with the event ids it accepted). The methods block:
a program on an event loop calls them in a worker thread (`anyio.to_thread.run_sync`).

```
agreements(hash PK, version, signed)           the signed agreement files
files, taken                                   imported files kept whole, and the records taken
                                               out of the pending ones (at the VPMN: `pending`)
batches(sender, recipient, sequence PK, header, records)   sealed batches (signed header, the
                                               records' encodings)
acks(sender, recipient, sequence PK, ack)      signed acknowledgements (either side)
accepted(sender, recipient, sequence PK, newest, events)   the events the HPMN accepted in a
                                               batch (duplicate window): n x (32-byte event id,
                                               u64 start_utc), newest the latest start
disputes(id PK, sender, recipient, sequence, dispute, resolution)   signed disputes of a batch
                                               and, once answered, the signed resolution
bars(imsi_hash PK, since, signed)              the HPMN's signed bars (the earliest per IMSI)
```
"""

from __future__ import annotations

import sqlite3
import struct
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

from wallet.database import open_database

from . import pending as _files
from .acknowledgement import SignedAcknowledgement
from .agreement import SignedAgreement
from .bars import SignedBar
from .batch import Batch, SignedBatchHeader
from .disputes import SignedDispute, SignedResolution
from .errors import RoamingError, RoamingStoreError
from .partner_file import ImportedFile, ImportOutcome
from .validation import DUPLICATE_WINDOW_S, DuplicateWindow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from pathlib import Path

    from .partner_file import PartnerFile
    from .record import UsageRecord

_T = TypeVar("_T")

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS agreements (
        hash BLOB PRIMARY KEY, version INTEGER NOT NULL, signed BLOB NOT NULL) WITHOUT ROWID""",
    *_files.SCHEMA,
    """CREATE TABLE IF NOT EXISTS batches (
        sender TEXT NOT NULL, recipient TEXT NOT NULL, sequence INTEGER NOT NULL,
        header BLOB NOT NULL, records BLOB NOT NULL,
        PRIMARY KEY (sender, recipient, sequence)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS acks (
        sender TEXT NOT NULL, recipient TEXT NOT NULL, sequence INTEGER NOT NULL,
        accepted INTEGER NOT NULL, ack BLOB NOT NULL,
        PRIMARY KEY (sender, recipient, sequence)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS accepted (
        sender TEXT NOT NULL, recipient TEXT NOT NULL, sequence INTEGER NOT NULL,
        newest INTEGER NOT NULL, events BLOB NOT NULL,
        PRIMARY KEY (sender, recipient, sequence))""",
    """CREATE INDEX IF NOT EXISTS accepted_newest ON accepted (newest)""",
    """CREATE TABLE IF NOT EXISTS disputes (
        id BLOB PRIMARY KEY, sender TEXT NOT NULL, recipient TEXT NOT NULL,
        sequence INTEGER NOT NULL, dispute BLOB NOT NULL, resolution BLOB) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS bars (
        imsi_hash BLOB PRIMARY KEY, since INTEGER NOT NULL, signed BLOB NOT NULL) WITHOUT ROWID""",
)
CACHE_KIB: Final = 32 * 1024
"""The page cache of one store's connection (sqlite's default is 2 MiB)."""
PAGE_SIZE: Final = 65_536
"""Bytes a page of a store created from now on (sqlite's largest; its default is 4 KiB): a
file's, a batch's and an acknowledgement's rows hold some 1 MB each, which sqlite writes as a
chain of pages, each framed and checksummed in the WAL; at 4 KiB a page that took some 5 ms of
CPU a batch of 5,000 records, at 64 KiB some 2 ms (a store created earlier keeps its size)."""
_EVENT: Final = struct.Struct("<32sQ")
"""One accepted event in `accepted.events`: its id and start. A batch's events are one row,
appended in one piece: an index of event ids took some 9 us a record to keep (its inserts land
all over its B-tree), the row well under 1 us."""
_MIGRATED_EVENTS: Final = 1_000_000
"""Events per `accepted` row moved from an earlier version's window table (some 40 MB)."""
_Params = tuple[object, ...] | list[tuple[object, ...]]
"""One statement's parameters, or a list of them for `executemany`."""


def _move_window(db: sqlite3.Connection) -> None:
    """The earlier version's `window` table into `accepted` rows (see `_migrate_window`)."""
    rows = db.execute("SELECT event_id, start_utc FROM window ORDER BY start_utc")
    sequence, chunk = 0, rows.fetchmany(_MIGRATED_EVENTS)
    while chunk:
        try:
            blob = b"".join([_EVENT.pack(bytes(e), int(s)) for e, s in chunk])
        except struct.error as e:
            raise RoamingStoreError(f"an unreadable event in the earlier window: {e}") from e
        db.execute(
            "INSERT INTO accepted (sender, recipient, sequence, newest, events)"
            " VALUES ('', '', ?, ?, ?)",
            (sequence, max(int(s) for _, s in chunk), blob),
        )
        sequence, chunk = sequence + 1, rows.fetchmany(_MIGRATED_EVENTS)
    db.execute("DROP TABLE window")


class RoamingStore:
    """One carrier's roaming database (see the module docstring)."""

    __slots__ = ("_db", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = open_database(path, page_size=PAGE_SIZE)
            self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._migrate_window()
            self._transact(_files.migrate_record_rows)
        except sqlite3.Error as e:
            raise RoamingStoreError(f"cannot open {path}: {e}") from e
        except RoamingStoreError:
            self._db.close()
            raise

    def _migrate_window(self) -> None:
        """A store written before `accepted` kept the duplicate window as a table of event ids
        (`window`): its events move, oldest first, to `accepted` rows of the pair "" (no real
        pair), sequence 0, 1, ... (at most `_MIGRATED_EVENTS` each), in one transaction, so an
        upgraded HPMN still refuses the duplicates it accepted before."""
        old = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'window'"
        if self._rows(old):
            self._transact(_move_window)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _write(self, statements: Iterable[tuple[str, _Params]]) -> None:
        """Run `statements` in one transaction (all or nothing, fsync'd on return); a list of
        parameter tuples runs its statement once per tuple (`executemany`: one call for the
        rows of a whole file or batch)."""

        def run(db: sqlite3.Connection) -> None:
            for sql, params in statements:
                if isinstance(params, list):
                    db.executemany(sql, params)
                else:
                    db.execute(sql, params)

        self._transact(run)

    def _transact(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`work` in one transaction, its reads included (all or nothing, fsync'd on return)."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                out = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as e:
            raise RoamingStoreError(f"write failed: {e}") from e
        return out

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self._db.execute(sql, params))
        except sqlite3.Error as e:
            raise RoamingStoreError(f"read failed: {e}") from e

    # -- agreements ------------------------------------------------------------------------

    def put_agreement(self, signed: SignedAgreement) -> None:
        a = signed.agreement
        sql = "INSERT OR IGNORE INTO agreements (hash, version, signed) VALUES (?, ?, ?)"
        self._write([(sql, (a.hash, a.version, signed.encode()))])

    def agreements(self) -> list[SignedAgreement]:
        """Every stored agreement version, oldest first."""
        rows = self._rows("SELECT signed FROM agreements ORDER BY version")
        return [SignedAgreement.decode(bytes(row[0])) for row in rows]

    # -- imports and pending records (the VPMN) ----------------------------------------------

    def import_file(self, imported: ImportedFile) -> ImportOutcome:
        """Keep a partner file's records for batching, all or none (`pending`). Keyed like
        `ImportLedger` (sender, recipient, kind, file sequence): a file seen before changes
        nothing (ALREADY_IMPORTED), the same key with other bytes is refused (CONFLICT)."""
        meta = imported.meta
        senders = {r.sender for r in imported.records}
        recipients = {r.recipient for r in imported.records}
        if senders - {meta.sender} or recipients - {meta.recipient}:
            raise RoamingStoreError("a file holds records of its own pair only")

        def add(db: sqlite3.Connection) -> ImportOutcome:
            digest = _files.held(db, meta)
            if digest is not None:
                same = digest == meta.digest
                return ImportOutcome.ALREADY_IMPORTED if same else ImportOutcome.CONFLICT
            _files.add_file(db, meta, imported.records)
            return ImportOutcome.NEW

        return self._transact(add)

    def file_ids(self, meta: PartnerFile) -> range:
        """The ids of an imported file's records, in file order (empty if no file with this
        key and digest was imported): a caller that batches the file's records as it imported
        them names them to `save_batch` without reading them back."""
        try:
            return _files.file_ids(self._db, meta)
        except sqlite3.Error as e:
            raise RoamingStoreError(f"read failed: {e}") from e

    def pending(self, sender: str, recipient: str, limit: int) -> tuple[UsageRecord, ...]:
        """Up to `limit` records of the pair not yet in a batch, in import order."""
        return tuple(r for _, r in self.pending_rows(sender, recipient, limit))

    def pending_rows(
        self, sender: str, recipient: str, limit: int
    ) -> list[tuple[int, UsageRecord]]:
        """Like `pending`, with each record's id (for `refuse_pending` and `save_batch`)."""
        try:
            return _files.pending_rows(self._db, sender, recipient, limit)
        except sqlite3.Error as e:
            raise RoamingStoreError(f"read failed: {e}") from e

    def refuse_pending(self, ids: Iterable[int]) -> None:
        """Take pending records out of batching for good (`REFUSED`), in one transaction."""
        self._transact(lambda db: _files.take(db, ids, _files.REFUSED, None))

    def save_batch(self, batch: Batch, ids: Sequence[int] = ()) -> None:
        """Keep a sealed batch and mark its records, the pending records `ids` (from
        `pending_rows` or `file_ids`, one per record; none for a batch sealed from records
        never kept here), as batched, in one transaction: by id, so a record that left the
        pending ones after they were read is never taken for one that was batched; if one of
        `ids` is not a pending record of the batch's pair, `RoamingStoreError` and nothing is
        kept."""
        h = batch.signed.header
        if ids and len(ids) != len(batch.records):
            raise RoamingStoreError(f"{len(ids)} row ids for {len(batch.records)} records")

        def keep(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO batches (sender, recipient, sequence, header, records)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    h.sender,
                    h.recipient,
                    h.sequence,
                    batch.signed.encode(),
                    batch.packed,
                ),
            )
            took = _files.take(db, ids, h.sequence, (h.sender, h.recipient))
            if took != len(ids):
                raise RoamingStoreError(
                    f"{len(ids) - took} of the batch's {len(ids)} records are not pending"
                    f" records of {h.sender}->{h.recipient}"
                )

        self._transact(keep)

    def batch(self, sender: str, recipient: str, sequence: int) -> Batch | None:
        rows = self._rows(
            "SELECT header, records FROM batches"
            " WHERE sender = ? AND recipient = ? AND sequence = ?",
            (sender, recipient, sequence),
        )
        if not rows:
            return None
        header, records = rows[0]
        return Batch(
            signed=SignedBatchHeader.decode(bytes(header)),
            records=_files.unpack_records(bytes(records)),
        )

    def next_batch_sequence(self, sender: str, recipient: str) -> int:
        rows = self._rows(
            "SELECT max(sequence) FROM batches WHERE sender = ? AND recipient = ?",
            (sender, recipient),
        )
        last = rows[0][0]
        return 1 if last is None else int(last) + 1

    # -- acknowledgements and the duplicate window (the HPMN, and the VPMN's copy) ------------

    def save_ack(
        self,
        signed: SignedAcknowledgement,
        accepted: Sequence[UsageRecord] = (),
        batch: Batch | None = None,
    ) -> bool:
        """Keep an acknowledgement and (at the HPMN) the events it accepted and the batch, in
        one transaction; False if the same one was already kept. A different acknowledgement
        of the same batch is refused (`RoamingStoreError`)."""
        ack = signed.ack
        raw = signed.encode()
        held = self._rows(
            "SELECT ack FROM acks WHERE sender = ? AND recipient = ? AND sequence = ?",
            (ack.sender, ack.recipient, ack.sequence),
        )
        if held:
            if bytes(held[0][0]) != raw:
                raise RoamingStoreError(f"another acknowledgement of batch {ack.sequence}")
            return False
        statements: list[tuple[str, _Params]] = [
            (
                "INSERT INTO acks (sender, recipient, sequence, accepted, ack)"
                " VALUES (?, ?, ?, ?, ?)",
                (ack.sender, ack.recipient, ack.sequence, int(ack.accepted), raw),
            )
        ]
        starts = [r.start_utc for r in accepted]
        if starts:
            # each event as `_EVENT` packs it (one concatenation a record: a record's start is
            # a u64 and its id 32 bytes), in one join
            events = b"".join([r.event_id + r.start_utc.to_bytes(8, "little") for r in accepted])
            statements.append(
                (
                    "INSERT INTO accepted (sender, recipient, sequence, newest, events)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (ack.sender, ack.recipient, ack.sequence, max(starts), events),
                )
            )
        if batch is not None:
            statements.append(
                (
                    "INSERT OR IGNORE INTO batches (sender, recipient, sequence, header, records)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        ack.sender,
                        ack.recipient,
                        ack.sequence,
                        batch.signed.encode(),
                        batch.packed,
                    ),
                )
            )
        statements.append(
            (
                "DELETE FROM accepted WHERE newest < (SELECT max(newest) FROM accepted) - ?",
                (DUPLICATE_WINDOW_S,),
            )
        )
        self._write(statements)
        return True

    def acks(self, sender: str, recipient: str) -> list[SignedAcknowledgement]:
        """Every kept acknowledgement of the pair, by sequence."""
        rows = self._rows(
            "SELECT ack FROM acks WHERE sender = ? AND recipient = ? ORDER BY sequence",
            (sender, recipient),
        )
        try:
            return [SignedAcknowledgement.decode(bytes(row[0])) for row in rows]
        except RoamingError as e:
            raise RoamingStoreError(f"unreadable acknowledgement: {e}") from e

    def ack(self, sender: str, recipient: str, sequence: int) -> SignedAcknowledgement | None:
        """The kept acknowledgement of one batch, if any."""
        rows = self._rows(
            "SELECT ack FROM acks WHERE sender = ? AND recipient = ? AND sequence = ?",
            (sender, recipient, sequence),
        )
        try:
            return SignedAcknowledgement.decode(bytes(rows[0][0])) if rows else None
        except RoamingError as e:
            raise RoamingStoreError(f"unreadable acknowledgement: {e}") from e

    def next_expected(self, sender: str, recipient: str) -> int:
        """The sequence the HPMN expects next from the pair: one past the last accepted."""
        rows = self._rows(
            "SELECT max(sequence) FROM acks WHERE sender = ? AND recipient = ? AND accepted = 1",
            (sender, recipient),
        )
        last = rows[0][0]
        return 1 if last is None else int(last) + 1

    def open_exposure(self) -> dict[tuple[str, str], int]:
        """Per (VPMN, HPMN): the total charge of the sealed batches that no accepted
        acknowledgement answers yet, what the VPMN has served and not yet been told it will be
        paid (zero pairs left out)."""
        rows = self._rows(
            "SELECT b.sender, b.recipient, b.header FROM batches b WHERE NOT EXISTS"
            " (SELECT 1 FROM acks a WHERE a.sender = b.sender AND a.recipient = b.recipient"
            " AND a.sequence = b.sequence AND a.accepted = 1)"
        )
        out: dict[tuple[str, str], int] = {}
        try:
            for sender, recipient, header in rows:
                total = SignedBatchHeader.decode(bytes(header)).header.total_charge
                out[(sender, recipient)] = out.get((sender, recipient), 0) + total
        except RoamingError as e:
            raise RoamingStoreError(f"unreadable batch header: {e}") from e
        return {k: v for k, v in sorted(out.items()) if v}

    def window(self, capacity: int) -> DuplicateWindow:
        """The duplicate window as it was: the accepted events of the last 80 days."""
        window = DuplicateWindow(capacity)
        (newest,) = self._rows("SELECT max(newest) FROM accepted")[0]
        if newest is None:
            return window
        since = int(newest) - DUPLICATE_WINDOW_S
        rows = self._rows("SELECT events FROM accepted WHERE newest >= ? ORDER BY newest", (since,))
        try:
            window.add(e for (events,) in rows for e in _EVENT.iter_unpack(events) if e[1] >= since)
        except struct.error as e:
            raise RoamingStoreError(f"unreadable accepted events: {e}") from e
        return window

    # -- disputes -------------------------------------------------------------------------

    def save_dispute(self, signed: SignedDispute, ack: SignedAcknowledgement) -> None:
        """Keep a dispute (checked by a `DisputeBook`) of the batch `ack` acknowledged."""
        a = ack.ack
        sql = (
            "INSERT OR IGNORE INTO disputes (id, sender, recipient, sequence, dispute, resolution)"
            " VALUES (?, ?, ?, ?, ?, NULL)"
        )
        self._write([(sql, (signed.body.id, a.sender, a.recipient, a.sequence, signed.encode()))])

    def save_resolution(self, signed: SignedResolution) -> None:
        """Keep the answer to a kept dispute (checked by a `DisputeBook`)."""
        sql = "UPDATE disputes SET resolution = ? WHERE id = ? AND resolution IS NULL"
        self._write([(sql, (signed.encode(), signed.body.dispute))])

    def disputes(
        self,
    ) -> list[tuple[SignedDispute, SignedAcknowledgement, SignedResolution | None]]:
        """Every kept dispute with the acknowledgement it disputes and its resolution."""
        rows = self._rows("SELECT sender, recipient, sequence, dispute, resolution FROM disputes")
        out = []
        for sender, recipient, sequence, dispute, resolution in rows:
            ack = self.ack(sender, recipient, sequence)
            if ack is None:
                raise RoamingStoreError("a dispute of a batch with no acknowledgement")
            try:
                answer = None if resolution is None else SignedResolution.decode(bytes(resolution))
                out.append((SignedDispute.decode(bytes(dispute)), ack, answer))
            except RoamingError as e:
                raise RoamingStoreError(f"unreadable dispute: {e}") from e
        return sorted(out, key=lambda row: (row[0].body.raised_utc, row[0].body.id))

    # -- bars -----------------------------------------------------------------------------

    def save_bar(self, signed: SignedBar) -> None:
        """Keep a bar (checked by a `BarList`); an earlier bar of the same IMSI stays."""
        b = signed.bar
        sql = (
            "INSERT INTO bars (imsi_hash, since, signed) VALUES (?, ?, ?) ON CONFLICT (imsi_hash)"
            " DO UPDATE SET since = excluded.since, signed = excluded.signed"
            " WHERE excluded.since < bars.since"
        )
        self._write([(sql, (b.imsi_hash, b.since, signed.encode()))])

    def bars(self) -> list[SignedBar]:
        rows = self._rows("SELECT signed FROM bars ORDER BY since")
        try:
            return [SignedBar.decode(bytes(row[0])) for row in rows]
        except RoamingError as e:
            raise RoamingStoreError(f"unreadable bar: {e}") from e
