"""A 5G micro base station paid per MB by a carrier: metered streaming payments over HTTP.

The station (payee) delivers the carrier's traffic and meters every byte it delivers
(`payments.payperuse.metering.Meter`, 500 base units per MB, rounded up, billed cumulatively). It
lets the carrier run up at most 2 MB unpaid (`credit_limit`): past that it delivers nothing until it
is paid. The carrier (payer) counts the bytes it receives (`PayerMeter`), fetches the station's
invoice, refuses any bill above its own count (`OverchargeError`), pays the difference through
its channel (topping the channel up on the ledger when it runs low), and checks the station's
signed receipt of every payment: channel, sequence, amount, cumulative units.

```
GET  /stream?bytes=N      Payment-Channel: <hex>   up to N bytes (fewer when payment is due)
GET  /invoice             Payment-Channel: <hex>   {"units", "amount", "paid"} of the session
POST /pay                 Payment-Proof: <base64url signed proof>
                          -> 200, Payment-Receipt: <base64url METERED receipt>
```

A payment is checked by the channel core and committed to the station's channel store before the
receipt is sent (`payments.payperuse.cashier.Cashier`).

Self-contained (a devnet of its own, a coordinator and one node as processes, then the station
and the carrier, over loopback HTTP, all under a temporary directory):

    python -m examples.base_station --self-contained [--megabytes 20] [--json]

Against a devnet: run `./dev devnet` in one terminal (it writes `data/devnet/devnet.json`), then

    python -m examples.base_station serve --devnet data/devnet/devnet.json --port 8401
    python -m examples.base_station carrier --devnet data/devnet/devnet.json \\
        --url http://127.0.0.1:8401 --payee <the key `serve` prints> --megabytes 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import trio
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from payments.channels.core import PayerChannel
from payments.channels.wire import decode_signed_proof, encode_signed_proof
from payments.errors import PaymentError
from payments.payperuse.cashier import Cashier
from payments.payperuse.metering import Invoice, Meter, PayerMeter, Tariff
from payments.payperuse.offer import PROOF_HEADER, RECEIPT_HEADER
from payments.payperuse.paywall import refusal_of
from payments.payperuse.receipt import (
    b64url_decode,
    b64url_encode,
    receipt_from_header,
    receipt_to_header,
)
from tangle.errors import TangleError
from tangle.protocol.ids import ChannelId, PublicKey

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request

    from payments.channels.service import PayeeService
    from payments.payperuse.budget import ChannelFunder
    from payments.payperuse.cashier import ChannelDirectory
    from tangle.protocol.signature import Signer

    Handler = Callable[[Request], Awaitable[Response]]

TARIFF = Tariff.per_mb(500)
"""What the carrier pays the station: 500 base units per MB."""
CREDIT_LIMIT = TARIFF.cost(2_000_000)
"""Unpaid usage the station tolerates: 2 MB."""
CHUNK = 256 * 1024
"""Bytes the carrier asks for at a time."""
CHANNEL_HEADER = "payment-channel"
STORE = "station-channels.sqlite"
"""The station's channel store, under its data directory."""


def station_app(
    signer: Signer, network_id: int, directory: ChannelDirectory, service: PayeeService
) -> Starlette:
    """The station's HTTP face (see the module docstring); `signer` is its key, `directory` the
    ledger's channels and `service` its channels."""
    cashier = Cashier(
        payee=signer.public_key, network_id=network_id, directory=directory, service=service
    )
    meters: dict[bytes, Meter] = {}

    async def meter_of(request: Request) -> Meter:
        channel_id = ChannelId.from_hex(request.headers.get(CHANNEL_HEADER, ""))
        meter = meters.get(channel_id)
        if meter is None:
            await cashier.open(channel_id)  # an acceptable open channel to this station
            meter = Meter(
                TARIFF,
                signer=signer,
                network_id=cashier.network_id,
                channel_id=channel_id,
                session=channel_id,
                credit_limit=CREDIT_LIMIT,
            )
            meters[channel_id] = meter
        return meter

    async def stream(request: Request) -> Response:
        meter = await meter_of(request)
        n = meter.deliverable(int(request.query_params.get("bytes", str(CHUNK))))
        meter.record(n)
        return Response(os.urandom(n), media_type="application/octet-stream")

    async def invoice(request: Request) -> Response:
        bill = (await meter_of(request)).invoice()
        return JSONResponse({"units": bill.units, "amount": bill.amount, "paid": bill.paid})

    async def pay(request: Request) -> Response:
        raw = b64url_decode(request.headers.get(PROOF_HEADER, ""), ValueError)
        signed = decode_signed_proof(raw)
        meter = meters[signed.proof.channel_id]
        credit = await cashier.accept(signed, price=1)
        receipt = meter.credit(signed.proof, credit.credited)
        return Response(status_code=200, headers={RECEIPT_HEADER: receipt_to_header(receipt)})

    def refusing(handler: Handler) -> Handler:
        """`handler`, answering a refused payment or a malformed request with a 4xx."""

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except PaymentError as e:
                status, code = refusal_of(e)
                message = str(e)
            except (TangleError, ValueError, KeyError) as e:
                status, code, message = 400, "bad_request", str(e)
            return JSONResponse({"error": {"code": code, "message": message}}, status)

        return guarded

    return Starlette(
        routes=[
            Route("/stream", refusing(stream)),
            Route("/invoice", refusing(invoice)),
            Route("/pay", refusing(pay), methods=["POST"]),
        ]
    )


