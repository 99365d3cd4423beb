"""Edges of the refunds (`refund`, `refund_rows`): rows an older version left, a refund whose
amount is fixed, concurrent payers of one bill (a second reader's findings on the bounded
refunds)."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

import pytest

from payments.charging.errors import StoreVersionError
from payments.charging.refund import REFUND_KEY, PrepaidRefunds, unbind_refund_key
from payments.charging.store import SCHEMA_VERSION, CsmsStore
from tangle.protocol.transaction import address_of

from .test_payment import DRIVER, World, run
from .test_refund import Sent, WalletRules, _billed_prepaid, _recorded, refunder
from .test_refund_bounds import KEY, _owe_small, as_an_older_version_left_it

if TYPE_CHECKING:
    from pathlib import Path

    from payments.charging.payment import DriverWallet
    from payments.charging.store import Binding


def test_a_refund_the_wallet_refuses_for_its_amount_is_owed_again_as_never_tried(
    tmp_path: Path,
) -> None:
    """A rest of 150 tried while the node's minimum is already 200 (the refunder still at 100):
    the wallet refuses it before recording anything, so it was never sent: owed again as never
    tried, and kept as the token's credit by a refunder at 200 (before, it stayed `sending`,
    refused at every retry for ever)."""

    async def body(world: World) -> None:
        wallet = await _billed_prepaid(world, "CARD-W", 900, 2_500)  # 150 owed back
        node = WalletRules(minimum=200)
        behind = PrepaidRefunds(payments=world.payments, wallet=node, min_amount=100)
        assert not await behind.pay(KEY)
        assert await world.csms.store.refunds.owed_refund(KEY) == (150, False)  # never tried
        caught_up = PrepaidRefunds(payments=world.payments, wallet=node, min_amount=200)
        assert await caught_up.pay(KEY)
        assert node.recorded == {}
        channel_id = wallet.channel.terms.channel_id
        assert await world.csms.store.token("CARD-W") == (channel_id, 150)

    run(tmp_path, body)


def test_a_refund_sent_before_the_minimum_rose_is_finished_by_its_recorded_transfer(
    tmp_path: Path,
) -> None:
    """A rest of 150 sent at a minimum of 100, its answer lost; the minimum is 200 by the retry:
    the wallet returns the transfer it recorded under the key (`Wallet.send`), and the refund
    is done: paid once, not credited too."""

    async def body(world: World) -> None:
        wallet = await _billed_prepaid(world, "CARD-X", 900, 2_500)  # 150 owed back
        node = WalletRules(minimum=100, lost=1)
        assert not await PrepaidRefunds(payments=world.payments, wallet=node, min_amount=100).pay(
            KEY
        )
        node.minimum = 200
        assert await PrepaidRefunds(payments=world.payments, wallet=node, min_amount=200).pay(KEY)
        assert [paid[:2] for paid in node.paid()] == [(address_of(DRIVER.public_key), 150)]
        assert await world.csms.store.refunds.owed_refund(KEY) is None
        channel_id = wallet.channel.terms.channel_id
        assert await world.csms.store.token("CARD-X") == (channel_id, 0)

    run(tmp_path, body)


def test_a_refund_an_older_version_left_owed_is_sent_again_as_it_was(tmp_path: Path) -> None:
    """An older version sent 540 and 450 and was killed before marking them paid: both rows
    are still `owed`, beside a small 40 owed to the same channel. Opened by this version, each
    is sent again at its own amount under its own key (the wallet pays a key once: a new amount
    under it is refused, and the refund and the 40 it took in stayed owed forever); the 40,
    never sent, is paid with the next refund to the channel."""
    sent: list[Sent] = []
    wallets: list[DriverWallet] = []

    async def before(world: World) -> None:
        wallet = await _billed_prepaid(world, "CARD-S", 900, 1_200)  # 540 owed back
        wallets.append(wallet)
        await _owe_small(world, wallet, "CARD-T", 40)  # row 1
        await _owe_small(world, wallet, "CARD-U", 450)  # row 2

    async def after(world: World) -> None:
        refunds = refunder(world, sent)
        assert await refunds.retry() == 2
        to, channel = address_of(DRIVER.public_key), wallets[0].channel.terms.channel_id
        assert sent == [  # before: 580 under the key of 540, and 450 not sent (or 490)
            (to, 540, REFUND_KEY + b"CP201/T1"),
            (to, 450, unbind_refund_key(channel, "CARD-U", 2)),
        ]
        owed = await world.csms.store.refunds.owed_token_refunds(0)
        assert [r[2:] for r in owed] == [("CARD-T", 40)]

    async def later(world: World) -> None:
        await _owe_small(world, wallets[0], "CARD-V", 200)  # row 3, owed by this version
        refunds = refunder(world, sent)
        assert await refunds.retry() == 1
        assert sent[2][1:] == (
            240,
            unbind_refund_key(wallets[0].channel.terms.channel_id, "CARD-V", 3),
        )
        assert await world.csms.store.refunds.owed_token_refunds(0) == []

    run(tmp_path, before)
    as_an_older_version_left_it(tmp_path / "csms.sqlite")
    run(tmp_path, after)
    run(tmp_path, later)


def test_a_small_refund_an_older_version_left_is_taken_as_sent_if_the_wallet_recorded_it(
    tmp_path: Path,
) -> None:
    """An older version sent a session's rest of 150 and 150 owed to the same channel at a
    minimum of 100 (their transfers are in the wallet) and was killed before marking them paid;
    120 more owed to the channel was never sent. The minimum is 200 when this version opens the
    database: all three are `maybe_sent` below it. The wallet's record of each key tells: the
    two recorded are resumed (paid once, the rest not credited to the token too, nothing taken
    in or merged), the one never recorded is refused for its amount before anything is recorded,
    so it is owed again as never sent. Before, all three were taken for never sent: the rest
    credited, the two small ones merged into 270 and sent again (150 paid twice, twice)."""
    ledger = WalletRules(minimum=200)
    to = address_of(DRIVER.public_key)
    keys: list[bytes] = []

    async def before(world: World) -> None:
        wallet = await _billed_prepaid(world, "CARD-O", 900, 2_500)  # 150 owed back
        await _owe_small(world, wallet, "CARD-P", 150)  # row 1
        await _owe_small(world, wallet, "CARD-Q", 120)  # row 2
        channel_id = wallet.channel.terms.channel_id
        keys.extend([REFUND_KEY + b"CP201/T1", unbind_refund_key(channel_id, "CARD-P", 1)])
        for key in keys:  # what the older version sent
            ledger.recorded[key] = _recorded(to, 150, key)

    async def after(world: World) -> None:
        refunds = PrepaidRefunds(payments=world.payments, wallet=ledger, min_amount=200)
        assert await refunds.retry() == 2
        assert await refunds.retry() == 0
        assert ledger.paid() == [(to, 150, key) for key in keys]  # the older version's, once
        [token] = [await world.csms.store.token("CARD-O")]
        assert token is not None
        assert token[1] == 0  # not credited too
        owed = await world.csms.store.refunds.owed_token_refunds(0)
        assert [r[2:] for r in owed] == [("CARD-Q", 120)]  # never sent: owed again
        assert await world.csms.store.refunds.owed_refund(KEY) is None

    run(tmp_path, before)
    as_an_older_version_left_it(tmp_path / "csms.sqlite")
    run(tmp_path, after)


def test_a_refund_whose_amount_is_fixed_is_sent_again_even_below_a_risen_minimum(
    tmp_path: Path,
) -> None:
    """A rest of 150 was tried at a minimum of 100 (the node did not answer: it may have been
    sent); the ledger's minimum is 200 by the retry. The rest is sent again under its key, never
    kept as the token's credit too (before, it was credited and its row deleted: paid twice if
    the first try went through)."""
    sent: list[Sent] = []

    async def body(world: World) -> None:
        wallet = await _billed_prepaid(world, "CARD-F", 900, 2_500)  # 150 owed back
        assert not await refunder(world, sent, [True]).pay(KEY)  # tried: 150, fixed
        risen = PrepaidRefunds(payments=world.payments, wallet=WalletRules(sent), min_amount=200)
        assert await risen.pay(KEY)
        assert sent == [(address_of(DRIVER.public_key), 150, REFUND_KEY + b"CP201/T1")]
        channel_id = wallet.channel.terms.channel_id
        assert await world.csms.store.token("CARD-F") == (channel_id, 0)  # not credited too

    run(tmp_path, body)


def test_an_amount_owed_to_a_channel_whose_amount_is_fixed_is_retried_below_a_risen_minimum(
    tmp_path: Path,
) -> None:
    """150 owed back to a channel was tried at a minimum of 100 (no answer); the minimum is 200
    by the retry: it is sent again at 150 under its key (before, it was never read again)."""
    sent: list[Sent] = []

    async def body(world: World) -> None:
        wallet = await world.driver(KEY)
        await _owe_small(world, wallet, "CARD-G", 150)
        assert await refunder(world, sent, [True]).retry() == 0  # tried: 150, fixed
        risen = PrepaidRefunds(payments=world.payments, wallet=WalletRules(sent), min_amount=200)
        assert await risen.retry() == 1
        channel_id = wallet.channel.terms.channel_id
        assert sent == [
            (address_of(DRIVER.public_key), 150, unbind_refund_key(channel_id, "CARD-G", 1))
        ]
        assert await world.csms.store.refunds.owed_token_refunds(0) == []

    run(tmp_path, body)


def test_two_payers_of_one_bill_send_its_refund_once(tmp_path: Path) -> None:
    """The bill's hook and the retry loop pay one refund at once; the second reads the row
    before the first deletes it and claims it after: it finds nothing owed and sends nothing
    (before, it sent 0 under the refund's used key)."""
    sent: list[Sent] = []

    async def body(world: World) -> None:
        await _billed_prepaid(world, "CARD-H", 900, 1_200)  # 540 owed back
        store = world.csms.store
        binding = store.binding
        paid = asyncio.Event()
        calls: list[tuple[str, str]] = []

        async def behind(key: tuple[str, str]) -> Binding | None:
            calls.append(key)
            if len(calls) == 2:  # the second payer waits here until the first is done
                await paid.wait()
            return await binding(key)

        store.binding = behind  # type: ignore[method-assign]
        refunds = refunder(world, sent)

        async def pay() -> bool:
            try:
                return await refunds.pay(KEY)
            finally:
                paid.set()

        assert sorted(await asyncio.gather(pay(), pay())) == [False, True]
        assert [amount for _, amount, _ in sent] == [540]

    run(tmp_path, body)


def test_a_store_whose_upgrade_fails_is_closed_and_its_database_left_as_it_was(
    tmp_path: Path,
) -> None:
    """A database the upgrade cannot bring to this version (here, the column it adds is there
    already) fails the opening: the upgrade is rolled back (its owed row still `owed`, the
    version still 0), and the store's connection is closed, not left open (its thread then kept
    the process from exiting)."""
    path = tmp_path / "csms.sqlite"
    writer = sqlite3.connect(path)
    try:
        writer.execute(
            "CREATE TABLE token_refunds (id INTEGER PRIMARY KEY AUTOINCREMENT, id_token TEXT "
            "NOT NULL, channel_id BLOB NOT NULL, amount INTEGER NOT NULL, state TEXT NOT NULL, "
            "proof_sequence BLOB)"
        )
        writer.execute("INSERT INTO token_refunds VALUES (1, 'CARD', x'00', 450, 'owed', NULL)")
        writer.commit()
    finally:
        writer.close()

    async def main() -> None:
        store = CsmsStore(path)
        with pytest.raises(sqlite3.OperationalError, match="duplicate column"):
            await store.__aenter__()
        with pytest.raises(RuntimeError, match="not open"):
            _ = store.db

    asyncio.run(main())
    reader = sqlite3.connect(path)
    try:
        assert reader.execute("SELECT state FROM token_refunds").fetchall() == [("owed",)]
        assert reader.execute("PRAGMA user_version").fetchone() == (0,)
    finally:
        reader.close()


def test_a_database_a_newer_version_wrote_is_not_opened(tmp_path: Path) -> None:
    """Its rows may hold states this version does not know (it would take them for done)."""
    path = tmp_path / "csms.sqlite"
    writer = sqlite3.connect(path)
    try:
        writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    finally:
        writer.close()

    async def main() -> None:
        newer = f"version {SCHEMA_VERSION + 1}; this CSMS knows {SCHEMA_VERSION}"
        with pytest.raises(StoreVersionError, match=newer):
            async with CsmsStore(path):
                pass

    asyncio.run(main())
