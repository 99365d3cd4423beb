"""The registry's index of current keys (`Registry.by_key`): after any history of registrations,
rotations (to free keys and to keys in use), suspensions and revocations, in one milestone or
spread over many, it is exactly {entry.key: device id}, one key a device; and the registry a
restart loads from the database (`load_registry`) or from a snapshot (`create_from_snapshot`)
has it too, though it is stored in neither."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tangle.ledger.committee import KeySchedule
from tangle.ledger.ledger import Conflict, genesis_state, ledger_state_hash
from tangle.ledger.registry import Registry, apply_registry_diff, restore_registry
from tangle.ledger.registry_rules import RegistryOverlay, RegistryRules, apply_record
from tangle.protocol.device import DeviceRecord, DeviceStatus, IssuerRole, RotateKey, SetStatus
from tangle.protocol.milestone import KeySet
from tangle.protocol.transaction import address_of
from tangle.storage.registry import TABLES, load_registry, write_registry
from tangle.storage.snapshot import (
    Snapshot,
    create_from_snapshot,
    decode_snapshot,
    encode_snapshot,
)
from tangle.storage.storage import ZERO_MILESTONE_ID
from tests.builders import genesis, key
from tests.registry_records import admit, device_id, record, register, signer

if TYPE_CHECKING:
    from pathlib import Path

COMMITTEE = [signer(100), signer(101)]
KEY_SET = KeySet(threshold=1, public_keys=tuple(sorted(s.public_key for s in COMMITTEE)))
MAKER, OPERATOR = signer(10), signer(11)
DEVICES = [signer(20 + n) for n in range(4)]
"""The devices (each registers with its own key)."""
KEYS = [*DEVICES, *(signer(40 + n) for n in range(4))]
"""The keys rotations move to: the devices' first keys too (in use, or freed by a rotation)."""
BY_KEY = {s.public_key: s for s in KEYS}

# One step: (kind, device, key index); rotations weigh most.
STEP = st.tuples(
    st.sampled_from(["rotate", "rotate", "rotate", "register", "suspend", "revoke"]),
    st.integers(0, len(DEVICES) - 1),
    st.integers(0, len(KEYS) - 1),
)
HISTORY = st.lists(st.lists(STEP, min_size=1, max_size=6), min_size=1, max_size=6)


def _record(view: RegistryOverlay, step: tuple[str, int, int], serial: int) -> DeviceRecord:
    """The record of one step; a rotation is signed by the key the device has at that point of
    the milestone (so one milestone may rotate a device twice, or move a key between devices)."""
    kind, which, key = step
    device = DEVICES[which]
    if kind == "register":
        return register(device, MAKER, [OPERATOR])
    entry = view.device(device_id(device))
    if kind == "rotate":
        current = BY_KEY[entry.key] if entry is not None else device
        new = KEYS[key]
        body = RotateKey(
            device_id=device_id(device),
            serial=serial,
            new_key=new.public_key,
            new_address=address_of(new.public_key),
        )
        return record(body, [current, new, OPERATOR])
    status = DeviceStatus.REVOKED if kind == "revoke" else DeviceStatus.SUSPENDED
    return record(SetStatus(device_id=device_id(device), serial=serial, status=status), [OPERATOR])


def _index_of(registry: Registry) -> dict[bytes, bytes]:
    return {e.key: d for d, e in registry.devices.items()}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HISTORY)
