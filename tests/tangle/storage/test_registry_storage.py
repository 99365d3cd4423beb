"""The registry tables: what a milestone writes is what a restart loads, a device's history is
bounded, and a row that does not decode is a `StorageError`."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest

from tangle.errors import StorageError
from tangle.ledger.registry import Registry, apply_registry_diff
from tangle.ledger.registry_rules import RegistryOverlay, RegistryRules, apply_record
from tangle.protocol.device import IssuerRole
from tangle.protocol.milestone import KeySet
from tangle.storage.registry import MAX_HISTORY, TABLES, history, load_registry, write_registry
from tests.registry_records import admit, device_id, register, signer

COMMITTEE = [signer(100), signer(101)]
KEY_SET = KeySet(threshold=1, public_keys=tuple(sorted(s.public_key for s in COMMITTEE)))
MAKER, OPERATOR, DEVICE = signer(10), signer(11), signer(20)


@pytest.fixture
def db() -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:")
    for statement in TABLES:
        connection.execute(statement)
    return connection


def test_what_milestones_write_a_restart_loads(db: sqlite3.Connection) -> None:
    registry = Registry()
    for index, records in enumerate(
        [
            [
                admit(MAKER, IssuerRole.MAKER, COMMITTEE),
                admit(OPERATOR, IssuerRole.OPERATOR, COMMITTEE),
            ],
            [register(DEVICE, MAKER, [OPERATOR])],
        ],
        start=1,
    ):
        view = RegistryOverlay(base=registry)
        for rec in records:
            apply_record(view, rec, index=index, committee=KEY_SET, rules=RegistryRules())
        diff = view.diff()
        write_registry(db, index, diff)
        apply_registry_diff(registry, diff)
    loaded = load_registry(db, "memory")
    assert loaded.devices == registry.devices
    assert loaded.issuers == registry.issuers
    assert loaded.by_key == registry.by_key
    assert (loaded.root, loaded.digest) == (registry.root, registry.digest)


def test_a_devices_history_keeps_its_newest_versions(db: sqlite3.Connection) -> None:
    registry = Registry()
    view = RegistryOverlay(base=registry)
    apply_record(
        view,
        admit(MAKER, IssuerRole.MAKER, COMMITTEE),
        index=1,
        committee=KEY_SET,
        rules=RegistryRules(),
    )
    apply_record(
        view,
        admit(OPERATOR, IssuerRole.OPERATOR, COMMITTEE),
        index=1,
        committee=KEY_SET,
        rules=RegistryRules(),
    )
    apply_record(
        view, register(DEVICE, MAKER, [OPERATOR]), index=1, committee=KEY_SET, rules=RegistryRules()
    )
    entry = view.devices[device_id(DEVICE)]
    for index in range(1, MAX_HISTORY + 41):
        changed = replace(entry, serial=index, updated_at=index)
        view = RegistryOverlay(base=registry)
        view.put(changed)
        write_registry(db, index, view.diff())
    kept = history(db, device_id(DEVICE))
    assert len(kept) == MAX_HISTORY
    assert [i for i, _ in kept] == list(range(41, MAX_HISTORY + 41))
    assert kept[-1][1].serial == MAX_HISTORY + 40


def test_a_row_that_does_not_decode_is_a_storage_error(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO devices VALUES (?, ?, ?)", (b"\x01" * 32, b"\x02" * 32, b"junk"))
    with pytest.raises(StorageError):
        load_registry(db, "memory")
