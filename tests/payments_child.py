"""A payee or a payer process of one channel, to be SIGKILLed by `test_payments_tcp.py`.

Usage:
    python -m tests.payments_child payee DIRECTORY        serves; writes its port to DIRECTORY/port
    python -m tests.payments_child payer DIRECTORY PORT [fresh]
                                                          pays 1 unit at a time, forever

The payer prints `hello SEQUENCE` once connected (its channel's sequence after the HELLO
exchange) and `ack SEQUENCE` for every acknowledgement, each line flushed at once. With `fresh`
it starts without its database, as if it had lost it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import trio

from payments import ChannelStore, PayeeService, PayerChannel, Role, open_payer, serve_payee
from tests.payments_support import PAYER, terms

DEPOSIT = 10**15


async def payee(directory: Path) -> None:
    async with ChannelStore(directory / "payee.db") as store:
        service = PayeeService(store)
        await service.open_channel(terms(deposit=DEPOSIT))
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_payee, service)
            (directory / "port.tmp").write_text(str(port))
            os.replace(directory / "port.tmp", directory / "port")


def _ack(sequence: int) -> None:
    sys.stdout.write(f"ack {sequence}\n")
    sys.stdout.flush()


async def payer(directory: Path, port: int, fresh: bool) -> None:
    path = directory / "payer.db"
    if fresh:
        path.unlink(missing_ok=True)
    async with ChannelStore(path) as store:
        record = await store.load(terms().channel_id, Role.PAYER)
        channel = PayerChannel(terms(deposit=DEPOSIT), PAYER)
        if record is not None:
            channel = PayerChannel.restore(record.terms, PAYER, record.latest, record.state)
        async with open_payer(channel, "127.0.0.1", port, store=store, on_ack=_ack) as client:
            sys.stdout.write(f"hello {channel.sequence}\n")
            sys.stdout.flush()
            while True:
                await client.send(1)


if __name__ == "__main__":
    if sys.argv[1] == "payee":
        trio.run(payee, Path(sys.argv[2]))
    else:
        trio.run(payer, Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4:] == ["fresh"])
