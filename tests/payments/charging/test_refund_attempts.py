"""Refunds whose transfer failed for good, and refunds that fail again and again
(`refund_attempts`, `refund_rows`): a failed transfer that can never apply is replaced by a next
attempt under a key of its own, at most `MAX_ATTEMPTS` times, then the refund is held; the retry
batches read the refunds tried least often first; the store's upgrade 1 -> 2 keeps every row and
its key. Before, a refund whose transfer failed stayed `sending` and was sent under the same key
every round (the wallet answers a failed key with its failure for ever): the driver was never
paid, and such rows kept newer ones out of the batch."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from typing import TYPE_CHECKING

import pytest
import trio

from payments.charging.refund import REFUND_KEY, PrepaidRefunds, unbind_refund_key
from payments.charging.refund_attempts import (
    MAX_ATTEMPTS,
    Claim,
    attempt_key,
    never_applies,
)
from payments.charging.refund_wallet import LedgerWallet
from payments.charging.store import SCHEMA_VERSION
from tangle.protocol.transaction import address_of
from tests.builders import address
from tests.wallet.test_client import BOB, CAROL, CONFIG, open_wallet, running
from wallet.account import Wallet
from wallet.config import RetryPolicy, WalletConfig
from wallet.errors import InsufficientFundsError, NodeUnavailableError, TransferFailedError
from wallet.pending import abandon
from wallet.records import TransferStatus

from .old_databases import as_version_1_left_it
from .test_payment import DRIVER, World, run
from .test_refund import MINIMUM, Sent, WalletRules, _billed_prepaid, _recorded
from .test_refund_bounds import KEY, _owe_small

if TYPE_CHECKING:
    from pathlib import Path

SESSION_KEY = REFUND_KEY + b"CP201/T1"
BATCH = 40
"""The retry batch of the test of batches full of stuck refunds (below `MAX_OWED_BATCH`)."""


def _states(path: Path) -> list[tuple[str, int, int]]:
    """(state, attempt, amount) of every refund row, sessions' then tokens', as another
    connection reads them."""
    reader = sqlite3.connect(path)
    try:
        query = (
            "SELECT state, attempt, amount FROM refunds UNION ALL "
            "SELECT state, attempt, amount FROM token_refunds"
        )
        return [(str(r[0]), int(r[1]), int(r[2])) for r in reader.execute(query)]
    finally:
        reader.close()


def test_a_refund_whose_transfer_failed_for_good_is_paid_once_under_its_next_attempt(
    tmp_path: Path,
) -> None:
    """A session's rest of 540 and an unbound token's 450: each sent, its answer lost, then a
    milestone marks the transfer conflicting (its input spent elsewhere). The next round moves
    each to attempt 1 at the same amount; the round after pays it under attempt 1's key, once:
    the driver's address receives each amount once, and nothing is sent again after."""
    sent: list[Sent] = []
    ledger = WalletRules(sent, lost=2)

    async def body(world: World) -> None:
        wallet = await _billed_prepaid(world, "CARD-A", 900, 1_200)  # 540 owed back
        await _owe_small(world, wallet, "CARD-B", 450)  # token refund 1
        unbind_key = unbind_refund_key(wallet.channel.terms.channel_id, "CARD-B", 1)
        refunds = _refunder(world, ledger)
        assert await refunds.retry() == 0  # both recorded, both answers lost
        ledger.fail(SESSION_KEY, "input_spent")
        ledger.fail(unbind_key, "input_spent")
        assert await refunds.retry() == 0  # failed for good: each moves to attempt 1
        assert _states(tmp_path / "csms.sqlite") == [("sending", 1, 540), ("sending", 1, 450)]
        assert await refunds.retry() == 2
        to = address_of(DRIVER.public_key)
        assert sorted(ledger.paid()) == sorted(
            [(to, 540, attempt_key(SESSION_KEY, 1)), (to, 450, attempt_key(unbind_key, 1))]
        )
        assert await refunds.retry() == 0
        assert len(sent) == 6  # 2 lost, 2 failed, 2 paid: never sent again
        assert _states(tmp_path / "csms.sqlite") == []

    run(tmp_path, body)


async def _claimed() -> bool:
    """A refund still claimed (`RefundWallet.send`'s re-check)."""
    return True


