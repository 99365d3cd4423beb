"""A `NodeCore` bound to its `Storage`: every event is persisted before `submit` returns.

This is the synchronous adapter the trio node runs in its one writer thread, the coordinator
runs beside its node, and the ledger benchmark drives directly. Accepted messages are written in
groups (one transaction per `submit_many` call, flushed before any milestone that may reference
them); each milestone is one durable transaction. After a crash, `open` rebuilds the core from
storage: the ledger at the confirmed milestone, the key schedule (`stored_key_schedule`), the
solid entry points, and the stored messages no milestone has referenced yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tangle.errors import InvalidFieldError, TangleError
from tangle.storage.snapshot import stored_key_schedule
from tangle.storage.storage import Storage
from tangle.window.dag import GENESIS_ID

from .core import Accepted, Confirmed, Event, NodeCore, Parameters

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Sequence
    from pathlib import Path

    from tangle.ledger.committee import KeySchedule
    from tangle.ledger.ledger import Genesis
    from tangle.protocol.ids import MessageId
    from tangle.protocol.message import Parsed


@dataclass(frozen=True, slots=True, kw_only=True)
class Submitted:
    """What one `submit_many` did."""

    events: tuple[Event, ...]
    """Events of the accepted messages, in order."""
    rejected: tuple[tuple[int, TangleError], ...]
    """(position in the batch, error) of each message that was refused."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Pruned:
    """What one `LedgerNode.prune` removed."""

    pruned_index: int
    """Messages referenced at or below this milestone are gone from disk."""
    messages: int
    """Messages deleted from disk."""
    spent_outputs: int
    """Spent-output records deleted."""
    window_dropped: int
    """Messages dropped from the in-memory window."""


class LedgerNode:
    """A node's core and its database, kept in step."""

    __slots__ = ("_core", "_storage")

    def __init__(self, core: NodeCore, storage: Storage) -> None:
        self._core = core
        self._storage = storage

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        genesis: Genesis,
        params: Parameters,
        schedule: KeySchedule,
    ) -> LedgerNode:
        """Open (or create from `genesis`) the database at `path` and rebuild the node;
        `schedule` (the committee at genesis) is recorded in a database that holds none."""
        storage = Storage.open_or_create(path, genesis)
        try:
            head = storage.head()
            if storage.key_schedule() is None:  # created from genesis (or before it was kept)
                storage.record_key_schedule(schedule)
            schedule = stored_key_schedule(storage)
            points: dict[MessageId, int] = dict(storage.solid_entry_points(head.index))
            if not points or max(points.values()) < head.index:
                points[GENESIS_ID] = head.index
            core = NodeCore(
                params,
                ledger=storage.load_ledger(),
                confirmed_id=head.milestone_id,
                schedule=schedule,
                is_spent=storage.is_spent,
                entry_points=points,
                applied_milestone=storage.milestone_id,
            )
            node = cls(core, storage)
            node.submit_many(storage.unreferenced_messages())
        except BaseException:
            storage.close()
            raise
        return node

    def close(self) -> None:
        self._storage.close()

    @property
    def core(self) -> NodeCore:
        return self._core

    @property
    def storage(self) -> Storage:
        return self._storage

    def submit(self, raw: bytes) -> tuple[Event, ...]:
        """Receive one message; raises its `TangleError` if it is refused."""
        result = self.submit_many((raw,))
        if result.rejected:
            raise result.rejected[0][1]
        return result.events

    def submit_many(
        self, raws: Iterable[bytes], sources: Sequence[Hashable | None] | None = None
    ) -> Submitted:
        """Receive messages in order, persisting them in one group; refusals are collected.
        `sources[i]` is who sent `raws[i]` (pending messages count against it)."""
        events: list[Event] = []
        rejected: list[tuple[int, TangleError]] = []
        unsaved: list[Parsed] = []
        solid: list[MessageId] = []
        for position, raw in enumerate(raws):
            try:
                produced = self._core.receive(raw, None if sources is None else sources[position])
            except TangleError as exc:
                rejected.append((position, exc))
                continue
            for event in produced:
                if isinstance(event, Accepted):
                    unsaved.append(event.parsed)
                    solid.extend(event.solid)
                elif isinstance(event, Confirmed):
                    self._flush(unsaved, solid)
                    self._storage.apply_milestone(event.record, event.result, event.state_hash)
            events.extend(produced)
        self._flush(unsaved, solid)
        return Submitted(events=tuple(events), rejected=tuple(rejected))

    def prune(self, keep_milestones: int) -> Pruned:
        """Forget messages referenced more than `keep_milestones` milestones ago, on disk and in
        memory; the UTXO set and the milestone records stay. `keep_milestones` must exceed the
        tip rules' below-max-depth, so that nothing that can still be approved is lost."""
        below_max_depth = self._core.params.tip_rules.below_max_depth
        if keep_milestones <= below_max_depth:
            raise InvalidFieldError(
                "keep_milestones",
                f"{keep_milestones} must exceed below-max-depth {below_max_depth}",
            )
        stored = self._storage.prune(keep_milestones)
        dropped = self._core.prune(max(0, self._core.confirmed_index - keep_milestones + 1))
        return Pruned(
            pruned_index=stored.pruned_index,
            messages=stored.messages,
            spent_outputs=stored.spent_outputs,
            window_dropped=dropped,
        )

    def _flush(self, unsaved: list[Parsed], solid: list[MessageId]) -> None:
        """Store `unsaved` (those in `solid` as solid) and mark the rest of `solid`."""
        became = set(solid)
        if unsaved:
            self._storage.put_messages(unsaved, became)
            became.difference_update(p.id for p in unsaved)
            unsaved.clear()
        if became:
            self._storage.mark_solid(became)
        solid.clear()
