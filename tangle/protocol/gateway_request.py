"""A gateway's signature over what it hands a node: how a node knows that a batch, a message or
a payload for proof-of-work comes from the gateway a constrained device is registered behind
(the rule itself is `tangle/ledger/gateway_rule.py`).

The request carries two headers:

```
Tangle-Gateway             the gateway's device id, 64 hex digits
Tangle-Gateway-Signature   ed25519 by the gateway's current registry key, 128 hex digits, of
                           GATEWAY_DOMAIN || H(u64 network_id || u8 kind || u16 count ||
                                               count x H(item))
```
`kind` is 0 when the items are whole messages (`POST /api/v1/messages` and `.../batch`, in the
order sent) and 1 when the one item is a payload the node is asked to work for
(`POST /api/v1/messages/pow`), so a signature over a payload cannot pass for one over a message
of the same bytes. The signature covers the items, not their encoding in the body, so the octet
and the JSON forms of a batch sign alike. The octet form of a batch (`encode_batch`,
`decode_batch`, served by `POST /api/v1/messages/batch`) lives here so that both the node and
a gateway's client read it:

```
u16 count (1..MAX_BATCH), then count x (u32 length (at most MAX_MESSAGE_SIZE), message bytes)
```
nothing after the last message. A replayed request hands in the same messages again
(duplicates) or asks for the same payload again (charged to the client's proof-of-work limits).
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Final

from tangle.errors import InvalidFieldError, NonCanonicalError

from .codec import U64_MAX, Reader, require_uint, u8, u64
from .ids import blake2b_256
from .message import MAX_MESSAGE_SIZE
from .signature import is_valid

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .device_bodies import DeviceId
    from .ids import PublicKey
    from .signature import Signer

GATEWAY_DOMAIN: Final = b"tanglepay/gateway-request/v1"
MAX_BATCH: Final = 256
"""Most messages in one batch (the node's group commit takes as many at once)."""
GATEWAY_HEADER: Final = "tangle-gateway"
SIGNATURE_HEADER: Final = "tangle-gateway-signature"
MAX_ITEMS: Final = 0xFFFF


class ItemKind(IntEnum):
    """What the signed items are."""

    MESSAGES = 0
    PAYLOAD = 1


def gateway_request_message(network_id: int, kind: ItemKind, items: Sequence[bytes]) -> bytes:
    """What the gateway signs for `items`."""
    require_uint("network_id", network_id, U64_MAX)
    if not 1 <= len(items) <= MAX_ITEMS:
        raise InvalidFieldError("items", f"{len(items)} is outside 1..{MAX_ITEMS}")
    digest = blake2b_256(
        u64(network_id),
        u8(kind),
        len(items).to_bytes(2, "little"),
        *(blake2b_256(item) for item in items),
    )
    return GATEWAY_DOMAIN + digest


def gateway_headers(
    network_id: int, kind: ItemKind, items: Sequence[bytes], gateway: DeviceId, key: Signer
) -> dict[str, str]:
    """The headers a gateway sends with `items`, signed with its current registry key."""
    signature = key.sign(gateway_request_message(network_id, kind, items))
    return {GATEWAY_HEADER: gateway.hex(), SIGNATURE_HEADER: signature.hex()}


def signed_by(
    key: PublicKey, signature: bytes, network_id: int, kind: ItemKind, items: Sequence[bytes]
) -> bool:
    """True iff `signature` is `key`'s over `items`."""
    return is_valid(key, gateway_request_message(network_id, kind, items), signature)


def read_headers(headers: Mapping[str, str]) -> tuple[bytes, bytes] | None:
    """(gateway id, signature) from a request's headers, None when it names no gateway; raises
    `InvalidFieldError` when a header is there but is not hex of the right size."""
    gateway_hex = headers.get(GATEWAY_HEADER)
    signature_hex = headers.get(SIGNATURE_HEADER)
    if gateway_hex is None and signature_hex is None:
        return None
    gateway = _hex(GATEWAY_HEADER, gateway_hex, 32)
    signature = _hex(SIGNATURE_HEADER, signature_hex, 64)
    return gateway, signature


def _hex(name: str, text: str | None, size: int) -> bytes:
    if text is None or len(text) != 2 * size:
        raise InvalidFieldError(name, f"must be {2 * size} hex digits")
    try:
        out = bytes.fromhex(text)
    except ValueError:
        out = b""
    if len(out) != size:  # fromhex skips whitespace
        raise InvalidFieldError(name, f"must be {2 * size} hex digits")
    return out


def decode_batch(body: bytes) -> list[bytes]:
    """The messages of an octet-stream batch body; a `DecodeError` if it is not one."""
    r = Reader(body, "batch")
    count = r.u16("count")
    if not 1 <= count <= MAX_BATCH:
        raise NonCanonicalError(f"batch count {count} is outside 1..{MAX_BATCH}")
    messages = [r.sized(4, MAX_MESSAGE_SIZE, "message") for _ in range(count)]
    r.finish()
    return messages


def encode_batch(messages: Sequence[bytes]) -> bytes:
    """The octet-stream body of a batch of `messages` (what a gateway sends)."""
    if not 1 <= len(messages) <= MAX_BATCH:
        raise NonCanonicalError(f"batch count {len(messages)} is outside 1..{MAX_BATCH}")
    parts = [len(messages).to_bytes(2, "little")]
    for raw in messages:
        parts += (len(raw).to_bytes(4, "little"), raw)
    return b"".join(parts)