def _refunder(world: World, ledger: WalletRules) -> PrepaidRefunds:
    return PrepaidRefunds(payments=world.payments, wallet=ledger, min_amount=MINIMUM)


async def abandoned_after_attaching(world: World, ledger: WalletRules) -> PrepaidRefunds:
    """A prepaid session billed with 540 owed back, its refund sent once (its answer lost), and
    its transfer then abandoned after it was attached: the refunder of `world`."""
    await _billed_prepaid(world, "CARD-J", 900, 1_200)  # 540 owed back
    refunds = _refunder(world, ledger)
    assert await refunds.retry() == 0
    ledger.fail(SESSION_KEY, "abandoned", attached=True)
    return refunds


def test_attempts_are_bounded_and_a_held_refund_is_not_sent_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every transfer of a refund fails for good: after `MAX_ATTEMPTS` attempts the refund is
    held (kept, at its amount), logged at error level once, and no later round sends it."""
    sent: list[Sent] = []
    ledger = WalletRules(sent, fail_new="input_spent")

    async def body(world: World) -> None:
        await _billed_prepaid(world, "CARD-H", 900, 1_200)  # 540 owed back
        refunds = _refunder(world, ledger)
        with caplog.at_level(logging.ERROR, logger="payments.charging.refund"):
            for _ in range(MAX_ATTEMPTS + 3):
                assert await refunds.retry() == 0
        assert [key for _, _, key in sent] == [
            attempt_key(SESSION_KEY, n) for n in range(MAX_ATTEMPTS)
        ]
        assert _states(tmp_path / "csms.sqlite") == [("held", MAX_ATTEMPTS - 1, 540)]
        [held] = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert "held" in held.getMessage()
        assert ledger.paid() == []

    run(tmp_path, body)


def test_a_refund_whose_transfer_was_abandoned_after_it_was_attached_is_held_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The owner abandoned the refund's transfer after it was attached (`wallet abandon` of an
    expired transfer): its payload is on the tangle and may still apply if anyone attaches it
    again, so no next attempt is made (it could pay twice): the refund is held."""
    sent: list[Sent] = []
    ledger = WalletRules(sent, lost=1)

    async def body(world: World) -> None:
        refunds = await abandoned_after_attaching(world, ledger)
        with caplog.at_level(logging.ERROR, logger="payments.charging.refund"):
            assert await refunds.retry() == 0
            assert await refunds.retry() == 0
        assert [key for _, _, key in sent] == [SESSION_KEY, SESSION_KEY]
        assert _states(tmp_path / "csms.sqlite") == [("held", 0, 540)]
        assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1

    run(tmp_path, body)


def test_only_the_first_payer_to_see_an_attempt_fail_moves_the_refund(tmp_path: Path) -> None:
    """Two payers of one refund (the bill's hook and the retry loop) both saw attempt 0 fail:
    the first moves it to attempt 1; the second, still at attempt 0, moves nothing (no attempt
    skipped, nothing held), so the claim after is attempt 1 at the same amount."""

    async def body(world: World) -> None:
        wallet = await _billed_prepaid(world, "CARD-K", 900, 1_200)  # 540 owed back
        rows = world.csms.store.refunds
        channel_id = wallet.channel.terms.channel_id
        assert await rows.claim_refund(KEY, channel_id, MINIMUM) == Claim(amount=540, attempt=0)
        assert await rows.next_refund_attempt(KEY, 0, 1)
        assert not await rows.next_refund_attempt(KEY, 0, 1)
        assert not await rows.next_refund_attempt(KEY, 0, None)
        assert await rows.claim_refund(KEY, channel_id, MINIMUM) == Claim(amount=540, attempt=1)

    run(tmp_path, body)


@pytest.mark.parametrize(
    ("status", "failure", "attached", "never"),
    [
        (TransferStatus.CONFIRMED, None, True, False),
        (TransferStatus.SUBMITTED, None, True, False),
        (TransferStatus.EXPIRED, None, True, False),
        (TransferStatus.FAILED, "input_spent", True, True),  # a milestone's verdict
        # only an older wallet records it, also for a transaction applied through an
        # attachment the node forgot: it may have been paid
        (TransferStatus.FAILED, "input_not_found", True, False),
        (TransferStatus.FAILED, "invalid_payload", False, True),  # the node refused it
        (TransferStatus.FAILED, "abandoned", False, True),  # never handed to a node
        (TransferStatus.FAILED, "abandoned", True, False),  # on the tangle: may still apply
    ],
)
def test_only_a_failed_transfer_that_can_never_apply_is_replaced(
    status: TransferStatus, failure: str | None, attached: bool, never: bool
) -> None:
    recorded = _recorded(address_of(DRIVER.public_key), 540, SESSION_KEY)
    transfer = dataclasses.replace(
        recorded,
        status=status,
        failure=failure,
        attachments=recorded.attachments if attached else (),
    )
    assert never_applies(transfer) is never
    assert not never_applies(None)


