"""The database file behind `storage.py`: schema, version, migrations, and the SQL it runs.

```
meta          key/value text: schema_version, network_id, supply, origin_index,
              origin_milestone_id (the ledger the file was created from: genesis or a snapshot)
              key_schedule (hex `encode_key_schedule`: the committee after the origin)
ledger        one row: confirmed_index, milestone_id, accumulator (u256 LE), state_hash,
              pruned_index
milestones    idx -> milestone_id (UNIQUE), message_id, timestamp_ms, raw      never pruned
messages      message_id -> raw canonical bytes                                pruned
metadata      message_id -> solid, referenced_by, inclusion, conflict, stored_at
              INDEX (referenced_by, stored_at): pruning, orphan expiry
edges         (child, parent) approvals; INDEX (parent): solid entry points
unspent       output_id -> address, output encoding, created_at; INDEX (address)
spent         output_id (PRIMARY KEY: spent at most once) -> address, output, created_at,
              spent_by (transaction id), spent_at; INDEX (spent_at): pruning
entry_points  message_id -> milestone index: referenced messages the file no longer (or never)
              held that may still be approved: recorded by pruning, or a snapshot's
devices, issuers, device_history   the device registry (version 2, see `registry.py`)
```

Integers that may exceed 2**63 - 1 are never sqlite integers: amounts live inside the output
encoding, the network id and supply are decimal text in `meta`, and the milestone timestamp is
stored as the i64 with the same 64 bits. The file carries `application_id` "TPAY".
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from typing import TYPE_CHECKING, Any, Final

from tangle.errors import StorageError

from .registry import TABLES as REGISTRY_TABLES

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from pathlib import Path

SCHEMA_VERSION: Final = 2
APPLICATION_ID: Final = 0x54504159  # "TPAY"
_BUSY_TIMEOUT_S: Final = 10.0

_CONNECTION_PRAGMAS: Final = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA journal_size_limit = 67108864",  # truncate the WAL to 64 MiB after checkpoints
    "PRAGMA trusted_schema = OFF",
)

_TABLES: Final = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    """CREATE TABLE ledger (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 0),
        confirmed_index INTEGER NOT NULL,
        milestone_id BLOB NOT NULL CHECK (length(milestone_id) = 32),
        accumulator BLOB NOT NULL CHECK (length(accumulator) = 32),
        state_hash BLOB NOT NULL CHECK (length(state_hash) = 32),
        pruned_index INTEGER NOT NULL)""",
    """CREATE TABLE milestones (
        idx INTEGER PRIMARY KEY, milestone_id BLOB NOT NULL UNIQUE,
        message_id BLOB NOT NULL, timestamp_ms INTEGER NOT NULL, raw BLOB NOT NULL)""",
    "CREATE TABLE messages (message_id BLOB PRIMARY KEY, raw BLOB NOT NULL)",
    """CREATE TABLE metadata (
        message_id BLOB PRIMARY KEY, solid INTEGER NOT NULL, referenced_by INTEGER,
        inclusion INTEGER NOT NULL, conflict INTEGER NOT NULL, stored_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX metadata_by_reference ON metadata (referenced_by, stored_at)",
    """CREATE TABLE edges (
        child BLOB NOT NULL, parent BLOB NOT NULL, PRIMARY KEY (child, parent)
    ) WITHOUT ROWID""",
    "CREATE INDEX edges_by_parent ON edges (parent)",
    """CREATE TABLE unspent (
        output_id BLOB PRIMARY KEY, address BLOB NOT NULL, output BLOB NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX unspent_by_address ON unspent (address)",
    """CREATE TABLE spent (
        output_id BLOB PRIMARY KEY, address BLOB NOT NULL, output BLOB NOT NULL,
        created_at INTEGER NOT NULL, spent_by BLOB NOT NULL, spent_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX spent_by_index ON spent (spent_at)",
    """CREATE TABLE entry_points (
        message_id BLOB PRIMARY KEY, milestone_index INTEGER NOT NULL
    ) WITHOUT ROWID""",
    *REGISTRY_TABLES,
)

MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {1: REGISTRY_TABLES}
"""Statements taking a database from schema version `v` to `v + 1`, keyed by `v`.

`open_database` runs the chain in one transaction and refuses a version with no path to
`SCHEMA_VERSION` (a newer file, or an old one whose migration was dropped).
"""

# -- queries ---------------------------------------------------------------------------------

SOLID_ENTRY_POINTS: Final = """
    SELECT r.message_id, min(r.at) FROM (
        SELECT message_id, referenced_by AS at FROM metadata WHERE referenced_by <= :index
        UNION ALL
        SELECT message_id, milestone_index FROM entry_points WHERE milestone_index <= :index
    ) AS r
    WHERE NOT EXISTS (SELECT 1 FROM edges AS e WHERE e.parent = r.message_id)
       OR EXISTS (
            SELECT 1 FROM edges AS e JOIN metadata AS c ON c.message_id = e.child
            WHERE e.parent = r.message_id
              AND (c.referenced_by IS NULL OR c.referenced_by > :index))
    GROUP BY r.message_id ORDER BY r.message_id"""
"""(message id, referencing milestone) of the messages referenced at or below the index (stored,
or kept as entry points) that are approved by no stored message (tips) or by one unreferenced
or referenced later."""

REFERENCE: Final = """
    INSERT INTO metadata VALUES (?, 1, ?, ?, ?, ?)
    ON CONFLICT (message_id) DO UPDATE SET solid = 1, referenced_by = excluded.referenced_by,
        inclusion = excluded.inclusion, conflict = excluded.conflict
    WHERE metadata.referenced_by IS NULL"""
"""Mark a message referenced; changes nothing (0 rows) if it already was."""

UNREFERENCED_MESSAGES: Final = """
    SELECT m.raw FROM metadata AS d JOIN messages AS m ON m.message_id = d.message_id
    WHERE d.referenced_by IS NULL ORDER BY m.rowid"""
"""Raw messages no milestone referenced yet, in the order they were stored."""

MOVE_TO_SPENT: Final = """
    INSERT INTO spent SELECT output_id, address, output, created_at, ?, ?
    FROM unspent WHERE output_id = ? AND output = ?"""

OUTPUT_BY_ID: Final = """
    SELECT output, created_at, NULL, NULL FROM unspent WHERE output_id = ?
    UNION ALL
    SELECT output, created_at, spent_by, spent_at FROM spent WHERE output_id = ?"""
"""An output (its encoding, created_at, spent_by, spent_at): at most one row, since a milestone
moves an output from `unspent` to `spent` in the transaction that spends it."""

PRUNABLE_MESSAGES: Final = """
    SELECT message_id FROM metadata WHERE referenced_by <= :bound
    UNION ALL
    SELECT message_id FROM metadata WHERE referenced_by IS NULL AND stored_at <= :expired
    LIMIT :limit"""
"""Messages referenced at or below the bound, and orphans stored at or below `confirmed - keep`
(the bound of a database created from a snapshot starts at its index, not at its messages)."""

PRUNE_MESSAGE: Final = (
    "DELETE FROM messages WHERE message_id = ?",
    "DELETE FROM edges WHERE child = ?",
    "DELETE FROM metadata WHERE message_id = ?",
)

PRUNE_SPENT: Final = """
    DELETE FROM spent WHERE output_id IN
    (SELECT output_id FROM spent WHERE spent_at <= ? LIMIT ?)"""

DROP_STALE_ENTRY_POINTS: Final = """
    DELETE FROM entry_points WHERE milestone_index <= :expired
      AND NOT EXISTS (SELECT 1 FROM edges WHERE parent = entry_points.message_id)"""
"""Entry points nothing stored approves any more, referenced at or below `confirmed - keep`
(a tip that old is below max depth: no confirmable message can approve it)."""

# -- the file --------------------------------------------------------------------------------


class IncompatibleDatabaseError(StorageError):
    """Not a tanglepay database, one of another network, or a schema this build cannot read."""


class InconsistentWriteError(StorageError):
    """A write that would break an invariant of the store; the transaction was rolled back."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"refused write: {reason}")
        self.reason = reason


def connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread."""
    target = f"{path.resolve().as_uri()}?mode={'ro' if read_only else 'rwc'}"
    try:
        return sqlite3.connect(
            target, uri=True, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open {path}: {exc}") from exc


def _configure(db: sqlite3.Connection, path: Path) -> None:
    for pragma in _CONNECTION_PRAGMAS:
        db.execute(pragma).fetchall()
    (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    if mode != "wal":
        raise StorageError(f"{path}: the file system does not support WAL (journal mode {mode})")


def _has_tables(db: sqlite3.Connection) -> bool:
    return bool(db.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0])


def is_initialised(path: Path) -> bool:
    """True if `path` is a file holding tables (a creation that crashed leaves none)."""
    if not path.is_file():
        return False
    db = connect(path, read_only=True)
    try:
        return _has_tables(db)
    except sqlite3.Error:
        return True  # not ours, or damaged: let `open_database` say so
    finally:
        db.close()


def create_database(
    path: Path,
    meta: Mapping[str, str],
    ledger_row: tuple[object, ...],
    unspent_rows: Iterable[tuple[object, ...]],
    entry_point_rows: Iterable[tuple[object, ...]],
    registry_rows: tuple[Iterable[tuple[object, ...]], Iterable[tuple[object, ...]]] = ((), ()),
) -> sqlite3.Connection:
    """Create the schema, the initial ledger, its entry points and its device registry
    (`registry_rows`: rows of `devices` and of `issuers`) in one durable transaction."""
    db = connect(path, read_only=False)
    try:
        if _has_tables(db):
            raise StorageError(f"{path} already holds a database")
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only possible before the first table
        _configure(db, path)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("BEGIN IMMEDIATE")
        for statement in _TABLES:
            db.execute(statement)
        db.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("schema_version", str(SCHEMA_VERSION)), *meta.items()],
        )
        db.execute("INSERT INTO ledger VALUES (0, ?, ?, ?, ?, ?)", ledger_row)
        db.executemany("INSERT INTO unspent VALUES (?, ?, ?, ?)", unspent_rows)
        db.executemany("INSERT INTO entry_points VALUES (?, ?)", entry_point_rows)
        device_rows, issuer_rows = registry_rows
        db.executemany("INSERT INTO devices VALUES (?, ?, ?)", device_rows)
        db.executemany("INSERT INTO issuers VALUES (?, ?)", issuer_rows)
        db.execute("COMMIT")
        db.execute("PRAGMA synchronous = NORMAL")
    except BaseException as exc:
        with contextlib.suppress(sqlite3.Error):
            if db.in_transaction:
                db.execute("ROLLBACK")
        db.close()
        if isinstance(exc, sqlite3.Error):
            raise StorageError(f"cannot create {path}: {exc}") from exc
        raise
    return db


