"""Sans-I/O channel cores: what each party of a payment channel knows and may do, without I/O.

A one-way channel (`PayerChannel`, `PayeeChannel`): every payment is a new `BalanceProof` that
the payer alone signs, with the next sequence number and the cumulative amount paid as the
payee's balance. A newer proof supersedes every older one, so the payee only ever keeps (and
settles with) the latest. What every party holds (`ChannelTerms`, the life-cycle state, the
latest proof) is `ChannelCore`; a party that signs states with its own key is a `SigningChannel`,
which the two-way channel builds on in `twoway.py`.

The cores hold no clocks, sockets or databases: transports feed them proofs and persist what they
return. Every check raises a named `PaymentError` before anything changes, so a refused input
leaves the core exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, Self

from tangle.errors import InvalidFieldError
from tangle.protocol.channel import MAX_CHALLENGE_PERIOD, BalanceProof, SignedBalanceProof
from tangle.protocol.codec import U32_MAX, U64_MAX, require_uint
from tangle.protocol.ids import ChannelId, PublicKey

from ..errors import (
    BalanceDecreasedError,
    ChannelClosedError,
    ChannelKindError,
    InsufficientDepositError,
    InvalidAmountError,
    InvalidProofError,
    InvalidTermsError,
    StaleProofError,
    WrongChannelError,
)
from .state import PAYING_STATES, ChannelState, transition

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tangle.protocol.channel import ChannelOutput
    from tangle.protocol.signature import Signer


def check_uint(field: str, value: int, maximum: int, minimum: int = 0) -> None:
    """Raise `InvalidAmountError` unless `value` is an integer in `[minimum, maximum]`: tangle's
    `require_uint`, reported in the payments error tree."""
    try:
        require_uint(field, value, maximum, minimum)
    except InvalidFieldError as e:
        raise InvalidAmountError(field, value, e.reason) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelTerms:
    """What both parties agreed when the channel opened (and the deposit after top-ups)."""

    network_id: int
    """The network the channel lives on; every proof is bound to it."""
    channel_id: ChannelId
    """The channel output's id; every proof is bound to it."""
    payer: PublicKey
    """Party A: funds the deposit and signs every proof."""
    payee: PublicKey
    """Party B: is paid; co-signs the states of a two-way channel."""
    deposit: int
    """The amount locked, 1..U64_MAX; a payee balance never exceeds it."""
    bidirectional: bool
    """True for a two-way channel (states signed by both parties)."""
    challenge_period: int
    """Milestones between the start of a close and settlement."""
    expiry: int
    """Milestone index after which the channel counts as closing."""

    def __post_init__(self) -> None:
        try:
            require_uint("network_id", self.network_id, U64_MAX)
        except InvalidFieldError as e:
            raise InvalidTermsError("network_id", e.reason) from None
        if not isinstance(self.channel_id, ChannelId):
            raise InvalidTermsError("channel_id", "must be a ChannelId")
        if not isinstance(self.payer, PublicKey) or not isinstance(self.payee, PublicKey):
            raise InvalidTermsError("payer/payee", "must be PublicKeys")
        if self.payer == self.payee:
            raise InvalidTermsError("payee", "payer and payee are the same key")
        check_uint("ChannelTerms.deposit", self.deposit, U64_MAX, minimum=1)
        if not isinstance(self.bidirectional, bool):
            raise InvalidTermsError("bidirectional", "must be a bool")
        check_uint("ChannelTerms.challenge_period", self.challenge_period, MAX_CHALLENGE_PERIOD, 1)
        check_uint("ChannelTerms.expiry", self.expiry, U32_MAX, minimum=1)

    @classmethod
    def from_output(cls, network_id: int, output: ChannelOutput) -> Self:
        """The terms of a channel output confirmed on network `network_id`."""
        return cls(
            network_id=network_id,
            channel_id=output.channel_id,
            payer=output.payer,
            payee=output.payee,
            deposit=output.amount,
            bidirectional=output.bidirectional,
            challenge_period=output.challenge_period,
            expiry=output.expiry,
        )


ONE_WAY_PAYEE_SIGNATURE: Final = (
    "a one-way proof carries no payee signature (the ledger would check it, and a bad one would "
    "make the proof unusable for the close)"
)


def check_binding(terms: ChannelTerms, proof: BalanceProof) -> None:
    """Raise `WrongChannelError` unless `proof` is for this network and this channel."""
    if proof.network_id != terms.network_id:
        raise WrongChannelError("network_id", terms.network_id, proof.network_id)
    if proof.channel_id != terms.channel_id:
        raise WrongChannelError("channel_id", terms.channel_id.hex(), proof.channel_id.hex())


