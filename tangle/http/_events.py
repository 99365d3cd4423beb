"""The server-sent event stream of the HTTP API (`GET /api/v1/events`): the node's milestone
notices and the transactions they confirmed, and what lets a client resume it.

```
id: N.k  event: transaction   data: {"message_id", "transaction_id", "milestone_index",
                                     "inclusion", "conflict", "addresses", "addresses_hex"}
id: N    event: milestone     data: {"index", "milestone_id", "message_id", "timestamp_ms",
                                     "ledger_state_hash", "referenced", "included",
                                     "conflicting", "registry_root", "device_records",
                                     "device_conflicts", "devices", "applied_at_ms"}
id: C    event: reset         data: {"reason", "confirmed_milestone_index"}
         event: dropped       data: {"reason"}   the node dropped this slow client; it ends
: keep-alive                                     a comment every `keepalive_s` without an event
```

A milestone event names the registry root it leaves, how many device registry records it applied and
refused, and the devices whose entries it changed (`GET /api/v1/devices/{id}` tells what changed).
Every milestone is sent, after the `transaction` events of what it confirmed: a `transaction` event
is sent for each transaction message the milestone included or marked conflicting, or, when the
client named addresses, only for those touching one of them. A transaction touches the addresses of
the outputs it creates and of the outputs it spends: for an included one, the addresses of its
outputs and of the outputs the ledger diff says it consumed; for a conflicting one (its inputs may
not exist), the addresses of its outputs and of the keys in its signature unlocks. Each stream is
its own bounded `Node.subscribe` subscription: a client that reads too slowly is dropped by the
node, never slows it down; it receives what was buffered, then `dropped`.

**Resuming.** Event ids name a place in the node's history: `N.k` is the k-th transaction event
of milestone N (white-flag order, counted before any address filter), `N` the milestone event
that closes it. A client that reconnects with `Last-Event-ID` is first sent, from the hub's
history of the last `ApiConfig.event_history` milestones, every event after that place up to
the confirmed milestone, then the live events. When the history no longer holds all of it (the
client was away too long, the node restarted, the id is not one of this node's), the stream
starts with a `reset` event instead: the client must re-read the state it follows (balances,
metadata) as of milestone C, which is also the reset's id. A wallet never silently misses a
confirmation across a reconnect.

The events of a milestone are derived once for all streams, from the transactions the node's
core holds (`Confirmed.transactions`, no storage read), and kept, formatted, in that history.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import trio

from tangle.ledger.events import TransactionEvent
from tangle.ledger.ledger import Conflict, Inclusion
from tangle.protocol.transaction import SignatureUnlock, address_of

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from tangle.node.core import Confirmed
    from tangle.node.node import Node, Notice
    from tangle.protocol.bech32 import Network
    from tangle.protocol.ids import Address, TransactionId

EVENT_ID: Final = re.compile(r"[0-9]{1,10}(\.[0-9]{1,6})?")


def transaction_events(confirmed: Confirmed) -> tuple[TransactionEvent, ...]:
    """The transaction events of one milestone, in white-flag order."""
    result = confirmed.result
    index = confirmed.record.index
    consumed: dict[TransactionId, set[Address]] = {}
    for spend in result.diff.consumed:
        consumed.setdefault(spend.transaction_id, set()).add(spend.output.address)
    conflicts = dict(result.conflicts)
    included_ids = set(result.included)
    transactions = confirmed.transactions
    events = []
    for message_id in result.referenced:
        transaction = transactions.get(message_id)
        if transaction is None:
            continue
        included = message_id in included_ids
        touched = {o.address for o in transaction.essence.outputs}
        if included:
            touched |= consumed.get(transaction.id, set())
        else:
            touched |= {
                address_of(u.public_key)
                for u in transaction.unlocks
                if isinstance(u, SignatureUnlock)
            }
        events.append(
            TransactionEvent(
                message_id=message_id,
                transaction_id=transaction.id,
                milestone_index=index,
                inclusion=Inclusion.INCLUDED if included else Inclusion.CONFLICTING,
                conflict=conflicts.get(message_id, Conflict.NONE),
                addresses=frozenset(touched),
            )
        )
    return tuple(events)


def milestone_data(notice: Notice, applied_at_ms: int) -> dict[str, Any]:
    """The milestone event's data; `applied_at_ms`: when the node applied it, Unix ms."""
    confirmed = notice.confirmed
    record, result = confirmed.record, confirmed.result
    return {
        "index": record.index,
        "milestone_id": record.milestone_id.hex(),
        "message_id": record.message_id.hex(),
        "timestamp_ms": record.timestamp_ms,
        "ledger_state_hash": confirmed.state_hash.hex(),
        "referenced": len(result.referenced),
        "included": len(result.included),
        "conflicting": len(result.conflicts),
        "registry_root": result.registry.root.hex(),
        "device_records": len(result.records),
        "device_conflicts": len(result.record_conflicts),
        "devices": [e.device_id.hex() for e in result.registry.devices],
        "applied_at_ms": applied_at_ms,
    }


