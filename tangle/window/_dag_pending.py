"""Messages that wait for parents the window does not have yet, bounded per source and in total.

A pending message holds no payload slot (only a solid attachment does: PROTOCOL.md section 2),
counts against the quota of the source that sent it until it turns solid or is dropped, and is
dropped once it has waited `max_age` milestones, unless a milestone held by the node waits for
it. The source is an opaque key the adapter chooses (a peer's address, an API client); `None`
stands for the node itself and its local clients and has a quota like any other.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tangle.errors import InvalidFieldError, PendingLimitError, UnknownMessageError

if TYPE_CHECKING:
    from collections.abc import Container, Hashable

    from tangle.protocol.ids import MessageId, WorkRoot


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingLimits:
    """Bounds of the pending table."""

    max_total: int = 16_384
    """Most pending messages in all."""
    max_per_source: int = 2_048
    """Most pending messages from one source."""
    max_age: int = 15
    """Milestones a message may wait before it is dropped (TIP-3's M: by then it could only
    attach below max depth)."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_per_source <= self.max_total:
            raise InvalidFieldError("PendingLimits.max_per_source", "must be in 1..max_total")
        if self.max_age < 1:
            raise InvalidFieldError("PendingLimits.max_age", "must be at least 1")


class _Entry:
    """One pending message; `unresolved` counts parents that are not window rows yet."""

    __slots__ = ("parents", "since", "source", "unresolved", "work_root")

    def __init__(
        self,
        parents: tuple[MessageId, ...],
        work_root: WorkRoot,
        unresolved: int,
        source: Hashable | None,
        since: int,
    ) -> None:
        self.parents = parents
        self.work_root = work_root
        self.unresolved = unresolved
        self.source = source
        self.since = since


class PendingTable:
    """The pending messages of a window, who waits for which id, and the ids nobody has."""

    __slots__ = ("_entries", "_limits", "_missing", "_per_source", "_waiters")

    def __init__(self, limits: PendingLimits) -> None:
        self._limits = limits
        self._entries: dict[MessageId, _Entry] = {}
        self._waiters: dict[MessageId, list[MessageId]] = {}
        self._missing: set[MessageId] = set()
        self._per_source: dict[Hashable | None, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._entries

    @property
    def limits(self) -> PendingLimits:
        return self._limits

    def missing(self) -> frozenset[MessageId]:
        return frozenset(self._missing)

    def is_missing(self, message_id: MessageId) -> bool:
        return message_id in self._missing

    def sources(self) -> int:
        """How many sources have pending messages."""
        return len(self._per_source)

    def parents_of_all(self) -> list[MessageId]:
        """Every parent id of every pending message (with repeats)."""
        return [p for entry in self._entries.values() for p in entry.parents]

    def waits_for(self, message_id: MessageId, targets: Container[MessageId]) -> bool:
        """Whether a message in `targets` waits, directly or through pending messages, for
        `message_id`."""
        seen = {message_id}
        queue = deque([message_id])
        while queue:
            for child in self._waiters.get(queue.popleft(), ()):
                if child in targets:
                    return True
                if child not in seen:
                    seen.add(child)
                    queue.append(child)
        return False

    def check_room(self, source: Hashable | None) -> None:
        """Raise `PendingLimitError` if a message from `source` may not wait now."""
        limits = self._limits
        if len(self._entries) >= limits.max_total:
            raise PendingLimitError(f"{limits.max_total} messages are pending in all")
        if self._per_source.get(source, 0) >= limits.max_per_source:
            raise PendingLimitError(f"{limits.max_per_source} messages of this source are pending")

    def add(
        self,
        message_id: MessageId,
        parents: tuple[MessageId, ...],
        unresolved: list[MessageId],
        work_root: WorkRoot,
        *,
        source: Hashable | None,
        since: int,
    ) -> tuple[MessageId, ...]:
        """Make a message wait for its `unresolved` parents; returns those nobody has sent."""
        self._missing.discard(message_id)
        for parent in unresolved:
            self._waiters.setdefault(parent, []).append(message_id)
            if parent not in self._entries:
                self._missing.add(parent)
        self._entries[message_id] = _Entry(parents, work_root, len(unresolved), source, since)
        self._per_source[source] = self._per_source.get(source, 0) + 1
        return tuple(p for p in unresolved if p in self._missing)

    def arrived(self, message_id: MessageId) -> None:
        """`message_id` is a window row now (or being attached as one)."""
        self._missing.discard(message_id)

    def resolve(self, parent: MessageId) -> list[tuple[MessageId, tuple[MessageId, ...], WorkRoot]]:
        """`parent` became a row: the waiting messages it completes, taken out of the table."""
        ready = []
        for child in self._waiters.pop(parent, ()):
            entry = self._entries[child]
            entry.unresolved -= 1
            if entry.unresolved == 0:
                self._take(child)
                ready.append((child, entry.parents, entry.work_root))
        return ready

    def discard(self, message_id: MessageId) -> None:
        """Give up on a pending message; its children keep waiting for it (as a missing id)."""
        entry = self._entries.get(message_id)
        if entry is None:
            raise UnknownMessageError(message_id.hex())
        self._take(message_id)
        for parent in entry.parents:
            waiting = self._waiters.get(parent)
            if waiting is None or message_id not in waiting:
                continue
            waiting.remove(message_id)
            if not waiting:
                del self._waiters[parent]
                self._missing.discard(parent)
        if message_id in self._waiters:
            self._missing.add(message_id)

    def expired(self, confirmed_index: int, protected: Container[MessageId]) -> list[MessageId]:
        """Pending messages that have waited more than `max_age` milestones and that no message
        in `protected` (milestones the node holds) waits for, oldest first."""
        oldest = confirmed_index - self._limits.max_age
        old = [m for m, entry in self._entries.items() if entry.since < oldest]
        if not old:
            return []
        kept = self._cones_of(protected)
        return [m for m in old if m not in kept]

    def pending_with_parent_in(self, ids: Container[MessageId]) -> list[MessageId]:
        """Pending messages that approve one of `ids`."""
        return [m for m, e in self._entries.items() if any(p in ids for p in e.parents)]

    def _cones_of(self, protected: Container[MessageId]) -> set[MessageId]:
        """The pending messages in the pending past cones of the pending `protected` ones."""
        roots = [m for m in self._entries if m in protected]
        cone = set(roots)
        queue = deque(roots)
        while queue:
            for parent in self._entries[queue.popleft()].parents:
                if parent in self._entries and parent not in cone:
                    cone.add(parent)
                    queue.append(parent)
        return cone

    def _take(self, message_id: MessageId) -> None:
        entry = self._entries.pop(message_id)
        count = self._per_source[entry.source] - 1
        if count:
            self._per_source[entry.source] = count
        else:
            del self._per_source[entry.source]
