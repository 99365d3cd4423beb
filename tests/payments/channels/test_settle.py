"""Settling a two-way channel to a target balance (`payments.channels.settle`), with the real
two-way channel core on both sides: the side that owes proposes exactly the target, the other
owes nothing, a target beyond the paying side's share raises the caller's error, and once the
state is co-signed nothing more is due."""

from __future__ import annotations

import pytest

from payments.channels.settle import due_to, settle_to
from payments.channels.twoway import TwoWayChannel
from tests.payments_support import PAYEE, PAYER, terms

TERMS = terms(deposit=1_000, bidirectional=True)


class ShortError(Exception):
    def __init__(self, due: int, available: int) -> None:
        super().__init__(f"{due} due, {available} available")
        self.due, self.available = due, available


def test_the_side_that_owes_proposes_the_target_once() -> None:
    payer, payee = TwoWayChannel(TERMS, PAYER), TwoWayChannel(TERMS, PAYEE)
    assert (due_to(payer, 300), due_to(payee, 300)) == (300, 0)
    assert settle_to(payee, 300, short=ShortError) is None
    proposal = settle_to(payer, 300, short=ShortError)
    assert proposal is not None
    assert proposal.proof.payee_balance == 300
    countersigned = payee.countersign(proposal)
    assert countersigned.payee_signature is not None
    payer.complete(proposal.proof.sequence, countersigned.payee_signature)
    assert due_to(payer, 300) == due_to(payee, 300) == 0
    assert settle_to(payer, 300, short=ShortError) is None  # never twice
    assert (due_to(payer, 100), due_to(payee, 100)) == (0, 200)  # now the payee owes back
    with pytest.raises(ShortError) as short:
        settle_to(payer, 1_300, short=ShortError)
    assert (short.value.due, short.value.available) == (1_000, 700)