class Carrier:
    """The carrier's side: counts bytes, checks bills, pays, checks receipts."""

    def __init__(self, signer: Signer, network_id: int, funder: ChannelFunder) -> None:
        self.signer = signer
        self.network_id = network_id
        self.funder = funder
        self.channel: PayerChannel | None = None
        self.meter: PayerMeter | None = None
        self.receipts = 0
        self.top_ups = 0

    async def open(self, station: PublicKey, deposit: int) -> None:
        terms = await self.funder.open(station, deposit)
        self.channel = PayerChannel(terms, self.signer)
        self.meter = PayerMeter(
            TARIFF,
            payee=station,
            network_id=self.network_id,
            channel_id=terms.channel_id,
            session=terms.channel_id,
        )

    async def run(self, client: httpx.AsyncClient, total: int) -> None:
        channel, meter = self.channel, self.meter
        if channel is None or meter is None:
            raise RuntimeError("open a channel first")
        headers = {CHANNEL_HEADER: channel.terms.channel_id.hex()}
        while meter.units < total:
            response = await client.get(
                "/stream", params={"bytes": min(CHUNK, total - meter.units)}, headers=headers
            )
            response.raise_for_status()
            meter.observe(len(response.content))
            doc = (await client.get("/invoice", headers=headers)).json()
            bill = Invoice(
                channel_id=channel.terms.channel_id,
                units=doc["units"],
                amount=doc["amount"],
                paid=doc["paid"],
            )
            amount = meter.accept(bill)
            if amount:
                await self.pay(client, channel, meter, bill, amount)

    async def pay(
        self,
        client: httpx.AsyncClient,
        channel: PayerChannel,
        meter: PayerMeter,
        bill: Invoice,
        amount: int,
    ) -> None:
        if channel.payer_balance < amount:
            terms = await self.funder.top_up(channel.terms, channel.terms.deposit)
            channel.top_up(terms.deposit)
            self.top_ups += 1
        proof = channel.pay(amount)
        meter.paying(proof.proof, amount, bill)
        value = b64url_encode(encode_signed_proof(proof))
        response = await client.post("/pay", headers={PROOF_HEADER: value})
        response.raise_for_status()
        meter.check_receipt(receipt_from_header(response.headers[RECEIPT_HEADER]))
        self.receipts += 1


def summary(carrier: Carrier) -> dict[str, Any]:
    """What the carrier received and paid, as it knows it."""
    channel, meter = carrier.channel, carrier.meter
    if channel is None or meter is None:
        raise RuntimeError("no channel")
    return {
        "bytes": meter.units,
        "megabytes": meter.units / 1e6,
        "paid": meter.paid,
        "owed": TARIFF.cost(meter.units),
        "receipts": carrier.receipts,
        "top_ups": carrier.top_ups,
        "channel": channel.terms.channel_id.hex(),
        "deposit": channel.terms.deposit,
        "payer_sequence": channel.sequence,
    }


async def carrier_main(
    devnet: Path,
    data: Path,
    url: str,
    payee: PublicKey,
    megabytes: int,
    *,
    faucet_key: bool = False,
) -> dict[str, Any]:
    """Take `megabytes` MB from the station at `url`, paying through a channel on the devnet (a
    wallet under `data`, paid by the faucet); the summary, with the ledger's channel."""
    from ._devnet import devnet_payer  # see `main`

    needed = 4 * TARIFF.cost(megabytes * 1_000_000) + 20_000
    async with devnet_payer(devnet, data, needed, faucet_key=faucet_key) as payer:
        funder, key, network_id, min_output = payer
        carrier = Carrier(key, network_id, funder)
        await carrier.open(payee, deposit=max(5 * TARIFF.price, min_output))
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
            await carrier.run(client, megabytes * 1_000_000)
        doc = summary(carrier)
        doc |= await funder.ledger_state(ChannelId.from_hex(doc["channel"]))
    return doc


def main(argv: list[str] | None = None) -> int:
    # `._devnet` is imported in the functions that use it: run as a script, this module has no
    # package until the `__main__` block below imports it as `examples.base_station`.
    from ._devnet import self_contained, serve_forever

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=["serve", "carrier"])
    parser.add_argument("--self-contained", action="store_true", help="run a devnet of its own too")
    parser.add_argument("--megabytes", type=int, default=20)
    parser.add_argument("--devnet", type=Path, default=Path("data/devnet/devnet.json"))
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--url", default="http://127.0.0.1:8401")
    parser.add_argument("--payee", default=None, help="the station's key (hex), for `carrier`")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8401)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if args.self_contained:
        pay = partial(carrier_main, megabytes=args.megabytes, faucet_key=True)
        doc = trio.run(
            partial(self_contained, "station", station_app, STORE, pay, durable="station")
        )
    elif args.mode == "serve":
        data = args.data or Path("data/examples/station")
        trio.run(
            serve_forever, "station", station_app, STORE, args.devnet, data, args.host, args.port
        )
        return 0
    elif args.mode == "carrier":
        if args.payee is None:
            parser.error("carrier needs --payee (the key `serve` prints)")
        data = args.data or Path("data/examples/carrier")
        payee = PublicKey.from_hex(args.payee)
        doc = trio.run(carrier_main, args.devnet, data, args.url, payee, args.megabytes)
    else:
        parser.error("give --self-contained, or serve / carrier")
    if args.json:
        print(json.dumps(doc))
    else:
        for key, value in doc.items():
            print(f"{key:>26}: {value}")
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):  # `python examples/base_station.py`
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from examples.base_station import main as _main

        sys.exit(_main())
    sys.exit(main())
