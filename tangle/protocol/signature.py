"""The one ed25519 verifier every node uses (PyNaCl, that is libsodium), so that all nodes accept
exactly the same signatures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError

if TYPE_CHECKING:
    from .ids import PublicKey, Signature


class Signer(Protocol):
    """Anything holding an ed25519 key: a wallet's address key, a committee member."""

    @property
    def public_key(self) -> PublicKey: ...

    def sign(self, message: bytes) -> Signature: ...


def is_valid(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff `signature` is a valid ed25519 signature of `message` by `public_key`."""
    try:
        crypto_sign_open(signature + message, public_key)
    except (BadSignatureError, NaclValueError):
        return False
    return True
