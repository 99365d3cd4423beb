"""`GET /api/v1/messages/{id}/inclusion` builds each milestone's inclusion tree once and keeps
the trees of the last `REFERENCED_KEPT` milestones asked about (`InclusionCache`, one per app);
every path it serves from the cache proves its message under the milestone's inclusion root."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from tangle.http import _proofs
from tangle.http._proofs import InclusionCache, Proofs
from tangle.protocol.merkle import MerklePath, root_from_path
from tangle.protocol.message import decode_message
from tangle.protocol.payload import TaggedData
from tests.builders import on_tips
from tests.tangle.http.test_api import Net, network

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


async def _anchors(net: Net, count: int, tag: bytes) -> list[str]:
    ids = []
    for n in range(count):
        raw = on_tips(net.ledger.core, TaggedData(tag=tag, data=bytes([n])), net.rng)
        response = await net.client.post("/api/v1/messages", json={"message": raw.hex()})
        assert response.status_code == 201
        ids.append(decode_message(raw).id.hex())
    return ids


async def test_paths_come_from_one_tree_per_milestone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_proofs, "REFERENCED_KEPT", 2)
    async with network(tmp_path) as net:
        inclusions = InclusionCache()
        proofs = Proofs(net.node, inclusions)
        app = Starlette(routes=[Route("/inclusion/{message_id}", proofs.inclusion)])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://node"
        ) as client:
            by_milestone = []
            for m in range(3):
                ids = await _anchors(net, 5, bytes([m]))
                await net.milestone()
                by_milestone.append(ids)
            for ids in by_milestone[:2]:
                for message_id in ids:
                    body = (await client.get(f"/inclusion/{message_id}")).json()
                    siblings = tuple(bytes.fromhex(s) for s in body["path"]["siblings"])
                    path = MerklePath(
                        index=body["path"]["index"], size=body["path"]["size"], siblings=siblings
                    )
                    root = bytes.fromhex(body["inclusion_root"])
                    assert root_from_path(bytes.fromhex(message_id), path) == root
            kept = inclusions.kept()
            assert len(kept) == 2  # ten paths, two trees
            await client.get(f"/inclusion/{by_milestone[2][0]}")  # the first milestone's goes
            assert kept[0] not in inclusions.kept()
            await client.get(f"/inclusion/{by_milestone[1][1]}")  # kept: not built again
            assert kept[1] in inclusions.kept()
            assert len(inclusions.kept()) == 2
            # the app's own cache is another: nothing was asked of it
            assert net.app.state.inclusions.kept() == []
            waiting = await _anchors(net, 1, b"later")
            unavailable = await net.client.get(f"/api/v1/messages/{waiting[0]}/inclusion")
            assert unavailable.json()["error"]["code"] == "proof_unavailable"