def open_database(path: Path, network_id: int) -> tuple[sqlite3.Connection, dict[str, str]]:
    """Open, check and migrate the database of network `network_id`; returns it and `meta`."""
    if not path.is_file():
        raise StorageError(f"no database at {path}")
    db = connect(path, read_only=False)
    try:
        (app_id,) = db.execute("PRAGMA application_id").fetchone()
        if app_id != APPLICATION_ID or not _has_tables(db):
            raise IncompatibleDatabaseError(f"{path} is not a tanglepay database")
        _configure(db, path)
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        version = int(meta["schema_version"])
        if version != SCHEMA_VERSION:
            _migrate(db, path, version)
        if int(meta["network_id"]) != network_id:
            raise IncompatibleDatabaseError(
                f"{path} belongs to network {meta['network_id']}, not {network_id}"
            )
    except BaseException as exc:
        db.close()
        if isinstance(exc, sqlite3.Error | KeyError | ValueError):
            raise IncompatibleDatabaseError(f"{path} is not readable: {exc!r}") from exc
        raise
    return db, meta


def _migrate(db: sqlite3.Connection, path: Path, version: int) -> None:
    steps = range(version, SCHEMA_VERSION)
    if version > SCHEMA_VERSION or any(v not in MIGRATIONS for v in steps):
        raise IncompatibleDatabaseError(
            f"{path} has schema version {version}; this build reads version {SCHEMA_VERSION}"
        )
    db.execute("BEGIN IMMEDIATE")
    try:
        for v in steps:
            for statement in MIGRATIONS[v]:
                db.execute(statement)
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


