"""`GatewayTransport`: the wallet's `NodeClient`, unchanged, hands a node a constrained device's
records as its gateway (proof-of-work and plain submission), and the node takes them; the same
client without the transport, or as another gateway, is refused by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from tangle.protocol.device import IssuerRole, Update
from tangle.protocol.gateway_request import encode_batch
from tests.builders import NET, on_tips
from tests.registry_records import admit, device_id, record, register, signer
from tests.tangle.http.test_api import PARAMS, SIGNERS, Net, network
from tests.tangle.http.test_api_devices import _send
from wallet.client import NodeClient
from wallet.devices.gateway_transport import GatewayTransport
from wallet.errors import RejectedError

if TYPE_CHECKING:
    from pathlib import Path

    from starlette.types import ASGIApp

    from coordinator.signers import KeySigner
    from tangle.protocol.device import DeviceRecord

MAKER, OP = signer(90), signer(91)
GATEWAY, OTHER, SENSOR = signer(92), signer(93), signer(94)


def _update(n: int) -> DeviceRecord:
    body = Update(device_id=device_id(SENSOR), serial=n, attributes_hash=bytes([n]) * 32, uri=b"")
    return record(body, [SENSOR])


def _client(app: ASGIApp, gateway: KeySigner | None) -> NodeClient:
    inner = httpx.ASGITransport(app)
    if gateway is None:
        return NodeClient("http://node", transport=inner)
    transport = GatewayTransport(
        network_id=NET, gateway=device_id(gateway), key=gateway, inner=inner
    )
    return NodeClient("http://node", transport=transport)


async def _registered(net: Net) -> None:
    await _send(
        net,
        admit(MAKER, IssuerRole.MAKER, SIGNERS[:2]),
        admit(OP, IssuerRole.OPERATOR, SIGNERS[:2]),
    )
    await net.milestone()
    await _send(net, register(GATEWAY, MAKER, [OP]), register(OTHER, MAKER, [OP]))
    await net.milestone()
    await _send(net, register(SENSOR, MAKER, [OP], gateway=device_id(GATEWAY)))
    await net.milestone()


async def test_a_gateways_client_hands_in_its_sensors_records(tmp_path: Path) -> None:
    assert PARAMS.network_id == NET
    async with network(tmp_path) as net:
        await _registered(net)
        async with (
            _client(net.app, GATEWAY) as served,
            _client(net.app, OTHER) as other,
            _client(net.app, None) as plain,
        ):
            for client, code in ((plain, "unserved_device"), (other, "gateway_not_serving")):
                with pytest.raises(RejectedError) as refused:
                    await client.submit_pow(_update(1))
                assert refused.value.code == code
            await served.submit_pow(_update(1))
            raw = on_tips(net.ledger.core, _update(2), net.rng)
            with pytest.raises(RejectedError, match="unserved_device"):
                await plain.submit(raw)
            await served.submit(raw)


async def test_an_octet_stream_batch_is_signed_like_a_json_one(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        await _registered(net)
        raws = [on_tips(net.ledger.core, _update(n), net.rng) for n in (1, 2)]
        body = encode_batch(raws)
        headers = {"content-type": "application/octet-stream"}
        signing = GatewayTransport(
            network_id=NET,
            gateway=device_id(GATEWAY),
            key=GATEWAY,
            inner=httpx.ASGITransport(net.app),
        )
        plain = httpx.ASGITransport(net.app)
        codes = []
        for transport in (plain, signing):
            async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
                response = await client.post(
                    "/api/v1/messages/batch", content=body, headers=headers
                )
            assert response.status_code == 200, response.text
            codes.append([r.get("error", {}).get("code") for r in response.json()["results"]])
        assert codes == [["unserved_device"] * 2, [None, None]]
