"""Attacks by one cheap peer on a real node, through `hostile_peer` on loopback TCP: announce
floods, eclipse by inbound links, ban evasion and request amplification.

Each test is named after the attack it covers; the node is a `_gossip_net` node with its real
`Peering`, on the real clock with the short timers of `_gossip_net.FAST`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from tangle.gossip import Handshake, MessageFrame
from tangle.message import decode_message
from tangle.payload import TaggedData

from ._gossip_net import network, rng, send
from .hostile_peer import Target, hostile

if TYPE_CHECKING:
    from pathlib import Path


async def test_the_hostile_peer_is_greeted_and_served(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        node = await net.start()
        raw = await send(node, TaggedData(tag=b"t", data=b"hello"), rng())
        async with hostile(Target.of(node)) as peer:
            await peer.request([decode_message(raw).id])
            with trio.fail_after(10):
                await peer.wait_for(lambda p: raw in p.messages())
            greeting = peer.frames[0]
            assert isinstance(greeting, Handshake)
            assert greeting.node_id == node.peering.node_id
            assert any(isinstance(f, MessageFrame) for f in peer.frames)
            assert not peer.closed.is_set()