def check_signed(terms: ChannelTerms, signed: SignedBalanceProof) -> None:
    """Raise unless `signed` is bound to this channel, within the deposit, and carries every
    signature the channel kind needs (one-way: the payer's; two-way: both)."""
    proof = signed.proof
    check_binding(terms, proof)
    if proof.payee_balance > terms.deposit:
        raise InsufficientDepositError(proof.payee_balance, terms.deposit)
    if terms.bidirectional and signed.payee_signature is None:
        raise InvalidProofError(proof.sequence, "a two-way state needs the payee's signature")
    if not terms.bidirectional and signed.payee_signature is not None:
        raise InvalidProofError(proof.sequence, ONE_WAY_PAYEE_SIGNATURE)
    if not signed.verify(terms.payer, terms.payee, bidirectional=terms.bidirectional):
        raise InvalidProofError(proof.sequence, "a signature does not verify")


class ChannelCore:
    """What every party holds: the terms, the life-cycle state and the latest agreed proof."""

    __slots__ = ("_latest", "_state", "_terms")

    def __init__(
        self, terms: ChannelTerms, state: ChannelState, latest: SignedBalanceProof | None
    ) -> None:
        if not isinstance(state, ChannelState):
            raise InvalidTermsError("state", "must be a ChannelState")
        if latest is not None:
            check_signed(terms, latest)
        self._terms = terms
        self._state = state
        self._latest = latest

    @property
    def terms(self) -> ChannelTerms:
        return self._terms

    @property
    def state(self) -> ChannelState:
        return self._state

    @property
    def latest(self) -> SignedBalanceProof | None:
        """The newest proof both sides hold (None before the first payment)."""
        return self._latest

    @property
    def sequence(self) -> int:
        """The latest proof's sequence number (0 before the first payment)."""
        return 0 if self._latest is None else self._latest.proof.sequence

    @property
    def payee_balance(self) -> int:
        """The payee's share of the deposit in the latest state."""
        return 0 if self._latest is None else self._latest.proof.payee_balance

    @property
    def payer_balance(self) -> int:
        """The payer's share: `deposit - payee_balance`."""
        return self._terms.deposit - self.payee_balance

    def advance(self, state: ChannelState) -> None:
        """Move to `state` if `state.TRANSITIONS` allows it (`InvalidTransitionError` if not)."""
        self._state = transition(self._state, state)

    def top_up(self, new_deposit: int) -> None:
        """Record a confirmed top-up: the deposit grows to `new_deposit`; proofs stay valid."""
        check_uint("new_deposit", new_deposit, U64_MAX, minimum=1)
        if new_deposit <= self._terms.deposit:
            raise InvalidAmountError("new_deposit", new_deposit, "a top-up must raise the deposit")
        if self._state not in PAYING_STATES:
            raise ChannelClosedError(self._state)
        self._terms = replace(self._terms, deposit=new_deposit)

    def _require_paying(self) -> None:
        if self._state not in PAYING_STATES:
            raise ChannelClosedError(self._state)

    def balance_proof(self, sequence: int, payee_balance: int) -> BalanceProof:
        """The unsigned state `sequence` of this channel (its network and id) with the payee's
        balance `payee_balance`."""
        return BalanceProof(
            network_id=self._terms.network_id,
            channel_id=self._terms.channel_id,
            sequence=sequence,
            payee_balance=payee_balance,
        )


class SigningChannel(ChannelCore):
    """A party that signs the channel's states with its own key: the payer of a one-way channel
    (`PayerChannel`) or either party of a two-way one (`twoway.TwoWayChannel`)."""

    __slots__ = ("_signer",)

    def __init__(
        self,
        terms: ChannelTerms,
        signer: Signer,
        *,
        state: ChannelState = ChannelState.OPEN,
        latest: SignedBalanceProof | None = None,
    ) -> None:
        super().__init__(terms, state, latest)
        self._signer = signer

    @classmethod
    def restore(
        cls,
        terms: ChannelTerms,
        signer: Signer,
        latest: SignedBalanceProof | None,
        state: ChannelState,
    ) -> Self:
        """The channel as it was when `latest` was the newest agreed state (from a store or the
        other party)."""
        return cls(terms, signer, state=state, latest=latest)

    def recover(self, proof: SignedBalanceProof) -> bool:
        """Adopt the other party's latest state if it is newer than ours (after this side lost
        its database); it must carry every signature the channel needs, our own valid one
        included. Returns True if adopted."""
        check_signed(self._terms, proof)
        if proof.proof.sequence <= self.sequence:
            return False
        self._latest = proof
        return True


