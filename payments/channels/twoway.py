"""The two-way channel core: one class for both parties, every state signed by both.

Either party proposes the next state (`propose`, a `Proposal` signed by the proposer), the other
countersigns it (`countersign`) and the proposer completes it with that signature (`complete`).
A party only countersigns states that do not lower its own share: a proposal is a payment by the
proposer.

**Crossing proposals.** Both parties may propose at once, so two proposals can cross. A party
never signs two states with one sequence number: the payer proposes odd sequence numbers only,
the payee even ones, each above both the latest state and its own outstanding proposal, and a
party countersigns only a proposal of the other party's parity (`WrongParityError` otherwise)
above its own outstanding one. Of two crossing proposals the
higher is countersigned and the lower refused (`StaleProofError`); the refused one stays below
the agreed state, so neither party can ever settle with it. (A party that loses its database
while a proposal of its own is outstanding forgets that proposal and may sign its sequence
again; only the other party could exploit that.)

Like the one-way cores (`channel.py`), it holds no clocks, sockets or databases, and every check
raises a named `PaymentError` before anything changes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tangle.protocol.channel import BalanceProof, SignedBalanceProof
from tangle.protocol.codec import U64_MAX
from tangle.protocol.signature import is_valid

from ..errors import (
    BalanceDecreasedError,
    ChannelClosedError,
    ChannelKindError,
    InsufficientDepositError,
    InvalidProofError,
    InvalidTermsError,
    NoPendingProposalError,
    StaleProofError,
    WrongParityError,
)
from .core import SigningChannel, check_binding, check_uint
from .state import UPDATABLE_STATES, ChannelState, Role

if TYPE_CHECKING:
    from tangle.protocol.ids import Signature
    from tangle.protocol.signature import Signer

    from .core import ChannelTerms


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """A two-way state signed by the party that proposes it, awaiting the other's signature."""

    proof: BalanceProof
    """The proposed state (the next sequence number)."""
    signature: Signature
    """The proposer's signature of `proof.message()`."""


