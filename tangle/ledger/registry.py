"""The device registry: every node's copy of who the devices and issuers are, moved forward by
white flag in milestone order (the rules are in `registry_rules.py`).

Each milestone commits to the registry it leaves behind: `registry_root` is the Merkle root
(`tangle.protocol.merkle`) of the canonical encodings of the device entries, sorted by device
id, so a proof can show one device's entry at a milestone with `registry_path`. The issuers
enter the ledger state hash through `registry_digest`.

Entry encoding (the registry leaf):

```
32 device_id, 32 key, 32 address, 32 maker, u8 model_length, model, u8 capability,
32 gateway, 32 attributes_hash, u8 uri_length, uri, u8 status, u32 serial,
u32 registered_at, u32 updated_at, u8 endorser_count (0..16), endorser keys (sorted),
u32 quarantine_serial, u8 quarantined (0|1), then: u8 reason, 32 evidence_hash, u32 since,
u32 expires_after
```
Issuer encoding: `32 key, u8 role, u8 admitted, u32 serial, u8 name_length, name`.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from tangle.errors import InvalidFieldError, MalformedError, NonCanonicalError
from tangle.protocol.codec import U32_MAX, Reader, require_uint, sized, u8, u32
from tangle.protocol.device import (
    MAX_NAME,
    MAX_SIGNERS,
    MAX_URI,
    Capability,
    DeviceId,
    DeviceStatus,
    IssuerRole,
    read_enum,
)
from tangle.protocol.ids import Address, MerkleRoot, PublicKey, blake2b_256
from tangle.protocol.merkle import MerklePath, SortedMerkleTree, merkle_root

if TYPE_CHECKING:
    from collections.abc import Mapping

REGISTRY_DOMAIN: Final = b"tanglepay/registry-state/v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class QuarantineState:
    """A quarantine in force (until the milestone after `expires_after`)."""

    reason: int
    """The reason code of the record."""
    evidence_hash: bytes
    """H of the evidence."""
    since: int
    """The milestone that applied it."""
    expires_after: int
    """The last milestone index it holds at."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceEntry:
    """One device as the registry holds it."""

    device_id: DeviceId
    key: PublicKey
    """Its current signing key."""
    address: Address
    """Its current ledger address."""
    maker: PublicKey
    model: bytes
    capability: Capability
    gateway: bytes
    """The gateway's device id (all zero for a full-function device)."""
    attributes_hash: bytes
    uri: bytes
    status: DeviceStatus
    serial: int
    """Serial of the last update, rotation or status record (0 after registration)."""
    registered_at: int
    """The milestone that registered it."""
    updated_at: int
    """The milestone that last changed the entry."""
    endorsers: tuple[PublicKey, ...]
    """The issuers that endorsed its registration, sorted."""
    quarantine_serial: int = 0
    """Serial of the last quarantine or lift record."""
    quarantine: QuarantineState | None = None
    """The quarantine recorded last, if not lifted (it may have expired: see `quarantined_at`)."""

    def __post_init__(self) -> None:
        if len(self.endorsers) > MAX_SIGNERS or not all(
            a < b for a, b in itertools.pairwise(self.endorsers)
        ):
            raise InvalidFieldError("DeviceEntry.endorsers", "sorted, unique, at most 16")
        require_uint("DeviceEntry.serial", self.serial, U32_MAX)
        require_uint("DeviceEntry.quarantine_serial", self.quarantine_serial, U32_MAX)

    def quarantined_at(self, index: int) -> bool:
        """True if a quarantine holds at milestone `index`."""
        q = self.quarantine
        return q is not None and q.since <= index <= q.expires_after


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuerEntry:
    """An issuer the committee admitted (or removed: `admitted` False keeps its serial)."""

    key: PublicKey
    role: IssuerRole
    admitted: bool
    serial: int
    name: bytes


# -- encoding --------------------------------------------------------------------------------


