"""The message window: the solid, not yet pruned part of the tangle, its pending messages and
its tip pool.

Each solid message has a row; rows are handed out when a message becomes solid, so a message's
parents always have smaller rows than it (the rows are a topological order). The rows' parents,
approvers, referencing milestone and cone root indexes are flat numpy arrays (`_dag_arrays.py`);
the tips and their scores are the tip pool (`tip_pool.py`).

Solid entry points (SEPs) are rows without parents, treated as solid and referenced at a known
milestone index: the genesis (all-zero id, milestone 0) and, after pruning, referenced messages
that window messages still approve. A message whose parents are not all rows waits as pending;
the ids nobody has yet are `missing()`, and a pending message turns solid (with its waiting
children, transitively) when its last parent does.

Cone root indexes follow TIP-3 (RFC-0008): a referenced row's OCRI and YCRI are its milestone
index; an unreferenced row's are the minimum OCRI and the maximum YCRI of its parents. A new
milestone rewrites them for the changed rows' unreferenced future only.

One gossip slot per payload: only a solid attachment holds its work root's slot, while it is
referenced or not yet below max depth; a second attachment of that work root is refused then.
A pending message holds no slot, so a copy of a payload attached to parents that never come
blocks nothing. A new solid message below max depth is refused (a replay of history). Both
refusals give way when a milestone the node holds waits for the message (`protect`): what a
milestone references is always taken. Pending messages are bounded per source and in total and
dropped after a bounded number of milestones (`_dag_pending.py`); `prune` also drops unreferenced
messages whose cone roots fell below the pruning index (they can never be confirmed).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

import numpy as np

from tangle.errors import (
    BelowMaxDepthError,
    DuplicateMessageError,
    DuplicatePayloadError,
    InvalidFieldError,
    UnknownMessageError,
)
from tangle.protocol.ids import MessageId, WorkRoot

from . import _tip_kernels as kernels
from ._dag_arrays import MAX_PARENTS, DagArrays, RowArrays
from ._dag_pending import PendingLimits, PendingTable
from .tip_pool import Score, TipPool, TipRules

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Mapping, Sequence

GENESIS_ID: Final = MessageId(bytes(32))
_INITIAL_CAPACITY: Final = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachResult:
    """What one `Dag.attach` did."""

    solid: tuple[MessageId, ...]
    """Messages that became solid, in row order: the attached one and the pending messages it
    completed, or nothing if it waits."""
    missing: tuple[MessageId, ...]
    """Parents of the attached message that the window has not seen at all (to request)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TipInfo:
    """Tip-selection metadata of one window message."""

    message_id: MessageId
    """The message."""
    referenced_by: int
    """Index of the milestone that referenced it, 0 if none (an entry point's own index)."""
    entry_point: bool
    """True for a solid entry point."""
    oldest_cone_root_index: int
    """OCRI; for a referenced message its milestone index."""
    youngest_cone_root_index: int
    """YCRI; for a referenced message its milestone index."""
    approvers: int
    """Number of approvers in the window."""
    score: Score
    """Its score as a tip under the current CMI (meaningful for tips)."""
    is_tip: bool
    """True if it is in the tip pool (no approvers, not an entry point)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneResult:
    """What one `Dag.prune` did."""

    removed: int
    """Rows dropped from the window."""
    entry_points: tuple[MessageId, ...]
    """Pruned messages kept as solid entry points (still approved), in row order."""
    dropped: tuple[MessageId, ...] = field(default=())
    """Unreferenced messages dropped because their cone fell below the pruning index, and the
    pending messages that approved them."""


class Dag:
    """The message window. Change it only through `attach`, `discard_pending`,
    `mark_referenced` and `prune`."""

    __slots__ = (
        "_cmi",
        "_ids",
        "_index",
        "_milestones",
        "_pending",
        "_rows",
        "_rules",
        "_slots",
        "_tips",
        "_work_roots",
    )

    def __init__(
        self,
        *,
        entry_points: Mapping[MessageId, int] | None = None,
        rules: TipRules | None = None,
        pending_limits: PendingLimits | None = None,
    ) -> None:
        """A window holding only `entry_points` (id -> milestone index; default: the genesis at
        0). The confirmed milestone index starts at the highest entry point index."""
        points = dict(entry_points) if entry_points is not None else {GENESIS_ID: 0}
        if not points:
            raise InvalidFieldError("entry_points", "at least one is needed")
        if any(index < 0 for index in points.values()):
            raise InvalidFieldError("entry_points", "milestone indexes must be >= 0")
        self._rules = rules if rules is not None else TipRules()
        self._rows = RowArrays(max(_INITIAL_CAPACITY, 2 * len(points)))
        self._ids: list[MessageId] = []
        self._work_roots: list[WorkRoot | None] = []
        self._index: dict[MessageId, int] = {}
        self._pending = PendingTable(pending_limits or PendingLimits())
        self._slots: dict[WorkRoot, MessageId] = {}
        self._milestones: dict[int, MessageId] = {}
        self._tips = TipPool(self._rules)
        self._cmi = max(points.values())
        for message_id, index in sorted(points.items(), key=lambda item: (item[1], item[0])):
            row = self._new_row(message_id, None)
            self._rows.referenced[row] = index
            self._rows.entry[row] = True
            self._rows.ocri[row] = index
            self._rows.ycri[row] = index

    # -- queries -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._rows.size

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._index

    @property
    def rules(self) -> TipRules:
        return self._rules

    @property
    def confirmed_milestone_index(self) -> int:
        """The CMI: index of the newest milestone applied with `mark_referenced`."""
        return self._cmi

    def is_pending(self, message_id: MessageId) -> bool:
        return message_id in self._pending

    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def pending_limits(self) -> PendingLimits:
        return self._pending.limits

    def pending_sources(self) -> int:
        """How many sources have messages pending."""
        return self._pending.sources()

    def missing(self) -> frozenset[MessageId]:
        """Ids that pending messages approve and the window has never seen."""
        return self._pending.missing()

    def is_protected(self, message_id: MessageId) -> bool:
        """Whether a protected milestone (`protect`) waits for `message_id`, directly or through
        pending messages, or it is one."""
        return self._pending.is_protected(message_id)

    def protect(self, milestones: Iterable[MessageId]) -> None:
        """Make `milestones` (milestone messages the node holds) the protected ones: what they
        wait for is taken whatever holds its slot, and never expires while they wait."""
        self._pending.protect(milestones)

    def row(self, message_id: MessageId) -> int:
        """The row of a window message (rows change when `prune` compacts)."""
        row = self._index.get(message_id)
        if row is None:
            raise UnknownMessageError(message_id.hex())
        return row

    def message_id(self, row: int) -> MessageId:
        return self._ids[row]

    def parents(self, message_id: MessageId) -> tuple[MessageId, ...]:
        row = self.row(message_id)
        count = int(self._rows.parent_count[row])
        return tuple(self._ids[p] for p in self._rows.parents[row, :count].tolist())

    def approvers(self, message_id: MessageId) -> tuple[MessageId, ...]:
        """Approvers in the window, sorted."""
        edge = int(self._rows.first_approver[self.row(message_id)])
        found = []
        while edge >= 0:
            found.append(self._ids[edge // MAX_PARENTS])
            edge = int(self._rows.next_approver[edge])
        return tuple(sorted(found))

    def tip_info(self, message_id: MessageId) -> TipInfo:
        row = self.row(message_id)
        ocri = int(self._rows.ocri[row])
        ycri = int(self._rows.ycri[row])
        return TipInfo(
            message_id=message_id,
            referenced_by=int(self._rows.referenced[row]),
            entry_point=bool(self._rows.entry[row]),
            oldest_cone_root_index=ocri,
            youngest_cone_root_index=ycri,
            approvers=int(self._rows.approver_count[row]),
            score=self._rules.score(self._cmi, ocri, ycri),
            is_tip=row in self._tips,
        )

    def tips(self, score: Score = Score.NON_LAZY) -> tuple[MessageId, ...]:
        """The tips with this score, sorted."""
        return tuple(sorted(self._ids[row] for row in self._tips.rows(score)))

    def tip_rows(self, score: Score) -> Sequence[int]:
        """The rows of the tips with this score, in pool order (a live view: do not keep it
        across changes)."""
        return self._tips.rows(score)

    def entry_points(self) -> dict[MessageId, int]:
        """The solid entry points and their milestone indexes."""
        rows = np.flatnonzero(self._rows.entry[: self._rows.size]).tolist()
        return {self._ids[row]: int(self._rows.referenced[row]) for row in rows}

    def milestone_messages(self) -> Mapping[int, MessageId]:
        """Milestone index -> the youngest message it referenced (its milestone message when the
        cone included it), for milestones whose message is still in the window."""
        return MappingProxyType(self._milestones)

    def arrays(self) -> DagArrays:
        """Read-only views for kernels; valid until the next change."""
        return self._rows.view()

    def unreferenced_past_cone(self, message_id: MessageId) -> tuple[MessageId, ...]:
        """The message and its past cone up to referenced messages and entry points, in row
        (topological) order; what a milestone on this message would newly reference."""
        a = self._rows
        n = a.size
        rows = kernels.unreferenced_past_cone(
            self.row(message_id), a.parents[:n], a.parent_count[:n], a.referenced[:n], a.entry[:n]
        )
        return tuple(self._ids[row] for row in rows.tolist())

    # -- changes -----------------------------------------------------------------------------

    def attach(
        self,
        message_id: MessageId,
        parents: Sequence[MessageId],
        work_root: WorkRoot,
        *,
        source: Hashable | None = None,
        protected: bool = False,
        latest_index: int | None = None,
    ) -> AttachResult:
        """Add a message; it turns solid at once if all its parents are rows, else it waits
        (counted against `source`, its age counted from `latest_index`, the network's latest
        milestone index as far as the caller knows; default the CMI). The payload-slot,
        below-max-depth and pending-limit rules give way for a `protected` message (a milestone
        the node holds) and for what a protected one waits for."""
        parent_ids = tuple(parents)
        if message_id in self._index or message_id in self._pending:
            raise DuplicateMessageError(message_id.hex())
        if not 1 <= len(parent_ids) <= MAX_PARENTS:
            raise InvalidFieldError("parents", f"count {len(parent_ids)} not in 1..{MAX_PARENTS}")
        if any(a >= b for a, b in pairwise(parent_ids)):
            raise InvalidFieldError("parents", "must be sorted and unique")
        if message_id in parent_ids:
            raise InvalidFieldError("parents", "a message cannot approve itself")
        holder = self._slots.get(work_root)
        protected = protected or self._pending.is_protected(message_id)
        if holder is not None and self._is_live(holder) and not protected:
            raise DuplicatePayloadError(f"{work_root.hex()} is attached as {holder.hex()}")
        unresolved = [p for p in parent_ids if p not in self._index]
        if not unresolved:
            ocri = min(self._rows.ocri.item(self._index[p]) for p in parent_ids)
            if self._cmi - ocri > self._rules.below_max_depth and not protected:
                raise BelowMaxDepthError(
                    f"{message_id.hex()} approves a cone confirmed at {ocri}, "
                    f"more than {self._rules.below_max_depth} below {self._cmi}"
                )
            self._pending.arrived(message_id)
            return AttachResult(solid=self._solidify(message_id, parent_ids, work_root), missing=())
        if not protected:
            self._pending.check_room(source)
        since = self._cmi if latest_index is None else latest_index
        missing = self._pending.add(
            message_id,
            parent_ids,
            unresolved,
            work_root,
            source=source,
            since=since,
            protected=protected,
        )
        return AttachResult(solid=(), missing=missing)

    def discard_pending(self, message_id: MessageId) -> None:
        """Give up on a pending message (its parents never came)."""
        self._pending.discard(message_id)

    def expire_pending(self, latest_index: int | None = None) -> tuple[MessageId, ...]:
        """Drop the pending messages that have waited longer than the limits allow (counted in
        milestones up to `latest_index`, default the CMI), except protected ones; returns them.
        A node catching up applies milestones faster than the network issues them: counting in
        the network's milestones keeps what it fetched ahead."""
        now = self._cmi if latest_index is None else latest_index
        expired = self._pending.expired(now)
        for message_id in expired:
            self._pending.discard(message_id)
        return tuple(expired)

    def mark_referenced(self, message_ids: Iterable[MessageId], milestone_index: int) -> None:
        """Apply milestone `milestone_index`, which newly referenced `message_ids` (a cone: every
        parent of each is referenced, an entry point or in the set). Updates cone root indexes,
        the CMI and every tip's score."""
        if milestone_index <= self._cmi:
            raise InvalidFieldError(
                "milestone_index", f"{milestone_index} is not above the CMI {self._cmi}"
            )
        rows = np.fromiter((self.row(m) for m in message_ids), dtype=np.int64)
        a = self._rows
        n = a.size
        bad, reason = kernels.mark_referenced(
            rows,
            milestone_index,
            a.parents[:n],
            a.parent_count[:n],
            a.referenced[:n],
            a.entry[:n],
            a.ocri[:n],
            a.ycri[:n],
        )
        if bad >= 0:
            what = "is already referenced" if reason == 1 else "has a parent outside the cone"
            raise InvalidFieldError("message_ids", f"{self._ids[bad].hex()} {what}")
        self._cmi = milestone_index
        if rows.size:
            self._milestones[milestone_index] = self._ids[int(rows.max())]
        self._rescore_tips()

    def prune(self, below_milestone_index: int) -> PruneResult:
        """Drop messages referenced by milestones below `below_milestone_index` (entry points
        too); those still approved by a remaining or pending message stay as entry points.
        Unreferenced messages whose oldest cone root is below it go too (with their future,
        which is as old), and the pending messages that approve them."""
        if not 0 <= below_milestone_index <= self._cmi:
            raise InvalidFieldError("below_milestone_index", f"must be in 0..{self._cmi}")
        a = self._rows
        n = a.size
        referenced, entry = a.referenced[:n], a.entry[:n]
        old = ((referenced > 0) | entry) & (referenced < below_milestone_index)
        stale = (referenced == 0) & ~entry & (a.ocri[:n] < below_milestone_index)
        stale_ids = {self._ids[row] for row in np.flatnonzero(stale).tolist()}
        orphans = self._pending.pending_with_parent_in(stale_ids)
        for message_id in orphans:
            self._pending.discard(message_id)
        keep = ~(old | stale)
        children = np.flatnonzero(keep)
        held = a.parents[children][a.parents[children] >= 0]
        pending_parents = [
            self._index[p] for p in self._pending.parents_of_all() if p in self._index
        ]
        still_approved = np.zeros(n, np.bool_)
        still_approved[held] = True
        still_approved[pending_parents] = True
        new_entries = old & still_approved
        keep |= new_entries
        rows = np.flatnonzero(keep)
        removed = n - rows.size
        dropped = (*sorted(stale_ids), *orphans)
        remap = a.compact(keep, new_entries)
        for row in np.flatnonzero(~keep).tolist():
            work_root = self._work_roots[row]
            if work_root is not None and self._slots.get(work_root) == self._ids[row]:
                del self._slots[work_root]
        kept = rows.tolist()
        self._ids = [self._ids[row] for row in kept]
        self._work_roots = [self._work_roots[row] for row in kept]
        self._index = {message_id: row for row, message_id in enumerate(self._ids)}
        self._milestones = {i: m for i, m in self._milestones.items() if m in self._index}
        self._rescore_tips()
        return PruneResult(
            removed=removed,
            entry_points=tuple(self._ids[row] for row in remap[np.flatnonzero(new_entries)]),
            dropped=dropped,
        )

    # -- internals ---------------------------------------------------------------------------

    def _new_row(self, message_id: MessageId, work_root: WorkRoot | None) -> int:
        row = self._rows.append()
        self._ids.append(message_id)
        self._work_roots.append(work_root)
        self._index[message_id] = row
        return row

    def _is_live(self, holder: MessageId) -> bool:
        """Whether the solid attachment holding a payload slot may still be confirmed."""
        row = self._index.get(holder)
        if row is None:
            return False
        if self._rows.referenced.item(row) or self._rows.entry.item(row):
            return True
        return self._cmi - self._rows.ocri.item(row) <= self._rules.below_max_depth

    def _solidify(
        self, message_id: MessageId, parents: tuple[MessageId, ...], work_root: WorkRoot
    ) -> tuple[MessageId, ...]:
        """Give the message a row, then every pending message it completes (breadth first)."""
        queue = deque([(message_id, parents, work_root)])
        solid: list[MessageId] = []
        while queue:
            current, current_parents, current_root = queue.popleft()
            self._add_row(current, current_parents, current_root)
            solid.append(current)
            queue.extend(self._pending.resolve(current))
        return tuple(solid)

    def _add_row(
        self, message_id: MessageId, parents: tuple[MessageId, ...], root: WorkRoot
    ) -> None:
        holder = self._slots.get(root)
        if holder is None or not self._is_live(holder):
            self._slots[root] = message_id
        row = self._new_row(message_id, root)
        parent_rows = [self._index[p] for p in parents]
        ocri, ycri = self._rows.link(row, parent_rows)
        for parent in parent_rows:
            self._tips.approved(parent)
        self._tips.add(row, self._cmi, ocri, ycri)

    def _rescore_tips(self) -> None:
        """Rebuild the tip pool from the arrays under the current CMI."""
        a = self._rows
        n = a.size
        rows = np.flatnonzero((a.approver_count[:n] == 0) & ~a.entry[:n])
        self._tips.rebuild(
            zip(rows.tolist(), a.ocri[rows].tolist(), a.ycri[rows].tolist(), strict=True), self._cmi
        )
