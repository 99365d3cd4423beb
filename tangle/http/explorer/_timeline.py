"""What the explorer remembers beyond storage, in bounded memory: when this node received each
recent message, and the cone of each milestone applied since the node started with when it was
applied (together the arrival-to-confirmation time storage does not keep), the latest
transactions of each address, the payment channels recent transactions opened or touched, the
latest refusals, and (`notes`, see `_notes.py`) the ledger's anchors and device records.

Fed by the node's arrival watch (`Node.watch_arrivals`) and milestone notices
(`Node.subscribe`); times are wall-clock Unix milliseconds, from the `wall` clock passed in,
converted from the node's trio timestamps.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import trio

from tangle.protocol.channel import ChannelOutput, ChannelUnlock
from tangle.protocol.device import DeviceRecord
from tangle.protocol.milestone import Milestone
from tangle.protocol.transaction import Transaction

from .._schema import tangle_error_code
from ._notes import Notes
from ._notes import put as _put

if TYPE_CHECKING:
    from collections.abc import Callable

    from tangle.ledger.events import TransactionEvent
    from tangle.node.node import Arrival, Node, Notice
    from tangle.protocol.ids import Address, ChannelId, MessageId

    from .._events import EventHub

MESSAGES_KEPT: Final = 100_000
"""Messages whose arrival times are remembered (the oldest are forgotten): 90 s at the network's
1,100 transfers a second, longer than a transfer takes to confirm; at most about 20 MB."""
MILESTONES_KEPT: Final = 10_000
RECENT_KEPT: Final = 2_000
"""The latest messages kept with their parents and state, for a live view that opens."""
ADDRESSES_KEPT: Final = 10_000
"""Addresses whose latest transactions are remembered (the least recently touched go first)."""
HISTORY_PER_ADDRESS: Final = 100
CHANNELS_KEPT: Final = 1_024
REFUSALS_KEPT: Final = 1_024


@dataclass(frozen=True, slots=True, kw_only=True)
class Cone:
    """One applied milestone's cone, as counted when the node applied it."""

    index: int
    referenced: int
    """Messages it newly referenced (its cone)."""
    included: int
    conflicting: int
    applied_ms: int
    """Unix ms this node applied it."""
    timestamp_ms: int
    """Its issuance time."""


