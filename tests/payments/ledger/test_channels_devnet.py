"""Payment channels end to end on a real devnet (a coordinator and nodes as processes): open
through a wallet, pay 10,000 times over TCP, close, and read the split off the ledger; then a
unilateral close by the payer answered by the payee's watch service while the payee is offline;
and a TCP payee kept up to date by its ledger feed (a top-up, then the payer's close).
"""

from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING

import httpx
import pytest
import trio

from examples._devnet import pay_with_faucet_key
from payments.channels.core import ChannelTerms, PayerChannel
from payments.channels.service import PayeeService
from payments.channels.state import ChannelState, Role
from payments.channels.store import ChannelStore
from payments.channels.wire import RejectCode
from payments.errors import CounterpartyRejectedError
from payments.ledger.feed import run_ledger_feed
from payments.ledger.funder import LedgerFunder, close_with_proof, start_close
from payments.ledger.watch import Watchtower, run_watch_service
from payments.transports.tcp import open_payer, serve_payee
from tangle.protocol.transaction import address_of
from tanglepay.devnet import launch, load_or_create
from wallet import AccountKey, Wallet, WalletConfig
from wallet.client import NodeClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from wallet.keys import AddressKey

FUNDS = 5_000_000
DEPOSIT = 1_000_000
PRICE = 7
PAYMENTS = 10_000
CONFIG = WalletConfig(confirm_timeout_s=40, pow_threads=1)


@contextlib.asynccontextmanager
async def _devnet(tmp_path: Path, nodes: int) -> AsyncIterator[list[str]]:
    """A devnet of `nodes` nodes under `tmp_path / "devnet"`, running until the block ends: the
    nodes' API URLs."""
    devnet = load_or_create(tmp_path / "devnet", nodes=nodes, interval_s=0.5)
    async with httpx.AsyncClient(timeout=10) as http, trio.open_nursery() as nursery:
        _, *node_processes = await launch(devnet.members, nursery, http)
        yield [node.member.api for node in node_processes]
        nursery.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def _services() -> AsyncIterator[trio.Nursery]:
    """A nursery for the test's services (the payee's server, its ledger feed, its watch
    service), cancelled when the block ends. Entered after the stores and wallets they use, it
    ends before those close: a service polling a closed store fails the test."""
    async with trio.open_nursery() as nursery:
        yield nursery
        nursery.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def _funded_payer(
    tmp_path: Path, api: str
) -> AsyncIterator[tuple[Wallet, AddressKey, LedgerFunder]]:
    """A new payer's wallet on the node at `api`, its channel key (paid `FUNDS` by the faucet of
    the devnet under `tmp_path`, confirmed and synced) and a `LedgerFunder` over both."""
    account = AccountKey(secrets.token_bytes(32), 0)
    async with Wallet.open(
        account, url=api, state_path=tmp_path / "payer.db", config=CONFIG
    ) as wallet:
        key = wallet.channel_key(0)
        await pay_with_faucet_key(tmp_path / "devnet", api, address_of(key.public_key), FUNDS)
        await _until(lambda: _balance_is(wallet, address_of(key.public_key), FUNDS), 30)
        await wallet.sync()
        yield wallet, key, LedgerFunder(wallet, key)


async def _accept(
    service: PayeeService, wallet: Wallet, terms: ChannelTerms, me: AddressKey
) -> None:
    """What a payee does before it takes payments: read the channel off its own node."""
    found = await wallet.client.channel(terms.channel_id)
    assert found is not None
    on_ledger = ChannelTerms.from_output(terms.network_id, found.output)
    assert on_ledger == terms
    assert on_ledger.payee == me.public_key
    await service.open_channel(on_ledger)


async def _until(check, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout_s):
        while True:
            if await check():
                return
            await trio.sleep(0.2)


