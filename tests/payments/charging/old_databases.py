"""CSMS databases as older versions left them, for the tests of the store's upgrades
(`store.CsmsStore._upgrade`): each helper turns a file this version wrote back into an older
version's schema, rows kept, so that opening it runs that version's upgrades."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from payments.charging.store import CsmsStore

if TYPE_CHECKING:
    from pathlib import Path


async def open_and_close(path: Path) -> None:
    """Open the store at `path` (upgrading it) and close it."""
    async with CsmsStore(path):
        pass


def as_version_2_left_it(path: Path) -> None:
    """The file at `path` as version 2 left it: `transactions16` keyed by (charge point,
    connector, second), with no id tag, its ids and its sequence kept; schema version 2."""
    writer = sqlite3.connect(path)
    try:
        writer.executescript(
            """
            CREATE TABLE transactions16_v2 (
                id INTEGER PRIMARY KEY AUTOINCREMENT, charge_point TEXT NOT NULL,
                connector_id INTEGER NOT NULL, timestamp_s INTEGER NOT NULL,
                meter_start INTEGER NOT NULL, UNIQUE (charge_point, connector_id, timestamp_s));
            INSERT INTO transactions16_v2
                SELECT id, charge_point, connector_id, timestamp_s, meter_start FROM transactions16;
            DELETE FROM sqlite_sequence WHERE name = 'transactions16_v2';
            UPDATE sqlite_sequence SET name = 'transactions16_v2' WHERE name = 'transactions16';
            DROP TABLE transactions16;
            ALTER TABLE transactions16_v2 RENAME TO transactions16;
            PRAGMA user_version = 2"""
        )
    finally:
        writer.close()


def as_version_1_left_it(path: Path) -> None:
    """The file at `path` as version 1 left it: as version 2 did (`as_version_2_left_it`), and
    its refund tables without `attempt` and `tries`; schema version 1."""
    as_version_2_left_it(path)
    writer = sqlite3.connect(path)
    try:
        writer.executescript(
            "ALTER TABLE refunds DROP COLUMN attempt; ALTER TABLE refunds DROP COLUMN tries; "
            "ALTER TABLE token_refunds DROP COLUMN attempt; "
            "ALTER TABLE token_refunds DROP COLUMN tries; PRAGMA user_version = 1"
        )
    finally:
        writer.close()
