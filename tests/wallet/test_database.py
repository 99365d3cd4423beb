"""The one sqlite opener shared by the wallet state and the payment channel store."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from wallet.database import open_database

if TYPE_CHECKING:
    from pathlib import Path


def test_a_database_opens_in_wal_with_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    db = open_database(tmp_path / "state.sqlite")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert db.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert db.isolation_level is None  # autocommit: every transaction is an explicit BEGIN
    finally:
        db.close()


def test_a_path_that_cannot_be_a_database_raises_sqlite_error_for_the_caller_to_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "not-a-db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        open_database(tmp_path / "not-a-db")
