"""A quarantined device is not served (`payments.charging.devices`): Authorize over real `ocpp`
chargers (1.6J and 2.0.1, loopback WebSockets) answers Blocked for a token that is a quarantined
device's, or that is bound to a channel whose payer key is one; an expired quarantine is served;
a registry that cannot be read refuses. The registry's entries are real `DeviceEntry` values,
served by lookups of `NodeClient.device`'s and `NodeClient.device_by_key`'s shape (no node runs
here): a device that rotated its key onto the channel's payer key is found by that key."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from payments.charging.csms import Csms, accept_every_token, serve_csms
from payments.charging.devices import DeviceGate
from payments.charging.errors import DeviceLookupError, DeviceQuarantinedError
from payments.charging.log_limit import LogLimiter
from payments.charging.simulator import Charger16, Charger201, connect_charger
from payments.charging.store import CsmsStore
from tangle.ledger.registry import DeviceEntry, QuarantineState
from tangle.protocol.device import NO_GATEWAY, Capability, DeviceId, DeviceStatus, device_id_of
from tangle.protocol.ids import PublicKey, blake2b_256
from tangle.protocol.transaction import address_of
from wallet._responses import RegisteredDevice
from wallet.errors import NodeUnavailableError

from .test_payment import DRIVER, PASSWORD, T0, World
from .test_payment import run as run_with_payments

if TYPE_CHECKING:
    from pathlib import Path

INDEX = 40
"""The node's confirmed milestone."""
CAR = PublicKey(blake2b_256(b"car key"))
CAR_ID = device_id_of(CAR)


def entry(device_id: DeviceId, key: PublicKey, quarantine: tuple[int, int] | None) -> DeviceEntry:
    return DeviceEntry(
        device_id=device_id,
        key=key,
        address=address_of(key),
        maker=PublicKey(blake2b_256(b"maker")),
        model=b"ev-1",
        capability=Capability.FULL,
        gateway=NO_GATEWAY,
        attributes_hash=blake2b_256(b"attributes"),
        uri=b"",
        status=DeviceStatus.ACTIVE,
        serial=0,
        registered_at=1,
        updated_at=1,
        endorsers=(),
        quarantine_serial=0 if quarantine is None else 1,
        quarantine=None
        if quarantine is None
        else QuarantineState(
            reason=1,
            evidence_hash=blake2b_256(b"evidence"),
            since=quarantine[0],
            expires_after=quarantine[1],
        ),
    )


class Registry:
    """The entries a node would serve at milestone INDEX."""

    def __init__(self, *entries: DeviceEntry) -> None:
        self.entries = {bytes(e.device_id): e for e in entries}
        self.down = False

    async def __call__(self, device_id: bytes) -> RegisteredDevice | None:
        if self.down:
            raise NodeUnavailableError("GET /api/v1/devices/{id}", "connection refused")
        return self._answer(self.entries.get(device_id))

    async def by_key(self, key: bytes) -> RegisteredDevice | None:
        """The device whose current key is `key` (the node's `Registry.by_key`)."""
        if self.down:
            raise NodeUnavailableError("GET /api/v1/keys/{key}/device", "connection refused")
        return self._answer(next((e for e in self.entries.values() if e.key == key), None))

    @staticmethod
    def _answer(found: DeviceEntry | None) -> RegisteredDevice | None:
        if found is None:
            return None
        root = blake2b_256(b"root")
        return RegisteredDevice(
            ledger_index=INDEX,
            registry_root=root,
            entry=found,
            registry_path=None,  # type: ignore[arg-type]
        )


