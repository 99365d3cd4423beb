"""The explorer's routes: the dashboard's files and the JSON views its pages read beside the
node's own read endpoints (the OpenAPI document describes them, see `_document.py`).

```
GET /                                              the dashboard (index.html)
GET /explorer/{file}                               its scripts and styles, from `static/`
GET /api/v1/explorer/search?q=                     what a search names (`_search.py`)
GET /api/v1/explorer/recent                        the latest messages, for a live view to open on
GET /api/v1/explorer/milestones?before=&count=     applied milestones, newest first, with cones
GET /api/v1/explorer/messages/{id}/timing          arrival and confirmation times at this node
GET /api/v1/explorer/addresses/{address}/history   an address's latest transactions
GET /api/v1/explorer/channels                      channels recent transactions opened or used
GET /api/v1/explorer/peers                         peers and their latest milestones (read only)
GET /api/v1/explorer/refusals                      the latest messages this node refused
GET /api/v1/explorer/refusals/{id}                 why it refused a message (if it did lately)
GET /api/v1/explorer/anchors?prefix=&count=        the latest `tanglepay/` anchors (`_notes.py`)
```
and the registry's views (`_registry.py`).

The channel view reads each channel's output from storage; its answer is kept until the next
milestone (or until a confirmed transaction touches another channel).

Everything here reads; nothing changes the node. Files are read once from the package and
served with a content security policy that lets the page reach its own origin only.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any, Final

import trio
from starlette.responses import JSONResponse, Response

from tangle.protocol.channel import ChannelOutput
from tangle.protocol.codec import U32_MAX
from tangle.protocol.ids import Address

from .._guard import route
from .._request import ApiError, path_address, path_message_id, query_uint
from .._schema import render_output
from ._notes import ANCHOR_PREFIX, ANCHORS_KEPT
from ._registry import RegistryViews
from ._search import resolve

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.routing import Route

    from tangle.node.node import Node
    from tangle.protocol.bech32 import Network
    from tangle.storage.storage import Storage

    from .._config import PeerAdmin
    from .._proofs import InclusionCache
    from ._timeline import ChannelSeen, Refusal, Timeline

MEDIA_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
MILESTONES_PER_PAGE: Final = 100
REFUSALS_LISTED: Final = 64
ANCHORS_LISTED: Final = 500
PEER_FIELDS: Final = ("id", "connected", "outbound", "confirmed_index")
"""What the public peer view shows of each peer: never its address (the admin view shows it)."""


def static_files() -> dict[str, tuple[bytes, str]]:
    """The dashboard's files by path under `static/`, with their media types."""
    found: dict[str, tuple[bytes, str]] = {}
    pending = [(resources.files(__package__ or "tangle.http.explorer") / "static", "")]
    while pending:
        folder, prefix = pending.pop()
        for entry in folder.iterdir():
            name = f"{prefix}{entry.name}"
            if entry.is_dir():
                pending.append((entry, f"{name}/"))
                continue
            suffix = name[name.rfind(".") :] if "." in name else ""
            if suffix in MEDIA_TYPES:
                found[name] = (entry.read_bytes(), MEDIA_TYPES[suffix])
    return found


