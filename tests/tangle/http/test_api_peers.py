"""`/api/v1/info` and `/metrics` count configured and connected peers apart, on real peerings
over loopback TCP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import trio

from tangle.http.api import ApiConfig, create_app
from tangle.service import PeeringAdmin
from tests._gossip_net import connected, link, network

if TYPE_CHECKING:
    from pathlib import Path

    from tests._gossip_net import Peer


def _client(peer: Peer) -> httpx.AsyncClient:
    app = create_app(peer.node, ApiConfig(), peers=PeeringAdmin(peer.peering))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://node")


async def test_info_said_three_peers_with_one_connected(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        a, b = await net.start(), await net.start()
        with trio.socket.socket() as unused:  # a port nobody listens on
            await unused.bind(("127.0.0.1", 0))
            dead_port = unused.getsockname()[1]
        link(a, b)
        a.peering.add_peer("127.0.0.1", dead_port)
        a.peering.add_peer("127.0.0.2", dead_port)
        await connected(a, b, count=1)
        async with _client(a) as to_a, _client(b) as to_b:
            info = (await to_a.get("/api/v1/info")).json()
            assert (info["peers_configured"], info["peers_connected"]) == (3, 1)
            info = (await to_b.get("/api/v1/info")).json()
            assert (info["peers_configured"], info["peers_connected"]) == (0, 1)
            metrics = (await to_a.get("/metrics")).text.splitlines()
            assert "tangle_peers_configured 3" in metrics
            assert "tangle_peers_connected 1" in metrics