def test_a_quarantined_devices_token_is_blocked_by_both_versions(tmp_path: Path) -> None:
    expired_id = device_id_of(PublicKey(blake2b_256(b"old car")))
    registry = Registry(entry(CAR_ID, CAR, (30, 50)), entry(expired_id, CAR, (10, 20)))
    log_limit = LogLimiter()
    gate = DeviceGate(
        lookup=registry,
        lookup_key=registry.by_key,
        token_devices={"CAR-7": CAR_ID, "OLD-CAR": expired_id},
        log_limit=log_limit,
    )

    async def main() -> None:
        async with CsmsStore(tmp_path / "csms.sqlite") as store:
            for station in ("CP16", "CP201"):
                await store.add_station(station, PASSWORD)
            csms = Csms(
                store=store,
                pricing=lambda t, wh, s: wh,
                authorize=gate.guard(accept_every_token),
                log_limit=log_limit,
            )
            async with serve_csms(csms) as server:
                url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/ocpp"
                async with (
                    connect_charger(url, "CP16", PASSWORD, "1.6") as c16,
                    connect_charger(url, "CP201", PASSWORD, "2.0.1") as c201,
                ):
                    assert isinstance(c16, Charger16)
                    assert isinstance(c201, Charger201)
                    for token, expected in (
                        ("CAR-7", "Blocked"),
                        ("OLD-CAR", "Accepted"),  # quarantine over by milestone 40
                        ("RFID-OTHER", "Accepted"),  # no registered device
                    ):
                        answer16 = await c16.call(_authorize16(token))
                        answer201 = await c201.call(_authorize201(token))
                        assert answer16.id_tag_info["status"] == expected, token
                        assert answer201.id_token_info["status"] == expected, token
                    _, status = await c16.start_session("CAR-7", 0, T0)
                    assert status == "Invalid"  # a start with it is refused too
                    answer = await c201.event("Started", "T-9", 0, 0, T0, id_token="CAR-7")
                    assert answer.id_token_info["status"] == "Invalid"
                    assert not csms.bindings  # no session is paid for with it
                    registry.down = True  # fail closed
                    answer16 = await c16.call(_authorize16("OLD-CAR"))
                    assert answer16.id_tag_info["status"] == "Invalid"
        registry.down = False
        with pytest.raises(DeviceQuarantinedError) as refused:
            await gate.check("CAR-7")
        assert refused.value.device_id == bytes(CAR_ID)
        assert refused.value.index == INDEX
        registry.down = True
        with pytest.raises(DeviceLookupError):
            await gate.check("OLD-CAR")

    asyncio.run(main())


def _authorize16(token: str) -> object:
    from ocpp.v16 import call  # type: ignore[import-untyped]

    return call.Authorize(id_tag=token)


def _authorize201(token: str) -> object:
    from ocpp.v201 import call  # type: ignore[import-untyped]

    return call.Authorize(id_token={"idToken": token, "type": "ISO14443"})


def test_a_channel_whose_payer_key_is_quarantined_is_blocked(tmp_path: Path) -> None:
    registry = Registry(entry(device_id_of(DRIVER.public_key), DRIVER.public_key, (INDEX, INDEX)))

    async def body(world: World) -> None:
        world.payments.devices = DeviceGate(
            lookup=registry, lookup_key=registry.by_key, log_limit=world.csms.log_limit
        )
        wallet = await world.driver(("CP201", "T1"))
        await world.bind(wallet, "CARD-Q")
        with pytest.raises(DeviceQuarantinedError):
            await world.payments.authorize("CARD-Q")
        async with connect_charger(world.url, "CP201", PASSWORD, "2.0.1") as charger:
            answer = await charger.call(_authorize201("CARD-Q"))
            assert answer.id_token_info["status"] == "Blocked"
        registry.entries.clear()  # lifted: served again
        assert await world.payments.authorize("CARD-Q") is not None

    run_with_payments(tmp_path, body)


def test_a_device_that_rotated_onto_the_payer_key_and_is_quarantined_is_blocked(
    tmp_path: Path,
) -> None:
    """The device registered with another key (its id is not `device_id_of(DRIVER)`) and
    rotated to the driver's: the channel's payer key finds it, and it is refused by name."""
    rotated_id = device_id_of(PublicKey(blake2b_256(b"first key")))
    registry = Registry(entry(rotated_id, DRIVER.public_key, (INDEX, INDEX + 10)))

    async def body(world: World) -> None:
        world.payments.devices = DeviceGate(
            lookup=registry, lookup_key=registry.by_key, log_limit=world.csms.log_limit
        )
        wallet = await world.driver(("CP201", "T1"))
        await world.bind(wallet, "CARD-R")
        with pytest.raises(DeviceQuarantinedError) as refused:
            await world.payments.authorize("CARD-R")
        assert refused.value.device_id == bytes(rotated_id)
        async with connect_charger(world.url, "CP201", PASSWORD, "2.0.1") as charger:
            answer = await charger.call(_authorize201("CARD-R"))
            assert answer.id_token_info["status"] == "Blocked"
        # its old id (the first key's) is no payer key here: the key's device alone is asked
        registry.entries = {bytes(CAR_ID): entry(CAR_ID, CAR, (INDEX, INDEX))}
        assert await world.payments.authorize("CARD-R") is not None

    run_with_payments(tmp_path, body)
