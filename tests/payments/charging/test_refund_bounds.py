"""The refund tables stay bounded and no payable amount is owed forever (`refund_rows`).

A refund paid (or a small rest kept as credit) leaves no row, and rows older versions left
`paid` or `credited` are deleted when the store opens: before, every refund stayed as a row
forever. Amounts below the ledger's smallest output owed to one channel are paid once what the
channel is owed reaches it: with the next refund to that channel, or merged together. Before,
each stayed owed forever. A refund's amount is fixed at its first try, so a retry after a failed
send pays the same amount under the same key (the wallet pays a key once)."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

from payments.charging.refund import REFUND_KEY, unbind_refund_key
from tangle.protocol.transaction import address_of

from .old_databases import as_version_1_left_it, open_and_close
from .test_payment import DRIVER, World, run
from .test_refund import Sent, _billed_prepaid, refunder

if TYPE_CHECKING:
    from pathlib import Path

    from payments.charging.payment import DriverWallet

KEY = ("CP201", "T1")


def _rows(path: Path) -> tuple[int, int]:
    """(rows of `refunds`, rows of `token_refunds`), as another connection reads them."""
    reader = sqlite3.connect(path)
    try:
        (refunds,) = reader.execute("SELECT count(*) FROM refunds").fetchone()
        (token_refunds,) = reader.execute("SELECT count(*) FROM token_refunds").fetchone()
    finally:
        reader.close()
    return int(refunds), int(token_refunds)


async def _owe_small(world: World, wallet: DriverWallet, token: str, amount: int) -> None:
    """`amount` owed back to `wallet`'s channel: prepaid through `token`, then unbound."""
    await world.bind(wallet, token)
    await world.payments.prepay(token, wallet.channel.pay(amount))
    assert await world.payments.unbind(token) == amount


def test_refunds_paid_or_credited_leave_no_rows(tmp_path: Path) -> None:
    sent: list[Sent] = []

    async def body(world: World) -> None:
        wallet = await _billed_prepaid(world, "CARD-P", 900, 1_200)  # 540 owed back
        await _owe_small(world, wallet, "CARD-Q", 450)
        refunds = refunder(world, sent)
        assert _rows(tmp_path / "csms.sqlite") == (1, 1)
        assert await refunds.retry() == 2
        assert [amount for _, amount, _ in sent] == [540, 450]
        assert _rows(tmp_path / "csms.sqlite") == (0, 0)  # before: two rows marked paid, kept

    run(tmp_path, body)


def as_an_older_version_left_it(path: Path) -> None:
    """The file at `path` as a version before the `sending` state left it: its schema version 0
    (its unpaid refund rows are `owed`, as the tests' bodies left them; its 1.6 transaction
    ids as version 2 still kept them)."""
    as_version_1_left_it(path)
    writer = sqlite3.connect(path)
    try:
        writer.executescript(
            "DROP INDEX token_refunds_proof; ALTER TABLE token_refunds DROP COLUMN proof_sequence; "
            "PRAGMA user_version = 0"
        )
    finally:
        writer.close()


def test_refund_rows_left_done_by_older_versions_are_deleted_at_open(tmp_path: Path) -> None:
    path = tmp_path / "csms.sqlite"
    asyncio.run(open_and_close(path))
    writer = sqlite3.connect(path)
    with writer:
        writer.executemany(
            "INSERT INTO refunds (charge_point, transaction_id, amount, state) VALUES (?, ?, ?, ?)",
            [("CP", "1", 5, "paid"), ("CP", "2", 6, "credited"), ("CP", "3", 7, "owed")],
        )
        writer.executemany(
            "INSERT INTO token_refunds (id_token, channel_id, amount, state) VALUES (?, ?, ?, ?)",
            [("A", b"\x01" * 32, 8, "paid"), ("B", b"\x01" * 32, 9, "owed")],
        )
    writer.close()
    as_an_older_version_left_it(path)  # those versions' rows are pruned by the upgrade, once
    asyncio.run(open_and_close(path))
    reader = sqlite3.connect(path)
    try:
        assert reader.execute("SELECT amount FROM refunds").fetchall() == [(7,)]
        assert reader.execute("SELECT amount FROM token_refunds").fetchall() == [(9,)]
    finally:
        reader.close()


def test_small_amounts_owed_to_a_channel_are_paid_once_they_reach_the_minimum(
    tmp_path: Path,
) -> None:
    """40 and 30 owed to one channel (below the minimum of 100): merged into one row of 70, not
    sent; 35 more: one transfer of 105 pays all three, once."""
    sent: list[Sent] = []

    async def body(world: World) -> None:
        wallet = await world.driver(KEY)
        other = await world.driver(("CP201", "T2"), deposit=90_000)
        await _owe_small(world, other, "CARD-O", 20)  # another channel's: never mixed in
        refunds = refunder(world, sent)
        await _owe_small(world, wallet, "CARD-1", 40)
        await _owe_small(world, wallet, "CARD-2", 30)
        assert await refunds.retry() == 0
        owed = await world.csms.store.refunds.owed_token_refunds(0)
        assert sorted(r[3] for r in owed) == [20, 70]  # one row per channel
        await _owe_small(world, wallet, "CARD-3", 35)
        assert await refunds.retry() == 1
        [(to, amount, key)] = sent
        assert (to, amount) == (address_of(DRIVER.public_key), 105)
        channel_id = wallet.channel.terms.channel_id
        assert key == unbind_refund_key(channel_id, "CARD-3", 6)  # rows 2 + 3 -> 4, 4 + 5 -> 6
        assert await refunds.retry() == 0  # paid: never sent again
        owed = await world.csms.store.refunds.owed_token_refunds(0)
        assert [r[3] for r in owed] == [20]
        assert _rows(tmp_path / "csms.sqlite") == (0, 1)

    run(tmp_path, body)


def test_a_small_amount_is_paid_with_the_next_refund_to_its_channel(tmp_path: Path) -> None:
    """40 owed to a channel, then a session on that channel leaves 540: one transfer of 580.
    Its first try fails; 30 more owed to the channel meanwhile wait for the next refund: the
    retry sends 580 again under the same key (a refund's amount is fixed at its first try)."""
    sent: list[Sent] = []
    down = [True]

    async def body(world: World) -> None:
        wallet = await _billed_prepaid(world, "CARD-S", 900, 1_200)  # 540 owed back
        await _owe_small(world, wallet, "CARD-T", 40)
        refunds = refunder(world, sent, down)
        assert not await refunds.pay(KEY)  # the node is down: 540 + 40 claimed, not sent
        await _owe_small(world, wallet, "CARD-U", 30)
        down.clear()
        assert await refunds.pay(KEY)
        assert sent == [(address_of(DRIVER.public_key), 580, REFUND_KEY + b"CP201/T1")]
        owed = await world.csms.store.refunds.owed_token_refunds(0)
        assert [r[2:] for r in owed] == [("CARD-U", 30)]
        assert _rows(tmp_path / "csms.sqlite") == (0, 1)

    run(tmp_path, body)