def test_a_next_attempt_s_key_is_no_other_refund_s_key(tmp_path: Path) -> None:
    """A charger names its transactions (OCPP 2.0.1), so a session may be `T1/attempt/1`, and
    an unbound token's name is any text: a refund's next attempt is never sent under the key of
    another refund of the same driver and amount. Before (`key || /attempt/N`), session T1's
    attempt 1 was the key that session `T1/attempt/1` had been paid under: the wallet answered
    with that payment, and T1's refund was marked paid without being paid."""
    sent: list[Sent] = []
    ledger = WalletRules(sent, lost=1)
    other = ("CP201", "T1/attempt/1")

    async def body(world: World) -> None:
        wallet = await _billed_prepaid(world, "CARD-X", 900, 1_200)  # 540 owed back
        channel_id = wallet.channel.terms.channel_id
        async with world.csms.store.transaction() as db:
            await db.execute(
                "INSERT INTO sessions (charge_point, transaction_id, channel_id, energy_wh, "
                "paid) VALUES (?, ?, ?, 1, 900)",
                (*other, channel_id),
            )
            await db.execute("INSERT INTO bills VALUES (?, ?, 1, 1, 360)", other)
            await db.execute(
                "INSERT INTO refunds (charge_point, transaction_id, amount, state) "
                "VALUES (?, ?, 540, 'owed')",
                other,
            )
        refunds = _refunder(world, ledger)
        assert not await refunds.pay(KEY)  # recorded, its answer lost
        ledger.fail(SESSION_KEY, "input_spent")
        assert await refunds.pay(other)
        assert not await refunds.pay(KEY)  # failed for good: attempt 1 next
        assert await refunds.pay(KEY)
        assert len({key for _, _, key in sent}) == 3
        assert len(ledger.paid()) == 2  # each session's 540, once
        token_key = unbind_refund_key(channel_id, "CARD-X", 5)
        assert attempt_key(token_key, 1) != unbind_refund_key(channel_id, "CARD-X/5/attempt", 1)
        assert _states(tmp_path / "csms.sqlite") == []

    run(tmp_path, body)


def test_the_first_attempt_keeps_the_refund_key() -> None:
    assert attempt_key(SESSION_KEY, 0) == SESSION_KEY
    keys = {attempt_key(SESSION_KEY, n) for n in range(MAX_ATTEMPTS)}
    assert len(keys) == MAX_ATTEMPTS
    assert attempt_key(SESSION_KEY, 2) == b"tanglepay/charging/refund-attempt/2/" + SESSION_KEY