def encode_entry(e: DeviceEntry) -> bytes:
    parts = [
        e.device_id,
        e.key,
        e.address,
        e.maker,
        sized(1, e.model),
        u8(e.capability),
        e.gateway,
        e.attributes_hash,
        sized(1, e.uri),
        u8(e.status),
        u32(e.serial),
        u32(e.registered_at),
        u32(e.updated_at),
        u8(len(e.endorsers)),
        *e.endorsers,
        u32(e.quarantine_serial),
    ]
    q = e.quarantine
    if q is None:
        parts.append(u8(0))
    else:
        parts += [u8(1), u8(q.reason), q.evidence_hash, u32(q.since), u32(q.expires_after)]
    return b"".join(parts)


def decode_entry(data: bytes) -> DeviceEntry:
    """The entry `encode_entry` wrote; raises a `DecodeError` for anything else."""
    r = Reader(data, "device entry")
    device_id = DeviceId(r.take(32, "device_id"))
    key = PublicKey(r.take(32, "key"))
    address = Address(r.take(32, "address"))
    maker = PublicKey(r.take(32, "maker"))
    model = r.sized(1, MAX_NAME, "model")
    capability = read_enum(r, "capability", Capability)
    gateway = r.take(32, "gateway")
    attributes_hash = r.take(32, "attributes_hash")
    uri = r.sized(1, MAX_URI, "uri")
    status = read_enum(r, "status", DeviceStatus)
    serial = r.u32("serial")
    registered_at = r.u32("registered_at")
    updated_at = r.u32("updated_at")
    count = r.u8("endorser_count")
    if count > MAX_SIGNERS:
        raise NonCanonicalError(f"endorser_count {count} is above {MAX_SIGNERS}")
    endorsers = tuple(PublicKey(r.take(32, "endorser")) for _ in range(count))
    quarantine_serial = r.u32("quarantine_serial")
    flag = r.u8("quarantined")
    quarantine = None
    if flag == 1:
        quarantine = QuarantineState(
            reason=r.u8("reason"),
            evidence_hash=r.take(32, "evidence_hash"),
            since=r.u32("since"),
            expires_after=r.u32("expires_after"),
        )
    elif flag != 0:
        raise NonCanonicalError(f"quarantined is {flag}, not 0 or 1")
    r.finish()
    try:
        entry = DeviceEntry(
            device_id=device_id,
            key=key,
            address=address,
            maker=maker,
            model=model,
            capability=capability,
            gateway=gateway,
            attributes_hash=attributes_hash,
            uri=uri,
            status=status,
            serial=serial,
            registered_at=registered_at,
            updated_at=updated_at,
            endorsers=endorsers,
            quarantine_serial=quarantine_serial,
            quarantine=quarantine,
        )
    except InvalidFieldError as exc:
        raise MalformedError(str(exc)) from exc
    if encode_entry(entry) != data:  # a list out of order, say
        raise NonCanonicalError("device entry is not in canonical form")
    return entry


def encode_issuer(i: IssuerEntry) -> bytes:
    return b"".join((i.key, u8(i.role), u8(i.admitted), u32(i.serial), sized(1, i.name)))


def decode_issuer(data: bytes) -> IssuerEntry:
    r = Reader(data, "issuer entry")
    key = PublicKey(r.take(32, "key"))
    role = read_enum(r, "role", IssuerRole)
    admitted = r.u8("admitted")
    if admitted > 1:
        raise NonCanonicalError(f"admitted is {admitted}, not 0 or 1")
    serial = r.u32("serial")
    name = r.sized(1, MAX_NAME, "name")
    r.finish()
    return IssuerEntry(key=key, role=role, admitted=admitted == 1, serial=serial, name=name)


