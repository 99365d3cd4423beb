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

**A lost answer is not a refusal.** A try whose outcome is unknown may have reached the node
and been carried out there: any transport failure once a connection was made (a read or write
error, a read or write timeout, a broken answer; not `ConnectError`, `ConnectTimeout` or
`PoolTimeout`, which fail before a byte of the request is sent), a 500 (the node's guard
answers it for an exception that escaped a route, perhaps after the route stored a message),
a 502 or 504 (a proxy that may have forwarded the request), and a 503 other than the node's
`node_unsynced` and `node_halted` (answered before it changes anything; its `storage` 503 can
come after it took the message in, as `LedgerNode.submit_many` persists afterwards). After such
a try, a last answer of 429 says nothing about the earlier one: it is raised as
`NodeUnavailableError` with `outcome_unknown`, not as `RateLimitedError`, which therefore always
means that no try was carried out. The same holds for a refusal of a submission (`submit`,
`submit_pow`) after such a try, except `duplicate_message` and `duplicate_payload`, which say
that the node holds it: the node checks some rules before it looks for a duplicate (a device
quarantined between two tries), so another refusal does not show that the earlier try was not
stored. Reads are safe to repeat and keep their refusals (a 404 after a timeout is still
`NotFoundError`).

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
import random
import urllib.parse
from typing import TYPE_CHECKING, Any, Final, Self

import anyio
import httpx

from tangle.errors import TangleError
from tangle.ledger.ledger import Conflict, Inclusion
from tangle.ledger.registry import decode_entry
from tangle.protocol.channel import ChannelOutput
from tangle.protocol.ids import (
    Address,
    ChannelId,
    MerkleRoot,
    MessageId,
    OutputId,
    PublicKey,
    TransactionId,
    blake2b_256,
)
from tangle.protocol.merkle import MerklePath
from tangle.protocol.message import Parsed, decode_message
from tangle.protocol.payload import Payload, encode_payload

from ._responses import (
    AddressOutputs,
    ChannelInfo,
    Doc,
    InclusionPath,
    Metadata,
    NodeInfo,
    OutputInfo,
    OutputRecord,
    RegisteredDevice,
    describe,
    error_of,
    fixed,
    parse_json,
    refusal,
    retry_after,
)
from .config import RetryPolicy
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
from .event_reader import EventReader

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence
    from types import TracebackType

    from tangle.ledger.registry import DeviceEntry