@dataclass(slots=True, kw_only=True)
class Recent:
    """One of the latest messages, as the live view draws it."""

    id: MessageId
    parents: tuple[MessageId, ...]
    kind: str
    """`transaction`, `tagged_data` or `milestone`."""
    index: int | None
    """A milestone's index."""
    at_ms: int
    """When this node stored it."""
    state: str
    """`pending`, `solid`, `referenced`, `included` or `conflicting`."""
    referenced_by: int | None = None
    """The milestone that referenced it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelSeen:
    """A payment channel a confirmed transaction opened or unlocked."""

    channel_id: ChannelId
    last_op: str
    """`open`, or the unlock's operation (`pay`, `close`, `challenge`, ...)."""
    milestone_index: int
    """The milestone that confirmed it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """A message this node refused."""

    message_id: MessageId
    """The id its bytes would have."""
    code: str
    """The error code (`_schema.error_code_of`)."""
    reason: str
    at_ms: int


class Timeline:
    """The explorer's bounded memory of one node (see the module docstring)."""

    __slots__ = (
        "_arrived",
        "_channels",
        "_cones",
        "_encoded",
        "_histories",
        "_hub",
        "_recent",
        "_refusals",
        "_wall",
        "notes",
    )

    def __init__(self, wall: Callable[[], float], hub: EventHub) -> None:
        self._wall = wall
        self._hub = hub
        self._histories: OrderedDict[Address, deque[TransactionEvent]] = OrderedDict()
        self._arrived: OrderedDict[MessageId, int] = OrderedDict()
        self._cones: OrderedDict[int, Cone] = OrderedDict()
        self._recent: OrderedDict[MessageId, Recent] = OrderedDict()
        self._channels: OrderedDict[ChannelId, ChannelSeen] = OrderedDict()
        self._refusals: OrderedDict[MessageId, Refusal] = OrderedDict()
        self._encoded: OrderedDict[int, tuple[Arrival, bytes]] = OrderedDict()
        self.notes = Notes()
        """Anchors and device records (`_notes.py`)."""

    def encoded(self, arrival: Arrival, encode: Callable[[Arrival], bytes]) -> bytes:
        """`encode(arrival)`, computed once for all the live streams that send it (each gets
        the same `Arrival` object); the last 64 are kept."""
        held = self._encoded.get(id(arrival))
        if held is not None and held[0] is arrival:
            return held[1]
        chunk = encode(arrival)
        _put(self._encoded, id(arrival), (arrival, chunk), 64)
        return chunk

    def wall_ms(self, trio_time: float) -> int:
        """A trio timestamp of the past as Unix milliseconds."""
        return round((self._wall() - (trio.current_time() - trio_time)) * 1000)

    # -- what the node reports --------------------------------------------------------------

    def arrived(self, arrival: Arrival) -> None:
        at = self.wall_ms(arrival.at)
        solid = set(arrival.solid)
        for parsed in arrival.accepted:
            _put(self._arrived, parsed.id, at, MESSAGES_KEPT)
            payload = parsed.message.payload
            recent = Recent(
                id=parsed.id,
                parents=parsed.message.parents,
                kind=kind_of(payload),
                index=payload.essence.index if isinstance(payload, Milestone) else None,
                at_ms=at,
                state="solid" if parsed.id in solid else "pending",
            )
            _put(self._recent, parsed.id, recent, RECENT_KEPT)
            self.notes.arrived(parsed, at)
        for message_id in solid:
            found = self._recent.get(message_id)
            if found is not None and found.state == "pending":
                found.state = "solid"
        for message_id, error in arrival.rejected:
            refusal = Refusal(
                message_id=message_id, code=tangle_error_code(error), reason=str(error), at_ms=at
            )
            _put(self._refusals, message_id, refusal, REFUSALS_KEPT)

    def confirmed(self, notice: Notice) -> None:
        confirmed = notice.confirmed
        record, result = confirmed.record, confirmed.result
        at = self.wall_ms(notice.applied_at)
        cone = Cone(
            index=record.index,
            referenced=len(result.referenced),
            included=len(result.included),
            conflicting=len(result.conflicts),
            applied_ms=at,
            timestamp_ms=record.timestamp_ms,
        )
        _put(self._cones, record.index, cone, MILESTONES_KEPT)
        self.notes.confirmed(record.index, result)
        for event, _ in self._hub.record(notice).transactions:  # derived once, for all
            for address in event.addresses:
                kept = self._histories.get(address)
                if kept is None:
                    kept = deque(maxlen=HISTORY_PER_ADDRESS)
                kept.appendleft(event)
                _put(self._histories, address, kept, ADDRESSES_KEPT)
        included = set(result.included)
        conflicting = {message_id for message_id, _ in result.conflicts}
        for message_id in result.referenced:
            found = self._recent.get(message_id)
            if found is not None:
                found.referenced_by = record.index
                found.state = (
                    "included"
                    if message_id in included
                    else "conflicting"
                    if message_id in conflicting
                    else "referenced"
                )
        for message_id, transaction in confirmed.transactions.items():
            if message_id in included:
                self._channels_of(transaction, record.index)

    def _channels_of(self, transaction: Transaction, index: int) -> None:
        for unlock in transaction.unlocks:
            if isinstance(unlock, ChannelUnlock):
                op = unlock.op.name.lower()
                seen = ChannelSeen(channel_id=unlock.channel_id, last_op=op, milestone_index=index)
                _put(self._channels, unlock.channel_id, seen, CHANNELS_KEPT)
        for output in transaction.essence.outputs:
            if isinstance(output, ChannelOutput) and output.channel_id not in self._channels:
                seen = ChannelSeen(
                    channel_id=output.channel_id, last_op="open", milestone_index=index
                )
                _put(self._channels, output.channel_id, seen, CHANNELS_KEPT)

    # -- what the pages read ----------------------------------------------------------------

    def arrived_ms(self, message_id: MessageId) -> int | None:
        """When this node stored the message, Unix ms (None: before it started, or forgotten);
        when it was confirmed is its milestone's `Cone.applied_ms`."""
        return self._arrived.get(message_id)

    def recent(self) -> list[Recent]:
        """The latest messages, oldest first."""
        return list(self._recent.values())

    def history(self, address: Address) -> list[TransactionEvent]:
        """The latest transactions touching `address` since the node started, newest first."""
        return list(self._histories.get(address, ()))

    def cone(self, index: int) -> Cone | None:
        return self._cones.get(index)

    def channels(self) -> list[ChannelSeen]:
        """The channels seen, most recently touched first."""
        return list(reversed(self._channels.values()))

    def refusals(self, count: int) -> list[Refusal]:
        """The latest `count` refusals, newest first."""
        return list(itertools.islice(reversed(self._refusals.values()), count))

    def refusal(self, message_id: MessageId) -> Refusal | None:
        """Why this node refused the message, if it did lately."""
        return self._refusals.get(message_id)

    # -- following the node -----------------------------------------------------------------

    async def run(
        self, node: Node, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Follow the node's arrivals and milestones for ever (watching again if dropped)."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._follow_arrivals, node)
            await nursery.start(self._follow_milestones, node)
            task_status.started()

    async def _follow_arrivals(
        self, node: Node, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        while True:
            with node.watch_arrivals(1024) as arrivals:
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                async for arrival in arrivals:
                    self.arrived(arrival)
            await trio.lowlevel.checkpoint()

    async def _follow_milestones(
        self, node: Node, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        while True:
            with node.subscribe(1024) as notices:
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                async for notice in notices:
                    self.confirmed(notice)
            await trio.lowlevel.checkpoint()


def kind_of(payload: object) -> str:
    """The payload's type as the API names it."""
    if isinstance(payload, Transaction):
        return "transaction"
    if isinstance(payload, Milestone):
        return "milestone"
    if isinstance(payload, DeviceRecord):
        return "device_record"
    return "tagged_data"
