"""The gateway rule at the node's routes: a constrained device's message comes in only from the
gateway it is registered behind (single submit, batch, proof-of-work), a gateway hands in no
other device's message, and a gateway claim that does not hold is refused by name."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, TypeVar

from tangle.http import _gateway
from tangle.http.api import ApiConfig
from tangle.ledger import gateway_rule
from tangle.node.node import Node
from tangle.protocol.device import IssuerRole, Quarantine, Update
from tangle.protocol.gateway_request import (
    GATEWAY_HEADER,
    SIGNATURE_HEADER,
    ItemKind,
    gateway_headers,
)
from tangle.protocol.ids import MessageId, blake2b_256
from tangle.protocol.payload import encode_payload
from tests.builders import NET, on_tips
from tests.registry_records import admit, device_id, record, register, signer
from tests.tangle.http.test_api import SIGNERS, Net, network

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pytest

    from coordinator.signers import KeySigner
    from tangle.node.core import NodeCore
    from tangle.protocol.device import DeviceRecord

T = TypeVar("T")
MAKER, OP1, OP2 = signer(30), signer(31), signer(32)
GATEWAY, OTHER_GATEWAY, SENSOR, FULL = signer(40), signer(41), signer(42), signer(43)


async def _send(net: Net, *records: DeviceRecord) -> None:
    for rec in records:
        raw = on_tips(net.ledger.core, rec, net.rng)
        response = await net.client.post("/api/v1/messages", json={"message": raw.hex()})
        assert response.status_code == 201, response.text


async def _registered(net: Net) -> None:
    await _send(
        net,
        admit(MAKER, IssuerRole.MAKER, SIGNERS[:2]),
        admit(OP1, IssuerRole.OPERATOR, SIGNERS[:2]),
        admit(OP2, IssuerRole.OPERATOR, SIGNERS[:2]),
    )
    await net.milestone()
    await _send(
        net,
        register(GATEWAY, MAKER, [OP1]),
        register(OTHER_GATEWAY, MAKER, [OP1]),
        register(FULL, MAKER, [OP1]),
    )
    await net.milestone()
    await _send(net, register(SENSOR, MAKER, [OP1], gateway=device_id(GATEWAY)))
    await net.milestone()


def _update(device: KeySigner, n: int) -> DeviceRecord:
    body = Update(device_id=device_id(device), serial=n, attributes_hash=bytes([n]) * 32, uri=b"")
    return record(body, [device])


def _as(gateway: KeySigner, kind: ItemKind, *items: bytes) -> dict[str, str]:
    return gateway_headers(NET, kind, items, device_id(gateway), gateway)


def _batch_codes(response: Any) -> list[str | None]:
    assert response.status_code == 200, response.text
    return [r.get("error", {}).get("code") for r in response.json()["results"]]


async def test_only_its_gateway_hands_in_a_constrained_devices_messages(tmp_path: Path) -> None:
    async with network(tmp_path, ApiConfig(pow_per_minute=60)) as net:
        await _registered(net)
        raw = on_tips(net.ledger.core, _update(SENSOR, 1), net.rng)
        mine = on_tips(net.ledger.core, _update(GATEWAY, 1), net.rng)
        body = {"messages": [raw.hex(), mine.hex()]}

        alone = await net.client.post("/api/v1/messages", json={"message": raw.hex()})
        assert (alone.status_code, alone.json()["error"]["code"]) == (400, "unserved_device")
        refused = await net.client.post("/api/v1/messages/batch", json=body)
        assert _batch_codes(refused) == ["unserved_device", None]
        other = await net.client.post(
            "/api/v1/messages/batch",
            json={"messages": [raw.hex()]},
            headers=_as(OTHER_GATEWAY, ItemKind.MESSAGES, raw),
        )
        assert _batch_codes(other) == ["gateway_not_serving"]
        served = await net.client.post(
            "/api/v1/messages/batch",
            json={"messages": [raw.hex()]},
            headers=_as(GATEWAY, ItemKind.MESSAGES, raw),
        )
        assert _batch_codes(served) == [None]

        # Proof-of-work: the same rule for a payload.
        payload = encode_payload(_update(SENSOR, 2)).hex()
        pow_alone = await net.client.post("/api/v1/messages/pow", json={"payload": payload})
        assert pow_alone.json()["error"]["code"] == "unserved_device"
        pow_other = await net.client.post(
            "/api/v1/messages/pow",
            json={"payload": payload},
            headers=_as(OTHER_GATEWAY, ItemKind.PAYLOAD, bytes.fromhex(payload)),
        )
        assert pow_other.json()["error"]["code"] == "gateway_not_serving"
        pow_served = await net.client.post(
            "/api/v1/messages/pow",
            json={"payload": payload},
            headers=_as(GATEWAY, ItemKind.PAYLOAD, bytes.fromhex(payload)),
        )
        assert pow_served.status_code == 201, pow_served.text


async def test_a_gateway_hands_in_no_other_devices_messages(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        await _registered(net)
        full = on_tips(net.ledger.core, _update(FULL, 1), net.rng)
        through = await net.client.post(
            "/api/v1/messages/batch",
            json={"messages": [full.hex()]},
            headers=_as(GATEWAY, ItemKind.MESSAGES, full),
        )
        assert _batch_codes(through) == ["gateway_not_serving"]
        itself = await net.client.post("/api/v1/messages", json={"message": full.hex()})
        assert itself.status_code == 201, itself.text

        # A gateway under quarantine serves nobody.
        quarantine = Quarantine(
            device_id=device_id(GATEWAY),
            serial=1,
            reason=3,
            evidence_hash=bytes(32),
            expires_after=100,
        )
        await _send(net, record(quarantine, [OP1, OP2]))
        await net.milestone()
        raw = on_tips(net.ledger.core, _update(SENSOR, 1), net.rng)
        cut_off = await net.client.post(
            "/api/v1/messages/batch",
            json={"messages": [raw.hex()]},
            headers=_as(GATEWAY, ItemKind.MESSAGES, raw),
        )
        assert _batch_codes(cut_off) == ["gateway_not_serving"]


async def test_a_gateway_claim_that_does_not_hold_refuses_the_request(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        await _registered(net)
        raw = on_tips(net.ledger.core, _update(SENSOR, 1), net.rng)
        body = {"messages": [raw.hex()]}
        cases = [
            (_as(GATEWAY, ItemKind.PAYLOAD, raw), 400, "gateway_signature"),  # wrong kind
            (_as(GATEWAY, ItemKind.MESSAGES, raw + b"x"), 400, "gateway_signature"),
            (
                {**_as(GATEWAY, ItemKind.MESSAGES, raw), GATEWAY_HEADER: device_id(OP1).hex()},
                400,
                "gateway_not_serving",
            ),
            ({GATEWAY_HEADER: device_id(GATEWAY).hex()}, 400, "invalid_header"),
            ({GATEWAY_HEADER: "zz" * 32, SIGNATURE_HEADER: "00" * 64}, 400, "invalid_header"),
        ]
        for headers, status, code in cases:
            response = await net.client.post("/api/v1/messages/batch", json=body, headers=headers)
            assert (response.status_code, response.json()["error"]["code"]) == (status, code)
        assert not net.ledger.core.knows(MessageId(blake2b_256(raw)))


async def test_the_writer_only_reads_the_registry_for_the_gateway_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hashing the items, the ed25519 check and decoding the messages run in worker threads
    # outside the writer's hop (`Node.read_core`); the proof-of-work route reads the core once
    # for its quarantine and gateway checks.
    in_core = threading.local()
    loop_thread = threading.get_ident()
    hops: list[str] = []
    verified: list[bool] = []
    decoded_on_loop: list[bool] = []
    read_core, signed_by, decode = Node.read_core, gateway_rule.signed_by, _gateway.decode_message

    async def marked_read_core(self: Node, read: Callable[[NodeCore], T]) -> T:
        def marked(core: NodeCore) -> T:
            in_core.on = True
            try:
                return read(core)
            finally:
                in_core.on = False

        hops.append(getattr(read, "__qualname__", ""))
        return await read_core(self, marked)

    def watched_signed_by(*args: Any) -> bool:
        verified.append(getattr(in_core, "on", False))
        return signed_by(*args)

    def watched_decode(raw: bytes) -> Any:
        decoded_on_loop.append(threading.get_ident() == loop_thread)
        return decode(raw)

    monkeypatch.setattr(Node, "read_core", marked_read_core)
    monkeypatch.setattr(gateway_rule, "signed_by", watched_signed_by)
    monkeypatch.setattr(_gateway, "decode_message", watched_decode)
    async with network(tmp_path, ApiConfig(pow_per_minute=60)) as net:
        await _registered(net)
        raw = on_tips(net.ledger.core, _update(SENSOR, 1), net.rng)
        served = await net.client.post(
            "/api/v1/messages/batch",
            json={"messages": [raw.hex()]},
            headers=_as(GATEWAY, ItemKind.MESSAGES, raw),
        )
        assert _batch_codes(served) == [None]
        payload = bytes.fromhex(encode_payload(_update(SENSOR, 2)).hex())
        hops.clear()
        pow_served = await net.client.post(
            "/api/v1/messages/pow",
            json={"payload": payload.hex()},
            headers=_as(GATEWAY, ItemKind.PAYLOAD, payload),
        )
        assert pow_served.status_code == 201, pow_served.text
    assert verified == [False, False]  # both requests' signatures, neither in the writer's hop
    assert decoded_on_loop
    assert not any(decoded_on_loop)
    # The gateway and quarantine check, the sync check, the tips: three reads of the core.
    assert len(hops) == 3, hops
