"""The explorer's one search box, resolved by the node (`GET /api/v1/explorer/search?q=`): what a
typed text names. Always answered with 200 and a `kind`, so that a page asking never logs a
failed request in the browser's console.

```
digits, or #digits     milestone   an applied milestone's index (none: not applied yet)
tpdev1...              address     a bech32m address of this network
64 hex digits          message     a stored message
                       refused     a message this node refused lately (`Timeline.refusal`)
                       channel     a channel on the ledger
                       device      a registered device (its id, or its current key)
                       address     otherwise: an address in hex
anything else          none        with the reason
```
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from tangle.errors import AddressError
from tangle.protocol.bech32 import decode_address, encode_address
from tangle.protocol.channel import ChannelOutput
from tangle.protocol.codec import U32_MAX
from tangle.protocol.device import DeviceId
from tangle.protocol.ids import Address, MessageId, PublicKey

if TYPE_CHECKING:
    from tangle.node.node import Node
    from tangle.protocol.bech32 import Network
    from tangle.storage.storage import Storage

    from ._timeline import Timeline

QUERY_MAX: Final = 100
"""The longest text searched (a bech32m address with a long prefix fits)."""
INDEX: Final = re.compile(r"#?([0-9]{1,10})")
HEX_ID: Final = re.compile(r"[0-9a-fA-F]{64}")
KINDS: Final = ("message", "refused", "channel", "device", "address", "milestone", "none")


def _found(kind: str, found: str | None, reason: str) -> dict[str, Any]:
    return {"kind": kind, "id": found, "reason": reason}


async def resolve(text: str, node: Node, timeline: Timeline, network: Network) -> dict[str, Any]:
    """What `text` names on this node: `{"kind", "id", "reason"}` (`id`: what the page for it
    takes, None for `none`)."""
    query = text.strip()
    if not query:
        return _found(
            "none", None, "type a message id, an address, a milestone, a channel or device id"
        )
    if len(query) > QUERY_MAX:
        return _found("none", None, f"at most {QUERY_MAX} characters")
    number = INDEX.fullmatch(query)
    if number is not None:
        index = int(number.group(1))
        if not 1 <= index <= U32_MAX:
            return _found("none", None, "milestones are numbered from 1")
        applied = await node.read_storage(lambda storage: storage.milestone(index) is not None)
        if applied:
            return _found("milestone", str(index), f"milestone #{index}")
        return _found("none", None, f"milestone #{index} is not applied on this node yet")
    if HEX_ID.fullmatch(query):
        return await _hex(query.lower(), node, timeline, network)
    try:
        address = decode_address(query, network)
    except AddressError as exc:
        return _found(
            "none",
            None,
            f"not a message, channel or device id (64 hex digits), a {network.hrp}1... address "
            f"({exc})"
            "or a milestone index",
        )
    return _found("address", encode_address(address, network), "an address")


async def _hex(query: str, node: Node, timeline: Timeline, network: Network) -> dict[str, Any]:
    message_id = MessageId.from_hex(query)
    as_address = Address.from_hex(query)

    def read(storage: Storage) -> tuple[bool, bool, bool]:
        stored = storage.metadata(message_id) is not None
        channel = any(isinstance(o, ChannelOutput) for _, o in storage.outputs_of(as_address))
        return stored, channel, storage.device(DeviceId(bytes(as_address))) is not None

    stored, channel, device = await node.read_storage(read)
    key = PublicKey(bytes(as_address))
    owner = await node.read_core(lambda core: core.ledger.registry.by_key.get(key))
    if stored:
        return _found("message", query, "a stored message")
    refusal = timeline.refusal(message_id)
    if refusal is not None:
        return _found("refused", query, f"refused: {refusal.code}")
    if channel:
        return _found("channel", query, "a payment channel on the ledger")
    if device:
        return _found("device", query, "a registered device")
    if owner is not None:
        return _found("device", owner.hex(), "a registered device's current key")
    return _found("address", encode_address(as_address, network), "an address (or an unknown id)")
