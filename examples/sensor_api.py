"""A sensor data API paid per reading, and a device that reads 100 readings, paying for each.

The sensor is a Starlette app behind `payments.payperuse.paywall.Paywall`: every `GET
/readings/latest` costs 100 base units, paid through a one-way channel to the sensor's key; the
payment is checked and committed to the sensor's channel store before the reading is served, and the
answer carries the sensor's signed receipt. The device is an `httpx.AsyncClient` with
`payments.payperuse.auth.PaymentAuth`: it opens a channel on the first 402, tops it up as it runs
low, stays within its owner's budget and checks every receipt.

Self-contained (a devnet of its own, a coordinator and one node as processes, then the sensor and
the device, over loopback HTTP, all under a temporary directory):

    python -m examples.sensor_api --self-contained [--readings 100] [--json]

Against a devnet: run `./dev devnet` in one terminal (it writes `data/devnet/devnet.json`), then

    python -m examples.sensor_api serve --devnet data/devnet/devnet.json --port 8400
    python -m examples.sensor_api device --devnet data/devnet/devnet.json \\
        --url http://127.0.0.1:8400 --readings 100

The sensor keeps its key and channel store under `--data` (default `data/examples/sensor`); the
device funds a wallet of its own from the devnet's faucet and opens its channel on the ledger with
`payments.ledger.funder.LedgerFunder`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import trio
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from payments.payperuse.auth import PaymentAuth
from payments.payperuse.budget import Budget, FundingPolicy
from payments.payperuse.metering import Tariff
from payments.payperuse.paywall import Paywall

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import Scope

    from payments.channels.service import PayeeService
    from payments.payperuse.budget import ChannelFunder
    from payments.payperuse.cashier import ChannelDirectory
    from tangle.protocol.ids import PublicKey
    from tangle.protocol.signature import Signer

PRICE = 100
"""Base units per reading."""
STORE = "sensor-channels.sqlite"
"""The sensor's channel store, under its data directory."""


def sensor_app() -> Starlette:
    """The sensor's API: a temperature that drifts with every reading."""
    count = 0

    async def latest(request: Request) -> Response:
        nonlocal count
        count += 1
        celsius = round(21.0 + 1.5 * math.sin(count / 10), 3)
        return JSONResponse({"sequence": count, "celsius": celsius})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/readings/latest", latest), Route("/health", health)])


def _health_is_free(scope: Scope) -> bool:
    return bool(scope["path"] == "/health")


def paid_sensor(
    signer: Signer, network_id: int, directory: ChannelDirectory, service: PayeeService
) -> Paywall:
    """The sensor app behind the paywall (`/health` free)."""
    return Paywall(
        sensor_app(),
        signer=signer,
        network_id=network_id,
        tariff=Tariff.per_request(PRICE),
        directory=directory,
        service=service,
        exempt=_health_is_free,
    )


def device_auth(
    signer: Signer, network_id: int, funder: ChannelFunder, readings: int, min_output: int = 1
) -> PaymentAuth:
    """The device's payment flow: a budget of exactly `readings` readings, at most two prices a
    piece, channels of 30 readings topped up by 30 more (or the ledger's least output, if more)."""
    step = max(30 * PRICE, min_output)
    return PaymentAuth(
        signer=signer,
        network_id=network_id,
        funder=funder,
        budget=Budget(total=readings * PRICE, per_request=2 * PRICE),
        funding=FundingPolicy(deposit=step, top_up=step),
    )


async def read_all(url: str, auth: PaymentAuth, readings: int) -> list[dict[str, Any]]:
    """Read `readings` readings from the sensor at `url`, paying for each."""
    got = []
    async with httpx.AsyncClient(base_url=url, auth=auth, timeout=30.0) as client:
        for _ in range(readings):
            response = await client.get("/readings/latest")
            response.raise_for_status()
            got.append(response.json())
    return got


def summary(auth: PaymentAuth, got: list[dict[str, Any]]) -> dict[str, Any]:
    """What the device read and paid, as it knows it."""
    channel = next(iter(auth.channels.values()))
    return {
        "readings": len(got),
        "paid": auth.spent,
        "receipts": len(auth.receipts),
        "channel": channel.terms.channel_id.hex(),
        "deposit": channel.terms.deposit,
        "payer_sequence": channel.sequence,
    }


async def device(
    devnet: Path, data: Path, url: str, readings: int, *, faucet_key: bool = False
) -> dict[str, Any]:
    """Read `readings` readings from the sensor at `url`, paying through a channel on the devnet
    (a wallet under `data`, paid by the faucet); the summary, with the ledger's channel."""
    from ._devnet import devnet_payer  # see `main`

    needed = 2 * readings * PRICE + 10_000
    async with devnet_payer(devnet, data, needed, faucet_key=faucet_key) as payer:
        funder, key, network_id, min_output = payer
        auth = device_auth(key, network_id, funder, readings, min_output)
        got = await read_all(url, auth, readings)
        doc = summary(auth, got)
        doc |= await funder.ledger_state(next(iter(auth.channels.values())).terms.channel_id)
        doc |= {"opened": funder.opened, "topped_up": funder.topped_up}
    return doc


def main(argv: list[str] | None = None) -> int:
    # `._devnet` is imported in the functions that use it: run as a script, this module has no
    # package until the `__main__` block below imports it as `examples.sensor_api`.
    from ._devnet import self_contained, serve_forever

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=["serve", "device"])
    parser.add_argument("--self-contained", action="store_true", help="run a devnet of its own too")
    parser.add_argument("--readings", type=int, default=100)
    parser.add_argument("--devnet", type=Path, default=Path("data/devnet/devnet.json"))
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--url", default="http://127.0.0.1:8400")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if args.self_contained:

        async def pay(devnet: Path, data: Path, url: str, _: PublicKey) -> dict[str, Any]:
            return await device(devnet, data, url, args.readings, faucet_key=True)

        doc = trio.run(partial(self_contained, "sensor", paid_sensor, STORE, pay, durable="payee"))
    elif args.mode == "serve":
        data = args.data or Path("data/examples/sensor")
        trio.run(
            serve_forever, "sensor", paid_sensor, STORE, args.devnet, data, args.host, args.port
        )
        return 0
    elif args.mode == "device":
        data = args.data or Path("data/examples/sensor-device")
        doc = trio.run(device, args.devnet, data, args.url, args.readings)
    else:
        parser.error("give --self-contained, or serve / device")
    if args.json:
        print(json.dumps(doc))
    else:
        for key, value in doc.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):  # `python examples/sensor_api.py`
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from examples.sensor_api import main as _main

        sys.exit(_main())
    sys.exit(main())