OCTETS: Final = "application/octet-stream"
_RETRIED_STATUSES: Final = frozenset({500, 502, 503, 504})
_UNSENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport failures before any byte of the request left: the try was certainly not carried out."""
_UNCHANGED_CODES: Final = frozenset({"node_unsynced", "node_halted"})
"""503 codes the node answers before it changes anything (`tangle.http._submit.require_synced`,
`NodeCore.receive`'s first check); any other retried status may follow a carried-out request."""
_HELD_CODES: Final = frozenset({"duplicate_message", "duplicate_payload"})
"""Refusals of a submission that say the node holds the message (or the payload's slot)."""


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


def _merkle_path(request: str, doc: Doc) -> MerklePath:
    """An audit path as the API renders it: `{"index", "size", "siblings": [hex, ...]}`."""
    siblings = []
    for item in doc.items("siblings"):
        if not isinstance(item, str):
            raise InvalidResponseError(request, "a sibling is not a string")
        try:
            siblings.append(bytes.fromhex(item))
        except ValueError:
            raise InvalidResponseError(request, "a sibling is not hex") from None
    return MerklePath(
        index=doc.integer("index"), size=doc.integer("size"), siblings=tuple(siblings)
    )


def _unknown_outcome(request: str, answer: str, earlier: str) -> NodeUnavailableError:
    """The last try was answered `answer`, but an earlier one (`earlier`: how it ended) may
    have been carried out: the request's outcome is unknown (module docstring)."""
    return NodeUnavailableError(
        request, f"{answer} after a try whose outcome is unknown ({earlier})", outcome_unknown=True
    )


class NodeClient:
    """Typed calls to one node's HTTP API (see `tangle.http.api`). Use as an async context manager,
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
        stores: bool = False,
    ) -> httpx.Response:
        """The answer (2xx) to one request, retried as the module docstring says. `stores`:
        the request submits something the node keeps, so after a try whose outcome is unknown
        a refusal other than a duplicate is not taken as "not stored" either."""
        request = f"{method} {path.split('?')[0]}"
        policy = self._retry
        failure = NodeUnavailableError(request, "not attempted")
        unknown: str | None = None  # why an earlier try may have been carried out
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
            except _UNSENT as exc:
                failure = NodeUnavailableError(request, describe(exc))
            except (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError) as exc:
                failure = NodeUnavailableError(request, describe(exc))
                unknown = unknown or describe(exc)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:  # a bad URL or scheme
                raise NodeUnavailableError(request, describe(exc)) from None
            else:
                status = response.status_code
                if status < 400:
                    return response
                if status == 429:
                    code, _ = error_of(request, response)
                    wait = retry_after(response)
                    if attempt + 1 == policy.attempts or (wait or 0) > policy.max_retry_after_s:
                        if unknown is not None:
                            raise _unknown_outcome(request, f"rate limited ({code})", unknown)
                        raise RateLimitedError(request, code, wait)
                    pause = wait if wait is not None else policy.delay(attempt, self._rng)
                    await anyio.sleep(pause)
                    continue
                if status in _RETRIED_STATUSES:
                    code, message = error_of(request, response)
                    failure = NodeUnavailableError(request, f"{code}: {message}", status=status)
                    if status != 503 or code not in _UNCHANGED_CODES:
                        unknown = unknown or f"{status} {code}"
                else:
                    refused = refusal(request, response)
                    if stores and unknown is not None and refused.code not in _HELD_CODES:
                        raise _unknown_outcome(request, f"refused ({refused.code})", unknown)
                    raise refused
            if attempt + 1 < policy.attempts:
                await anyio.sleep(policy.delay(attempt, self._rng))
        failure.outcome_unknown = unknown is not None  # a try ended with no answer to trust
        raise failure

    async def _get_json(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Doc:
        response = await self._request("GET", path, params=params)
        return parse_json(f"GET {path}", response)

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
                tips.append(fixed(request, MessageId, bytes.fromhex(item)))
            except ValueError:
                raise InvalidResponseError(request, "a tip is not hex") from None
        if not tips:
            raise InvalidResponseError(request, "no tips")
        return tuple(sorted(set(tips)))

    async def submit(self, raw: bytes) -> MessageId:
        """Submit a message with its proof-of-work; its id. A message the node already holds
        (a retry whose first answer was lost) counts as submitted; a 429 or another refusal
        after a lost answer is `NodeUnavailableError` (it may be stored)."""
        message_id = MessageId(blake2b_256(raw))
        try:
            response = await self._request(
                "POST",
                "/api/v1/messages",
                content=raw,
                headers={"content-type": OCTETS},
                stores=True,
            )
        except RejectedError as exc:
            if exc.code == "duplicate_message":
                return message_id
            raise
        doc = parse_json("POST /api/v1/messages", response)
        if doc.hexbytes("id") != message_id:
            raise InvalidResponseError("POST /api/v1/messages", "the id is not the message's")
        return message_id

    async def submit_pow(self, payload: Payload) -> MessageId:
        """Submit a payload for the node to attach, doing the proof-of-work itself; the id of
        the message it made. `RejectedError` with code `duplicate_payload` means the payload is
        already attached (perhaps by an earlier try whose answer was lost); a 429 or another
        refusal after a lost answer is `NodeUnavailableError` (it may be attached)."""
        response = await self._request(
            "POST",
            "/api/v1/messages/pow",
            json_body={"payload": encode_payload(payload).hex()},
            stores=True,
        )
        request = "POST /api/v1/messages/pow"
        return fixed(request, MessageId, parse_json(request, response).hexbytes("id"))

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
                    output_id=fixed(request, OutputId, entry.hexbytes("output_id")),
                    address=fixed(request, Address, entry.hexbytes("address_hex")),
                    amount=entry.decimal("amount"),
                )
            )
        return AddressOutputs(
            address=address, ledger_index=doc.integer("ledger_index"), outputs=tuple(outputs)
        )

    async def output(self, output_id: OutputId) -> OutputRecord | None:
        """Output `output_id` as the node's ledger records it: unspent, or spent inside the
        node's pruning window (by which transaction); None if it holds no record of it (never
        created, spent before its pruning window, or created and spent by one milestone:
        `unknown_output`). A node without the route is a `NotFoundError` (code `not_found`):
        it cannot tell, and saying None would claim the output unknown to the ledger. A spender
        without its milestone, or the reverse, is an `InvalidResponseError`."""
        request = "GET /api/v1/outputs/{output_id}"
        try:
            doc = await self._get_json(f"/api/v1/outputs/{output_id.hex()}")
        except NotFoundError as exc:
            if exc.code == "unknown_output":
                return None
            raise
        entry = doc.child("output")
        if fixed(request, OutputId, entry.hexbytes("output_id")) != output_id:
            raise InvalidResponseError(request, "the answer is about another output")
        spent_by = doc.optional_hexbytes("spent_by")
        spent_at = doc.optional_integer("spent_at")
        if (spent_by is None) != (spent_at is None):
            raise InvalidResponseError(request, "spent_by and spent_at must be both set or null")
        return OutputRecord(
            output_id=output_id,
            created_at=doc.integer("created_at"),
            spent_by=None if spent_by is None else fixed(request, TransactionId, spent_by),
            spent_at=spent_at,
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
            output_id=fixed(request, OutputId, entry.hexbytes("output_id")),
            output=output,
        )

    async def balance(self, address: Address) -> int:
        doc = await self._get_json(f"/api/v1/addresses/{address.hex()}/balance")
        return doc.decimal("balance")

    async def device(
        self, device_id: bytes, *, proof: bool = False, at: int | None = None
    ) -> RegisteredDevice | None:
        """A device's registry entry at the confirmed milestone, or as milestone `at` left it
        (None if it is not registered); with `proof` (implied by `at`), its audit path to that
        milestone's registry root. A past milestone the node no longer keeps the changes of is
        a `NotFoundError` with code `proof_unavailable`."""
        query = [("proof", "true" if proof else "false")]
        if at is not None:
            query, proof = [("at", str(at))], True
        return await self._registered(
            f"/api/v1/devices/{device_id.hex()}",
            "GET /api/v1/devices/{id}",
            query,
            proof=proof,
            missing="unknown_device",
            belongs=lambda entry: entry.device_id == device_id,
        )

    async def device_by_key(self, key: bytes, *, proof: bool = False) -> RegisteredDevice | None:
        """The registry entry of the device whose current key is `key` at the confirmed
        milestone (None if it is no device's: a key a device rotated away from is no longer
        its); with `proof`, the entry's audit path to the registry root."""
        return await self._registered(
            f"/api/v1/keys/{key.hex()}/device",
            "GET /api/v1/keys/{key}/device",
            [("proof", "true" if proof else "false")],
            proof=proof,
            missing="unknown_device_key",
            belongs=lambda entry: entry.key == key,
        )

    async def _registered(
        self,
        path: str,
        request: str,
        query: list[tuple[str, str]],
        *,
        proof: bool,
        missing: str,
        belongs: Callable[[DeviceEntry], bool],
    ) -> RegisteredDevice | None:
        """A device answer (with its audit path if `proof`): None on 404 `missing`; an entry
        that is not what was asked for (`belongs`) is an `InvalidResponseError`."""
        try:
            doc = await self._get_json(path, query)
        except NotFoundError as exc:
            if exc.code != missing:
                raise
            return None
        try:
            entry = decode_entry(doc.hexbytes("entry"))
            root = MerkleRoot(doc.hexbytes("registry_root"))
            registry_path = _merkle_path(request, doc.child("registry_path")) if proof else None
        except TangleError as exc:
            raise InvalidResponseError(request, str(exc)) from None
        if not belongs(entry):
            raise InvalidResponseError(request, "the entry is another device's")
        return RegisteredDevice(
            ledger_index=doc.integer("ledger_index"),
            registry_root=root,
            entry=entry,
            registry_path=registry_path,
        )

    async def inclusion(self, message_id: MessageId) -> InclusionPath | None:
        """The audit path of `message_id` to the inclusion root of the milestone that
        referenced it; None while no milestone has (or once the node pruned it)."""
        request = "GET /api/v1/messages/{id}/inclusion"
        try:
            doc = await self._get_json(f"/api/v1/messages/{message_id.hex()}/inclusion")
        except NotFoundError:
            return None
        try:
            return InclusionPath(
                milestone_index=doc.integer("milestone_index"),
                milestone_message_id=MessageId(doc.hexbytes("milestone_message_id")),
                path=_merkle_path(request, doc.child("path")),
            )
        except TangleError as exc:
            raise InvalidResponseError(request, str(exc)) from None

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
                        code, _ = error_of(request, response)
                        raise RateLimitedError(request, code, retry_after(response))
                    if response.status_code >= 500:
                        raise EventStreamError(request, f"status {response.status_code}")
                    raise refusal(request, response)
            except httpx.HTTPError as exc:
                raise EventStreamError(request, describe(exc)) from None
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
