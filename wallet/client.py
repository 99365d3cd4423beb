"""The HTTP client of one node: typed calls, error mapping, retries with backoff, and the
server-sent event stream.

Written on anyio through httpx, so the same client runs under trio and asyncio. The transport is
the seam: `NodeClient(url)` talks HTTP (httpx's default transport); tests pass
`httpx.ASGITransport(app)` over a real node's app, or any other `httpx.AsyncBaseTransport`.

**Errors.** No httpx exception leaves this module. A connection failure, a timeout or a 5xx
answer is retried (`RetryPolicy`: exponential backoff with jitter) and, when the attempts run
out, raised as `NodeUnavailableError`; a 429 is retried after its `Retry-After` and then raised
as `RateLimitedError`; any other 4xx is `RejectedError` with the node's error `code`
(`NotFoundError` for 404) and is never retried; an answer that does not parse is
`InvalidResponseError`. Messages name the request (`GET /api/v1/info`), never the node's URL,
which may carry credentials.

**Retries are safe** because every call is idempotent at the node: reads are, submitting the
same message bytes again is answered `duplicate_message` (which `submit` reports as success, the
id being the hash of the bytes), and a second proof-of-work request for a payload the node has
already attached is refused as `duplicate_payload`, which the caller can recognise.

**Events.** `events(addresses)` opens `GET /api/v1/events` and yields a reader of
`TransactionEvent`s and `MilestoneEvent`s. A stream that breaks, ends, or is dropped by the node
for reading too slowly is opened again with the `Last-Event-ID` of the last event received, and
the node sends what was missed; when it cannot (the node answers `reset`, or the retries run
out) the reader raises `EventStreamError` and the caller re-reads the state and polls.
"""

from __future__ import annotations

import contextlib
import json
import random
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

import anyio
import httpx

from tangle.channel import ChannelOutput
from tangle.errors import TangleError
from tangle.events import TransactionEvent
from tangle.ids import (
    Address,
    ChannelId,
    MessageId,
    MilestoneId,
    OutputId,
    PublicKey,
    TransactionId,
    blake2b_256,
)
from tangle.ledger import Conflict, Inclusion
from tangle.message import Parsed, decode_message
from tangle.payload import Payload, encode_payload

