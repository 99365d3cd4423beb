"""The gateway rule: a gateway submits and does proof-of-work for the constrained devices
registered behind it, and only those; full-function devices submit themselves.

A message is a device's when one of the keys that signed its payload (`payload_keys`) is the
current key of a registered device. When a client hands a node messages (`POST
/api/v1/messages`, `.../batch`) or a payload to work for (`.../pow`), the node checks each
device's message against the gateway the request is signed by (`gateway_request.py`), at the
confirmed milestone:

- a constrained device's message needs a request signed by the gateway it is registered
  behind, that gateway serving it (`serves`: both active, neither quarantined); without a
  gateway it is `UnservedDeviceError`, from another gateway `GatewayNotServingError`;
- a request signed by a gateway may carry the gateway's own messages, messages no device signed,
  and its devices' messages; a full-function device's message from a gateway is
  `GatewayNotServingError`;
- a request naming a gateway the registry does not hold, or not signed by its current key, is
  refused as a whole (`GatewayNotServingError`, `GatewaySignatureError`).

Like the quarantine refusal this is each node's admission policy for what clients hand it, not a
ledger rule: messages relayed by peers are not checked, and white flag never depends on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tangle.errors import GatewayNotServingError, GatewaySignatureError, UnservedDeviceError
from tangle.protocol.device import Capability, DeviceId
from tangle.protocol.gateway_request import signed_by

from .quarantine import payload_keys, serves

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tangle.protocol.gateway_request import ItemKind
    from tangle.protocol.ids import PublicKey
    from tangle.protocol.payload import Payload

    from .registry import Registry


def gateway_key(registry: Registry, gateway: bytes) -> tuple[DeviceId, PublicKey]:
    """The id and current key of `gateway` (a claim's gateway id); raises
    `GatewayNotServingError` for a gateway the registry does not hold. The signature is checked
    apart (`verify_gateway`), away from the registry's thread."""
    entry = registry.devices.get(DeviceId(gateway))
    if entry is None:
        raise GatewayNotServingError(gateway, gateway)
    return entry.device_id, entry.key


def verify_gateway(
    gateway: bytes,
    key: PublicKey,
    signature: bytes,
    network_id: int,
    kind: ItemKind,
    items: Sequence[bytes],
) -> None:
    """Raise `GatewaySignatureError` unless `key` (`gateway`'s, from `gateway_key`) signed
    `items` with `signature` (hashing up to a MiB and one ed25519 check: run it in a worker)."""
    if not signed_by(key, signature, network_id, kind, items):
        raise GatewaySignatureError(f"the request is not signed by gateway {gateway.hex()}")


def refuse_unserved(
    registry: Registry, payload: Payload, gateway: DeviceId | None, index: int
) -> None:
    """Raise `UnservedDeviceError` or `GatewayNotServingError` if a request from `gateway`
    (None: from no gateway) may not carry `payload` at milestone `index`."""
    for key in payload_keys(payload):
        device_id = registry.by_key.get(key)
        if device_id is None or device_id == gateway:
            continue
        entry = registry.devices[device_id]
        if entry.capability is Capability.CONSTRAINED:
            if gateway is None:
                raise UnservedDeviceError(device_id, entry.gateway)
            if not serves(registry, gateway, device_id, index):
                raise GatewayNotServingError(gateway, device_id)
        elif gateway is not None:
            raise GatewayNotServingError(gateway, device_id)
