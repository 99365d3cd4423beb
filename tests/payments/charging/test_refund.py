"""A prepaid session's unused rest is paid back (`payments.charging.refund`).

The driver prepays 900 (3 kWh) and unplugs after 1.2 kWh at a real 2.0.1 charger (`ocpp` over
loopback): the CSMS bills 360 and its `PrepaidRefunds` hook sends 540 to the address of the
channel's payer key. The CSMS is on asyncio; the CPO's wallet pays through an in-process node
and coordinator (the wallet tests' harness, on trio), so the refund is a real transfer confirmed
on a real ledger: the driver's address holds exactly the rest, once, even when the refund is
sent again. A rest below the smallest output stays as the token's prepaid credit."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from typing import TYPE_CHECKING

import trio

from payments.charging.errors import RefundReleasedError
from payments.charging.refund import (
    REFUND_KEY,
    UNBIND_REFUND_KEY,
    PrepaidRefunds,
    unbind_refund_key,
)
from payments.charging.refund_rows import RefundRows
from payments.charging.simulator import connect_charger
from tangle.protocol.ids import OutputId, TransactionId, blake2b_256
from tangle.protocol.transaction import address_of
from tests.builders import key as signing_key
from tests.builders import transfer as signed_transfer
from tests.wallet.test_client import open_wallet, running
from wallet.errors import (
    AmountError,
    IdempotencyConflictError,
    TransferFailedError,
    TransferTimeoutError,
)
from wallet.idempotency import idempotency_hash
from wallet.records import Attachment, Transfer, TransferStatus

from .test_payment import DRIVER, PASSWORD, World, _end, _meter, _start, run

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Container, Sequence
    from pathlib import Path

    import pytest

    from payments.charging.payment import DriverWallet
    from tangle.protocol.ids import Address

Sent = tuple["Address", int, bytes]
MINIMUM = 100
"""The ledger's smallest output, as the refunders of these tests take it."""


_PAYER = signing_key(7)


class WalletRules:
    """A `refund_attempts.RefundWallet` with the wallet's rules (`Wallet.send`,
    `Wallet.transfer`): a key it recorded is answered with its transfer whatever the minimum is
    now (another amount or recipient under it: `IdempotencyConflictError`), and one whose
    transfer failed raises `TransferFailedError` at every repeat; a new key below `minimum` is
    refused (`AmountError`) before anything is recorded. Each send it takes is appended to
    `sent`; while `down` holds anything the node is down (nothing recorded); `lost` answers are
    lost after recording (the node timed out); the transfers under the keys in `pending` never
    confirm (`TransferTimeoutError` at every send). A recorded transfer is confirmed until
    `fail`, or, with `fail_new`, fails for that reason at once (a milestone marked it
    conflicting). As `LedgerWallet`, it records a transfer (after `syncing` is set, if given:
    its sync), then asks `claimed()`, and attaches nothing if the refund is no longer claimed
    (`RefundReleasedError`; a new transfer then stays signed, never attached)."""

    def __init__(
        self,
        sent: list[Sent] | None = None,
        *,
        minimum: int = 0,
        down: list[bool] | None = None,
        lost: int = 0,
        pending: Container[bytes] = (),
        fail_new: str | None = None,
        syncing: asyncio.Event | None = None,
    ) -> None:
        self.sent = [] if sent is None else sent
        self.minimum = minimum
        self.down = [] if down is None else down
        self.lost = lost
        self.pending = pending
        self.fail_new = fail_new
        self.syncing = syncing
        self.entered = asyncio.Event()
        """Set once a send waits for `syncing`: its refund is claimed."""
        self.recorded: dict[bytes, Transfer] = {}

    async def send(
        self, to: Address, amount: int, key: bytes, claimed: Callable[[], Awaitable[bool]], /
    ) -> Transfer:
        if self.down:
            raise ConnectionRefusedError("node down")
        if self.syncing is not None:
            self.entered.set()
            await self.syncing.wait()
        transfer = self.recorded.get(key)
        if transfer is None and amount >= self.minimum and not await claimed():
            self.recorded[key] = dataclasses.replace(  # recorded, then abandoned (no node saw it)
                _recorded(to, amount, key),
                status=TransferStatus.FAILED,
                failure="abandoned",
                attachments=(),
                confirmed_index=None,
            )
            raise RefundReleasedError(key)
        if transfer is None:
            if amount < self.minimum:
                raise AmountError(amount, self.minimum)
            transfer = self.recorded[key] = _recorded(to, amount, key)
            if key in self.pending:
                transfer = self.recorded[key] = dataclasses.replace(
                    transfer, status=TransferStatus.SUBMITTED, confirmed_index=None
                )
            if self.fail_new is not None:
                self.fail(key, self.fail_new)
                transfer = self.recorded[key]
        self.sent.append((to, amount, key))
        if (transfer.recipient, transfer.amount) != (to, amount):
            raise IdempotencyConflictError(transfer.transaction_id.hex())
        if not await claimed():
            raise RefundReleasedError(key)
        if transfer.status is TransferStatus.SIGNED:  # resumed: attached, and it confirms
            transfer = self.recorded[key] = _recorded(to, amount, key)
        if transfer.status is TransferStatus.FAILED:
            raise TransferFailedError(transfer.transaction_id.hex(), transfer.failure or "")
        if self.lost:
            self.lost -= 1
            raise ConnectionRefusedError("no answer")
        if key in self.pending:
            raise TransferTimeoutError(transfer.transaction_id.hex(), 1.0)
        return transfer

    async def transfer(self, key: bytes, /) -> Transfer | None:
        return self.recorded.get(key)

    async def spenders(self, inputs: Sequence[OutputId], /) -> dict[OutputId, bytes]:
        spent = {
            output_id: t.key_hash
            for t in self.recorded.values()
            if t.status is TransferStatus.CONFIRMED
            for output_id in t.inputs
        }
        return {output_id: spent[output_id] for output_id in inputs if output_id in spent}

    def spend_input_of(self, key: bytes, by: bytes) -> None:
        """A confirmed transfer under key `by` spent the input of the transfer under `key`."""
        [spent] = self.recorded[key].inputs
        to = self.recorded[key].recipient
        tx = signed_transfer([(spent, _PAYER)], [(to, 1)])
        self.recorded[by] = dataclasses.replace(_recorded(to, 1, by), transaction=tx)

    def fail(self, key: bytes, reason: str, *, attached: bool = True) -> None:
        """The transfer under `key` failed for good (`reason`, as the wallet records it),
        after an attachment or before any."""
        attachments = (Attachment(sequence=0, message_id=None, raw=None, cmi=1, at_ms=0),)
        self.recorded[key] = dataclasses.replace(
            self.recorded[key],
            status=TransferStatus.FAILED,
            failure=reason,
            attachments=attachments if attached else (),
            confirmed_index=None,
        )

    def paid(self) -> list[tuple[Address, int, bytes]]:
        """What the ledger paid: the confirmed transfers, (recipient, amount, key)."""
        return [
            (t.recipient, t.amount, key)
            for key, t in self.recorded.items()
            if t.status is TransferStatus.CONFIRMED
        ]


