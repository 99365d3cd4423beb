"""A sensor data API paid per reading, and a device that reads 100 readings, paying for each.

The sensor is a Starlette app behind `payments.paywall.Paywall`: every `GET /readings/latest`
costs 10 base units, paid through a one-way channel to the sensor's key; the payment is checked
and committed to the sensor's channel store before the reading is served, and the answer carries
the sensor's signed receipt. The device is an `httpx.AsyncClient` with `payments.auth.PaymentAuth`:
it opens a channel on the first 402, tops it up as it runs low, stays within its owner's budget
and checks every receipt.

Self-contained (sensor, device and an in-process ledger in one command, over loopback HTTP):

    python -m examples.sensor_api --self-contained [--readings 100] [--json]

Against a devnet: run `./dev devnet` in one terminal (it writes `data/devnet/devnet.json`), then

    python -m examples.sensor_api serve --devnet data/devnet/devnet.json --port 8400
    python -m examples.sensor_api device --devnet data/devnet/devnet.json \\
        --url http://127.0.0.1:8400 --readings 100

The sensor keeps its key and channel store under `--data` (default `data/examples/sensor`); the
device funds a wallet of its own from the devnet's faucet and opens its channel on the ledger with
`payments.funding.LedgerFunder`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import trio
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from coordinator.signers import KeySigner
from payments.auth import Budget, FundingPolicy, PaymentAuth
from payments.metering import Tariff
from payments.paywall import Paywall
from payments.state import Role
from payments.store import ChannelStore, read_records
from tangle.api import serve_api

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import Scope

    from payments.auth import ChannelFunder
    from payments.cashier import ChannelDirectory
    from tangle.signature import Signer

PRICE = 10
"""Base units per reading."""
SELF_CONTAINED_NETWORK = 4242


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
    signer: Signer, network_id: int, directory: ChannelDirectory, store: ChannelStore
) -> Paywall:
    """The sensor app behind the paywall (`/health` free)."""
    return Paywall(
        sensor_app(),
        signer=signer,
        network_id=network_id,
        tariff=Tariff.per_request(PRICE),
        directory=directory,
        store=store,
        exempt=_health_is_free,
    )


def device_auth(
    signer: Signer, network_id: int, funder: ChannelFunder, readings: int, min_output: int = 1
) -> PaymentAuth:
    """The device's payment flow: a budget of exactly `readings` readings, at most 20 a piece,
    channels of 30 readings topped up by 30 more (or the ledger's least output, if more)."""
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


def summary(
    auth: PaymentAuth, got: list[dict[str, Any]], store_path: Path | None
) -> dict[str, Any]:
    channel = next(iter(auth.channels.values()))
    doc: dict[str, Any] = {
        "readings": len(got),
        "paid": auth.spent,
        "receipts": len(auth.receipts),
        "channel": channel.terms.channel_id.hex(),
        "deposit": channel.terms.deposit,
        "payer_sequence": channel.sequence,
    }
    if store_path is not None:
        [record] = [r for r in read_records(store_path) if r.role is Role.PAYEE]
        doc["payee_durable_sequence"] = record.sequence
        latest = record.latest
        doc["payee_durable_balance"] = 0 if latest is None else latest.proof.payee_balance
    return doc


async def self_contained(readings: int) -> dict[str, Any]:
    """Sensor, device and ledger in this process; the sensor on a loopback port."""
    from ._local_ledger import LocalDirectory, LocalFunder, LocalLedger

    payer = KeySigner(os.urandom(32))
    payee = KeySigner(os.urandom(32))
    ledger = LocalLedger(SELF_CONTAINED_NETWORK, [(payer.public_key, 10 * readings * PRICE)])
    funder = LocalFunder(ledger, payer)
    with tempfile.TemporaryDirectory(prefix="sensor-api-") as tmp:
        store_path = Path(tmp) / "sensor-channels.sqlite"
        store = ChannelStore(store_path)
        app = paid_sensor(payee, SELF_CONTAINED_NETWORK, LocalDirectory(ledger), store)
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_api, app, "127.0.0.1", 0)
            auth = device_auth(payer, SELF_CONTAINED_NETWORK, funder, readings)
            got = await read_all(f"http://127.0.0.1:{port}", auth, readings)
            nursery.cancel_scope.cancel()
        await store.aclose()
        doc = summary(auth, got, store_path)
    doc["opened"] = funder.opened
    doc["topped_up"] = funder.topped_up
    return doc


async def serve(devnet: Path, data: Path, host: str, port: int) -> None:
    from ._devnet import devnet_directory, payee_seed

    signer = KeySigner(payee_seed(data))
    store = ChannelStore(data / "sensor-channels.sqlite")
    async with devnet_directory(devnet) as (directory, network_id):
        app = paid_sensor(signer, network_id, directory, store)
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(serve_api, app, host, port)
            print(f"sensor on http://{host}:{bound}, payee key {signer.public_key.hex()}")
            await trio.sleep_forever()


async def device(devnet: Path, data: Path, url: str, readings: int) -> dict[str, Any]:
    from ._devnet import devnet_payer

    needed = 2 * readings * PRICE + 10_000
    async with devnet_payer(devnet, data, needed) as (funder, key, network_id, min_output):
        auth = device_auth(key, network_id, funder, readings, min_output)
        got = await read_all(url, auth, readings)
    return summary(auth, got, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=["serve", "device"])
    parser.add_argument("--self-contained", action="store_true", help="everything in-process")
    parser.add_argument("--readings", type=int, default=100)
    parser.add_argument("--devnet", type=Path, default=Path("data/devnet/devnet.json"))
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--url", default="http://127.0.0.1:8400")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if args.self_contained:
        doc = trio.run(self_contained, args.readings)
    elif args.mode == "serve":
        data = args.data or Path("data/examples/sensor")
        trio.run(serve, args.devnet, data, args.host, args.port)
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
