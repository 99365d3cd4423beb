"""What to ask which peer for, and when: message requests and milestone catch-up, sans I/O.

`Requests` keeps the message ids this node wants: announced by peers (asked for after a short
delay, so that a copy already on its way is not fetched twice), missing parents of accepted
messages (asked at once, of the peer that sent the child first) and ids the solidifier found
still missing. Each id is asked of one peer at a time; after `timeout_s` without it the next
candidate is asked: for an announced id the peers that announced it (and once they all left, it
is no longer wanted), for the others the sender of the child first and then every peer in turn.
Once every candidate was asked the id waits a pause that doubles each round, and after
`max_attempts` requests it is given up (until a new peer connects). Ids wanted on announces
alone are bounded per announcer and in total.

`MilestoneSync` (in `_milestone_sync.py`) asks for the milestones between this node's confirmed
index and the highest a peer reports, in windows; their past cones then arrive through
`Requests` as missing parents.

Peers are named by their `NodeId`; time is a float passed in.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._milestone_sync import MilestoneSync as MilestoneSync

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from tangle.protocol.ids import MessageId

    from .gossip import NodeId


@dataclass(slots=True)
class _Want:
    """One wanted id."""

    sources: list[NodeId] = field(default_factory=list)
    """Peers known to have it, in the order to ask them."""
    history: bool = False
    """Needed by this node (missing parent, solidifier): fetched from anyone, not relayed on
    arrival. Otherwise only announced: asked of its announcers only, dropped when they leave."""
    not_before: float = 0.0
    """Do not ask before this time."""
    asked: NodeId | None = None
    """The peer asked, while waiting for it."""
    asked_at: float = 0.0
    """When."""
    attempts: int = 0
    """Requests sent so far."""
    tried: set[NodeId] = field(default_factory=set)
    """Peers asked in the current round."""
    rounds: int = 0
    """Rounds in which every candidate peer was asked."""
    due_at: float = 0.0
    """When `due` looks at it next: the time of its live entry in the deadline heap."""


class Requests:
    """Message ids wanted, and whom to ask for them.

    Announced ids are bounded: at most `max_per_peer` wanted on one peer's word and
    `max_announced` in all (more are not wanted; the push or a later announce brings them). Ids
    this node needs are not bounded here: the node's own table of pending messages bounds them.
    Deadlines sit in a heap, so `due` costs what is due, not the size of the table.
    """

    __slots__ = (
        "_abandoned",
        "_announced",
        "_backoff_max_s",
        "_backoff_s",
        "_by_peer",
        "_delay_s",
        "_heap",
        "_max_announced",
        "_max_attempts",
        "_max_per_peer",
        "_of_peer",
        "_rotation",
        "_sequence",
        "_timeout_s",
        "_wants",
        "given_up",
        "refused",
    )

    def __init__(
        self,
        *,
        delay_s: float,
        timeout_s: float,
        max_attempts: int,
        backoff_s: float,
        backoff_max_s: float,
        max_per_peer: int,
        max_announced: int,
    ) -> None:
        self._delay_s = delay_s
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._max_per_peer = max_per_peer
        self._max_announced = max_announced
        self._wants: dict[MessageId, _Want] = {}
        self._heap: list[tuple[float, int, MessageId]] = []
        self._sequence = itertools.count()
        self._announced = 0
        self._by_peer: dict[NodeId, int] = {}
        self._of_peer: dict[NodeId, set[MessageId]] = {}
        self._abandoned: set[MessageId] = set()
        self._rotation = itertools.count()
        self.given_up = 0
        """Ids given up so far."""
        self.refused = 0
        """Announced ids not wanted because a bound was reached."""

    def __len__(self) -> int:
        return len(self._wants)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._wants

    @property
    def announced_only(self) -> int:
        """Ids wanted on announces alone (bounded by `max_announced`)."""
        return self._announced

    def announced_by(self, peer: NodeId) -> int:
        """Ids wanted on `peer`'s announces (bounded by `max_per_peer`)."""
        return self._by_peer.get(peer, 0)

    @property
    def scheduled(self) -> int:
        """Entries in the deadline heap (live and stale; at most about twice `len`)."""
        return len(self._heap)

    def is_history(self, message_id: MessageId) -> bool:
        want = self._wants.get(message_id)
        return want is not None and want.history

    def announced(self, peer: NodeId, ids: Iterable[MessageId], now: float) -> int:
        """`peer` has `ids` (which this node does not): ask for them after the delay, within
        the bounds. Returns how many ids became wanted."""
        added = 0
        for message_id in ids:
            want = self._wants.get(message_id)
            if want is not None and want.history:
                if peer not in want.sources:
                    self._add_source(message_id, want, peer)
                continue
            if want is not None and peer in want.sources:
                continue
            if self._by_peer.get(peer, 0) >= self._max_per_peer or (
                want is None and self._announced >= self._max_announced
            ):
                self.refused += 1
                continue
            if want is None:
                want = self._wants[message_id] = _Want(not_before=now + self._delay_s)
                self._announced += 1
                self._schedule(message_id, want)
                added += 1
            self._add_source(message_id, want, peer)
            self._by_peer[peer] = self._by_peer.get(peer, 0) + 1
        return added

    def missing(self, ids: Iterable[MessageId], source: NodeId | None, now: float) -> None:
        """Parents of accepted messages that nobody sent yet: ask `source` (the sender of the
        child) first, at once."""
        for message_id in ids:
            want = self._need(message_id, now)
            if source is not None and source not in want.sources:
                self._add_source(message_id, want, source, first=True)

    def still_missing(self, ids: Iterable[MessageId], now: float) -> int:
        """Ids the solidifier found missing: want those not given up already. Returns how
        many became wanted."""
        added = 0
        for message_id in ids:
            if message_id not in self._abandoned:
                added += message_id not in self._wants
                self._need(message_id, now)
        return added

    def _need(self, message_id: MessageId, now: float) -> _Want:
        """This node needs `message_id`: want it from anyone, at once if newly wanted."""
        want = self._wants.get(message_id)
        if want is None:
            want = self._wants[message_id] = _Want(history=True, not_before=now)
            self._abandoned.discard(message_id)
            self._schedule(message_id, want)
        elif not want.history:
            self._release(want)
            want.history = True
        return want

    def arrived(self, message_id: MessageId) -> bool:
        """The message arrived: stop wanting it. Returns whether it was fetched for the past."""
        want = self._wants.pop(message_id, None)
        if want is None:
            return False
        self._forget(message_id, want)
        return want.history

    def peer_added(self) -> None:
        """A new peer may have what was given up: try again."""
        self._abandoned.clear()

    def peer_gone(self, peer: NodeId, now: float) -> None:
        """`peer` left: what only it announced is no longer wanted (nobody else is asked for
        it); what it was asked for is asked of the next candidate. Costs what `peer` was
        named for, not the size of the table."""
        dropped: list[MessageId] = []
        for message_id in self._of_peer.pop(peer, ()):
            want = self._wants[message_id]
            if peer in want.sources:
                want.sources.remove(peer)
                if not want.history:
                    self._by_peer[peer] -= 1
                    if not want.sources:
                        dropped.append(message_id)
                        continue
            if want.asked == peer:
                want.asked = None
                want.not_before = min(want.not_before, now)
                self._schedule(message_id, want)
        self._by_peer.pop(peer, None)
        for message_id in dropped:
            self._forget(message_id, self._wants.pop(message_id))

    def _add_source(
        self, message_id: MessageId, want: _Want, peer: NodeId, *, first: bool = False
    ) -> None:
        want.sources.insert(0 if first else len(want.sources), peer)
        self._of_peer.setdefault(peer, set()).add(message_id)

    def _forget(self, message_id: MessageId, want: _Want) -> None:
        """`want` was removed from the table: drop it from every index."""
        self._release(want)
        for peer in (*want.sources, want.asked):
            if peer is not None:
                self._unindex(peer, message_id)

    def _unindex(self, peer: NodeId, message_id: MessageId) -> None:
        ids = self._of_peer.get(peer)
        if ids is not None:
            ids.discard(message_id)
            if not ids:
                del self._of_peer[peer]

    def _release(self, want: _Want) -> None:
        """`want` stops counting against the announce bounds (it arrived or is needed)."""
        if want.history:
            return
        self._announced -= 1
        for peer in want.sources:
            self._by_peer[peer] -= 1

    def _schedule(self, message_id: MessageId, want: _Want) -> None:
        want.due_at = want.not_before if want.asked is None else want.asked_at + self._timeout_s
        heapq.heappush(self._heap, (want.due_at, next(self._sequence), message_id))
        if len(self._heap) > 2 * len(self._wants) + 64:  # mostly stale entries: rebuild
            self._heap = [(w.due_at, next(self._sequence), i) for i, w in self._wants.items()]
            heapq.heapify(self._heap)

    def _live(self, entry: tuple[float, int, MessageId]) -> _Want | None:
        want = self._wants.get(entry[2])
        return want if want is not None and want.due_at == entry[0] else None

    def due(self, now: float, peers: Collection[NodeId]) -> dict[NodeId, list[MessageId]]:
        """The ids to ask for now, by peer; they count as asked from now on."""
        plan: dict[NodeId, list[MessageId]] = {}
        if not peers:
            return plan
        order = sorted(peers)
        heap = self._heap
        expired: list[tuple[MessageId, _Want]] = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            want = self._live(entry)
            if want is not None:
                want.due_at = math.inf  # taken: a second entry of the same time is stale
                expired.append((entry[2], want))
        for message_id, want in expired:
            if want.asked is not None:
                want.tried.add(want.asked)
                if want.asked not in want.sources:
                    self._unindex(want.asked, message_id)
                want.asked = None
            if want.attempts >= self._max_attempts:
                del self._wants[message_id]
                self._forget(message_id, want)
                if want.history:
                    self._abandoned.add(message_id)
                self.given_up += 1
                continue
            peer = self._choose(want, order, peers)
            if peer is None:  # everyone was asked this round: pause, then start over
                want.tried.clear()
                pause = min(self._backoff_max_s, self._backoff_s * 2**want.rounds)
                want.not_before = now + pause
                want.rounds += 1
            else:
                want.asked = peer
                want.asked_at = now
                want.attempts += 1
                self._of_peer.setdefault(peer, set()).add(message_id)
                plan.setdefault(peer, []).append(message_id)
            self._schedule(message_id, want)
        return plan

    def _choose(self, want: _Want, order: list[NodeId], peers: Collection[NodeId]) -> NodeId | None:
        for source in want.sources:
            if source in peers and source not in want.tried:
                return source
        if not want.history:
            return None  # announced ids are asked of their announcers only
        start = next(self._rotation)
        for offset in range(len(order)):
            peer = order[(start + offset) % len(order)]
            if peer not in want.tried:
                return peer
        return None

    def next_deadline(self) -> float | None:
        """When `due` may have something new (None: nothing is wanted)."""
        heap = self._heap
        while heap and self._live(heap[0]) is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else None
