"""The node's server-sent event stream, parsed and resumed across reconnects."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Self

import anyio
import httpx

from tangle.ledger.events import TransactionEvent
from tangle.ledger.ledger import Conflict, Inclusion
from tangle.protocol.ids import (
    Address,
    MessageId,
    MilestoneId,
    TransactionId,
)

from .errors import (
    EventStreamError,
    InvalidResponseError,
)

if TYPE_CHECKING:
    import random
    from collections.abc import AsyncIterator, Awaitable, Callable

    from .config import RetryPolicy


from ._responses import Doc, MilestoneEvent, NodeEvent, describe, fixed


class _Reset(Exception):
    """The node cannot replay what this stream missed (a `reset` event)."""


class EventReader:
    """Server-sent events of one stream, parsed; iterate with `async for`. A stream that breaks,
    ends or is dropped by the node for reading too slowly is opened again with `Last-Event-ID`
    (as the `RetryPolicy` allows), and the node sends what was missed: nothing is lost across
    a reconnect. It never ends quietly: when the stream cannot be resumed, or the node answers
    `reset` (it no longer holds what was missed), it raises `EventStreamError`, and the caller
    re-reads the state it follows (balances, metadata) before following events again."""

    __slots__ = ("_connection", "_last_event_id", "_lines", "_open", "_request", "_retry", "_rng")

    def __init__(
        self,
        request: str,
        open_lines: Callable[
            [str | None, contextlib.AsyncExitStack], Awaitable[AsyncIterator[str]]
        ],
        *,
        last_event_id: str | None,
        retry: RetryPolicy,
        rng: random.Random,
    ) -> None:
        self._request = request
        self._open = open_lines
        self._last_event_id = last_event_id
        self._retry = retry
        self._rng = rng
        self._connection = contextlib.AsyncExitStack()
        self._lines: AsyncIterator[str] | None = None

    @property
    def last_event_id(self) -> str | None:
        """The id of the last event received (what a reconnect resumes after)."""
        return self._last_event_id

    async def connect(self) -> None:
        """(Re)open the stream, after the last event received if there was one."""
        await self.aclose()
        self._connection = contextlib.AsyncExitStack()
        self._lines = await self._open(self._last_event_id, self._connection)

    async def aclose(self) -> None:
        await self._connection.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> NodeEvent:
        failures = 0
        while True:
            try:
                return await self._next()
            except _Reset:
                raise EventStreamError(
                    self._request, "the node no longer holds the events missed; re-read the state"
                ) from None
            except EventStreamError:
                if self._last_event_id is None or failures + 1 >= self._retry.attempts:
                    raise
            await anyio.sleep(self._retry.delay(failures, self._rng))
            failures += 1
            with contextlib.suppress(EventStreamError):  # tried again above, as allowed
                await self.connect()

    async def _next(self) -> NodeEvent:
        if self._lines is None:
            raise EventStreamError(self._request, "the stream could not be opened again")
        name = ""
        event_id: str | None = None
        data: list[str] = []
        while True:
            try:
                line = await anext(self._lines)
            except StopAsyncIteration:
                raise EventStreamError(self._request, "the stream ended") from None
            except httpx.HTTPError as exc:
                raise EventStreamError(self._request, describe(exc)) from None
            if line:
                if not line.startswith(":"):
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if field == "event":
                        name = value
                    elif field == "data":
                        data.append(value)
                    elif field == "id" and "\0" not in value:
                        event_id = value
                continue
            if event_id is not None:  # an event is received when its blank line is
                self._last_event_id = event_id
            if not name and not data:
                continue
            event = self._event(name or "message", "\n".join(data))
            name, event_id, data = "", None, []
            if event is not None:
                return event

    def _event(self, name: str, data: str) -> NodeEvent | None:
        request = self._request
        if name == "dropped":
            raise EventStreamError(request, "the node dropped this stream (read too slowly)")
        if name == "reset":
            raise _Reset()
        if name not in ("milestone", "transaction"):
            return None
        try:
            doc = Doc(request, json.loads(data))
        except (ValueError, RecursionError):
            raise InvalidResponseError(request, f"a {name} event is not JSON") from None
        if name == "milestone":
            return MilestoneEvent(
                index=doc.integer("index"),
                milestone_id=fixed(request, MilestoneId, doc.hexbytes("milestone_id")),
                message_id=fixed(request, MessageId, doc.hexbytes("message_id")),
                timestamp_ms=doc.integer("timestamp_ms"),
            )
        try:
            inclusion = Inclusion[doc.enum_name("inclusion")]
            conflict = Conflict[doc.enum_name("conflict")]
        except KeyError:
            raise InvalidResponseError(request, "unknown inclusion or conflict") from None
        addresses = []
        for item in doc.items("addresses_hex"):
            if not isinstance(item, str):
                raise InvalidResponseError(request, "an address is not a string")
            try:
                addresses.append(fixed(request, Address, bytes.fromhex(item)))
            except ValueError:
                raise InvalidResponseError(request, "an address is not hex") from None
        return TransactionEvent(
            message_id=fixed(request, MessageId, doc.hexbytes("message_id")),
            transaction_id=fixed(request, TransactionId, doc.hexbytes("transaction_id")),
            milestone_index=doc.integer("milestone_index"),
            inclusion=inclusion,
            conflict=conflict,
            addresses=frozenset(addresses),
        )
