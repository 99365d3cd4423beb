"""Peering on loopback TCP: relay across hops, bans, catch-up, partitions and the bandwidth rule.

Tests where timeouts matter run on virtual time (`autojump_clock`); since they also do real I/O
(sockets, sqlite in worker threads) the clock may only jump once everything has been idle for a
few real milliseconds, not at once. The others run on the real clock with the short timers of
`_gossip_net.FAST`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
import trio

from tangle.errors import InvalidFieldError, TooManyPeersError
from tangle.ledger.ledger import Inclusion
from tangle.p2p._admission import Admission, host_key
from tangle.p2p.gossip import (
    Heartbeat,
    MessageFrame,
    NodeId,
    encode_frame,
)
from tangle.p2p.peering import PeeringConfig
from tangle.protocol.ids import MilestoneId, Signature
from tangle.protocol.merkle import merkle_root
from tangle.protocol.message import decode_message, encode_message, prepare
from tangle.protocol.milestone import Milestone
from tangle.protocol.payload import TaggedData
from tangle.protocol.pow import work_value
from tangle.window.dag import GENESIS_ID
from tests._gossip_net import (
    PARAMS,
    Peer,
    connected,
    full_mesh,
    info,
    link,
    network,
    rng,
    send,
    send_transfer,
    until,
)
from tests.builders import NET, key, message, milestone

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from trio.testing import MockClock

    from tangle.protocol.ids import MessageId
    from tangle.storage.storage import Storage

IDLE_WAIT = 0.02
"""Real seconds everything must be idle before the virtual clock jumps (sockets, threads)."""


def _virtual(clock: MockClock) -> None:
    clock.autojump_threshold = IDLE_WAIT


async def _included(peers: list[Peer], ids: list[MessageId]) -> bool:
    def included(storage: Storage) -> bool:
        metas = [storage.metadata(message_id) for message_id in ids]
        return all(m is not None and m.inclusion is Inclusion.INCLUDED for m in metas)

    return all([await peer.node.read_storage(included) for peer in peers])


async def _same_ledger(peers: list[Peer]) -> bool:
    states = {await peer.state() for peer in peers}
    return len(states) == 1


def _bad_work_message() -> bytes:
    """A well-formed message whose nonce misses its proof-of-work target."""
    unsent = prepare(NET, TaggedData(tag=b"spam", data=b"x"), PARAMS.work_per_kib)
    nonce = next(n for n in range(1000) if work_value(unsent.root, n) > unsent.target)
    return encode_message(unsent.attach((GENESIS_ID,), nonce))


# -- relay ---------------------------------------------------------------------------------------


async def test_transfers_confirm_everywhere(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        coo, a, b, c = [await net.start() for _ in range(4)]
        link(a, coo)  # the coordinator's node talks to `a` only; b and c are two hops away
        link(b, a)
        link(c, b)
        link(c, a)
        await connected(coo, count=1)
        await connected(a, count=3)
        await connected(b, c, count=2)
        coordinator = await net.run_coordinator(coo, 0.2)
        r = rng()
        raws = []
        for n, peer in enumerate([c, b, a, c, b, coo, c, a]):
            raws.append(await send_transfer(peer, n, r))
            await trio.sleep(0.05)
        ids = [decode_message(raw).id for raw in raws]
        everyone = [coo, a, b, c]
        with trio.fail_after(20):
            await until(lambda: _included(everyone, ids))
        coordinator.cancel()
        with trio.fail_after(10):
            await until(lambda: _same_ledger(everyone))
        index, _ = await coo.state()
        assert index >= 2
        for peer in everyone:
            counters = peer.peering.counters
            assert counters.refused_for_cause == 0
            assert counters.bans == 0
            assert counters.messages_duplicate <= 2


async def test_bytes_received_per_unique_message_byte_in_a_full_mesh(tmp_path: Path) -> None:
    """A steady transfer load on a full mesh of four nodes: each message arrives about once."""
    async with network(tmp_path) as net:
        peers = [await net.start() for _ in range(4)]
        full_mesh(peers)
        await connected(*peers, count=3)
        await net.run_coordinator(peers[0], 0.25)
        r = rng(2)
        raws = []
        for n in range(60):
            raws.append(await send_transfer(peers[n % 4], n, r))
            await trio.sleep(0.03)
        ids = [decode_message(raw).id for raw in raws]
        with trio.fail_after(20):
            await until(lambda: _included(peers, ids))
        ratios = [peer.peering.bytes_received_per_unique_message_byte for peer in peers]
        print("bytes received per unique message byte:", [f"{x:.3f}" for x in ratios])
        assert all(1.0 < ratio <= 2.0 for ratio in ratios), ratios
        for peer in peers:
            counters = peer.peering.counters
            assert counters.messages_accepted >= 45
            assert counters.messages_duplicate <= 3


# -- misbehaving peers -------------------------------------------------------------------------


def _garbage() -> bytes:
    return b"\xff" * 64


def _oversized() -> bytes:
    return b"\x01" + (1 << 20).to_bytes(4, "little") + bytes(1000)


def _half_frame() -> bytes:
    return encode_frame(MessageFrame(raw=bytes(1000)))[:300]


def _bad_work() -> bytes:
    return encode_frame(MessageFrame(raw=_bad_work_message()))


def _forged_milestone() -> bytes:
    """A milestone with valid proof-of-work whose one signature does not verify."""
    ms = milestone(
        index=1,
        previous=MilestoneId(bytes(32)),
        parents=(GENESIS_ID,),
        root=merkle_root([]),
        signers=[key(4242)],
    )
    forged = Milestone(
        essence=ms.essence,
        signatures=(replace(ms.signatures[0], signature=Signature(bytes(64))),),
    )
    raw = message(forged, (GENESIS_ID,), work_per_kib=PARAMS.work_per_kib)
    return encode_frame(MessageFrame(raw=raw))


@pytest.mark.parametrize(
    ("misbehaviour", "error", "reason"),
    [
        (_garbage, "FrameError", "unknown frame type 255"),
        (_oversized, "FrameError", "above the limit of 32768"),
        (_half_frame, "FrameTimeoutError", "frame not finished within 10 s"),
        (_bad_work, "MisbehavingPeerError", "is above the target"),
        (_forged_milestone, "MisbehavingPeerError", "signature"),
    ],
)
async def test_a_misbehaving_peer_is_dropped_and_banned(
    tmp_path: Path,
    autojump_clock: MockClock,
    misbehaviour: Callable[[], bytes],
    error: str,
    reason: str,
) -> None:
    _virtual(autojump_clock)
    async with network(tmp_path) as net:
        a, b = await net.start(PeeringConfig()), await net.start(PeeringConfig())
        link(b, a)
        await connected(a, b, count=1)
        fake = await net.fake(a)
        await fake.handshake()
        await until(lambda: _has(a, fake.node_id))
        await fake.send(misbehaviour())
        with trio.fail_after(60):
            await fake.closed()
        record = info(a, fake.node_id)
        assert record is not None
        assert not record.connected
        assert record.banned_until is not None
        assert record.banned_until >= trio.current_time() + 500
        assert record.last_error is not None
        assert reason in record.last_error
        assert a.peering.counters.dropped == {error: 1}
        again = await net.fake(a, fake.node_id)  # the ban holds
        await again.handshake()
        with trio.fail_after(10):
            await again.closed()
        assert a.peering.counters.dropped["PeerBannedError"] == 1
        raw = await send_transfer(b, 0, rng())  # the others keep working
        with trio.fail_after(30):
            await until(lambda: a.knows(decode_message(raw).id))
        honest = info(a, b.peering.node_id)
        assert honest is not None
        assert honest.connected
        assert a.peering.counters.bans == 1


async def _has(peer: Peer, node_id: NodeId) -> bool:
    record = info(peer, node_id)
    return record is not None and record.connected


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"network_id": NET + 1}, "is on network 43"),
        ({"key_set_digest": bytes(32)}, "committee key-set digest"),
    ],
)
async def test_a_mismatched_handshake_is_refused_and_banned(
    tmp_path: Path, autojump_clock: MockClock, changes: dict[str, object], reason: str
) -> None:
    _virtual(autojump_clock)
    async with network(tmp_path) as net:
        a = await net.start(PeeringConfig())
        fake = await net.fake(a)
        await fake.handshake(**changes)
        with trio.fail_after(10):
            await fake.closed()
        (record,) = a.peering.peers()
        assert record.banned_until is not None
        assert reason in (record.last_error or "")


async def test_another_protocol_version_is_refused(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    _virtual(autojump_clock)
    async with network(tmp_path) as net:
        a = await net.start(PeeringConfig())
        fake = await net.fake(a)
        frame = bytearray(encode_frame(fake.hello()))
        frame[5] = 9  # the version byte
        await fake.send(bytes(frame))
        with trio.fail_after(10):
            await fake.closed()
        (record,) = a.peering.peers()
        assert "gossip protocol version 9" in (record.last_error or "")


async def test_frames_before_the_handshake_are_refused(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    _virtual(autojump_clock)
    async with network(tmp_path) as net:
        a = await net.start(PeeringConfig())
        fake = await net.fake(a)
        await fake.send(encode_frame(Heartbeat(confirmed_index=0, pruned_index=0, peer_count=0)))
        with trio.fail_after(10):
            await fake.closed()
        (record,) = a.peering.peers()
        assert "before the handshake" in (record.last_error or "")
        silent = await net.fake(a)
        with trio.fail_after(10):
            await silent.closed()  # no handshake within 5 s


async def test_a_flood_of_frames_is_refused(tmp_path: Path, autojump_clock: MockClock) -> None:
    _virtual(autojump_clock)
    limits = PeeringConfig().limits
    config = PeeringConfig(
        limits=type(limits)(frames_per_s=100, frame_burst=100, idle_timeout_s=60)
    )
    async with network(tmp_path) as net:
        a = await net.start(config)
        fake = await net.fake(a)
        await fake.handshake()
        beat = encode_frame(Heartbeat(confirmed_index=0, pruned_index=0, peer_count=0))
        await fake.send(beat * 10_000)
        with trio.fail_after(10):
            await fake.closed()
        record = info(a, fake.node_id)
        assert record is not None
        assert record.banned_until is not None
        assert "frames above 100/s" in (record.last_error or "")


async def test_a_silent_peer_is_dropped_but_not_banned(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    _virtual(autojump_clock)
    async with network(tmp_path) as net:
        a = await net.start(PeeringConfig())
        fake = await net.fake(a)
        await fake.handshake()
        start = trio.current_time()
        with trio.fail_after(60):
            await fake.closed()  # reads our heartbeats, sends nothing
        assert trio.current_time() - start == pytest.approx(20, abs=1)
        assert a.peering.counters.dropped == {"IdleTimeoutError": 1}
        assert info(a, fake.node_id) is None  # dropped, not banned


async def test_a_peer_that_does_not_read_is_dropped_as_too_slow(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    _virtual(autojump_clock)
    async with network(tmp_path) as net:
        a = await net.start(PeeringConfig(outbox_frames=64))
        fake = await net.fake(a)
        await fake.handshake()
        await until(lambda: _has(a, fake.node_id))
        junk = bytes(30_000)
        for n in range(800):  # ~24 MB it never reads
            await a.peering.publish(n.to_bytes(4, "little") + junk)
            if not await _has(a, fake.node_id):
                break
        with trio.fail_after(60):
            await until(lambda: _gone(a, fake.node_id), poll=1.0)
        assert a.peering.counters.dropped == {"SlowPeerError": 1}
        assert info(a, fake.node_id) is None  # dropped, not banned


async def _gone(peer: Peer, node_id: NodeId) -> bool:
    return not await _has(peer, node_id)


# -- connections ---------------------------------------------------------------------------------


async def test_two_nodes_dialing_each_other_keep_one_connection(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        a, b = await net.start(), await net.start()
        link(a, b)
        link(b, a)
        await connected(a, b, count=1)
        await trio.sleep(1.0)  # both dialers settle on the same connection
        await connected(a, b, count=1)
        assert len(a.peering.peers()) == len(b.peering.peers()) == 1
        raw = await send(a, TaggedData(tag=b"t", data=b"hello"), rng())
        with trio.fail_after(10):
            await until(lambda: b.knows(decode_message(raw).id))


async def test_a_node_does_not_dial_itself(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        a = await net.start()
        link(a, a)
        await trio.sleep(0.5)
        (record,) = a.peering.peers()
        assert not record.connected
        assert "this node itself" in (record.last_error or "")
        assert a.peering.counters.handshakes == 0


# -- catch-up, partitions ------------------------------------------------------------------------


async def test_a_late_joiner_catches_up_on_many_milestones(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        coo, a = await net.start(), await net.start()
        link(a, coo)
        await connected(coo, a, count=1)
        coordinator = net.coordinator(coo)
        r = rng(3)
        n = 0
        for index in range(1, 121):
            if index % 3 == 0:
                for _ in range(2):
                    await send_transfer(a if n % 2 else coo, n, r)
                    n += 1
                await trio.sleep(0.01)  # let the transfers reach the coordinator's node
            await coordinator.issue(coo.peering.publish)
        with trio.fail_after(20):
            await until(lambda: _same_ledger([coo, a]))
        late = await net.start()
        started = trio.current_time()
        link(late, a)
        with trio.fail_after(30):
            await until(lambda: _same_ledger([coo, a, late]))
        took = trio.current_time() - started
        print(f"caught up on 120 milestones in {took:.2f} s")
        assert (await late.state())[0] == 120
        counters = late.peering.counters
        assert counters.milestones_requested >= 100
        assert counters.refused_for_cause == 0


async def test_a_partition_heals(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        coo, a, c = [await net.start() for _ in range(3)]
        full_mesh([coo, a, c])
        await connected(coo, a, c, count=2)
        coordinator = await net.run_coordinator(coo, 0.2)
        r = rng(4)
        first = decode_message(await send_transfer(c, 0, r)).id
        with trio.fail_after(10):
            await until(lambda: _included([coo, a, c], [first]))
        for peer, other in ((c, coo), (c, a), (coo, c), (a, c)):  # cut c off
            assert peer.peering.remove_peer(other.peering.node_id)
        await connected(c, count=0)
        await trio.sleep(0.3)  # what was on its way has arrived
        before = (await c.state())[0]
        cut_off = await send_transfer(c, 1, r)  # nobody hears of it yet
        confirmed = await send_transfer(a, 2, r)
        with trio.fail_after(10):
            await until(lambda: _included([coo, a], [decode_message(confirmed).id]))
        assert (await c.state())[0] == before
        assert (await coo.state())[0] > before
        link(c, coo)  # heal
        link(c, a)
        await connected(coo, a, c, count=2)
        ids = [decode_message(raw).id for raw in (cut_off, confirmed)]
        with trio.fail_after(20):
            await until(lambda: _included([coo, a, c], ids))
        coordinator.cancel()
        with trio.fail_after(10):
            await until(lambda: _same_ledger([coo, a, c]))


async def test_peer_info_reports_each_connection(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        a, b = await net.start(), await net.start()
        address = a.peering.add_peer("127.0.0.1", b.port)
        await connected(a, b, count=1)
        raw = await send(a, TaggedData(tag=b"t", data=b"x"), rng())
        with trio.fail_after(10):
            await until(lambda: b.knows(decode_message(raw).id))
        (to_b,) = a.peering.peers()
        (to_a,) = b.peering.peers()
        assert to_b.node_id == b.peering.node_id
        assert to_b.address == str(address)
        assert to_b.outbound
        assert not to_a.outbound
        assert to_a.address == f"127.0.0.1:{a.port}"  # its listening port, from its handshake
        assert to_b.connected
        assert to_b.since is not None
        assert to_b.bytes_out >= len(raw)
        assert to_a.messages_in == 1
        assert to_a.unique_message_bytes_in == len(raw)
        assert to_a.bytes_in_by_type["MESSAGE"] == len(raw) + 5
        assert to_b.bytes_out_by_type["HANDSHAKE"] == 84
        assert to_b.banned_until is None
        assert a.peering.remove_peer(str(address))
        await connected(a, b, count=0)
        assert not a.peering.remove_peer(str(address))


@pytest.mark.slow
async def test_a_restarted_node_catches_up_on_thousands_of_milestones(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        coo, a = await net.start(), await net.start()
        link(a, coo)
        await connected(coo, a, count=1)
        coordinator = net.coordinator(coo)
        r = rng(5)
        for index in range(1, 2011):
            if index == 10:
                with trio.fail_after(10):
                    await until(lambda: _same_ledger([coo, a]))
                await net.stop(a)  # a goes down at milestone 9
            if index % 20 == 0:
                await send_transfer(coo, index // 20, r)
            await coordinator.issue(coo.peering.publish)
        assert (await coo.state())[0] == 2010
        restarted = await net.start(path=a.path)
        assert (await restarted.state())[0] == 9
        started = trio.current_time()
        link(restarted, coo)
        with trio.fail_after(60):
            await until(lambda: _same_ledger([coo, restarted]), poll=0.2)
        print(f"caught up on 2001 milestones in {trio.current_time() - started:.2f} s")


# -- admission rules, sans I/O -------------------------------------------------------------------


def test_hosts_are_ipv4_addresses_and_ipv6_slash_64s() -> None:
    assert host_key("192.0.2.7") == "192.0.2.7"
    assert host_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert (
        host_key("2001:db8:1:2:aaaa::1")
        == host_key("2001:db8:1:2:ffff::9")
        == ("2001:db8:1:2::/64")
    )
    assert host_key("2001:db8:1:3::1") != host_key("2001:db8:1:2::1")
    assert host_key("fe80::1%eth0") == "fe80::/64"
    assert host_key("peer.example") == "peer.example"


def test_connections_from_one_ipv6_slash_64_count_together() -> None:
    admission = Admission(PeeringConfig(max_inbound_per_host=2))
    first = admission.open_inbound("2001:db8::1")
    admission.open_inbound("2001:db8::2")
    with pytest.raises(TooManyPeersError, match="2 connections from 2001:db8::/64"):
        admission.open_inbound("2001:db8::3")
    admission.open_inbound("2001:db8:0:1::3")  # another /64
    admission.close_inbound(first)
    admission.open_inbound("2001:db8::3")
    assert (admission.inbound_connections, admission.hosts) == (3, 2)


def test_inbound_slots_cannot_exceed_the_peer_slots() -> None:
    with pytest.raises(InvalidFieldError, match="max_inbound"):
        PeeringConfig(max_peers=4, max_inbound=5)
