"""The devnet as processes under stress: a node SIGKILLed under load and restarted, a node cut off
from its peers and healed, and hostile peers on a node's p2p port.

Every member is a real `tanglepay` process (`tests/_network_harness.py`); transfers are signed,
worked and submitted through the nodes' HTTP APIs, and what the nodes confirmed is read from
their event streams, metadata and `/api/v1/info`.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import pytest
import trio

from tangle.p2p.gossip import Handshake, NodeId
from tests._network_harness import (
    Cluster,
    Follower,
    Load,
    Payer,
    Probe,
    bad_work_frame,
    cluster,
    handshake,
    probe,
    script,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from tests._network_harness import Script


async def _advance(
    net: Cluster, name: str, milestones: int, *, within: float = 20, logs: Sequence[str] = ()
) -> int:
    """Wait until `name` confirmed `milestones` more milestones; returns its index then."""
    goal = await net.index(name) + milestones

    async def reached() -> bool:
        return await net.index(name) >= goal

    await net.wait_for(
        f"{name} at milestone {goal}", reached, within=within, logs=logs or ["coordinator", name]
    )
    return goal


async def _confirmed_all(net: Cluster, seen: Follower, accepted: dict[str, str]) -> None:
    """Wait until `seen`'s node reported each acknowledged transfer (message id -> the node that
    accepted it) in a milestone; all must be included. A failure shows where the missing ones
    stand on every running node."""
    wanted = set(accepted)

    async def referenced() -> bool:
        return wanted <= seen.transactions.keys()

    try:
        await net.wait_for(
            f"acknowledged transfers referenced on {seen.name}", referenced, within=30
        )
    except AssertionError as exc:
        missing = sorted(wanted - seen.transactions.keys())
        lines = [f"{len(missing)} of {len(wanted)} never referenced; the first ones:"]
        for message_id in missing[:8]:
            where = {
                name: (await _metadata(net, name, [message_id]))[message_id] for name in net.running
            }
            lines.append(f"  {message_id[:16]} (sent to {accepted[message_id]}): {where}")
        exc.add_note("\n".join(lines))
        raise
    refused = {m: seen.transactions[m] for m in wanted if seen.transactions[m][1] != "included"}
    assert not refused, f"transfers that spend distinct outputs were not included: {refused}"


async def _same_ledger(net: Cluster, names: Sequence[str]) -> None:
    """Wait until `names` are at the same milestone; their ledger state hashes must agree."""
    infos: dict[str, dict[str, Any]] = {}

    async def same_index() -> bool:
        infos.clear()
        for name in names:
            infos[name] = await net.info(name)
        return len({i["confirmed_milestone_index"] for i in infos.values()}) == 1

    await net.wait_for(f"{', '.join(names)} at one milestone", same_index, within=30, logs=names)
    hashes = {name: info["ledger_state_hash"] for name, info in infos.items()}
    assert len(set(hashes.values())) == 1, f"ledgers differ at the same milestone: {hashes}"


async def _metadata(net: Cluster, name: str, ids: Iterable[str]) -> dict[str, Any]:
    """Metadata of `ids` on `name` (None for a message it does not know)."""
    found: dict[str, Any] = {}
    limiter = trio.CapacityLimiter(8)

    async def one(message_id: str) -> None:
        async with limiter:
            response = await net.client.get(
                f"{net.member(name).api}/api/v1/messages/{message_id}/metadata"
            )
        found[message_id] = response.json() if response.status_code == 200 else None

    async with trio.open_nursery() as nursery:
        for message_id in ids:
            nursery.start_soon(one, message_id)
    return found


def _mismatches(metadata: dict[str, Any], expected: dict[str, int]) -> dict[str, Any]:
    """Messages whose metadata is not INCLUDED by the expected milestone."""
    return {
        m: metadata[m]
        for m, index in expected.items()
        if metadata[m] is None
        or metadata[m]["inclusion"] != "included"
        or metadata[m]["referenced_by"] != index
    }


@pytest.mark.slow
async def test_node_killed_under_load_catches_up_and_loses_no_confirmed_transfer(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, nodes=3) as net:
        seen = Follower("node1")
        await net.nursery.start(seen.run, net)
        payer = Payer.of(net.devnet.accounts, seed=1)
        await payer.fund(net, "node1", parts=16)
        load = Load(net, payer, targets=["node1", "node2", "node3"], source="node1", rate=30)
        await net.nursery.start(load.run)
        started = trio.current_time()
        await _advance(net, "node1", 3)

        killed_at = await net.index("node2")
        await net.kill("node2")
        down_from = await net.index("node1")
        await _advance(net, "node1", 4, logs=["coordinator", "node1", "node3"])
        await _advance(net, "node3", 1, logs=["coordinator", "node3"])
        missed = await net.index("node1") - down_from
        await net.start("node2")
        resumed_at = await net.index("node2")
        assert resumed_at >= killed_at, "node2 did not resume from its database"
        rejoined = Follower("node2")
        await net.nursery.start(rejoined.run, net)
        await _advance(net, "node1", 2)
        load.stop()
        rate = len(payer.accepted) / (trio.current_time() - started)

        # Every transfer a node acknowledged, node2's last ones before the kill included, is
        # confirmed, and without conflicts: the generator spends each output once.
        await _confirmed_all(net, seen, payer.accepted)
        assert payer.refused == []
        assert seen.conflicting == 0
        assert rate >= 10, f"the load was {rate:.1f} transfers/s"

        # node2 catches up, and its ledger equals its peers' at each milestone.
        final = await net.index("node1")

        async def caught_up() -> bool:
            return await net.index("node2") >= final and final in rejoined.milestones

        await net.wait_for(f"node2 at milestone {final}", caught_up, within=30, logs=["node2"])
        common = seen.milestones.keys() & rejoined.milestones.keys()
        differing = {i for i in common if seen.milestones[i] != rejoined.milestones[i]}
        assert final in common
        assert not differing, f"node1 and node2 disagree on the ledger at milestones {differing}"
        await _same_ledger(net, net.names)

        # No confirmed message is lost: what node1 reports INCLUDED is INCLUDED on node2, by the
        # same milestone, including the milestones node2 slept through.
        included = seen.included()
        during_outage = [m for m, i in included.items() if down_from < i <= down_from + missed]
        assert during_outage, "no transfer was confirmed while node2 was down"
        metadata = await _metadata(net, "node2", included)
        lost = _mismatches(metadata, included)
        assert not lost, f"{len(lost)} of {len(included)} confirmed transfers differ on node2"


async def _cut(net: Cluster, name: str, node_id: str) -> list[str]:
    """Remove every gossip link of `name` on both ends: `name` drops its peers by node id, the
    members that dial it stop (by its address). Returns those members."""
    for peer_id in await net.connected(name):
        response = await net.admin(name, "DELETE", f"/peers/{peer_id}")
        assert response.status_code == 204, response.text
    address = net.member(name).p2p
    dialers = []
    for other in net.names:
        for peer in await net.peers(other) if other != name else []:
            if peer["node_id"] == node_id or peer["address"] == address:
                response = await net.admin(other, "DELETE", f"/peers/{address}")
                assert response.status_code == 204, f"{other}: {response.text}"
                dialers.append(other)
    return dialers


async def _apart(net: Cluster, name: str, node_id: str) -> bool:
    """Whether `name` has no peer and no other member lists it."""
    if await net.connected(name):
        return False
    address = net.member(name).p2p
    for other in net.names:
        if other != name and any(
            peer["node_id"] == node_id or peer["address"] == address
            for peer in await net.peers(other)
        ):
            return False
    return True


@pytest.mark.slow
async def test_partitioned_node_falls_behind_and_converges_after_healing(tmp_path: Path) -> None:
    async with cluster(tmp_path, nodes=3) as net:
        isolated, others = "node3", ["coordinator", "node1", "node2"]
        accounts = net.devnet.accounts
        local, remote = Payer.of(accounts[:4], seed=2), Payer.of(accounts[4:], seed=3)
        seen = Follower("node1")
        await net.nursery.start(seen.run, net)
        await local.fund(net, isolated, parts=16)
        await remote.fund(net, "node1", parts=16)
        loads = [
            Load(net, local, targets=[isolated], source=isolated, rate=10),
            Load(net, remote, targets=["node1", "node2"], source="node1", rate=10),
        ]
        for load in loads:
            await net.nursery.start(load.run)
        await _advance(net, "coordinator", 2)

        # Cut node3 off: it closes its links, the others stop dialing it.
        node_id = (await net.node_ids())[isolated]
        dialers = await _cut(net, isolated, node_id)
        assert sorted(dialers) == others

        async def apart() -> bool:
            return await _apart(net, isolated, node_id)

        await net.wait_for("node3 without links", apart, within=10, logs=net.names)
        frozen = await net.index(isolated)
        stranded_from = len(local.accepted)
        await _advance(net, "coordinator", 4, logs=others)
        assert await apart(), "a link to node3 came back during the partition"
        assert await net.index(isolated) == frozen, "node3 confirmed a milestone while cut off"
        assert await net.index("coordinator") >= frozen + 4
        stranded = list(local.accepted)[stranded_from:]
        assert stranded, "no transfer reached node3 during the partition"
        unknown = await _metadata(net, "node1", stranded)
        assert all(found is None for found in unknown.values()), "node3 was not cut off"

        # Heal: the dialers dial node3 again; it catches up and its transfers get confirmed.
        host, port = net.p2p(isolated)
        for dialer in dialers:
            response = await net.admin(dialer, "POST", "/peers", {"host": host, "port": port})
            assert response.status_code == 201, response.text
        ids = await net.node_ids()

        async def healed() -> bool:
            return set(await net.connected(isolated)) == {ids[o] for o in others}

        await net.wait_for("node3 linked to every member", healed, within=15, logs=net.names)
        await _advance(net, "coordinator", 2)
        for load in loads:
            load.stop()
        await _confirmed_all(net, seen, local.accepted | remote.accepted)
        assert local.refused == remote.refused == []
        assert seen.conflicting == 0
        await _same_ledger(net, net.names)
        included = seen.included()
        mine = {m: included[m] for m in stranded}
        metadata = await _metadata(net, isolated, mine)
        wrong = _mismatches(metadata, mine)
        assert not wrong, f"node3's own transfers differ on node3: {wrong}"


# -- hostile peers -----------------------------------------------------------------------------

_HUGE_HEADER = b"\x01\xff\xff\xff\xff"
"""A MESSAGE frame header announcing a 4 GiB body."""
_HALF_MESSAGE = b"\x01" + (1000).to_bytes(4, "little") + bytes(495)
"""The first half of a 1000-byte MESSAGE frame."""
_HTTP = b"GET /api/v1/info HTTP/1.1\r\nHost: node\r\n\r\n"
"""Garbage: a confused HTTP client."""


def _node_id() -> NodeId:
    return NodeId(secrets.token_bytes(32))


@pytest.mark.slow
async def test_hostile_peers_are_closed_and_banned_while_the_node_keeps_confirming(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, nodes=2) as net:
        target = "node1"
        ids = await net.node_ids()
        honest = {ids["coordinator"], ids["node2"]}
        links_before = {p["node_id"]: p["since"] for p in await net.peers(target) if p["connected"]}
        assert honest <= links_before.keys()
        seen = Follower(target)
        await net.nursery.start(seen.run, net)
        payer = Payer.of(net.devnet.accounts, seed=4)
        await payer.fund(net, target, parts=4)
        load = Load(net, payer, targets=[target], source=target, rate=5)
        await net.nursery.start(load.run)
        first = await net.index(target)
        outages: list[str] = []

        async def watch_api() -> None:
            while True:
                try:
                    await net.info(target)
                except Exception as exc:  # any failure to answer counts
                    outages.append(repr(exc))
                await trio.sleep(0.25)

        net.nursery.start_soon(watch_api)

        # What each connection sends (steps half a second apart, so that the node reads the
        # handshake on its own), and when the node must close it after our last bytes. Each
        # comes from its own loopback address (bans are by host): "banned again" reuses the
        # node id of "bad work" from yet another host.
        slow_id, bad_id, big_id = _node_id(), _node_id(), _node_id()
        spec = net.spec
        attacks: dict[str, tuple[Script, float, float]] = {
            "garbage": (script(_HTTP), 0, 3),
            "half handshake": (script(handshake(spec, _node_id())[:40]), 4.5, 9),
            "oversized": (script(handshake(spec, big_id), _HUGE_HEADER), 0, 3),
            # Never finished, never idle: a byte a second.
            "slowloris": (script(handshake(spec, slow_id), _HALF_MESSAGE, trickle=True), 9, 16),
            "bad work": (script(handshake(spec, bad_id), bad_work_frame(spec)), 0, 3),
            "banned again": (script(handshake(spec, bad_id)), 0, 3),
        }
        hosts = {name: f"127.0.0.{n}" for n, name in enumerate(attacks, start=2)}
        probes: dict[str, Probe] = {}

        async def attack(name: str) -> None:
            hostile, _, latest = attacks[name]
            probes[name] = await probe(
                net.p2p(target), hostile, within=latest + 5, local_host=hosts[name]
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(attack, "slowloris")
            nursery.start_soon(attack, "half handshake")
            for name in ("garbage", "oversized", "bad work"):
                await attack(name)
            bad_work_peer = {p["id"]: p for p in await net.peers(target)}.get(bad_id.hex())
            await attack("banned again")
            newcomer = await probe(net.p2p(target), script(handshake(spec, _node_id())), within=3)
        load.stop()

        for name, (_, earliest, latest) in attacks.items():
            closed = probes[name].closed_after("sent")
            assert closed is not None, f"{name}: the node left the connection open"
            assert earliest <= closed < latest, f"{name}: closed {closed:.2f} s after our bytes"
        assert newcomer.closed_after("sent") is None, "a well-behaved newcomer was closed"
        greeting = newcomer.frames()[0]
        assert isinstance(greeting, Handshake)
        assert greeting.node_id.hex() == ids[target]

        peers = {p["id"]: p for p in await net.peers(target)}
        banned = {
            # Before its handshake a peer is known by its source address only.
            "garbage": (f"127.0.0.2:{probes['garbage'].local_port}", "bad frame of type 71"),
            "oversized": (big_id.hex(), "bad frame of type 1: frame body is 4294967295"),
            "slowloris": (slow_id.hex(), "frame not finished within 10 s"),
            "banned again": (bad_id.hex(), "peer 127.0.0.7"),
        }
        for name, (key, error) in banned.items():
            peer = peers.get(key, {})
            assert peer.get("banned_until") is not None, f"{name}: not banned: {peer}"
            assert peer["last_error"].startswith(error), f"{name}: {peer['last_error']}"
        assert bad_work_peer is not None
        assert "above the target" in bad_work_peer["last_error"]
        assert bad_work_peer["banned_until"] is not None
        assert await net.metric(target, "tangle_gossip_bans_total") >= 4

        # Meanwhile the node served its API, kept its honest links and confirmed milestones.
        assert outages == []
        links_after = {p["node_id"]: p["since"] for p in await net.peers(target) if p["connected"]}
        assert {i: links_after.get(i) for i in honest} == {i: links_before[i] for i in honest}
        assert await net.index(target) >= first + 8
        await _confirmed_all(net, seen, payer.accepted)
        await _same_ledger(net, net.names)


@pytest.mark.slow
async def test_a_bad_frame_in_the_handshake_segment_still_bans_the_node_id(
    tmp_path: Path,
) -> None:
    """As the oversized case above, but the header comes in the same write as the handshake, so
    the node reads both at once: it must still ban the node id the handshake named."""
    async with cluster(tmp_path, nodes=1) as net:
        node_id = _node_id()

        packed = script(handshake(net.spec, node_id) + _HUGE_HEADER)
        first = await probe(net.p2p("node1"), packed, within=5)
        assert first.closed_at is not None
        again = script(handshake(net.spec, node_id))  # from another host: the node id is banned
        second = await probe(net.p2p("node1"), again, within=3, local_host="127.0.0.2")
        bans = {p["id"]: p["last_error"] for p in await net.peers("node1") if p["banned_until"]}
        assert second.closed_at is not None, f"node id {node_id.hex()[:16]} got in; bans: {bans}"
        assert node_id.hex() in bans


@pytest.mark.slow
async def test_a_hostile_peer_cannot_get_an_honest_peer_banned(tmp_path: Path) -> None:
    """A hostile peer on node2's IP claims node2's listen port and earns a ban on node1; when
    the link between node1 and node2 drops (node2 closes it), node1 must dial node2 again."""
    async with cluster(tmp_path, nodes=2) as net:
        _, honest_port = net.p2p("node2")
        ids = await net.node_ids()

        claim = handshake(net.spec, _node_id(), listen_port=honest_port)
        impostor = script(claim, bad_work_frame(net.spec))

        async def link_since() -> float | None:
            """When node1's current link to node2 came up (None: there is none)."""
            for peer in await net.peers("node1"):
                if peer["node_id"] == ids["node2"] and peer["connected"]:
                    return float(peer["since"])
            return None

        hostile = await probe(net.p2p("node1"), impostor, within=5)
        assert hostile.closed_at is not None
        dropped = await link_since()
        response = await net.admin("node2", "DELETE", f"/peers/{ids['node1']}")
        assert response.status_code == 204

        async def back() -> bool:
            since = await link_since()
            return since is not None and since != dropped

        try:
            await net.wait_for("node1 linked to node2 again", back, within=5)
        except AssertionError:
            peers = {p["address"]: p["last_error"] for p in await net.peers("node1")}
            raise AssertionError(f"node1 does not take node2 back; its peers: {peers}") from None
