"""Ledger snapshots: the UTXO set and the solid entry points at a confirmed milestone, in one
canonical file.

```
6    magic              b"TPSNAP"
u8   version            3
u64  network_id
u64  supply
u32  milestone_index    the confirmed milestone the ledger is at (0: genesis)
32   milestone_id       its id, the `previous` of the next milestone (all zero for genesis)
     key_schedule       the committee key sets in force and scheduled after milestone_index
                        (`encode_key_schedule` in committee.py: u32 count, then per key set
                        u32 activation index, u8 threshold, u8 key count, keys)
u64  output_count
     output_count x (OutputId 34 || output encoding), strictly increasing by OutputId
u32  entry_point_count
     entry_point_count x (MessageId 32 || u32 milestone_index), strictly increasing by
     MessageId, each milestone_index at most the snapshot's
u32  device_count
     device_count x (u16 length || registry entry, `encode_entry`), strictly increasing by
     device id
u32  issuer_count
     issuer_count x (u16 length || issuer entry, `encode_issuer`), strictly increasing by key
32   state_hash         ledger state hash at milestone_index
```

Decoding is strict: the outputs must hold exactly `supply` and hash to `state_hash`, so a
snapshot that decodes is one a node may start from, and `encode_snapshot(decode_snapshot(b)) == b`.
The state hash covers the outputs, the index and the device registry (entries and issuers, protocol
version 2); the milestone id, the key schedule and the entry points are carried as they are (a
snapshot is as trusted as the node it came from). Version 1 lacked the key schedule, version 2 the
registry; both are refused (`UnknownVersionError`).

**The key schedule.** A node checks milestone N against the key set in force at N, which the
milestones before it announced. A node started from a snapshot has none of those milestones, so
the snapshot carries the schedule (`stored_key_schedule`: the one recorded at the database's
origin, then the rotations of its stored milestones), `create_from_snapshot` records it in the
new database, and `LedgerNode.open` rebuilds it from there.

A node started from a snapshot continues the milestone chain at `milestone_index + 1`. It has
none of the messages the snapshot's milestones referenced, so its window starts from the solid
entry points (SEPs): the referenced messages that a message it will still receive may approve.
`export_snapshot` records `Storage.solid_entry_points(milestone_index)`:

- every referenced message approved by a stored message that no milestone has referenced yet
  (it reaches the new node as one of `Storage.unreferenced_messages()`, or by gossip), at any
  depth: the new node must solidify everything the old one holds;
- every referenced message that no stored message approves: it is still a tip, and a new
  message may approve it. Tips referenced more than below-max-depth ago can no longer be
  approved by a message a milestone confirms; pruning, which must keep more than
  below-max-depth milestones, drops them.

A referenced message whose approvers are all referenced is not one: tip selection and the
coordinator only build on tips. The milestone message of `milestone_index` is not one either:
a milestone references its parents' cone, never its own message, which stays unreferenced until
the next milestone; it travels with the unreferenced messages and its parents are SEPs.

```
StorageError                     (errors.py)
└── SnapshotError                a snapshot that cannot be read, written or used
    ├── BadMagicError            not a snapshot file (also a DecodeError)
    ├── SupplyMismatchError      outputs that do not hold the supply
    ├── StateHashMismatchError   outputs that do not hash to the recorded state hash
    └── LateEntryPointError      an entry point referenced after the snapshot's milestone
                                 (also a MalformedError)
```
Other structural defects raise the `DecodeError` of `errors.py` that names them: truncated,
trailing bytes, unsorted or duplicate outputs or entry points (`NonCanonicalError`), unknown
version or output type.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tangle.errors import (
    DecodeError,
    InvalidFieldError,
    MalformedError,
    NonCanonicalError,
    StorageError,
    TruncatedError,
    UnknownVersionError,
)
from tangle.ledger.committee import KeySchedule, decode_key_schedule, encode_key_schedule
from tangle.ledger.ledger import accumulate, ledger_state_hash, restore_state
from tangle.ledger.registry import (
    DeviceEntry,
    IssuerEntry,
    Registry,
    decode_entry,
    decode_issuer,
    encode_entry,
    encode_issuer,
    restore_registry,
)
from tangle.protocol.codec import U32_MAX, U64_MAX, Reader, require_uint, sized, u8, u32, u64
from tangle.protocol.ids import HASH_SIZE, MessageId, MilestoneId, OutputId
from tangle.protocol.message import decode_message
from tangle.protocol.milestone import Milestone
from tangle.protocol.transaction import Output, decode_output, encode_output

from .storage import Storage

MAGIC: Final = b"TPSNAP"
FORMAT_VERSION: Final = 3
_MIN_ENTRY_SIZE: Final = OutputId.SIZE + 1 + 32 + 8  # id, output type, address, amount
_ENTRY_POINT_SIZE: Final = MessageId.SIZE + 4  # id, milestone index


class SnapshotError(StorageError):
    """A snapshot that cannot be read, written or used."""


class BadMagicError(SnapshotError, DecodeError):
    """The file does not start with the snapshot magic."""

    def __init__(self, found: bytes) -> None:
        super().__init__(f"not a snapshot: starts with {found!r}, expected {MAGIC!r}")
        self.found = found


class SupplyMismatchError(SnapshotError):
    """The outputs do not hold exactly the supply."""

    def __init__(self, held: int, supply: int) -> None:
        super().__init__(f"snapshot outputs hold {held}, the supply is {supply}")
        self.held = held
        self.supply = supply


class StateHashMismatchError(SnapshotError):
    """The outputs do not hash to the state hash the snapshot records."""

    def __init__(self, recorded: bytes, computed: bytes) -> None:
        super().__init__(
            f"snapshot records state hash {recorded.hex()}, its outputs hash to {computed.hex()}"
        )
        self.recorded = recorded
        self.computed = computed


class LateEntryPointError(SnapshotError, MalformedError):
    """An entry point referenced by a milestone after the snapshot's."""

    def __init__(self, message_id: MessageId, index: int, snapshot_index: int) -> None:
        super().__init__(
            f"snapshot entry point {message_id.hex()} is referenced at milestone {index}, "
            f"after the snapshot's milestone {snapshot_index}"
        )
        self.message_id = message_id
        self.index = index
        self.snapshot_index = snapshot_index


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The ledger and the solid entry points at a confirmed milestone."""

    network_id: int
    """The network."""
    supply: int
    """Total base units; the outputs hold exactly this."""
    milestone_index: int
    """The confirmed milestone the ledger is at."""
    milestone_id: MilestoneId
    """Id of that milestone (all zero at genesis): the next milestone's `previous`."""
    key_schedule: KeySchedule
    """The committee key sets in force and scheduled after `milestone_index`."""
    outputs: tuple[tuple[OutputId, Output], ...]
    """The unspent outputs, strictly increasing by output id."""
    entry_points: tuple[tuple[MessageId, int], ...]
    """Solid entry points: (message id, index of the milestone that referenced it), strictly
    increasing by id, each index at most `milestone_index`; the referenced messages a node
    started here may see approved (module docstring)."""
    state_hash: bytes
    """Ledger state hash at `milestone_index`."""
    devices: tuple[DeviceEntry, ...] = ()
    """The device registry's entries, strictly increasing by device id."""
    issuers: tuple[IssuerEntry, ...] = ()
    """The registry's issuers, strictly increasing by key."""

    def __post_init__(self) -> None:
        require_uint("Snapshot.network_id", self.network_id, U64_MAX)
        require_uint("Snapshot.supply", self.supply, U64_MAX, minimum=1)
        require_uint("Snapshot.milestone_index", self.milestone_index, U32_MAX)
        if not isinstance(self.milestone_id, MilestoneId):
            raise InvalidFieldError("Snapshot.milestone_id", "must be a MilestoneId")
        if not isinstance(self.key_schedule, KeySchedule):
            raise InvalidFieldError("Snapshot.key_schedule", "must be a KeySchedule")
        ids = [oid for oid, _ in self.outputs]
        if not all(isinstance(oid, OutputId) for oid in ids):
            raise InvalidFieldError("Snapshot.outputs", "ids must be OutputIds")
        if any(a >= b for a, b in itertools.pairwise(ids)):
            raise InvalidFieldError("Snapshot.outputs", "must be sorted by id and unique")
        points = [mid for mid, _ in self.entry_points]
        if not all(isinstance(mid, MessageId) for mid in points):
            raise InvalidFieldError("Snapshot.entry_points", "ids must be MessageIds")
        if any(a >= b for a, b in itertools.pairwise(points)):
            raise InvalidFieldError("Snapshot.entry_points", "must be sorted by id and unique")
        for _, index in self.entry_points:
            require_uint("Snapshot.entry_points index", index, self.milestone_index)
        if not isinstance(self.state_hash, bytes) or len(self.state_hash) != HASH_SIZE:
            raise InvalidFieldError("Snapshot.state_hash", f"must be {HASH_SIZE} bytes")
        if any(a.device_id >= b.device_id for a, b in itertools.pairwise(self.devices)):
            raise InvalidFieldError("Snapshot.devices", "must be sorted by device id and unique")
        if any(a.key >= b.key for a, b in itertools.pairwise(self.issuers)):
            raise InvalidFieldError("Snapshot.issuers", "must be sorted by key and unique")

    def registry(self) -> Registry:
        return restore_registry(list(self.devices), list(self.issuers))


