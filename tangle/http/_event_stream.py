"""One event stream of the HTTP API: a `text/event-stream` response fed by its own node
subscription, resumed from the hub's history when the client names its `Last-Event-ID` (the
events and ids are described in `_api_events.py`)."""

from __future__ import annotations

import contextlib
import copy
from typing import TYPE_CHECKING, Any, Final

import trio
from starlette.responses import Response

from tangle.ledger.ledger import Conflict

from . import _events as _api_events
from ._components import _BECH32, _ID, _UINT, _array, _object, _ref
from ._events import format_event, parse_event_id
from ._request import error_response
from .explorer._live import arrival_event

if TYPE_CHECKING:
    from collections.abc import Iterable

    from starlette.types import Message, Receive, Scope, Send

    from tangle.node.node import Arrival, Node, Notice
    from tangle.protocol.ids import Address

    from ._events import EventHub
    from .explorer import Timeline

RECORDER_WAIT_S: Final = 1.0
"""How long a resuming stream waits for the hub to record a milestone the node just applied."""
LIVE_BUFFER: Final = 1024
"""Batches of arrivals a live stream may fall behind before the node drops it."""


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
        client: str,
        last_event_id: str | None,
        buffer: int,
        keepalive_s: float,
        live: Timeline | None = None,
    ) -> None:
        # Like Starlette's StreamingResponse: no body, so no Content-Length.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._hub = hub
        self._node = node
        self._addresses = frozenset(addresses)
        self._client = client
        self._last_event_id = last_event_id
        self._buffer = buffer
        self._keepalive_s = keepalive_s
        self._live = live
        self._sending = trio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Counted here, with no checkpoint between the check and the count, so that a burst of
        # requests cannot all pass the check before any of them is counted.
        refused = self._hub.admit(self._client)
        if refused is not None:
            response = error_response("too_many_streams", refused, 429, {"Retry-After": "5"})
            await response(scope, receive, send)
            return
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._until_disconnect, receive, nursery.cancel_scope)
                # The client may go away while a chunk is sent.
                with contextlib.suppress(
                    OSError, trio.BrokenResourceError, trio.ClosedResourceError
                ):
                    await self._stream(send)
                nursery.cancel_scope.cancel()
        finally:
            self._hub.leave(self._client)

    @staticmethod
    async def _until_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                scope.cancel()
                return

    async def _stream(self, send: Send) -> None:
        hub = self._hub
        live = self._live
        watch: contextlib.AbstractContextManager[trio.MemoryReceiveChannel[Arrival] | None] = (
            contextlib.nullcontext() if live is None else self._node.watch_arrivals(LIVE_BUFFER)
        )
        with self._node.subscribe(self._buffer) as notices, watch as arrivals:
            hub.attach(notices)
            try:
                # Subscribed first: every milestone after `confirmed` arrives as a notice.
                confirmed = await self._node.read_core(lambda core: core.confirmed_index)
                await send(
                    {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
                )
                missed = await self._missed(confirmed)
                await self._body(send, b"retry: 5000\n: connected\n\n" + b"".join(missed))
                async with trio.open_nursery() as nursery:
                    if live is not None and arrivals is not None:
                        nursery.start_soon(
                            self._arrivals, send, arrivals, live, nursery.cancel_scope
                        )
                    await self._events(send, notices, confirmed)
                    nursery.cancel_scope.cancel()
            finally:
                hub.detach(notices)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _missed(self, confirmed: int) -> list[bytes]:
        """What a resuming client missed up to `confirmed`, or a `reset` if that is lost."""
        text = self._last_event_id
        if text is None or not text.strip():
            return []
        place = parse_event_id(text.strip())
        if place is not None:
            index, position = place
            if index < confirmed or position is not None:
                await self._hub.until_recorded(confirmed, RECORDER_WAIT_S)
            replayed = self._hub.replay(index, position, confirmed, self._addresses)
            if replayed is not None:
                return replayed
        reset = {
            "reason": "the events after Last-Event-ID are no longer held; re-read the state",
            "confirmed_milestone_index": confirmed,
        }
        return [format_event("reset", reset, str(confirmed))]

    async def _events(
        self, send: Send, notices: trio.MemoryReceiveChannel[Notice], confirmed: int
    ) -> None:
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
            if notice.confirmed.record.index <= confirmed:
                continue  # applied before this stream began: sent as missed, or not wanted
            # One chunk per milestone: a send per event costs more than the event itself.
            chunk = self._hub.record(notice).after(None, self._addresses)
            await self._body(send, b"".join(chunk))

    async def _arrivals(
        self,
        send: Send,
        arrivals: trio.MemoryReceiveChannel[Arrival],
        live: Timeline,
        scope: trio.CancelScope,
    ) -> None:
        """Send each batch of accepted messages as a `messages` event (`explorer/_live.py`)."""
        async for arrival in arrivals:
            await self._body(send, arrival_event(arrival, live))
        dropped = {"reason": "the client read too slowly; reconnect"}
        await self._body(send, format_event("dropped", dropped))
        scope.cancel()

    async def _body(self, send: Send, chunk: bytes) -> None:
        async with self._sending:  # the milestone and the live task share the response
            await send({"type": "http.response.body", "body": chunk, "more_body": True})


# -- the events in the OpenAPI document ----------------------------------------------------------

_EVENT_DATA: Final[dict[str, dict[str, Any]]] = {
    "MilestoneEvent": _object(
        {
            "index": _UINT,
            "milestone_id": _ID,
            "message_id": _ID,
            "timestamp_ms": _UINT,
            "ledger_state_hash": _ID,
            "referenced": _UINT,
            "included": _UINT,
            "conflicting": _UINT,
            "registry_root": _ID,
            "device_records": _UINT,
            "device_conflicts": _UINT,
            "devices": _array(_ID),
            "applied_at_ms": _UINT,
        }
    ),
    "TransactionEvent": _object(
        {
            "message_id": _ID,
            "transaction_id": _ID,
            "milestone_index": _UINT,
            "inclusion": {"enum": ["included", "conflicting"]},
            "conflict": {"enum": [c.name.lower() for c in Conflict]},
            "addresses": _array(_BECH32),
            "addresses_hex": _array(_ID),
        }
    ),
    "ResetEvent": _object({"reason": {"type": "string"}, "confirmed_milestone_index": _UINT}),
    "DroppedEvent": _object({"reason": {"type": "string"}}),
}
_EVENT_NAMES: Final = {
    "MilestoneEvent": "milestone",
    "TransactionEvent": "transaction",
    "ResetEvent": "reset",
    "DroppedEvent": "dropped",
}


def with_events(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with the event stream's events described: one schema per event type for the
    `data` of each, and the stream's items as a server-sent event parser reads them (`event`,
    `data` as JSON text, `id`, `retry`)."""
    out = copy.deepcopy(document)
    out["components"]["schemas"].update(_EVENT_DATA)
    item = {
        "oneOf": [
            _object(
                {
                    "event": {"const": name},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": _ref(schema),
                    },
                },
                {
                    "id": {"type": "string", "pattern": "^[0-9]{1,10}(\\.[0-9]{1,6})?$"},
                    "retry": _UINT,
                },
            )
            for schema, name in _EVENT_NAMES.items()
        ]
    }
    operation = out["paths"]["/api/v1/events"]["get"]
    operation["description"] = _api_events.__doc__
    operation["parameters"].append(
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "description": "the id of the last event received, to resume after it",
            "schema": {"type": "string", "maxLength": 64},
        }
    )
    operation["responses"]["200"]["content"] = {"text/event-stream": {"schema": item}}
    return out
