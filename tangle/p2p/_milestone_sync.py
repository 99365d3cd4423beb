"""Milestone catch-up, sans I/O: which milestone windows to ask which peer for.

`MilestoneSync` asks for the milestones between this node's confirmed index and the highest a
peer reports, in windows of `window` indexes with at most `in_flight` windows outstanding; their
past cones then arrive through `sync.Requests` as missing parents. Peers are named by their
`NodeId`; time is a float passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .gossip import NodeId


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
