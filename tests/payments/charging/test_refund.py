"""A prepaid session's unused rest is paid back (`payments.charging.refund`).

The driver prepays 900 (3 kWh) and unplugs after 1.2 kWh at a real 2.0.1 charger (`ocpp` over
loopback): the CSMS bills 360 and its `PrepaidRefunds` hook sends 540 to the address of the
channel's payer key. The CSMS is on asyncio; the CPO's wallet pays through an in-process node
and coordinator (the wallet tests' harness, on trio), so the refund is a real transfer confirmed
on a real ledger: the driver's address holds exactly the rest, once, even when the refund is
sent again. A rest below the smallest output stays as the token's prepaid credit."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

import trio

from payments.charging.refund import (
    REFUND_KEY,
    UNBIND_REFUND_KEY,
    PrepaidRefunds,
    unbind_refund_key,
)
from payments.charging.refund_rows import RefundRows
from payments.charging.simulator import connect_charger
from tangle.protocol.transaction import address_of
from tests.wallet.test_client import open_wallet, running

from .test_payment import DRIVER, PASSWORD, World, _end, _meter, _start, run

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from payments.charging.payment import DriverWallet
    from tangle.protocol.ids import Address

Sent = tuple["Address", int, bytes]
MINIMUM = 100
"""The ledger's smallest output, as the refunders of these tests take it."""


def refunder(world: World, sent: list[Sent], down: list[bool] | None = None) -> PrepaidRefunds:
    """A refunder whose wallet records what it is asked to send in `sent`, or fails as a node
    that is down while `down` holds anything."""

    async def send(to: Address, amount: int, key: bytes) -> None:
        if down:
            raise ConnectionRefusedError("node down")
        sent.append((to, amount, key))

    return PrepaidRefunds(payments=world.payments, send=send, min_amount=MINIMUM)


def _prepaid_session(tmp_path: Path, prepay: int, used_wh: int, min_amount: int) -> list[Sent]:
    """Run a prepaid session on the CSMS; returns the refunds its hook asked the wallet for."""
    asked: list[Sent] = []

    async def send(to: Address, amount: int, key: bytes) -> None:
        asked.append((to, amount, key))

    async def body(world: World) -> None:
        refunds = PrepaidRefunds(payments=world.payments, send=send, min_amount=min_amount)
        world.csms.on_bill.append(refunds)
        async with connect_charger(world.url, "CP201", PASSWORD, "2.0.1") as charger:
            wallet = await world.driver(("CP201", "T1"))
            await world.bind(wallet, "CARD-R")
            await world.payments.prepay("CARD-R", wallet.channel.pay(prepay))
            key = await _start(charger, "CARD-R", 0)
            await _meter(charger, key, 1, used_wh // 2)
            await _end(charger, key, 2, used_wh)  # unplugged before the prepaid energy
        for _ in range(200):  # the hook runs after the charger's answer
            credit = await world.csms.store.token("CARD-R")
            if asked or (credit is not None and credit[1] > 0):
                break
            await asyncio.sleep(0.01)
        [bill] = await world.csms.store.bills()
        assert bill.amount == used_wh * 300 // 1000
        if min_amount > prepay - bill.amount:
            assert await world.csms.store.token("CARD-R") == (
                wallet.channel.terms.channel_id,
                prepay - bill.amount,
            )

    run(tmp_path, body)
    return asked


def test_the_unused_rest_of_a_prepaid_session_is_paid_back_on_the_ledger(tmp_path: Path) -> None:
    for sub in ("csms", "node"):
        (tmp_path / sub).mkdir()
    [(to, amount, key)] = _prepaid_session(tmp_path / "csms", 900, 1_200, min_amount=100)
    assert to == address_of(DRIVER.public_key)
    assert amount == 900 - 360
    assert key == REFUND_KEY + b"CP201/T1"

    async def pay_back() -> int:
        async with (
            running(tmp_path / "node") as node,
            open_wallet(node, tmp_path / "cpo-wallet.db") as cpo,
        ):
            await cpo.sync()
            first = await cpo.send(to, amount, idempotency_key=key)
            again = await cpo.send(to, amount, idempotency_key=key)  # a retried refund
            assert again.transaction_id == first.transaction_id
            return await node.balance_of(to)

    assert trio.run(pay_back) == 540


def test_a_rest_below_the_smallest_output_stays_as_prepaid_credit(tmp_path: Path) -> None:
    assert _prepaid_session(tmp_path, 450, 1_400, min_amount=100) == []  # 450 - 420 = 30


async def _billed_prepaid(world: World, token: str, prepay: int, used_wh: int) -> DriverWallet:
    """A prepaid session of `used_wh` on CP201, billed, with no refund hook (the CSMS crashed
    right after the bill); the driver's wallet."""
    async with connect_charger(world.url, "CP201", PASSWORD, "2.0.1") as charger:
        wallet = await world.driver(("CP201", "T1"))
        await world.bind(wallet, token)
        await world.payments.prepay(token, wallet.channel.pay(prepay))
        key = await _start(charger, token, 0)
        await _end(charger, key, 1, used_wh)
    assert await world.csms.store.bill_of(("CP201", "T1")) is not None
    return wallet


def test_a_refund_lost_to_a_crash_or_a_down_node_is_paid_by_the_retry(tmp_path: Path) -> None:
    asked: list[Sent] = []
    down = [True]

    async def body(world: World) -> None:
        await _billed_prepaid(world, "CARD-C", 900, 1_200)  # owes 540 back
        refunds = refunder(world, asked, down)
        assert await world.csms.store.refunds.owed_refunds() == [(("CP201", "T1"), 540)]
        assert await refunds.retry() == 0  # the node is down: still owed
        assert await world.csms.store.refunds.owed_refunds() == [(("CP201", "T1"), 540)]
        down.clear()
        async with refunds.retrying():  # pays the owed refund at once
            for _ in range(200):
                if asked:
                    break
                await asyncio.sleep(0.01)
        assert asked == [(address_of(DRIVER.public_key), 540, REFUND_KEY + b"CP201/T1")]
        assert await world.csms.store.refunds.owed_refunds() == []
        assert await refunds.retry() == 0  # paid: never sent again
        [bill] = await world.csms.store.bills()
        await refunds(bill)  # the hook again (a replayed bill)
        assert len(asked) == 1

    run(tmp_path, body)


def test_a_rest_kept_as_credit_is_credited_once_per_session(tmp_path: Path) -> None:
    async def send(to: Address, amount: int, key: bytes) -> None:
        raise AssertionError("a rest below the smallest output is not sent")

    async def body(world: World) -> None:
        await _billed_prepaid(world, "CARD-K", 450, 1_400)  # 450 - 420 = 30
        refunds = PrepaidRefunds(payments=world.payments, send=send, min_amount=100)
        [bill] = await world.csms.store.bills()
        await refunds(bill)
        await refunds(bill)
        assert await refunds.retry() == 0
        bound = await world.csms.store.token("CARD-K")
        assert bound is not None
        assert bound[1] == 30

    run(tmp_path, body)


def test_a_store_error_leaves_the_refund_owed_and_the_refunder_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Sent] = []

    async def send(to: Address, amount: int, key: bytes) -> None:
        asked.append((to, amount, key))

    async def body(world: World) -> None:
        await _billed_prepaid(world, "CARD-E", 900, 1_200)  # owes 540 back
        refunds = PrepaidRefunds(payments=world.payments, send=send, min_amount=100)
        store = world.csms.store

        async def failing(rows: RefundRows, key: tuple[str, str]) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(RefundRows, "refund_paid", failing)
        assert not await refunds.pay(("CP201", "T1"))  # logged, not raised
        assert await store.refunds.owed_refunds() == [(("CP201", "T1"), 540)]  # the retry pays it
        assert len(asked) == 1  # the same key again next time: the ledger pays it once

    run(tmp_path, body)