def verify_snapshot(snapshot: Snapshot) -> None:
    """Raise unless the outputs hold the supply and hash to the recorded state hash."""
    held = sum(output.amount for _, output in snapshot.outputs)
    if held != snapshot.supply:
        raise SupplyMismatchError(held, snapshot.supply)
    computed = ledger_state_hash(
        snapshot.milestone_index, accumulate(snapshot.outputs), snapshot.registry().digest
    )
    if computed != snapshot.state_hash:
        raise StateHashMismatchError(snapshot.state_hash, computed)


def encode_snapshot(snapshot: Snapshot) -> bytes:
    return b"".join(
        (
            MAGIC,
            u8(FORMAT_VERSION),
            u64(snapshot.network_id),
            u64(snapshot.supply),
            u32(snapshot.milestone_index),
            snapshot.milestone_id,
            encode_key_schedule(snapshot.key_schedule),
            u64(len(snapshot.outputs)),
            *(oid + encode_output(output) for oid, output in snapshot.outputs),
            u32(len(snapshot.entry_points)),
            *(mid + u32(index) for mid, index in snapshot.entry_points),
            u32(len(snapshot.devices)),
            *(sized(2, encode_entry(e)) for e in snapshot.devices),
            u32(len(snapshot.issuers)),
            *(sized(2, encode_issuer(i)) for i in snapshot.issuers),
            snapshot.state_hash,
        )
    )


