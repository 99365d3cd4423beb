"""The gateway core: verification, replays, bounds, batching; and anchoring through a node."""

from __future__ import annotations

import dataclasses

import pytest

from tangle.ledger.registry import QuarantineState
from tangle.protocol.device import DeviceStatus
from wallet.devices.batch import anchor_payload, check_batch_path, read_anchor
from wallet.devices.errors import (
    GatewayFullError,
    ReadingFormatError,
    ReadingNetworkError,
    ReadingReplayError,
    ReadingSignatureError,
    UnknownDeviceError,
)
from wallet.devices.gateway import Accepted, Gateway, Refused

from ._chain import entry
from ._support import NETWORK, device_id, device_key, raw_reading


def _gateway(devices: int = 3, **kwargs: int) -> Gateway:
    gateway = Gateway(network_id=NETWORK, **kwargs)
    for n in range(devices):
        gateway.serve(device_id(n), device_key(n).public_key)
    return gateway


def test_readings_are_batched_and_every_one_is_proved() -> None:
    gateway = _gateway()
    raws = [raw_reading(n, c) for c in range(1, 4) for n in range(3)]
    assert all(isinstance(o, Accepted) for o in gateway.accept_many(raws))
    batch = gateway.seal()
    assert batch is not None
    assert gateway.seal() is None
    assert batch.readings == tuple(raws)
    anchor = read_anchor(anchor_payload(batch.anchor))
    for index, raw in enumerate(raws):
        check_batch_path(raw, batch.path(index), anchor)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (raw_reading(0, 1)[:-1], ReadingFormatError),
        (raw_reading(0, 1, network_id=NETWORK + 1), ReadingNetworkError),
        (raw_reading(9, 1), UnknownDeviceError),
        (raw_reading(0, 1, key=device_key(1)), ReadingSignatureError),
    ],
)
def test_refusals_are_named_and_change_nothing(raw: bytes, error: type[Exception]) -> None:
    gateway = _gateway()
    with pytest.raises(error):
        gateway.accept(raw)
    assert gateway.pending == 0
    assert gateway.last_counter(device_id(0)) == 0
    gateway.accept(raw_reading(0, 1))


def test_a_replayed_or_older_counter_is_refused() -> None:
    gateway = _gateway()
    gateway.accept(raw_reading(0, 5))
    with pytest.raises(ReadingReplayError):
        gateway.accept(raw_reading(0, 5))
    with pytest.raises(ReadingReplayError):
        gateway.accept(raw_reading(0, 4))
    gateway.seal()
    with pytest.raises(ReadingReplayError):  # the counter outlives the batch
        gateway.accept(raw_reading(0, 5))
    gateway.accept(raw_reading(0, 6))


def test_a_forged_reading_does_not_burn_the_counter() -> None:
    gateway = _gateway()
    with pytest.raises(ReadingSignatureError):
        gateway.accept(raw_reading(0, 100, key=device_key(2)))
    gateway.accept(raw_reading(0, 1))


def test_a_rotated_key_keeps_the_counter() -> None:
    gateway = _gateway()
    gateway.accept(raw_reading(0, 3))
    gateway.serve(device_id(0), device_key(5).public_key)
    with pytest.raises(ReadingSignatureError):
        gateway.accept(raw_reading(0, 4))
    with pytest.raises(ReadingReplayError):
        gateway.accept(raw_reading(0, 3, key=device_key(5)))
    gateway.accept(raw_reading(0, 4, key=device_key(5)))


def test_the_batch_and_the_device_table_are_bounded() -> None:
    gateway = _gateway(devices=2, max_batch=2, max_devices=2)
    with pytest.raises(GatewayFullError):
        gateway.serve(device_id(2), device_key(2).public_key)
    outcomes = gateway.accept_many([raw_reading(0, 1), raw_reading(1, 1), raw_reading(0, 2)])
    assert isinstance(outcomes[2], Refused)
    assert isinstance(outcomes[2].error, GatewayFullError)
    assert gateway.stats.refused == {"GatewayFullError": 1}
    assert gateway.last_counter(device_id(0)) == 1
    gateway.seal()
    gateway.accept(raw_reading(0, 2))
    gateway.stop_serving(device_id(0))
    with pytest.raises(UnknownDeviceError):
        gateway.accept(raw_reading(0, 3))


def test_the_gateway_follows_the_registry() -> None:
    gateway = _gateway(devices=0)
    active = entry(0)
    assert gateway.follow(active, 5)
    gateway.accept(raw_reading(0, 1))
    rotated = dataclasses.replace(active, key=device_key(7).public_key)
    assert gateway.follow(rotated, 6)
    gateway.accept(raw_reading(0, 2, key=device_key(7)))
    quarantine = QuarantineState(reason=2, evidence_hash=bytes(32), since=7, expires_after=9)
    quarantined = dataclasses.replace(rotated, quarantine=quarantine)
    assert not gateway.follow(quarantined, 7)
    with pytest.raises(UnknownDeviceError):
        gateway.accept(raw_reading(0, 3, key=device_key(7)))
    assert gateway.follow(quarantined, 10)  # expired
    assert not gateway.follow(dataclasses.replace(rotated, status=DeviceStatus.SUSPENDED), 10)