def test_a_token_unbound_with_a_prepaid_amount_has_it_paid_back_once(tmp_path: Path) -> None:
    """The operator unbinds a token that still holds a prepaid amount: the amount is owed to
    the channel's payer from the unbinding's commit on, and the refunder pays it (once, after a
    failed try), as it pays sessions' rests; an amount below the smallest output stays owed."""
    asked: list[Sent] = []
    down = [True]

    async def body(world: World) -> None:
        wallet = await world.driver(("CP201", "T1"))
        await world.bind(wallet, "CARD-U")
        await world.payments.prepay("CARD-U", wallet.channel.pay(450))
        small = await world.driver(("CP201", "T2"), deposit=90_000)
        await world.bind(small, "CARD-S")
        await world.payments.prepay("CARD-S", small.channel.pay(40))
        assert await world.payments.unbind("CARD-U") == 450
        assert await world.payments.unbind("CARD-S") == 40
        assert await world.payments.unbind("CARD-U") is None
        store = world.csms.store
        [(first, *owed_first), (_, *owed_second)] = await store.refunds.owed_token_refunds()
        assert owed_first == [wallet.channel.terms.channel_id, "CARD-U", 450]
        assert owed_second == [small.channel.terms.channel_id, "CARD-S", 40]
        refunds = refunder(world, asked, down)
        assert await refunds.retry() == 0  # the node is down: still owed
        down.clear()
        assert await refunds.retry() == 1
        channel = wallet.channel.terms.channel_id
        key = UNBIND_REFUND_KEY + channel.hex().encode() + b"/CARD-U/" + str(first).encode()
        assert asked == [(address_of(DRIVER.public_key), 450, key)]
        assert await refunds.retry() == 0  # paid: never sent again
        assert len(asked) == 1
        assert [r[3] for r in await store.refunds.owed_token_refunds(0)] == [40]  # below 100: owed

    run(tmp_path, body)


def test_unbound_token_refunds_of_two_databases_sharing_a_wallet_have_different_keys() -> None:
    """Refund ids restart at 1 in every CSMS database; two of them paying from one CPO wallet
    must not share an idempotency key (the wallet would answer the second with the first's
    transfer and that driver would never be paid): the key holds the channel and the token."""
    first = unbind_refund_key(b"\x01" * 32, "CARD-A", 1)
    other_db = unbind_refund_key(b"\x02" * 32, "CARD-B", 1)
    same_channel_other_token = unbind_refund_key(b"\x01" * 32, "CARD-B", 1)
    assert len({first, other_db, same_channel_other_token}) == 3
    assert unbind_refund_key(b"\x01" * 32, "CARD-A", 1) == first  # a retry: the same key
    assert first.startswith(UNBIND_REFUND_KEY)
