"""`LedgerFunder` against an in-process node (the wallet client tests' harness): amounts the
ledger would refuse are named errors before anything is spent; opens are idempotent per channel
life."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from payments import BelowMinimumOutputError, LedgerFunder
from payments.ledger.funder import start_close
from tests.payments_support import PAYEE, PAYER, terms
from tests.wallet.test_client import MIN_OUTPUT, open_wallet, running

if TYPE_CHECKING:
    from pathlib import Path


async def test_a_deposit_or_top_up_below_the_minimum_output_is_refused_up_front(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as harness, open_wallet(harness, tmp_path / "w.db") as wallet:
        funder = LedgerFunder(wallet, PAYER)
        with pytest.raises(BelowMinimumOutputError) as info:
            await funder.open(PAYEE.public_key, MIN_OUTPUT - 1)
        assert (info.value.field, info.value.value, info.value.minimum) == (
            "deposit",
            MIN_OUTPUT - 1,
            MIN_OUTPUT,
        )
        with pytest.raises(BelowMinimumOutputError) as info:
            await funder.top_up(terms(), 1)  # refused before the channel is even looked up
        assert (info.value.field, info.value.minimum) == ("amount", MIN_OUTPUT)
        assert harness.submitted == []
        assert await wallet.transfers() == []


async def test_an_open_is_idempotent_while_its_channel_is_open_and_new_after_it_closes(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as harness, open_wallet(harness, tmp_path / "w.db") as wallet:
        payer = wallet.channel_key(0)
        await harness.fund([(payer.address, 50 * MIN_OUTPUT)])
        await wallet.sync()
        funder = LedgerFunder(wallet, payer)
        first = await funder.open(PAYEE.public_key, 10 * MIN_OUTPUT)
        assert await funder.open(PAYEE.public_key, 10 * MIN_OUTPUT) == first  # a repeat
        assert len(await wallet.transfers()) == 1
        await start_close(wallet, payer, first.channel_id, first.network_id)
        second = await funder.open(PAYEE.public_key, 10 * MIN_OUTPUT)
        assert second.channel_id != first.channel_id  # the first is closing: a new channel
        assert await funder.open(PAYEE.public_key, 10 * MIN_OUTPUT) == second
