"""Committee signers: each operator's ed25519 key signs milestone ids.

On a devnet the coordinator holds every operator's key in one process; in production each
operator keeps its key in its own signer and only the `Signer` protocol crosses the boundary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nacl.signing import SigningKey

from tangle.protocol.ids import PublicKey, Signature
from tangle.protocol.milestone import (
    CommitteeSignature,
    KeySet,
    Milestone,
    MilestoneEssence,
    milestone_id,
    signing_message,
)

from .errors import NotEnoughSignersError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tangle.protocol.signature import Signer


class KeySigner:
    """A signer holding its ed25519 seed in memory (never shown in a repr)."""

    __slots__ = ("_key", "_public_key")

    def __init__(self, seed: bytes) -> None:
        self._key = SigningKey(seed)
        self._public_key = PublicKey(bytes(self._key.verify_key))

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    def sign(self, message: bytes) -> Signature:
        return Signature(self._key.sign(message).signature)

    def __repr__(self) -> str:
        return f"KeySigner(public_key={self._public_key.hex()})"


def sign_milestone(
    essence: MilestoneEssence, signers: Sequence[Signer], key_set: KeySet
) -> Milestone:
    """Sign `essence` with every signer that belongs to `key_set`; at least its threshold."""
    members = set(key_set.public_keys)
    chosen = sorted((s for s in signers if s.public_key in members), key=lambda s: s.public_key)
    if len(chosen) < key_set.threshold:
        raise NotEnoughSignersError(essence.index, len(chosen), key_set.threshold)
    message = signing_message(milestone_id(essence))
    return Milestone(
        essence=essence,
        signatures=tuple(
            CommitteeSignature(public_key=s.public_key, signature=s.sign(message)) for s in chosen
        ),
    )
