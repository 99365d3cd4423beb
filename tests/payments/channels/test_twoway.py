"""The two-way channel core under a stateful property test: two honest parties paying each other,
proposals that cross, and a network that loses, replays and forges proposals and
countersignatures."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from payments import (
    BalanceDecreasedError,
    InsufficientDepositError,
    InvalidAmountError,
    InvalidProofError,
    NoPendingProposalError,
    Proposal,
    Role,
    StaleProofError,
    TwoWayChannel,
    WrongChannelError,
    WrongParityError,
)
from tangle.protocol.channel import BalanceProof
from tangle.protocol.ids import ChannelId
from tests.payments_support import MALLORY, NETWORK, PAYEE, PAYER, terms

DEPOSIT = 1_000
TERMS = terms(deposit=DEPOSIT, bidirectional=True)


def _unused_sequence(party: TwoWayChannel) -> int:
    """A sequence number of the other party's parity (the payer's odd, the payee's even) above
    the party's latest state and its outstanding proposal."""
    pending = party.pending
    above = max(party.sequence, 0 if pending is None else pending.proof.sequence) + 1
    return above if above % 2 == (0 if party.role is Role.PAYER else 1) else above + 1


def _snapshot(party: TwoWayChannel) -> tuple[object, ...]:
    return (party.sequence, party.payee_balance, party.latest, party.pending, party.state)


