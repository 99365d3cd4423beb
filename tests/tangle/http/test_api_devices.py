"""`GET /api/v1/devices/{id}` and the registry in the event stream, against a real node whose
coordinator applies issuer admissions, a registration and a quarantine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jsonschema
from referencing import Registry as SchemaRegistry
from referencing import Resource
from referencing.jsonschema import DRAFT202012

from tangle.http.api import api_document
from tangle.ledger.registry import decode_entry
from tangle.protocol.device import IssuerRole, LiftQuarantine, Quarantine, Update
from tangle.protocol.ids import MerkleRoot
from tangle.protocol.merkle import MerklePath, root_from_path
from tangle.protocol.message import decode_message
from tangle.protocol.milestone import Milestone
from tangle.protocol.payload import TaggedData, encode_payload
from tests.builders import on_tips
from tests.registry_records import admit, device_id, record, register, signer
from tests.tangle.http.test_api import SIGNERS, Net, network, open_stream

if TYPE_CHECKING:
    from pathlib import Path

    from tangle.protocol.device import DeviceRecord

MAKER, OP1, OP2 = signer(10), signer(11), signer(12)
DEVICE = signer(20)
DOCUMENT = api_document(keep_milestones_minimum=16)


def _check_schema(body: dict[str, Any]) -> None:
    resource = Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
    schemas = SchemaRegistry().with_resource("urn:api", resource)
    validator = jsonschema.Draft202012Validator(
        {"$ref": "urn:api#/components/schemas/Device"}, registry=schemas
    )
    validator.validate(body)


async def _send(net: Net, *records: DeviceRecord) -> None:
    for rec in records:
        raw = on_tips(net.ledger.core, rec, net.rng)
        response = await net.client.post("/api/v1/messages", json={"message": raw.hex()})
        assert response.status_code == 201, response.text


async def test_a_device_its_history_its_quarantine_and_its_proof(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        await _send(
            net,
            admit(MAKER, IssuerRole.MAKER, SIGNERS[:2]),
            admit(OP1, IssuerRole.OPERATOR, SIGNERS[:2]),
            admit(OP2, IssuerRole.OPERATOR, SIGNERS[:2]),
        )
        await net.milestone()
        async with open_stream(net.app, "/api/v1/events", "") as stream:
            await _send(net, register(DEVICE, MAKER, [OP1]))
            await net.milestone()
            name, data = await stream.event()
        assert (name, data["device_records"], data["device_conflicts"]) == ("milestone", 1, 0)
        assert data["devices"] == [device_id(DEVICE).hex()]
        quarantine = Quarantine(
            device_id=device_id(DEVICE),
            serial=1,
            reason=3,
            evidence_hash=b"\x0e" * 32,
            expires_after=100,
        )
        await _send(net, record(quarantine, [OP1, OP2]))
        await net.milestone()

        response = await net.client.get(
            f"/api/v1/devices/{device_id(DEVICE).hex()}", params={"proof": "true"}
        )
        assert response.status_code == 200
        body = response.json()
        _check_schema(body)
        assert body["status"] == "active"
        assert body["key"] == DEVICE.public_key.hex()
        assert body["endorsements"] == sorted([MAKER.public_key.hex(), OP1.public_key.hex()])
        assert body["quarantine"]["in_force"] is True
        assert body["quarantine"]["since"] == 3
        assert [(v["milestone_index"], v["quarantined"]) for v in body["history"]] == [
            (2, False),
            (3, True),
        ]
        record_ = net.ledger.storage.milestone(3)
        assert record_ is not None
        milestone = decode_message(record_.raw).message.payload
        assert isinstance(milestone, Milestone)
        assert body["registry_root"] == milestone.essence.registry_root.hex()
        path = body["registry_path"]
        proof = MerklePath(
            index=path["index"],
            size=path["size"],
            siblings=tuple(bytes.fromhex(s) for s in path["siblings"]),
        )
        entry = bytes.fromhex(body["entry"])
        assert decode_entry(entry).quarantined_at(3)
        assert root_from_path(entry, proof) == MerkleRoot(milestone.essence.registry_root)

        plain = await net.client.get(f"/api/v1/devices/{device_id(DEVICE).hex()}")
        assert plain.json()["registry_path"] is None

        # Quarantined: the node neither takes, batches nor works for what the device signs.
        update = Update(device_id=device_id(DEVICE), serial=1, attributes_hash=bytes(32), uri=b"")
        signed = record(update, [DEVICE])
        raw = on_tips(net.ledger.core, signed, net.rng)
        refused = await net.client.post("/api/v1/messages", json={"message": raw.hex()})
        assert (refused.status_code, refused.json()["error"]["code"]) == (
            400,
            "quarantined_device",
        )
        batch = await net.client.post("/api/v1/messages/batch", json={"messages": [raw.hex()]})
        assert batch.json()["rejected"] == 1
        assert "quarantined_device" in batch.text
        pow_ = await net.client.post(
            "/api/v1/messages/pow", json={"payload": encode_payload(signed).hex()}
        )
        assert pow_.json()["error"]["code"] == "quarantined_device"
        lift = LiftQuarantine(device_id=device_id(DEVICE), serial=2)
        await _send(net, record(lift, [OP1, OP2]))
        await net.milestone()
        accepted = await net.client.post("/api/v1/messages", json={"message": raw.hex()})
        assert accepted.status_code == 201


async def test_unknown_devices_and_bad_parameters_are_refused_by_code(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        response = await net.client.get(f"/api/v1/devices/{'00' * 32}")
        assert (response.status_code, response.json()["error"]["code"]) == (404, "unknown_device")
        response = await net.client.get("/api/v1/devices/xyz")
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_id")
        response = await net.client.get(f"/api/v1/devices/{'00' * 32}", params={"proof": "yes"})
        assert response.json()["error"]["code"] == "invalid_parameter"


async def test_an_anchor_has_an_inclusion_path_to_its_milestone(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        anchor = on_tips(net.ledger.core, TaggedData(tag=b"batch", data=b"\x01" * 32), net.rng)
        await net.client.post("/api/v1/messages", json={"message": anchor.hex()})
        anchor_id = decode_message(anchor).id.hex()
        waiting = await net.client.get(f"/api/v1/messages/{anchor_id}/inclusion")
        assert (waiting.status_code, waiting.json()["error"]["code"]) == (404, "proof_unavailable")
        for n in range(3):  # company in the cone
            raw = on_tips(net.ledger.core, TaggedData(tag=b"", data=bytes([n])), net.rng)
            await net.client.post("/api/v1/messages", json={"message": raw.hex()})
        index = await net.milestone()
        response = await net.client.get(f"/api/v1/messages/{anchor_id}/inclusion")
        assert response.status_code == 200
        body = response.json()
        record_ = net.ledger.storage.milestone(index)
        assert record_ is not None
        milestone = decode_message(record_.raw).message.payload
        assert isinstance(milestone, Milestone)
        assert body["milestone_index"] == index
        assert body["milestone_message_id"] == record_.message_id.hex()
        path = MerklePath(
            index=body["path"]["index"],
            size=body["path"]["size"],
            siblings=tuple(bytes.fromhex(s) for s in body["path"]["siblings"]),
        )
        assert path.size == 4
        assert root_from_path(bytes.fromhex(anchor_id), path) == milestone.essence.inclusion_root
        unknown = await net.client.get(f"/api/v1/messages/{'00' * 32}/inclusion")
        assert unknown.json()["error"]["code"] == "unknown_message"
