"""Signing a transaction: one signature unlock per distinct key, reference unlocks for the rest,
and a channel unlock for a spent channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tangle.protocol.channel import ChannelOp, ChannelOutput, ChannelUnlock
from tangle.protocol.transaction import (
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

    from tangle.protocol.channel import SignedBalanceProof
    from tangle.protocol.signature import Signer


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelAuthority:
    """What unlocks a channel input: the operation, the channel and the parties who sign."""

    op: ChannelOp
    """The operation."""
    channel: ChannelOutput
    """The channel output being spent."""
    payer: Signer | None = None
    """The payer's key, if the payer signs."""
    payee: Signer | None = None
    """The payee's key, if the payee signs."""
    proof: SignedBalanceProof | None = None
    """The balance proof the operation presents, if any."""

    def unlock(self, message: bytes) -> ChannelUnlock:
        """The channel unlock, signing the transaction's signing message."""
        for signer, key in ((self.payer, self.channel.payer), (self.payee, self.channel.payee)):
            if signer is not None and signer.public_key != key:
                raise SigningError("a channel signer's key is not the channel's")
        return ChannelUnlock(
            op=self.op,
            channel_id=self.channel.channel_id,
            payer=self.channel.payer,
            payee=self.channel.payee,
            payer_signature=None if self.payer is None else self.payer.sign(message),
            payee_signature=None if self.payee is None else self.payee.sign(message),
            proof=self.proof,
        )


def sign_transaction(
    essence: TransactionEssence, signers: Sequence[Signer | ChannelAuthority]
) -> Transaction:
    """`essence` with unlocks: `signers[i]` owns (or, for a channel, unlocks) input `i`."""
    if len(signers) != len(essence.inputs):
        raise SigningError(f"{len(signers)} signers for {len(essence.inputs)} inputs")
    message = signing_message(transaction_id(essence))
    first: dict[bytes, int] = {}
    unlocks: list[Unlock] = []
    for position, signer in enumerate(signers):
        if isinstance(signer, ChannelAuthority):
            unlocks.append(signer.unlock(message))
            continue
        key = signer.public_key
        if key in first:
            unlocks.append(ReferenceUnlock(index=first[key]))
            continue
        first[key] = position
        unlocks.append(SignatureUnlock(public_key=key, signature=signer.sign(message)))
    return Transaction(essence=essence, unlocks=tuple(unlocks))
