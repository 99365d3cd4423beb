"""Signing a transfer: one signature unlock per distinct key, reference unlocks for the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tangle.transaction import (
    ReferenceUnlock,
    SignatureUnlock,
    Transaction,
    TransactionEssence,
    Unlock,
    signing_message,
    transaction_id,
)

from .errors import SigningError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tangle.signature import Signer


def sign_transaction(essence: TransactionEssence, signers: Sequence[Signer]) -> Transaction:
    """`essence` with unlocks: `signers[i]` owns the output spent by input `i`."""
    if len(signers) != len(essence.inputs):
        raise SigningError(f"{len(signers)} signers for {len(essence.inputs)} inputs")
    message = signing_message(transaction_id(essence))
    first: dict[bytes, int] = {}
    unlocks: list[Unlock] = []
    for position, signer in enumerate(signers):
        key = signer.public_key
        if key in first:
            unlocks.append(ReferenceUnlock(index=first[key]))
            continue
        first[key] = position
        unlocks.append(SignatureUnlock(public_key=key, signature=signer.sign(message)))
    return Transaction(essence=essence, unlocks=tuple(unlocks))
