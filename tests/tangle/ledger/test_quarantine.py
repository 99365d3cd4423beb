"""Quarantine enforcement at a node: new messages signed by a quarantined device are refused by
name, ones something already approves are taken (cones stay solid), and the gateway rule."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from coordinator.issuer import milestone_essence, tips_to_confirm
from coordinator.signers import KeySigner, sign_milestone
from tangle.errors import QuarantinedDeviceError
from tangle.ledger.committee import KeySchedule
from tangle.ledger.quarantine import payload_keys, refuse_quarantined, serves
from tangle.node.core import Confirmed, Parameters
from tangle.node.ledger_node import LedgerNode
from tangle.protocol.device import IssuerRole, LiftQuarantine, Quarantine
from tangle.protocol.message import decode_message
from tangle.protocol.milestone import KeySet
from tangle.protocol.payload import TaggedData
from tests.builders import NET, address, genesis, key, message, transfer
from tests.registry_records import admit, device_id, record, register, signer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tangle.node.core import Event
    from tangle.protocol.device import DeviceRecord

PARAMS = Parameters(network_id=NET, work_per_kib=16, min_output_amount=1)
COMMITTEE = sorted((KeySigner(bytes([i]) * 32) for i in (1, 2, 3)), key=lambda s: s.public_key)
KEY_SET = KeySet(threshold=2, public_keys=tuple(s.public_key for s in COMMITTEE))
DEVICE = signer(1)  # the same key as key(1), which the genesis funds
GATEWAY, SENSOR = signer(2), signer(3)
MAKER, OP1, OP2 = signer(10), signer(11), signer(12)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[LedgerNode]:
    opened = LedgerNode.open(
        tmp_path / "node.db",
        genesis=genesis([(key(1), 1_000)]),
        params=PARAMS,
        schedule=KeySchedule(entries=((1, KEY_SET),)),
    )
    for issuer, role in ((MAKER, IssuerRole.MAKER), (OP1, IssuerRole.OPERATOR)):
        _send(opened, admit(issuer, role, COMMITTEE[:2]))
    _send(opened, admit(OP2, IssuerRole.OPERATOR, COMMITTEE[:2]))
    _confirm(opened)
    _send(opened, register(DEVICE, MAKER, [OP1]))
    _send(opened, register(GATEWAY, MAKER, [OP1]))
    _confirm(opened)
    _send(opened, register(SENSOR, MAKER, [OP2], gateway=device_id(GATEWAY)))
    _confirm(opened)
    yield opened
    opened.close()


def _send(node: LedgerNode, rec: DeviceRecord) -> None:
    parents = tips_to_confirm(node.core)[:8]
    node.submit(message(rec, parents, work_per_kib=16))


def _confirm(node: LedgerNode) -> Confirmed:
    core = node.core
    parents = tips_to_confirm(core)
    essence = milestone_essence(core, parents=parents, timestamp_ms=0, key_set_change=None)
    events: tuple[Event, ...] = node.submit(
        message(sign_milestone(essence, COMMITTEE, KEY_SET), parents, work_per_kib=16)
    )
    (confirmed,) = [e for e in events if isinstance(e, Confirmed)]
    assert confirmed.result.record_conflicts == ()
    return confirmed


def _quarantine(node: LedgerNode, who: KeySigner, serial: int, expires_after: int) -> None:
    body = Quarantine(
        device_id=device_id(who),
        serial=serial,
        reason=1,
        evidence_hash=bytes(32),
        expires_after=expires_after,
    )
    _send(node, record(body, [OP1, OP2]))
    _confirm(node)


def test_a_quarantined_devices_new_messages_are_refused_by_name(node: LedgerNode) -> None:
    _quarantine(node, DEVICE, 1, expires_after=6)
    (oid,) = node.core.ledger.unspent
    spend = transfer([(oid, key(1))], [(address(key(9)), 1_000)])
    assert payload_keys(spend) == {DEVICE.public_key}
    raw = message(spend, tips_to_confirm(node.core)[:1], work_per_kib=16)
    with pytest.raises(QuarantinedDeviceError) as refused:
        node.submit(raw)
    assert refused.value.device_id == device_id(DEVICE)
    # A pending child approving it does not open the door (anyone can send one): only a
    # milestone the node holds can (`Dag.is_protected`, as for squatted payload slots).
    child = message(TaggedData(tag=b"", data=b"c"), (decode_message(raw).id,), work_per_kib=16)
    node.submit(child)
    assert node.core.dag.is_pending(decode_message(child).id)
    with pytest.raises(QuarantinedDeviceError):
        node.submit(raw)
    _confirm(node)
    _confirm(node)  # milestone 6: the quarantine's last
    with pytest.raises(QuarantinedDeviceError):
        refuse_quarantined(node.core.ledger.registry, spend, node.core.confirmed_index)
    _confirm(node)
    refuse_quarantined(node.core.ledger.registry, spend, node.core.confirmed_index)


def test_a_lifted_quarantine_serves_the_device_again(node: LedgerNode) -> None:
    _quarantine(node, DEVICE, 1, expires_after=1000)
    lift = LiftQuarantine(device_id=device_id(DEVICE), serial=2)
    with pytest.raises(QuarantinedDeviceError):  # the device cannot lift it itself
        _send(node, record(lift, [DEVICE, OP1]))
    _send(node, record(lift, [OP1, OP2]))
    confirmed = _confirm(node)
    assert confirmed.result.record_conflicts == ()
    assert node.core.ledger.registry.quarantined(DEVICE.public_key, 1000) is None


def test_a_gateway_serves_only_the_devices_behind_it(node: LedgerNode) -> None:
    registry = node.core.ledger.registry
    index = node.core.confirmed_index
    assert serves(registry, device_id(GATEWAY), device_id(SENSOR), index)
    assert not serves(registry, device_id(DEVICE), device_id(SENSOR), index)
    assert not serves(registry, device_id(GATEWAY), device_id(DEVICE), index)
    _quarantine(node, SENSOR, 1, expires_after=1000)
    assert not serves(
        node.core.ledger.registry,
        device_id(GATEWAY),
        device_id(SENSOR),
        node.core.confirmed_index,
    )
