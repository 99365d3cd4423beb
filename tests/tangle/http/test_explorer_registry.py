"""The explorer's registry and anchor views against a real node whose coordinator applies issuer
admissions, a registration, a quarantine and `tanglepay/` anchors: the device and issuer lists
(paginated, quarantines with their signers), the records of a device, the search box naming a
device, the anchors view, the channel view's cache, and the proof file, which the wallet's
reader takes and `verify_bundle` checks up to the first link a node cannot hold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import trio

from tangle.ledger.committee import KeySchedule
from tangle.protocol.device import IssuerRole, Quarantine
from tangle.protocol.ids import MessageId, blake2b_256
from tangle.protocol.merkle import MerklePath, root_from_path
from tangle.protocol.message import decode_message
from tangle.protocol.payload import TaggedData
from tests.builders import on_tips
from tests.registry_records import admit, device_id, record, register, signer
from tests.tangle.http.test_api import KEY_SET, SIGNERS, Net, error_code, lifespan, network
from wallet.devices.errors import DeviceNotActiveError, ReadingSignatureError, RegistryPathError
from wallet.devices.proof import check_milestone, verify_bundle
from wallet.devices.proof_file import bundle_from_json

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tangle.protocol.device import DeviceRecord

MAKER, OP1, OP2 = signer(10), signer(11), signer(12)
DEVICES = [signer(20 + i) for i in range(5)]
SCHEDULE = KeySchedule(entries=((1, KEY_SET),))


async def _send(net: Net, *payloads: DeviceRecord | TaggedData) -> list[str]:
    ids = []
    for payload in payloads:
        raw = on_tips(net.ledger.core, payload, net.rng)
        response = await net.client.post("/api/v1/messages", json={"message": raw.hex()})
        assert response.status_code == 201, response.text
        ids.append(decode_message(raw).id.hex())
    return ids


async def _get(net: Net, path: str, **params: str) -> Any:
    response = await net.client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _milestone(net: Net) -> int:
    """Issue a milestone and wait until the explorer's timeline has taken it in."""
    index = await net.milestone()
    await _until(net, "/api/v1/explorer/milestones", lambda b: b["milestones"][0]["cone"])
    return index


async def _until(net: Net, path: str, done: Callable[[Any], object]) -> None:
    """Ask `path` until `done` holds of its answer (the timeline follows the node)."""
    for _ in range(1000):
        if done(await _get(net, path)):
            return
        await trio.sleep(0.01)
    raise AssertionError(f"{path} never answered as awaited")


async def _registry(net: Net) -> tuple[list[str], list[str]]:
    """Admit a maker and two operators, register DEVICES; the message ids of both steps."""
    admitted = await _send(
        net,
        admit(MAKER, IssuerRole.MAKER, SIGNERS[:2]),
        admit(OP1, IssuerRole.OPERATOR, SIGNERS[:2]),
        admit(OP2, IssuerRole.OPERATOR, SIGNERS[:2]),
    )
    await _milestone(net)
    registered = await _send(net, *(register(d, MAKER, [OP1]) for d in DEVICES))
    await _milestone(net)
    return admitted, registered


async def test_devices_issuers_quarantines_and_records(tmp_path: Path) -> None:
    async with network(tmp_path) as net, lifespan(net.app):
        admitted, registered = await _registry(net)
        hijacked = device_id(DEVICES[3])
        quarantine = Quarantine(
            device_id=hijacked, serial=1, reason=3, evidence_hash=b"\x0e" * 32, expires_after=99
        )
        [quarantine_id] = await _send(net, record(quarantine, [OP1, OP2]))
        index = await _milestone(net)

        ids = sorted(device_id(d).hex() for d in DEVICES)
        first = await _get(net, "/api/v1/explorer/devices", count="2")
        assert (first["total"], first["ledger_index"]) == (5, index)
        assert [d["device_id"] for d in first["devices"]] == ids[:2]
        rest = await _get(net, "/api/v1/explorer/devices", count="3", after=first["next"])
        assert [d["device_id"] for d in rest["devices"]] == ids[2:]
        assert rest["next"] is not None  # a full page: the next one may be empty
        empty = await _get(net, "/api/v1/explorer/devices", after=rest["next"])
        assert (empty["devices"], empty["next"]) == ([], None)

        held = await _get(net, "/api/v1/explorer/devices", quarantined="true")
        [row] = held["devices"]
        assert row["device_id"] == hijacked.hex()
        assert row["quarantine"] | {"record": None} == {
            "in_force": True,
            "reason": 3,
            "evidence_hash": "0e" * 32,
            "since": index,
            "expires_after": 99,
            "record": None,
        }
        assert row["quarantine"]["record"] == {
            "message_id": quarantine_id,
            "milestone_index": index,
            "signers": sorted([OP1.public_key.hex(), OP2.public_key.hex()]),
        }
        issuers = await _get(net, "/api/v1/explorer/issuers")
        assert [(i["role"], i["admitted"]) for i in issuers["issuers"]].count(
            ("operator", True)
        ) == 2
        assert all(i["record"]["signers"] for i in issuers["issuers"])
        records = await _get(net, f"/api/v1/explorer/devices/{hijacked.hex()}/records")
        assert [r["kind"] for r in records["records"]] == ["quarantine", "register"]

        found = await _get(net, "/api/v1/explorer/search", q=hijacked.hex())
        assert (found["kind"], found["id"]) == ("device", hijacked.hex())
        about = await _get(net, f"/api/v1/explorer/messages/{registered[3]}/subject")
        assert about == {"kind": "register", "subject": hijacked.hex(), "subject_kind": "device"}
        about = await _get(net, f"/api/v1/explorer/messages/{admitted[0]}/subject")
        assert (about["subject"], about["subject_kind"]) == (MAKER.public_key.hex(), "issuer")
        [tagged] = await _send(net, TaggedData(tag=b"t", data=b""))
        response = await net.client.get(f"/api/v1/explorer/messages/{tagged}/subject")
        assert error_code(response) == "invalid_parameter"
        for bad in ({"count": "0"}, {"after": "xy"}, {"quarantined": "yes"}):
            response = await net.client.get("/api/v1/explorer/devices", params=bad)
            assert response.status_code == 400, bad


