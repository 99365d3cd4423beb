"""What the `tanglepay roaming` commands share: the operator key from a seed file, usage
errors, and reading the agreement files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nacl.signing import SigningKey

from tangle.protocol.ids import PublicKey, Signature

from .agreement import Agreement, SignedAgreement

if TYPE_CHECKING:
    from pathlib import Path


class SeedSigner:
    """An operator key from a 32-byte seed (the `Signer` the agreement and batches need)."""

    __slots__ = ("_key", "public_key")

    def __init__(self, seed: bytes) -> None:
        self._key = SigningKey(seed)
        self.public_key = PublicKey(bytes(self._key.verify_key))

    def sign(self, message: bytes) -> Signature:
        return Signature(self._key.sign(message).signature)


class UsageError(Exception):
    pass


def signer_of(path: Path) -> SeedSigner:
    text = path.read_text().strip()
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        raise UsageError(f"{path}: not hex") from None
    if len(seed) != 32:
        raise UsageError(f"{path}: a key file holds 32 bytes (64 hex digits)")
    return SeedSigner(seed)


def load_agreement(path: Path) -> tuple[Agreement, SignedAgreement | None]:
    data = path.read_bytes()
    if data.startswith(b'{"agreement"'):
        signed = SignedAgreement.decode(data)
        return signed.agreement, signed
    return Agreement.decode(data), None


def signed_agreement(path: Path) -> SignedAgreement:
    _, signed = load_agreement(path)
    if signed is None:
        raise UsageError(f"{path}: not signed by both carriers (agreement seal)")
    return signed
