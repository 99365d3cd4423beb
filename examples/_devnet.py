"""What the examples need from a devnet: a funded payer wallet with the real
`payments.ledger.funder.LedgerFunder`, the payee's app served over its channel store and its
`LedgerDirectory` on a node, and, for `--self-contained`, a devnet of their own (a coordinator and
one node as processes) with the payee and the payer on it.

A devnet started by `./dev devnet` pays the device from its faucet (`POST /faucet`); a devnet of
the examples' own runs no faucet service and no traffic, so nothing else spends the faucet's
accounts and the device is paid with the faucet's key, from `secrets.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import trio

from coordinator.signers import KeySigner
from payments.channels.service import PayeeService
from payments.channels.state import Role
from payments.channels.store import ChannelStore, read_records
from payments.ledger.funder import ChannelPolicy, LedgerFunder
from payments.payperuse.cashier import LedgerDirectory
from tangle.http.api import serve_api
from tangle.protocol.message import Message, encode_message, prepare
from tanglepay.devnet import launch, load_or_create
from wallet import AccountKey, Wallet, WalletConfig
from wallet.client import NodeClient
from wallet.confirmation import find_nonce

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from starlette.types import ASGIApp

    from payments.channels.core import ChannelTerms
    from tangle.protocol.ids import Address, ChannelId, MessageId, PublicKey
    from tangle.protocol.payload import Payload
    from tangle.protocol.signature import Signer
    from wallet.keys import AddressKey

    PayeeApp = Callable[[Signer, int, LedgerDirectory, PayeeService], ASGIApp]
    """An example's payee: its app, given its key, the network id, the ledger's channels and its
    channel service."""
    Payer = Callable[[Path, Path, str, PublicKey], Awaitable[dict[str, Any]]]
    """An example's payer: given `devnet.json`, its data directory, the payee's URL and key, it
    pays and returns its summary."""

FUNDING_TIMEOUT_S = 120.0
MILESTONE_INTERVAL_S = 0.5
"""The milestone interval of an examples' own devnet."""


def read_devnet(path: Path) -> tuple[int, str, str]:
    """(network id, the first member's API URL, the faucet URL) from `devnet.json`."""
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
async def local_devnet(data_dir: Path) -> AsyncIterator[Path]:
    """A devnet of the caller's own under `data_dir` (created on first use): the coordinator and
    one node as processes, a milestone every `MILESTONE_INTERVAL_S`. Yields its `devnet.json`
    once both answer; stops them on exit."""
    devnet = load_or_create(data_dir, nodes=1, interval_s=MILESTONE_INTERVAL_S)
    async with httpx.AsyncClient(timeout=10.0) as http, trio.open_nursery() as nursery:
        await launch(devnet.members, nursery, http)
        yield data_dir / "devnet.json"
        nursery.cancel_scope.cancel()


class CountingFunder:
    """The `ChannelFunder` of a devnet payer: the real `LedgerFunder`, counting its ledger steps
    for the examples' summaries."""

    def __init__(self, funder: LedgerFunder) -> None:
        self._funder = funder
        self.opened = 0
        """Channels opened on the ledger."""
        self.topped_up = 0
        """Top-ups confirmed on the ledger."""

    async def open(self, payee: PublicKey, deposit: int) -> ChannelTerms:
        terms = await self._funder.open(payee, deposit)
        self.opened += 1
        return terms

    async def top_up(self, terms: ChannelTerms, amount: int) -> ChannelTerms:
        terms = await self._funder.top_up(terms, amount)
        self.topped_up += 1
        return terms

    async def ledger_state(self, channel_id: ChannelId) -> dict[str, Any]:
        """The channel as the ledger holds it now: deposit, parties, open or closing."""
        found = await self._funder.channel(channel_id)
        output = found.output
        return {
            "ledger_index": found.ledger_index,
            "ledger_deposit": output.amount,
            "ledger_payer": output.payer.hex(),
            "ledger_payee": output.payee.hex(),
            "ledger_closing": output.is_closing(found.ledger_index),
        }


async def _ask_faucet(faucet: str, to: Address, amount: int) -> None:
    """Ask a `./dev devnet`'s faucet service to pay `amount` to `to`."""
    async with httpx.AsyncClient() as http:
        response = await http.post(faucet, json={"address": to.hex(), "amount": amount})
        response.raise_for_status()


async def pay_with_faucet_key(
    data_dir: Path, api: str, to: Address, amount: int, *, again: bytes = b""
) -> None:
    """Pay `amount` to `to` (through the node at `api`) from the faucet's accounts of the devnet
    under `data_dir`, with the faucet's key from its `secrets.json`; the faucet's wallet state
    lives beside it. Returns once a milestone confirmed the payment. `to` is paid once per
    `again` (the idempotency key holds both: a retry pays nothing twice)."""
    seed = bytes.fromhex(json.loads((data_dir / "secrets.json").read_text())["faucet"])
    state = data_dir / "faucet-wallet.sqlite"
    config = WalletConfig(confirm_timeout_s=FUNDING_TIMEOUT_S, pow_threads=1)
    async with Wallet.open(AccountKey(seed, 0), url=api, state_path=state, config=config) as w:
        await w.sync()
        await w.send(to, amount, idempotency_key=b"faucet:" + to + again)