class TwoWayChannels(RuleBasedStateMachine):
    """Party A (the payer key) and party B (the payee key) of one two-way channel."""

    def __init__(self) -> None:
        super().__init__()
        self.parties = {True: TwoWayChannel(TERMS, PAYER), False: TwoWayChannel(TERMS, PAYEE)}
        self.proposals: list[Proposal] = []
        self.high_water = 0
        self.signed: dict[int, Proposal] = {}
        """Every proposal signed since the last database loss, by sequence number."""

    def propose(self, is_a: bool, target: int) -> Proposal:
        proposal = self.parties[is_a].propose(target)
        assert proposal.proof.sequence % 2 == (1 if is_a else 0)
        assert self.signed.setdefault(proposal.proof.sequence, proposal) == proposal
        self.proposals.append(proposal)
        return proposal

    def refused(self, party: TwoWayChannel, error: type[Exception], call: object) -> None:
        before = _snapshot(party)
        with pytest.raises(error):
            call()  # type: ignore[operator]
        assert _snapshot(party) == before

    @staticmethod
    def target(proposer: TwoWayChannel, is_a: bool, amount: int) -> int:
        """The payee balance after `proposer` pays `amount` to the other party."""
        return proposer.payee_balance + amount if is_a else proposer.payee_balance - amount

    @rule(is_a=st.booleans(), amount=st.integers(1, 400))
    def pay(self, is_a: bool, amount: int) -> None:
        proposer, other = self.parties[is_a], self.parties[not is_a]
        target = self.target(proposer, is_a, amount)
        if not 0 <= target <= DEPOSIT:
            error = InsufficientDepositError if target > DEPOSIT else InvalidAmountError
            self.refused(proposer, error, lambda: proposer.propose(target))
            return
        proposal = self.propose(is_a, target)
        pending = other.pending
        if pending is not None and pending.proof.sequence >= proposal.proof.sequence:
            self.refused(other, StaleProofError, lambda: other.countersign(proposal))
            return  # crossed a higher proposal of the other party: it stays outstanding
        own_before = other.own_balance
        state = other.countersign(proposal)
        assert other.own_balance == own_before + amount  # never lowers the countersigner
        countersignature = state.payee_signature if is_a else state.payer_signature
        assert countersignature is not None
        assert proposer.complete(proposal.proof.sequence, countersignature) == state
        assert state.verify(PAYER.public_key, PAYEE.public_key, bidirectional=True)

    @rule(is_a=st.booleans(), amount=st.integers(1, 100))
    def proposal_lost(self, is_a: bool, amount: int) -> None:
        proposer = self.parties[is_a]
        target = self.target(proposer, is_a, amount)
        if 0 <= target <= DEPOSIT:
            self.propose(is_a, target)  # the other never sees it

    @rule(amount_a=st.integers(1, 100), amount_b=st.integers(1, 100))
    def cross(self, amount_a: int, amount_b: int) -> None:
        """Both propose at once: the higher proposal is countersigned, the lower refused."""
        a, b = self.parties[True], self.parties[False]
        target_a, target_b = self.target(a, True, amount_a), self.target(b, False, amount_b)
        if not (0 <= target_a <= DEPOSIT and 0 <= target_b <= DEPOSIT):
            return
        from_a, from_b = self.propose(True, target_a), self.propose(False, target_b)
        high_is_a = from_a.proof.sequence > from_b.proof.sequence
        high, low = (from_a, from_b) if high_is_a else (from_b, from_a)
        proposer, countersigner = self.parties[high_is_a], self.parties[not high_is_a]
        self.refused(proposer, StaleProofError, lambda: proposer.countersign(low))
        state = countersigner.countersign(high)
        countersignature = state.payee_signature if high_is_a else state.payer_signature
        assert countersignature is not None
        assert proposer.complete(high.proof.sequence, countersignature) == state
        assert state.proof.sequence > low.proof.sequence  # the refused one can never win

    @precondition(lambda self: self.proposals)
    @rule(index=st.integers(0, 10_000), to_a=st.booleans())
    def replay(self, index: int, to_a: bool) -> None:
        party = self.parties[to_a]
        old = self.proposals[index % len(self.proposals)]
        if old.proof.sequence <= party.sequence:
            self.refused(party, StaleProofError, lambda: party.countersign(old))

    @rule(is_a=st.booleans(), amount=st.integers(1, 100))
    def grab(self, is_a: bool, amount: int) -> None:
        """A correctly signed proposal that takes from the countersigner: refused."""
        key, other = (PAYER, self.parties[False]) if is_a else (PAYEE, self.parties[True])
        balance = other.payee_balance - amount if is_a else other.payee_balance + amount
        if 0 <= balance <= DEPOSIT:
            proof = BalanceProof(
                network_id=NETWORK,
                channel_id=TERMS.channel_id,
                sequence=_unused_sequence(other),
                payee_balance=balance,
            )
            grab = Proposal(proof=proof, signature=key.sign(proof.message()))
            self.refused(other, BalanceDecreasedError, lambda: other.countersign(grab))

    @rule(to_a=st.booleans(), extra=st.integers(0, 50), elsewhere=st.booleans())
    def forged_or_misdirected(self, to_a: bool, extra: int, elsewhere: bool) -> None:
        party = self.parties[to_a]
        gain = -extra if to_a else extra  # a proposal that pays `party`
        balance = min(max(party.payee_balance + gain, 0), DEPOSIT)
        proof = BalanceProof(
            network_id=NETWORK,
            channel_id=ChannelId(b"\x0b" * 32) if elsewhere else TERMS.channel_id,
            sequence=_unused_sequence(party),
            payee_balance=balance,
        )
        forged = Proposal(proof=proof, signature=MALLORY.sign(proof.message()))
        error = WrongChannelError if elsewhere else InvalidProofError
        self.refused(party, error, lambda: party.countersign(forged))

    @rule(is_a=st.booleans(), sequence=st.integers(0, 50))
    def bogus_countersignature(self, is_a: bool, sequence: int) -> None:
        party = self.parties[is_a]
        pending = party.pending
        if pending is not None and pending.proof.sequence == sequence:
            bad = MALLORY.sign(pending.proof.message())
            self.refused(party, InvalidProofError, lambda: party.complete(sequence, bad))
        else:
            bad = MALLORY.sign(b"nothing")
            self.refused(party, NoPendingProposalError, lambda: party.complete(sequence, bad))

    @rule(is_a=st.booleans())
    def lose_the_database(self, is_a: bool) -> None:
        """A party restarts empty and recovers the co-signed state from the other."""
        other = self.parties[not is_a]
        fresh = TwoWayChannel(TERMS, PAYER if is_a else PAYEE)
        if other.latest is not None:
            assert fresh.recover(other.latest)
        self.parties[is_a] = fresh
        self.signed.clear()  # a lost outstanding proposal may be signed again (not recorded)

    @invariant()
    def balances_sum_to_the_deposit(self) -> None:
        for party in self.parties.values():
            assert party.payer_balance + party.payee_balance == party.terms.deposit
            assert 0 <= party.payee_balance <= DEPOSIT

    @invariant()
    def both_hold_the_same_state_and_it_only_grows(self) -> None:
        a, b = self.parties[True], self.parties[False]
        assert a.latest == b.latest
        assert a.sequence >= self.high_water
        self.high_water = a.sequence


TwoWayChannels.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestTwoWayChannels = TwoWayChannels.TestCase


@pytest.mark.parametrize("proposer_is_payer", [True, False])
def test_a_proposal_of_the_countersigners_parity_is_refused(proposer_is_payer: bool) -> None:
    proposer_key, other_key = (PAYER, PAYEE) if proposer_is_payer else (PAYEE, PAYER)
    other = TwoWayChannel(TERMS, other_key)
    sequence = 2 if proposer_is_payer else 1  # the countersigner's own parity
    balance = 10 if proposer_is_payer else 0
    proof = BalanceProof(
        network_id=NETWORK, channel_id=TERMS.channel_id, sequence=sequence, payee_balance=balance
    )
    proposal = Proposal(proof=proof, signature=proposer_key.sign(proof.message()))
    with pytest.raises(WrongParityError) as info:
        other.countersign(proposal)
    assert info.value.sequence == sequence
    assert (other.latest, other.pending) == (None, None)
