"""Signed readings: what a device measures, signed by the device's ed25519 key.

```
u8     version        READING_VERSION
u64    network_id     the network the reading is for
32     device_id      the device's registry id
u64    counter        >= 1, strictly increasing per device: a repeat or a step back is a replay
u64    timestamp_ms   the device's clock, Unix milliseconds (informative only)
u16    stream         which of the device's data streams (sensor channel)
u8     form           0 = plain data, 1 = sealed (data is a `sealed.SealedData` encoding)
u16    data_length    0..MAX_READING_DATA, then the data
64     signature      ed25519 over READING_DOMAIN || every byte above
```
All integers little-endian; nothing may follow the signature. The signed bytes start with a
domain string no other signed object of the project uses, and they hold the network and the
device, so a signature is good for this reading on this network from this device only. A gateway
checks the counter, so a replayed reading is visible; the counter is the reading's identity in
the device's stream, the timestamp is not trusted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Final

from tangle.errors import InvalidFieldError
from tangle.protocol.codec import U16_MAX, U64_MAX, require_bytes, require_uint
from tangle.protocol.ids import Signature
from tangle.protocol.signature import is_valid

from .errors import ReadingFormatError, ReadingSignatureError

if TYPE_CHECKING:
    from tangle.protocol.signature import Signer

READING_VERSION: Final = 1
READING_DOMAIN: Final = b"tanglepay/device-reading/v1"
DEVICE_ID_SIZE: Final = 32
MAX_READING_DATA: Final = 1024
"""Largest reading payload, so a gateway's open batch is bounded in bytes too."""

_HEADER: Final = struct.Struct("<BQ32sQQHBH")
HEADER_SIZE: Final = _HEADER.size
SIGNATURE_SIZE: Final = Signature.SIZE
MIN_READING_SIZE: Final = HEADER_SIZE + SIGNATURE_SIZE
MAX_READING_SIZE: Final = MIN_READING_SIZE + MAX_READING_DATA


class Form(IntEnum):
    """How a reading's data is held."""

    PLAIN = 0
    """The measured bytes, readable by anyone who holds the reading."""
    SEALED = 1
    """A `sealed.SealedData` encoding: readable only with the stream's period key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """What a device signs."""

    network_id: int
    """The network the reading is for (u64)."""
    device_id: bytes
    """The device's registry id (32 bytes)."""
    counter: int
    """1.., strictly increasing over the device's readings (u64)."""
    timestamp_ms: int
    """The device's clock when it measured, Unix milliseconds (u64)."""
    stream: int
    """The device's data stream (u16)."""
    form: Form
    """Plain or sealed data."""
    data: bytes
    """The payload, at most MAX_READING_DATA bytes."""

    def __post_init__(self) -> None:
        require_uint("Reading.network_id", self.network_id, U64_MAX)
        if not isinstance(self.device_id, bytes) or len(self.device_id) != DEVICE_ID_SIZE:
            raise InvalidFieldError("Reading.device_id", f"must be {DEVICE_ID_SIZE} bytes")
        require_uint("Reading.counter", self.counter, U64_MAX, minimum=1)
        require_uint("Reading.timestamp_ms", self.timestamp_ms, U64_MAX)
        require_uint("Reading.stream", self.stream, U16_MAX)
        if not isinstance(self.form, Form):
            raise InvalidFieldError("Reading.form", "must be a Form")
        require_bytes("Reading.data", self.data, MAX_READING_DATA)


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedReading:
    """A reading with its device's signature."""

    reading: Reading
    """The signed content."""
    signature: Signature
    """ed25519 signature of `signing_message(reading)` by the device's key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """The fields a gateway needs from a raw signed reading, read without building objects."""

    network_id: int
    """The reading's network."""
    device_id: bytes
    """The reading's device."""
    counter: int
    """The reading's counter."""


def encode_reading(reading: Reading) -> bytes:
    """The canonical bytes of `reading` without its signature."""
    header = _HEADER.pack(
        READING_VERSION,
        reading.network_id,
        reading.device_id,
        reading.counter,
        reading.timestamp_ms,
        reading.stream,
        reading.form,
        len(reading.data),
    )
    return header + reading.data


def signing_message(reading: Reading) -> bytes:
    """The bytes the device signs."""
    return READING_DOMAIN + encode_reading(reading)


def sign_reading(reading: Reading, key: Signer) -> SignedReading:
    """`reading` signed by the device's `key`."""
    return SignedReading(reading=reading, signature=key.sign(signing_message(reading)))


def encode_signed(signed: SignedReading) -> bytes:
    """The canonical bytes of a signed reading: the reading, then the signature."""
    return encode_reading(signed.reading) + signed.signature


def read_header(raw: bytes) -> Header:
    """Check every framing rule of a raw signed reading (version, form, exact length) and
    return the fields a gateway routes on; `ReadingFormatError` names the rule broken."""
    size = len(raw)
    if size < MIN_READING_SIZE:
        raise ReadingFormatError(f"{size} bytes, at least {MIN_READING_SIZE} needed")
    version, network_id, device_id, counter, _, _, form, length = _HEADER.unpack_from(raw)
    if version != READING_VERSION:
        raise ReadingFormatError(f"version {version}, this code reads {READING_VERSION}")
    if form > Form.SEALED:
        raise ReadingFormatError(f"form {form} is neither plain (0) nor sealed (1)")
    if length > MAX_READING_DATA:
        raise ReadingFormatError(f"data of {length} bytes, at most {MAX_READING_DATA}")
    if size != MIN_READING_SIZE + length:
        expected = MIN_READING_SIZE + length
        raise ReadingFormatError(f"{size} bytes where the data length makes it {expected}")
    if counter == 0:
        raise ReadingFormatError("counter 0 (counters start at 1)")
    return Header(network_id=network_id, device_id=device_id, counter=counter)


def decode_signed(raw: bytes) -> SignedReading:
    """Decode a signed reading strictly; `ReadingFormatError` for anything not canonical."""
    raw = bytes(raw)
    read_header(raw)
    _, network_id, device_id, counter, timestamp_ms, stream, form, length = _HEADER.unpack_from(raw)
    reading = Reading(
        network_id=network_id,
        device_id=device_id,
        counter=counter,
        timestamp_ms=timestamp_ms,
        stream=stream,
        form=Form(form),
        data=raw[HEADER_SIZE : HEADER_SIZE + length],
    )
    return SignedReading(reading=reading, signature=Signature(raw[-SIGNATURE_SIZE:]))


def verify_raw(raw: bytes, public_key: bytes) -> None:
    """Raise `ReadingSignatureError` unless the raw signed reading `raw` (framing already
    checked by `read_header`) is signed by `public_key`. The gateway's hot path: one ed25519
    verification, no objects built."""
    if not is_valid(public_key, READING_DOMAIN + raw[:-SIGNATURE_SIZE], raw[-SIGNATURE_SIZE:]):
        raise ReadingSignatureError(f"not signed by device key {public_key.hex()}")


def verify_reading(signed: SignedReading, public_key: bytes) -> None:
    """Raise `ReadingSignatureError` unless `signed` carries `public_key`'s signature."""
    if not is_valid(public_key, signing_message(signed.reading), signed.signature):
        raise ReadingSignatureError(f"not signed by device key {public_key.hex()}")