class Database:
    """The writer and the read-only connection of one file, each behind its own lock."""

    __slots__ = ("_read_lock", "_reader", "_write_lock", "_writer", "meta", "path")

    def __init__(self, path: Path, writer: sqlite3.Connection, meta: Mapping[str, str]) -> None:
        self.path = path
        self.meta = dict(meta)
        self._writer = writer
        try:
            self._reader = connect(path, read_only=True)
        except BaseException:
            writer.close()
            raise
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            self._reader.close()
            self._writer.close()

    @contextlib.contextmanager
    def write(self, *, durable: bool) -> Iterator[sqlite3.Connection]:
        """A write transaction, `synchronous=FULL` if `durable`; rolled back if the block raises."""
        with self._write_lock:
            db = self._writer
            try:
                if durable:
                    db.execute("PRAGMA synchronous = FULL")
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError as exc:
                raise InconsistentWriteError(str(exc)) from exc
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: {exc}") from exc
            finally:
                if durable:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("PRAGMA synchronous = NORMAL")

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query in the block sees the same committed state."""
        with self._read_lock:
            db = self._reader
            try:
                db.execute("BEGIN")
                try:
                    yield db
                finally:
                    if db.in_transaction:
                        db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: {exc}") from exc

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self.read() as db:
            return db.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.read() as db:
            return db.execute(sql, params).fetchall()

    def compact(self, pages: int) -> None:
        """Return free pages to the file system and truncate the WAL, `pages` at a time."""
        while True:
            with self._write_lock:
                try:
                    (free,) = self._writer.execute("PRAGMA freelist_count").fetchone()
                    if free == 0:
                        self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                        return
                    self._writer.execute(f"PRAGMA incremental_vacuum({pages})").fetchall()
                except sqlite3.Error as exc:
                    raise StorageError(f"{self.path}: {exc}") from exc
