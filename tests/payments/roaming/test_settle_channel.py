"""Settlement over the two carriers' two-way channel (real channel cores on both sides), and
multilateral netting: idempotent by batch, catch-up after being offline without paying twice,
both directions on one channel, capacity; netting conserves amounts in at most N-1 transfers
and the clearing statement needs every participant's signature."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.channels.core import ChannelTerms
from payments.channels.twoway import TwoWayChannel
from payments.roaming.acknowledgement import SignedAcknowledgement
from payments.roaming.batch import seal
from payments.roaming.errors import ChannelCapacityError, NettingError, SettlementError
from payments.roaming.netting import ClearingStatement, Obligation, net_positions, transfers
from payments.roaming.record import EventType
from payments.roaming.settlement import Settlement
from tests.payments.roaming.settle_support import (
    AGREEMENT,
    HOME,
    HOME_KEY,
    MALLORY_KEY,
    NOW,
    T0,
    VISITED,
    VISITED_KEY,
    Carriers,
    channel_terms,
    rated,
    record,
)
from wallet.keys import AddressKey, ExtendedKey

SMS = 4_000


def test_an_acknowledged_batch_is_paid_hpmn_to_vpmn_once() -> None:
    c = Carriers()
    ack = c.usage(VISITED, 3)
    for side in (HOME, VISITED):
        assert c.settlements[side].record(ack)
        assert not c.settlements[side].record(ack)  # the same ack again: nothing changes
    assert c.settlements[HOME].due == 3 * SMS
    assert c.settlements[VISITED].due == 0  # the payee owes nothing
    c.settle(HOME)
    assert c.channels[VISITED].payee_balance == 3 * SMS == c.channels[HOME].payee_balance
    assert c.settlements[HOME].due == 0
    assert c.settlements[HOME].pay() is None


def test_both_directions_net_on_one_channel() -> None:
    c = Carriers()
    ack = c.usage(VISITED, 5)
    for side in (HOME, VISITED):
        c.settlements[side].record(ack)
    c.settle(HOME)
    back = c.usage(HOME, 2)  # HOME served VISITED's roamers: VISITED owes 2 SMS
    for side in (HOME, VISITED):
        c.settlements[side].record(back)
    assert c.settlements[HOME].due == 0
    assert c.settlements[VISITED].due == 2 * SMS
    c.settle(VISITED)
    assert c.channels[HOME].payee_balance == 3 * SMS
    assert c.settlements[VISITED].due == c.settlements[HOME].due == 0


def test_a_carrier_offline_for_hours_catches_up_in_one_payment_and_never_pays_twice() -> None:
    c = Carriers()
    acks = [c.usage(VISITED, n) for n in (1, 2, 3, 4)]
    # HOME was offline: on restart it rebuilds its settlement from the stored acks, in any order
    home = Settlement(AGREEMENT, c.channels[HOME], acks=reversed(acks))
    c.settlements[HOME] = home
    c.settlements[VISITED] = Settlement(AGREEMENT, c.channels[VISITED], acks=acks)
    assert home.due == 10 * SMS
    proposal = c.settle(HOME)
    assert proposal is not None
    assert proposal.proof.payee_balance == 10 * SMS
    # HOME crashes after VISITED countersigned but before HOME saved: a fresh core from
    # before the payment learns the co-signed state back from VISITED (HELLO) and owes nothing
    forgetful = TwoWayChannel(channel_terms(), HOME_KEY)
    latest = c.channels[VISITED].latest
    assert latest is not None
    assert forgetful.recover(latest)
    assert Settlement(AGREEMENT, forgetful, acks=acks + acks).due == 0


def test_contradicting_rejected_foreign_and_oversized_acks() -> None:
    c = Carriers(deposit=3 * SMS)
    ack = c.usage(VISITED, 2)
    home = c.settlements[HOME]
    home.record(ack)
    lie = replace(ack.ack, accepted_amount=ack.ack.accepted_amount + 1)
    with pytest.raises(SettlementError, match="disagree"):
        home.record(SignedAcknowledgement(ack=lie, signature=HOME_KEY.sign(lie.signing_message())))
    gap = c.validators[HOME].validate(
        seal(AGREEMENT, VISITED_KEY, (rated(record(kind=EventType.SMS_MO)),), sequence=9, now=NOW),
        NOW,
    )
    assert not home.record(gap)  # fatal: owes nothing
    home.record(c.usage(VISITED, 2))
    with pytest.raises(ChannelCapacityError):
        home.pay()
    other = ChannelTerms(
        **{
            **{f: getattr(channel_terms(), f) for f in ChannelTerms.__dataclass_fields__},
            "payee": MALLORY_KEY.public_key,
        }
    )
    with pytest.raises(SettlementError):
        Settlement(AGREEMENT, TwoWayChannel(other, HOME_KEY))


CARRIERS = [f"C{chr(65 + i)}{chr(65 + i)}01"[:5] for i in range(8)]
KEYS = {t: AddressKey(ExtendedKey.from_seed(bytes([40 + i]) * 32)) for i, t in enumerate(CARRIERS)}


@st.composite
def obligation_sets(draw: st.DrawFn) -> list[Obligation]:
    n = draw(st.integers(2, len(CARRIERS)))
    names = CARRIERS[:n]
    pairs = st.tuples(st.sampled_from(names), st.sampled_from(names)).filter(lambda p: p[0] != p[1])
    return [
        Obligation(debtor=d, creditor=c, amount=draw(st.integers(0, 10**12)))
        for d, c in draw(st.lists(pairs, max_size=40))
    ]


@given(obligation_sets())
def test_netting_conserves_every_amount_in_at_most_n_minus_1_transfers(
    obls: list[Obligation],
) -> None:
    positions = net_positions(obls)
    assert sum(positions.values()) == 0
    for tadig, position in positions.items():
        owed = sum(o.amount for o in obls if o.creditor == tadig)
        owes = sum(o.amount for o in obls if o.debtor == tadig)
        assert position == owed - owes
    moves = transfers(positions)
    assert len(moves) <= max(0, len(positions) - 1)
    after = dict(positions)
    for t in moves:
        assert t.amount > 0
        assert positions[t.payer] < 0 < positions[t.payee]
        after[t.payer] += t.amount
        after[t.payee] -= t.amount
    assert all(v == 0 for v in after.values())


def test_the_clearing_statement_needs_every_participants_signature() -> None:
    names = CARRIERS[:4]
    obls = [
        Obligation(debtor=names[0], creditor=names[1], amount=100),
        Obligation(debtor=names[1], creditor=names[2], amount=70),
        Obligation(debtor=names[2], creditor=names[0], amount=30),
        Obligation(debtor=names[3], creditor=names[0], amount=5),
    ]
    keys = {t: KEYS[t].public_key for t in names}
    statement = ClearingStatement.of(
        obls, keys, period_start=T0, period_end=T0 + 86_400, currency="EUR"
    )
    assert dict(statement.positions) == {names[0]: -65, names[1]: 30, names[2]: 40, names[3]: -5}
    assert len(statement.transfers) <= 3
    signatures = dict(statement.sign(KEYS[t]) for t in names)
    statement.check_signatures(signatures)
    with pytest.raises(NettingError, match="participants"):
        statement.check_signatures({t: s for t, s in signatures.items() if t != names[3]})
    forged = dict(signatures, **{names[2]: KEYS[names[1]].sign(statement.signing_message())})
    with pytest.raises(NettingError, match="does not verify"):
        statement.check_signatures(forged)
    with pytest.raises(NettingError):
        statement.sign(MALLORY_KEY)
    with pytest.raises(NettingError, match="no key"):
        ClearingStatement.of(
            obls, {names[0]: keys[names[0]]}, period_start=0, period_end=1, currency="EUR"
        )
