"""The one sqlite opener shared by the wallet state and the payment channel store, and the
wallet state read only."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from tangle.protocol.ids import Address
from wallet.database import open_database
from wallet.errors import WalletStateError
from wallet.state import WalletState

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


def test_a_read_only_state_reads_beside_its_owner_and_never_writes(tmp_path: Path) -> None:
    """An operator's tool that holds no key reads the transfers of a state file its owner has
    open (`WalletState.open_read_only`), sees the owner's later commits, and writes nothing:
    a missing file is not created, a write is refused, and a file of another schema version
    (or not a wallet's) is refused by name."""
    path = tmp_path / "state.sqlite"
    with pytest.raises(WalletStateError):
        WalletState.open_read_only(path)
    assert not path.exists()
    owner = WalletState.open(path, account=b"\x01" * 32)
    try:
        reader = WalletState.open_read_only(path)
        try:
            assert reader.transfers() == []
            owner.remember_addresses([(0, 0, Address(bytes(32)))], used=True)
            assert [row.used for row in reader.addresses()] == [True]  # the owner's commit
            with pytest.raises(WalletStateError):
                reader.remember_addresses([(0, 1, Address(bytes([1]) * 32))], used=True)
        finally:
            reader.close()
        assert len(owner.addresses()) == 1
    finally:
        owner.close()
    writer = sqlite3.connect(path)
    try:
        writer.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        writer.commit()
    finally:
        writer.close()
    with pytest.raises(WalletStateError, match="schema version 1"):
        WalletState.open_read_only(path)
    (tmp_path / "not-a-db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(WalletStateError):
        WalletState.open_read_only(tmp_path / "not-a-db")