def decode_snapshot(data: bytes | bytearray | memoryview) -> Snapshot:
    """Decode and verify a snapshot; every defect raises a `DecodeError` or `SnapshotError`."""
    r = Reader(data, "snapshot")
    magic = r.take(len(MAGIC), "magic")
    if magic != MAGIC:
        raise BadMagicError(magic)
    version = r.u8("version")
    if version != FORMAT_VERSION:
        raise UnknownVersionError(version)
    network_id = r.u64("network_id")
    supply = r.u64("supply")
    index = r.u32("milestone_index")
    ms_id = MilestoneId(r.take(HASH_SIZE, "milestone_id"))
    schedule = decode_key_schedule(r)
    count = r.u64("output_count")
    # Refuse an impossible count before allocating anything for it (the outputs are followed
    # by at least the entry point count and the state hash).
    needed = count * _MIN_ENTRY_SIZE + 4 + HASH_SIZE
    if needed > r.remaining:
        raise TruncatedError("snapshot.outputs", needed, r.remaining)
    outputs: list[tuple[OutputId, Output]] = []
    for _ in range(count):
        oid = OutputId(r.take(OutputId.SIZE, "output_id"))
        if outputs and oid <= outputs[-1][0]:
            raise NonCanonicalError(f"snapshot output {oid.hex()} is out of order or repeated")
        outputs.append((oid, decode_output(r)))
    count = r.u32("entry_point_count")
    needed = count * _ENTRY_POINT_SIZE + HASH_SIZE
    if needed > r.remaining:
        raise TruncatedError("snapshot.entry_points", needed, r.remaining)
    entry_points: list[tuple[MessageId, int]] = []
    for _ in range(count):
        mid = MessageId(r.take(MessageId.SIZE, "entry_point_id"))
        at = r.u32("entry_point_index")
        if entry_points and mid <= entry_points[-1][0]:
            raise NonCanonicalError(f"snapshot entry point {mid.hex()} is out of order or repeated")
        if at > index:
            raise LateEntryPointError(mid, at, index)
        entry_points.append((mid, at))
    devices = tuple(decode_entry(blob) for blob in _blobs(r, "device", 4 + HASH_SIZE))
    issuers = tuple(decode_issuer(blob) for blob in _blobs(r, "issuer", HASH_SIZE))
    state_hash = r.take(HASH_SIZE, "state_hash")
    r.finish()
    try:
        snapshot = Snapshot(
            network_id=network_id,
            supply=supply,
            milestone_index=index,
            milestone_id=ms_id,
            key_schedule=schedule,
            outputs=tuple(outputs),
            entry_points=tuple(entry_points),
            state_hash=state_hash,
            devices=devices,
            issuers=issuers,
        )
    except InvalidFieldError as exc:
        raise MalformedError(str(exc)) from exc
    verify_snapshot(snapshot)
    return snapshot


