"""The server processes of `benchmarks.charging`: the CSMS under load (`csms_process`), the
trivial answerer of the simulators' ceiling (`echo_process`), each reporting its own CPU,
loop lag, collector pauses and group commits when stdin closes, and the disk's fsync'd-commit
ceiling (`fsync_commits_per_s`)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection, serve

from benchmarks._charging_load import (
    CPO,
    NETWORK,
    PASSWORD,
    TARIFF,
    GcPauses,
    cpu_seconds,
    driver,
    kernel_seconds,
    loop_lag,
)
from payments.channels.service import PayeeService
from payments.charging.channel_rows import CsmsChannels
from payments.charging.csms import SUBPROTOCOLS, Csms, serve_csms, tune_process
from payments.charging.pay_stream import payment_stream
from payments.charging.payment import ChargePayments
from payments.charging.store import CsmsStore
from payments.payperuse.cashier import Cashier

if TYPE_CHECKING:
    from pathlib import Path

    from payments.channels.core import ChannelTerms
    from tangle.protocol.ids import ChannelId


class ChannelTable:
    """The CPO's channel directory in this benchmark: the drivers' channels, from the same
    deterministic keys the simulators' drivers use (`_charging_load.driver`), in place of the
    ledger's."""

    def __init__(self, count: int) -> None:
        self.terms = {t.channel_id: t for t in (driver(i)[1] for i in range(count))}

    async def lookup(self, channel_id: ChannelId) -> ChannelTerms | None:
        return self.terms.get(channel_id)

    async def ledger_index(self) -> int:
        return 1


async def csms_process(directory: Path, count: int) -> None:
    """The CSMS: serve until stdin closes, then print its CPU seconds as JSON."""
    tune_process()  # as the CSMS's own command does
    async with CsmsStore(directory / "csms.sqlite") as store:
        await asyncio.gather(*(store.add_station(f"CP{i}", PASSWORD) for i in range(count)))
        for i in range(count):
            await store.save_token(f"TOKEN{i}", driver(i)[1].channel_id, 0)
        csms = Csms(store=store, pricing=lambda t, wh, s: TARIFF.cost(wh))
        cashier = Cashier(
            payee=CPO.public_key,
            network_id=NETWORK,
            directory=ChannelTable(count),
            service=PayeeService(CsmsChannels(store)),
        )
        payments = ChargePayments(
            csms=csms, cashier=cashier, signer=CPO, tariff=TARIFF, margin=10**9
        )
        csms.authorize = payments.authorize
        csms.channel_pricing = payments.pricing
        async with serve_csms(csms, pay=payment_stream(payments)) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            print(json.dumps({"url": f"ws://127.0.0.1:{port}/ocpp"}), flush=True)
            await _serve_until_stdin_closes(store)


async def _serve_until_stdin_closes(store: CsmsStore | None = None, every_s: float = 0.25) -> None:
    """Serve until stdin closes, then print as JSON this process's CPU seconds as samples
    `[unix time, CPU seconds]` taken every `every_s`, its loop lag and its garbage collector's
    pauses (`GcPauses`), and `store`'s group commits (`CsmsStore.commits`); the parent reads off
    the window's."""
    samples: list[tuple[float, float, float]] = []
    lag: list[tuple[float, float]] = []

    async def sample() -> None:
        while True:
            samples.append((time.time(), cpu_seconds(), kernel_seconds()))
            await asyncio.sleep(every_s)

    sampler = asyncio.create_task(sample())
    monitor = asyncio.create_task(loop_lag(lag))
    with GcPauses() as pauses:
        await asyncio.to_thread(sys.stdin.read)
    sampler.cancel()
    monitor.cancel()
    samples.append((time.time(), cpu_seconds(), kernel_seconds()))
    commits = [] if store is None else list(store.commits)
    print(
        json.dumps({"cpu": samples, "lag": lag, "gc": pauses.pauses, "commits": commits}),
        flush=True,
    )


def fsync_commits_per_s(directory: Path, count: int = 200) -> float:
    """One-row commits per second with the CSMS's settings (WAL, synchronous=FULL)."""
    db = sqlite3.connect(directory / "ceiling.sqlite")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    began = time.perf_counter()
    for k in range(count):
        db.execute("INSERT INTO t VALUES (?, ?)", (k, b"x" * 64))
        db.commit()
    rate = count / (time.perf_counter() - began)
    db.close()
    return rate


async def echo_process() -> None:
    """The simulators' ceiling: a trivial OCPP answerer (a fixed CALLRESULT per action, no
    validation, no storage) serving until stdin closes, then printing its CPU seconds."""
    ids = iter(range(1, 2**31))

    async def answer(connection: ServerConnection) -> None:
        async for raw in connection:
            frame = json.loads(raw)
            if frame[0] == 2:
                payload: dict[str, Any] = {}
                if frame[2] == "StartTransaction":
                    payload = {"transactionId": next(ids), "idTagInfo": {"status": "Accepted"}}
                await connection.send(json.dumps([3, frame[1], payload]))

    async with serve(
        answer, "127.0.0.1", 0, subprotocols=[*SUBPROTOCOLS], compression=None, ping_interval=None
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"url": f"ws://127.0.0.1:{port}/ocpp"}), flush=True)
        await _serve_until_stdin_closes()