@contextlib.asynccontextmanager
async def devnet_payer(
    devnet: Path,
    work_dir: Path,
    needed: int,
    *,
    faucet_key: bool = False,
    policy: ChannelPolicy | None = None,
) -> AsyncIterator[tuple[CountingFunder, AddressKey, int, int]]:
    """A wallet with at least `needed` base units (paid by the faucet if short: its service, or
    with `faucet_key` its key, under an idempotency key holding how many times it did so
    before, a count kept in `work_dir` that only grows), its channel key, a `CountingFunder`
    over it, the network id and the least amount an output may hold (a deposit or a top-up
    below it is refused by the ledger). `policy` sets the terms of the channels it opens
    (two-way ones, say)."""
    network_id, api, faucet = read_devnet(devnet)
    account = AccountKey(_seed(work_dir, "device.seed"), 0)
    async with Wallet.open(account, url=api, state_path=work_dir / "wallet.sqlite") as wallet:
        available = (await wallet.sync()).balance.available
        if available < needed:
            funded = work_dir / "faucet-funded"  # how many times the faucet's key funded it
            times = int(funded.read_text()) if funded.exists() else 0
            if faucet_key:  # once per funding: a later one (a round short again) is paid again
                again = b":%d" % times
                await pay_with_faucet_key(
                    devnet.parent, api, wallet.address(0), needed, again=again
                )
            else:
                await _ask_faucet(faucet, wallet.address(0), needed)
            with anyio.fail_after(FUNDING_TIMEOUT_S):
                while True:  # the faucet's transfer confirms with a milestone
                    if (await wallet.sync()).balance.available >= needed:
                        break
                    await anyio.sleep(MILESTONE_INTERVAL_S)
            if faucet_key:  # after the confirmation: one cut short asks again under the same key
                funded.write_text(str(times + 1))
        key = wallet.channel_key(0)
        min_output = (await wallet.client.info()).min_output_amount
        funder = LedgerFunder(wallet, key, policy=policy)
        yield CountingFunder(funder), key, network_id, min_output


@contextlib.asynccontextmanager
async def devnet_directory(devnet: Path) -> AsyncIterator[tuple[LedgerDirectory, int]]:
    """The payee's view of the devnet's channels, and the network id."""
    network_id, api, _ = read_devnet(devnet)
    async with NodeClient(api) as client:
        yield LedgerDirectory(client, network_id), network_id


async def serve_payee_app(
    app: PayeeApp,
    store: str,
    devnet: Path,
    data: Path,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The payee's `app` on `host:port` (0: any free port) until cancelled; reports the bound
    port. Its key and its channel store (the file `store`) live under `data`."""
    signer = KeySigner(payee_seed(data))
    async with (
        ChannelStore(data / store) as channels,
        devnet_directory(devnet) as (directory, network_id),
    ):
        served = app(signer, network_id, directory, PayeeService(channels))
        await serve_api(served, host, port, task_status=task_status)


async def serve_forever(
    name: str, app: PayeeApp, store: str, devnet: Path, data: Path, host: str, port: int
) -> None:
    """`serve_payee_app` until interrupted, saying where the payee `name` listens and its key."""
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(serve_payee_app, app, store, devnet, data, host, port)
        key = KeySigner(payee_seed(data)).public_key
        print(f"{name} on http://{host}:{bound}, payee key {key.hex()}")


def payee_durable(store_path: Path, prefix: str) -> dict[str, Any]:
    """What the payee's channel store holds (read once the payee stopped): the sequence and the
    balance of its one channel, as `{prefix}_durable_sequence` and `{prefix}_durable_balance`."""
    [record] = [r for r in read_records(store_path) if r.role is Role.PAYEE]
    latest = record.latest
    return {
        f"{prefix}_durable_sequence": record.sequence,
        f"{prefix}_durable_balance": 0 if latest is None else latest.proof.payee_balance,
    }


async def self_contained(
    name: str, app: PayeeApp, store: str, payer: Payer, *, durable: str
) -> dict[str, Any]:
    """A devnet of its own (coordinator and node as processes), the payee `name` on a loopback
    port, and the payer, all under a temporary directory: the payer's summary and what the
    payee's store holds once it stopped (`payee_durable` with the prefix `durable`)."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        work = Path(tmp)
        payee = KeySigner(payee_seed(work / name)).public_key
        async with local_devnet(work / "devnet") as devnet, trio.open_nursery() as nursery:
            port = await nursery.start(
                serve_payee_app, app, store, devnet, work / name, "127.0.0.1", 0
            )
            doc = await payer(devnet, work / "payer", f"http://127.0.0.1:{port}", payee)
            nursery.cancel_scope.cancel()
        return doc | payee_durable(work / name / store, durable)


class LocalWork(NodeClient):
    """A node client whose `submit_pow` does the proof-of-work here, on one thread, and submits
    the finished message (so `DeviceAgent` and `anchor_batch` use it unchanged)."""

    __slots__ = ()

    async def submit_pow(self, payload: Payload) -> MessageId:
        info = await self.info()
        unsent = prepare(info.network_id, payload, info.work_per_kib)
        nonce = await find_nonce(unsent.root, unsent.target, threads=1)
        parents = await self.tips()
        message = Message(network_id=info.network_id, parents=parents, payload=payload, nonce=nonce)
        return await self.submit(encode_message(message))
