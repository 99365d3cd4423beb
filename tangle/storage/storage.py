"""Durable storage of messages, their metadata, milestones and the ledger, on embedded sqlite.

```
StorageError                     (errors.py) the database is unusable or inconsistent
├── IncompatibleDatabaseError    not a tanglepay database, another network, unknown schema
├── InconsistentWriteError       a write that would break an invariant; nothing was written
└── SnapshotError                (snapshot.py) a snapshot file that cannot be used
```

**Threads.** One writer connection and one read-only connection, each behind its own lock and
both usable from any thread (`check_same_thread=False`): the node calls writes from one worker
thread via `trio.to_thread`, reads from any. In WAL mode readers see the last committed state and
never block the writer. One process per database file.

**Durability.** WAL, `synchronous=NORMAL` by default and `FULL` for the transactions whose
durability is promised: creation and `apply_milestone`. A process crash (SIGKILL) loses nothing
that was committed. On power loss a NORMAL commit after the last FULL one may be lost (messages,
solid flags, prune batches: all refetched or redone), never a milestone, and the file is never
corrupt: the FULL commit syncs the WAL up to and including every earlier frame.

**Milestones.** `apply_milestone` is one transaction: milestone record, metadata of every
referenced message, created outputs, consumed outputs moved from `unspent` to `spent` (primary
key: an output is spent at most once), and the ledger row (index, accumulator, state hash). It
checks the index follows the confirmed one and that the diff moves the stored accumulator to the
caller's state hash. After a crash the database is at milestone N or N-1, never in between.

**Pruning** is in `pruning.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

from tangle.errors import DecodeError, InvalidGenesisError, StorageError
from tangle.ledger.committee import KeySchedule, decode_key_schedule, encode_key_schedule
from tangle.ledger.ledger import (
    Conflict,
    Genesis,
    Inclusion,
    LedgerState,
    accumulate,
    genesis_state,
    ledger_state_hash,
    output_leaf,
    restore_state,
)
from tangle.ledger.records import MilestoneRecord
from tangle.ledger.registry import DeviceEntry, decode_entry
from tangle.protocol.codec import Reader
from tangle.protocol.ids import Address, MessageId, MilestoneId, OutputId, TransactionId
from tangle.protocol.transaction import Output, decode_output, encode_output

from . import _schema as schema
from . import pruning
from ._schema import IncompatibleDatabaseError as IncompatibleDatabaseError
from ._schema import InconsistentWriteError as InconsistentWriteError
from .registry import history as device_history
from .registry import load_registry, registry_rows, write_registry

if TYPE_CHECKING:
    from collections.abc import Container, Iterable

    from tangle.ledger.white_flag import WhiteFlagResult
    from tangle.protocol.device import DeviceId
    from tangle.protocol.message import Parsed

    from .pruning import PruneResult

ZERO_MILESTONE_ID: Final = MilestoneId(bytes(32))
"""The id of "milestone 0", the genesis (the `previous` of milestone 1)."""
_MOD: Final = 1 << 256


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageMetadata:
    """What the node knows about a stored message beyond its bytes."""

    solid: bool
    """True once its whole past cone is known."""
    referenced_by: int | None
    """Index of the milestone that referenced it, None while unreferenced."""
    inclusion: Inclusion
    """What that milestone made of it (NO_TRANSACTION while unreferenced)."""
    conflict: Conflict
    """Why its transaction was not applied (NONE unless conflicting)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredOutput:
    """An output as the ledger records it: unspent, or spent inside the pruning window."""

    output: Output
    """What it holds."""
    created_at: int
    """The milestone that applied the transaction creating it (the origin's index for an
    output of the genesis or of a snapshot)."""
    spent_by: TransactionId | None
    """The transaction that spent it, None while it is unspent."""
    spent_at: int | None
    """The milestone that applied that transaction, None while it is unspent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerHead:
    """The confirmed milestone as the ledger row records it."""

    index: int
    """Confirmed milestone index (0: genesis, or the snapshot's index before any milestone)."""
    milestone_id: MilestoneId
    """Its id: the `previous` the next milestone must carry."""
    state_hash: bytes
    """Ledger state hash at that index."""
    pruned_index: int
    """Everything referenced at or below this index may have been pruned."""


def _i64(value: int) -> int:
    """A u64 as the sqlite integer with the same 64 bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _u64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def _output(blob: bytes) -> Output:
    try:
        r = Reader(blob, "stored output")
        output = decode_output(r)
        r.finish()
    except DecodeError as exc:
        raise StorageError(f"corrupt output row: {exc}") from exc
    return output


class Storage:
    """A node's database; build it with `create`, `create_from_ledger`, `open`, `open_or_create`."""

    __slots__ = ("_db", "_network_id", "_supply")

    def __init__(self, db: schema.Database) -> None:
        """Use the class methods."""
        self._db = db
        self._network_id = int(db.meta["network_id"])
        self._supply = int(db.meta["supply"])

    @classmethod
    def create(cls, path: str | Path, genesis: Genesis) -> Self:
        """A new database holding the genesis outputs at milestone 0."""
        return cls.create_from_ledger(path, genesis_state(genesis), ZERO_MILESTONE_ID)

    @classmethod
    def create_from_ledger(
        cls,
        path: str | Path,
        state: LedgerState,
        milestone_id: MilestoneId,
        *,
        entry_points: Iterable[tuple[MessageId, int]] = (),
        key_schedule: KeySchedule | None = None,
    ) -> Self:
        """A new database whose ledger is `state`, confirmed by milestone `milestone_id`, whose
        window starts from `entry_points` (message id, referencing milestone index; a
        snapshot's): they are its solid entry points until something approves them or pruning
        passes them. `key_schedule`: the committee keys in force after that milestone (a
        snapshot's; see `key_schedule`)."""
        path = Path(path)
        if accumulate(state.unspent.items()) != state.accumulator:
            raise InconsistentWriteError("the state's accumulator does not match its outputs")
        index = state.milestone_index
        points = list(entry_points)
        late = [mid.hex() for mid, at in points if at > index]
        if late:
            raise InconsistentWriteError(
                f"entry points {late} are referenced after milestone {index}"
            )
        meta = {
            "network_id": str(state.network_id),
            "supply": str(state.supply),
            "origin_index": str(index),
            "origin_milestone_id": milestone_id.hex(),
        }
        if key_schedule is not None:
            meta["key_schedule"] = encode_key_schedule(key_schedule).hex()
        acc = state.accumulator.to_bytes(32, "little")
        outputs = sorted(state.unspent.items(), key=lambda item: item[0])
        db = schema.create_database(
            path,
            meta,
            (index, milestone_id, acc, state.state_hash, index),
            ((oid, out.address, encode_output(out), index) for oid, out in outputs),
            points,
            registry_rows(state.registry),
        )
        return cls(schema.Database(path, db, meta))

    @classmethod
    def open(cls, path: str | Path, *, network_id: int) -> Self:
        """The existing database of network `network_id`, migrated to the current schema."""
        path = Path(path)
        return cls(schema.Database(path, *schema.open_database(path, network_id)))

    @classmethod
    def open_or_create(cls, path: str | Path, genesis: Genesis) -> Self:
        """Open the database at `path`, or create it from `genesis` if there is none."""
        path = Path(path)
        if not schema.is_initialised(path):
            return cls.create(path, genesis)
        storage = cls.open(path, network_id=genesis.network_id)
        if storage.supply != genesis.supply:
            storage.close()
            raise IncompatibleDatabaseError(
                f"{path} has supply {storage.supply}, the genesis mints {genesis.supply}"
            )
        return storage

    def close(self) -> None:
        self._db.close()

    def key_schedule(self) -> KeySchedule | None:
        """The committee key schedule in force after the origin milestone, if recorded: a
        snapshot's, or the configured one a node recorded in a database it created."""
        text = self._db.meta.get("key_schedule")
        if text is None:
            return None
        r = Reader(bytes.fromhex(text), "meta.key_schedule")
        schedule = decode_key_schedule(r)
        r.finish()
        return schedule

    def record_key_schedule(self, schedule: KeySchedule) -> None:
        """Record the key schedule in force after the origin, where none is recorded yet."""
        text = encode_key_schedule(schedule).hex()
        with self._db.write(durable=True) as db:
            db.execute("INSERT INTO meta VALUES ('key_schedule', ?)", (text,))
        self._db.meta["key_schedule"] = text

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> Path:
        return self._db.path

    @property
    def network_id(self) -> int:
        return self._network_id

    @property
    def supply(self) -> int:
        return self._supply

    # -- messages ----------------------------------------------------------------------------

    def put_messages(self, batch: Iterable[Parsed], solid: Container[MessageId] = ()) -> int:
        """Store messages (unreferenced; solid if in `solid`) in one transaction; returns how
        many were new."""
        rows = [(p.id, p.raw, p.message.parents) for p in batch]
        with self._db.write(durable=False) as db:
            (now,) = db.execute("SELECT confirmed_index FROM ledger").fetchone()
            new = db.executemany(
                "INSERT OR IGNORE INTO messages VALUES (?, ?)", ((m, raw) for m, raw, _ in rows)
            ).rowcount
            db.executemany(
                "INSERT OR IGNORE INTO metadata VALUES (?, ?, NULL, 0, 0, ?)",
                ((m, int(m in solid), now) for m, _, _ in rows),
            )
            db.executemany(
                "INSERT OR IGNORE INTO edges VALUES (?, ?)",
                ((m, parent) for m, _, parents in rows for parent in parents),
            )
        return int(new)

    def mark_solid(self, ids: Iterable[MessageId]) -> int:
        """Set the solid flag of stored messages; returns how many changed."""
        with self._db.write(durable=False) as db:
            cursor = db.executemany(
                "UPDATE metadata SET solid = 1 WHERE message_id = ? AND solid = 0",
                ((m,) for m in ids),
            )
            return int(cursor.rowcount)

    def message(self, message_id: MessageId) -> bytes | None:
        row = self._db.one("SELECT raw FROM messages WHERE message_id = ?", (message_id,))
        return None if row is None else bytes(row[0])

    def unreferenced_messages(self) -> list[bytes]:
        """Raw bytes of the stored messages no milestone has referenced, in arrival order."""
        rows = self._db.all(schema.UNREFERENCED_MESSAGES)
        return [bytes(raw) for (raw,) in rows]

    def metadata(self, message_id: MessageId) -> MessageMetadata | None:
        row = self._db.one(
            "SELECT solid, referenced_by, inclusion, conflict FROM metadata WHERE message_id = ?",
            (message_id,),
        )
        if row is None:
            return None
        solid, referenced_by, inclusion, conflict = row
        return MessageMetadata(
            solid=bool(solid),
            referenced_by=referenced_by,
            inclusion=Inclusion(inclusion),
            conflict=Conflict(conflict),
        )

    def referenced_by(self, index: int) -> list[MessageId]:
        """The messages milestone `index` referenced that are still stored (all of them inside
        the pruning window: what an inclusion path is built from)."""
        rows = self._db.all("SELECT message_id FROM metadata WHERE referenced_by = ?", (index,))
        return [MessageId(bytes(m)) for (m,) in rows]

    # -- milestones and the ledger -----------------------------------------------------------

    def apply_milestone(
        self, record: MilestoneRecord, result: WhiteFlagResult, state_hash: bytes
    ) -> None:
        """Apply milestone `record.index` with its white-flag `result`, durably, all or nothing.

        `state_hash` is the ledger state hash the caller reached; the store checks that its own
        accumulator, moved by `result.diff`, gives the same hash.
        """
        index, diff = record.index, result.diff
        included = {*result.included, *result.records}
        conflicts = {**dict(result.conflicts), **dict(result.record_conflicts)}
        referenced = set(result.referenced)
        if diff.index != index:
            raise InconsistentWriteError(f"diff of milestone {diff.index} given for {index}")
        if len(referenced) != len(result.referenced):
            raise InconsistentWriteError(f"milestone {index} references a message twice")
        if not referenced >= included | conflicts.keys() or included & conflicts.keys():
            raise InconsistentWriteError(f"milestone {index}: inclusion states do not add up")
        metadata = [
            (
                mid,
                index,
                Inclusion.INCLUDED
                if mid in included
                else Inclusion.CONFLICTING
                if mid in conflicts
                else Inclusion.NO_TRANSACTION,
                conflicts.get(mid, Conflict.NONE),
                index,
            )
            for mid in result.referenced
        ]
        with self._db.write(durable=True) as db:
            confirmed, acc_bytes = db.execute(
                "SELECT confirmed_index, accumulator FROM ledger"
            ).fetchone()
            if index != confirmed + 1:
                raise InconsistentWriteError(
                    f"milestone {index} cannot follow the confirmed milestone {confirmed}"
                )
            acc = int.from_bytes(acc_bytes, "little")
            acc -= sum(output_leaf(s.output_id, s.output) for s in diff.consumed)
            acc = (acc + sum(output_leaf(oid, out) for oid, out in diff.created)) % _MOD
            if ledger_state_hash(index, acc, result.registry.digest) != state_hash:
                raise InconsistentWriteError(
                    f"milestone {index}: the diff does not lead to state hash {state_hash.hex()}"
                )
            timestamp = _i64(record.timestamp_ms)
            db.execute(
                "INSERT INTO milestones VALUES (?, ?, ?, ?, ?)",
                (index, record.milestone_id, record.message_id, timestamp, record.raw),
            )
            if db.executemany(schema.REFERENCE, metadata).rowcount != len(metadata):
                raise InconsistentWriteError(f"milestone {index} re-references a message")
            db.executemany(
                "INSERT INTO unspent VALUES (?, ?, ?, ?)",
                ((oid, out.address, encode_output(out), index) for oid, out in diff.created),
            )
            spends = [
                (spend.transaction_id, index, spend.output_id, encode_output(spend.output))
                for spend in diff.consumed
            ]
            if db.executemany(schema.MOVE_TO_SPENT, spends).rowcount != len(spends):
                raise InconsistentWriteError(
                    f"milestone {index} spends an output that is not unspent as given"
                )
            db.executemany("DELETE FROM unspent WHERE output_id = ?", ((s[2],) for s in spends))
            write_registry(db, index, result.registry)
            db.execute(
                "UPDATE ledger SET confirmed_index = ?, milestone_id = ?, accumulator = ?, "
                "state_hash = ?",
                (index, record.milestone_id, acc.to_bytes(32, "little"), state_hash),
            )

    def confirmed_index(self) -> int:
        return int(self._db.one("SELECT confirmed_index FROM ledger")[0])

    def head(self) -> LedgerHead:
        index, ms_id, state_hash, pruned = self._db.one(
            "SELECT confirmed_index, milestone_id, state_hash, pruned_index FROM ledger"
        )
        return LedgerHead(
            index=index,
            milestone_id=MilestoneId(ms_id),
            state_hash=bytes(state_hash),
            pruned_index=pruned,
        )

    def milestone(self, index: int) -> MilestoneRecord | None:
        """The record of applied milestone `index` (None for the origin and unknown indexes)."""
        row = self._db.one(
            "SELECT idx, milestone_id, message_id, timestamp_ms, raw FROM milestones WHERE idx = ?",
            (index,),
        )
        if row is None:
            return None
        idx, ms_id, msg_id, timestamp, raw = row
        return MilestoneRecord(
            index=idx,
            milestone_id=MilestoneId(ms_id),
            message_id=MessageId(msg_id),
            timestamp_ms=_u64(timestamp),
            raw=bytes(raw),
        )

    def milestone_id(self, index: int) -> MilestoneId | None:
        """The id of milestone `index`; at the origin, zero (genesis) or the snapshot's."""
        meta = self._db.meta
        if index == int(meta["origin_index"]):
            return MilestoneId.from_hex(meta["origin_milestone_id"])
        row = self._db.one("SELECT milestone_id FROM milestones WHERE idx = ?", (index,))
        return None if row is None else MilestoneId(row[0])

    def load_ledger(self) -> LedgerState:
        """The UTXO set at the confirmed milestone, checked against the stored state hash."""
        with self._db.read() as db:
            index, acc_bytes, state_hash = db.execute(
                "SELECT confirmed_index, accumulator, state_hash FROM ledger"
            ).fetchone()
            rows = db.execute("SELECT output_id, output FROM unspent").fetchall()
            registry = load_registry(db, self._db.path)
        unspent = {OutputId(oid): _output(blob) for oid, blob in rows}
        try:
            state = restore_state(self._network_id, self._supply, index, unspent, registry)
        except InvalidGenesisError as exc:
            raise StorageError(f"{self._db.path}: inconsistent ledger: {exc}") from exc
        if (
            state.accumulator != int.from_bytes(acc_bytes, "little")
            or state.state_hash != state_hash
        ):
            raise StorageError(
                f"{self._db.path}: the UTXO set does not match the stored state hash"
            )
        return state

    def device(
        self, device_id: DeviceId
    ) -> tuple[DeviceEntry, list[tuple[int, DeviceEntry]]] | None:
        """A registered device's entry at the confirmed milestone and its history (the entry
        as each milestone that changed it left it, oldest first); None if unknown."""
        with self._db.read() as db:
            row = db.execute(
                "SELECT entry FROM devices WHERE device_id = ?", (device_id,)
            ).fetchone()
            if row is None:
                return None
            return decode_entry(bytes(row[0])), device_history(db, device_id)

    def outputs_of(self, address: Address) -> list[tuple[OutputId, Output]]:
        """Unspent outputs locked to `address`, by output id."""
        rows = self._db.all(
            "SELECT output_id, output FROM unspent WHERE address = ? ORDER BY output_id",
            (address,),
        )
        return [(OutputId(oid), _output(blob)) for oid, blob in rows]

    def balance(self, address: Address) -> int:
        return sum(output.amount for _, output in self.outputs_of(address))

    def output(self, output_id: OutputId) -> StoredOutput | None:
        """Output `output_id`, unspent or spent inside the pruning window (with its spender);
        None if no milestone created it, it was spent at or below the pruning index, or the
        milestone that created it also spent it (it never entered the UTXO set, so no spent
        record holds it: the spender's own inputs tell that milestone)."""
        row = self._db.one(schema.OUTPUT_BY_ID, (output_id, output_id))
        if row is None:
            return None
        blob, created_at, spent_by, spent_at = row
        return StoredOutput(
            output=_output(bytes(blob)),
            created_at=created_at,
            spent_by=None if spent_by is None else TransactionId(bytes(spent_by)),
            spent_at=spent_at,
        )

    def is_spent(self, output_id: OutputId) -> bool:
        """True if a milestone inside the pruning window spent `output_id`."""
        return self._db.one("SELECT 1 FROM spent WHERE output_id = ?", (output_id,)) is not None

    def solid_entry_points(self, index: int) -> list[tuple[MessageId, int]]:
        """Where the DAG of a node that forgot everything referenced at or below `index` ends
        (`pruning.solid_entry_points`)."""
        return pruning.solid_entry_points(self._db, index)

    def prune(self, keep_milestones: int, *, batch_size: int = 1000) -> PruneResult:
        """Forget what milestones up to `confirmed - keep_milestones` referenced or spent
        (`pruning.prune`)."""
        return pruning.prune(self._db, keep_milestones, batch_size=batch_size)