def _links(body: dict[str, Any]) -> tuple[MerklePath, MerklePath]:
    def path(doc: dict[str, Any]) -> MerklePath:
        siblings = tuple(bytes.fromhex(s) for s in doc["siblings"])
        return MerklePath(index=doc["index"], size=doc["size"], siblings=siblings)

    return path(body["registry_path"]), path(body["inclusion_path"])


async def test_a_proof_file_holds_the_node_links_and_names_the_first_missing_one(
    tmp_path: Path,
) -> None:
    async with network(tmp_path) as net, lifespan(net.app):
        await _registry(net)
        active, hijacked = device_id(DEVICES[0]), device_id(DEVICES[1])
        quarantine = Quarantine(
            device_id=hijacked, serial=1, reason=1, evidence_hash=bytes(32), expires_after=99
        )
        await _send(net, record(quarantine, [OP1, OP2]))
        [anchor_id] = await _send(net, TaggedData(tag=b"tanglepay/anchor", data=b"\x01" * 40))
        index = await _milestone(net)

        response = await net.client.get("/api/v1/explorer/proof", params={"device": active.hex()})
        assert response.headers["content-disposition"].startswith("attachment;")
        bundle = bundle_from_json(response.content)
        with pytest.raises(ReadingSignatureError) as broken:
            verify_bundle(bundle, SCHEDULE)  # milestone signatures, registry path, status hold
        assert broken.value.link == "reading"
        assert check_milestone(bundle.milestone, SCHEDULE).essence.index == index

        quarantined = await net.client.get(
            "/api/v1/explorer/proof", params={"device": hijacked.hex()}
        )
        with pytest.raises(DeviceNotActiveError):
            verify_bundle(bundle_from_json(quarantined.content), SCHEDULE)

        anchored = await net.client.get("/api/v1/explorer/proof", params={"message": anchor_id})
        body = anchored.json()
        bundle = bundle_from_json(anchored.content)
        with pytest.raises(RegistryPathError):
            verify_bundle(bundle, SCHEDULE)  # a message alone names no device
        essence = check_milestone(bundle.milestone, SCHEDULE).essence
        anchor = MessageId(blake2b_256(bundle.anchor))
        assert anchor.hex() == anchor_id
        assert root_from_path(anchor, _links(body)[1]) == essence.inclusion_root
        both = await net.client.get(
            "/api/v1/explorer/proof", params={"message": anchor_id, "device": active.hex()}
        )
        with pytest.raises(ReadingSignatureError):  # the registry has not changed since
            verify_bundle(bundle_from_json(both.content), SCHEDULE)

        [waiting] = await _send(net, TaggedData(tag=b"tanglepay/anchor", data=b"\x02" * 40))
        for params, code in (
            ({"message": waiting}, "proof_unavailable"),  # no milestone referenced it yet
            ({}, "invalid_parameter"),
            ({"device": "00" * 32}, "unknown_device"),
            ({"message": "00" * 32}, "unknown_message"),
        ):
            response = await net.client.get("/api/v1/explorer/proof", params=params)
            assert error_code(response) == code, params


async def test_anchors_are_listed_by_tag_with_their_milestone(tmp_path: Path) -> None:
    async with network(tmp_path) as net, lifespan(net.app):
        tags = (b"tanglepay/roaming/agreement", b"tanglepay/roaming/batch", b"other/tag")
        ids = await _send(net, *(TaggedData(tag=t, data=bytes(64)) for t in tags))
        await _until(net, "/api/v1/explorer/anchors", lambda b: b["anchors"][1:])
        pending = await _get(net, "/api/v1/explorer/anchors")
        assert [(a["message_id"], a["tag"], a["size"]) for a in pending["anchors"]] == [
            (ids[1], "tanglepay/roaming/batch", 64),
            (ids[0], "tanglepay/roaming/agreement", 64),
        ]
        assert {a["milestone_index"] for a in pending["anchors"]} == {None}
        index = await _milestone(net)
        roaming = await _get(net, "/api/v1/explorer/anchors", prefix="tanglepay/roaming/batch")
        assert [(a["message_id"], a["milestone_index"]) for a in roaming["anchors"]] == [
            (ids[1], index)
        ]
        response = await net.client.get("/api/v1/explorer/anchors", params={"prefix": "x/"})
        assert error_code(response) == "invalid_parameter"
