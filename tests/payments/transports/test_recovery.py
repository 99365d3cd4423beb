"""A payee that loses its channel database loses nothing it is owed: it re-opens the channel from
the ledger's terms and the payer's next HELLO carries the latest proof it signed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from payments import ChannelStore, PayeeService, PayerChannel, open_payer, read_records, serve_payee
from tests.payments_support import PAYER, terms

if TYPE_CHECKING:
    from pathlib import Path


def _lose_database(directory: Path) -> None:
    for path in directory.glob("payee.db*"):
        path.unlink()


async def test_a_payee_that_lost_its_database_recovers_from_the_payers_hello(
    tmp_path: Path,
) -> None:
    channel = PayerChannel(terms(), PAYER)
    async with trio.open_nursery() as nursery, ChannelStore(tmp_path / "payee.db") as store:
        service = PayeeService(store)
        await service.open_channel(terms())
        port = await nursery.start(serve_payee, service)
        async with open_payer(channel, "127.0.0.1", port) as client:
            for _ in range(50):
                await client.send(4)
        nursery.cancel_scope.cancel()
    _lose_database(tmp_path)

    async with trio.open_nursery() as nursery, ChannelStore(tmp_path / "payee.db") as store:
        service = PayeeService(store)
        await service.open_channel(terms())  # the terms, as the ledger shows them
        port = await nursery.start(serve_payee, service)
        async with open_payer(channel, "127.0.0.1", port) as client:
            assert client.acked == 50  # the HELLO's proof was taken and made durable
            await client.pay(1)
        nursery.cancel_scope.cancel()
    (record,) = read_records(tmp_path / "payee.db")
    assert record.latest is not None
    assert (record.sequence, record.latest.proof.payee_balance) == (51, 201)
