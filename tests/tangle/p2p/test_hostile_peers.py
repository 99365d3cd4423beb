"""Attacks by one cheap peer on a real node, through `hostile_peer` on loopback TCP: announce
floods, eclipse by inbound links, ban evasion and request amplification.

Each test is named after the attack it covers; the nodes are `_gossip_net` nodes with their real
`Peering`, on the real clock with the short timers of `_gossip_net.FAST`. Links from other
loopback addresses (127.0.0.2, ...) stand for other hosts.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import trio

from tangle.p2p.gossip import FrameType, Handshake, MessageFrame, Request
from tangle.protocol.message import decode_message
from tangle.protocol.payload import TaggedData
from tests._gossip_net import FAST, connected, info, link, network, rng, send, until
from tests.hostile_peer import HostilePeer, Target, bad_work, hostile, random_ids, swarm

if TYPE_CHECKING:
    from pathlib import Path

    from tangle.p2p.peering import PeeringSizes
    from tests._gossip_net import Peer


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


# -- announce floods -------------------------------------------------------------------------


async def _largest(node: Peer, largest: dict[str, int]) -> None:
    """Keep the largest of each of `node`'s table sizes in `largest` until cancelled."""
    while True:
        sizes: PeeringSizes = node.peering.sizes()
        for name in ("wanted", "wanted_announced", "wanted_by_one_peer", "request_schedule"):
            largest[name] = max(largest.get(name, 0), getattr(sizes, name))
        await trio.sleep(0.01)


async def test_announce_flood_is_bounded(tmp_path: Path) -> None:
    config = replace(FAST, max_wanted_per_peer=1000, max_wanted_announced=1500)
    async with network(tmp_path) as net:
        node, honest = await net.start(config), await net.start()
        link(honest, node)
        await connected(node, honest, count=1)
        largest: dict[str, int] = {}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_largest, node, largest)
            async with (
                hostile(Target.of(node), local_host="127.0.0.2") as first,
                hostile(Target.of(node), local_host="127.0.0.3") as second,
            ):
                await first.announce(random_ids(20_000))
                await second.announce(random_ids(20_000))
                announces = node.peering.counters.traffic.frames_in

                async def read_all() -> bool:
                    return announces[FrameType.ANNOUNCE] >= 40

                with trio.fail_after(20):
                    await until(read_all)
                raw = await send(honest, TaggedData(tag=b"t", data=b"through"), rng())
                with trio.fail_after(10):
                    await until(lambda: node.knows(decode_message(raw).id))
                assert not first.closed.is_set()
            nursery.cancel_scope.cancel()
        assert largest["wanted_by_one_peer"] == 1000
        assert largest["wanted_announced"] == 1500
        assert largest["wanted"] <= 1500 + 10
        assert largest["request_schedule"] <= 2 * largest["wanted"] + 64
        with trio.fail_after(10):
            await connected(node, count=1)  # both announcers left: nothing is wanted
        assert node.peering.sizes().wanted == 0


