"""Message payloads: one type byte, then the type's body.

```
u8 type:  0 = tagged data     u8 tag_length (0..MAX_TAG), tag, u32 data_length, data
          1 = transaction     see transaction.py
          2 = milestone       see milestone.py
          3 = device record   see device.py
          anything else is unknown (payment channels are transactions: channel.py)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from tangle.errors import InvalidFieldError, UnknownTypeError

from .codec import Reader, require_bytes, sized, u8
from .device import DeviceRecord, decode_record, encode_record
from .milestone import Milestone, decode_milestone, encode_milestone
from .transaction import Transaction, decode_transaction, encode_transaction

MAX_TAG: Final = 64
MAX_DATA: Final = 32 * 1024

PAYLOAD_TAGGED_DATA: Final = 0
PAYLOAD_TRANSACTION: Final = 1
PAYLOAD_MILESTONE: Final = 2
PAYLOAD_DEVICE_RECORD: Final = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class TaggedData:
    """Opaque data with an indexable tag (sensor readings, receipts, anchors)."""

    tag: bytes
    """Up to MAX_TAG bytes, used for lookups."""
    data: bytes
    """The content; bounded by the message size."""

    def __post_init__(self) -> None:
        require_bytes("TaggedData.tag", self.tag, MAX_TAG)
        require_bytes("TaggedData.data", self.data, MAX_DATA)


Payload = TaggedData | Transaction | Milestone | DeviceRecord


def encode_payload(payload: Payload) -> bytes:
    if isinstance(payload, TaggedData):
        return u8(PAYLOAD_TAGGED_DATA) + sized(1, payload.tag) + sized(4, payload.data)
    if isinstance(payload, Transaction):
        return u8(PAYLOAD_TRANSACTION) + encode_transaction(payload)
    if isinstance(payload, Milestone):
        return u8(PAYLOAD_MILESTONE) + encode_milestone(payload)
    if isinstance(payload, DeviceRecord):
        return u8(PAYLOAD_DEVICE_RECORD) + encode_record(payload)
    raise InvalidFieldError("payload", f"unknown payload object {type(payload).__name__}")


def decode_payload(r: Reader) -> Payload:
    """Read one payload; the caller checks that nothing trails it."""
    tag = r.u8("payload.type")
    if tag == PAYLOAD_TAGGED_DATA:
        return TaggedData(tag=r.sized(1, MAX_TAG, "tag"), data=r.sized(4, MAX_DATA, "data"))
    if tag == PAYLOAD_TRANSACTION:
        return decode_transaction(r)
    if tag == PAYLOAD_MILESTONE:
        return decode_milestone(r)
    if tag == PAYLOAD_DEVICE_RECORD:
        return decode_record(r)
    raise UnknownTypeError("payload", tag)
