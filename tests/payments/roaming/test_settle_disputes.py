"""Disputes: raised within the agreement's window against an accepted batch, answered by the
other carrier, and an accepted one becomes a credit note that the next settlement over the
channel nets in; everything else is refused by name."""

from __future__ import annotations

from dataclasses import replace

import pytest

from payments.roaming.batch import seal
from payments.roaming.disputes import (
    Dispute,
    DisputeBook,
    Resolution,
    anchor_payload,
    sign_dispute,
    sign_resolution,
)
from payments.roaming.errors import DisputeError
from payments.roaming.settlement import Settlement
from tangle.protocol.payload import MAX_DATA
from tests.payments.roaming.settle_support import (
    AGREEMENT,
    HOME,
    HOME_KEY,
    T0,
    VISITED,
    VISITED_KEY,
    Carriers,
    rated,
    record,
)

SMS = 4_000


def dispute(ack_batch: bytes, acked: int, **changes: object) -> Dispute:
    fields: dict[str, object] = {
        "agreement": AGREEMENT.hash,
        "batch": ack_batch,
        "raised_by": HOME,
        "indices": (1,),
        "amount": SMS,
        "reason": "subscriber was not in the visited network",
        "raised_utc": acked + 86_400,
    }
    fields.update(changes)
    return Dispute(**fields)  # type: ignore[arg-type]


def test_an_accepted_dispute_is_a_credit_note_the_next_settlement_nets_in() -> None:
    c = Carriers()
    ack = c.usage(VISITED, 3)
    for side in (HOME, VISITED):
        c.settlements[side].record(ack)
    c.settle(HOME)
    book = DisputeBook(AGREEMENT)
    d = sign_dispute(dispute(ack.ack.batch, ack.ack.acked_utc), HOME_KEY)
    assert book.raise_dispute(d, ack) == d.body.id
    assert book.raise_dispute(d, ack) == d.body.id  # the same again: nothing changes
    assert book.open() == [d]
    answer = Resolution(
        dispute=d.body.id, accepted=True, credit=SMS, reason="agreed", resolved_utc=0
    )
    note = book.resolve(sign_resolution(answer, VISITED_KEY))
    assert note is not None
    assert (note.debtor, note.creditor, note.amount) == (VISITED, HOME, SMS)
    assert book.open() == []
    assert book.credit_notes() == [note]
    for side in (HOME, VISITED):
        assert c.settlements[side].credit(note)
        assert not c.settlements[side].credit(note)
    # VISITED (the channel's payee) now owes the credit back; the next settlement pays it
    next_ack = c.usage(VISITED, 2)
    for side in (HOME, VISITED):
        c.settlements[side].record(next_ack)
    assert c.settlements[HOME].due == 2 * SMS - SMS
    c.settle(HOME)
    assert c.channels[VISITED].payee_balance == 3 * SMS + 2 * SMS - SMS
    assert len(anchor_payload(d).data) <= MAX_DATA


def test_disputes_outside_the_rules_are_refused() -> None:
    c = Carriers()
    ack = c.usage(VISITED, 2)
    a = ack.ack
    book = DisputeBook(AGREEMENT)
    late = a.acked_utc + AGREEMENT.dispute_window_s + 1
    cases = [
        (sign_dispute(dispute(a.batch, a.acked_utc, raised_utc=late), HOME_KEY), "window"),
        (sign_dispute(dispute(a.batch, a.acked_utc, amount=3 * SMS), HOME_KEY), "claims"),
        (sign_dispute(dispute(a.batch, a.acked_utc, indices=(2,)), HOME_KEY), "index"),
        (sign_dispute(dispute(a.batch, a.acked_utc), VISITED_KEY), "signed"),
        (sign_dispute(dispute(bytes(32), a.acked_utc), HOME_KEY), "another"),
    ]
    for signed, match in cases:
        with pytest.raises(DisputeError, match=match):
            book.raise_dispute(signed, ack)
    assert book.history() == []
    first = sign_dispute(dispute(a.batch, a.acked_utc, amount=SMS + 1), HOME_KEY)
    book.raise_dispute(first, ack)
    second = sign_dispute(dispute(a.batch, a.acked_utc, indices=(0,)), HOME_KEY)
    with pytest.raises(DisputeError, match="claims"):
        book.raise_dispute(second, ack)  # together above the accepted amount
    answer = Resolution(
        dispute=first.body.id, accepted=False, credit=0, reason="records are right", resolved_utc=0
    )
    with pytest.raises(DisputeError, match="signed"):
        book.resolve(sign_resolution(answer, HOME_KEY))  # the disputer cannot answer itself
    with pytest.raises(DisputeError, match="grants"):
        book.resolve(sign_resolution(replace(answer, accepted=True, credit=SMS + 2), VISITED_KEY))
    assert book.resolve(sign_resolution(answer, VISITED_KEY)) is None
    with pytest.raises(DisputeError, match="already"):
        book.resolve(sign_resolution(replace(answer, reason="changed my mind"), VISITED_KEY))
    with pytest.raises(DisputeError):
        Resolution(dispute=first.body.id, accepted=False, credit=1, reason="x", resolved_utc=0)
    gap = seal(AGREEMENT, VISITED_KEY, (rated(record(up=1, start=T0)),), sequence=7, now=T0)
    rejected = c.validators[HOME].validate(gap, T0)
    with pytest.raises(DisputeError, match="rejected"):
        book.raise_dispute(sign_dispute(dispute(rejected.ack.batch, 0), HOME_KEY), rejected)
    assert Settlement(AGREEMENT, c.channels[HOME]).due == 0
