"""`GET /api/v1/devices/{id}?at=<milestone index>`: a device's entry as an earlier milestone
left it, with an audit path to that milestone's registry root, after the registry changed
again; refusals by code."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import trio
import trio.testing

from tangle.http import _device_api
from tangle.http.api import ApiConfig
from tangle.ledger import registry
from tangle.ledger.registry import Registry, Rewind, decode_entry
from tangle.protocol.device import IssuerRole, Quarantine
from tangle.protocol.merkle import MerklePath, root_from_path
from tangle.protocol.message import decode_message
from tangle.protocol.milestone import Milestone
from tests.registry_records import admit, device_id, record, register, signer
from tests.tangle.http.test_api import SIGNERS, TOKEN, Net, network
from tests.tangle.http.test_api_devices import _check_schema, _send

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from tangle.protocol.merkle import SortedMerkleTree

MAKER, OP1, OP2 = signer(70), signer(71), signer(72)
DEVICE, LATER = signer(80), signer(81)


def _registry_root(net: Net, index: int) -> bytes:
    stored = net.ledger.storage.milestone(index)
    assert stored is not None
    milestone = decode_message(stored.raw).message.payload
    assert isinstance(milestone, Milestone)
    return milestone.essence.registry_root


def _proves(body: dict[str, Any], root: bytes) -> bool:
    path = body["registry_path"]
    proof = MerklePath(
        index=path["index"],
        size=path["size"],
        siblings=tuple(bytes.fromhex(s) for s in path["siblings"]),
    )
    return root_from_path(bytes.fromhex(body["entry"]), proof) == root


async def test_a_devices_entry_and_path_at_an_earlier_milestone(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        await _send(
            net,
            admit(MAKER, IssuerRole.MAKER, SIGNERS[:2]),
            admit(OP1, IssuerRole.OPERATOR, SIGNERS[:2]),
            admit(OP2, IssuerRole.OPERATOR, SIGNERS[:2]),
        )
        await net.milestone()
        await _send(net, register(DEVICE, MAKER, [OP1]))
        registered = await net.milestone()
        quarantine = Quarantine(
            device_id=device_id(DEVICE),
            serial=1,
            reason=2,
            evidence_hash=bytes(32),
            expires_after=100,
        )
        await _send(net, record(quarantine, [OP1, OP2]))
        quarantined = await net.milestone()
        await _send(net, register(LATER, MAKER, [OP1]))  # the registry changes again
        now = await net.milestone()
        url = f"/api/v1/devices/{device_id(DEVICE).hex()}"

        for index, in_force in ((registered, False), (quarantined, True), (now, True)):
            response = await net.client.get(url, params={"at": index})
            assert response.status_code == 200, response.text
            body = response.json()
            _check_schema(body)
            assert body["ledger_index"] == index
            assert body["registry_root"] == _registry_root(net, index).hex()
            assert _proves(body, _registry_root(net, index))
            assert decode_entry(bytes.fromhex(body["entry"])).quarantined_at(index) is in_force
            assert all(v["milestone_index"] <= index for v in body["history"])
        again = await net.client.get(url, params={"at": registered})  # from the kept tree
        assert _proves(again.json(), _registry_root(net, registered))

        refusals = [
            (url, {"at": registered - 1}, 404, "unknown_device"),  # not registered yet
            (url, {"at": 999}, 404, "unknown_milestone"),
            (url, {"at": "x"}, 400, "invalid_parameter"),
            (url, {"at": 0}, 400, "invalid_parameter"),
        ]
        for path, params, status, code in refusals:
            response = await net.client.get(path, params=params)
            assert (response.status_code, response.json()["error"]["code"]) == (status, code)


async def test_beyond_the_kept_changes_the_path_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "MAX_PAST_CHANGES", 1)
    async with network(tmp_path) as net:
        await _send(
            net,
            admit(MAKER, IssuerRole.MAKER, SIGNERS[:2]),
            admit(OP1, IssuerRole.OPERATOR, SIGNERS[:2]),
        )
        await net.milestone()
        indexes = []
        for device in (DEVICE, LATER, signer(82)):
            await _send(net, register(device, MAKER, [OP1]))
            indexes.append(await net.milestone())
        url = f"/api/v1/devices/{device_id(DEVICE).hex()}"
        gone = await net.client.get(url, params={"at": indexes[0]})
        assert (gone.status_code, gone.json()["error"]["code"]) == (404, "proof_unavailable")
        kept = await net.client.get(url, params={"at": indexes[1]})
        assert _proves(kept.json(), _registry_root(net, indexes[1]))


async def _registered_one_by_one(net: Net, count: int) -> list[int]:
    """`count` milestones after DEVICE's registration, each registering one more device."""
    await _send(
        net,
        admit(MAKER, IssuerRole.MAKER, SIGNERS[:2]),
        admit(OP1, IssuerRole.OPERATOR, SIGNERS[:2]),
    )
    await net.milestone()
    indexes = []
    for n in range(count):
        await _send(net, register(DEVICE if n == 0 else signer(90 + n), MAKER, [OP1]))
        indexes.append(await net.milestone())
    return indexes


