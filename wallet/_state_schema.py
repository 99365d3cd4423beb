"""The sqlite schema of the wallet state (`wallet.state`), and the upgrade of older files.

```
meta          key PK, value                     schema_version, account (public fingerprint),
                                                network_id: a file serves one account, one network
addresses     (chain, idx) PK, address UNIQUE,  derived addresses; used = seen funded, or handed
              used                              out as change (so it is never handed out twice)
outputs       output_id PK, address, amount,    unspent outputs of our addresses as last seen
              ledger_index                      (by a sync, or added by a confirmation)
transfers     key_hash PK, transaction_id       one row per idempotency key (by its BLAKE2b
              UNIQUE, payload, request,         hash; the key itself too, to show it): the signed
              recipient, amount, nonce, status, transaction, the request fingerprint (recipient,
              confirmed_index, failure,         amount, memo), the proof-of-work nonce once known,
              created_ms, updated_ms,           the status (`TransferStatus`) and its outcome
              idempotency_key
attachments   (key_hash, sequence) PK,          every attachment, recorded before it is
              message_id, raw, cmi, at_ms       submitted: message id (NULL while the node's
                                                proof-of-work answer is awaited, or if it was
                                                lost), its bytes when built here, and the node's
                                                confirmed index read just before submitting
reservations  output_id PK, key_hash, since_ms  inputs held by a transfer that may still confirm
spent         output_id PK, key_hash            inputs of confirmed transfers: a sync from a
                                                node that lags never brings them back
received      output_id PK, address, amount,    incoming outputs (not made by a transfer of this
              ledger_index, seen_ms             state) as first seen by a sync; kept once spent
```
Amounts (u64) and nonces are stored as decimal TEXT: sqlite integers are signed 64-bit.

Version 2 added `transfers.idempotency_key` (the key itself, so `history` can show it; NULL for
transfers recorded under version 1) and the `received` table (incoming outputs, kept after they
are spent). A version 1 file is upgraded in place when it is opened: the column is added and
`received` is filled from the unspent outputs that no recorded transfer made. A file of a newer
version is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .errors import WalletStateError

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

SCHEMA_VERSION: Final = 2

_TABLES: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS addresses (
    chain INTEGER NOT NULL, idx INTEGER NOT NULL, address BLOB NOT NULL UNIQUE,
    used INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (chain, idx));
CREATE TABLE IF NOT EXISTS outputs (
    output_id BLOB PRIMARY KEY, address BLOB NOT NULL, amount TEXT NOT NULL,
    ledger_index INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS outputs_by_address ON outputs (address);
CREATE TABLE IF NOT EXISTS transfers (
    key_hash BLOB PRIMARY KEY, transaction_id BLOB NOT NULL UNIQUE, payload BLOB NOT NULL,
    request BLOB NOT NULL, recipient BLOB NOT NULL, amount TEXT NOT NULL, nonce TEXT,
    status TEXT NOT NULL, confirmed_index INTEGER, failure TEXT,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, idempotency_key BLOB);
CREATE INDEX IF NOT EXISTS transfers_by_status ON transfers (status);
CREATE TABLE IF NOT EXISTS attachments (
    key_hash BLOB NOT NULL REFERENCES transfers (key_hash), sequence INTEGER NOT NULL,
    message_id BLOB, raw BLOB, cmi INTEGER NOT NULL, at_ms INTEGER NOT NULL,
    PRIMARY KEY (key_hash, sequence));
CREATE TABLE IF NOT EXISTS reservations (
    output_id BLOB PRIMARY KEY, key_hash BLOB NOT NULL REFERENCES transfers (key_hash),
    since_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS spent (
    output_id BLOB PRIMARY KEY, key_hash BLOB NOT NULL REFERENCES transfers (key_hash));
CREATE TABLE IF NOT EXISTS received (
    output_id BLOB PRIMARY KEY, address BLOB NOT NULL, amount TEXT NOT NULL,
    ledger_index INTEGER NOT NULL, seen_ms INTEGER NOT NULL);
"""

RECORD_RECEIVED: Final = (
    "INSERT OR IGNORE INTO received (output_id, address, amount, ledger_index, seen_ms) "
    "SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS "
    "(SELECT 1 FROM transfers WHERE transaction_id = substr(?1, 1, 32))"
)
"""Record an output (id, address, amount, ledger index, now) as received, unless one of the
account's own transfers made it (change, or a payment to itself)."""


def prepare(db: sqlite3.Connection, path: Path, now_ms: int) -> None:
    """Create the tables of a new file, or upgrade an older one, inside the caller's exclusive
    transaction."""
    before = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
    version = None
    if before is not None:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = None if row is None else row[0]
    if version not in (None, "1", str(SCHEMA_VERSION)):
        raise WalletStateError(
            f"{path} has schema version {version}; this wallet reads versions 1 and "
            f"{SCHEMA_VERSION}"
        )
    if version == "1":
        db.execute("ALTER TABLE transfers ADD COLUMN idempotency_key BLOB")
    for statement in _TABLES.split(";"):
        if statement.strip():
            db.execute(statement)
    if version == "1":
        for output_id, address, amount, index in db.execute(
            "SELECT output_id, address, amount, ledger_index FROM outputs"
        ).fetchall():
            db.execute(RECORD_RECEIVED, (output_id, address, amount, index, now_ms))
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    elif version is None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )
