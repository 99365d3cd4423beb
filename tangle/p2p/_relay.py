"""What flows between a node and its peers: the inbound pipeline into the `Node`, relay by
announce, requests, milestone catch-up and the solidifier (the rules are in `peering.py`).

`Relay` sees the connected peers through the `links` mapping the peering keeps, and reports a
sender of a message refused for cause through `punish`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import trio

from tangle.errors import (
    BadSignatureError,
    DecodeError,
    DuplicateMessageError,
    DuplicatePayloadError,
    InsufficientWorkError,
    InvalidDeviceRecordError,
    InvalidTransactionError,
    MisbehavingPeerError,
    StaleMilestoneError,
    WrongNetworkError,
)
from tangle.protocol.codec import U16_MAX
from tangle.protocol.milestone import Milestone

from ._admission import host_key
from .gossip import (
    MAX_IDS,
    Announce,
    Heartbeat,
    KnownIds,
    MessageFrame,
    MilestoneRequest,
    Request,
)
from .sync import MilestoneSync, Requests

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from tangle.errors import TangleError
    from tangle.node.node import Node, Outcome
    from tangle.protocol.ids import MessageId
    from tangle.storage.storage import Storage

    from ._peer_link import Link
    from ._peering_config import PeeringConfig, PeeringCounters
    from .gossip import Frame, NodeId

REFUSED_FOR_CAUSE: Final = (
    BadSignatureError,
    InsufficientWorkError,
    InvalidTransactionError,
    InvalidDeviceRecordError,
    DecodeError,
    WrongNetworkError,
)
"""Refusals by the node that get the sender banned."""
BENIGN: Final = (DuplicateMessageError, DuplicatePayloadError, StaleMilestoneError)
"""Refusals that are normal in gossip: counted only."""


@dataclass(frozen=True, slots=True)
class _Inbound:
    peer: NodeId
    raw: bytes
    message_id: MessageId
    history: bool
    source: str
    """The sender's host key: pending messages count against it."""


def _milestones(storage: Storage, indexes: range) -> list[bytes | None]:
    records = (storage.milestone(index) for index in indexes)
    return [None if record is None else record.raw for record in records]