def _recorded(to: Address, amount: int, key: bytes) -> Transfer:
    """A confirmed transfer of `amount` to `to` under `key`, with an input of its own."""
    spent = OutputId.of(TransactionId(blake2b_256(key)), 0)
    tx = signed_transfer([(spent, _PAYER)], [(to, amount)])
    return Transfer(
        key_hash=idempotency_hash(key),
        idempotency_key=key,
        transaction=tx,
        recipient=to,
        amount=amount,
        nonce=0,
        status=TransferStatus.CONFIRMED,
        attachments=(Attachment(sequence=0, message_id=None, raw=None, cmi=1, at_ms=0),),
        confirmed_index=2,
        failure=None,
        created_ms=0,
        updated_ms=0,
    )


def refunder(world: World, sent: list[Sent], down: list[bool] | None = None) -> PrepaidRefunds:
    """A refunder whose wallet (`WalletRules`, at the refunder's minimum) appends what it is
    asked to send to `sent`, or fails as a node that is down while `down` holds anything."""
    wallet = WalletRules(sent, minimum=MINIMUM, down=down)
    return PrepaidRefunds(payments=world.payments, wallet=wallet, min_amount=MINIMUM)


def _prepaid_session(tmp_path: Path, prepay: int, used_wh: int, min_amount: int) -> list[Sent]:
    """Run a prepaid session on the CSMS; returns the refunds its hook asked the wallet for."""
    asked: list[Sent] = []

    async def body(world: World) -> None:
        wallet = WalletRules(asked)
        refunds = PrepaidRefunds(payments=world.payments, wallet=wallet, min_amount=min_amount)
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
    asked: list[Sent] = []

    async def body(world: World) -> None:
        await _billed_prepaid(world, "CARD-K", 450, 1_400)  # 450 - 420 = 30
        refunds = refunder(world, asked)
        [bill] = await world.csms.store.bills()
        await refunds(bill)
        await refunds(bill)
        assert await refunds.retry() == 0
        assert asked == []  # a rest below the smallest output is not sent
        bound = await world.csms.store.token("CARD-K")
        assert bound is not None
        assert bound[1] == 30

    run(tmp_path, body)


def test_a_store_error_leaves_the_refund_owed_and_the_refunder_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Sent] = []

    async def body(world: World) -> None:
        await _billed_prepaid(world, "CARD-E", 900, 1_200)  # owes 540 back
        refunds = refunder(world, asked)
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
