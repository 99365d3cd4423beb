"""Building and signing the ledger transactions of a payment channel (PROTOCOL.md section 10).

Each builder returns a signed `Transaction` ready to attach: opening (from coins), top-up, the
payee's close with a balance proof, the start of a unilateral close, a challenge with a newer
two-way state, settlement after the challenge period, and a cooperative close (whose essence
both parties sign separately). The builders check what they can before signing, so a
transaction they return passes the ledger's stateless rules; the stateful ones (is the channel
still open? is the challenge period over?) are the ledger's to judge.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from tangle.ledger.channel_rules import settlement_outputs
from tangle.protocol.channel import ChannelOp, ChannelOutput, ChannelUnlock, channel_id_of
from tangle.protocol.transaction import BasicOutput, Transaction, TransactionEssence

from .errors import SigningError
from .transfer import ChannelAuthority, sign_transaction

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tangle.protocol.channel import SignedBalanceProof
    from tangle.protocol.ids import Address, OutputId, PublicKey, Signature
    from tangle.protocol.signature import Signer
    from tangle.protocol.transaction import Output


def open_channel(
    *,
    network_id: int,
    funding: Sequence[tuple[OutputId, Signer]],
    payer: PublicKey,
    payee: PublicKey,
    deposit: int,
    challenge_period: int,
    expiry: int,
    bidirectional: bool = False,
    change: tuple[Address, int] | None = None,
    memo: bytes = b"",
) -> Transaction:
    """A transaction locking `deposit` in a new channel at output 0 (its id follows from the
    first funding input)."""
    if not funding:
        raise SigningError("opening a channel needs at least one funding input")
    channel = ChannelOutput(
        channel_id=channel_id_of(funding[0][0], 0),
        payer=payer,
        payee=payee,
        amount=deposit,
        bidirectional=bidirectional,
        challenge_period=challenge_period,
        expiry=expiry,
    )
    essence = TransactionEssence(
        network_id=network_id,
        inputs=tuple(oid for oid, _ in funding),
        outputs=(channel, *_change(change)),
        memo=memo,
    )
    return sign_transaction(essence, [signer for _, signer in funding])


def top_up(
    *,
    network_id: int,
    channel_input: OutputId,
    channel: ChannelOutput,
    payer: Signer,
    funding: Sequence[tuple[OutputId, Signer]],
    amount: int,
    expiry: int | None = None,
    change: tuple[Address, int] | None = None,
) -> Transaction:
    """Add `amount` to the deposit (and optionally move the expiry later)."""
    after = replace(
        channel, amount=channel.amount + amount, expiry=channel.expiry if expiry is None else expiry
    )
    essence = TransactionEssence(
        network_id=network_id,
        inputs=(channel_input, *(oid for oid, _ in funding)),
        outputs=(after, *_change(change)),
    )
    authority = ChannelAuthority(op=ChannelOp.TOP_UP, channel=channel, payer=payer)
    return sign_transaction(essence, [authority, *(signer for _, signer in funding)])


def payee_close(
    *,
    network_id: int,
    channel_input: OutputId,
    channel: ChannelOutput,
    payee: Signer,
    proof: SignedBalanceProof,
) -> Transaction:
    """The payee of a one-way channel settles at once with the payer's latest proof."""
    if proof.payee_signature is not None:
        raise SigningError("a one-way proof carries no payee signature")
    if proof.proof.payee_balance > channel.amount:
        raise SigningError(
            f"the proof pays {proof.proof.payee_balance}, the deposit is {channel.amount}"
        )
    outputs = settlement_outputs(channel, proof.proof.payee_balance)
    authority = ChannelAuthority(
        op=ChannelOp.PAYEE_CLOSE, channel=channel, payee=payee, proof=proof
    )
    return _spend(network_id, channel_input, outputs, authority)


def start_close(
    *,
    network_id: int,
    channel_input: OutputId,
    channel: ChannelOutput,
    signer: Signer,
    proof: SignedBalanceProof | None = None,
) -> Transaction:
    """Start the challenge period (a two-way channel may record a newer co-signed state)."""
    state = channel if proof is None else proof.proof
    after = replace(
        channel, sequence=state.sequence, payee_balance=state.payee_balance, closing_since=0
    )
    authority = _party(ChannelOp.START_CLOSE, channel, signer, proof)
    return _spend(network_id, channel_input, (after,), authority)


def challenge(
    *,
    network_id: int,
    channel_input: OutputId,
    channel: ChannelOutput,
    signer: Signer,
    proof: SignedBalanceProof,
) -> Transaction:
    """Record a newer co-signed state of a closing two-way channel."""
    after = replace(channel, sequence=proof.proof.sequence, payee_balance=proof.proof.payee_balance)
    authority = _party(ChannelOp.CHALLENGE, channel, signer, proof)
    return _spend(network_id, channel_input, (after,), authority)


def settle(
    *, network_id: int, channel_input: OutputId, channel: ChannelOutput, signer: Signer
) -> Transaction:
    """Pay out the state on the ledger once the challenge period is over."""
    outputs = settlement_outputs(channel, channel.payee_balance)
    return _spend(network_id, channel_input, outputs, _party(ChannelOp.SETTLE, channel, signer))


def cooperative_close_essence(
    *, network_id: int, channel_input: OutputId, outputs: Sequence[Output]
) -> TransactionEssence:
    """What both parties sign to close by agreement (each signs `signing_message` of its id)."""
    return TransactionEssence(
        network_id=network_id, inputs=(channel_input,), outputs=tuple(outputs)
    )


def cooperative_close(
    essence: TransactionEssence,
    channel: ChannelOutput,
    payer_signature: Signature,
    payee_signature: Signature,
) -> Transaction:
    """The cooperative close with both parties' signatures of `essence`."""
    unlock = ChannelUnlock(
        op=ChannelOp.COOPERATIVE_CLOSE,
        channel_id=channel.channel_id,
        payer=channel.payer,
        payee=channel.payee,
        payer_signature=payer_signature,
        payee_signature=payee_signature,
    )
    return Transaction(essence=essence, unlocks=(unlock,))


def _party(
    op: ChannelOp,
    channel: ChannelOutput,
    signer: Signer,
    proof: SignedBalanceProof | None = None,
) -> ChannelAuthority:
    if signer.public_key == channel.payer:
        return ChannelAuthority(op=op, channel=channel, payer=signer, proof=proof)
    if signer.public_key == channel.payee:
        return ChannelAuthority(op=op, channel=channel, payee=signer, proof=proof)
    raise SigningError("the signer is neither the channel's payer nor its payee")


def _spend(
    network_id: int,
    channel_input: OutputId,
    outputs: tuple[Output, ...],
    authority: ChannelAuthority,
) -> Transaction:
    essence = TransactionEssence(network_id=network_id, inputs=(channel_input,), outputs=outputs)
    return sign_transaction(essence, [authority])


def _change(change: tuple[Address, int] | None) -> tuple[BasicOutput, ...]:
    return () if change is None else (BasicOutput(address=change[0], amount=change[1]),)
