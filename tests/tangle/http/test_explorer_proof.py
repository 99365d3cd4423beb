"""The explorer's proof file and the node's inclusion endpoint share the app's `InclusionCache`
(one tree a milestone, the last REFERENCED_KEPT kept); a proof file names no registry entry once
the registry root moved past the anchor's milestone; and a file `tanglepay verify` would refuse
(over its MAX_FILE, or for a message that is no anchor) is refused by name instead."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tangle.http import _proofs
from tangle.protocol.device import Quarantine
from tangle.protocol.payload import MAX_DATA, TaggedData
from tangle.protocol.proof_bundle import MAX_FILE
from tests.registry_records import device_id, record
from tests.tangle.http.test_api import error_code, lifespan, network
from tests.tangle.http.test_explorer_registry import DEVICES, OP1, OP2, _get, _registry, _send

if TYPE_CHECKING:
    from pathlib import Path


async def test_both_endpoints_share_one_inclusion_tree_a_milestone(tmp_path: Path) -> None:
    async with network(tmp_path) as net, lifespan(net.app):
        inclusions = net.app.state.inclusions
        ids = []
        for i in range(_proofs.REFERENCED_KEPT + 1):
            [anchor] = await _send(net, TaggedData(tag=b"tanglepay/a", data=bytes([i]) * 8))
            await net.milestone()
            ids.append(anchor)
        found = await _get(net, f"/api/v1/messages/{ids[0]}/inclusion")
        proof = await _get(net, "/api/v1/explorer/proof", message=ids[0])
        assert proof["inclusion_path"] == found["path"]
        assert inclusions.kept() == [bytes.fromhex(found["milestone_id"])]
        for anchor in ids[1:]:
            await _get(net, "/api/v1/explorer/proof", message=anchor)
        assert len(inclusions.kept()) == _proofs.REFERENCED_KEPT
        assert bytes.fromhex(found["milestone_id"]) not in inclusions.kept()  # the oldest went


async def test_a_proof_file_leaves_the_entry_out_once_the_registry_moved(tmp_path: Path) -> None:
    async with network(tmp_path) as net, lifespan(net.app):
        await _registry(net)
        [anchor] = await _send(net, TaggedData(tag=b"tanglepay/anchor", data=b"\x03" * 40))
        anchored = await net.milestone()
        active = device_id(DEVICES[0])
        same = await _get(net, "/api/v1/explorer/proof", message=anchor, device=active.hex())
        assert same["registry_entry"] != ""
        quarantine = Quarantine(
            device_id=device_id(DEVICES[1]),
            serial=1,
            reason=1,
            evidence_hash=bytes(32),
            expires_after=99,
        )
        await _send(net, record(quarantine, [OP1, OP2]))
        await net.milestone()  # the registry root changes after the anchor's milestone
        moved = await _get(net, "/api/v1/explorer/proof", message=anchor, device=active.hex())
        assert (moved["registry_entry"], moved["registry_path"]) == (
            "",
            {"index": 0, "size": 1, "siblings": []},
        )
        assert moved["milestone"] == same["milestone"]  # still the anchor's milestone
        assert moved["inclusion_path"] == same["inclusion_path"]
        assert anchored > 0


async def test_a_proof_file_verify_would_refuse_is_refused_by_name(tmp_path: Path) -> None:
    async with network(tmp_path) as net, lifespan(net.app):
        admitted, _ = await _registry(net)
        [large] = await _send(
            net, TaggedData(tag=b"tanglepay/big", data=b"\x07" * (MAX_DATA - 512))
        )
        await net.milestone()
        response = await net.client.get("/api/v1/explorer/proof", params={"message": large})
        assert error_code(response) == "invalid_parameter"
        assert f"over the {MAX_FILE}" in response.json()["error"]["message"]
        response = await net.client.get("/api/v1/explorer/proof", params={"message": admitted[0]})
        assert error_code(response) == "invalid_parameter"
        assert "tagged-data" in response.json()["error"]["message"]
