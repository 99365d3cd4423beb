"""A payment is one commit (`payments.charging.channel_rows`): the channel's new proof and the
session's paid amount are durable together or not at all. Before, the cashier's channel store
committed the proof and the CSMS's store then counted it in a second commit; a CSMS dying
between the two kept the driver's proof without counting it (the resent proof was stale, the
session owed it again). Here the commit fails between the two statements (a sqlite trigger
aborts the paid amount's update), and a CSMS process is SIGKILLed while paying."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from payments.channels.core import PayerChannel
from payments.channels.state import ChannelState, Role
from payments.channels.store import ChannelRecord, ChannelStore, row_record
from payments.charging.channel_rows import CsmsChannels, paying_for
from payments.charging.session import EventKind, TransactionEvent
from payments.charging.store import CsmsStore
from payments.errors import StoreError
from payments.payperuse.receipt import ReceiptKind
from tests.payments.charging.test_payment import CPO, DRIVER, TARIFF, World, run
from tests.unit_test_funder import UnitTestOnlyFunder

if TYPE_CHECKING:
    from payments.charging.csms import Csms
    from payments.charging.payment import DriverWallet

ROOT = Path(__file__).resolve().parents[3]
KEY = ("CP201", "T1")
TOKEN = "CARD-C"
DEPOSIT = 100_000
T0 = 1_780_000_000
STEP_WH = 100  # 30 per step
_ABORT_PAID = """
    CREATE TRIGGER crash_before_paid BEFORE UPDATE OF paid ON sessions
    BEGIN SELECT RAISE(ABORT, 'the CSMS died here'); END"""


def _event(kind: EventKind, seq: int, wh: int) -> TransactionEvent:
    return TransactionEvent(
        charge_point=KEY[0],
        transaction_id=KEY[1],
        seq_no=seq,
        kind=kind,
        timestamp_s=T0 + 60 * seq,
        register_wh=wh,
        id_token=TOKEN if kind is EventKind.STARTED else None,
    )


async def _started(world: World) -> DriverWallet:
    wallet = await world.driver(KEY, DEPOSIT)
    await world.bind(wallet, TOKEN)
    assert await world.csms.start(_event(EventKind.STARTED, 0, 0))
    return wallet


async def _metered(csms: Csms, wallet: DriverWallet, seq: int) -> None:
    await csms.event(_event(EventKind.UPDATED, seq, STEP_WH * seq))
    wallet.observe(STEP_WH * seq, 0)


def _durable(db: Path) -> tuple[int, int]:
    """(the session's paid amount, the channel's payee balance) as a restarted CSMS reads them."""
    con = sqlite3.connect(db)
    try:
        (paid,) = con.execute(
            "SELECT paid FROM sessions WHERE charge_point = ? AND transaction_id = ?", KEY
        ).fetchone()
        rows = con.execute(
            "SELECT channel_id, role, terms, state, sequence, proof FROM channels WHERE role = ?",
            (int(Role.PAYEE),),
        ).fetchall()
    finally:
        con.close()
    records: list[ChannelRecord] = [row_record(tuple(r)) for r in rows]
    balances = [r.latest.proof.payee_balance for r in records if r.latest is not None]
    return int(paid), sum(balances)


def test_a_payment_whose_commit_fails_midway_takes_nothing_and_is_taken_when_sent_again(
    tmp_path: Path,
) -> None:
    async def body(world: World) -> None:
        wallet = await _started(world)
        await _metered(world.csms, wallet, 1)
        await world.pay_due(wallet, KEY)
        store = world.csms.store
        async with store.write_lock:
            await store.db.execute(_ABORT_PAID)
            await store.db.commit()
        await _metered(world.csms, wallet, 2)
        proof = wallet.settle(await world.payments.invoice(KEY))
        assert proof is not None
        with pytest.raises(StoreError):
            await world.payments.pay(KEY, proof)
        assert _durable(tmp_path / "csms.sqlite") == (30, 30)  # neither the proof nor the count
        assert world.csms.book.sessions[KEY].paid == 30
        held = world.payments.cashier.service.held(proof.proof.channel_id)
        assert held is not None
        assert held.payee_balance == 30  # nor in memory
        async with store.write_lock:
            await store.db.execute("DROP TRIGGER crash_before_paid")
            await store.db.commit()
        receipt = await world.payments.pay(KEY, proof)  # the same proof again: taken now
        wallet.check(receipt)
        assert receipt.kind is ReceiptKind.METERED
        assert receipt.cumulative_amount == 60
        assert _durable(tmp_path / "csms.sqlite") == (60, 60)
        assert world.csms.book.sessions[KEY].paid == 60

    run(tmp_path, body)


def paying_csms(directory: str) -> None:
    """The child process: a CSMS whose driver meters and pays in a loop, printing `metered N`
    and `paid N AMOUNT` (after the receipt) until it is killed."""

    async def body(world: World) -> None:
        wallet = await _started(world)
        for seq in range(1, 10_000):
            await _metered(world.csms, wallet, seq)
            print(f"metered {seq}", flush=True)
            await world.pay_due(wallet, KEY)
            print(f"paid {seq} {wallet.meter.paid}", flush=True)

    run(Path(directory), body)


@pytest.mark.parametrize(("kill_after", "delay_s"), [(3, 0.003), (4, 0.007), (5, 0.011)])
def test_a_csms_sigkilled_while_paying_has_counted_every_proof_it_kept(
    tmp_path: Path, kill_after: int, delay_s: float
) -> None:
    """Killed a few ms after a meter value, with the payment that follows in flight (its group
    commit waits `GROUP_WINDOW_S`, then syncs: the delays land before, in and after it; two
    commits per payment fail here): the restarted CSMS's session has paid exactly what the
    channel's durable proof pays, at least every receipt the driver got, and the driver's next
    payment goes on from there."""
    code = f"from {__name__} import paying_csms; paying_csms({str(tmp_path)!r})"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    receipted = 0
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    ) as child:
        assert child.stdout is not None
        try:
            for line in child.stdout:
                word, seq, *amount = line.split()
                if word == "paid":
                    receipted = int(amount[0])
                if word == "metered" and int(seq) == kill_after:
                    time.sleep(delay_s)  # into the payment's commit
                    child.send_signal(signal.SIGKILL)
                    break
        finally:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    paid, balance = _durable(tmp_path / "csms.sqlite")
    assert paid == balance >= receipted > 0

    async def restarted(world: World) -> None:
        session = world.csms.book.sessions[KEY]
        assert session.paid == paid
        wallet = await world.driver(KEY, DEPOSIT)  # the driver's app, from the kept proof
        held = await world.payments.cashier.open(wallet.channel.terms.channel_id)
        wallet.channel = PayerChannel.restore(held.terms, DRIVER, held.latest, held.state)
        wallet.meter.paid = paid
        await _metered(world.csms, wallet, kill_after + 1)
        await world.pay_due(wallet, KEY)
        assert session.paid == TARIFF.cost(STEP_WH * (kill_after + 1)) == wallet.meter.paid
        assert _durable(tmp_path / "csms.sqlite") == (session.paid, session.paid)

    run(tmp_path, restarted)


def test_channels_kept_in_a_channel_store_file_before_are_taken_over_once(tmp_path: Path) -> None:
    """An upgraded CSMS (`charging serve` finds `<db>.channels.sqlite`) keeps the channels the
    old file has and its own store lacks, once: the file is renamed `.taken-over`. A channel the
    CSMS store has at the same sequence with a newer state and deposit (a close, a settlement or
    a top-up keeps the sequence) is not turned back by the old file, at the first start or the
    second (before the fix it was taken over at every start and replaced the newer row)."""
    funder = UnitTestOnlyFunder(network_id=7, payer=DRIVER.public_key)
    old_file = tmp_path / "csms.channels.sqlite"

    async def main() -> None:
        terms = await funder.open(CPO.public_key, DEPOSIT)
        other = await funder.open(CPO.public_key, DEPOSIT + 1)  # a second channel
        paid = PayerChannel(terms, DRIVER).pay(30)
        before = ChannelRecord(terms=terms, role=Role.PAYEE, state=ChannelState.OPEN, latest=paid)
        only_old = ChannelRecord(
            terms=other,
            role=Role.PAYEE,
            state=ChannelState.OPEN,
            latest=PayerChannel(other, DRIVER).pay(40),
        )
        async with ChannelStore(old_file) as old:
            await old.save(before)
            await old.save(only_old)
        newer = dataclasses.replace(
            before,
            terms=dataclasses.replace(terms, deposit=2 * DEPOSIT),
            state=ChannelState.SETTLED,
        )
        async with CsmsStore(tmp_path / "csms.sqlite") as store:
            channels = CsmsChannels(store)
            await channels.save(newer)  # the CSMS's own row: same sequence, newer state/deposit
            assert await channels.take_over(old_file)
            assert not old_file.exists()
            assert (tmp_path / "csms.channels.sqlite.taken-over").exists()
            assert await channels.load(terms.channel_id, Role.PAYEE) == newer
            assert await channels.load(other.channel_id, Role.PAYEE) == only_old
        async with CsmsStore(tmp_path / "csms.sqlite") as store:  # the second start
            channels = CsmsChannels(store)
            assert not await channels.take_over(old_file)
            found = {r.terms.channel_id: r for r in await channels.records(Role.PAYEE)}
            assert found == {terms.channel_id: newer, other.channel_id: only_old}

    asyncio.run(main())


def test_a_prepayment_whose_commit_fails_midway_takes_nothing(tmp_path: Path) -> None:
    """A prepayment is one commit too: the proof and the token's prepaid amount."""

    async def body(world: World) -> None:
        wallet = await world.driver(KEY, DEPOSIT)
        await world.bind(wallet, TOKEN)
        store = world.csms.store
        async with store.write_lock:
            await store.db.execute(
                "CREATE TRIGGER crash_before_credit BEFORE UPDATE OF prepaid ON tokens "
                "BEGIN SELECT RAISE(ABORT, 'the CSMS died here'); END"
            )
            await store.db.commit()
        proof = wallet.channel.pay(450)
        with pytest.raises(StoreError):
            await world.payments.prepay(TOKEN, proof)
        channel_id = wallet.channel.terms.channel_id
        assert await store.token(TOKEN) == (channel_id, 0)
        assert await CsmsChannels(store).load(channel_id, Role.PAYEE) is None
        async with store.write_lock:
            await store.db.execute("DROP TRIGGER crash_before_credit")
            await store.db.commit()
        receipt = await world.payments.prepay(TOKEN, proof)  # the same proof again: taken now
        assert receipt.cumulative_amount == 450
        assert await store.token(TOKEN) == (channel_id, 450)

    run(tmp_path, body)


