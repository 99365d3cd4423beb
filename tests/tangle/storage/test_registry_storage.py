"""The registry tables: what a milestone writes is what a restart loads, a device's history is
bounded, and a row that does not decode is a `StorageError`."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from tangle.errors import MalformedError, StorageError
from tangle.ledger.committee import KeySchedule
from tangle.ledger.ledger import Conflict, genesis_state, ledger_state_hash
from tangle.ledger.registry import DeviceEntry, Registry, apply_registry_diff, encode_entry
from tangle.ledger.registry_rules import RegistryOverlay, RegistryRules, apply_record
from tangle.protocol.device import IssuerRole
from tangle.protocol.milestone import KeySet
from tangle.storage.registry import MAX_HISTORY, TABLES, history, load_registry, write_registry
from tangle.storage.snapshot import (
    Snapshot,
    StateHashMismatchError,
    create_from_snapshot,
    decode_snapshot,
    encode_snapshot,
)
from tangle.storage.storage import ZERO_MILESTONE_ID
from tests.builders import genesis, key
from tests.registry_records import admit, device_id, register, signer

COMMITTEE = [signer(100), signer(101)]
KEY_SET = KeySet(threshold=1, public_keys=tuple(sorted(s.public_key for s in COMMITTEE)))
MAKER, OPERATOR, DEVICE = signer(10), signer(11), signer(20)

if TYPE_CHECKING:
    from pathlib import Path


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


def _registry() -> Registry:
    registry = Registry()
    view = RegistryOverlay(base=registry)
    for rec in (
        admit(MAKER, IssuerRole.MAKER, COMMITTEE),
        admit(OPERATOR, IssuerRole.OPERATOR, COMMITTEE),
        register(DEVICE, MAKER, [OPERATOR]),
        register(signer(21), MAKER, [OPERATOR]),
    ):
        assert apply_record(view, rec, index=1, committee=KEY_SET, rules=RegistryRules()) is (
            Conflict.NONE
        )
    apply_registry_diff(registry, view.diff())
    return registry


def test_a_snapshot_carries_the_registry_into_a_new_database(tmp_path: Path) -> None:
    g = genesis([(key(1), 1_000)])
    state = genesis_state(g)
    registry = _registry()
    devices = tuple(registry.devices[d] for d in sorted(registry.devices))
    issuers = tuple(registry.issuers[k] for k in sorted(registry.issuers))
    snapshot = Snapshot(
        network_id=g.network_id,
        supply=g.supply,
        milestone_index=0,
        milestone_id=ZERO_MILESTONE_ID,
        key_schedule=KeySchedule(entries=((1, KEY_SET),)),
        outputs=tuple(sorted(state.unspent.items(), key=lambda item: item[0])),
        entry_points=(),
        state_hash=ledger_state_hash(0, state.accumulator, registry.digest),
        devices=devices,
        issuers=issuers,
    )
    raw = encode_snapshot(snapshot)
    assert decode_snapshot(raw) == snapshot
    with create_from_snapshot(tmp_path / "copy.db", snapshot) as storage:
        loaded = storage.load_ledger()
        assert loaded.registry.devices == registry.devices
        assert loaded.registry.root == registry.root
        assert loaded.state_hash == snapshot.state_hash
    with pytest.raises(StateHashMismatchError):  # a device left out
        decode_snapshot(encode_snapshot(replace(snapshot, devices=devices[:1])))
    with pytest.raises(MalformedError):  # devices out of order
        decode_snapshot(_swapped(raw, devices))


def _swapped(raw: bytes, devices: tuple[DeviceEntry, ...]) -> bytes:
    first, second = (len(b).to_bytes(2, "little") + b for b in map(encode_entry, devices))
    assert raw.count(first + second) == 1
    return raw.replace(first + second, second + first)
