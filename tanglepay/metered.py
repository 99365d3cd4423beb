"""The devnet's pay-per-use flow: a meter (a Starlette app behind the payments paywall, paid per
reading through a one-way channel to its key) and a device that reads it twice a second with
`PaymentAuth`, opening its channel on the ledger on the first 402 and topping it up as it runs
low (every 50 s or so), with a wallet the devnet's faucet funds. The channel and its top-ups are
what the explorer's channel pages show.

Files, under the devnet's data directory: `meter/` (its key seed and channel store) and
`device/` (its wallet seed and state), created 0700 with 0600 seeds, reused across runs.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Final

import httpx
import trio
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from coordinator.signers import KeySigner
from payments.channels.service import PayeeService
from payments.channels.store import ChannelStore
from payments.errors import PaymentError
from payments.ledger.funder import ChannelPolicy, LedgerFunder
from payments.payperuse.auth import PaymentAuth
from payments.payperuse.budget import Budget, FundingPolicy
from payments.payperuse.cashier import LedgerDirectory
from payments.payperuse.metering import Tariff
from payments.payperuse.paywall import Paywall
from tangle.errors import TangleError
from tangle.http.api import serve_api
from wallet import AccountKey, Wallet, WalletError
from wallet.client import NodeClient

from .traffic import pay_from_faucet

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import numpy as np
    from starlette.requests import Request
    from starlette.responses import Response

    from .traffic import Traffic

PRICE: Final = 100
"""Base units per reading."""
DEPOSIT: Final = 10_000
"""A channel's deposit, and each top-up (the ledger's least output is 1,000): 100 readings, so
a top-up reaches the ledger about every `100 * READ_EVERY_S` seconds."""
FUNDS: Final = 5_000_000
"""What the faucet pays the device."""
READ_EVERY_S: Final = 0.5
FUNDING_WAIT_S: Final = 30.0
"""How long the device waits for the faucet's payment to confirm before asking again."""
HOST: Final = "127.0.0.1"
log = logging.getLogger(__name__)


def _seed(folder: Path) -> bytes:
    """The 32-byte seed in `folder/seed` (created 0600 on first use)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / "seed"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex())
    return bytes.fromhex(path.read_text().strip())


def meter_app() -> Starlette:
    """What the device pays for: a meter reading that grows with every read."""
    reads = 0

    async def reading(request: Request) -> Response:
        nonlocal reads
        reads += 1
        return JSONResponse({"sequence": reads, "kwh": round(reads * 0.013, 3)})

    return Starlette(routes=[Route("/reading", reading)])


async def serve_meter(
    data_dir: Path, api: str, network_id: int, *, task_status: trio.TaskStatus[str]
) -> None:
    """The meter behind its paywall on a free loopback port until cancelled; reports its URL."""
    signer = KeySigner(_seed(data_dir / "meter"))
    async with (
        ChannelStore(data_dir / "meter" / "channels.sqlite") as store,
        NodeClient(api) as node,
    ):
        paywall = Paywall(
            meter_app(),
            signer=signer,
            network_id=network_id,
            tariff=Tariff.per_request(PRICE),
            directory=LedgerDirectory(node, network_id),
            service=PayeeService(store),
        )
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_api, paywall, HOST, 0)
            task_status.started(f"http://{HOST}:{port}")


async def run_device(
    data_dir: Path,
    api: str,
    meter: str,
    network_id: int,
    *,
    traffic: Traffic,
    client: httpx.AsyncClient,
    rng: np.random.Generator,
    say: Callable[[str], None],
) -> None:
    """Read the meter at `meter` every `READ_EVERY_S` for ever, paying per reading; funded by
    the faucet (`traffic`) when its wallet runs short. A failure is reported and retried."""
    account = AccountKey(_seed(data_dir / "device"), 0)
    state = data_dir / "device" / "wallet.sqlite"
    async with Wallet.open(account, url=api, state_path=state) as wallet:
        signer = wallet.channel_key(0)
        auth = PaymentAuth(
            signer=signer,
            network_id=network_id,
            funder=LedgerFunder(wallet, signer, policy=ChannelPolicy(challenge_period=20)),
            budget=Budget(total=10**12, per_request=2 * PRICE),
            funding=FundingPolicy(deposit=DEPOSIT, top_up=DEPOSIT),
        )
        announced = False
        next_funding = trio.current_time()
        async with httpx.AsyncClient(base_url=meter, auth=auth, timeout=60) as device:
            while True:
                try:
                    short = (await wallet.sync()).balance.available < 2 * DEPOSIT
                    if short and trio.current_time() >= next_funding:
                        await pay_from_faucet(traffic, client, api, wallet.address(0), FUNDS, rng)
                        next_funding = trio.current_time() + FUNDING_WAIT_S
                    elif not short:
                        (await device.get("/reading")).raise_for_status()
                        if not announced and auth.channels:
                            channel = next(iter(auth.channels.values())).terms.channel_id
                            say(f"device       pays the meter per reading, channel {channel.hex()}")
                            announced = True
                except (httpx.HTTPError, PaymentError, WalletError, TangleError) as exc:
                    log.warning("the metered device failed a reading: %s", exc)
                await trio.sleep(READ_EVERY_S)
