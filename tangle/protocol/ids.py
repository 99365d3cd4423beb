"""Fixed-size identifiers and the one hash function of the protocol (BLAKE2b-256).

Identifiers are `bytes` subclasses whose constructor checks the length, so a `MessageId` in hand
is always 32 bytes.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Self

from tangle.errors import InvalidFieldError

HASH_SIZE = 32


def blake2b_256(*parts: bytes) -> bytes:
    """BLAKE2b with a 32-byte digest (RFC 7693) over the concatenation of `parts`."""
    h = hashlib.blake2b(digest_size=HASH_SIZE)
    for part in parts:
        h.update(part)
    return h.digest()


class FixedBytes(bytes):
    """Bytes of exactly `SIZE` length."""

    SIZE: ClassVar[int] = HASH_SIZE

    def __new__(cls, value: bytes | bytearray | memoryview) -> Self:
        raw = value if type(value) is bytes else bytes(value)
        if len(raw) != cls.SIZE:
            raise InvalidFieldError(cls.__name__, f"must be {cls.SIZE} bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    @classmethod
    def from_hex(cls, text: str) -> Self:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidFieldError(cls.__name__, f"not hex: {text[:80]!r}") from None
        return cls(raw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hex()})"


class MessageId(FixedBytes):
    """BLAKE2b-256 of a message's canonical encoding."""


class TransactionId(FixedBytes):
    """BLAKE2b-256 of a transaction's essence."""


class Address(FixedBytes):
    """BLAKE2b-256 of an ed25519 public key."""


class WorkRoot(FixedBytes):
    """BLAKE2b-256 of the parts of a message that its proof-of-work covers."""


class MilestoneId(FixedBytes):
    """BLAKE2b-256 of a milestone's essence (what the committee signs)."""


class MerkleRoot(FixedBytes):
    """Root of an RFC 6962 style Merkle tree."""


class ChannelId(FixedBytes):
    """A payment channel's id: fixed when it opens, kept over top-ups and state updates."""


class PublicKey(FixedBytes):
    """An ed25519 public key."""


class Signature(FixedBytes):
    """An ed25519 signature."""

    SIZE = 64


class OutputId(FixedBytes):
    """A transaction id followed by a little-endian u16 output index."""

    SIZE = HASH_SIZE + 2

    @classmethod
    def of(cls, transaction_id: TransactionId, index: int) -> OutputId:
        if not 0 <= index <= 0xFFFF:
            raise InvalidFieldError("OutputId.index", f"{index} is not a u16")
        return cls(transaction_id + index.to_bytes(2, "little"))

    @property
    def transaction_id(self) -> TransactionId:
        return TransactionId(self[:HASH_SIZE])

    @property
    def output_index(self) -> int:
        return int.from_bytes(self[HASH_SIZE:], "little")
