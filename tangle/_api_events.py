"""The server-sent event stream of the HTTP API (`GET /api/v1/events`): the node's milestone
notices and the transactions they confirmed.

**Event stream** (`text/event-stream`, one stream per `GET /api/v1/events`):

```
event: milestone     data: {"index", "milestone_id", "message_id", "timestamp_ms",
                            "ledger_state_hash", "referenced", "included", "conflicting"}
event: transaction   data: {"message_id", "transaction_id", "milestone_index", "inclusion",
                            "conflict", "addresses"}
event: dropped       data: {"reason"}         the node dropped this slow client; the stream ends
: keep-alive                                  a comment every `keepalive_s` without an event
```

Every milestone is sent, after the `transaction` events of what it confirmed: a `transaction`
event is sent for each transaction message the milestone
included or marked conflicting, or, when the client named addresses, only for those touching one
of them. A transaction touches the addresses of the outputs it creates and of the outputs it
spends: for an included one, the addresses of its outputs and of the outputs the ledger diff says
it consumed; for a conflicting one (its inputs may not exist), the addresses of its outputs and of
the keys in its signature unlocks. Each stream is its own bounded `Node.subscribe` subscription:
a client that reads too slowly is dropped by the node, never slows it down; it receives what was
buffered, then `dropped`. The transaction events of a milestone are derived once for all streams,
from the transactions the node's core holds (`Confirmed.transactions`, no storage read), and
cached, formatted, for the last few milestones.
"""

from __future__ import annotations

import contextlib
import json
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final

import trio
from starlette.responses import Response

from .events import TransactionEvent
from .ledger import Conflict, Inclusion
from .transaction import SignatureUnlock, address_of

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from starlette.types import Message, Receive, Scope, Send

    from .bech32 import Network
    from .core import Confirmed
    from .ids import Address, TransactionId
    from .node import Node, Notice

CACHED_MILESTONES: Final = 16


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


def milestone_data(notice: Notice) -> dict[str, Any]:
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
    }


def format_event(event: str, data: Mapping[str, Any]) -> bytes:
    """One server-sent event (the JSON has no newlines, so one `data:` line)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class EventHub:
    """What the event streams of one app share: their count, and each milestone's transaction
    events, derived and formatted once."""

    __slots__ = ("_done", "_network", "_streams")

    def __init__(self, network: Network) -> None:
        self._network = network
        self._streams: set[trio.MemoryReceiveChannel[Notice]] = set()
        self._done: OrderedDict[int, tuple[tuple[TransactionEvent, bytes], ...]] = OrderedDict()

    @property
    def streams(self) -> int:
        return len(self._streams)

    def attach(self, notices: trio.MemoryReceiveChannel[Notice]) -> None:
        self._streams.add(notices)

    def detach(self, notices: trio.MemoryReceiveChannel[Notice]) -> None:
        self._streams.discard(notices)

    def queued(self) -> int:
        """Notices waiting in the streams' subscriptions."""
        return sum(s.statistics().current_buffer_used for s in self._streams)

    def transactions(self, confirmed: Confirmed) -> tuple[tuple[TransactionEvent, bytes], ...]:
        """The milestone's transaction events, each with its server-sent event."""
        index = confirmed.record.index
        done = self._done.get(index)
        if done is None:
            done = self._done[index] = tuple(
                (event, format_event("transaction", event.data(self._network)))
                for event in transaction_events(confirmed)
            )
            while len(self._done) > CACHED_MILESTONES:
                self._done.popitem(last=False)
        return done


class EventStream(Response):
    """A `text/event-stream` response fed by its own node subscription until the client leaves
    or is dropped."""

    media_type = "text/event-stream"

    def __init__(
        self,
        hub: EventHub,
        node: Node,
        addresses: Iterable[Address],
        *,
        buffer: int,
        keepalive_s: float,
    ) -> None:
        # Like Starlette's StreamingResponse: no body, so no Content-Length.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._hub = hub
        self._node = node
        self._addresses = frozenset(addresses)
        self._buffer = buffer
        self._keepalive_s = keepalive_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._until_disconnect, receive, nursery.cancel_scope)
            # The client may go away while a chunk is sent.
            with contextlib.suppress(OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                await self._stream(send)
            nursery.cancel_scope.cancel()

    @staticmethod
    async def _until_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                scope.cancel()
                return

    async def _stream(self, send: Send) -> None:
        hub = self._hub
        with self._node.subscribe(self._buffer) as notices:
            hub.attach(notices)
            try:
                await send(
                    {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
                )
                await self._body(send, b"retry: 5000\n: connected\n\n")
                await self._events(send, notices)
            finally:
                hub.detach(notices)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _events(self, send: Send, notices: trio.MemoryReceiveChannel[Notice]) -> None:
        while True:
            notice: Notice | None = None
            try:
                with trio.move_on_after(self._keepalive_s):
                    notice = await notices.receive()
            except trio.EndOfChannel:
                dropped = {"reason": "the client read too slowly; reconnect"}
                await self._body(send, format_event("dropped", dropped))
                return
            if notice is None:
                await self._body(send, b": keep-alive\n\n")
                continue
            # One chunk per milestone: a send per event costs more than the event itself.
            chunk = [
                sse
                for event, sse in self._hub.transactions(notice.confirmed)
                if not self._addresses or event.addresses & self._addresses
            ]
            chunk.append(format_event("milestone", milestone_data(notice)))
            await self._body(send, b"".join(chunk))

    @staticmethod
    async def _body(send: Send, chunk: bytes) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
