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

`MilestoneSync` asks for the milestones between this node's confirmed index and the highest a
peer reports, in windows of `window` indexes with at most `in_flight` windows outstanding; their
past cones then arrive through `Requests` as missing parents.

Peers are named by their `NodeId`; time is a float passed in.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from .gossip import NodeId
    from .ids import MessageId


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
                    want.sources.append(peer)
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
            want.sources.append(peer)
            self._by_peer[peer] = self._by_peer.get(peer, 0) + 1
        return added

    def missing(self, ids: Iterable[MessageId], source: NodeId | None, now: float) -> None:
        """Parents of accepted messages that nobody sent yet: ask `source` (the sender of the
        child) first, at once."""
        for message_id in ids:
            want = self._need(message_id, now)
            if source is not None and source not in want.sources:
                want.sources.insert(0, source)

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
        self._release(want)
        return want.history

    def peer_added(self) -> None:
        """A new peer may have what was given up: try again."""
        self._abandoned.clear()

    def peer_gone(self, peer: NodeId, now: float) -> None:
        """`peer` left: what only it announced is no longer wanted (nobody else is asked for
        it); what it was asked for is asked of the next candidate."""
        dropped: list[MessageId] = []
        for message_id, want in self._wants.items():
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
            del self._wants[message_id]
            self._announced -= 1

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
                want.asked = None
            if want.attempts >= self._max_attempts:
                del self._wants[message_id]
                self._release(want)
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


@dataclass(slots=True)
class _PeerHeight:
    index: int
    since: float


class MilestoneSync:
    """The milestone windows to ask for while peers are ahead of this node."""

    __slots__ = (
        "_asked",
        "_confirmed",
        "_grace_s",
        "_in_flight",
        "_peers",
        "_received",
        "_timeout_s",
        "_window",
        "requested",
    )

    def __init__(
        self, *, confirmed: int, window: int, in_flight: int, timeout_s: float, grace_s: float
    ) -> None:
        self._confirmed = confirmed
        self._window = window
        self._in_flight = in_flight
        self._timeout_s = timeout_s
        self._grace_s = grace_s
        self._peers: dict[NodeId, _PeerHeight] = {}
        self._received: set[int] = set()
        self._asked: dict[int, tuple[NodeId, float]] = {}
        self.requested = 0
        """Milestone indexes asked for so far."""

    @property
    def confirmed(self) -> int:
        return self._confirmed

    def local(self, confirmed: int) -> None:
        """This node's confirmed index moved."""
        if confirmed <= self._confirmed:
            return
        self._confirmed = confirmed
        self._received = {i for i in self._received if i > confirmed}
        self._asked = {i: a for i, a in self._asked.items() if i > confirmed}

    def peer(self, peer: NodeId, confirmed: int, now: float) -> None:
        """`peer` reports `confirmed` (handshake or heartbeat)."""
        height = self._peers.get(peer)
        if height is None or height.index != confirmed:
            self._peers[peer] = _PeerHeight(confirmed, now)

    def peer_gone(self, peer: NodeId) -> None:
        self._peers.pop(peer, None)
        self._asked = {i: a for i, a in self._asked.items() if a[0] != peer}

    def received(self, index: int) -> bool:
        """A milestone message arrived; returns whether this sync asked for it."""
        asked = self._asked.pop(index, None) is not None
        if index > self._confirmed:
            self._received.add(index)
        return asked

    def target(self, now: float) -> int:
        """The highest index to fetch: a peer's newest milestone only after `grace_s` (it is
        normally pushed to us by then)."""
        best = self._confirmed
        for height in self._peers.values():
            settled = height.index if now >= height.since + self._grace_s else height.index - 1
            best = max(best, settled)
        return best

    def due(self, now: float) -> list[tuple[NodeId, int, int]]:
        """(peer, start, count) requests to send now."""
        last = min(self.target(now), self._confirmed + self._window * self._in_flight)
        wanted = [
            i
            for i in range(self._confirmed + 1, last + 1)
            if i not in self._received
            and (i not in self._asked or now >= self._asked[i][1] + self._timeout_s)
        ]
        plan: list[tuple[NodeId, int, int]] = []
        run: list[int] = []
        for index in [*wanted, -1]:
            if run and (index != run[-1] + 1 or len(run) == self._window):
                peer = self._choose(run, now)
                if peer is None:  # nobody has them (any more): forget they were asked
                    for i in run:
                        self._asked.pop(i, None)
                else:
                    plan.append((peer, run[0], len(run)))
                    for i in run:
                        self._asked[i] = (peer, now)
                    self.requested += len(run)
                run = []
            if index != -1:
                run.append(index)
        return plan

    def _choose(self, run: list[int], now: float) -> NodeId | None:
        """A peer that has the whole run, other than one that let it time out; fewest
        windows in flight first."""
        previous = {self._asked[i][0] for i in run if i in self._asked}
        load = dict.fromkeys(self._peers, 0)
        for peer, at in self._asked.values():
            if peer in load and now < at + self._timeout_s:
                load[peer] += 1
        able = [p for p, h in self._peers.items() if h.index >= run[-1]]
        fresh = [p for p in able if p not in previous] or able
        return min(fresh, key=lambda p: (load[p], p), default=None)

    def next_deadline(self, now: float) -> float | None:
        times = [at + self._timeout_s for _, at in self._asked.values()]
        times += [
            h.since + self._grace_s
            for h in self._peers.values()
            if h.index > self._confirmed and now < h.since + self._grace_s
        ]
        return min(times, default=None)