# -- state -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryDiff:
    """What one milestone changed in the registry, and the roots it leaves."""

    devices: tuple[DeviceEntry, ...]
    """Entries new or changed, in the order they last changed."""
    issuers: tuple[IssuerEntry, ...]
    """Issuer entries new or changed."""
    root: MerkleRoot
    """The registry root after the milestone."""
    digest: bytes
    """The registry's part of the ledger state hash after the milestone."""


def registry_digest(root: bytes, issuer_leaves: list[bytes]) -> bytes:
    return blake2b_256(REGISTRY_DOMAIN, root, merkle_root(issuer_leaves))


MAX_PAST_CHANGES: Final = 64
"""Milestones that changed the registry whose trees `rewind_from` can rebuild (the newest)."""
MAX_PAST_ENTRIES: Final = 65_536
"""Changed entries those milestones may hold in all (the oldest milestones go first)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryUndo:
    """What undoes one milestone's change to the registry tree: the root before it and each
    changed device's leaf hash before (None: the milestone registered it)."""

    root_before: MerkleRoot
    hashes: dict[bytes, bytes | None]


@dataclass(slots=True)
class Registry:
    """The registry at the confirmed milestone. Change it only with `apply_registry_diff`."""

    devices: dict[DeviceId, DeviceEntry] = field(default_factory=dict)
    issuers: dict[PublicKey, IssuerEntry] = field(default_factory=dict)
    by_key: dict[PublicKey, DeviceId] = field(default_factory=dict)
    """Each device's current key, to its id: one key a device (the rules keep current keys
    unique), kept by every applied diff (`_put`) and rebuilt from the entries by
    `restore_registry` (a restart, a snapshot), so never stored; no part of the root. It answers
    `GET /api/v1/keys/{key}/device` and the quarantine checks of what a key signs."""
    _root: MerkleRoot | None = None
    _digest: bytes | None = None
    _tree: SortedMerkleTree | None = None
    """The tree over the entries by device id, built on first use and then updated in place by
    each milestone's changes (O(log n) a changed entry; see `SortedMerkleTree`)."""
    _past: deque[RegistryUndo] = field(default_factory=deque)
    """What each of the last changes did, newest last (bounded: `MAX_PAST_CHANGES` milestones,
    `MAX_PAST_ENTRIES` entries), to rebuild the tree of an earlier milestone (`rewind_from`)."""
    _past_entries: int = 0
    _prepared: SortedMerkleTree | None = None
    """The copy `roots_with` updated last (when it inserted devices), for
    `apply_registry_diff` to take when the diff it applies has its root (only the same entries
    have that root)."""

    @property
    def tree(self) -> SortedMerkleTree:
        """The tree over the current entries (built here the first time)."""
        if self._tree is None:
            self._tree = SortedMerkleTree({d: encode_entry(e) for d, e in self.devices.items()})
        return self._tree

    @property
    def root(self) -> MerkleRoot:
        if self._root is None:
            self._root = self.tree.root
        return self._root

    @property
    def digest(self) -> bytes:
        if self._digest is None:
            issuers = [encode_issuer(self.issuers[k]) for k in sorted(self.issuers)]
            self._digest = registry_digest(self.root, issuers)
        return self._digest

    def roots_with(
        self, devices: Mapping[DeviceId, DeviceEntry], issuers: Mapping[PublicKey, IssuerEntry]
    ) -> tuple[MerkleRoot, bytes]:
        """The root and digest the registry would have with these entries replaced."""
        if not devices and not issuers:
            return self.root, self.digest
        root = self.root
        if devices:
            # Kept for `apply_registry_diff`: when these entries are the milestone's, its root
            # is this one and the updated copy replaces the tree (no second update).
            root, self._prepared = self.tree.root_with(
                {d: encode_entry(e) for d, e in devices.items()}
            )
        merged = {**self.issuers, **issuers}
        return root, registry_digest(root, [encode_issuer(merged[k]) for k in sorted(merged)])

    def rewind_from(self, root: bytes) -> Rewind | None:
        """What rebuilds the tree the registry had when its root was `root` (the current one or
        one of the last `MAX_PAST_CHANGES` changes), None beyond that. This call must run where
        the registry is changed (the node's writer): it copies the tree (O(n) pointers) and
        takes the changes to undo; `Rewind.run` undoes them anywhere (a worker thread)."""
        steps: list[RegistryUndo] = []
        if root != self.root:
            for undo in reversed(self._past):
                steps.append(undo)
                if undo.root_before == root:
                    break
            else:
                return None
        return Rewind(self.tree.copy(), steps, root)

    def quarantined(self, key: PublicKey, index: int) -> DeviceEntry | None:
        """The device whose current key is `key`, if a quarantine holds for it at `index`."""
        device_id = self.by_key.get(key)
        entry = None if device_id is None else self.devices[device_id]
        return entry if entry is not None and entry.quarantined_at(index) else None


