"""Sealed readings: data only the parties granted a stream can read.

The owner of a device's data (the device, or whoever holds its owner key) encrypts each reading
of a stream under the stream's *period key*, a random 32-byte key for one period, with
XChaCha20-Poly1305 (`nacl.secret.Aead`). The reading is then signed as usual with form
`SEALED`, so a gateway verifies, batches and anchors it and a proof covers it without the key:
the batch leaf is the hash of the sealed reading's bytes.

Sealed data (a reading's `data` when its form is `SEALED`):
```
u32  period           which period key encrypts it
24   nonce            random
..   ciphertext       XChaCha20-Poly1305 of the plaintext; the associated data is
                      SEALED_DOMAIN || u64 network_id || device_id || u16 stream || u64 counter
                      || u32 period, so a ciphertext cannot be moved to another reading
```

Access is managed by signed stream records (`StreamRecord`), each signed by the owner key:
`GRANT` (the grantee may read from `period` on), `REVOKE` (not from `period` on) and `KEY` (the
period key of `period`, sealed to the grantee's X25519 key with `nacl.public.SealedBox`). The
owner's `StreamKeys` starts a new period at every revocation and seals its key only to those
still granted, so a revoked party cannot read anything written after its revocation; what it
could read before stays readable to it (it may have kept the keys anyway).
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Final

import nacl.exceptions
import nacl.secret
import nacl.utils
from nacl.public import PrivateKey, PublicKey, SealedBox

from tangle.errors import InvalidFieldError
from tangle.protocol.codec import U16_MAX, U32_MAX, U64_MAX, require_uint
from tangle.protocol.ids import Signature
from tangle.protocol.signature import is_valid

from .errors import GrantSignatureError, NoGrantError, OpenError, SealFormatError
from .reading import MAX_READING_DATA, Form, Reading

if TYPE_CHECKING:
    from tangle.protocol.signature import Signer

SEALED_DOMAIN: Final = b"tanglepay/sealed-reading/v1"
RECORD_DOMAIN: Final = b"tanglepay/stream-record/v1"
RECORD_VERSION: Final = 1
KEY_SIZE: Final = nacl.secret.Aead.KEY_SIZE
NONCE_SIZE: Final = nacl.secret.Aead.NONCE_SIZE
SEALED_KEY_SIZE: Final = 32 + 16 + KEY_SIZE  # ephemeral public key, MAC, the period key
MAX_PLAINTEXT: Final = MAX_READING_DATA - 4 - NONCE_SIZE - nacl.secret.Aead.MACBYTES

_AD: Final = struct.Struct("<Q32sHQI")
_RECORD: Final = struct.Struct("<BBQ32sHI32sB")


class StreamRecordKind(IntEnum):
    """What a stream record says."""

    GRANT = 1
    """The grantee may read the stream from `period` on."""
    REVOKE = 2
    """The grantee may not read the stream from `period` on."""
    KEY = 3
    """The period key of `period`, sealed to the grantee."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamRecord:
    """A signed statement by a stream's owner about who may read it."""

    kind: StreamRecordKind
    """Grant, revocation or sealed key."""
    network_id: int
    """The network (u64)."""
    device_id: bytes
    """The device whose stream this is (32 bytes)."""
    stream: int
    """The stream (u16)."""
    period: int
    """The period the record is about (u32)."""
    grantee: bytes
    """The grantee's X25519 public key (32 bytes)."""
    sealed_key: bytes
    """For `KEY`, the period key sealed to the grantee (SEALED_KEY_SIZE bytes); else empty."""
    signature: Signature
    """The owner's ed25519 signature of RECORD_DOMAIN || the record without the signature."""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, StreamRecordKind):
            raise InvalidFieldError("StreamRecord.kind", "must be a StreamRecordKind")
        require_uint("StreamRecord.network_id", self.network_id, U64_MAX)
        require_uint("StreamRecord.stream", self.stream, U16_MAX)
        require_uint("StreamRecord.period", self.period, U32_MAX)
        for name in ("device_id", "grantee"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != 32:
                raise InvalidFieldError(f"StreamRecord.{name}", "must be 32 bytes")
        expected = SEALED_KEY_SIZE if self.kind == StreamRecordKind.KEY else 0
        if not isinstance(self.sealed_key, bytes) or len(self.sealed_key) != expected:
            raise InvalidFieldError("StreamRecord.sealed_key", f"must be {expected} bytes")


def _body(record: StreamRecord) -> bytes:
    return (
        _RECORD.pack(
            RECORD_VERSION,
            record.kind,
            record.network_id,
            record.device_id,
            record.stream,
            record.period,
            record.grantee,
            len(record.sealed_key),
        )
        + record.sealed_key
    )


def encode_record(record: StreamRecord) -> bytes:
    return _body(record) + record.signature


def decode_record(raw: bytes) -> StreamRecord:
    """Decode a stream record strictly (`SealFormatError`); the signature is not checked."""
    raw = bytes(raw)
    if len(raw) < _RECORD.size + Signature.SIZE:
        raise SealFormatError(f"a record of {len(raw)} bytes is too short")
    version, kind, network_id, device_id, stream, period, grantee, key_len = _RECORD.unpack_from(
        raw
    )
    if version != RECORD_VERSION:
        raise SealFormatError(f"record version {version}")
    if kind not in set(StreamRecordKind):
        raise SealFormatError(f"record kind {kind}")
    expected_key = SEALED_KEY_SIZE if kind == StreamRecordKind.KEY else 0
    if key_len != expected_key or len(raw) != _RECORD.size + key_len + Signature.SIZE:
        raise SealFormatError("the sealed key or the record has the wrong length")
    return StreamRecord(
        kind=StreamRecordKind(kind),
        network_id=network_id,
        device_id=device_id,
        stream=stream,
        period=period,
        grantee=grantee,
        sealed_key=raw[_RECORD.size : _RECORD.size + key_len],
        signature=Signature(raw[-Signature.SIZE :]),
    )


def check_record(record: StreamRecord, owner_key: bytes) -> None:
    """Raise `GrantSignatureError` unless the stream's owner signed `record`."""
    if not is_valid(owner_key, RECORD_DOMAIN + _body(record), record.signature):
        raise GrantSignatureError(f"{record.kind.name} record not signed by the stream owner")


def _associated(network_id: int, device_id: bytes, stream: int, counter: int, period: int) -> bytes:
    return SEALED_DOMAIN + _AD.pack(network_id, device_id, stream, counter, period)


class StreamKeys:
    """The owner's side of one stream: period keys, grantees, and the records that tell them.

    State is bounded by its caller: one key per period started (a period starts at each
    revocation, or when the owner calls `new_period`) and one entry per grantee."""

    __slots__ = ("_grantees", "_keys", "_owner", "device_id", "network_id", "stream")

    def __init__(self, *, network_id: int, device_id: bytes, stream: int, owner: Signer) -> None:
        require_uint("StreamKeys.network_id", network_id, U64_MAX)
        require_uint("StreamKeys.stream", stream, U16_MAX)
        self.network_id = network_id
        self.device_id = device_id
        self.stream = stream
        self._owner = owner
        self._keys: list[bytes] = [nacl.utils.random(KEY_SIZE)]
        self._grantees: set[bytes] = set()

    @property
    def period(self) -> int:
        """The current period: new readings are sealed under its key."""
        return len(self._keys) - 1

    def _record(
        self, kind: StreamRecordKind, grantee: bytes, sealed_key: bytes = b""
    ) -> StreamRecord:
        unsigned = StreamRecord(
            kind=kind,
            network_id=self.network_id,
            device_id=self.device_id,
            stream=self.stream,
            period=self.period,
            grantee=grantee,
            sealed_key=sealed_key,
            signature=Signature(bytes(64)),
        )
        signature = self._owner.sign(RECORD_DOMAIN + _body(unsigned))
        return dataclasses.replace(unsigned, signature=signature)

    def _key_record(self, grantee: bytes) -> StreamRecord:
        sealed = SealedBox(PublicKey(grantee)).encrypt(self._keys[-1])
        return self._record(StreamRecordKind.KEY, grantee, bytes(sealed))

    def grant(self, grantee: bytes) -> tuple[StreamRecord, StreamRecord]:
        """Let `grantee` (an X25519 public key) read from the current period on: the grant
        and the current period key sealed to it."""
        self._grantees.add(bytes(grantee))
        return self._record(StreamRecordKind.GRANT, grantee), self._key_record(grantee)

    def new_period(self) -> list[StreamRecord]:
        """Start a period with a fresh key; its key sealed to each grantee."""
        if self.period >= U32_MAX:
            raise SealFormatError("the stream has used every period")
        self._keys.append(nacl.utils.random(KEY_SIZE))
        return [self._key_record(g) for g in sorted(self._grantees)]

    def revoke(self, grantee: bytes) -> list[StreamRecord]:
        """Stop `grantee` reading: a new period starts whose key is sealed only to those still
        granted. The revocation record comes first, then the new key records."""
        self._grantees.discard(bytes(grantee))
        keys = self.new_period()
        return [self._record(StreamRecordKind.REVOKE, grantee), *keys]

    def seal(self, reading: Reading, plaintext: bytes) -> Reading:
        """`reading` (its form and data ignored) with `plaintext` sealed under the current
        period key; sign the result as any reading."""
        if len(plaintext) > MAX_PLAINTEXT:
            raise SealFormatError(f"{len(plaintext)} bytes, at most {MAX_PLAINTEXT} sealed")
        period = self.period
        ad = _associated(
            reading.network_id, reading.device_id, reading.stream, reading.counter, period
        )
        box = nacl.secret.Aead(self._keys[period])
        sealed = box.encrypt(plaintext, ad, nonce=nacl.utils.random(NONCE_SIZE))
        data = period.to_bytes(4, "little") + bytes(sealed)
        return dataclasses.replace(reading, form=Form.SEALED, data=data)


class Keyring:
    """A reader's side: its X25519 key and the period keys opened for it."""

    __slots__ = ("_keys", "_private", "max_keys")

    def __init__(self, private_key: PrivateKey, *, max_keys: int = 100_000) -> None:
        self._private = private_key
        self._keys: dict[tuple[int, bytes, int, int], bytes] = {}
        self.max_keys = max_keys

    @property
    def public_key(self) -> bytes:
        return bytes(self._private.public_key)

    def add(self, record: StreamRecord, owner_key: bytes) -> None:
        """Take a `KEY` record addressed to this reader, signed by the stream's owner."""
        check_record(record, owner_key)
        if record.kind != StreamRecordKind.KEY or record.grantee != self.public_key:
            raise SealFormatError("not a key record for this reader")
        try:
            key = SealedBox(self._private).decrypt(record.sealed_key)
        except nacl.exceptions.CryptoError:
            raise OpenError("the sealed period key does not open") from None
        slot = (record.network_id, record.device_id, record.stream, record.period)
        if slot not in self._keys and len(self._keys) >= self.max_keys:
            raise SealFormatError(f"the keyring holds {self.max_keys} keys already")
        self._keys[slot] = key

    def open(self, reading: Reading) -> bytes:
        """The plaintext of a sealed reading; `NoGrantError` without its period key."""
        if reading.form != Form.SEALED or len(reading.data) < 4 + NONCE_SIZE:
            raise SealFormatError("not a sealed reading")
        period = int.from_bytes(reading.data[:4], "little")
        slot = (reading.network_id, reading.device_id, reading.stream, period)
        key = self._keys.get(slot)
        if key is None:
            raise NoGrantError(reading.stream, period)
        ad = _associated(
            reading.network_id, reading.device_id, reading.stream, reading.counter, period
        )
        try:
            return nacl.secret.Aead(key).decrypt(reading.data[4:], ad)
        except nacl.exceptions.CryptoError:
            raise OpenError("the ciphertext does not open under the period key") from None
