"""The registry root, kept incrementally (`SortedMerkleTree`), is the consensus root: over
random histories of registrations and changes it equals `merkle_root` of every entry's encoding
in device-id order, computed from scratch (the definition milestones commit to), whether
`apply_registry_diff` takes the tree `roots_with` prepared or updates its own, and the same
after a restart from the entries alone."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from tangle.ledger.registry import (
    MAX_PAST_CHANGES,
    DeviceEntry,
    Registry,
    RegistryDiff,
    apply_registry_diff,
    encode_entry,
    registry_path,
    restore_registry,
)
from tangle.protocol.device import NO_GATEWAY, Capability, DeviceId, DeviceStatus
from tangle.protocol.ids import Address, PublicKey, blake2b_256
from tangle.protocol.merkle import SortedMerkleTree, merkle_root, root_from_path


def _entry(n: int, serial: int = 0) -> DeviceEntry:
    key = PublicKey(blake2b_256(b"key", n.to_bytes(4, "little")))
    return DeviceEntry(
        device_id=DeviceId(blake2b_256(b"id", n.to_bytes(4, "little"))),
        key=key,
        address=Address(blake2b_256(key)),
        maker=PublicKey(bytes(32)),
        model=b"m",
        capability=Capability.FULL,
        gateway=NO_GATEWAY,
        attributes_hash=bytes(32),
        uri=b"",
        status=DeviceStatus.ACTIVE,
        serial=serial,
        registered_at=1,
        updated_at=1,
        endorsers=(),
    )


def _scratch(registry: Registry) -> bytes:
    return merkle_root([encode_entry(registry.devices[d]) for d in sorted(registry.devices)])


# A history: milestones, each a set of device numbers it registers or changes (a number seen
# before is a change of that device: its serial moves on).
def _tree_at(registry: Registry, root: bytes) -> SortedMerkleTree | None:
    rewind = registry.rewind_from(root)
    return None if rewind is None else rewind.run()


histories = st.lists(st.lists(st.integers(0, 400), min_size=1, max_size=30), max_size=10)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 300), histories, st.booleans())
def test_the_incremental_root_is_the_from_scratch_root(
    start: int, history: list[list[int]], prepared: bool
) -> None:
    registry = restore_registry([_entry(n) for n in range(start)], [])
    assert registry.root == _scratch(registry)
    serials: dict[int, int] = {}
    states = [(registry.root, dict(registry.devices))]
    for index, numbers in enumerate(history, start=2):
        changed: dict[DeviceId, DeviceEntry] = {}
        for n in numbers:
            serials[n] = serials.get(n, 0) + 1
            entry = replace(_entry(n, serials[n]), updated_at=index)
            changed[entry.device_id] = entry
        root, digest = registry.roots_with(changed, {})
        if not prepared:  # a diff computed elsewhere: the registry updates its own tree
            registry._prepared = None
        diff = RegistryDiff(devices=tuple(changed.values()), issuers=(), root=root, digest=digest)
        apply_registry_diff(registry, diff)
        assert registry.root == root == _scratch(registry)
        assert registry.tree.root == root
        states.append((root, dict(registry.devices)))
    # Every earlier registry's tree comes back, with paths that prove its entries then.
    for root, devices in states:
        past = _tree_at(registry, root)
        assert past is not None
        assert past.root == root
        assert len(past) == len(devices)
        for device_id in sorted(devices)[:3]:
            position = past.index(device_id)
            assert position is not None
            assert root_from_path(encode_entry(devices[device_id]), past.path(position)) == root
    assert registry.tree.root == registry.root  # rewind_from copies
    assert registry.rewind_from(bytes(32)) is None
    for device_id in list(registry.devices)[:3]:
        entry, path = registry_path(registry, device_id)
        assert root_from_path(encode_entry(entry), path) == registry.root
    restarted = restore_registry(list(registry.devices.values()), [])
    assert restarted.root == registry.root


def test_only_the_last_changes_can_be_gone_back_to() -> None:
    registry = restore_registry([_entry(n) for n in range(10)], [])
    roots = [registry.root]
    for n in range(MAX_PAST_CHANGES + 2):
        changed = {_entry(n % 10, n + 1).device_id: _entry(n % 10, n + 1)}
        root, digest = registry.roots_with(changed, {})
        diff = RegistryDiff(devices=tuple(changed.values()), issuers=(), root=root, digest=digest)
        apply_registry_diff(registry, diff)
        roots.append(root)
    assert [_tree_at(registry, r) is not None for r in roots[:3]] == [False, False, True]
    assert all(_tree_at(registry, r) is not None for r in roots[2:])


def test_a_refused_milestones_roots_change_nothing() -> None:
    registry = restore_registry([_entry(n) for n in range(100)], [])
    before = registry.root
    changed = {e.device_id: e for e in (_entry(5, 1), _entry(500))}
    root, _ = registry.roots_with(changed, {})
    assert root != before
    assert registry.root == registry.tree.root == before == _scratch(registry)