from .errors import (
    EventStreamError,
    InvalidResponseError,
    NodeUnavailableError,
    NodeUrlError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    WalletConfigError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
    from types import TracebackType

OCTETS: Final = "application/octet-stream"
_Id = TypeVar("_Id", bound=bytes)
_RETRIED_STATUSES: Final = frozenset({500, 502, 503, 504})


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a request is repeated."""

    attempts: int = 6
    """Tries in all (1: no retry)."""
    base_delay_s: float = 0.25
    """The first backoff; it doubles with each retry, up to `max_delay_s`, with jitter."""
    max_delay_s: float = 8.0
    """The longest backoff between two tries."""
    max_retry_after_s: float = 30.0
    """The longest `Retry-After` (429) honoured; a longer one ends the retries."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise WalletConfigError("RetryPolicy.attempts", "must be at least 1")
        if not 0 <= self.base_delay_s <= self.max_delay_s:
            raise WalletConfigError("RetryPolicy.base_delay_s", "must be in 0..max_delay_s")
        if self.max_retry_after_s < 0:
            raise WalletConfigError("RetryPolicy.max_retry_after_s", "must not be negative")

    def delay(self, retry: int, rng: random.Random) -> float:
        """The backoff before retry number `retry` (0 first): full size to half, at random."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0**retry)
        return ceiling * (0.5 + rng.random() / 2)


# -- typed answers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeInfo:
    """`GET /api/v1/info`: the node's status and the network's parameters."""

    network_id: int
    """The network the node follows."""
    confirmed_milestone_index: int
    """Its confirmed milestone."""
    latest_milestone_index: int
    """The highest milestone it has seen."""
    healthy: bool
    """Whether its confirmed milestone is recent: it follows a live network."""
    work_per_kib: int
    """Proof-of-work hashes expected per KiB."""
    min_output_amount: int
    """The least an output may hold (dust deposit)."""
    pruned_index: int
    """Messages referenced at or below this milestone are forgotten."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputInfo:
    """One unspent output."""

    output_id: OutputId
    """Its id (transaction id and index)."""
    address: Address
    """Where it is locked."""
    amount: int
    """Base units."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelInfo:
    """`GET /api/v1/channels/{channel_id}`."""

    ledger_index: int
    """The confirmed milestone the answer reflects."""
    output_id: OutputId
    """The channel output's id (it changes with every top-up and close step)."""
    output: ChannelOutput
    """The channel as the ledger records it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressOutputs:
    """`GET /api/v1/addresses/{address}/outputs`."""

    address: Address
    """The address asked about."""
    ledger_index: int
    """The confirmed milestone the answer reflects."""
    outputs: tuple[OutputInfo, ...]
    """Its unspent outputs, by output id."""

    @property
    def balance(self) -> int:
        return sum(o.amount for o in self.outputs)


@dataclass(frozen=True, slots=True, kw_only=True)
class Metadata:
    """`GET /api/v1/messages/{id}/metadata`."""

    message_id: MessageId
    """The message."""
    solid: bool
    """Whether its past cone is complete."""
    referenced_by: int | None
    """The milestone that referenced it, None while unreferenced."""
    inclusion: Inclusion
    """What that milestone made of it."""
    conflict: Conflict
    """Why its transaction was not applied (NONE unless conflicting)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MilestoneEvent:
    """A confirmed milestone, sent after the transaction events it caused."""

    index: int
    """Its index: the node's confirmed milestone index from now on."""
    milestone_id: MilestoneId
    """Its id."""
    message_id: MessageId
    """The message that carried it."""
    timestamp_ms: int
    """When the coordinator issued it."""


NodeEvent = MilestoneEvent | TransactionEvent


# -- parsing helpers -------------------------------------------------------------------------


class _Doc:
    """Typed access to a JSON object, each miss an `InvalidResponseError`."""

    __slots__ = ("_doc", "_request")

    def __init__(self, request: str, doc: object) -> None:
        if not isinstance(doc, dict):
            raise InvalidResponseError(request, "expected a JSON object")
        self._request = request
        self._doc: dict[str, Any] = doc

    def _get(self, key: str, kind: type | tuple[type, ...]) -> Any:
        value = self._doc.get(key)
        if isinstance(value, bool) and kind is int:
            value = None
        if not isinstance(value, kind):
            raise InvalidResponseError(self._request, f"field {key!r} is missing or mistyped")
        return value

    def integer(self, key: str) -> int:
        value: int = self._get(key, int)
        return value

    def optional_integer(self, key: str) -> int | None:
        if self._doc.get(key) is None:
            return None
        return self.integer(key)

    def boolean(self, key: str) -> bool:
        value: bool = self._get(key, bool)
        return value

    def text(self, key: str) -> str:
        value: str = self._get(key, str)
        return value

    def decimal(self, key: str) -> int:
        text = self.text(key)
        if not text.isdecimal() or not text.isascii():
            raise InvalidResponseError(self._request, f"field {key!r} is not a decimal")
        return int(text)

    def hexbytes(self, key: str) -> bytes:
        try:
            return bytes.fromhex(self.text(key))
        except ValueError:
            raise InvalidResponseError(self._request, f"field {key!r} is not hex") from None

    def items(self, key: str) -> list[Any]:
        value: list[Any] = self._get(key, list)
        return value

    def enum_name(self, key: str) -> str:
        return self.text(key).upper()

    def sub(self, value: object) -> _Doc:
        return _Doc(self._request, value)

    def child(self, key: str) -> _Doc:
        return _Doc(self._request, self._doc.get(key))


def _parse_json(request: str, response: httpx.Response) -> _Doc:
    try:
        return _Doc(request, json.loads(response.content))
    except (ValueError, RecursionError):
        raise InvalidResponseError(request, "the body is not JSON") from None


def _fixed(request: str, cls: type[_Id], raw: bytes) -> _Id:
    try:
        return cls(raw)
    except TangleError:
        raise InvalidResponseError(request, f"a {cls.__name__} of the wrong size") from None


def _describe(exc: Exception) -> str:
    """A transport failure in words: the class and, for network errors, the OS's reason."""
    shown = httpx.NetworkError | httpx.TimeoutException | httpx.UnsupportedProtocol
    detail = str(exc) if isinstance(exc, shown) else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _retry_after(response: httpx.Response) -> float | None:
    text = response.headers.get("retry-after", "")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None


def _error_of(request: str, response: httpx.Response) -> tuple[str, str]:
    """The node's error code and message (`{"error": {"code", "message"}}`), or, for a body
    of another shape, `http_<status>` and the reason phrase."""
    try:
        error = _parse_json(request, response).child("error")
        return error.text("code"), error.text("message")
    except InvalidResponseError:
        return f"http_{response.status_code}", response.reason_phrase or "no message"


def _refusal(request: str, response: httpx.Response) -> RejectedError:
    code, message = _error_of(request, response)
    cls = NotFoundError if response.status_code == 404 else RejectedError
    return cls(request, code, response.status_code, message[:300])


# -- the client ------------------------------------------------------------------------------


def check_node_url(url: str) -> None:
    """Raise `NodeUrlError` unless `url` is `http://` or `https://` with a host (a bare
    `HOST:PORT` is the usual slip)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise NodeUrlError from None
    if parts.scheme not in ("http", "https") or not host:
        raise NodeUrlError


class NodeClient:
    """Typed calls to one node's HTTP API (see `tangle.api`). Use as an async context manager,
    or call `aclose` when done."""

    __slots__ = ("_http", "_retry", "_rng", "_stream_timeout", "retries")

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 10.0,
        stream_read_timeout_s: float = 60.0,
        headers: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`base_url` is the node's API root (`http://host:port`); `transport` replaces real
        HTTP (httpx's default) with any `httpx.AsyncBaseTransport`. `stream_read_timeout_s`
        bounds the silence on the event stream (the node sends a keep-alive every 15 s)."""
        if timeout_s <= 0 or stream_read_timeout_s <= 0:
            raise WalletConfigError("NodeClient timeouts", "must be positive")
        check_node_url(base_url)
        try:
            self._http = httpx.AsyncClient(
                base_url=base_url,
                transport=transport,
                timeout=httpx.Timeout(timeout_s),
                headers=dict(headers or {}),
                follow_redirects=False,
            )
        except httpx.InvalidURL:
            raise WalletConfigError("NodeClient.base_url", "not a valid URL") from None
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._stream_timeout = httpx.Timeout(timeout_s, read=stream_read_timeout_s)
        self.retries = 0
        """Requests repeated so far (for metrics and tests)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        with contextlib.suppress(httpx.HTTPError, OSError):
            await self._http.aclose()

    def __repr__(self) -> str:
        return f"NodeClient(retry={self._retry!r})"

    # -- the request loop --------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        json_body: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The answer (2xx) to one request, retried as the module docstring says."""
        request = f"{method} {path.split('?')[0]}"
        policy = self._retry
        failure = NodeUnavailableError(request, "not attempted")
        for attempt in range(policy.attempts):
            if attempt:
                self.retries += 1
            try:
                response = await self._http.request(
                    method,
                    path,
                    params=list(params),
                    json=json_body,
                    content=content,
                    headers=dict(headers or {}),
                )
            except (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError) as exc:
                failure = NodeUnavailableError(request, _describe(exc))
            except (httpx.HTTPError, httpx.InvalidURL) as exc:  # a bad URL or scheme
                raise NodeUnavailableError(request, _describe(exc)) from None
            else:
                status = response.status_code
                if status < 400:
                    return response
                if status == 429:
                    code, _ = _error_of(request, response)
                    wait = _retry_after(response)
                    limited = RateLimitedError(request, code, wait)
                    if attempt + 1 == policy.attempts or (wait or 0) > policy.max_retry_after_s:
                        raise limited
                    pause = wait if wait is not None else policy.delay(attempt, self._rng)
                    await anyio.sleep(pause)
                    continue
                if status in _RETRIED_STATUSES:
                    code, message = _error_of(request, response)
                    failure = NodeUnavailableError(request, f"{code}: {message}", status=status)
                else:
                    raise _refusal(request, response)
            if attempt + 1 < policy.attempts:
                await anyio.sleep(policy.delay(attempt, self._rng))
        raise failure

    async def _get_json(self, path: str, params: Sequence[tuple[str, str]] = ()) -> _Doc:
        response = await self._request("GET", path, params=params)
        return _parse_json(f"GET {path}", response)

    # -- calls -------------------------------------------------------------------------------

    async def info(self) -> NodeInfo:
        doc = await self._get_json("/api/v1/info")
        return NodeInfo(
            network_id=doc.decimal("network_id"),
            confirmed_milestone_index=doc.integer("confirmed_milestone_index"),
            latest_milestone_index=doc.integer("latest_milestone_index"),
            healthy=doc.boolean("healthy"),
            work_per_kib=doc.integer("work_per_kib"),
            min_output_amount=doc.decimal("min_output_amount"),
            pruned_index=doc.integer("pruned_index"),
        )

    async def tips(self, count: int = 8) -> tuple[MessageId, ...]:
        """Up to `count` (1..8) parents for a new message, sorted as a message needs them."""
        doc = await self._get_json("/api/v1/tips", [("count", str(count))])
        request = "GET /api/v1/tips"
        tips = []
        for item in doc.items("tips"):
            if not isinstance(item, str):
                raise InvalidResponseError(request, "a tip is not a string")
            try:
                tips.append(_fixed(request, MessageId, bytes.fromhex(item)))
            except ValueError:
                raise InvalidResponseError(request, "a tip is not hex") from None
        if not tips:
            raise InvalidResponseError(request, "no tips")
        return tuple(sorted(set(tips)))

    async def submit(self, raw: bytes) -> MessageId:
        """Submit a message with its proof-of-work; its id. A message the node already holds
        (a retry whose first answer was lost) counts as submitted."""
        message_id = MessageId(blake2b_256(raw))
        try:
            response = await self._request(
                "POST", "/api/v1/messages", content=raw, headers={"content-type": OCTETS}
            )
        except RejectedError as exc:
            if exc.code == "duplicate_message":
                return message_id
            raise
        doc = _parse_json("POST /api/v1/messages", response)
        if doc.hexbytes("id") != message_id:
            raise InvalidResponseError("POST /api/v1/messages", "the id is not the message's")
        return message_id

    async def submit_pow(self, payload: Payload) -> MessageId:
        """Submit a payload for the node to attach, doing the proof-of-work itself; the id of
        the message it made. `RejectedError` with code `duplicate_payload` means the payload is
        already attached (perhaps by an earlier try whose answer was lost)."""
        response = await self._request(
            "POST", "/api/v1/messages/pow", json_body={"payload": encode_payload(payload).hex()}
        )
        request = "POST /api/v1/messages/pow"
        return _fixed(request, MessageId, _parse_json(request, response).hexbytes("id"))

    async def message_bytes(self, message_id: MessageId) -> bytes:
        """The stored message, raw (`NotFoundError` if the node does not hold it)."""
        response = await self._request(
            "GET", f"/api/v1/messages/{message_id.hex()}", headers={"accept": OCTETS}
        )
        if blake2b_256(response.content) != message_id:
            raise InvalidResponseError("GET /api/v1/messages/{id}", "bytes do not hash to the id")
        return response.content

    async def message(self, message_id: MessageId) -> Parsed:
        """The stored message, decoded."""
        raw = await self.message_bytes(message_id)
        try:
            return decode_message(raw)
        except TangleError as exc:
            raise InvalidResponseError("GET /api/v1/messages/{id}", str(exc)) from None

    async def metadata(self, message_id: MessageId) -> Metadata:
        path = f"/api/v1/messages/{message_id.hex()}/metadata"
        doc = await self._get_json(path)
        request = "GET /api/v1/messages/{id}/metadata"
        try:
            inclusion = Inclusion[doc.enum_name("inclusion")]
            conflict = Conflict[doc.enum_name("conflict")]
        except KeyError:
            raise InvalidResponseError(request, "unknown inclusion or conflict") from None
        return Metadata(
            message_id=message_id,
            solid=doc.boolean("solid"),
            referenced_by=doc.optional_integer("referenced_by"),
            inclusion=inclusion,
            conflict=conflict,
        )

    async def outputs(self, address: Address) -> AddressOutputs:
        doc = await self._get_json(f"/api/v1/addresses/{address.hex()}/outputs")
        request = "GET /api/v1/addresses/{address}/outputs"
        outputs = []
        for item in doc.items("outputs"):
            entry = doc.sub(item)
            outputs.append(
                OutputInfo(
                    output_id=_fixed(request, OutputId, entry.hexbytes("output_id")),
                    address=_fixed(request, Address, entry.hexbytes("address_hex")),
                    amount=entry.decimal("amount"),
                )
            )
        return AddressOutputs(
            address=address, ledger_index=doc.integer("ledger_index"), outputs=tuple(outputs)
        )

    async def channel(self, channel_id: ChannelId) -> ChannelInfo | None:
        """A payment channel's unspent output, or None once it is settled (or never was)."""
        request = "GET /api/v1/channels/{channel_id}"
        try:
            doc = await self._get_json(f"/api/v1/channels/{channel_id.hex()}")
        except NotFoundError:
            return None
        entry = doc.child("output")
        if entry.text("type") != "channel":
            raise InvalidResponseError(request, "the output is not a channel")
        try:
            output = ChannelOutput(
                channel_id=ChannelId(entry.hexbytes("channel_id")),
                payer=PublicKey(entry.hexbytes("payer")),
                payee=PublicKey(entry.hexbytes("payee")),
                amount=entry.decimal("amount"),
                bidirectional=entry.boolean("bidirectional"),
                challenge_period=entry.integer("challenge_period"),
                expiry=entry.integer("expiry"),
                sequence=entry.decimal("sequence"),
                payee_balance=entry.decimal("payee_balance"),
                closing_since=entry.integer("closing_since"),
            )
        except TangleError as exc:
            raise InvalidResponseError(request, f"not a valid channel output: {exc}") from None
        return ChannelInfo(
            ledger_index=doc.integer("ledger_index"),
            output_id=_fixed(request, OutputId, entry.hexbytes("output_id")),
            output=output,
        )

    async def balance(self, address: Address) -> int:
        doc = await self._get_json(f"/api/v1/addresses/{address.hex()}/balance")
        return doc.decimal("balance")

    # -- events ------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def events(
        self, addresses: Sequence[Address] = (), *, last_event_id: str | None = None
    ) -> AsyncIterator[EventReader]:
        """Follow `GET /api/v1/events` (transactions touching `addresses`, at most 16, or all;
        every milestone), after event `last_event_id` if given. Opening it is not retried; a
        stream that breaks later is resumed where it broke (see `EventReader`)."""
        request = "GET /api/v1/events"
        params = httpx.QueryParams([("address", a.hex()) for a in addresses])

        async def open_lines(
            resume_after: str | None, stack: contextlib.AsyncExitStack
        ) -> AsyncIterator[str]:
            headers = {} if resume_after is None else {"Last-Event-ID": resume_after}
            try:
                response = await stack.enter_async_context(
                    self._http.stream(
                        "GET",
                        "/api/v1/events",
                        params=params,
                        headers=headers,
                        timeout=self._stream_timeout,
                    )
                )
                if response.status_code != 200:
                    await response.aread()
                    if response.status_code == 429:
                        code, _ = _error_of(request, response)
                        raise RateLimitedError(request, code, _retry_after(response))
                    if response.status_code >= 500:
                        raise EventStreamError(request, f"status {response.status_code}")
                    raise _refusal(request, response)
            except httpx.HTTPError as exc:
                raise EventStreamError(request, _describe(exc)) from None
            lines = response.aiter_lines()
            aclose = getattr(lines, "aclose", None)  # an async generator: close it here
            if aclose is not None:
                stack.push_async_callback(aclose)
            return lines

        reader = EventReader(
            request, open_lines, last_event_id=last_event_id, retry=self._retry, rng=self._rng
        )
        try:
            await reader.connect()
            yield reader
        finally:
            await reader.aclose()


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
                raise EventStreamError(self._request, _describe(exc)) from None
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
            doc = _Doc(request, json.loads(data))
        except (ValueError, RecursionError):
            raise InvalidResponseError(request, f"a {name} event is not JSON") from None
        if name == "milestone":
            return MilestoneEvent(
                index=doc.integer("index"),
                milestone_id=_fixed(request, MilestoneId, doc.hexbytes("milestone_id")),
                message_id=_fixed(request, MessageId, doc.hexbytes("message_id")),
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
                addresses.append(_fixed(request, Address, bytes.fromhex(item)))
            except ValueError:
                raise InvalidResponseError(request, "an address is not hex") from None
        return TransactionEvent(
            message_id=_fixed(request, MessageId, doc.hexbytes("message_id")),
            transaction_id=_fixed(request, TransactionId, doc.hexbytes("transaction_id")),
            milestone_index=doc.integer("milestone_index"),
            inclusion=inclusion,
            conflict=conflict,
            addresses=frozenset(addresses),
        )
