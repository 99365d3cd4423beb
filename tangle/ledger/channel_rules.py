"""The ledger's channel rules: what a transaction may do to a channel output it spends.

`check_channel_spend` is stateful (it needs the spent output and the index of the milestone
applying the transaction) and runs inside white-flag, so every node reaches the same verdict; the
signatures were verified when the transaction was attached (`ledger.validate_transaction`), so
here only their presence and the keys they belong to matter. The rules, per `ChannelOp`, are
those of docs/PROTOCOL.md section 10; each failure names a `Conflict`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from tangle.protocol.channel import ChannelOp, ChannelOutput, ChannelUnlock, SignedBalanceProof
from tangle.protocol.transaction import BasicOutput, address_of

from .ledger import Conflict

if TYPE_CHECKING:
    from tangle.protocol.transaction import Output, Transaction


def settlement_outputs(channel: ChannelOutput, payee_balance: int) -> tuple[BasicOutput, ...]:
    """The outputs that pay out a channel state: the payee's share, then the payer's rest.

    A zero share gets no output."""
    shares = (
        (channel.payee, payee_balance),
        (channel.payer, channel.amount - payee_balance),
    )
    return tuple(
        BasicOutput(address=address_of(key), amount=amount) for key, amount in shares if amount
    )


def _successors(tx: Transaction, channel: ChannelOutput) -> list[ChannelOutput]:
    return [
        o
        for o in tx.essence.outputs
        if isinstance(o, ChannelOutput) and o.channel_id == channel.channel_id
    ]


def _single_successor(tx: Transaction, channel: ChannelOutput) -> ChannelOutput | None:
    """The one output continuing the channel in a transaction with no other input or output."""
    if len(tx.essence.inputs) != 1 or len(tx.essence.outputs) != 1:
        return None
    successor = tx.essence.outputs[0]
    if not isinstance(successor, ChannelOutput) or not channel.same_terms(successor):
        return None
    if successor.amount != channel.amount or successor.expiry != channel.expiry:
        return None
    return successor


def _pays_out(tx: Transaction, channel: ChannelOutput, payee_balance: int) -> bool:
    return len(tx.essence.inputs) == 1 and tx.essence.outputs == settlement_outputs(
        channel, payee_balance
    )


def check_channel_spend(
    tx: Transaction, unlock: ChannelUnlock, channel: Output, index: int
) -> Conflict:
    """Whether `tx` may spend `channel` with `unlock` in milestone `index`."""
    if not isinstance(channel, ChannelOutput) or (
        unlock.channel_id,
        unlock.payer,
        unlock.payee,
    ) != (channel.channel_id, channel.payer, channel.payee):
        return Conflict.CHANNEL_UNLOCK_MISMATCH
    payer_signed = unlock.payer_signature is not None
    closing = channel.is_closing(index)
    mature = index >= channel.closes_at()
    proof = unlock.proof
    op = unlock.op

    if op is ChannelOp.TOP_UP:
        if not payer_signed:
            return Conflict.CHANNEL_NOT_AUTHORISED
        if closing:
            return Conflict.CHANNEL_WRONG_STATE
        successors = _successors(tx, channel)
        if len(successors) != 1 or proof is not None:
            return Conflict.CHANNEL_BAD_OUTPUTS
        s = successors[0]
        if not (
            channel.same_terms(s)
            and s.amount > channel.amount
            and s.expiry >= channel.expiry
            and (s.sequence, s.payee_balance, s.closing_since)
            == (channel.sequence, channel.payee_balance, 0)
        ):
            return Conflict.CHANNEL_BAD_OUTPUTS
        return Conflict.NONE

    if op is ChannelOp.COOPERATIVE_CLOSE:
        if not (payer_signed and unlock.payee_signature is not None):
            return Conflict.CHANNEL_NOT_AUTHORISED
        if _successors(tx, channel):
            return Conflict.CHANNEL_BAD_OUTPUTS
        return Conflict.NONE

    if op is ChannelOp.PAYEE_CLOSE:
        if channel.bidirectional:
            return Conflict.CHANNEL_WRONG_STATE
        if unlock.payee_signature is None:
            return Conflict.CHANNEL_NOT_AUTHORISED
        if (
            proof is None
            or proof.proof.sequence < channel.sequence
            or proof.proof.payee_balance < channel.payee_balance
            or proof.proof.payee_balance > channel.amount
        ):
            return Conflict.CHANNEL_STALE_PROOF
        if not _pays_out(tx, channel, proof.proof.payee_balance):
            return Conflict.CHANNEL_BAD_OUTPUTS
        return Conflict.NONE

    if op is ChannelOp.START_CLOSE:
        if not (payer_signed or channel.bidirectional):
            return Conflict.CHANNEL_NOT_AUTHORISED
        if closing:
            return Conflict.CHANNEL_WRONG_STATE
        state = (channel.sequence, channel.payee_balance)
        if proof is not None:
            if not channel.bidirectional or not _newer_two_way_state(proof, channel):
                return Conflict.CHANNEL_STALE_PROOF
            state = (proof.proof.sequence, proof.proof.payee_balance)
        after = _single_successor(tx, channel)
        if after is None or (after.sequence, after.payee_balance, after.closing_since) != (
            *state,
            0,
        ):
            return Conflict.CHANNEL_BAD_OUTPUTS
        return Conflict.NONE

    if op is ChannelOp.CHALLENGE:
        if not channel.bidirectional or not closing or mature:
            return Conflict.CHANNEL_WRONG_STATE
        if proof is None or not _newer_two_way_state(proof, channel):
            return Conflict.CHANNEL_STALE_PROOF
        after = _single_successor(tx, channel)
        if after is None or (after.sequence, after.payee_balance, after.closing_since) != (
            proof.proof.sequence,
            proof.proof.payee_balance,
            channel.closing_since,
        ):
            return Conflict.CHANNEL_BAD_OUTPUTS
        return Conflict.NONE

    # SETTLE: either party may (a ChannelUnlock always carries at least one signature).
    if not mature:
        return Conflict.CHANNEL_WRONG_STATE
    if proof is not None or not _pays_out(tx, channel, channel.payee_balance):
        return Conflict.CHANNEL_BAD_OUTPUTS
    return Conflict.NONE


def recorded_outputs(
    tx: Transaction, unlock: ChannelUnlock | None, index: int
) -> tuple[Output, ...]:
    """The outputs as the ledger records them when milestone `index` applies `tx`.

    They are the transaction's, except that the channel output continuing a START_CLOSE gets
    `closing_since = index` (its signers cannot know which milestone will confirm it)."""
    outputs = tx.essence.outputs
    if unlock is None or unlock.op is not ChannelOp.START_CLOSE:
        return outputs
    return tuple(
        replace(o, closing_since=index) if isinstance(o, ChannelOutput) else o for o in outputs
    )


def _newer_two_way_state(proof: SignedBalanceProof, channel: ChannelOutput) -> bool:
    """A co-signed state newer than the one on the ledger, within the deposit."""
    return (
        proof.payee_signature is not None
        and proof.proof.sequence > channel.sequence
        and proof.proof.payee_balance <= channel.amount
    )