class Explorer:
    """The explorer's routes over one node."""

    def __init__(
        self,
        node: Node,
        network: Network,
        timeline: Timeline,
        peers: PeerAdmin | None,
        inclusions: InclusionCache,
    ) -> None:
        self.node = node
        self.network = network
        self.timeline = timeline
        self.peers = peers
        self.files = static_files()
        self.registry = RegistryViews(node, network, timeline.notes, inclusions)
        self._channels: tuple[int, list[ChannelSeen], list[dict[str, Any] | None]] | None = None
        """The last channel view: the confirmed index and channels it was read at, and it."""

    def routes(self) -> list[Route]:
        return [
            route("/", get=self.index),
            route("/explorer/{file:path}", get=self.file),
            route("/api/v1/explorer/search", get=self.search),
            route("/api/v1/explorer/recent", get=self.recent),
            route("/api/v1/explorer/milestones", get=self.milestones),
            route("/api/v1/explorer/messages/{message_id}/timing", get=self.timing),
            route("/api/v1/explorer/addresses/{address}/history", get=self.history),
            route("/api/v1/explorer/channels", get=self.channels),
            route("/api/v1/explorer/peers", get=self.peer_view),
            route("/api/v1/explorer/refusals", get=self.refusals),
            route("/api/v1/explorer/refusals/{message_id}", get=self.refusal),
            route("/api/v1/explorer/anchors", get=self.anchors),
            *self.registry.routes(),
        ]

    def _serve(self, name: str) -> Response:
        found = self.files.get(name)
        if found is None:
            raise ApiError("not_found", f"no explorer file {name!r}")
        body, media_type = found
        return Response(body, media_type=media_type, headers=SECURITY_HEADERS)

    async def index(self, request: Request) -> Response:
        return self._serve("index.html")

    async def file(self, request: Request) -> Response:
        return self._serve(request.path_params["file"])

    async def search(self, request: Request) -> Response:
        text = request.query_params.get("q", "")
        found = await resolve(text, self.node, self.timeline, self.network)
        return JSONResponse(found)

    async def recent(self, request: Request) -> Response:
        return JSONResponse(
            {
                "now_ms": self.timeline.wall_ms(trio.current_time()),
                "messages": [
                    {
                        "id": r.id.hex(),
                        "parents": [p.hex() for p in r.parents],
                        "kind": r.kind,
                        "index": r.index,
                        "at_ms": r.at_ms,
                        "state": r.state,
                        "referenced_by": r.referenced_by,
                    }
                    for r in self.timeline.recent()
                ],
            }
        )

    async def milestones(self, request: Request) -> Response:
        params = request.query_params
        count = query_uint(params.get("count", "25"), "count", 1, MILESTONES_PER_PAGE)
        before = params.get("before")
        below = None if before is None else query_uint(before, "before", 1, U32_MAX)

        def read(storage: Storage) -> tuple[int, list[dict[str, Any]]]:
            confirmed = storage.confirmed_index()
            top = confirmed if below is None else min(confirmed, below - 1)
            rows = []
            for index in range(top, max(0, top - count), -1):
                record = storage.milestone(index)
                if record is not None:
                    rows.append(
                        {
                            "index": index,
                            "milestone_id": record.milestone_id.hex(),
                            "message_id": record.message_id.hex(),
                            "timestamp_ms": record.timestamp_ms,
                        }
                    )
            return confirmed, rows

        confirmed, rows = await self.node.read_storage(read)
        for row in rows:
            cone = self.timeline.cone(row["index"])
            row["cone"] = (
                None
                if cone is None
                else {
                    "referenced": cone.referenced,
                    "included": cone.included,
                    "conflicting": cone.conflicting,
                    "applied_at_ms": cone.applied_ms,
                }
            )
        return JSONResponse({"confirmed_milestone_index": confirmed, "milestones": rows})

    async def timing(self, request: Request) -> Response:
        message_id = path_message_id(request.path_params["message_id"])
        found = await self.node.read_storage(lambda storage: storage.metadata(message_id))
        index = None if found is None else found.referenced_by
        cone = None if index is None else self.timeline.cone(index)
        arrived = self.timeline.arrived_ms(message_id)
        confirmed = None if cone is None else cone.applied_ms
        return JSONResponse(
            {
                "id": message_id.hex(),
                "arrived_at_ms": arrived,
                "confirmed_at_ms": confirmed,
                "milestone_index": index,
                "confirmation_ms": None
                if arrived is None or confirmed is None
                else max(0, confirmed - arrived),
            }
        )

    async def history(self, request: Request) -> Response:
        address = path_address(request.path_params["address"], self.network)
        events = self.timeline.history(address)
        return JSONResponse(
            {
                "address_hex": address.hex(),
                "transactions": [event.data(self.network) for event in events],
            }
        )

    async def channels(self, request: Request) -> Response:
        seen = self.timeline.channels()
        held = self._channels

        def read(storage: Storage) -> tuple[int, list[dict[str, Any] | None]]:
            index = storage.confirmed_index()
            if held is not None and held[0] == index and held[1] == seen:
                return index, held[2]
            states: list[dict[str, Any] | None] = []  # a channel is indexed by its id
            for entry in seen:
                found = [
                    (oid, out)
                    for oid, out in storage.outputs_of(Address(entry.channel_id))
                    if isinstance(out, ChannelOutput)
                ]
                states.append(render_output(*found[0], self.network) if found else None)
            return index, states

        index, states = await self.node.read_storage(read)
        self._channels = index, seen, states
        return JSONResponse(
            {
                "channels": [
                    {
                        "channel_id": entry.channel_id.hex(),
                        "last_op": entry.last_op,
                        "milestone_index": entry.milestone_index,
                        "output": state,
                    }
                    for entry, state in zip(seen, states, strict=True)
                ]
            }
        )

    async def peer_view(self, request: Request) -> Response:
        confirmed = await self.node.read_core(lambda core: core.confirmed_index)
        peers = None
        if self.peers is not None:
            peers = [
                {name: _plain(peer.get(name)) for name in PEER_FIELDS}
                for peer in self.peers.peers()
            ]
        return JSONResponse({"confirmed_milestone_index": confirmed, "peers": peers})

    async def refusals(self, request: Request) -> Response:
        listed = self.timeline.refusals(REFUSALS_LISTED)
        return JSONResponse({"refusals": [_refusal(r) for r in listed]})

    async def refusal(self, request: Request) -> Response:
        message_id = path_message_id(request.path_params["message_id"])
        found = self.timeline.refusal(message_id)
        if found is None:
            raise ApiError("unknown_message", f"no refusal of {message_id.hex()} is remembered")
        return JSONResponse(_refusal(found))

    async def anchors(self, request: Request) -> Response:
        params = request.query_params
        count = query_uint(params.get("count", "100"), "count", 1, ANCHORS_LISTED)
        prefix = params.get("prefix", ANCHOR_PREFIX.decode()).encode()
        if not prefix.startswith(ANCHOR_PREFIX) or len(prefix) > 64:
            raise ApiError("invalid_parameter", "prefix is a tag beginning tanglepay/ (<= 64)")
        return JSONResponse(
            {
                "kept": ANCHORS_KEPT,
                "anchors": [
                    {
                        "message_id": a.message_id.hex(),
                        "tag": a.tag.decode("utf-8", "replace"),
                        "tag_hex": a.tag.hex(),
                        "size": a.size,
                        "head": a.head.hex(),
                        "at_ms": a.at_ms,
                        "milestone_index": a.referenced_by,
                    }
                    for a in self.timeline.notes.anchors(prefix, count)
                ],
            }
        )


def _refusal(refusal: Refusal) -> dict[str, Any]:
    return {
        "message_id": refusal.message_id.hex(),
        "code": refusal.code,
        "reason": refusal.reason,
        "at_ms": refusal.at_ms,
    }


def _plain(value: object) -> str | int | bool | None:
    """A peer field as JSON: bytes in hex, anything unexpected as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
