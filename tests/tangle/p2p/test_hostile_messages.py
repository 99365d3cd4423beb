"""Attacks with messages a peer has not worked for, through `hostile_peer` on loopback TCP:
payload-slot squatting (a copied payload and nonce on other parents) and replays of pruned
history. The nodes are `_gossip_net` nodes with their real `Peering` and a coordinator beside
the first; the hostile peer comes from its own loopback address."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from tangle.protocol.message import decode_message
from tangle.protocol.payload import TaggedData
from tangle.window.dag import GENESIS_ID
from tests._gossip_net import (
    ACCOUNTS,
    FUNDS,
    PARAMS,
    connected,
    link,
    network,
    rng,
    send,
    send_transfer,
    until,
)
from tests.builders import address, message, transfer
from tests.hostile_peer import Target, hostile, random_ids, reattach

if TYPE_CHECKING:
    from pathlib import Path

    from tests._gossip_net import Peer


async def _same(a: Peer, b: Peer) -> bool:
    return await a.state() == await b.state()


async def test_payload_squatting_does_not_split_the_network(tmp_path: Path) -> None:
    """The squatted node receives copies of a transfer's payload and nonce before the transfer:
    one on a parent that does not exist, one on the genesis (solid: it holds the slot there).
    The milestone confirming the real transfer still reaches it, and it follows."""
    async with network(tmp_path) as net:
        coo, squatted = await net.start(), await net.start()
        coordinator = net.coordinator(coo)
        await coordinator.issue(coo.peering.publish)
        tip = (await coo.node.read_core(lambda core: core.dag.tips()))[0]
        spent, owner = FUNDS[0]
        tx = transfer([(spent, owner)], [(address(ACCOUNTS[1]), 1_000_000)])
        real = message(tx, (tip,), work_per_kib=PARAMS.work_per_kib)
        async with hostile(Target.of(squatted), local_host="127.0.0.2") as bad:
            await bad.message(reattach(real, random_ids(1)))
            await bad.message(reattach(real, (GENESIS_ID,)))
            copies = [decode_message(reattach(real, (GENESIS_ID,))).id]
            with trio.fail_after(10):
                await until(lambda: squatted.knows(copies[0]))
        link(squatted, coo)
        await connected(coo, squatted, count=1)
        await coo.node.submit(real)
        await coo.peering.publish(real)
        await coordinator.issue(coo.peering.publish)
        with trio.fail_after(20):
            await until(lambda: _same(coo, squatted))
        assert await squatted.knows(decode_message(real).id)
        balance = await squatted.node.read_storage(lambda s: s.balance(address(ACCOUNTS[1])))
        assert balance == 2_000_000  # its own genesis output and the transfer


async def test_replayed_history_after_pruning_is_not_kept(tmp_path: Path) -> None:
    """Messages a node pruned, sent again as they were (no new work) to the restarted node: each
    is refused as below max depth or waits for parents it will never get until it expires; the
    window does not grow back."""
    async with network(tmp_path) as net:
        node = await net.start()
        coordinator = net.coordinator(node)
        r = rng(3)
        history = []
        for n in range(40):
            history.append(await send(node, TaggedData(tag=b"h", data=n.to_bytes(2, "little")), r))
            if n < 5:
                history.append(await send_transfer(node, n, r))
            await coordinator.issue(node.peering.publish)
        await node.node.write(lambda ledger: ledger.prune(16))
        await net.stop(node)
        node = await net.start(path=node.path)
        coordinator = net.coordinator(node)
        window = await node.node.read_core(lambda core: len(core.dag))
        replayed = history[:20]
        async with hostile(Target.of(node), local_host="127.0.0.2") as bad:
            for raw in replayed:
                await bad.message(raw)
            with trio.fail_after(10):
                await until(lambda: _handled(node, len(replayed)))
        assert await node.node.read_core(lambda core: len(core.dag)) == window
        pending = await node.node.read_core(lambda core: core.dag.pending_count())
        assert pending == node.peering.counters.messages_accepted  # none became solid
        max_age = await node.node.read_core(lambda core: core.dag.pending_limits.max_age)
        for _ in range(max_age + 2):
            await coordinator.issue(node.peering.publish)
        assert await node.node.read_core(lambda core: core.dag.pending_count()) == 0
        for raw in replayed:
            assert not await node.knows(decode_message(raw).id)


async def _handled(node: Peer, count: int) -> bool:
    counters = node.peering.counters
    handled = counters.refused_benign + counters.refused_other + counters.messages_accepted
    return handled >= count
