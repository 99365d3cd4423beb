"""The paywall refuses a payer that is a device under quarantine (`403 quarantined_device`),
asking a real node's `GET /api/v1/keys/{key}/device` through `LedgerDevices`, whose answers are
cached per payer for a while and bounded in number; a device that rotated its key to the payer's
is refused by its current key."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from payments.payperuse.standing import LedgerDevices
from tangle.protocol.device import IssuerRole, LiftQuarantine, Quarantine
from tests.payments.payperuse.test_paywall import PAYEE, PAYER, Service, header_of
from tests.registry_records import admit, device_id, record, register, signer
from tests.tangle.http.test_api import SIGNERS, Net, network
from tests.tangle.http.test_api_device_keys import rotated_and_quarantined
from tests.tangle.http.test_api_devices import _send
from wallet.client import NodeClient

if TYPE_CHECKING:
    from pathlib import Path

    from tangle.protocol.device import DeviceRecord

MAKER, OP1, OP2 = signer(60), signer(61), signer(62)


class Clock:
    """Virtual time for the cache."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _quarantine(serial: int) -> DeviceRecord:
    body = Quarantine(
        device_id=device_id(PAYER),
        serial=serial,
        reason=1,
        evidence_hash=bytes(32),
        expires_after=1_000,
    )
    return record(body, [OP1, OP2])


async def _payer_registered(net: Net) -> None:
    await _send(
        net,
        admit(MAKER, IssuerRole.MAKER, SIGNERS[:2]),
        admit(OP1, IssuerRole.OPERATOR, SIGNERS[:2]),
        admit(OP2, IssuerRole.OPERATOR, SIGNERS[:2]),
    )
    await net.milestone()
    await _send(net, register(PAYER, MAKER, [OP1]))
    await net.milestone()


async def test_a_quarantined_device_is_refused_until_the_quarantine_is_lifted(
    tmp_path: Path,
) -> None:
    async with network(tmp_path) as net:
        await _payer_registered(net)
        clock = Clock()
        node = NodeClient("http://node", transport=httpx.ASGITransport(net.app))
        devices = LedgerDevices(node, ttl_s=5.0, clock=clock)
        service = Service(tmp_path, devices=devices)
        try:
            channel = await service.channel()
            async with service.client() as client:
                paid = await client.get("/reading", headers=header_of(channel.pay(10)))
                assert paid.status_code == 200  # a registered device in good standing

                await _send(net, _quarantine(1))
                await net.milestone()
                clock.now += 5.0  # the cached answer expires
                proof = channel.pay(10)
                refused = await client.get("/reading", headers=header_of(proof))
                assert (refused.status_code, refused.json()["error"]["code"]) == (
                    403,
                    "quarantined_device",
                )
                assert service.in_memory()[channel.terms.channel_id][0] == 1  # nothing credited

                await _send(
                    net, record(LiftQuarantine(device_id=device_id(PAYER), serial=2), [OP1, OP2])
                )
                await net.milestone()
                cached = await client.get("/reading", headers=header_of(proof))
                assert cached.json()["error"]["code"] == "quarantined_device"  # within ttl_s
                clock.now += 5.0
                lifted = await client.get("/reading", headers=header_of(proof))
                assert lifted.status_code == 200, lifted.text
            assert [path for path, _ in service.calls] == ["/reading", "/reading"]
        finally:
            await service.store.aclose()
            await node.aclose()


async def test_the_cache_is_bounded_and_a_key_that_is_no_device_stands(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        await _payer_registered(net)
        await _send(net, _quarantine(1))
        await net.milestone()
        node = NodeClient("http://node", transport=httpx.ASGITransport(net.app))
        devices = LedgerDevices(node, max_entries=2, clock=Clock())
        try:
            assert await devices.quarantined_until(PAYER.public_key) == 1_000
            assert await devices.quarantined_until(PAYEE.public_key) is None
            for n in range(5):
                assert await devices.quarantined_until(signer(200 + n).public_key) is None
                assert len(devices) <= 2
        finally:
            await node.aclose()


async def test_a_device_that_rotated_onto_the_payer_key_and_is_quarantined_is_refused(
    tmp_path: Path,
) -> None:
    """The device registered with another key and rotated to PAYER's: its id is not
    `device_id_of(PAYER)`, and it is found by its current key all the same."""
    first = signer(63)
    async with network(tmp_path) as net:
        await rotated_and_quarantined(net, first, PAYER)
        node = NodeClient("http://node", transport=httpx.ASGITransport(net.app))
        service = Service(tmp_path, devices=LedgerDevices(node, clock=Clock()))
        try:
            channel = await service.channel()
            async with service.client() as client:
                refused = await client.get("/reading", headers=header_of(channel.pay(10)))
                assert (refused.status_code, refused.json()["error"]["code"]) == (
                    403,
                    "quarantined_device",
                )
            assert service.calls == []
            assert channel.terms.channel_id not in service.in_memory()  # nothing credited
            assert await LedgerDevices(node).quarantined_until(first.public_key) is None
        finally:
            await service.store.aclose()
            await node.aclose()
