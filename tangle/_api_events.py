"""What the HTTP API observes: the server-sent event stream of the node's milestone notices, the
confirmation latency of messages submitted through the API, and the Prometheus exposition of
those and of the node's own counters (`GET /metrics`, text format 0.0.4).

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

from tangle.ledger.ledger import Conflict, Inclusion
from tangle.protocol.transaction import SignatureUnlock, address_of
from tangle.window.dag import Score

from .events import TransactionEvent

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from starlette.types import Message, Receive, Scope, Send

    from tangle.node.core import Confirmed, NodeCore
    from tangle.node.node import Node, Notice
    from tangle.protocol.ids import Address, MessageId, TransactionId
    from tangle.protocol.message import Parsed

CACHED_MILESTONES: Final = 16
LATENCY_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


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

    __slots__ = ("_done", "_streams")

    def __init__(self) -> None:
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
                (event, format_event("transaction", event.data()))
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


class Histogram:
    """A Prometheus histogram: cumulative counts per upper bound, sum and count."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1


class LatencyTracker:
    """Confirmation latency of messages submitted through the API: submit to the notice of the
    milestone that referenced them, on the trio clock. Remembers at most `capacity` unconfirmed
    messages (the oldest are forgotten: lazy ones never confirm)."""

    __slots__ = ("_capacity", "_submitted", "histogram", "resubscribed")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._submitted: dict[MessageId, float] = {}
        self.histogram = Histogram(LATENCY_BUCKETS)
        self.resubscribed = 0

    @property
    def waiting(self) -> int:
        return len(self._submitted)

    def submitted(self, message_id: MessageId, at: float) -> None:
        self._submitted[message_id] = at
        while len(self._submitted) > self._capacity:
            del self._submitted[next(iter(self._submitted))]

    def confirmed(self, notice: Notice) -> None:
        submitted = self._submitted
        if not submitted:
            return
        for message_id in notice.confirmed.result.referenced:
            at = submitted.pop(message_id, None)
            if at is not None:
                self.histogram.observe(max(0.0, notice.applied_at - at))

    async def run(
        self, node: Node, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Follow the node's notices for ever (subscribing again if dropped)."""
        while True:
            with node.subscribe(1024) as notices:
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                async for notice in notices:
                    self.confirmed(notice)
            self.resubscribed += 1
            await trio.lowlevel.checkpoint()


class Telemetry:
    """What one app counts and observes, and its Prometheus exposition."""

    __slots__ = ("hub", "latency", "responses", "submissions")

    def __init__(self, node: Node, latency_tracked: int) -> None:
        self.hub = EventHub()
        self.latency = LatencyTracker(latency_tracked)
        self.submissions = {"accepted": 0, "rejected": 0}
        self.responses: dict[str, int] = {}

    def submitted(self, parsed: Parsed | None) -> None:
        """A message submitted through the API: accepted (`parsed`) or refused (None)."""
        if parsed is None:
            self.submissions["rejected"] += 1
            return
        self.submissions["accepted"] += 1
        self.latency.submitted(parsed.id, trio.current_time())

    def responded(self, status: int | None) -> None:
        key = "disconnected" if status is None else str(status)
        self.responses[key] = self.responses.get(key, 0) + 1

    async def exposition(
        self,
        node: Node,
        *,
        peers: int | None,
        gossip: Mapping[str, float] | None,
        pow_in_flight: int,
    ) -> str:
        window = await node.read_core(_window_figures)
        counters = node.counters
        out = _Exposition()
        for name, help_text, value in (
            ("messages_accepted", "Messages the node accepted.", counters.messages_accepted),
            ("messages_rejected", "Messages the node refused.", counters.messages_rejected),
            ("milestones_applied", "Milestones applied.", counters.milestones_applied),
            ("transactions_included", "Transactions included.", counters.transactions_included),
            (
                "transactions_conflicting",
                "Transactions conflicting.",
                counters.transactions_conflicting,
            ),
            ("subscribers_dropped", "Slow subscribers dropped.", counters.subscribers_dropped),
        ):
            out.add(f"tangle_{name}_total", "counter", help_text, [({}, value)])
        for name, help_text, gauge in (
            ("confirmed_milestone_index", "Confirmed milestone index.", window["confirmed"]),
            ("latest_milestone_index", "Highest milestone index seen.", window["latest"]),
            ("window_messages", "Messages in the in-memory window.", window["window"]),
            ("pending_messages", "Messages waiting for their parents.", window["pending"]),
            ("missing_messages", "Parents requested, not yet received.", window["missing"]),
            ("peers", "Peers (absent without peering).", peers),
            ("api_event_streams", "Open event streams.", self.hub.streams),
            ("api_event_queue_depth", "Notices queued for event streams.", self.hub.queued()),
            ("api_pow_in_flight", "Proofs-of-work running for clients.", pow_in_flight),
            ("api_latency_waiting", "API submissions not yet confirmed.", self.latency.waiting),
        ):
            if gauge is not None:
                out.add(f"tangle_{name}", "gauge", help_text, [({}, gauge)])
        for key, figure in sorted((gossip or {}).items()):
            kind = "counter" if key.endswith("_total") else "gauge"
            about = f"Gossip: {key.replace('_', ' ')}."
            out.add(f"tangle_gossip_{key}", kind, about, [({}, figure)])
        tips = [({"score": s.name.lower()}, window[f"tips_{s.name.lower()}"]) for s in Score]
        out.add("tangle_tips", "gauge", "Tips by score.", tips)
        submissions = [({"outcome": k}, v) for k, v in self.submissions.items()]
        out.add(
            "tangle_api_messages_submitted_total",
            "counter",
            "Messages submitted through the API, by outcome.",
            submissions,
        )
        responses = [({"status": k}, v) for k, v in sorted(self.responses.items())]
        out.add("tangle_api_responses_total", "counter", "API responses by status.", responses)
        out.histogram(
            "tangle_api_confirmation_latency_seconds",
            "Submit (through the API) to the milestone notice.",
            self.latency.histogram,
        )
        return out.text()


def _window_figures(core: NodeCore) -> dict[str, int]:
    dag = core.dag
    return {
        "confirmed": core.confirmed_index,
        "latest": core.latest_index,
        "window": len(dag),
        "pending": dag.pending_count(),
        "missing": len(dag.missing()),
        **{f"tips_{s.name.lower()}": len(dag.tip_rows(s)) for s in Score},
    }


class _Exposition:
    """Lines of the Prometheus text format 0.0.4."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(
        self, name: str, kind: str, help_text: str, samples: Sequence[tuple[dict[str, str], float]]
    ) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.lines += [f"{name}{_labels(labels)} {value}" for labels, value in samples]

    def histogram(self, name: str, help_text: str, h: Histogram) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        for bound, count in zip(h.bounds, h.counts, strict=True):
            self.lines.append(f'{name}_bucket{{le="{bound!r}"}} {count}')
        self.lines += [
            f'{name}_bucket{{le="+Inf"}} {h.count}',
            f"{name}_sum {h.total!r}",
            f"{name}_count {h.count}",
        ]

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    escaped = (
        (k, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
        for k, v in labels.items()
    )
    return "{" + ",".join(f'{k}="{v}"' for k, v in escaped) + "}"
