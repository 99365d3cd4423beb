"""The node's HTTP API: an ASGI app (Starlette) over a trio `Node`, served by hypercorn on trio.

```
GET    /api/v1/info                          200 status, health, network parameters
POST   /api/v1/messages                      201 {"id"}; raw bytes or {"message": hex}
POST   /api/v1/messages/pow                  201 {"id"}; {"payload": hex}, the node does the work
POST   /api/v1/messages/batch                200 a result per message (see `_api_batch.py`)
GET    /api/v1/messages/{id}                 200 decoded JSON, or raw (Accept: octet-stream)
GET    /api/v1/messages/{id}/metadata        200 solid, referenced_by, inclusion, conflict
GET    /api/v1/messages/{id}/inclusion       200 its path to the milestone's inclusion root
GET    /api/v1/tips?count=n                  200 up to 8 parents chosen by URTS
GET    /api/v1/outputs/{output_id}           200 an output, unspent or spent (by which transaction)
GET    /api/v1/addresses/{address}/outputs   200 unspent outputs   {address}: hex or bech32m
GET    /api/v1/addresses/{address}/balance   200 balance           (answered in bech32m)
GET    /api/v1/channels/{channel_id}         200 a payment channel's output
GET    /api/v1/devices/{device_id}           200 a registered device (`_device_api.py`)
GET    /api/v1/keys/{key}/device             200 the device whose current key it is
GET    /api/v1/milestones/latest | /{index}  200 an applied milestone
GET    /api/v1/events?address=...            200 server-sent events, resumable (`_api_events.py`)
GET    /metrics                              200 Prometheus text exposition
GET    /openapi.json                         200 the OpenAPI 3.1 document of all of these
GET    /  and /api/v1/explorer/...           200 the explorer dashboard and its views (`explorer/`)
/api/v1/admin/...                            peers, pruning, snapshots (`_api_admin.py`)
```

Each path answers `OPTIONS` (204) and refuses a method it lacks with 405 and an `Allow` header
naming all of its methods.

Errors are `{"error": {"code", "message"}}` with the codes of `_api_schema.py`: 404 unknown
route, 405 wrong method, 400 malformed input or a message the node refused (the code names the
`TangleError`), 413 a body over the limit (enforced while it is read), 415 an unknown body type,
429 proof-of-work, event-stream and past-registry-tree (`?at=`) limits (with `Retry-After`),
503 a node that halted, whose storage failed, or that is catching up (`node_unsynced`, with
`Retry-After`). An unexpected exception becomes a 500 with code `internal_error` and is logged,
never shown to the client.

**Proof-of-work at the node** (for devices too small to do it): each client address may have one
search in flight and `pow_per_minute` searches a minute (a token bucket of that size, refilled
continuously); at most `pow_concurrency` searches run at once in the whole node. The limits are
charged before the body is read (`_api_submit.py`). **Event streams**: at most
`max_event_streams` in all and `max_event_streams_per_client` per client address.

**Health**: healthy while the confirmed milestone was issued (its timestamp) at most
`health_window_s` seconds ago by this machine's clock: the node follows a live network.
**Synced**: a node more than `SYNC_SLACK` milestones behind the highest committee-signed
milestone it has received is catching up; it answers `/tips` and the proof-of-work endpoint with
503 `node_unsynced` (as Hornet refuses tips while unsynced), since messages on its stale tips
would soon fall below max depth.

**Serving**: in the node process's trio run, `port = await nursery.start(serve_api, app, host,
port)`; cancelling the nursery stops the server. `serve_api` runs the app's lifespan, which
follows the node's milestone notices for the confirmation-latency histogram and the event
streams' history.
"""

from __future__ import annotations

import contextlib
import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, PlainTextResponse, Response

from tangle import work
from tangle.errors import TangleError
from tangle.protocol.channel import ChannelOutput
from tangle.protocol.codec import U32_MAX
from tangle.protocol.message import PROTOCOL_VERSION, decode_message
from tangle.protocol.milestone import Milestone

