"""What a node forgets, and where its DAG then ends.

`prune(keep)` forgets, in short batches, the messages referenced at or below
`confirmed - keep`, messages stored that long ago and still unreferenced (orphans below max
depth), and outputs spent that long ago. It keeps the UTXO set and every milestone record, and
first records the solid entry points at the new boundary; an entry point goes once nothing
stored approves it and it was referenced that long ago (a database created from a snapshot
starts with the snapshot's entry points and its boundary at the snapshot's index; its own
messages expire from their arrival like any other). Freed pages go back to the file system
(`auto_vacuum=INCREMENTAL`, then a WAL checkpoint). Spent outputs older than the window are
forgotten, so `is_spent` is only authoritative inside it (a conflict reason INPUT_SPENT may read
INPUT_NOT_FOUND on a pruned node; the included set and the ledger never differ).
"""

from __future__ import annotations

from dataclasses import dataclass

from tangle.errors import StorageError
from tangle.protocol.codec import U32_MAX, require_uint
from tangle.protocol.ids import MessageId

from . import _schema as schema


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneResult:
    """What one `prune` call removed."""

    pruned_index: int
    """The pruning boundary after the call."""
    messages: int
    """Messages (with their metadata and approvals) deleted."""
    spent_outputs: int
    """Spent-output rows deleted."""


def solid_entry_points(database: schema.Database, index: int) -> list[tuple[MessageId, int]]:
    """Where the DAG of a node that forgot everything referenced at or below `index` ends.

    Messages referenced at or below `index` (with that milestone index; stored, or kept as
    entry points by pruning or a snapshot) that a message the node may still receive can
    approve: those approved by a stored message that is unreferenced or referenced after
    `index`, and those no stored message approves (tips). A restarted node uses
    `solid_entry_points(confirmed_index())`, plus its genesis entry points, to end white-flag
    walks and solidification; a snapshot records them. `index` must lie between the pruning
    and the confirmed index.
    """
    with database.read() as db:
        confirmed, pruned = db.execute(
            "SELECT confirmed_index, pruned_index FROM ledger"
        ).fetchone()
        if not pruned <= index <= confirmed:
            raise StorageError(f"entry points at {index} are outside [{pruned}, {confirmed}]")
        rows = db.execute(schema.SOLID_ENTRY_POINTS, {"index": index}).fetchall()
    return [(MessageId(mid), at) for mid, at in rows]


def prune(
    database: schema.Database, keep_milestones: int, *, batch_size: int = 1000
) -> PruneResult:
    """Forget what milestones up to `confirmed - keep_milestones` referenced or spent.

    Each batch of at most `batch_size` rows is its own short transaction, so a writer waits
    at most one batch. An interrupted prune is finished by the next call. `keep_milestones`
    must exceed the node's below-max-depth, or an orphan may be pruned before it is
    referenced.
    """
    require_uint("keep_milestones", keep_milestones, U32_MAX)
    require_uint("batch_size", batch_size, U32_MAX, minimum=1)
    with database.write(durable=False) as db:
        confirmed, bound = db.execute("SELECT confirmed_index, pruned_index FROM ledger").fetchone()
        if confirmed - keep_milestones > bound:
            bound = confirmed - keep_milestones
            db.execute(
                f"INSERT OR REPLACE INTO entry_points {schema.SOLID_ENTRY_POINTS}",
                {"index": bound},
            )
            db.execute("UPDATE ledger SET pruned_index = ?", (bound,))
    expired = confirmed - keep_milestones
    messages = spent = 0
    while batch := _prune_messages(database, bound, expired, batch_size):
        messages += batch
    while batch := _prune_spent(database, bound, batch_size):
        spent += batch
    with database.write(durable=False) as db:
        db.execute(schema.DROP_STALE_ENTRY_POINTS, {"expired": expired})
    database.compact(batch_size)
    return PruneResult(pruned_index=bound, messages=messages, spent_outputs=spent)


def _prune_messages(database: schema.Database, bound: int, expired: int, limit: int) -> int:
    with database.write(durable=False) as db:
        params = {"bound": bound, "expired": expired, "limit": limit}
        ids = db.execute(schema.PRUNABLE_MESSAGES, params).fetchall()
        for statement in schema.PRUNE_MESSAGE:
            db.executemany(statement, ids)
    return len(ids)


def _prune_spent(database: schema.Database, bound: int, limit: int) -> int:
    with database.write(durable=False) as db:
        return int(db.execute(schema.PRUNE_SPENT, (bound, limit)).rowcount)