class PayerChannel(SigningChannel):
    """The payer's side of a one-way channel: signs the next proof for each payment."""

    __slots__ = ()

    def __init__(
        self,
        terms: ChannelTerms,
        signer: Signer,
        *,
        state: ChannelState = ChannelState.OPEN,
        latest: SignedBalanceProof | None = None,
    ) -> None:
        if terms.bidirectional:
            raise ChannelKindError("PayerChannel", bidirectional=True)
        if signer.public_key != terms.payer:
            raise InvalidTermsError("signer", "the signer's key is not the channel's payer")
        super().__init__(terms, signer, state=state, latest=latest)

    def pay(self, amount: int) -> SignedBalanceProof:
        """Sign and adopt the proof that pays `amount` more: sequence + 1, payee balance +
        amount. Raises `InsufficientDepositError` beyond the deposit, `ChannelClosedError` unless
        the channel takes payments."""
        check_uint("amount", amount, U64_MAX, minimum=1)
        self._require_paying()
        balance = self.payee_balance + amount
        if balance > self._terms.deposit:
            raise InsufficientDepositError(balance, self._terms.deposit)
        proof = self.balance_proof(self.sequence + 1, balance)
        signed = SignedBalanceProof(proof=proof, payer_signature=self._signer.sign(proof.message()))
        self._latest = signed
        return signed


class PayeeChannel(ChannelCore):
    """The payee's side of a one-way channel: checks each proof and credits the difference."""

    __slots__ = ()

    def __init__(
        self,
        terms: ChannelTerms,
        *,
        state: ChannelState = ChannelState.OPEN,
        latest: SignedBalanceProof | None = None,
    ) -> None:
        if terms.bidirectional:
            raise ChannelKindError("PayeeChannel", bidirectional=True)
        super().__init__(terms, state, latest)

    @classmethod
    def restore(
        cls, terms: ChannelTerms, latest: SignedBalanceProof | None, state: ChannelState
    ) -> Self:
        """The channel as it was when `latest` was the newest accepted proof."""
        return cls(terms, state=state, latest=latest)

    def copy(self) -> Self:
        """An independent copy of this payee channel (its proof was checked when this one was
        made: a trial copy for the next payment costs no signature check)."""
        twin = object.__new__(type(self))
        twin._terms, twin._state, twin._latest = self._terms, self._state, self._latest
        return twin

    def _check_next(self, signed: SignedBalanceProof, sequence: int, balance: int) -> None:
        """The checks of `receive` but the signature, against a previous (sequence, balance)."""
        proof = signed.proof
        check_binding(self._terms, proof)
        if signed.payee_signature is not None:
            raise InvalidProofError(proof.sequence, ONE_WAY_PAYEE_SIGNATURE)
        if proof.sequence <= sequence:
            raise StaleProofError(proof.sequence, sequence)
        if proof.payee_balance < balance:
            raise BalanceDecreasedError(proof.payee_balance, balance)
        if proof.payee_balance > self._terms.deposit:
            raise InsufficientDepositError(proof.payee_balance, self._terms.deposit)

    def receive(self, signed: SignedBalanceProof) -> int:
        """Accept `signed` as the newest proof and return the amount it newly credits.

        In order: the network and channel (`WrongChannelError`), the channel takes payments
        (`ChannelClosedError`), no payee signature (`InvalidProofError`: the ledger would check
        it), the sequence is above the latest (`StaleProofError`), the
        balance does not decrease (`BalanceDecreasedError`) nor exceed the deposit
        (`InsufficientDepositError`), the payer's signature verifies (`InvalidProofError`)."""
        check_binding(self._terms, signed.proof)
        self._require_paying()
        self._check_next(signed, self.sequence, self.payee_balance)
        if not signed.verify(self._terms.payer, self._terms.payee, bidirectional=False):
            raise InvalidProofError(signed.proof.sequence, "the payer's signature does not verify")
        credited = signed.proof.payee_balance - self.payee_balance
        self._latest = signed
        return credited

    def receive_batch(self, batch: Sequence[SignedBalanceProof]) -> int:
        """Accept a run of proofs at once; all or nothing. Returns the amount newly credited.

        Every proof gets every check but the signature, each against the one before it; only
        the newest proof's signature is verified. That is enough: proofs are cumulative, the
        newest supersedes every earlier one, the payee keeps and acknowledges only the newest,
        and its balance is at least that of every earlier proof of the batch. So every sequence
        number acknowledged up to the newest is covered by a verified proof. If anything fails,
        nothing is adopted and the error of the first failing proof (or the newest's signature
        error) is raised; the caller may then `receive` the proofs one by one."""
        if not batch:
            return 0
        self._require_paying()
        sequence, balance = self.sequence, self.payee_balance
        for signed in batch:
            self._check_next(signed, sequence, balance)
            sequence, balance = signed.proof.sequence, signed.proof.payee_balance
        newest = batch[-1]
        if not newest.verify(self._terms.payer, self._terms.payee, bidirectional=False):
            raise InvalidProofError(sequence, "the payer's signature does not verify")
        credited = balance - self.payee_balance
        self._latest = newest
        return credited