from ._admin import Admin
from ._batch import with_batch
from ._config import ApiConfig as ApiConfig  # noqa: TC001 (re-exported)
from ._config import PeerAdmin as PeerAdmin  # noqa: TC001 (re-exported)
from ._device_api import Devices, with_devices
from ._event_stream import EventStream, with_events
from ._events import EventHub
from ._guard import Guard, refusal, route
from ._metrics import Telemetry
from ._openapi import openapi_document
from ._pow import PowLimits as PowLimits
from ._proofs import InclusionCache, Proofs, with_proofs
from ._request import (
    ApiError,
    client_of,
    path_address,
    path_id,
    path_message_id,
    path_output_id,
    query_uint,
)
from ._schema import (
    render_address,
    render_message,
    render_metadata,
    render_milestone,
    render_output,
    render_stored_output,
)
from ._submit import Submission
from .explorer import Explorer, Timeline, with_explorer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from starlette.requests import Request
    from starlette.types import ASGIApp

    from tangle.node.core import NodeCore, Parameters
    from tangle.node.node import Node
    from tangle.protocol.ids import OutputId
    from tangle.protocol.transaction import Output
    from tangle.storage.storage import Storage, StoredOutput


MAX_EVENT_ADDRESSES: Final = 16


# -- the app -----------------------------------------------------------------------------------


