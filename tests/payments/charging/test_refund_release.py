"""A refund the operator holds (and settles) while the refunder is between claiming it and the
wallet recording its transfer (`refund_wallet.LedgerWallet`: sync, record, re-check, attach):
the refunder records the transfer, finds the row no longer `sending` at its attempt, and
attaches nothing (`RefundReleasedError`), so the driver, paid by hand, is not paid on the
ledger too. Before, the send went on after the sync: the settlement had found nothing recorded
under the refund's key (`none`) and deleted it, and the transfer then went out."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
import trio

from payments.charging.errors import RefundReleasedError
from payments.charging.refund_attempts import (
    TransferState,
    attempt_key,
    never_applies,
    transfer_state,
)
from payments.charging.refund_wallet import LedgerWallet
from tests.builders import address
from tests.wallet.test_client import BOB, open_wallet, running
from wallet.account import Wallet
from wallet.errors import TransferFailedError
from wallet.records import TransferStatus

from .test_payment import World, run
from .test_refund import WalletRules, _billed_prepaid
from .test_refund_attempts import SESSION_KEY, _refunder
from .test_refund_desk import NOTE

if TYPE_CHECKING:
    from pathlib import Path

REF = ("CP201", "T1")


def test_a_refund_held_and_settled_during_the_wallet_s_sync_is_never_sent(
    tmp_path: Path,
) -> None:
    """The refunder claimed the refund and its wallet syncs (held by an event); the operator
    holds it and settles it (nothing recorded under its key yet: `none`); the sync ends, the
    transfer is recorded, the re-check finds the row gone, and nothing is attached: the
    ledger paid nothing, the refund is gone, the signed transfer no node saw is abandoned.
    (Unheld, the refunder pays once: every refund test, through the same re-check.) The
    wallet here is the refund tests' stand-in, which follows `LedgerWallet`'s order: this test
    checks the desk and the refunder; the next one checks that order on the real wallet."""
    syncing = asyncio.Event()
    ledger = WalletRules(syncing=syncing)

    async def body(world: World) -> None:
        await _billed_prepaid(world, "CARD-S", 900, 1_200)  # 540 owed back
        refunds = _refunder(world, ledger)
        paying = asyncio.ensure_future(refunds.retry())
        await ledger.entered.wait()  # claimed: `sending`, its wallet syncing
        desk = world.csms.store.refunds
        assert (await desk.hold(REF)).state == "paused"
        settled = await desk.settle_held(REF, NOTE, wallet=ledger)
        assert settled.transfer is TransferState.NONE
        syncing.set()
        assert await paying == 0  # recorded, not attached
        assert ledger.paid() == []
        recorded = await ledger.transfer(SESSION_KEY)
        assert recorded is not None
        assert (recorded.status, recorded.attachments) == (TransferStatus.FAILED, ())
        assert await desk.owed(REF) is None
        assert await refunds.retry() == 0
        assert ledger.paid() == []

    run(tmp_path, body)


async def test_the_real_wallet_records_a_released_refund_s_transfer_and_attaches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the wallet tests' node: `LedgerWallet.send` whose refund is released during the
    wallet's sync (held by an event) records the transfer signed, attaches nothing
    (`RefundReleasedError`) and abandons it (no node saw it: it can never apply), and Bob
    receives nothing: a settlement's check of the wallet then finds it failed and allows it.
    Retried instead, the refund's transfer under that key fails for good (`never_applies`: the
    refunder moves it to its next attempt), and Bob receives the amount once under the next."""
    gate, entered = trio.Event(), trio.Event()
    real_sync = Wallet.sync

    async def held(self: Wallet) -> object:
        entered.set()
        await gate.wait()
        return await real_sync(self)

    monkeypatch.setattr(Wallet, "sync", held)
    released = False

    async def claimed() -> bool:
        return not released

    to = address(BOB)
    key = attempt_key(SESSION_KEY, 0)
    async with running(tmp_path) as h, open_wallet(h, tmp_path / "cpo.db") as cpo:
        ledger = LedgerWallet(wallet=cpo)
        async with trio.open_nursery() as nursery:

            async def send() -> None:
                with pytest.raises(RefundReleasedError):
                    await ledger.send(to, 540, key, claimed)

            nursery.start_soon(send)
            await entered.wait()  # the send is in its sync, before its record
            released = True  # held and settled by the operator meanwhile
            gate.set()
        recorded = await cpo.transfer(key)
        assert recorded is not None
        assert (recorded.status, recorded.attachments) == (TransferStatus.FAILED, ())
        assert transfer_state(recorded) is TransferState.FAILED
        assert never_applies(recorded)
        assert await h.balance_of(to) == 0
        released = False  # retried instead
        with pytest.raises(TransferFailedError):
            await ledger.send(to, 540, key, claimed)
        following = attempt_key(SESSION_KEY, 1)
        await ledger.send(to, 540, following, claimed)
        await ledger.send(to, 540, following, claimed)  # a repeat: the same transfer
        assert await h.balance_of(to) == 540
