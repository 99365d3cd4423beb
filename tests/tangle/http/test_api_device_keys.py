"""`GET /api/v1/keys/{key}/device` and `NodeClient.device_by_key`, against a real node whose
coordinator applies a registration, a key rotation and a quarantine: the device is found by its
current key only (with its audit path on request, schema-valid), its old key is 404
`unknown_device_key`, and a key that is not 64 hex digits is 400 `invalid_id`; the explorer's
search box resolves the current key (not the old one) to the device."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from tangle.ledger.registry import encode_entry
from tangle.protocol.device import IssuerRole, Quarantine, RotateKey
from tangle.protocol.merkle import MerklePath, root_from_path
from tangle.protocol.transaction import address_of
from tests.registry_records import admit, device_id, record, register, signer
from tests.tangle.http.test_api import SIGNERS, Net, network
from tests.tangle.http.test_api_devices import _check_schema, _send
from wallet.client import NodeClient
from wallet.errors import NotFoundError

if TYPE_CHECKING:
    from pathlib import Path

    from coordinator.signers import KeySigner

MAKER, OP1, OP2 = signer(70), signer(71), signer(72)
DEVICE, NEW_KEY = signer(73), signer(74)


async def rotated_and_quarantined(
    net: Net, device: KeySigner = DEVICE, new_key: KeySigner = NEW_KEY
) -> None:
    """Issuers MAKER, OP1 and OP2 admitted; `device` registered, rotated to `new_key`, then
    quarantined by OP1 and OP2 (milestone 4)."""
    await _send(
        net,
        admit(MAKER, IssuerRole.MAKER, SIGNERS[:2]),
        admit(OP1, IssuerRole.OPERATOR, SIGNERS[:2]),
        admit(OP2, IssuerRole.OPERATOR, SIGNERS[:2]),
    )
    await net.milestone()
    await _send(net, register(device, MAKER, [OP1]))
    await net.milestone()
    rotate = RotateKey(
        device_id=device_id(device),
        serial=1,
        new_key=new_key.public_key,
        new_address=address_of(new_key.public_key),
    )
    await _send(net, record(rotate, [device, new_key, OP1]))
    await net.milestone()
    quarantine = Quarantine(
        device_id=device_id(device),
        serial=2,
        reason=2,
        evidence_hash=b"\x0e" * 32,
        expires_after=1_000,
    )
    await _send(net, record(quarantine, [OP1, OP2]))
    await net.milestone()


async def test_a_rotated_device_is_found_by_its_current_key_only(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        await rotated_and_quarantined(net)
        response = await net.client.get(
            f"/api/v1/keys/{NEW_KEY.public_key.hex()}/device", params={"proof": "true"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        _check_schema(body)
        assert body["device_id"] == device_id(DEVICE).hex()
        assert body["key"] == NEW_KEY.public_key.hex()
        assert body["quarantine"]["in_force"] is True
        assert [v["key"] for v in body["history"]] == [
            DEVICE.public_key.hex(),
            NEW_KEY.public_key.hex(),
            NEW_KEY.public_key.hex(),
        ]
        path = body["registry_path"]
        proof = MerklePath(
            index=path["index"],
            size=path["size"],
            siblings=tuple(bytes.fromhex(s) for s in path["siblings"]),
        )
        assert root_from_path(bytes.fromhex(body["entry"]), proof).hex() == body["registry_root"]
        by_id = await net.client.get(f"/api/v1/devices/{device_id(DEVICE).hex()}")
        assert by_id.json() == {**body, "registry_path": None}  # one answer, two ways in

        old = await net.client.get(f"/api/v1/keys/{DEVICE.public_key.hex()}/device")
        assert (old.status_code, old.json()["error"]["code"]) == (404, "unknown_device_key")
        bad = await net.client.get("/api/v1/keys/beef/device")
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_id")
        flag = await net.client.get(
            f"/api/v1/keys/{NEW_KEY.public_key.hex()}/device", params={"proof": "yes"}
        )
        assert (flag.status_code, flag.json()["error"]["code"]) == (400, "invalid_parameter")


async def test_the_wallet_looks_a_device_up_by_its_current_key(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        await rotated_and_quarantined(net)
        node = NodeClient("http://node", transport=httpx.ASGITransport(net.app))
        try:
            found = await node.device_by_key(NEW_KEY.public_key, proof=True)
            assert found is not None
            assert found.entry.device_id == device_id(DEVICE)
            assert found.entry.quarantined_at(found.ledger_index)
            assert found.registry_path is not None
            assert root_from_path(encode_entry(found.entry), found.registry_path) == (
                found.registry_root
            )
            assert await node.device_by_key(DEVICE.public_key) is None  # rotated away
            assert await node.device_by_key(OP1.public_key) is None  # an issuer, no device
            plain = await node.device_by_key(NEW_KEY.public_key)
            assert plain is not None
            assert plain.registry_path is None
            by_id = await node.device(device_id(DEVICE))
            assert by_id is not None
            assert by_id.entry == found.entry
            elsewhere = NodeClient("http://node/nowhere", transport=httpx.ASGITransport(net.app))
            with pytest.raises(NotFoundError):  # a 404 of another code is not "no device"
                await elsewhere.device_by_key(NEW_KEY.public_key)
            await elsewhere.aclose()
        finally:
            await node.aclose()


async def test_the_explorer_search_resolves_a_current_key_to_its_device(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        await rotated_and_quarantined(net)
        path = "/api/v1/explorer/search"
        found = (await net.client.get(path, params={"q": NEW_KEY.public_key.hex().upper()})).json()
        assert (found["kind"], found["id"]) == ("device", device_id(DEVICE).hex())
        assert found["reason"] == "a registered device's current key"
        by_id = (await net.client.get(path, params={"q": device_id(DEVICE).hex()})).json()
        assert (by_id["kind"], by_id["id"]) == ("device", device_id(DEVICE).hex())
        old = (await net.client.get(path, params={"q": DEVICE.public_key.hex()})).json()
        assert old["kind"] == "address"  # a key the device gave up names it no longer