class _Api:
    """The state behind the routes of one app."""

    def __init__(
        self,
        node: Node,
        config: ApiConfig,
        peers: PeerAdmin | None,
        solve: Callable[[bytes, int], Awaitable[int]] | None,
    ) -> None:
        self.node = node
        self.config = config
        self.peers = peers
        hub = EventHub(
            config.network,
            capacity=config.event_history,
            max_streams=config.max_event_streams,
            max_per_client=config.max_event_streams_per_client,
        )
        self.telemetry = Telemetry(hub, config.latency_tracked)
        self.timeline = Timeline(time.time, hub)
        self.params: Parameters | None = None
        self.submission = Submission(
            node,
            config,
            peers,
            self.telemetry,
            solve=solve or self._solve,
            parameters=self.parameters,
        )

    async def _solve(self, root: bytes, target: int) -> int:
        return await work.solve(
            root, target, threads=min(self.config.pow_threads, work.max_threads())
        )

    async def parameters(self) -> Parameters:
        if self.params is None:
            self.params = await self.node.read_core(lambda core: core.params)
        return self.params

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(self.telemetry.latency.run, self.node))
            await nursery.start(partial(self.telemetry.hub.run, self.node))
            await nursery.start(partial(self.timeline.run, self.node))
            yield
            nursery.cancel_scope.cancel()

    def peer_counts(self) -> dict[str, int | None]:
        """Configured peers (dialed by this node) and peers connected now; None without
        peering."""
        if self.peers is None:
            return {"peers_configured": None, "peers_connected": None}
        peers = self.peers.peers()
        return {
            "peers_configured": sum(1 for p in peers if p.get("outbound") is True),
            "peers_connected": sum(1 for p in peers if p.get("connected") is True),
        }

    # -- routes ------------------------------------------------------------------------------

    async def info(self, request: Request) -> Response:
        def read(storage: Storage) -> tuple[int, bytes, int, int | None]:
            head = storage.head()
            record = storage.milestone(head.index) if head.index else None
            stamp = None if record is None else record.timestamp_ms
            return head.index, head.state_hash, head.pruned_index, stamp

        index, state_hash, pruned, stamp = await self.node.read_storage(read)
        latest = await self.node.read_core(lambda core: core.latest_index)
        params = await self.parameters()
        age_s = None if stamp is None else time.time() - stamp / 1000
        return JSONResponse(
            {
                "network_id": str(params.network_id),
                "protocol_version": PROTOCOL_VERSION,
                "confirmed_milestone_index": index,
                "latest_milestone_index": max(index, latest),
                "latest_milestone_timestamp_ms": stamp,
                "ledger_state_hash": state_hash.hex(),
                "pruned_index": pruned,
                **self.peer_counts(),
                "healthy": age_s is not None and age_s <= self.config.health_window_s,
                "work_per_kib": params.work_per_kib,
                "min_output_amount": str(params.min_output_amount),
            }
        )

    async def message(self, request: Request) -> Response:
        message_id = path_message_id(request.path_params["message_id"])
        raw = await self.node.read_storage(lambda storage: storage.message(message_id))
        if raw is None:
            raise ApiError("unknown_message", f"no message {message_id.hex()}")
        accept = request.headers.get("accept", "").lower()
        if "application/octet-stream" in accept and "application/json" not in accept:
            return Response(raw, media_type="application/octet-stream")
        return JSONResponse(render_message(decode_message(raw), self.config.network))

    async def metadata(self, request: Request) -> Response:
        message_id = path_message_id(request.path_params["message_id"])
        found = await self.node.read_storage(lambda storage: storage.metadata(message_id))
        if found is None:
            raise ApiError("unknown_message", f"no message {message_id.hex()}")
        return JSONResponse(render_metadata(message_id, found))

    async def output(self, request: Request) -> Response:
        """One output by id: unspent, or spent inside the pruning window with the transaction
        that spent it, so a client can tell whether a transaction was applied (its output is
        known) and whether one can still apply (an input spent by another transaction cannot),
        even once the message that carried it is pruned or when it never knew that message."""
        output_id = path_output_id(request.path_params["output_id"])

        def read(storage: Storage) -> tuple[int, StoredOutput | None]:
            return storage.confirmed_index(), storage.output(output_id)

        index, found = await self.node.read_storage(read)
        if found is None:
            raise ApiError(
                "unknown_output",
                f"no output {output_id.hex()} unspent or spent inside the pruning window",
            )
        return JSONResponse(render_stored_output(output_id, found, index, self.config.network))

    async def outputs(self, request: Request) -> Response:
        network = self.config.network
        address = path_address(request.path_params["address"], network)

        def read(storage: Storage) -> tuple[int, list[dict[str, Any]]]:
            index = storage.confirmed_index()
            found = storage.outputs_of(address)
            return index, [render_output(o, out, network) for o, out in found]

        index, outputs = await self.node.read_storage(read)
        return JSONResponse(
            {**render_address(address, network), "ledger_index": index, "outputs": outputs}
        )

    async def balance(self, request: Request) -> Response:
        address = path_address(request.path_params["address"], self.config.network)

        def read(storage: Storage) -> tuple[int, int, int]:
            outputs = storage.outputs_of(address)
            total = sum(output.amount for _, output in outputs)
            return storage.confirmed_index(), total, len(outputs)

        index, total, count = await self.node.read_storage(read)
        return JSONResponse(
            {
                **render_address(address, self.config.network),
                "ledger_index": index,
                "balance": str(total),
                "output_count": count,
            }
        )

    async def alarms(self, request: Request) -> Response:
        """Equivocations this node has seen: while there is one, it applies no milestone."""

        def read(core: NodeCore) -> list[dict[str, Any]]:
            return [
                {"index": a.index, "milestone_ids": [a.first.hex(), a.second.hex()]}
                for a in core.alarms
            ]

        found = await self.node.read_core(read)
        return JSONResponse({"applying_milestones": not found, "equivocations": found})

    async def channel(self, request: Request) -> Response:
        channel_id = path_id(request.path_params["channel_id"])

        def read(storage: Storage) -> tuple[int, list[tuple[OutputId, Output]]]:
            return storage.confirmed_index(), storage.outputs_of(channel_id)

        index, found = await self.node.read_storage(read)
        channels = [(o, out) for o, out in found if isinstance(out, ChannelOutput)]
        if not channels:
            raise ApiError("unknown_channel", f"no channel {channel_id.hex()} on the ledger")
        output = render_output(*channels[0], self.config.network)
        return JSONResponse({"ledger_index": index, "output": output})

    async def milestone(self, request: Request) -> Response:
        text = request.path_params.get("index")
        wanted = None if text is None else query_uint(text, "index", 1, U32_MAX)

        def read(storage: Storage) -> dict[str, Any] | None:
            index = storage.confirmed_index() if wanted is None else wanted
            record = storage.milestone(index) if index else None
            if record is None:
                return None
            payload = decode_message(record.raw).message.payload
            return render_milestone(record, payload) if isinstance(payload, Milestone) else None

        found = await self.node.read_storage(read)
        if found is None:
            raise ApiError("unknown_milestone", "no such milestone was applied")
        return JSONResponse(found)

    async def events(self, request: Request) -> Response:
        texts = request.query_params.getlist("address")
        if len(texts) > MAX_EVENT_ADDRESSES:
            raise ApiError("invalid_parameter", f"at most {MAX_EVENT_ADDRESSES} addresses")
        addresses = [path_address(t, self.config.network) for t in texts]
        live = request.query_params.get("live", "false")
        if live not in ("true", "false"):
            raise ApiError("invalid_parameter", "live must be true or false")
        if request.method == "HEAD":
            return Response(media_type="text/event-stream")
        return EventStream(
            self.telemetry.hub,
            self.node,
            addresses,
            client=client_of(request),
            last_event_id=request.headers.get("last-event-id"),
            buffer=self.config.event_buffer,
            keepalive_s=self.config.keepalive_s,
            live=self.timeline if live == "true" else None,
        )

    async def metrics(self, request: Request) -> Response:
        text = await self.telemetry.exposition(
            self.node,
            peers=self.peer_counts(),
            gossip=None if self.peers is None else self.peers.gossip_counters(),
            pow_in_flight=self.submission.limits.in_flight,
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(self, request: Request) -> Response:
        depth = (await self.parameters()).tip_rules.below_max_depth
        return JSONResponse(api_document(keep_milestones_minimum=depth + 1))


def api_document(*, keep_milestones_minimum: int) -> dict[str, Any]:
    """The OpenAPI document `/openapi.json` serves (see `_api_openapi.openapi_document`)."""
    document = openapi_document(keep_milestones_minimum=keep_milestones_minimum)
    return with_explorer(with_proofs(with_devices(with_events(with_batch(document)))))


def create_app(
    node: Node,
    config: ApiConfig,
    peers: PeerAdmin | None = None,
    *,
    solve: Callable[[bytes, int], Awaitable[int]] | None = None,
) -> Starlette:
    """The ASGI app serving `node`. `solve` replaces the proof-of-work search (tests)."""
    api = _Api(node, config, peers, solve)
    submit = api.submission
    devices = Devices(node, config)
    inclusions = InclusionCache()  # the inclusion endpoint's and the explorer's proof file's
    routes = [
        route("/api/v1/info", get=api.info),
        route("/api/v1/messages", post=submit.submit),
        route("/api/v1/messages/pow", post=submit.submit_pow),
        route("/api/v1/messages/batch", post=submit.submit_batch),
        route("/api/v1/messages/{message_id:message_id}", get=api.message),
        route("/api/v1/messages/{message_id:message_id}/metadata", get=api.metadata),
        route(
            "/api/v1/messages/{message_id:message_id}/inclusion",
            get=Proofs(node, inclusions).inclusion,
        ),
        route("/api/v1/tips", get=submit.tips),
        route("/api/v1/outputs/{output_id}", get=api.output),
        route("/api/v1/addresses/{address}/outputs", get=api.outputs),
        route("/api/v1/addresses/{address}/balance", get=api.balance),
        route("/api/v1/channels/{channel_id}", get=api.channel),
        route("/api/v1/devices/{device_id}", get=devices.device),
        route("/api/v1/keys/{key}/device", get=devices.device_by_key),
        route("/api/v1/alarms", get=api.alarms),
        route("/api/v1/milestones/latest", get=api.milestone),
        route("/api/v1/milestones/{index}", get=api.milestone),
        route("/api/v1/events", get=api.events),
        route("/metrics", get=api.metrics),
        route("/openapi.json", get=api.openapi),
    ]
    routes += Explorer(node, config.network, api.timeline, peers, inclusions).routes()
    if config.admin_token is not None:
        routes += Admin(node, config.admin_token, peers, api.parameters).routes()
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, telemetry=api.telemetry)],
        exception_handlers={ApiError: refusal, TangleError: refusal, HTTPException: refusal},
        lifespan=api.lifespan,
    )
    app.state.inclusions = inclusions
    app.router.redirect_slashes = False  # a machine API: one spelling per route, else 404
    return app


async def serve_api(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` with hypercorn on `host:port` (0: any free port) in the caller's trio run;
    reports the bound port through `task_status` and stops when cancelled."""
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger(f"{__name__}.server")
    config.include_server_header = False
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(partial(hypercorn_serve, app, config))  # type: ignore[arg-type]
        task_status.started(int(binds[0].rsplit(":", 1)[1]))
