"""The explorer's registry lists over a real node: the sorted copy of the registry is shared
by concurrent requests and by milestones that leave the registry root alone (one rebuild per
root), and which quarantines hold is worked out per milestone index from the short list of
entries with one, so a quarantine that expires drops out with no registry change; an issuer
admitted alone (the device root unchanged) makes a new copy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from tangle.http._proofs import InclusionCache
from tangle.http.explorer._notes import Notes
from tangle.http.explorer._registry import RegistryViews, Snapshot
from tangle.protocol.bech32 import DEVNET
from tangle.protocol.device import IssuerRole, Quarantine
from tests.registry_records import admit, device_id, record, signer
from tests.tangle.http.test_api import SIGNERS, lifespan, network
from tests.tangle.http.test_explorer_registry import (
    DEVICES,
    MAKER,
    OP1,
    OP2,
    _get,
    _registry,
    _send,
)

if TYPE_CHECKING:
    from pathlib import Path


async def test_one_rebuild_per_registry_root(tmp_path: Path) -> None:
    async with network(tmp_path) as net, lifespan(net.app):
        await _registry(net)
        views = RegistryViews(net.node, DEVNET, Notes(), InclusionCache())
        got: list[tuple[Snapshot, int]] = []

        async def ask() -> None:
            got.append(await views.snapshot())

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(ask)
        assert views.rebuilt == 1
        assert len({id(snap) for snap, _ in got}) == 1
        first = got[0][0]
        assert first.ids == sorted(device_id(d) for d in DEVICES)
        assert all(a is e.device_id for a, e in zip(first.ids, first.devices, strict=True))

        index = await net.milestone()  # no registry change: the same digest, the same copy
        snap, at = await views.snapshot()
        assert (snap, at, views.rebuilt) == (first, index, 1)
        await _send(net, admit(signer(13), IssuerRole.OPERATOR, SIGNERS[:2]))
        await net.milestone()  # an issuer alone changes the digest (not the device root)
        first, index = await views.snapshot()
        assert (views.rebuilt, len(first.issuers)) == (2, 4)

        hijacked = device_id(DEVICES[2])
        quarantine = Quarantine(
            device_id=hijacked, serial=1, reason=2, evidence_hash=bytes(32), expires_after=index + 2
        )
        await _send(net, record(quarantine, [OP1, OP2]))
        since = await net.milestone()
        snap, at = await views.snapshot()
        assert views.rebuilt == 3
        assert snap.digest != first.digest
        assert [e.device_id for e in snap.with_quarantine] == [hijacked]
        assert views.quarantined(snap, at).ids == [hijacked]

        while at <= quarantine.expires_after:  # past expiry: no entry changed, no rebuild
            at = await net.milestone()
        later, index = await views.snapshot()
        assert (later, index, views.rebuilt) == (snap, at, 3)
        assert views.quarantined(later, index).devices == []
        assert at > since


async def test_the_quarantined_list_follows_expiry_over_http(tmp_path: Path) -> None:
    async with network(tmp_path) as net, lifespan(net.app):
        await _registry(net)
        index = await net.milestone()
        quarantine = Quarantine(
            device_id=device_id(DEVICES[0]),
            serial=1,
            reason=1,
            evidence_hash=bytes(32),
            expires_after=index + 1,
        )
        await _send(net, record(quarantine, [OP1, OP2]))
        await net.milestone()
        held = await _get(net, "/api/v1/explorer/devices", quarantined="true")
        assert held["total"] == 1
        while (await net.milestone()) <= quarantine.expires_after:
            pass
        held = await _get(net, "/api/v1/explorer/devices", quarantined="true")
        assert (held["total"], held["devices"]) == (0, [])


async def test_issuers_are_looked_up_by_key(tmp_path: Path) -> None:
    async with network(tmp_path) as net, lifespan(net.app):
        await _registry(net)
        keys = [OP2.public_key.hex(), "ab" * 32, MAKER.public_key.hex()]
        found = await _get(net, "/api/v1/explorer/issuers", keys=",".join(keys))
        assert [(i["key"], i["role"]) for i in found["issuers"]] == [
            (keys[0], "operator"),
            (keys[2], "maker"),
        ]
        assert (found["total"], found["next"]) == (3, None)
        for bad in ("xy", ",".join(["ab" * 32] * 101)):
            response = await net.client.get("/api/v1/explorer/issuers", params={"keys": bad})
            assert response.status_code == 400, bad