@pytest.mark.slow
async def test_open_pay_ten_thousand_times_close_and_survive_an_offline_payee(
    tmp_path: Path,
) -> None:
    payee_account = AccountKey(secrets.token_bytes(32), 0)
    payee_key = payee_account.address_key(0)
    async with (
        _devnet(tmp_path, nodes=2) as (api1, api2),
        _funded_payer(tmp_path, api1) as (payer_wallet, payer_key, funder),
        Wallet.open(
            payee_account, url=api2, state_path=tmp_path / "payee.db", config=CONFIG
        ) as payee_wallet,
        ChannelStore(tmp_path / "payee-channels.db") as payee_store,
        _services() as nursery,
    ):
        service = PayeeService(payee_store)

        # 1. open, pay 10,000 times over TCP, the payee closes with the latest proof
        terms = await funder.open(payee_key.public_key, DEPOSIT)
        await _accept(service, payee_wallet, terms, payee_key)
        port = await nursery.start(serve_payee, service)
        channel = PayerChannel(terms, payer_key)
        async with open_payer(channel, "127.0.0.1", port) as client:
            for _ in range(PAYMENTS):
                await client.send(PRICE)
        payee_channel = await service.channel(terms.channel_id)
        assert payee_channel.payee_balance == PRICE * PAYMENTS
        latest = payee_channel.latest
        assert latest is not None
        assert latest.proof.sequence == PAYMENTS
        await close_with_proof(payee_wallet, payee_key, latest)
        paid = PRICE * PAYMENTS
        assert await payee_wallet.client.balance(address_of(payee_key.public_key)) == paid
        payer_address = address_of(payer_key.public_key)
        # the deposit's rest came back to the channel key; the wallet holds the rest
        await _until(lambda: _balance_is(payer_wallet, payer_address, DEPOSIT - paid), 10)
        await payer_wallet.sync()
        assert (await payer_wallet.balance()).total == FUNDS - paid
        assert await payer_wallet.client.channel(terms.channel_id) is None

        # 2. a second channel; the payee goes offline; the payer closes unilaterally with
        # nothing recorded; the payee's watch service answers with the latest proof
        await payer_wallet.sync()
        second = await funder.open(payee_key.public_key, DEPOSIT // 2)
        await _accept(service, payee_wallet, second, payee_key)
        async with open_payer(PayerChannel(second, payer_key), "127.0.0.1", port) as client:
            for _ in range(100):
                await client.send(PRICE * 10)
        tower = Watchtower()
        await nursery.start(
            lambda task_status: run_watch_service(
                tower,
                payee_wallet,
                {payee_key.public_key: payee_key},
                store_path=tmp_path / "payee-channels.db",
                poll_s=0.5,
                task_status=task_status,
            )
        )
        await start_close(payer_wallet, payer_key, second.channel_id, second.network_id)
        owed = paid + 100 * PRICE * 10
        await _until(lambda: _balance_is(payee_wallet, address_of(payee_key.public_key), owed), 30)
        records = {r.terms.channel_id: r for r in await payee_store.records(Role.PAYEE)}
        assert records[second.channel_id].latest is not None


async def _balance_is(wallet: Wallet, address: bytes, expected: int) -> bool:
    return await wallet.client.balance(address) == expected  # type: ignore[arg-type]


@pytest.mark.slow
async def test_a_tcp_payee_follows_top_ups_and_the_payers_close_through_its_ledger_feed(
    tmp_path: Path,
) -> None:
    payee_key = AccountKey(secrets.token_bytes(32), 0).address_key(0)
    deposit, top_up = 200_000, 100_000
    async with (
        _devnet(tmp_path, nodes=1) as (api,),
        _funded_payer(tmp_path, api) as (payer_wallet, payer_key, funder),
        NodeClient(api) as payee_node,
        ChannelStore(tmp_path / "payee-channels.db") as payee_store,
        _services() as nursery,
    ):
        terms = await funder.open(payee_key.public_key, deposit)
        service = PayeeService(payee_store)
        await service.open_channel(terms)
        port = await nursery.start(serve_payee, service)
        await nursery.start(
            lambda task_status: run_ledger_feed(
                service, payee_node, poll_s=0.2, task_status=task_status
            )
        )
        assert service.index > 0
        channel = PayerChannel(terms, payer_key)
        async with open_payer(channel, "127.0.0.1", port) as client:
            for _ in range(4):
                await client.pay(deposit // 4)  # the whole deposit

        # 1. a top-up on the ledger: the feed raises the payee's deposit, so payments beyond
        # the old one are accepted
        topped = await funder.top_up(terms, top_up)
        assert topped.deposit == deposit + top_up
        channel.top_up(topped.deposit)

        async def _payee_deposit_is_raised() -> bool:
            return (await service.channel(terms.channel_id)).terms.deposit == topped.deposit

        await _until(_payee_deposit_is_raised, 10)
        async with open_payer(channel, "127.0.0.1", port) as client:
            await client.pay(top_up // 2)
        held = await service.channel(terms.channel_id)
        assert held.payee_balance == deposit + top_up // 2 > deposit
        record = await payee_store.load(terms.channel_id, Role.PAYEE)
        assert record is not None
        assert (record.terms.deposit, record.latest) == (topped.deposit, held.latest)

        # 2. the payer starts a unilateral close: the feed moves the channel to CLOSING and
        # the payee refuses every new payment
        await start_close(payer_wallet, payer_key, terms.channel_id, terms.network_id)

        async def _payee_sees_the_close() -> bool:
            return (await service.channel(terms.channel_id)).state is ChannelState.CLOSING

        await _until(_payee_sees_the_close, 10)
        with pytest.raises(CounterpartyRejectedError) as info:
            async with open_payer(channel, "127.0.0.1", port) as client:
                await client.pay(1)
        assert info.value.code == RejectCode.CHANNEL_CLOSED
        after = await service.channel(terms.channel_id)
        assert (after.sequence, after.payee_balance) == (held.sequence, held.payee_balance)