@pytest.mark.slow  # about 15 s: two rounds of 2 x 1,000 failing refunds
def test_a_batch_full_of_stuck_refunds_still_reaches_a_new_one(tmp_path: Path) -> None:
    """A batch's worth (`PrepaidRefunds.batch`, `BATCH` here: the rule is the same at
    `MAX_OWED_BATCH`, and `MAX_OWED_BATCH` rows took most of the test's time limit on loaded
    cores) of older refunds of sessions and as many to a channel whose transfers never confirm
    (each round: not confirmed in time), then a new refund of each kind: the first round reads
    only the stuck ones; the second reads the new ones first (tried least often) and pays them.
    Before, the stuck rows filled every batch: the new ones were never read."""
    sent: list[Sent] = []

    async def body(world: World) -> None:
        channel_id = (await world.driver(("CP-OLD", "0"))).channel.terms.channel_id
        stuck = [("CP-OLD", str(n)) for n in range(BATCH)]
        async with world.csms.store.transaction() as db:
            await db.executemany(
                "INSERT INTO sessions (charge_point, transaction_id, channel_id, energy_wh, "
                "paid) VALUES (?, ?, ?, 1, 900)",
                [(*key, channel_id) for key in stuck],
            )
            await db.executemany("INSERT INTO bills VALUES (?, ?, 1, 1, 360)", stuck)
            await db.executemany(
                "INSERT INTO refunds (charge_point, transaction_id, amount, state) "
                "VALUES (?, ?, 540, 'owed')",
                stuck,
            )
            await db.executemany(
                "INSERT INTO token_refunds (id_token, channel_id, amount, state) "
                "VALUES ('OLD', ?, 300, 'owed')",
                [(channel_id,)] * BATCH,
            )
        pending = {REFUND_KEY + f"{cp}/{tx}".encode() for cp, tx in stuck}
        pending |= {unbind_refund_key(channel_id, "OLD", n + 1) for n in range(BATCH)}
        ledger = WalletRules(sent, pending=pending)
        wallet = await _billed_prepaid(world, "CARD-N", 900, 1_200)  # new: 540 owed back
        await _owe_small(world, wallet, "CARD-M", 450)  # new: 450 owed to its channel
        refunds = dataclasses.replace(_refunder(world, ledger), batch=BATCH)
        assert await refunds.retry() == 0  # only stuck ones read
        assert len(sent) == 2 * BATCH
        assert await refunds.retry() == 2  # the new ones first
        new_key = unbind_refund_key(wallet.channel.terms.channel_id, "CARD-M", BATCH + 1)
        to = address_of(DRIVER.public_key)
        assert ledger.paid() == [(to, 540, SESSION_KEY), (to, 450, new_key)]

    run(tmp_path, body)


def test_the_upgrade_from_version_1_keeps_every_row_and_its_key(tmp_path: Path) -> None:
    """A database version 1 left (its refund tables without `attempt` and `tries`), holding a
    session's refund `sending` (sent, its answer lost) and an unbound token's refund owed with
    its proof's sequence: opened by this version, every row is kept as it was (attempt 0, tried
    0), and the `sending` refund is finished under the key it was sent with (the wallet's
    recorded transfer: paid once)."""
    sent: list[Sent] = []
    ledger = WalletRules(sent, lost=1)
    path = tmp_path / "csms.sqlite"
    columns = "state, amount, charge_point || transaction_id"
    token_columns = "state, amount, id_token, channel_id, proof_sequence"

    async def before(world: World) -> None:
        wallet = await _billed_prepaid(world, "CARD-U", 900, 1_200)  # 540 owed back
        assert await _refunder(world, ledger).retry() == 0  # 540 sent, answer lost
        await _owe_small(world, wallet, "CARD-V", 40)  # below the minimum: stays owed

    run(tmp_path, before)
    as_version_1_left_it(path)
    writer = sqlite3.connect(path)
    try:
        writer.execute("UPDATE token_refunds SET proof_sequence = x'0000000000000007'")
        writer.commit()
        rows = writer.execute(f"SELECT {columns} FROM refunds").fetchall()
        token_rows = writer.execute(f"SELECT {token_columns} FROM token_refunds").fetchall()
    finally:
        writer.close()
    assert rows == [("sending", 540, "CP201T1")]
    assert [r[:3] for r in token_rows] == [("owed", 40, "CARD-V")]

    async def after(world: World) -> None:
        reader = sqlite3.connect(path)
        try:
            assert reader.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
            assert reader.execute(f"SELECT {columns}, attempt, tries FROM refunds").fetchall() == [
                (*rows[0], 0, 0)
            ]
            query = f"SELECT {token_columns}, attempt, tries FROM token_refunds"
            assert reader.execute(query).fetchall() == [(*token_rows[0], 0, 0)]
        finally:
            reader.close()
        assert await _refunder(world, ledger).retry() == 1
        assert [key for _, _, key in sent] == [SESSION_KEY, SESSION_KEY]  # its key kept
        assert ledger.paid() == [(address_of(DRIVER.public_key), 540, SESSION_KEY)]

    run(tmp_path, after)


