"""What a payee's ledger feed makes of the ledger's channel outputs (`ledger_update`); the feed
itself runs against a real devnet in `test_channels_devnet.py`."""

from __future__ import annotations

from dataclasses import replace

from payments import ChannelState, LedgerUpdate, PayeeChannel, ledger_update
from tangle.protocol.channel import ChannelOutput
from tests.payments_support import NETWORK, terms

TERMS = terms(deposit=1_000)
OUTPUT = ChannelOutput(
    channel_id=TERMS.channel_id,
    payer=TERMS.payer,
    payee=TERMS.payee,
    amount=TERMS.deposit,
    bidirectional=False,
    challenge_period=TERMS.challenge_period,
    expiry=TERMS.expiry,
)
NOTHING = LedgerUpdate(terms=None, states=())


def _held(state: ChannelState = ChannelState.OPEN) -> PayeeChannel:
    return PayeeChannel(TERMS, state=state)


def test_an_unchanged_open_channel_needs_nothing() -> None:
    assert ledger_update(_held(), OUTPUT, NETWORK, 50) == NOTHING


def test_a_top_up_refreshes_the_terms() -> None:
    topped = replace(OUTPUT, amount=1_500, expiry=TERMS.expiry + 10)
    update = ledger_update(_held(), topped, NETWORK, 50)
    assert update == LedgerUpdate(
        terms=replace(TERMS, deposit=1_500, expiry=TERMS.expiry + 10), states=()
    )


def test_a_started_close_or_the_expiry_closes_the_channel() -> None:
    closing = LedgerUpdate(terms=None, states=(ChannelState.CLOSING,))
    started = replace(OUTPUT, closing_since=40)
    assert ledger_update(_held(), started, NETWORK, 50) == closing
    assert ledger_update(_held(ChannelState.TOPPING_UP), started, NETWORK, 50) == closing
    assert ledger_update(_held(), OUTPUT, NETWORK, TERMS.expiry) == NOTHING
    assert ledger_update(_held(), OUTPUT, NETWORK, TERMS.expiry + 1) == closing
    assert ledger_update(_held(ChannelState.CLOSING), started, NETWORK, 50) == NOTHING


def test_a_channel_gone_from_the_ledger_is_settled() -> None:
    both = (ChannelState.CLOSING, ChannelState.SETTLED)
    assert ledger_update(_held(), None, NETWORK, 50).states == both
    assert ledger_update(_held(ChannelState.CLOSING), None, NETWORK, 50).states == both[1:]
    assert ledger_update(_held(ChannelState.SETTLED), None, NETWORK, 50) == NOTHING
