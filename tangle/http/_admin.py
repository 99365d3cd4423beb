"""The admin endpoints of the HTTP API: peers, pruning and snapshots, behind a bearer token.

```
GET    /api/v1/admin/peers           200 configured peers, each with whether it is connected
POST   /api/v1/admin/peers           201 {"host", "port"}: add (and dial) a peer
DELETE /api/v1/admin/peers/{peer}    204 forget a peer
POST   /api/v1/admin/prune           200 {"keep_milestones"}: forget old messages
GET    /api/v1/admin/snapshot        200 the ledger snapshot (octet-stream)
```

401 without a token, 403 with a wrong one; no admin route exists (404) unless
`ApiConfig.admin_token` is set.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Final

from starlette.responses import JSONResponse, Response

from tangle.protocol.codec import U32_MAX
from tangle.storage.snapshot import encode_snapshot, take_snapshot

from ._guard import route
from ._request import ApiError, json_field, jsonable, read_json

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request
    from starlette.routing import Route

    from tangle.node.core import Parameters
    from tangle.node.node import Node

    from ._config import PeerAdmin

MAX_HOST_LENGTH: Final = 253
"""Longest host name a peer may be added with (DNS)."""


class Admin:
    """The admin routes of one app."""

    def __init__(
        self,
        node: Node,
        token: str,
        peers: PeerAdmin | None,
        parameters: Callable[[], Awaitable[Parameters]],
    ) -> None:
        self.node = node
        self.token = token
        self.peers = peers
        self.parameters = parameters

    def routes(self) -> list[Route]:
        return [
            route("/api/v1/admin/peers", get=self.list_peers, post=self.add_peer),
            route("/api/v1/admin/peers/{peer}", delete=self.remove_peer),
            route("/api/v1/admin/prune", post=self.prune),
            route("/api/v1/admin/snapshot", get=self.snapshot),
        ]

    def check_admin(self, request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(
                "unauthorized", "admin needs a bearer token", {"WWW-Authenticate": "Bearer"}
            )
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise ApiError("forbidden", "wrong token")

    def peer_admin(self, request: Request) -> PeerAdmin:
        self.check_admin(request)
        if self.peers is None:
            raise ApiError("not_found", "this node runs without peering")
        return self.peers

    async def list_peers(self, request: Request) -> Response:
        peers = self.peer_admin(request).peers()
        return JSONResponse({"peers": [jsonable(dict(p)) for p in peers]})

    async def add_peer(self, request: Request) -> Response:
        admin = self.peer_admin(request)
        doc = await read_json(request)
        host, port = json_field(doc, "host", str), json_field(doc, "port", int)
        if not 0 < len(host) <= MAX_HOST_LENGTH or not 0 < port < 65536:
            raise ApiError(
                "invalid_parameter", f"host must be 1..{MAX_HOST_LENGTH} characters, port 1..65535"
            )
        try:
            peer = await admin.add_peer(host, port)
        except ValueError as exc:
            raise ApiError("invalid_parameter", str(exc) or "the peer cannot be added") from None
        return JSONResponse({"peer": jsonable(dict(peer))}, status_code=201)

    async def remove_peer(self, request: Request) -> Response:
        admin = self.peer_admin(request)
        peer = request.path_params["peer"]
        if not await admin.remove_peer(peer):
            raise ApiError("unknown_peer", "no such peer")
        return Response(status_code=204)

    async def prune(self, request: Request) -> Response:
        self.check_admin(request)
        keep = json_field(await read_json(request), "keep_milestones", int)
        depth = (await self.parameters()).tip_rules.below_max_depth
        if not depth < keep <= U32_MAX:
            raise ApiError("invalid_parameter", f"keep_milestones must be {depth + 1}..{U32_MAX}")
        pruned = await self.node.write(lambda ledger: ledger.prune(keep))
        return JSONResponse(
            {
                "pruned_index": pruned.pruned_index,
                "messages": pruned.messages,
                "spent_outputs": pruned.spent_outputs,
                "window_dropped": pruned.window_dropped,
            }
        )

    async def snapshot(self, request: Request) -> Response:
        self.check_admin(request)
        # In the writer thread, so no milestone lands between the ledger and its entry points.
        taken = await self.node.write(lambda ledger: take_snapshot(ledger.storage))
        return Response(
            encode_snapshot(taken),
            media_type="application/octet-stream",
            headers={"content-disposition": f'attachment; filename="{taken.milestone_index}.snap"'},
        )
