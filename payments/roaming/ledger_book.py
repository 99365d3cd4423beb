"""What a carrier put on the ledger for roaming: the anchors it submitted (agreement versions,
batch headers, acknowledgements, disputes, resolutions, bars) and the transfers it made of
clearing statements, kept in the carrier's roaming database beside `RoamingStore`'s tables.

```
anchors(payload PK, kind, message_id)       BLAKE2b-256 of the anchor's tag and data -> the
                                            message that carries it: nothing is anchored twice
clearings(statement, payer PK, execution)   `clearing.ClearingExecution` JSON of one payer
```

`anchor` is the adapter to the node: it submits a tagged-data payload (the node does the
proof-of-work) unless the book already holds it, and keeps the message id once the node took it,
so a re-run after a crash or a lost answer anchors at most once more what was never recorded.
The methods of `LedgerBook` block: call them in a worker thread from an event loop.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any, Final, Self

import anyio.to_thread

from tangle.protocol.ids import blake2b_256
from wallet.database import open_database
from wallet.errors import WalletError

from .errors import AnchorError, RoamingStoreError

if TYPE_CHECKING:
    from pathlib import Path

    from tangle.protocol.payload import TaggedData
    from wallet.client import NodeClient

ANCHOR_DOMAIN: Final = b"tanglepay/roaming/anchor/v1"
_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS anchors (
        payload BLOB PRIMARY KEY, kind TEXT NOT NULL, message_id BLOB NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS clearings (
        statement BLOB NOT NULL, payer TEXT NOT NULL, execution BLOB NOT NULL,
        PRIMARY KEY (statement, payer)) WITHOUT ROWID""",
)


def payload_hash(payload: TaggedData) -> bytes:
    """What names an anchor in the book: BLAKE2b-256 of its tag and data."""
    return blake2b_256(
        ANCHOR_DOMAIN, len(payload.tag).to_bytes(1, "little"), payload.tag, payload.data
    )


class LedgerBook:
    """The anchors and clearing transfers of one carrier (see the module docstring)."""

    __slots__ = ("_db", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = open_database(path)
            for statement in _SCHEMA:
                self._db.execute(statement)
        except sqlite3.Error as e:
            raise RoamingStoreError(f"cannot open {path}: {e}") from e

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _run(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            return list(self._db.execute(sql, params))
        except sqlite3.Error as e:
            raise RoamingStoreError(f"ledger book: {e}") from e

    def anchored(self, payload: TaggedData) -> bytes | None:
        """The message id that anchored `payload`, if the book holds one."""
        rows = self._run(
            "SELECT message_id FROM anchors WHERE payload = ?", (payload_hash(payload),)
        )
        return bytes(rows[0][0]) if rows else None

    def save_anchor(self, payload: TaggedData, kind: str, message_id: bytes) -> None:
        """Keep that `payload` was anchored in `message_id` (the first one kept stays)."""
        sql = "INSERT OR IGNORE INTO anchors (payload, kind, message_id) VALUES (?, ?, ?)"
        self._run(sql, (payload_hash(payload), kind, message_id))

    def anchors(self) -> list[tuple[str, bytes, bytes]]:
        """Every kept anchor: (kind, payload hash, message id), by kind."""
        rows = self._run("SELECT kind, payload, message_id FROM anchors ORDER BY kind, payload", ())
        return [(str(k), bytes(p), bytes(m)) for k, p, m in rows]

    def save_clearing(self, statement: bytes, payer: str, execution: bytes) -> None:
        """Keep what `payer` paid of the statement hashed `statement` (a later run of the same
        statement, which only completes the earlier one, replaces it)."""
        sql = (
            "INSERT INTO clearings (statement, payer, execution) VALUES (?, ?, ?)"
            " ON CONFLICT (statement, payer) DO UPDATE SET execution = excluded.execution"
        )
        self._run(sql, (statement, payer, execution))

    def clearing(self, statement: bytes, payer: str) -> bytes | None:
        sql = "SELECT execution FROM clearings WHERE statement = ? AND payer = ?"
        rows = self._run(sql, (statement, payer))
        return bytes(rows[0][0]) if rows else None


async def anchor(
    book: LedgerBook, node: NodeClient, payload: TaggedData, kind: str
) -> tuple[bytes, bool]:
    """Anchor `payload` through `node` unless `book` holds it; (message id, whether new)."""
    held = await anyio.to_thread.run_sync(book.anchored, payload)
    if held is not None:
        return held, False
    try:
        message_id = bytes(await node.submit_pow(payload))
    except WalletError as e:
        raise AnchorError(f"the node did not take the {kind} anchor: {e}") from e
    await anyio.to_thread.run_sync(book.save_anchor, payload, kind, message_id)
    return message_id, True
