"""What the examples need from a running `./dev devnet`: a funded payer wallet with the real
`payments.funding.LedgerFunder`, and the payee's `LedgerDirectory` on a node."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import httpx

from payments.cashier import LedgerDirectory
from payments.funding import LedgerFunder
from wallet import AccountKey, Wallet
from wallet.client import NodeClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from wallet.keys import AddressKey

FUNDING_TIMEOUT_S = 120.0


def read_devnet(path: Path) -> tuple[int, str, str]:
    """(network id, the first node's API URL, the faucet URL) from `devnet.json`."""
    doc = json.loads(Path(path).read_text())
    return int(doc["network_id"]), str(doc["members"][0]["api"]), str(doc["faucet"])


def _seed(work_dir: Path, name: str) -> bytes:
    """A 32-byte seed kept in `work_dir/name` (created on first use), so reruns reuse keys."""
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / name
    if not path.exists():
        path.write_text(os.urandom(32).hex())
        path.chmod(0o600)
    return bytes.fromhex(path.read_text().strip())


def payee_seed(work_dir: Path) -> bytes:
    return _seed(work_dir, "payee.seed")


@contextlib.asynccontextmanager
async def devnet_payer(
    devnet: Path, work_dir: Path, needed: int
) -> AsyncIterator[tuple[LedgerFunder, AddressKey, int, int]]:
    """A wallet with at least `needed` base units (asked from the faucet if short), its channel
    key, a `LedgerFunder` over it, the network id and the least amount an output may hold (a
    deposit or a top-up below it is refused by the ledger)."""
    network_id, api, faucet = read_devnet(devnet)
    account = AccountKey(_seed(work_dir, "device.seed"), 0)
    async with Wallet.open(account, url=api, state_path=work_dir / "wallet.sqlite") as wallet:
        if (await wallet.sync()).balance.available < needed:
            async with httpx.AsyncClient() as http:
                response = await http.post(
                    faucet, json={"address": wallet.address(0).hex(), "amount": needed}
                )
                response.raise_for_status()
            with anyio.fail_after(FUNDING_TIMEOUT_S):
                while True:  # the faucet's transfer confirms with a milestone
                    if (await wallet.sync()).balance.available >= needed:
                        break
                    await anyio.sleep(1.0)
        key = wallet.channel_key(0)
        min_output = (await wallet.client.info()).min_output_amount
        yield LedgerFunder(wallet, key), key, network_id, min_output


@contextlib.asynccontextmanager
async def devnet_directory(devnet: Path) -> AsyncIterator[tuple[LedgerDirectory, int]]:
    """The payee's view of the devnet's channels, and the network id."""
    network_id, api, _ = read_devnet(devnet)
    async with NodeClient(api) as client:
        yield LedgerDirectory(client, network_id), network_id
