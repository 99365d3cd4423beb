"""The device registry in the database: the entries and issuers at the confirmed milestone, and
every version an entry had (its history), written in the same transaction as the milestone.

```
devices         device_id -> key (its current one), entry (`encode_entry`)
issuers         key -> entry (`encode_issuer`)
device_history  (device_id, milestone_index) -> entry as that milestone left it (the newest
                MAX_HISTORY versions of each device)
```
The tables arrive with schema version 2 (`MIGRATIONS[1]` in `_schema.py`). The registry's index
of current keys (`Registry.by_key`) is not read from `devices.key`: `load_registry` rebuilds it
from the entries (`restore_registry`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from tangle.errors import DecodeError, StorageError
from tangle.ledger.registry import (
    DeviceEntry,
    Registry,
    decode_entry,
    decode_issuer,
    encode_entry,
    encode_issuer,
    restore_registry,
)

if TYPE_CHECKING:
    import sqlite3

    from tangle.ledger.registry import RegistryDiff
    from tangle.protocol.device import DeviceId

TABLES: Final = (
    """CREATE TABLE devices (
        device_id BLOB PRIMARY KEY, key BLOB NOT NULL, entry BLOB NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX devices_by_key ON devices (key)",
    "CREATE TABLE issuers (issuer BLOB PRIMARY KEY, entry BLOB NOT NULL) WITHOUT ROWID",
    """CREATE TABLE device_history (
        device_id BLOB NOT NULL, milestone_index INTEGER NOT NULL, entry BLOB NOT NULL,
        PRIMARY KEY (device_id, milestone_index)
    ) WITHOUT ROWID""",
)
MAX_HISTORY: Final = 256
"""Most versions of one entry kept (the newest): a device that changes often cannot grow the
table without bound."""
_TRIM_HISTORY: Final = """
    DELETE FROM device_history WHERE device_id = ? AND milestone_index < (
        SELECT min(milestone_index) FROM (
            SELECT milestone_index FROM device_history WHERE device_id = ?
            ORDER BY milestone_index DESC LIMIT ?))"""


def write_registry(db: sqlite3.Connection, index: int, diff: RegistryDiff) -> None:
    """Record one milestone's registry changes (inside the caller's transaction)."""
    rows = [(e.device_id, e.key, encode_entry(e)) for e in diff.devices]
    db.executemany(
        "INSERT INTO devices VALUES (?, ?, ?) ON CONFLICT (device_id) DO UPDATE "
        "SET key = excluded.key, entry = excluded.entry",
        rows,
    )
    db.executemany(
        "INSERT INTO device_history VALUES (?, ?, ?)", ((d, index, e) for d, _, e in rows)
    )
    db.executemany(_TRIM_HISTORY, ((d, d, MAX_HISTORY) for d, _, _ in rows))
    db.executemany(
        "INSERT INTO issuers VALUES (?, ?) ON CONFLICT (issuer) DO UPDATE "
        "SET entry = excluded.entry",
        ((i.key, encode_issuer(i)) for i in diff.issuers),
    )


def registry_rows(
    registry: Registry,
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The `devices` and `issuers` rows of a whole registry (a file started from a snapshot)."""
    devices: list[tuple[object, ...]] = [
        (e.device_id, e.key, encode_entry(e)) for e in registry.devices.values()
    ]
    issuers: list[tuple[object, ...]] = [
        (i.key, encode_issuer(i)) for i in registry.issuers.values()
    ]
    return devices, issuers


def load_registry(db: sqlite3.Connection, path: object) -> Registry:
    """The registry the database holds; `StorageError` if a row does not decode."""
    try:
        devices = [decode_entry(bytes(e)) for (e,) in db.execute("SELECT entry FROM devices")]
        issuers = [decode_issuer(bytes(e)) for (e,) in db.execute("SELECT entry FROM issuers")]
    except DecodeError as exc:
        raise StorageError(f"{path}: a registry row does not decode: {exc}") from exc
    return restore_registry(devices, issuers)


def history(db: sqlite3.Connection, device_id: DeviceId) -> list[tuple[int, DeviceEntry]]:
    """(milestone index, entry) for each milestone that changed the device, oldest first (the
    newest MAX_HISTORY)."""
    rows = db.execute(
        "SELECT milestone_index, entry FROM device_history WHERE device_id = ? "
        "ORDER BY milestone_index DESC LIMIT ?",
        (device_id, MAX_HISTORY),
    ).fetchall()
    return [(int(i), decode_entry(bytes(e))) for i, e in reversed(rows)]
