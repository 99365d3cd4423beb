"""Messages that wait for parents the window does not have yet, bounded per source and in total.

A pending message holds no payload slot (only a solid attachment does: PROTOCOL.md section 2),
counts against the quota of the source that sent it until it turns solid or is dropped, and is
dropped once it has waited `max_age` milestones, unless it is *protected*: a milestone held by the
node (a protected root) waits for it, directly or through pending messages. Protection is kept
incrementally (each id is marked once as the pending cone of a root grows), so asking whether a
message is protected costs O(1) on the hot path; `protect` rebuilds it from the roots. The
source is an opaque key the adapter chooses (a peer's address, an API client); `None` stands for
the node itself and its local clients and has a quota like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tangle.errors import InvalidFieldError, PendingLimitError, UnknownMessageError

if TYPE_CHECKING:
    from collections.abc import Container, Hashable, Iterable

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

    __slots__ = ("_entries", "_limits", "_missing", "_per_source", "_protected", "_waiters")

    def __init__(self, limits: PendingLimits) -> None:
        self._limits = limits
        self._entries: dict[MessageId, _Entry] = {}
        self._waiters: dict[MessageId, list[MessageId]] = {}
        self._missing: set[MessageId] = set()
        self._per_source: dict[Hashable | None, int] = {}
        self._protected: set[MessageId] = set()
        """Pending or missing ids a protected root waits for (the roots too)."""

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

    def is_protected(self, message_id: MessageId) -> bool:
        """Whether a protected root waits for `message_id` (or it is one)."""
        return message_id in self._protected

    def protect(self, roots: Iterable[MessageId]) -> None:
        """Make `roots` (and the pending past cone of each) the protected set."""
        self._protected = set()
        for root in roots:
            self._mark(root)

    def _mark(self, message_id: MessageId) -> None:
        """Protect `message_id` and, if it is pending, its pending or missing parents."""
        if message_id in self._protected:
            return
        self._protected.add(message_id)
        stack = [message_id]
        while stack:
            entry = self._entries.get(stack.pop())
            if entry is None:
                continue
            for parent in entry.parents:
                if parent not in self._protected and (
                    parent in self._entries or parent in self._missing
                ):
                    self._protected.add(parent)
                    stack.append(parent)

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
        protected: bool = False,
    ) -> tuple[MessageId, ...]:
        """Make a message wait for its `unresolved` parents; returns those nobody has sent. A
        `protected` one is a protected root."""
        self._missing.discard(message_id)
        for parent in unresolved:
            self._waiters.setdefault(parent, []).append(message_id)
            if parent not in self._entries:
                self._missing.add(parent)
        self._entries[message_id] = _Entry(parents, work_root, len(unresolved), source, since)
        self._per_source[source] = self._per_source.get(source, 0) + 1
        if protected or message_id in self._protected:
            self._protected.discard(message_id)
            self._mark(message_id)
        return tuple(p for p in unresolved if p in self._missing)

    def arrived(self, message_id: MessageId) -> None:
        """`message_id` is a window row now (or being attached as one)."""
        self._missing.discard(message_id)
        self._protected.discard(message_id)

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
        was_protected = message_id in self._protected
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
            if was_protected:
                self._protected.add(message_id)

    def expired(self, latest_index: int) -> list[MessageId]:
        """Pending messages that have waited more than `max_age` milestones up to
        `latest_index` and are not protected, oldest first."""
        oldest = latest_index - self._limits.max_age
        protected = self._protected
        return [
            m for m, entry in self._entries.items() if entry.since < oldest and m not in protected
        ]

    def pending_with_parent_in(self, ids: Container[MessageId]) -> list[MessageId]:
        """Pending messages that approve one of `ids`."""
        return [m for m, e in self._entries.items() if any(p in ids for p in e.parents)]

    def _take(self, message_id: MessageId) -> None:
        entry = self._entries.pop(message_id)
        self._protected.discard(message_id)
        count = self._per_source[entry.source] - 1
        if count:
            self._per_source[entry.source] = count
        else:
            del self._per_source[entry.source]