async def test_concurrent_requests_share_one_rebuild_and_rebuilds_run_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rewinds: list[bytes] = []
    running, most = [0], [0]
    lock = threading.Lock()
    rewind_from, run = Registry.rewind_from, Rewind.run

    def counted_rewind_from(self: Registry, root: bytes) -> Rewind | None:
        rewinds.append(root)
        return rewind_from(self, root)

    def timed_run(self: Rewind) -> SortedMerkleTree | None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)  # a worker thread's rebuild, long enough for another to overlap
        try:
            return run(self)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(Registry, "rewind_from", counted_rewind_from)
    monkeypatch.setattr(Rewind, "run", timed_run)
    async with network(tmp_path) as net:
        indexes = await _registered_one_by_one(net, 3)
        url = f"/api/v1/devices/{device_id(DEVICE).hex()}"
        bodies: list[tuple[int, httpx.Response]] = []

        async def ask(index: int) -> None:
            bodies.append((index, await net.client.get(url, params={"at": index})))

        async with trio.open_nursery() as nursery:
            for index in [indexes[0], indexes[1]] * 4:
                nursery.start_soon(ask, index)
        assert len(bodies) == 8
        for index, response in bodies:
            assert response.status_code == 200, response.text
            assert _proves(response.json(), _registry_root(net, index))
        # Two roots asked four times each at once: two rebuilds, never two at the same time.
        assert sorted(rewinds) == sorted(_registry_root(net, i) for i in indexes[:2])
        assert most[0] == 1


async def test_rebuilds_are_charged_to_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mock_clock: trio.testing.MockClock
) -> None:
    monkeypatch.setattr(_device_api, "MAX_PAST_TREES", 1)  # every other root is a rebuild
    config = ApiConfig(admin_token=TOKEN, past_proofs_per_minute=2)
    async with network(tmp_path, config) as net:
        first, second, _ = await _registered_one_by_one(net, 3)
        url = f"/api/v1/devices/{device_id(DEVICE).hex()}"
        other = httpx.AsyncClient(
            transport=httpx.ASGITransport(net.app, client=("10.9.9.9", 1)), base_url="http://n"
        )
        for index in (first, second, second, second):  # two rebuilds, then the kept tree
            assert (await net.client.get(url, params={"at": index})).status_code == 200
        limited = await net.client.get(url, params={"at": first})
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "proof_rate_limited"
        assert limited.headers["retry-after"] == "30"
        assert (await other.get(url, params={"at": first})).status_code == 200  # its own bucket
        assert (await net.client.get(url)).status_code == 200  # no rebuild: not charged
        mock_clock.jump(30)
        assert (await net.client.get(url, params={"at": first})).status_code == 200
        await other.aclose()
