"""Payee-signed receipts: what the payee acknowledges having been paid, and for what.

A receipt answers one balance proof. The payee signs it with the channel's payee key, so the
payer holds evidence of every payment the payee credited and of what it was credited for: one
HTTP request (`ReceiptKind.REQUEST`, the tag is the request's hash) or a metered quantity
(`ReceiptKind.METERED`, the units are cumulative over the channel).

Encoding (little-endian, 169 bytes; the signature covers the domain and the first 105 bytes):

```
  u8   kind               ReceiptKind
  u64  network_id         the channel's network
  32   channel_id
  u64  sequence           the sequence of the balance proof it answers
  u64  cumulative_amount  the payee's balance after that proof (the total paid so far)
  u64  credited           what that proof newly credited
  u64  units              REQUEST: the request's units; METERED: cumulative units billed
  32   tag                REQUEST: the request's hash; METERED: the session's tag
  64   signature          the payee's ed25519 signature of RECEIPT_DOMAIN || the above
```

In an HTTP header a receipt is the unpadded base64url of these bytes.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import TYPE_CHECKING, Final

from tangle.errors import DecodeError, InvalidFieldError
from tangle.protocol.codec import U64_MAX, Reader, require_uint, u8, u64
from tangle.protocol.ids import HASH_SIZE, ChannelId, PublicKey, Signature
from tangle.protocol.signature import is_valid

from ..errors import MalformedReceiptError, ReceiptSignatureError

if TYPE_CHECKING:
    from collections.abc import Callable

    from tangle.protocol.signature import Signer

RECEIPT_DOMAIN: Final = b"tanglepay/receipt/v1"
RECEIPT_SIZE: Final = 1 + 8 + 32 + 8 + 8 + 8 + 8 + 32 + 64
NO_TAG: Final = bytes(HASH_SIZE)


class ReceiptKind(IntEnum):
    """What a receipt acknowledges a payment for."""

    REQUEST = 0
    """One HTTP request behind a paywall."""
    METERED = 1
    """A metered quantity (seconds, watt-hours, bytes), cumulative over the channel."""


def _require_u64(field: str, value: int) -> None:
    try:
        require_uint(field, value, U64_MAX)
    except InvalidFieldError:
        raise MalformedReceiptError(f"{field} must be a u64, got {value!r}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """A payee's signed acknowledgement of one balance proof (see the module docstring)."""

    kind: ReceiptKind
    """What the payment was for."""
    network_id: int
    """The channel's network."""
    channel_id: ChannelId
    """The channel paid through."""
    sequence: int
    """The sequence number of the balance proof this receipt answers."""
    cumulative_amount: int
    """The payee's balance in the channel after that proof: everything paid so far."""
    credited: int
    """What that proof newly credited (its balance minus the one before)."""
    units: int
    """REQUEST: the units the request was priced at; METERED: cumulative units billed."""
    tag: bytes
    """32 bytes: the request's hash (REQUEST) or the metering session's tag (METERED)."""
    signature: Signature
    """The payee's signature of `message()`."""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ReceiptKind):
            raise MalformedReceiptError("kind must be a ReceiptKind")
        if not isinstance(self.channel_id, ChannelId):
            raise MalformedReceiptError("channel_id must be a ChannelId")
        for field in ("network_id", "sequence", "cumulative_amount", "credited", "units"):
            _require_u64(field, getattr(self, field))
        if self.credited > self.cumulative_amount:
            raise MalformedReceiptError("credited exceeds the cumulative amount")
        if not isinstance(self.tag, bytes) or len(self.tag) != HASH_SIZE:
            raise MalformedReceiptError(f"tag must be {HASH_SIZE} bytes")
        if not isinstance(self.signature, Signature):
            raise MalformedReceiptError("signature must be a Signature")

    def body(self) -> bytes:
        """The encoded fields, without the signature."""
        return b"".join(
            (
                u8(self.kind),
                u64(self.network_id),
                self.channel_id,
                u64(self.sequence),
                u64(self.cumulative_amount),
                u64(self.credited),
                u64(self.units),
                self.tag,
            )
        )

    def message(self) -> bytes:
        """The bytes the payee signs."""
        return RECEIPT_DOMAIN + self.body()

    def verify(self, payee: PublicKey) -> None:
        """Raise `ReceiptSignatureError` unless `payee` signed this receipt."""
        if not is_valid(payee, self.message(), self.signature):
            raise ReceiptSignatureError


def issue_receipt(
    signer: Signer,
    *,
    kind: ReceiptKind,
    network_id: int,
    channel_id: ChannelId,
    sequence: int,
    cumulative_amount: int,
    credited: int,
    units: int,
    tag: bytes = NO_TAG,
) -> Receipt:
    """A receipt with these fields, signed by `signer` (the channel's payee)."""
    unsigned = Receipt(
        kind=kind,
        network_id=network_id,
        channel_id=channel_id,
        sequence=sequence,
        cumulative_amount=cumulative_amount,
        credited=credited,
        units=units,
        tag=tag,
        signature=Signature(bytes(64)),
    )
    return replace(unsigned, signature=signer.sign(unsigned.message()))


def encode_receipt(receipt: Receipt) -> bytes:
    """The canonical bytes of `receipt`."""
    return receipt.body() + receipt.signature


def decode_receipt(data: bytes) -> Receipt:
    """Read a receipt; anything but exactly one canonical receipt raises
    `MalformedReceiptError`."""
    try:
        r = Reader(data, "receipt")
        tag = r.u8("kind")
        if tag > max(ReceiptKind):
            raise MalformedReceiptError(f"unknown receipt kind {tag}")
        receipt = Receipt(
            kind=ReceiptKind(tag),
            network_id=r.u64("network_id"),
            channel_id=ChannelId(r.take(32, "channel_id")),
            sequence=r.u64("sequence"),
            cumulative_amount=r.u64("cumulative_amount"),
            credited=r.u64("credited"),
            units=r.u64("units"),
            tag=r.take(HASH_SIZE, "tag"),
            signature=Signature(r.take(64, "signature")),
        )
        r.finish()
    except (DecodeError, InvalidFieldError) as e:
        raise MalformedReceiptError(str(e)) from None
    return receipt


def receipt_to_header(receipt: Receipt) -> str:
    """Unpadded base64url of the receipt's bytes, for an HTTP header."""
    return b64url_encode(encode_receipt(receipt))


def receipt_from_header(value: str) -> Receipt:
    """The receipt in a header written by `receipt_to_header`."""
    return decode_receipt(b64url_decode(value, MalformedReceiptError))


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, as HTTP headers carry proofs and receipts."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: str, error: Callable[[str], Exception]) -> bytes:
    """Strict unpadded (or padded) base64url; anything else raises `error(reason)`."""
    text = value.strip()
    if not text.isascii():
        raise error("not ASCII")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise error("not base64url") from None
    if b64url_encode(raw) != text.rstrip("="):
        raise error("not canonical base64url")
    return raw