async def test_announcer_leaving_is_not_reasked(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        node, honest = await net.start(), await net.start()
        link(honest, node)
        await connected(node, honest, count=1)
        ids = random_ids(500)
        async with hostile(Target.of(node)) as announcer:
            await announcer.announce(ids)

            def asked(peer: HostilePeer) -> bool:
                got = {i for f in peer.frames if isinstance(f, Request) for i in f.ids}
                return got >= set(ids)

            with trio.fail_after(10):
                await announcer.wait_for(asked)
        with trio.fail_after(10):
            await connected(node, count=1)
        requests_in = honest.peering.counters.traffic.frames_in
        before = requests_in[FrameType.REQUEST]
        await trio.sleep(3.0)  # six request timeouts of FAST
        assert requests_in[FrameType.REQUEST] == before
        assert node.peering.sizes().wanted == 0


# -- eclipse and ban evasion -----------------------------------------------------------------


async def test_inbound_flood_cannot_take_static_slots(tmp_path: Path) -> None:
    config = replace(FAST, max_peers=4, max_inbound=2, max_inbound_per_host=16)
    async with network(tmp_path) as net:
        node = await net.start(config)
        statics = [await net.start() for _ in range(3)]
        async with swarm(Target.of(node), 6) as flood:
            with trio.fail_after(10):
                await until(lambda: _count_closed(flood, 4))
            assert node.peering.sizes().inbound_links == 2
            link(node, statics[0])
            link(node, statics[1])
            with trio.fail_after(10):
                await connected(node, count=4)
            link(node, statics[2])  # every slot taken: it replaces the newest inbound link
            with trio.fail_after(10):
                await until(lambda: _count_closed(flood, 5))
                await until(lambda: _all_connected(node, statics))
        assert node.peering.counters.dropped["TooManyPeersError"] >= 5


async def test_inbound_links_per_address_limited(tmp_path: Path) -> None:
    config = replace(FAST, max_inbound_per_host=3)
    async with network(tmp_path) as net:
        node, honest = await net.start(config), await net.start()
        async with swarm(Target.of(node), 8, local_host="127.0.0.2") as flood:
            with trio.fail_after(10):
                await until(lambda: _count_closed(flood, 5))
            await trio.sleep(0.5)
            assert sum(not peer.closed.is_set() for peer in flood) == 3
            sizes = node.peering.sizes()
            assert sizes.inbound_connections == 3
            assert sizes.inbound_hosts == 1
            async with hostile(Target.of(node), local_host="127.0.0.3") as other:
                link(honest, node)  # and from 127.0.0.1
                with trio.fail_after(10):
                    await connected(node, count=5)
                assert not other.closed.is_set()


async def test_ban_holds_across_node_ids_and_ports(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        node, honest = await net.start(), await net.start()
        target = Target.of(node)
        async with hostile(target) as cheat:
            with trio.fail_after(10):
                await until(lambda: _has(node, cheat))
            await cheat.message(bad_work(target))
            with trio.fail_after(10):
                await cheat.closed.wait()
        for _ in range(3):  # a new node id, a new source port each time
            async with hostile(target) as again:
                with trio.fail_after(10):
                    await again.closed.wait()
        assert node.peering.counters.dropped["PeerBannedError"] == 3
        async with hostile(target, local_host="127.0.0.2") as other:
            with trio.fail_after(10):
                await until(lambda: _has(node, other))
        link(node, honest)  # the ban of host 127.0.0.1 does not stop dialing a peer there
        with trio.fail_after(10):
            await connected(node, count=1)


# -- request amplification -------------------------------------------------------------------


async def test_request_amplification_is_budgeted(tmp_path: Path) -> None:
    budget = 64 * 1024
    config = replace(FAST, serve_bytes_per_s=budget, serve_burst_bytes=budget)
    async with network(tmp_path) as net:
        node, honest = await net.start(config), await net.start()
        link(honest, node)
        await connected(node, honest, count=1)
        raws = [
            await send(node, TaggedData(tag=b"big", data=bytes([n]) * 8000), rng(n))
            for n in range(16)
        ]
        ids = [decode_message(raw).id for raw in raws]
        async with hostile(Target.of(node)) as leech:
            start = trio.current_time()
            for _ in range(40):  # ~5 MB asked for in 40 small frames
                await leech.request(ids)
            # The node keeps reading the leech and relaying others' messages meanwhile.
            relayed = await send(honest, TaggedData(tag=b"t", data=b"through"), rng())
            with trio.fail_after(10):
                await until(lambda: node.knows(decode_message(relayed).id))
            await trio.sleep(1.0)
            served = sum(len(raw) for raw in leech.messages())
            elapsed = trio.current_time() - start
            assert served <= budget + budget * elapsed + 8200
            assert node.peering.counters.messages_not_served > 0
            assert not leech.closed.is_set()


async def _count_closed(peers: list[HostilePeer], count: int) -> bool:
    return sum(peer.closed.is_set() for peer in peers) >= count


async def _has(node: Peer, peer: HostilePeer) -> bool:
    record = info(node, peer.node_id)
    return record is not None and record.connected


async def _all_connected(node: Peer, others: list[Peer]) -> bool:
    records = [info(node, other.peering.node_id) for other in others]
    return all(record is not None and record.connected for record in records)