class TwoWayChannel(SigningChannel):
    """Either party of a two-way channel: states are proposed by one and countersigned by the
    other; both signatures make a state final."""

    __slots__ = ("_is_payer", "_pending")

    def __init__(
        self,
        terms: ChannelTerms,
        signer: Signer,
        *,
        state: ChannelState = ChannelState.OPEN,
        latest: SignedBalanceProof | None = None,
    ) -> None:
        if not terms.bidirectional:
            raise ChannelKindError("TwoWayChannel", bidirectional=False)
        if signer.public_key not in (terms.payer, terms.payee):
            raise InvalidTermsError("signer", "the signer is neither party of the channel")
        super().__init__(terms, signer, state=state, latest=latest)
        self._is_payer = signer.public_key == terms.payer
        self._pending: Proposal | None = None

    @property
    def role(self) -> Role:
        """Which party this side is (the key it signs with)."""
        return Role.PAYER if self._is_payer else Role.PAYEE

    @property
    def own_balance(self) -> int:
        """This party's share of the deposit in the latest state."""
        return self.payer_balance if self._is_payer else self.payee_balance

    @property
    def pending(self) -> Proposal | None:
        """Our outstanding proposal, if any."""
        return self._pending

    def _share(self, payee_balance: int, *, own: bool) -> int:
        """The share of this party (`own`) or of the other one, given the payee's balance."""
        is_payer = self._is_payer if own else not self._is_payer
        return self._terms.deposit - payee_balance if is_payer else payee_balance

    @property
    def next_sequence(self) -> int:
        """The sequence number of this party's next proposal: the first one of its parity (the
        payer's odd, the payee's even) above the latest state and its outstanding proposal."""
        pending = self._pending
        above = self.sequence if pending is None else max(self.sequence, pending.proof.sequence)
        parity = 1 if self._is_payer else 0
        return above + 1 if (above + 1) % 2 == parity else above + 2

    def propose(self, new_payee_balance: int) -> Proposal:
        """Sign the next state (`next_sequence`) with the payee's balance `new_payee_balance`;
        it must not raise this party's own share (a proposal pays the other party)."""
        check_uint("new_payee_balance", new_payee_balance, U64_MAX)
        if self._state not in UPDATABLE_STATES:
            raise ChannelClosedError(self._state)
        if new_payee_balance > self._terms.deposit:
            raise InsufficientDepositError(new_payee_balance, self._terms.deposit)
        if self._share(new_payee_balance, own=False) < self._share(self.payee_balance, own=False):
            raise BalanceDecreasedError(
                self._share(new_payee_balance, own=False),
                self._share(self.payee_balance, own=False),
            )
        proof = self.balance_proof(self.next_sequence, new_payee_balance)
        self._pending = Proposal(proof=proof, signature=self._signer.sign(proof.message()))
        return self._pending

    def countersign(self, proposal: Proposal) -> SignedBalanceProof:
        """Check the other party's `proposal`, sign it and adopt the co-signed state.

        Refused: another network or channel, a state that takes no updates, a sequence not above
        the latest state and our outstanding proposal (a crossing one, see the module
        docstring), a sequence of our own parity (`WrongParityError`), a balance above the
        deposit, a lower share for this party, a bad proposer signature."""
        proof = proposal.proof
        check_binding(self._terms, proof)
        if self._state not in UPDATABLE_STATES:
            raise ChannelClosedError(self._state)
        if proof.sequence <= self.sequence:
            raise StaleProofError(proof.sequence, self.sequence)
        pending = self._pending
        if pending is not None and proof.sequence <= pending.proof.sequence:
            raise StaleProofError(proof.sequence, pending.proof.sequence)
        if proof.sequence % 2 == (1 if self._is_payer else 0):
            raise WrongParityError(proof.sequence, "payee" if self._is_payer else "payer")
        if proof.payee_balance > self._terms.deposit:
            raise InsufficientDepositError(proof.payee_balance, self._terms.deposit)
        ours, before = self._share(proof.payee_balance, own=True), self.own_balance
        if ours < before:
            raise BalanceDecreasedError(ours, before)
        proposer = self._terms.payee if self._is_payer else self._terms.payer
        if not is_valid(proposer, proof.message(), proposal.signature):
            raise InvalidProofError(proof.sequence, "the proposer's signature does not verify")
        signed = self._assemble(
            proof, own=self._signer.sign(proof.message()), other=proposal.signature
        )
        self._latest = signed
        self._pending = None
        return signed

    def complete(self, sequence: int, signature: Signature) -> SignedBalanceProof:
        """Adopt our pending proposal `sequence` with the other party's countersignature."""
        pending = self._pending
        if pending is None or pending.proof.sequence != sequence:
            raise NoPendingProposalError(sequence, "no proposal of ours has that sequence")
        other = self._terms.payee if self._is_payer else self._terms.payer
        if not is_valid(other, pending.proof.message(), signature):
            raise InvalidProofError(sequence, "the countersignature does not verify")
        if pending.proof.sequence <= self.sequence:
            raise StaleProofError(pending.proof.sequence, self.sequence)
        signed = self._assemble(pending.proof, own=pending.signature, other=signature)
        self._latest = signed
        self._pending = None
        return signed

    def copy(self) -> TwoWayChannel:
        """A copy to try a change on; `adopt` takes its state once it is saved."""
        return copy.copy(self)

    def adopt(self, trial: TwoWayChannel) -> None:
        """Take the state of `trial`, a `copy` of this channel changed (and saved) since."""
        if trial._terms.channel_id != self._terms.channel_id or trial.role is not self.role:
            raise InvalidTermsError("trial", "a copy of another channel or party")
        self._terms, self._state = trial._terms, trial._state
        self._latest, self._pending = trial._latest, trial._pending

    def recover(self, proof: SignedBalanceProof) -> bool:
        """`SigningChannel.recover`; an adopted state also ends our outstanding proposal."""
        if not super().recover(proof):
            return False
        self._pending = None
        return True

    def _assemble(
        self, proof: BalanceProof, *, own: Signature, other: Signature
    ) -> SignedBalanceProof:
        payer_sig, payee_sig = (own, other) if self._is_payer else (other, own)
        return SignedBalanceProof(proof=proof, payer_signature=payer_sig, payee_signature=payee_sig)
