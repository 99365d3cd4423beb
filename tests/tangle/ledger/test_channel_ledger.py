"""Channel rules on the ledger: every operation of PROTOCOL.md section 10, its refusals, and a
stateful dispute model in which an online payee never loses what it was paid."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from coordinator.signers import KeySigner
from tangle.errors import InvalidFieldError, InvalidTransactionError
from tangle.ledger.ledger import Conflict
from tangle.protocol.channel import ChannelOp, ChannelOutput, ChannelUnlock, channel_id_of
from tangle.protocol.codec import Reader
from tangle.protocol.ids import OutputId, PublicKey
from tangle.protocol.transaction import (
    BasicOutput,
    Transaction,
    TransactionEssence,
    decode_transaction,
    encode_transaction,
)
from tests.builders import NET, address, genesis, key
from tests.channel_chain import Chain, sign_proof
from wallet import channel_tx
from wallet.errors import SigningError
from wallet.transfer import sign_transaction

PAYER, PAYEE, OTHER = key(11), key(12), key(13)
PERIOD = 5


def _pk(k):  # type: ignore[no-untyped-def]
    return PublicKey(bytes(k.verify_key))


def _open(
    chain: Chain,
    funding: OutputId,
    deposit: int = 1000,
    *,
    bidirectional: bool = False,
    expiry: int = 1000,
    held: int = 10_000,
) -> tuple[OutputId, ChannelOutput]:
    tx = channel_tx.open_channel(
        network_id=NET,
        funding=[(funding, KeySigner(bytes(PAYER)))],
        payer=_pk(PAYER),
        payee=_pk(PAYEE),
        deposit=deposit,
        challenge_period=PERIOD,
        expiry=expiry,
        bidirectional=bidirectional,
        change=(address(PAYER), held - deposit) if held > deposit else None,
    )
    assert chain.apply(tx) is Conflict.NONE
    found = chain.channel(channel_id_of(funding, 0))
    assert found is not None
    return found


@pytest.fixture
def chain_and_coin() -> tuple[Chain, OutputId]:
    g = genesis([(PAYER, 10_000)])
    (coin,) = g.outputs()
    return Chain(g), coin


def _payee_close(oid: OutputId, ch: ChannelOutput, sequence: int, paid: int) -> Transaction:
    return channel_tx.payee_close(
        network_id=NET,
        channel_input=oid,
        channel=ch,
        payee=KeySigner(bytes(PAYEE)),
        proof=sign_proof(ch.channel_id, sequence, paid, PAYER),
    )


def test_channel_transactions_round_trip(chain_and_coin) -> None:  # type: ignore[no-untyped-def]
    chain, coin = chain_and_coin
    oid, ch = _open(chain, coin)
    for tx in (
        _payee_close(oid, ch, 3, 300),
        channel_tx.start_close(
            network_id=NET, channel_input=oid, channel=ch, signer=KeySigner(bytes(PAYER))
        ),
    ):
        raw = encode_transaction(tx)
        r = Reader(raw, "tx")
        assert decode_transaction(r) == tx
        r.finish()


def test_payee_close_pays_the_proven_amount_and_returns_the_rest(chain_and_coin) -> None:  # type: ignore[no-untyped-def]
    chain, coin = chain_and_coin
    oid, ch = _open(chain, coin)
    assert chain.apply(_payee_close(oid, ch, 7, 420)) is Conflict.NONE
    assert chain.held_by(address(PAYEE)) == 420
    assert chain.held_by(address(PAYER)) == 10_000 - 420
    assert chain.channel(ch.channel_id) is None
    # Double close: the channel output is gone.
    assert chain.apply(_payee_close(oid, ch, 8, 500)) is Conflict.INPUT_SPENT


def test_top_up_keeps_proofs_valid_and_refuses_shrinking_terms(chain_and_coin) -> None:  # type: ignore[no-untyped-def]
    chain, coin = chain_and_coin
    oid, ch = _open(chain, coin, held=10_000)
    (change,) = [o for o in chain.state.unspent if o != oid]
    top = channel_tx.top_up(
        network_id=NET,
        channel_input=oid,
        channel=ch,
        payer=KeySigner(bytes(PAYER)),
        funding=[(change, KeySigner(bytes(PAYER)))],
        amount=500,
        expiry=2000,
        change=(address(PAYER), 9000 - 500),
    )
    assert chain.apply(top) is Conflict.NONE
    found = chain.channel(ch.channel_id)
    assert found is not None
    oid2, ch2 = found
    assert (ch2.amount, ch2.expiry) == (1500, 2000)
    # A proof above the old deposit is fine now.
    assert chain.apply(_payee_close(oid2, ch2, 2, 1200)) is Conflict.NONE
    assert chain.held_by(address(PAYEE)) == 1200


def test_top_up_must_be_signed_by_the_payer(chain_and_coin) -> None:  # type: ignore[no-untyped-def]
    chain, coin = chain_and_coin
    oid, ch = _open(chain, coin, deposit=10_000)
    essence = TransactionEssence(
        network_id=NET, inputs=(oid,), outputs=(replace(ch, amount=ch.amount),)
    )
    by_payee = sign_transaction(
        essence,
        [
            channel_tx.ChannelAuthority(
                op=ChannelOp.TOP_UP, channel=ch, payee=KeySigner(bytes(PAYEE))
            )
        ],
    )
    assert chain.apply(by_payee) is Conflict.CHANNEL_NOT_AUTHORISED


def test_unilateral_close_then_the_payee_answers_within_the_challenge_period(
    chain_and_coin,  # type: ignore[no-untyped-def]
) -> None:
    chain, coin = chain_and_coin
    oid, ch = _open(chain, coin)
    start = channel_tx.start_close(
        network_id=NET, channel_input=oid, channel=ch, signer=KeySigner(bytes(PAYER))
    )
    assert chain.apply(start) is Conflict.NONE
    oid2, closing = chain.channel(ch.channel_id)  # type: ignore[misc]
    assert closing.closing_since == chain.index
    # Settling before the period is over is refused; a top-up during the close too.
    early = channel_tx.settle(
        network_id=NET, channel_input=oid2, channel=closing, signer=KeySigner(bytes(PAYER))
    )
    assert chain.apply(early) is Conflict.CHANNEL_WRONG_STATE
    assert chain.apply(_payee_close(oid2, closing, 9, 900)) is Conflict.NONE
    assert chain.held_by(address(PAYEE)) == 900


def test_settle_after_the_challenge_period_pays_the_recorded_state(chain_and_coin) -> None:  # type: ignore[no-untyped-def]
    chain, coin = chain_and_coin
    oid, ch = _open(chain, coin)
    start = channel_tx.start_close(
        network_id=NET, channel_input=oid, channel=ch, signer=KeySigner(bytes(PAYER))
    )
    chain.apply(start)
    oid2, closing = chain.channel(ch.channel_id)  # type: ignore[misc]
    chain.advance_to(closing.closing_since + PERIOD - 1)
    settle = channel_tx.settle(
        network_id=NET, channel_input=oid2, channel=closing, signer=KeySigner(bytes(PAYER))
    )
    assert chain.apply(settle) is Conflict.NONE  # applied at closing_since + PERIOD
    assert chain.held_by(address(PAYER)) == 10_000
    # The payee is too late now.
    assert chain.apply(_payee_close(oid2, closing, 9, 900)) is Conflict.INPUT_SPENT


def test_expiry_starts_the_close_without_a_transaction(chain_and_coin) -> None:  # type: ignore[no-untyped-def]
    chain, coin = chain_and_coin
    oid, ch = _open(chain, coin, expiry=4)
    chain.advance_to(4)
    settle = channel_tx.settle(
        network_id=NET, channel_input=oid, channel=ch, signer=KeySigner(bytes(PAYER))
    )
    assert chain.apply(settle) is Conflict.CHANNEL_WRONG_STATE
    chain.advance_to(4 + PERIOD - 1)
    assert chain.apply(settle) is Conflict.NONE


def test_bidirectional_highest_sequence_wins(chain_and_coin) -> None:  # type: ignore[no-untyped-def]
    chain, coin = chain_and_coin
    oid, ch = _open(chain, coin, bidirectional=True)
    old = sign_proof(ch.channel_id, 3, 700, PAYER, PAYEE)
    new = sign_proof(ch.channel_id, 5, 200, PAYER, PAYEE)
    # The payee closes with the state that favours it...
    start = channel_tx.start_close(
        network_id=NET, channel_input=oid, channel=ch, signer=KeySigner(bytes(PAYEE)), proof=old
    )
    assert chain.apply(start) is Conflict.NONE
    oid2, closing = chain.channel(ch.channel_id)  # type: ignore[misc]
    assert (closing.sequence, closing.payee_balance) == (3, 700)
    # ...a replay of an older state is refused, the newer one wins.
    stale = channel_tx.challenge(
        network_id=NET,
        channel_input=oid2,
        channel=closing,
        signer=KeySigner(bytes(PAYER)),
        proof=sign_proof(ch.channel_id, 2, 0, PAYER, PAYEE),
    )
    assert chain.apply(stale) is Conflict.CHANNEL_STALE_PROOF
    answer = channel_tx.challenge(
        network_id=NET,
        channel_input=oid2,
        channel=closing,
        signer=KeySigner(bytes(PAYER)),
        proof=new,
    )
    assert chain.apply(answer) is Conflict.NONE
    oid3, final = chain.channel(ch.channel_id)  # type: ignore[misc]
    assert final.closing_since == closing.closing_since
    chain.advance_to(final.closing_since + PERIOD - 1)
    settle = channel_tx.settle(
        network_id=NET, channel_input=oid3, channel=final, signer=KeySigner(bytes(PAYEE))
    )
    assert chain.apply(settle) is Conflict.NONE
    assert chain.held_by(address(PAYEE)) == 200


def test_bidirectional_states_need_both_signatures(chain_and_coin) -> None:  # type: ignore[no-untyped-def]
    chain, coin = chain_and_coin
    oid, ch = _open(chain, coin, bidirectional=True)
    one_sided = sign_proof(ch.channel_id, 3, 900, PAYER)
    start = channel_tx.start_close(
        network_id=NET,
        channel_input=oid,
        channel=ch,
        signer=KeySigner(bytes(PAYEE)),
        proof=one_sided,
    )
    assert chain.apply(start) is Conflict.CHANNEL_STALE_PROOF
    # A one-way close does not exist on a two-way channel.
    assert chain.apply(_payee_close(oid, ch, 3, 900)) is Conflict.CHANNEL_WRONG_STATE


def test_cooperative_close_needs_both_parties(chain_and_coin) -> None:  # type: ignore[no-untyped-def]
    chain, coin = chain_and_coin
    oid, ch = _open(chain, coin)
    essence = channel_tx.cooperative_close_essence(
        network_id=NET,
        channel_input=oid,
        outputs=[
            BasicOutput(address=address(PAYEE), amount=600),
            BasicOutput(address=address(OTHER), amount=400),
        ],
    )
    from tangle.protocol.transaction import signing_message, transaction_id

    message = signing_message(transaction_id(essence))
    payer_sig = KeySigner(bytes(PAYER)).sign(message)
    payee_sig = KeySigner(bytes(PAYEE)).sign(message)
    forged = KeySigner(bytes(OTHER)).sign(message)
    with pytest.raises(InvalidTransactionError, match="signature"):
        chain.apply(channel_tx.cooperative_close(essence, ch, payer_sig, forged))
    assert chain.apply(channel_tx.cooperative_close(essence, ch, payer_sig, payee_sig)) is (
        Conflict.NONE
    )
    assert chain.held_by(address(OTHER)) == 400


def test_forged_and_misdirected_proofs_are_refused_before_attach(chain_and_coin) -> None:  # type: ignore[no-untyped-def]
    chain, coin = chain_and_coin
    oid, ch = _open(chain, coin)
    other_channel = channel_id_of(OutputId(bytes(34)), 0)
    replayed = sign_proof(other_channel, 9, 900, PAYER)
    # A proof signed for another channel cannot be put in this channel's unlock...
    with pytest.raises(InvalidFieldError, match="another channel"):
        ChannelUnlock(
            op=ChannelOp.PAYEE_CLOSE,
            channel_id=ch.channel_id,
            payer=ch.payer,
            payee=ch.payee,
            payee_signature=replayed.payer_signature,
            proof=replayed,
        )
    # ...and re-bound to it, its signature no longer verifies (it covers the channel id).
    rebound = replace(replayed, proof=replace(replayed.proof, channel_id=ch.channel_id))
    tx = channel_tx.payee_close(
        network_id=NET,
        channel_input=oid,
        channel=ch,
        payee=KeySigner(bytes(PAYEE)),
        proof=rebound,
    )
    with pytest.raises(InvalidTransactionError, match="balance proof"):
        chain.apply(tx)
    # A proof for another network fails the same way.
    foreign = sign_proof(ch.channel_id, 9, 900, PAYER, network_id=NET + 1)
    rebound = replace(foreign, proof=replace(foreign.proof, network_id=NET))
    tx = channel_tx.payee_close(
        network_id=NET, channel_input=oid, channel=ch, payee=KeySigner(bytes(PAYEE)), proof=rebound
    )
    with pytest.raises(InvalidTransactionError, match="balance proof"):
        chain.apply(tx)
    # A proof beyond the deposit is refused by the builder and by the ledger.
    with pytest.raises(SigningError, match="deposit"):
        _payee_close(oid, ch, 9, 1001)
    greedy = sign_transaction(
        TransactionEssence(
            network_id=NET,
            inputs=(oid,),
            outputs=(BasicOutput(address=address(PAYEE), amount=1000),),
        ),
        [
            channel_tx.ChannelAuthority(
                op=ChannelOp.PAYEE_CLOSE,
                channel=ch,
                payee=KeySigner(bytes(PAYEE)),
                proof=sign_proof(ch.channel_id, 9, 1001, PAYER),
            )
        ],
    )
    assert chain.apply(greedy) is Conflict.CHANNEL_STALE_PROOF
    assert chain.channel(ch.channel_id) == (oid, ch)


def test_new_channels_must_start_fresh() -> None:
    g = genesis([(PAYER, 1000)])
    (coin,) = g.outputs()
    chain = Chain(g)
    good = ChannelOutput(
        channel_id=channel_id_of(coin, 0),
        payer=_pk(PAYER),
        payee=_pk(PAYEE),
        amount=1000,
        bidirectional=False,
        challenge_period=PERIOD,
        expiry=100,
    )
    for bad, reason in (
        (replace(good, channel_id=channel_id_of(coin, 1)), "derived"),
        (replace(good, sequence=4), "later state"),
        (replace(good, payee_balance=10), "already owes"),
        (replace(good, bidirectional=True, payee_balance=10), "already owes"),
    ):
        essence = TransactionEssence(network_id=NET, inputs=(coin,), outputs=(bad,))
        with pytest.raises(InvalidTransactionError, match=reason):
            chain.apply(sign_transaction(essence, [KeySigner(bytes(PAYER))]))
    # A channel output may not be spent with a plain signature.
    essence = TransactionEssence(network_id=NET, inputs=(coin,), outputs=(good,))
    assert chain.apply(sign_transaction(essence, [KeySigner(bytes(PAYER))])) is Conflict.NONE
    steal = TransactionEssence(
        network_id=NET,
        inputs=(OutputId.of(sign_transaction(essence, [KeySigner(bytes(PAYER))]).id, 0),),
        outputs=(BasicOutput(address=address(PAYER), amount=1000),),
    )
    assert chain.apply(sign_transaction(steal, [KeySigner(bytes(PAYER))])) is (
        Conflict.CHANNEL_UNLOCK_MISMATCH
    )


class OneWayDispute(RuleBasedStateMachine):
    """A payer pays off the ledger and may cheat on it; the payee (or its watch service) is
    online and answers every close. Invariants: value is conserved, the channel always holds
    what was deposited and not yet paid out, and once settled the payee holds at least the
    latest amount it was paid."""

    def __init__(self) -> None:
        super().__init__()
        g = genesis([(PAYER, 100_000)])
        (self.coin,) = g.outputs()
        self.chain = Chain(g)
        self.oid, self.ch = _open(self.chain, self.coin, deposit=1000, held=100_000)
        self.deposited = 1000
        self.sequence = 0
        self.paid = 0
        self.settled = False

    def _live(self) -> bool:
        found = self.chain.channel(self.ch.channel_id)
        if found is None:
            self.settled = True
            return False
        self.oid, self.ch = found
        return True

    @precondition(lambda self: not self.settled)
    @rule(amount=st.integers(1, 300))
    def pay_off_ledger(self, amount: int) -> None:
        if self.paid + amount <= self.deposited:
            self.sequence += 1
            self.paid += amount

    @precondition(lambda self: not self.settled)
    @rule(amount=st.integers(1, 2000))
    def top_up(self, amount: int) -> None:
        if not self._live():
            return
        coin, held = self._payer_coin()
        if held <= amount:
            return
        tx = channel_tx.top_up(
            network_id=NET,
            channel_input=self.oid,
            channel=self.ch,
            payer=KeySigner(bytes(PAYER)),
            funding=[(coin, KeySigner(bytes(PAYER)))],
            amount=amount,
            change=(address(PAYER), held - amount),
        )
        if self.chain.apply(tx) is Conflict.NONE:
            self.deposited += amount

    @precondition(lambda self: not self.settled)
    @rule(delay=st.integers(0, PERIOD - 2))
    def payer_closes_unilaterally(self, delay: int) -> None:
        """The payer starts a close (recording no payment) and tries to settle at once; the
        payee answers with its latest proof `delay` milestones into the challenge period."""
        if not self._live():
            return
        start = channel_tx.start_close(
            network_id=NET,
            channel_input=self.oid,
            channel=self.ch,
            signer=KeySigner(bytes(PAYER)),
        )
        if self.chain.apply(start) is not Conflict.NONE or not self._live():
            return
        early = channel_tx.settle(
            network_id=NET, channel_input=self.oid, channel=self.ch, signer=KeySigner(bytes(PAYER))
        )
        assert self.chain.apply(early) is Conflict.CHANNEL_WRONG_STATE
        self.chain.advance_to(self.chain.index + delay)
        answer = _payee_close(self.oid, self.ch, self.sequence, self.paid)
        assert self.chain.apply(answer) is Conflict.NONE
        self._live()

    @precondition(lambda self: not self.settled)
    @rule(top_up_first=st.booleans())
    def close_during_top_up(self, top_up_first: bool) -> None:
        """A top-up and the payee's close land in the same milestone, in either order."""
        if not self._live():
            return
        coin, held = self._payer_coin()
        top = channel_tx.top_up(
            network_id=NET,
            channel_input=self.oid,
            channel=self.ch,
            payer=KeySigner(bytes(PAYER)),
            funding=[(coin, KeySigner(bytes(PAYER)))],
            amount=100,
            change=(address(PAYER), held - 100),
        )
        close = _payee_close(self.oid, self.ch, self.sequence, self.paid)
        verdicts = self.chain.apply_many([top, close] if top_up_first else [close, top])
        assert sorted(verdicts) == [Conflict.NONE, Conflict.INPUT_SPENT]
        if top_up_first:
            self.deposited += 100
            self.payee_closes()  # the payee closes again, on the topped-up output
        self._live()

    @rule(sequence=st.integers(0, 50), amount=st.integers(0, 1000))
    def replay_on_this_channel(self, sequence: int, amount: int) -> None:
        """A proof the payer signed for another channel never closes this one."""
        if not self._live():
            return
        elsewhere = sign_proof(channel_id_of(OutputId(bytes(34)), 0), sequence, amount, PAYER)
        rebound = replace(elsewhere, proof=replace(elsewhere.proof, channel_id=self.ch.channel_id))
        with pytest.raises(InvalidTransactionError):
            self.chain.apply(
                channel_tx.payee_close(
                    network_id=NET,
                    channel_input=self.oid,
                    channel=self.ch,
                    payee=KeySigner(bytes(PAYEE)),
                    proof=rebound,
                )
            )

    def _payer_coin(self) -> tuple[OutputId, int]:
        return next(
            (o, out.amount)
            for o, out in self.chain.state.unspent.items()
            if not isinstance(out, ChannelOutput) and out.address == address(PAYER)
        )

    @rule()
    def payee_closes(self) -> None:
        """The payee closes with its latest proof; a second close of a settled channel fails."""
        if self.settled:
            assert self.chain.apply(_payee_close(self.oid, self.ch, self.sequence, self.paid)) is (
                Conflict.INPUT_SPENT
            )
        elif self._live():
            verdict = self.chain.apply(_payee_close(self.oid, self.ch, self.sequence, self.paid))
            assert verdict is Conflict.NONE
            self._live()

    @rule(milestones=st.integers(1, 3))
    def time_passes(self, milestones: int) -> None:
        self.chain.advance_to(self.chain.index + milestones)

    @invariant()
    def value_is_conserved(self) -> None:
        held = sum(o.amount for o in self.chain.state.unspent.values())
        assert held == 100_000
        found = self.chain.channel(self.ch.channel_id)
        if found is not None:
            assert found[1].amount == self.deposited
        else:
            assert self.chain.held_by(address(PAYEE)) >= self.paid
            assert self.chain.held_by(address(PAYEE)) + self.chain.held_by(address(PAYER)) == (
                100_000
            )


OneWayDispute.TestCase.settings = settings(max_examples=40, stateful_step_count=20, deadline=None)
test_one_way_dispute = OneWayDispute.TestCase
