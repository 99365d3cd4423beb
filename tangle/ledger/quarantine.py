"""Quarantine enforcement: what a node refuses of a device under quarantine, and the gateway rule.

A quarantine (a `Quarantine` record signed by the network's threshold of operators, applied by
white flag, `registry_rules.py`) holds at milestones `since..expires_after`. While it holds at the
confirmed milestone, a node refuses a *new* message whose payload a quarantined device's current
key signed (`QuarantinedDeviceError`, API code `quarantined_device`): it does not attach it, so it
neither relays it nor batches it nor does proof-of-work for it (`POST /api/v1/messages/pow`
checks before it searches). A message that something the node holds already approves is not new:
it is taken, so every node can still solidify the cones milestones confirm. This is each node's
admission policy, not a ledger rule: which messages white flag applies never depends on it.

A payload is signed by a device when one of its keys is the device's current key: a transaction's
signature unlocks, a registry record's signers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tangle.errors import QuarantinedDeviceError
from tangle.protocol.device import Capability, DeviceId, DeviceRecord, DeviceStatus
from tangle.protocol.transaction import SignatureUnlock, Transaction

if TYPE_CHECKING:
    from tangle.protocol.ids import PublicKey
    from tangle.protocol.payload import Payload

    from .registry import Registry


def payload_keys(payload: Payload) -> frozenset[PublicKey]:
    """The keys that signed `payload` (none for tagged data and milestones)."""
    if isinstance(payload, Transaction):
        return frozenset(u.public_key for u in payload.unlocks if isinstance(u, SignatureUnlock))
    if isinstance(payload, DeviceRecord):
        return payload.signers
    return frozenset()


def refuse_quarantined(registry: Registry, payload: Payload, index: int) -> None:
    """Raise `QuarantinedDeviceError` if a device quarantined at milestone `index` signed
    `payload`."""
    for key in payload_keys(payload):
        entry = registry.quarantined(key, index)
        if entry is not None and entry.quarantine is not None:
            raise QuarantinedDeviceError(entry.device_id, entry.quarantine.expires_after)


def serves(registry: Registry, gateway: DeviceId, device: DeviceId, index: int) -> bool:
    """Whether `gateway` may submit and do proof-of-work for `device` at milestone `index`:
    the device is a constrained one registered behind it, both active and not quarantined."""
    behind = registry.devices.get(device)
    front = registry.devices.get(gateway)
    return (
        behind is not None
        and front is not None
        and behind.capability is Capability.CONSTRAINED
        and behind.gateway == gateway
        and behind.status is DeviceStatus.ACTIVE
        and front.status is DeviceStatus.ACTIVE
        and not behind.quarantined_at(index)
        and not front.quarantined_at(index)
    )