class Rewind:
    """A copy of the registry tree and the changes since `root` (`Registry.rewind_from`)."""

    __slots__ = ("_root", "_steps", "_tree")

    def __init__(self, tree: SortedMerkleTree, steps: list[RegistryUndo], root: bytes) -> None:
        self._tree = tree
        self._steps = steps
        self._root = root

    def run(self) -> SortedMerkleTree | None:
        """The copy taken back through the changes (newest first; `SortedMerkleTree.set_hashes`)
        if it then has the root asked for; run it once, in any thread."""
        tree = self._tree
        for undo in self._steps:
            tree.set_hashes(undo.hashes)
        return tree if tree.root == self._root else None


def restore_registry(devices: list[DeviceEntry], issuers: list[IssuerEntry]) -> Registry:
    """A registry loaded from storage."""
    registry = Registry()
    for entry in devices:
        _put(registry, entry)
    registry.issuers = {i.key: i for i in issuers}
    return registry


def _put(registry: Registry, entry: DeviceEntry) -> None:
    old = registry.devices.get(entry.device_id)
    if old is not None and registry.by_key.get(old.key) == entry.device_id:
        del registry.by_key[old.key]
    registry.devices[entry.device_id] = entry
    registry.by_key[entry.key] = entry.device_id


def apply_registry_diff(registry: Registry, diff: RegistryDiff) -> None:
    """Move `registry` forward by one milestone's changes."""
    prepared, registry._prepared = registry._prepared, None
    if diff.devices:
        tree = registry.tree  # as the registry is before the diff
        _remember(registry, {e.device_id: tree.leaf_hash(e.device_id) for e in diff.devices})
        if prepared is not None and prepared.root == diff.root:
            registry._tree = prepared
        else:
            tree.update({e.device_id: encode_entry(e) for e in diff.devices})
    for entry in diff.devices:
        _put(registry, entry)
    for issuer in diff.issuers:
        registry.issuers[issuer.key] = issuer
    registry._root = diff.root
    registry._digest = diff.digest


def _remember(registry: Registry, hashes: dict[bytes, bytes | None]) -> None:
    past = registry._past
    past.append(RegistryUndo(root_before=registry.root, hashes=hashes))
    registry._past_entries += len(hashes)
    while len(past) > MAX_PAST_CHANGES or (
        len(past) > 1 and registry._past_entries > MAX_PAST_ENTRIES
    ):
        registry._past_entries -= len(past.popleft().hashes)


def registry_path(registry: Registry, device_id: DeviceId) -> tuple[DeviceEntry, MerklePath]:
    """A device's entry and its audit path to `registry.root`; raises `InvalidFieldError` for
    a device the registry does not hold."""
    entry = registry.devices.get(device_id)
    if entry is None:
        raise InvalidFieldError("device_id", f"{device_id.hex()} is not registered")
    tree = registry.tree
    index = tree.index(device_id)
    if index is None:  # the tree is built from `devices`: it holds every device
        raise InvalidFieldError("device_id", f"{device_id.hex()} is not in the tree")
    return entry, tree.path(index)