class Relay:
    """The gossip engine of one node."""

    __slots__ = (
        "_announce_wakeup",
        "_config",
        "_confirmed",
        "_counters",
        "_fetched",
        "_inbound_receive",
        "_inbound_send",
        "_links",
        "_node",
        "_pruned",
        "_punish",
        "_recent",
        "_request_wakeup",
        "_requests",
        "_sync",
    )

    def __init__(
        self,
        node: Node,
        config: PeeringConfig,
        counters: PeeringCounters,
        links: Mapping[NodeId, Link],
        punish: Callable[[NodeId, MisbehavingPeerError], None],
    ) -> None:
        self._node = node
        self._config = config
        self._counters = counters
        self._links = links
        self._punish = punish
        self._recent = KnownIds(config.known_recent)
        self._fetched = KnownIds(config.known_recent)
        """Ids fetched for the past (the peers have them): never relayed, even when they turn
        solid in a later batch."""
        self._requests = Requests(
            delay_s=config.request_delay_s,
            timeout_s=config.request_timeout_s,
            max_attempts=config.request_attempts,
            backoff_s=config.retry_backoff_s,
            backoff_max_s=config.retry_backoff_max_s,
            max_per_peer=config.max_wanted_per_peer,
            max_announced=config.max_wanted_announced,
        )
        self._sync = MilestoneSync(
            confirmed=0,
            window=config.sync_window,
            in_flight=config.sync_windows_in_flight,
            timeout_s=config.sync_timeout_s,
            grace_s=config.sync_grace_s,
        )
        self._inbound_send, self._inbound_receive = trio.open_memory_channel[_Inbound](
            config.inbound_queue
        )
        self._request_wakeup = trio.Event()
        self._announce_wakeup = trio.Event()
        self._confirmed = 0
        self._pruned = 0

    @property
    def confirmed(self) -> int:
        """This node's confirmed milestone index, as last seen."""
        return self._confirmed

    @property
    def requests(self) -> Requests:
        """The message ids wanted from peers (read only: for sizes)."""
        return self._requests

    async def load(self) -> None:
        """Read where the node's ledger is (before the first handshake)."""
        head = await self._node.read_storage(lambda storage: storage.head())
        self._pruned = head.pruned_index
        self._set_confirmed(head.index)

    async def run(self) -> None:
        """Run the pipeline and the request, announce and solidifier loops until cancelled."""
        async with trio.open_nursery() as nursery:
            for task in (self._batch, self._announce, self._request, self._solidify, self._follow):
                nursery.start_soon(task)

    async def publish(self, raw: bytes) -> None:
        """Push a message that originates here to every peer not known to have it."""
        frame = MessageFrame(raw=raw)
        message_id = frame.message_id
        self._recent.add(message_id)
        self._requests.arrived(message_id)
        self._counters.published += 1
        for link in list(self._links.values()):
            if message_id not in link.protocol.known:
                link.push(frame)
        await trio.lowlevel.checkpoint()

    # -- peers ---------------------------------------------------------------------------------

    async def joined(self, peer: NodeId, link: Link, confirmed_index: int) -> None:
        """A peer completed its handshake: note its index, offer it our tips."""
        self._sync.peer(peer, confirmed_index, trio.current_time())
        self._requests.peer_added()
        self._wake_requests()
        tips = await self._node.read_core(lambda core: core.dag.tips())
        if link.announce(tips):
            self._announce_wakeup.set()

    def left(self, peer: NodeId) -> None:
        self._requests.peer_gone(peer, trio.current_time())
        self._sync.peer_gone(peer)
        self._wake_requests()

    def heartbeat(self) -> Heartbeat:
        confirmed = self._confirmed
        return Heartbeat(
            confirmed_index=confirmed,
            pruned_index=min(self._pruned, confirmed),
            peer_count=min(U16_MAX, len(self._links)),
        )

    async def on_frame(self, peer: NodeId, link: Link, frame: Frame) -> None:
        """A MESSAGE, ANNOUNCE or HEARTBEAT frame from a connected peer."""
        if isinstance(frame, MessageFrame):
            message_id = frame.message_id
            link.messages_in += 1
            self._counters.messages_received += 1
            if not self._recent.add(message_id):
                self._counters.messages_duplicate += 1
                return
            history = self._requests.arrived(message_id)
            source = host_key(link.source.host)
            await self._inbound_send.send(_Inbound(peer, frame.raw, message_id, history, source))
        elif isinstance(frame, Announce):
            fresh = [i for i in frame.ids if i not in self._recent]
            if fresh and self._requests.announced(peer, fresh, trio.current_time()):
                self._wake_requests()
        elif isinstance(frame, Heartbeat):
            link.remote_confirmed = frame.confirmed_index
            self._sync.peer(peer, frame.confirmed_index, trio.current_time())
            self._wake_requests()

    async def serve(self, link: Link, frame: Request | MilestoneRequest) -> None:
        """Answer a request from storage with the messages this node has, as far as the peer's
        serving budget goes and its outbox has room; never waits for either."""
        counters = self._counters
        budget = link.serve_budget
        if budget.tokens(trio.current_time()) <= 0:  # spent: not even a storage read
            counters.messages_not_served += (
                len(frame.ids) if isinstance(frame, Request) else frame.count
            )
            return
        if isinstance(frame, Request):
            ids = frame.ids
            raws = await self._node.read_storage(lambda s: [s.message(i) for i in ids])
        else:
            indexes = range(frame.start, frame.start + frame.count)
            raws = await self._node.read_storage(lambda s: _milestones(s, indexes))
        held = [raw for raw in raws if raw is not None]
        now = trio.current_time()
        for sent, raw in enumerate(held):
            if budget.tokens(now) < len(raw) or not link.push(MessageFrame(raw=raw)):
                counters.messages_not_served += len(held) - sent
                return
            budget.charge(len(raw), now)
            counters.messages_served += 1

    # -- the pipeline --------------------------------------------------------------------------

    async def _batch(self) -> None:
        config = self._config
        receive = self._inbound_receive
        while True:
            batch = [await receive.receive()]
            # One cancel scope for the whole batch window: a receive cancelled at the deadline
            # takes nothing from the channel.
            with trio.move_on_after(config.batch_window_s):
                while len(batch) < config.max_batch:
                    batch.append(await receive.receive())
            outcome = await self._node.submit_many(
                [item.raw for item in batch], [item.source for item in batch]
            )
            self._digest(batch, outcome)

    def _digest(self, batch: list[_Inbound], outcome: Outcome) -> None:
        """Relay, request and punish after one batch."""
        counters = self._counters
        sender = {item.message_id: item for item in batch}
        fetched = self._fetched
        for parsed in outcome.accepted:
            item = sender[parsed.id]
            counters.messages_accepted += 1
            counters.unique_message_bytes += len(parsed.raw)
            link = self._links.get(item.peer)
            if link is not None:
                link.unique_bytes_in += len(parsed.raw)
            payload = parsed.message.payload
            if item.history or (
                isinstance(payload, Milestone) and self._sync.received(payload.essence.index)
            ):
                fetched.add(parsed.id)
        # Relayed once solid: a message waiting for parents may never be confirmable.
        relay = [message_id for message_id in outcome.solid if message_id not in fetched]
        if outcome.requested:
            self._request_parents(outcome, sender)
        for position, error in outcome.rejected:
            self._refused(batch[position], error)
        for message_id in outcome.expired:  # the node forgot them: they may come again
            self._recent.discard(message_id)
        if outcome.confirmed:
            self._set_confirmed(max(event.record.index for event in outcome.confirmed))
        if relay:
            for link in self._links.values():
                link.announce(relay)
            self._announce_wakeup.set()

    def _request_parents(self, outcome: Outcome, sender: dict[MessageId, _Inbound]) -> None:
        """Ask for missing parents, first of the peer that sent the child."""
        now = trio.current_time()
        wanted = set(outcome.requested)
        source: dict[MessageId, NodeId] = {}
        for parsed in outcome.accepted:
            for parent in parsed.message.parents:
                if parent in wanted:
                    source.setdefault(parent, sender[parsed.id].peer)
        for message_id in outcome.requested:
            if message_id not in self._recent:
                self._requests.missing((message_id,), source.get(message_id), now)
        self._wake_requests()

    def _refused(self, item: _Inbound, error: TangleError) -> None:
        counters = self._counters
        if isinstance(error, BENIGN):
            counters.refused_benign += 1
        elif isinstance(error, BadSignatureError) and item.history:
            # We asked for this id (a child approves it), and a node may have stored it before
            # milestones were checked on arrival: serving it is not the peer's fault.
            counters.refused_other += 1
        elif isinstance(error, REFUSED_FOR_CAUSE):
            counters.refused_for_cause += 1
            reason = MisbehavingPeerError(f"sent {item.message_id.hex()[:16]}: {error}")
            reason.__cause__ = error
            self._punish(item.peer, reason)
            return
        else:
            counters.refused_other += 1
        if not isinstance(error, DuplicateMessageError):
            # Refused for now, not for good (a copy held its slot, a milestone too far ahead, no
            # room to wait): when a milestone needs it, a request must reach the node again.
            self._recent.discard(item.message_id)

    # -- timers --------------------------------------------------------------------------------

    def _wake_requests(self) -> None:
        self._request_wakeup.set()

    def _set_confirmed(self, index: int) -> None:
        if index > self._confirmed:
            self._confirmed = index
            self._sync.local(index)
            self._wake_requests()

    async def _announce(self) -> None:
        """Batch announces: flush every link's queued ids `announce_interval_s` after the first."""
        while True:
            await self._announce_wakeup.wait()
            self._announce_wakeup = trio.Event()
            await trio.sleep(self._config.announce_interval_s)
            for link in list(self._links.values()):
                link.flush_announces()

    async def _request(self) -> None:
        """Send what the request planners say is due, then sleep until the next deadline."""
        counters = self._counters
        while True:
            now = trio.current_time()
            links = self._links
            for peer, ids in self._requests.due(now, links.keys()).items():
                link = links[peer]
                for start in range(0, len(ids), MAX_IDS):
                    link.push(Request(ids=tuple(ids[start : start + MAX_IDS])))
                counters.ids_requested += len(ids)
            for peer, start, count in self._sync.due(now):
                target = links.get(peer)
                if target is not None:
                    target.push(MilestoneRequest(start=start, count=count))
                    counters.milestones_requested += count
            times = [self._sync.next_deadline(now)]
            if links:
                times.append(self._requests.next_deadline())
            deadline = min((t for t in times if t is not None), default=math.inf)
            self._request_wakeup = trio.Event()
            with trio.move_on_at(deadline):
                await self._request_wakeup.wait()

    async def _solidify(self) -> None:
        """Look up what pending messages still miss and want it again (with backoff)."""
        node = self._node
        while True:
            await trio.sleep(self._config.solidify_interval_s)
            missing = await node.read_core(lambda core: core.dag.missing())
            fresh = [i for i in missing if i not in self._recent]
            if self._requests.still_missing(fresh, trio.current_time()):
                self._wake_requests()
            head = await node.read_storage(lambda storage: storage.head())
            self._pruned = head.pruned_index
            self._set_confirmed(head.index)

    async def _follow(self) -> None:
        """Track the confirmed index as the node applies milestones (the coordinator's too)."""
        while True:
            with self._node.subscribe(1024) as notices:
                async for notice in notices:
                    self._set_confirmed(notice.confirmed.record.index)