def _blobs(r: Reader, what: str, after: int) -> list[bytes]:
    """A u32 count of u16-length-prefixed blobs; `after`: the least the rest of the file
    needs behind them (the count of an impossible number is refused before reading on)."""
    count = r.u32(f"{what}_count")
    needed = count * (2 + 1) + after
    if needed > r.remaining:
        raise TruncatedError(f"snapshot.{what}s", needed, r.remaining)
    return [r.sized(2, 0xFFFF, what) for _ in range(count)]


def read_snapshot(path: str | Path) -> Snapshot:
    """Read and verify the snapshot file at `path`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot {path}: {exc}") from exc
    return decode_snapshot(data)


def write_snapshot(snapshot: Snapshot, path: str | Path) -> None:
    """Write `snapshot` to `path` atomically: a temporary file, fsync, rename, fsync the folder."""
    path = Path(path)
    data = encode_snapshot(snapshot)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise SnapshotError(f"cannot write snapshot {path}: {exc}") from exc


def export_snapshot(storage: Storage, path: str | Path) -> Snapshot:
    """Write `take_snapshot(storage)` to `path`; returns what it wrote."""
    snapshot = take_snapshot(storage)
    write_snapshot(snapshot, path)
    return snapshot


def take_snapshot(storage: Storage) -> Snapshot:
    """The ledger and the solid entry points at the confirmed milestone of `storage` (call it
    where no milestone is applied meanwhile: the node's writer thread). A node started from it
    needs the unreferenced messages too (`Storage.unreferenced_messages`, or gossip): the entry
    points are where they end."""
    state = storage.load_ledger()
    ms_id = storage.milestone_id(state.milestone_index)
    if ms_id is None:
        raise SnapshotError(f"no milestone id stored for index {state.milestone_index}")
    snapshot = Snapshot(
        network_id=state.network_id,
        supply=state.supply,
        milestone_index=state.milestone_index,
        milestone_id=ms_id,
        key_schedule=stored_key_schedule(storage),
        outputs=tuple(sorted(state.unspent.items(), key=lambda item: item[0])),
        entry_points=tuple(storage.solid_entry_points(state.milestone_index)),
        state_hash=state.state_hash,
        devices=tuple(state.registry.devices[d] for d in sorted(state.registry.devices)),
        issuers=tuple(state.registry.issuers[k] for k in sorted(state.registry.issuers)),
    )
    return snapshot


def stored_key_schedule(storage: Storage) -> KeySchedule:
    """The committee key schedule after the confirmed milestone of `storage`: the one recorded
    at its origin (genesis or a snapshot), then each key-set change its stored milestones
    announced (milestone records are never pruned)."""
    schedule = storage.key_schedule()
    if schedule is None:
        raise SnapshotError(f"{storage.path} records no key schedule (open it as a node first)")
    for index in range(1, storage.confirmed_index() + 1):
        record = storage.milestone(index)
        if record is None:
            continue  # at or before the origin
        payload = decode_message(record.raw).message.payload
        if isinstance(payload, Milestone):
            schedule = schedule.after(payload)
    return schedule


def create_from_snapshot(path_db: str | Path, snapshot: Snapshot) -> Storage:
    """A new database at `path_db` whose ledger is `snapshot`, verified first; its solid entry
    points (`Storage.solid_entry_points` at the snapshot's index) are the snapshot's."""
    verify_snapshot(snapshot)
    state = restore_state(
        snapshot.network_id,
        snapshot.supply,
        snapshot.milestone_index,
        dict(snapshot.outputs),
        snapshot.registry(),
    )
    storage = Storage.create_from_ledger(
        path_db,
        state,
        snapshot.milestone_id,
        entry_points=snapshot.entry_points,
        key_schedule=snapshot.key_schedule,
    )
    if storage.head().state_hash != snapshot.state_hash:
        storage.close()
        raise SnapshotError(f"{path_db}: the stored ledger does not match the snapshot")
    return storage