def test_the_key_index_is_each_devices_current_key_after_any_history(
    history: list[list[tuple[str, int, int]]],
) -> None:
    db = sqlite3.connect(":memory:")
    for statement in TABLES:
        db.execute(statement)
    registry = Registry()
    rules = RegistryRules()
    setup = [
        [
            admit(MAKER, IssuerRole.MAKER, COMMITTEE),
            admit(OPERATOR, IssuerRole.OPERATOR, COMMITTEE),
        ],
        [register(device, MAKER, [OPERATOR]) for device in DEVICES[:3]],
    ]
    milestones: list[list[DeviceRecord] | list[tuple[str, int, int]]] = [*setup, *history]
    for index, steps in enumerate(milestones, start=1):
        view = RegistryOverlay(base=registry)
        for serial, step in enumerate(steps, start=index * 10):
            rec = step if isinstance(step, DeviceRecord) else _record(view, step, serial)
            apply_record(view, rec, index=index, committee=KEY_SET, rules=rules)
        diff = view.diff()
        write_registry(db, index, diff)
        apply_registry_diff(registry, diff)
        assert registry.by_key == _index_of(registry)
        assert len(registry.by_key) == len(registry.devices)
    loaded = load_registry(db, "memory")
    assert loaded.by_key == registry.by_key
    restored = restore_registry(list(registry.devices.values()), list(registry.issuers.values()))
    assert restored.by_key == registry.by_key
    assert restored.root == registry.root  # the index is no part of the root


def _moved_key() -> Registry:
    """Device 0 rotates away from its key and device 1 rotates onto it in one milestone, device
    1 first in the diff (it was suspended first)."""
    registry = Registry()
    view = RegistryOverlay(base=registry)
    rules = RegistryRules()
    for rec in (
        admit(MAKER, IssuerRole.MAKER, COMMITTEE),
        admit(OPERATOR, IssuerRole.OPERATOR, COMMITTEE),
        register(DEVICES[0], MAKER, [OPERATOR]),
        register(DEVICES[1], MAKER, [OPERATOR]),
    ):
        apply_record(view, rec, index=1, committee=KEY_SET, rules=rules)
    apply_registry_diff(registry, view.diff())
    a, b, fresh = DEVICES[0], DEVICES[1], KEYS[5]
    suspend = SetStatus(device_id=device_id(b), serial=1, status=DeviceStatus.SUSPENDED)
    away = RotateKey(
        device_id=device_id(a),
        serial=1,
        new_key=fresh.public_key,
        new_address=address_of(fresh.public_key),
    )
    onto = RotateKey(
        device_id=device_id(b),
        serial=2,
        new_key=a.public_key,
        new_address=address_of(a.public_key),
    )
    steps = [
        record(suspend, [OPERATOR]),
        record(away, [a, fresh, OPERATOR]),
        record(onto, [b, a, OPERATOR]),
    ]
    view = RegistryOverlay(base=registry)
    conflicts = [apply_record(view, r, index=2, committee=KEY_SET, rules=rules) for r in steps]
    assert conflicts == [Conflict.NONE] * 3
    apply_registry_diff(registry, view.diff())
    return registry


def test_a_key_freed_by_a_rotation_is_taken_by_another_device_in_the_same_milestone() -> None:
    registry = _moved_key()
    assert registry.by_key == {
        KEYS[5].public_key: device_id(DEVICES[0]),
        DEVICES[0].public_key: device_id(DEVICES[1]),
    }


def test_a_node_started_from_a_snapshot_has_the_index(tmp_path: Path) -> None:
    registry = _moved_key()
    g = genesis([(key(1), 1_000)])
    state = genesis_state(g)
    snapshot = Snapshot(
        network_id=g.network_id,
        supply=g.supply,
        milestone_index=0,
        milestone_id=ZERO_MILESTONE_ID,
        key_schedule=KeySchedule(entries=((1, KEY_SET),)),
        outputs=tuple(sorted(state.unspent.items(), key=lambda item: item[0])),
        entry_points=(),
        state_hash=ledger_state_hash(0, state.accumulator, registry.digest),
        devices=tuple(registry.devices[d] for d in sorted(registry.devices)),
        issuers=tuple(registry.issuers[k] for k in sorted(registry.issuers)),
    )
    decoded = decode_snapshot(encode_snapshot(snapshot))
    with create_from_snapshot(tmp_path / "copy.db", decoded) as storage:
        assert storage.load_ledger().registry.by_key == registry.by_key