def test_a_payment_commits_the_credit_the_channel_service_worked_out(tmp_path: Path) -> None:
    """One figure of a payment's credit: the save commits the amount the `PayeeService` hands
    it (`Credit.credited`, what the driver is told was taken), not one it works out again from
    its own view of the channel's previous balance (before, `CsmsChannels` kept a cache of
    balances for that): handed 25 and 15 for proofs that move the balance by 30 and 20, it
    counts 25 and 15. A save handed no credit (a top-up, a close) counts nothing, whatever
    its proof's balance (the paid amounts of real sessions: the tests above)."""
    funder = UnitTestOnlyFunder(network_id=7, payer=DRIVER.public_key)
    counted: list[int] = []

    async def main() -> None:
        terms = await funder.open(CPO.public_key, DEPOSIT)
        payer = PayerChannel(terms, DRIVER)
        async with CsmsStore(tmp_path / "csms.sqlite") as store:
            channels = CsmsChannels(store)

            def count(credited: int) -> tuple[tuple[str, tuple[object, ...]], ...]:
                counted.append(credited)
                return ()

            with paying_for(count):
                first = payer.pay(30)
                record = ChannelRecord(
                    terms=terms, role=Role.PAYEE, state=ChannelState.OPEN, latest=first
                )
                await channels.save(record, 25)  # the proof moves the balance by 30
                second = ChannelRecord(
                    terms=terms, role=Role.PAYEE, state=ChannelState.OPEN, latest=payer.pay(20)
                )
                await channels.save(second)  # handed nothing: counts nothing
                await channels.save(second, 15)  # by 20

    asyncio.run(main())
    assert counted == [25, 15]