async def test_the_real_wallet_s_conflicting_transfer_is_replaced_and_pays_once(
    tmp_path: Path,
) -> None:
    """On the wallet tests' node (trio): the refund's first attempt spends a coin another
    device of the same account spent first (its state had not seen it), so a milestone marks it
    conflicting, `input_spent`. The wallet's record says it can never apply; the next attempt,
    sent through `LedgerWallet` (which syncs first: the rival's change funds it), pays Bob once,
    and the first attempt still fails at every repeat: Bob holds the amount once."""
    to = address(BOB)
    async with (
        running(tmp_path) as h,
        open_wallet(h, tmp_path / "cpo.db") as cpo,
        open_wallet(h, tmp_path / "rival.db") as rival,
    ):
        await cpo.sync()
        await rival.sync()
        await rival.send(address(CAROL), 20_000, idempotency_key="rival")
        with pytest.raises(TransferFailedError, match="input_spent"):
            await cpo.send(to, 540, idempotency_key=SESSION_KEY)  # its state not synced
        assert never_applies(await cpo.transfer(SESSION_KEY))
        ledger = LedgerWallet(wallet=cpo)
        await ledger.send(to, 540, attempt_key(SESSION_KEY, 1), _claimed)
        with pytest.raises(TransferFailedError):
            await ledger.send(to, 540, SESSION_KEY, _claimed)
        await ledger.send(to, 540, attempt_key(SESSION_KEY, 1), _claimed)  # the same transfer
        assert await h.balance_of(to) == 540


async def test_the_real_wallet_s_abandoned_transfers_are_replaced_only_if_never_attached(
    tmp_path: Path,
) -> None:
    """The wallet's own record decides: a transfer signed and then abandoned before it reached
    a node (`Wallet.settle` after its lease) can never apply, while one attached, expired and
    then abandoned by its owner (`wallet.pending.abandon`) is on the tangle and may still
    apply if anyone attaches it again (its inputs are free): no next attempt for it."""
    quick = RetryPolicy(attempts=2, base_delay_s=0.001, max_delay_s=0.001)
    brief = WalletConfig(abandon_after_s=0.001, pow_threads=1)
    async with (
        running(tmp_path, tick_s=0.01) as h,
        open_wallet(h, tmp_path / "cpo.db", retry=quick) as cpo,
    ):
        await cpo.sync()
        h.refuse_tips = True  # signed and recorded, then the node is lost
        with pytest.raises(NodeUnavailableError):
            await cpo.send(address(BOB), 540, idempotency_key=b"never-attached")
        h.refuse_tips = False
        async with open_wallet(h, tmp_path / "cpo.db", config=brief) as janitor:
            await trio.sleep(0.01)
            await janitor.settle()
        assert never_applies(await cpo.transfer(b"never-attached"))
        await h.wait_for_index(10)  # the genesis is below max depth by now
        h.lazy_tips = 1  # its only attachment is never confirmed
        stuck = await cpo.send(address(BOB), 540, idempotency_key=b"attached", wait=False)
        assert stuck.last_cmi is not None
        await h.wait_for_index(stuck.last_cmi + CONFIG.expire_after)
        await cpo.settle()  # expired
        abandoned = await abandon(cpo, stuck, online=False)
        assert (abandoned.status, abandoned.failure) == (TransferStatus.FAILED, "abandoned")
        assert not never_applies(await cpo.transfer(b"attached"))


async def test_the_ledger_wallet_syncs_once_a_round_and_again_after_a_failed_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`LedgerWallet` syncs the real wallet before its first send, not before each refund of a
    round (before, a round of 2,000 refunds scanned the account 2,000 times), again once
    `sync_every_s` has passed, and again after a send that failed."""
    syncs = 0
    real_sync = Wallet.sync

    async def counted(self: Wallet) -> object:
        nonlocal syncs
        syncs += 1
        return await real_sync(self)

    monkeypatch.setattr(Wallet, "sync", counted)
    now = [0.0]
    to = address(BOB)
    async with running(tmp_path) as h, open_wallet(h, tmp_path / "cpo.db") as cpo:
        ledger = LedgerWallet(wallet=cpo, sync_every_s=10.0, clock=lambda: now[0])
        for n in range(3):
            await ledger.send(to, 500, b"round-1/%d" % n, _claimed)
        assert syncs == 1
        with pytest.raises(InsufficientFundsError):  # too much for its coins: nothing is sent
            await ledger.send(to, 10**15, b"round-1/too-much", _claimed)
        await ledger.send(to, 500, b"round-1/after-the-failure", _claimed)
        assert syncs == 2  # the send after the failure synced first
        now[0] = 10.0
        await ledger.send(to, 500, b"round-2/0", _claimed)
        assert syncs == 3
        assert await h.balance_of(to) == 2_500
