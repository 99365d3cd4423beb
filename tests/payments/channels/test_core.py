"""The sans-I/O channel cores: one-way payments, dishonest input, two-way states, state table."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from payments import (
    TRANSITIONS,
    BalanceDecreasedError,
    ChannelClosedError,
    ChannelKindError,
    ChannelState,
    ChannelTerms,
    InsufficientDepositError,
    InvalidAmountError,
    InvalidProofError,
    InvalidTermsError,
    InvalidTransitionError,
    NoPendingProposalError,
    PayeeChannel,
    PayerChannel,
    Proposal,
    StaleProofError,
    TwoWayChannel,
    WrongChannelError,
    transition,
)
from tangle.protocol.channel import ChannelOutput, SignedBalanceProof
from tangle.protocol.ids import ChannelId, Signature
from tests.payments_support import (
    CHANNEL,
    MALLORY,
    NETWORK,
    PAYEE,
    PAYER,
    signatures,
    signed,
    terms,
)

OTHER = ChannelId(b"\x0a" * 32)


def test_terms_from_output() -> None:
    output = ChannelOutput(
        channel_id=CHANNEL,
        payer=PAYER.public_key,
        payee=PAYEE.public_key,
        amount=500,
        bidirectional=False,
        challenge_period=100,
        expiry=10_000,
    )
    assert ChannelTerms.from_output(NETWORK, output) == terms(deposit=500)


@pytest.mark.parametrize(
    ("field", "value"),
    [("deposit", 0), ("deposit", 1 << 64), ("payee", PAYER.public_key), ("expiry", 0)],
)
def test_bad_terms_are_refused(field: str, value: object) -> None:
    with pytest.raises((InvalidTermsError, InvalidAmountError)):
        dataclasses.replace(terms(), **{field: value})  # type: ignore[arg-type]


def test_pay_and_receive() -> None:
    payer, payee = PayerChannel(terms(), PAYER), PayeeChannel(terms())
    for amount in (5, 1, 100):
        proof = payer.pay(amount)
        assert payee.receive(proof) == amount
    assert (payee.sequence, payee.payee_balance, payee.payer_balance) == (3, 106, 1_000_000 - 106)
    assert payee.latest == payer.latest


def test_payer_refuses_beyond_deposit_and_bad_amounts() -> None:
    payer = PayerChannel(terms(deposit=10), PAYER)
    payer.pay(10)
    with pytest.raises(InsufficientDepositError):
        payer.pay(1)
    for bad in (0, -1, True, 1 << 64):
        with pytest.raises(InvalidAmountError):
            payer.pay(bad)
    assert (payer.sequence, payer.payee_balance) == (1, 10)


def test_top_up_keeps_proofs_valid() -> None:
    payer, payee = PayerChannel(terms(deposit=10), PAYER), PayeeChannel(terms(deposit=10))
    payee.receive(payer.pay(10))
    payer.top_up(20)
    payee.top_up(20)
    assert payee.receive(payer.pay(5)) == 5
    with pytest.raises(InvalidAmountError):
        payee.top_up(20)


def test_closing_channel_takes_no_payments() -> None:
    payer, payee = PayerChannel(terms(), PAYER), PayeeChannel(terms())
    proof = payer.pay(1)
    payer.advance(ChannelState.CLOSING)
    payee.advance(ChannelState.CLOSING)
    with pytest.raises(ChannelClosedError):
        payer.pay(1)
    with pytest.raises(ChannelClosedError):
        payee.receive(proof)
    assert payee.sequence == 0


def test_transition_table() -> None:
    for current in ChannelState:
        for requested in ChannelState:
            if (current, requested) in TRANSITIONS:
                assert transition(current, requested) is requested
            else:
                with pytest.raises(InvalidTransitionError):
                    transition(current, requested)
    assert (ChannelState.SETTLED, ChannelState.OPEN) not in TRANSITIONS


def test_restore_checks_the_proof() -> None:
    proof = PayerChannel(terms(), PAYER).pay(3)
    restored = PayeeChannel.restore(terms(), proof, ChannelState.OPEN)
    assert restored.payee_balance == 3
    with pytest.raises(InvalidProofError):
        PayeeChannel.restore(terms(), signed(MALLORY, 1, 3), ChannelState.OPEN)
    with pytest.raises(WrongChannelError):
        PayeeChannel.restore(terms(channel=OTHER), proof, ChannelState.OPEN)


def test_a_copy_is_independent_of_its_original() -> None:
    payer, payee = PayerChannel(terms(), PAYER), PayeeChannel(terms())
    payee.receive(payer.pay(3))
    trial = payee.copy()
    assert trial.receive(payer.pay(4)) == 4
    assert (payee.sequence, payee.payee_balance) == (1, 3)  # the original is as it was
    assert (trial.sequence, trial.payee_balance, trial.state) == (2, 7, payee.state)
    assert type(trial) is PayeeChannel


def test_payer_recovers_from_payee_proof() -> None:
    payer = PayerChannel(terms(), PAYER)
    for _ in range(5):
        newest = payer.pay(2)
    fresh = PayerChannel(terms(), PAYER)  # lost its database
    assert fresh.recover(newest)
    assert not fresh.recover(signed(PAYER, 2, 4))
    with pytest.raises(InvalidProofError):
        fresh.recover(signed(MALLORY, 9, 4))
    assert fresh.pay(1).proof.sequence == 6


def test_batch_verifies_newest_and_is_all_or_nothing() -> None:
    payer, payee = PayerChannel(terms(), PAYER), PayeeChannel(terms())
    batch = [payer.pay(1) for _ in range(10)]
    assert payee.receive_batch(batch) == 10
    more = [payer.pay(1) for _ in range(3)]
    forged = signed(MALLORY, 14, 20)
    with pytest.raises(InvalidProofError):
        payee.receive_batch([*more, forged])
    with pytest.raises(StaleProofError):
        payee.receive_batch([more[1], more[0]])
    assert (payee.sequence, payee.payee_balance) == (10, 10)


def test_kinds_are_not_mixed() -> None:
    with pytest.raises(ChannelKindError):
        PayerChannel(terms(bidirectional=True), PAYER)
    with pytest.raises(ChannelKindError):
        TwoWayChannel(terms(), PAYER)
    with pytest.raises(InvalidTermsError):
        PayerChannel(terms(), PAYEE)


def test_two_way_flow() -> None:
    t = terms(deposit=100, bidirectional=True)
    a, b = TwoWayChannel(t, PAYER), TwoWayChannel(t, PAYEE)
    proposal = a.propose(30)  # A pays B 30
    state = b.countersign(proposal)
    assert a.complete(1, state.payee_signature or b"") == state  # type: ignore[arg-type]
    assert state.verify(PAYER.public_key, PAYEE.public_key, bidirectional=True)
    proposal = b.propose(10)  # B pays A 20 back
    state = a.countersign(proposal)
    b.complete(2, state.payer_signature)
    assert (a.own_balance, b.own_balance, a.sequence, b.sequence) == (90, 10, 2, 2)
    assert a.latest == b.latest


def test_two_way_refusals_change_nothing() -> None:
    t = terms(deposit=100, bidirectional=True)
    a, b = TwoWayChannel(t, PAYER), TwoWayChannel(t, PAYEE)
    state = b.countersign(a.propose(50))
    a.complete(1, state.payee_signature)  # type: ignore[arg-type]
    with pytest.raises(BalanceDecreasedError):
        a.propose(40)  # A may not raise its own share
    with pytest.raises(BalanceDecreasedError):
        b.propose(60)  # nor may B
    grab = signed(PAYEE, 2, 60).proof  # B signs a state that takes from A: A refuses
    with pytest.raises(BalanceDecreasedError):
        a.countersign(Proposal(proof=grab, signature=PAYEE.sign(grab.message())))
    with pytest.raises(StaleProofError):
        b.countersign(dataclasses.replace(a.propose(55), proof=state.proof))
    with pytest.raises(InvalidProofError):
        b.countersign(dataclasses.replace(a.propose(55), signature=MALLORY.sign(b"x")))
    with pytest.raises(NoPendingProposalError):
        a.complete(9, PAYEE.sign(b"x"))
    pending = a.pending
    assert pending is not None
    assert pending.proof.sequence == 5  # A's odd sequence numbers, above its outstanding 3
    with pytest.raises(InvalidProofError):
        a.complete(5, MALLORY.sign(pending.proof.message()))
    assert (a.sequence, b.sequence, a.own_balance, b.own_balance) == (1, 1, 50, 50)
    one_signature = SignedBalanceProof(proof=state.proof, payer_signature=state.payer_signature)
    with pytest.raises(InvalidProofError):
        TwoWayChannel(t, PAYER).recover(one_signature)


class OneWayChannels(RuleBasedStateMachine):
    """An honest payer, a payee, and a network that loses, replays and forges proofs."""

    def __init__(self) -> None:
        super().__init__()
        self.deposit = 1_000
        self.payer = PayerChannel(terms(deposit=self.deposit), PAYER)
        self.payee = PayeeChannel(terms(deposit=self.deposit))
        self.seen: list[SignedBalanceProof] = []
        self.undelivered: list[SignedBalanceProof] = []
        self.high_water = 0

    def snapshot(self) -> tuple[int, int, int, SignedBalanceProof | None]:
        p = self.payee
        return (p.sequence, p.payee_balance, p.terms.deposit, p.latest)

    def refused(self, proof: SignedBalanceProof, error: type[Exception]) -> None:
        before = self.snapshot()
        with pytest.raises(error):
            self.payee.receive(proof)
        assert self.snapshot() == before

    @rule(amount=st.integers(1, 300))
    def pay(self, amount: int) -> None:
        before = self.payee.payee_balance
        if self.payer.payee_balance + amount > self.payer.terms.deposit:
            with pytest.raises(InsufficientDepositError):
                self.payer.pay(amount)
            return
        proof = self.payer.pay(amount)
        self.seen.append(proof)
        if self.undelivered:  # the newest proof covers the lost ones too
            self.undelivered.clear()
        assert self.payee.receive(proof) == proof.proof.payee_balance - before

    @rule(amount=st.integers(1, 50))
    def pay_but_lose_it(self, amount: int) -> None:
        if self.payer.payee_balance + amount <= self.payer.terms.deposit:
            self.undelivered.append(self.payer.pay(amount))

    @precondition(lambda self: self.undelivered)
    @rule(count=st.integers(1, 5))
    def deliver_lost_as_batch(self, count: int) -> None:
        batch = self.undelivered[-count:]
        expected = batch[-1].proof.payee_balance - self.payee.payee_balance
        assert self.payee.receive_batch(batch) == expected
        self.seen.extend(batch)
        self.undelivered.clear()

    @precondition(lambda self: self.seen)
    @rule(index=st.integers(0, 10_000))
    def replay(self, index: int) -> None:
        self.refused(self.seen[index % len(self.seen)], StaleProofError)

    @rule(other_network=st.booleans())
    def proof_for_another_channel(self, other_network: bool) -> None:
        sequence, balance = self.payee.sequence + 1, self.payee.payee_balance
        if other_network:
            proof = signed(PAYER, sequence, balance, network=NETWORK + 1)
        else:
            proof = signed(PAYER, sequence, balance, channel=OTHER)
        self.refused(proof, WrongChannelError)

    @rule(junk=signatures, extra=st.integers(1, 100))
    def payee_signature_on_a_one_way_proof(self, junk: Signature, extra: int) -> None:
        """A proof the ledger would refuse to close with (it checks a payee signature when one is
        present) is refused here too, even if the payer's signature is good."""
        balance = min(self.payee.payee_balance + extra, self.payee.terms.deposit)
        good = signed(PAYER, self.payee.sequence + 1, balance)
        self.refused(dataclasses.replace(good, payee_signature=junk), InvalidProofError)

    @rule(extra=st.integers(0, 100))
    def forged_signature(self, extra: int) -> None:
        # Within the deposit: a proof beyond it is refused before its signature is checked.
        balance = min(self.payee.payee_balance + extra, self.payee.terms.deposit)
        proof = signed(MALLORY, self.payee.sequence + 1, balance)
        self.refused(proof, InvalidProofError)

    @rule(extra=st.integers(1, 100))
    def tampered_balance(self, extra: int) -> None:
        good = signed(PAYER, self.payee.sequence + 1, self.payee.payee_balance)
        bad_proof = dataclasses.replace(good.proof, payee_balance=good.proof.payee_balance + extra)
        bad = dataclasses.replace(good, proof=bad_proof)
        if bad_proof.payee_balance <= self.payee.terms.deposit:
            self.refused(bad, InvalidProofError)

    @rule(over=st.integers(1, 1 << 40))
    def over_deposit(self, over: int) -> None:
        proof = signed(PAYER, self.payee.sequence + 1, self.payee.terms.deposit + over)
        self.refused(proof, InsufficientDepositError)

    @precondition(lambda self: self.payee.payee_balance > 0)
    @rule()
    def decreasing_balance(self) -> None:
        proof = signed(PAYER, self.payee.sequence + 1, self.payee.payee_balance - 1)
        self.refused(proof, BalanceDecreasedError)

    @rule(back=st.integers(0, 3))
    def stale_sequence(self, back: int) -> None:
        proof = signed(PAYER, max(self.payee.sequence - back, 0), self.payee.payee_balance + 1)
        self.refused(proof, StaleProofError)

    @rule(more=st.integers(1, 500))
    def top_up(self, more: int) -> None:
        self.payer.top_up(self.payer.terms.deposit + more)
        self.payee.top_up(self.payee.terms.deposit + more)

    @invariant()
    def balances_sum_to_the_deposit(self) -> None:
        p = self.payee
        assert p.payee_balance + p.payer_balance == p.terms.deposit
        assert 0 <= p.payee_balance <= p.terms.deposit
        assert self.payer.payee_balance + self.payer.payer_balance == self.payer.terms.deposit

    @invariant()
    def sequence_only_grows(self) -> None:
        assert self.payee.sequence >= self.high_water
        self.high_water = self.payee.sequence
        assert self.payee.sequence <= self.payer.sequence
        assert self.payee.payee_balance <= self.payer.payee_balance

    @invariant()
    def payee_holds_a_verified_proof(self) -> None:
        latest = self.payee.latest
        if latest is not None:
            assert latest.verify(PAYER.public_key, PAYEE.public_key, bidirectional=False)


OneWayChannels.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestOneWayChannels = OneWayChannels.TestCase