def format_event(event: str, data: Mapping[str, Any], event_id: str | None = None) -> bytes:
    """One server-sent event (the JSON has no newlines, so one `data:` line)."""
    text = json.dumps(data, separators=(",", ":"))
    first = "" if event_id is None else f"id: {event_id}\n"
    return f"{first}event: {event}\ndata: {text}\n\n".encode()


def parse_event_id(text: str) -> tuple[int, int | None] | None:
    """`N` -> (N, None), `N.k` -> (N, k); None for text that is not an event id."""
    if not EVENT_ID.fullmatch(text):
        return None
    index, _, position = text.partition(".")
    return int(index), int(position) if position else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    """One milestone's events, formatted with their ids."""

    transactions: tuple[tuple[TransactionEvent, bytes], ...]
    """Its transaction events, each with its server-sent event."""
    milestone: bytes
    """Its milestone event."""

    def after(self, position: int | None, addresses: frozenset[Address]) -> list[bytes]:
        """The events after transaction event `position` (None: before the first), those of
        transactions touching `addresses` only (all if it is empty)."""
        start = 0 if position is None else position + 1
        chunk = [
            sse
            for event, sse in self.transactions[start:]
            if not addresses or event.addresses & addresses
        ]
        chunk.append(self.milestone)
        return chunk


class EventHub:
    """What the event streams of one app share: their count (in all and per client), and the
    history of the last `capacity` milestones' events, derived and formatted once."""

    __slots__ = (
        "_capacity",
        "_clients",
        "_history",
        "_network",
        "_recorded",
        "_streams",
        "_wall",
        "max_per_client",
        "max_streams",
    )

    def __init__(
        self,
        network: Network,
        *,
        capacity: int,
        max_streams: int,
        max_per_client: int,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._network = network
        self._wall = wall
        self._capacity = capacity
        self.max_streams = max_streams
        self.max_per_client = max_per_client
        self._streams: set[trio.MemoryReceiveChannel[Notice]] = set()
        self._clients: dict[str, int] = {}
        self._history: dict[int, Recorded] = {}
        self._recorded = trio.Event()

    @property
    def streams(self) -> int:
        return sum(self._clients.values())

    def admit(self, client: str) -> str | None:
        """Count a new stream of `client`, or say why there is no room for it."""
        if self.streams >= self.max_streams:
            return "the node serves as many event streams as it allows"
        if self._clients.get(client, 0) >= self.max_per_client:
            return f"at most {self.max_per_client} event streams per client"
        self._clients[client] = self._clients.get(client, 0) + 1
        return None

    def leave(self, client: str) -> None:
        left = self._clients.pop(client) - 1
        if left:
            self._clients[client] = left

    def attach(self, notices: trio.MemoryReceiveChannel[Notice]) -> None:
        self._streams.add(notices)

    def detach(self, notices: trio.MemoryReceiveChannel[Notice]) -> None:
        self._streams.discard(notices)

    def queued(self) -> int:
        """Notices waiting in the streams' subscriptions."""
        return sum(s.statistics().current_buffer_used for s in self._streams)

    def record(self, notice: Notice) -> Recorded:
        """The milestone's events, formatted (and kept) the first time it is asked for."""
        index = notice.confirmed.record.index
        found = self._history.get(index)
        if found is None:
            events = transaction_events(notice.confirmed)
            found = self._history[index] = Recorded(
                transactions=tuple(
                    (event, format_event("transaction", event.data(self._network), f"{index}.{k}"))
                    for k, event in enumerate(events)
                ),
                milestone=format_event(
                    "milestone", milestone_data(notice, self._applied_ms(notice)), str(index)
                ),
            )
            while len(self._history) > self._capacity:  # the oldest milestone goes first
                del self._history[min(self._history)]
            self._recorded.set()
            self._recorded = trio.Event()
        return found

    def _applied_ms(self, notice: Notice) -> int:
        """When the node applied the notice's milestone, Unix ms."""
        return round((self._wall() - (trio.current_time() - notice.applied_at)) * 1000)

    async def until_recorded(self, index: int, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) until milestone `index` is in the history: the recorder
        may not have seen a milestone the node has just applied."""
        with trio.move_on_after(timeout_s):
            while self._history and max(self._history) < index:
                await self._recorded.wait()

    def replay(
        self, index: int, position: int | None, confirmed: int, addresses: frozenset[Address]
    ) -> list[bytes] | None:
        """The events after id `index[.position]` up to milestone `confirmed`; None when the
        history no longer holds them all."""
        if index > confirmed or confirmed - index > self._capacity:
            return None
        first = index + 1 if position is None else index
        if any(i not in self._history for i in range(first, confirmed + 1)):
            return None
        chunk: list[bytes] = []
        for i in range(first, confirmed + 1):
            chunk += self._history[i].after(position if i == index else None, addresses)
        return chunk

    async def run(
        self, node: Node, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Record every milestone for ever (subscribing again if dropped), so that a client
        that reconnects while no other stream is open still gets what it missed."""
        while True:
            with node.subscribe(1024) as notices:
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                async for notice in notices:
                    self.record(notice)
            await trio.lowlevel.checkpoint()
