"""The device side against a real node (a `LedgerNode` with its coordinator, reached through
the wallet's `NodeClient` over the node's ASGI app): a device registers at start-up, updates on
change and rotates its key; its readings go through a gateway, are anchored, and their proofs
are collected from the node and verified offline."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from tangle.ledger.committee import KeySchedule
from tangle.protocol.device import DeviceStatus, IssuerRole
from tangle.protocol.ids import blake2b_256
from tests.registry_records import admit, signer
from tests.tangle.http.test_api import KEY_SET, NET, SIGNERS, Net, network
from tests.wallet.test_client_retries import Scripted
from wallet.client import NodeClient
from wallet.config import RetryPolicy
from wallet.devices.agent import DeviceAgent, Profile
from wallet.devices.collect import collect_bundle
from wallet.devices.errors import NotRegisteredError, ProofUnavailableError
from wallet.devices.gateway import Gateway, anchor_batch
from wallet.devices.proof import verify_bundle

if TYPE_CHECKING:
    from pathlib import Path

MAKER, OPERATOR = signer(10), signer(11)
SCHEDULE = KeySchedule(entries=((1, KEY_SET),))
PROFILE = Profile(maker=MAKER.public_key, model=b"thermo-3", attributes_hash=blake2b_256(b"v1"))


async def _admit_issuers(net: Net) -> None:
    for issuer, role in ((MAKER, IssuerRole.MAKER), (OPERATOR, IssuerRole.OPERATOR)):
        body = admit(issuer, role, SIGNERS[:2])
        async with NodeClient("http://node", transport=httpx.ASGITransport(net.app)) as client:
            await client.submit_pow(body)
    await net.milestone()


def _client(net: Net) -> NodeClient:
    return NodeClient(
        "http://node",
        transport=httpx.ASGITransport(net.app),
        retry=RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.01),
    )


async def test_register_update_rotate_and_prove_readings(tmp_path: Path) -> None:
    async with network(tmp_path) as net, _client(net) as client:
        await _admit_issuers(net)
        agent = DeviceAgent(client, network_id=NET, key=signer(20))
        with pytest.raises(NotRegisteredError):
            await agent.update(blake2b_256(b"v2"), b"")
        assert await agent.start(PROFILE, [MAKER, OPERATOR]) is not None
        await net.milestone()
        entry = await agent.entry()
        assert entry is not None
        assert (entry.status, entry.key, entry.serial) == (DeviceStatus.ACTIVE, agent.public_key, 0)
        assert await agent.start(PROFILE, [MAKER, OPERATOR]) is None  # nothing changed
        assert await agent.update(blake2b_256(b"v2"), b"https://example.org/d") is not None
        await net.milestone()
        entry = await agent.entry()
        assert entry is not None
        assert (entry.attributes_hash, entry.serial) == (blake2b_256(b"v2"), 1)

        gateway = Gateway(network_id=NET)
        gateway.serve(agent.device_id, agent.public_key)
        for t in range(5):
            gateway.accept(agent.reading(f"{t} C".encode(), timestamp_ms=t))
        batch = gateway.seal()
        assert batch is not None
        anchor_id = await anchor_batch(client, batch)
        with pytest.raises(ProofUnavailableError, match="no milestone has confirmed the anchor"):
            await collect_bundle(client, batch, 0, anchor_id)
        await net.milestone()
        bundles = [await collect_bundle(client, batch, i, anchor_id) for i in range(5)]
        for bundle in bundles:
            proved = verify_bundle(bundle, SCHEDULE)
            assert proved.anchor_id == anchor_id

        old_key = agent.public_key
        await agent.rotate(signer(21), OPERATOR)
        await net.milestone()
        entry = await agent.entry()
        assert entry is not None
        assert (entry.key, entry.serial) == (signer(21).public_key, 2)
        assert entry.key != old_key
        # after the rotation the node still serves the entry as the anchor's milestone left it
        late = await collect_bundle(client, batch, 0, anchor_id)
        assert late == bundles[0]
        assert verify_bundle(late, SCHEDULE).device.key == old_key
        gateway.serve(agent.device_id, agent.public_key)
        gateway.accept(agent.reading(b"after rotation", timestamp_ms=9))
        assert gateway.last_counter(agent.device_id) == 6


async def test_a_rotation_whose_answer_was_lost_moves_the_agent_to_the_new_key(
    tmp_path: Path,
) -> None:
    """The client's second try of the rotation is refused as `duplicate_payload` (the first
    attached it): the agent takes the new key, and the registry applies the rotation once; a
    later call with the same keys finds it applied and sends nothing."""
    async with network(tmp_path) as net:
        await _admit_issuers(net)
        pow_route = ("POST", "/api/v1/messages/pow")
        losing = Scripted(httpx.ASGITransport(net.app), pow_route, ["lost"])
        retry = RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.01)
        async with (
            _client(net) as client,
            NodeClient("http://node", transport=losing, retry=retry) as lossy,
        ):
            agent = DeviceAgent(client, network_id=NET, key=signer(30))
            await agent.start(PROFILE, [MAKER, OPERATOR])
            await net.milestone()
            rotating = DeviceAgent(lossy, network_id=NET, key=signer(30))
            assert await rotating.rotate(signer(31), OPERATOR) is None
            assert losing.played == ["lost"]
            assert rotating.public_key == signer(31).public_key
            await net.milestone()
            entry = await rotating.entry()
            assert entry is not None
            assert (entry.key, entry.serial) == (signer(31).public_key, 1)
            assert await rotating.rotate(signer(31), OPERATOR) is None  # applied: nothing sent
            assert rotating.public_key == signer(31).public_key
