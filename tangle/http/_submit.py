"""The routes that bring messages in: a message with its proof-of-work, a batch of them, a
payload the node does the work for (`PowLimits`), and the tips a new message should approve."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np
import trio
from starlette.responses import JSONResponse

from tangle.errors import NoTipsError, TangleError
from tangle.ledger.ledger import validate_transaction
from tangle.ledger.registry_rules import validate_record
from tangle.protocol.device import DeviceRecord
from tangle.protocol.gateway_request import ItemKind
from tangle.protocol.message import MAX_MESSAGE_SIZE, MAX_PARENTS, encode_message, prepare
from tangle.protocol.milestone import Milestone
from tangle.protocol.transaction import Transaction
from tangle.window.tip_selection import UniformRandomTips

from ._batch import BATCH_BODY_LIMIT, BATCH_JSON_LIMIT, MAX_BATCH, batch_result, decode_batch
from ._gateway import gateway_refusals, payloads_of
from ._pow import PowLimits
from ._request import (
    ApiError,
    client_of,
    decode_payload_bytes,
    hex_field,
    json_field,
    media_type,
    query_uint,
    read_body,
    read_json,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request
    from starlette.responses import Response

    from tangle.node.core import NodeCore, Parameters
    from tangle.node.node import Node
    from tangle.protocol.ids import MessageId
    from tangle.protocol.message import Parsed

    from ._config import ApiConfig, PeerAdmin
    from ._metrics import Telemetry

SYNC_SLACK: Final = 2
"""Milestones a node may be behind the highest one it knows and still serve tips."""


class Submission:
    """The message-submitting routes of one app, and `/tips`."""

    def __init__(
        self,
        node: Node,
        config: ApiConfig,
        peers: PeerAdmin | None,
        telemetry: Telemetry,
        *,
        solve: Callable[[bytes, int], Awaitable[int]],
        parameters: Callable[[], Awaitable[Parameters]],
    ) -> None:
        self.node = node
        self.peers = peers
        self.telemetry = telemetry
        self.solve = solve
        self.parameters = parameters
        self.limits = PowLimits(config.pow_per_minute, config.pow_concurrency)
        self.rng = np.random.default_rng()

    async def require_synced(self) -> None:
        """Refuse (503 `node_unsynced`) while the node is catching up: its tips would be stale
        and messages on them would soon fall below max depth."""
        confirmed, latest = await self.node.read_core(
            lambda core: (core.confirmed_index, core.latest_index)
        )
        if latest - confirmed > SYNC_SLACK:
            raise ApiError(
                "node_unsynced",
                f"confirmed milestone {confirmed}, the network is at {latest}: catching up",
                {"Retry-After": "1"},
            )

    def choose_tips(self, count: int) -> Callable[[NodeCore], tuple[MessageId, ...]]:
        def choose(core: NodeCore) -> tuple[MessageId, ...]:
            try:
                return UniformRandomTips().select(core.dag, self.rng, count)
            except NoTipsError:
                points = core.dag.entry_points()
                return (max(points, key=lambda m: (points[m], m)),)

        return choose

    async def submit_raw(self, raw: bytes) -> Parsed:
        try:
            parsed = await self.node.submit(raw)
        except TangleError:
            self.telemetry.submitted(None)
            raise
        self.telemetry.submitted(parsed)
        if self.peers is not None:
            await self.peers.publish(parsed.raw)
        return parsed

    async def submit(self, request: Request) -> Response:
        media = media_type(request)
        if media == "application/octet-stream":
            raw = await read_body(request, MAX_MESSAGE_SIZE)
        elif media == "application/json":
            raw = hex_field(json_field(await read_json(request), "message", str), "message")
        else:
            raise ApiError("unsupported_media_type", "send application/octet-stream or JSON")
        payloads = await trio.to_thread.run_sync(payloads_of, [raw])
        refused = await gateway_refusals(
            self.node, self.parameters, request, ItemKind.MESSAGES, [raw], payloads
        )
        if refused:
            raise refused[0]
        parsed = await self.submit_raw(raw)
        return JSONResponse({"id": parsed.id.hex()}, status_code=201)

    async def submit_batch(self, request: Request) -> Response:
        media = media_type(request)
        if media == "application/octet-stream":
            raws = decode_batch(await read_body(request, BATCH_BODY_LIMIT))
        elif media == "application/json":
            texts = json_field(await read_json(request, BATCH_JSON_LIMIT), "messages", list)
            if not 1 <= len(texts) <= MAX_BATCH:
                raise ApiError("invalid_body", f"'messages' must hold 1..{MAX_BATCH} messages")
            if not all(isinstance(t, str) for t in texts):
                raise ApiError("invalid_body", "'messages' must be strings")
            raws = [hex_field(t, "messages") for t in texts]
        else:
            raise ApiError("unsupported_media_type", "send application/octet-stream or JSON")
        payloads = await trio.to_thread.run_sync(payloads_of, raws)
        refused = await gateway_refusals(
            self.node, self.parameters, request, ItemKind.MESSAGES, raws, payloads
        )
        sent = [raw for position, raw in enumerate(raws) if position not in refused]
        with trio.CancelScope(shield=True):  # what the node accepted is relayed, as for one
            node_results = iter(
                (await self.node.submit_many(sent)).results(len(sent)) if sent else ()
            )
            results = [
                refused[position] if position in refused else next(node_results)
                for position in range(len(raws))
            ]
            for result in results:
                accepted = None if isinstance(result, TangleError) else result
                self.telemetry.submitted(accepted)
                if accepted is not None and self.peers is not None:
                    await self.peers.publish(accepted.raw)
        rejected = sum(isinstance(result, TangleError) for result in results)
        return JSONResponse(
            {
                "accepted": len(results) - rejected,
                "rejected": rejected,
                "results": [batch_result(r, o) for r, o in zip(raws, results, strict=True)],
            }
        )

    async def submit_pow(self, request: Request) -> Response:
        # The limits are charged before anything else: reading the body and checking up to
        # 128 signatures costs the node too much to do for free.
        with self.limits.admit(client_of(request), trio.current_time()):
            payload_bytes = hex_field(
                json_field(await read_json(request), "payload", str), "payload"
            )
            payload = decode_payload_bytes(payload_bytes)
            params = await self.parameters()
            if isinstance(payload, Milestone):
                raise ApiError("invalid_body", "a milestone names its parents: submit the message")
            if isinstance(payload, Transaction):
                await trio.to_thread.run_sync(
                    validate_transaction, payload, params.network_id, params.min_output_amount
                )
            if isinstance(payload, DeviceRecord):
                await trio.to_thread.run_sync(validate_record, payload, params.network_id)
            refused = await gateway_refusals(
                self.node,
                self.parameters,
                request,
                ItemKind.PAYLOAD,
                [payload_bytes],
                [payload],
                quarantine=True,
            )
            if refused:
                raise refused[0]
            await self.require_synced()
            unsent = prepare(params.network_id, payload, params.work_per_kib)
            nonce = await self.solve(unsent.root, unsent.target)
        parents = await self.node.read_core(self.choose_tips(MAX_PARENTS))
        parsed = await self.submit_raw(encode_message(unsent.attach(parents, nonce)))
        return JSONResponse({"id": parsed.id.hex()}, status_code=201)

    async def tips(self, request: Request) -> Response:
        text = request.query_params.get("count")
        count = MAX_PARENTS if text is None else query_uint(text, "count", 1, MAX_PARENTS)
        await self.require_synced()
        tips = await self.node.read_core(self.choose_tips(count))
        return JSONResponse({"tips": [t.hex() for t in tips]})
