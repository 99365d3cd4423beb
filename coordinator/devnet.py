"""`tanglepay devnet`: a coordinator and N nodes on loopback, each its own process on embedded
sqlite, and a faucet-funded traffic generator that sends signed transfers through the nodes'
HTTP APIs and reports each milestone and how long its transfers took to confirm.

Everything lives under the data directory:

```
devnet.json           what runs where: API URLs and p2p addresses (public)
network.json          network id, genesis, committee key set (shared by every node)
secrets.json          committee seeds and the faucet wallet seed (0600; devnet only)
coordinator/          coordinator.json, signers.json (0600), node.json, node.db, journal, log
node1/ ... nodeN/     node.json, node.db, log
```
The first run picks free loopback ports and writes the files; later runs reuse them and resume
from the databases. Ctrl-C (or `duration_s`) stops every process cleanly.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import secrets
import signal
import socket
import statistics
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import httpx
import numpy as np
import trio
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tangle import pow as work
from tangle.api import serve_api
from tangle.config import NetworkSpec, network_document
from tangle.core import Parameters
from tangle.errors import ConfigError, TangleError
from tangle.ids import Address, MessageId, OutputId
from tangle.ledger import Genesis
from tangle.message import encode_message, prepare
from tangle.milestone import KeySet
from tangle.transaction import BasicOutput, TransactionEssence
from wallet import DEVNET as DEVNET_NETWORK
from wallet import AccountKey, WalletError, decode_address, sign_transaction

from .signers import KeySigner

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from starlette.requests import Request

    from wallet import AddressKey

NETWORK_ID: Final = int.from_bytes(b"tpdev", "big")
SUPPLY: Final = 10**15
COMMITTEE_SIZE: Final = 5
THRESHOLD: Final = 3
ACCOUNTS: Final = 8
PARAMS: Final = Parameters(network_id=NETWORK_ID, work_per_kib=1 << 12, min_output_amount=1_000)
HOST: Final = "127.0.0.1"
FAUCET_AMOUNT: Final = 10_000_000
FAUCET_MAX: Final = 1_000_000_000
STARTUP_S: Final = 90.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DevnetOptions:
    """How to run the devnet."""

    data_dir: Path
    """Where its files live."""
    nodes: int = 3
    """Nodes beside the coordinator."""
    interval_s: float = 1.0
    """Milestone interval."""
    tps: float = 20.0
    """Transfers per second the traffic generator sends."""
    duration_s: float | None = None
    """Stop after this long (None: until Ctrl-C)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One process of the devnet."""

    name: str
    """`coordinator`, `node1`, ..."""
    command: tuple[str, ...]
    """How to start it."""
    api: str
    """Its HTTP API base URL."""
    p2p: str
    """Its gossip address."""
    directory: Path
    """Its files."""
    admin_token: str
    """Bearer token of its admin endpoints."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Launched:
    """A devnet process that answers on its API."""

    member: Member
    """Which one."""
    process: trio.Process
    """The running process."""
    log: Path
    """Where its output goes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Devnet:
    """A devnet as its data directory describes it."""

    members: tuple[Member, ...]
    """The coordinator first, then the nodes."""
    accounts: tuple[AddressKey, ...]
    """The traffic generator's (faucet) keys."""
    faucet_port: int
    """Where the faucet listens."""


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _write(path: Path, doc: object, *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(doc, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _create(data_dir: Path, nodes: int) -> None:
    seeds = [secrets.token_hex(32) for _ in range(COMMITTEE_SIZE)]
    faucet_seed = secrets.token_hex(64)
    _write(data_dir / "secrets.json", {"committee": seeds, "faucet": faucet_seed}, private=True)
    signers = sorted((KeySigner(bytes.fromhex(s)) for s in seeds), key=lambda s: s.public_key)
    faucet = AccountKey(bytes.fromhex(faucet_seed), 0)
    spec = NetworkSpec(
        params=PARAMS,
        genesis=Genesis(
            network_id=NETWORK_ID,
            supply=SUPPLY,
            allocations=tuple((faucet.address(i), SUPPLY // ACCOUNTS) for i in range(ACCOUNTS)),
        ),
        key_set=KeySet(threshold=THRESHOLD, public_keys=tuple(s.public_key for s in signers)),
    )
    _write(data_dir / "network.json", network_document(spec))
    names = ["coordinator", *(f"node{i}" for i in range(1, nodes + 1))]
    ports = _free_ports(2 * len(names) + 1)
    p2p = {name: ports[2 * i] for i, name in enumerate(names)}
    api = {name: ports[2 * i + 1] for i, name in enumerate(names)}
    for i, name in enumerate(names):
        _write(
            data_dir / name / "node.json",
            {
                "network": "../network.json",
                "data_dir": ".",
                # Each process dials the ones after it: a full mesh, one link per pair.
                "p2p": {
                    "host": HOST,
                    "port": p2p[name],
                    "peers": [f"{HOST}:{p2p[other]}" for other in names[i + 1 :]],
                },
                "api": {"host": HOST, "port": api[name], "admin_token": secrets.token_hex(16)},
                "prune": {"keep_milestones": 1000, "every_s": 60},
            },
        )
    _write(data_dir / "coordinator" / "signers.json", {"seeds": seeds}, private=True)
    _write(
        data_dir / "coordinator" / "coordinator.json",
        {
            "node": "node.json",
            "journal": "journal.db",
            "interval_s": 1.0,
            "signers": "signers.json",
        },
    )
    _write(
        data_dir / "devnet.json",
        {
            "network_id": NETWORK_ID,
            "committee": {"threshold": THRESHOLD, "size": COMMITTEE_SIZE},
            "faucet": f"http://{HOST}:{ports[-1]}/faucet",
            "members": [
                {
                    "name": name,
                    "api": f"http://{HOST}:{api[name]}",
                    "p2p": f"{HOST}:{p2p[name]}",
                    "data_dir": name,
                }
                for name in names
            ],
        },
    )


def load_or_create(data_dir: Path, nodes: int, interval_s: float) -> Devnet:
    """Read the devnet under `data_dir`, creating it on first use."""
    if not (data_dir / "devnet.json").exists():
        _create(data_dir, nodes)
    description = json.loads((data_dir / "devnet.json").read_text())
    if len(description["members"]) != nodes + 1:
        raise ConfigError(
            f"{data_dir} holds a devnet of {len(description['members']) - 1} nodes, not {nodes}; "
            "use --nodes accordingly or another --data-dir"
        )
    coordinator_file = data_dir / "coordinator" / "coordinator.json"
    coordinator_doc = json.loads(coordinator_file.read_text())
    if coordinator_doc["interval_s"] != interval_s:
        coordinator_doc["interval_s"] = interval_s
        _write(coordinator_file, coordinator_doc)
    cli = (sys.executable, "-m", "tangle.cli")
    members = []
    for entry in description["members"]:
        directory = data_dir / entry["data_dir"]
        name = entry["name"]
        command = (
            (*cli, "coordinator", "--config", str(coordinator_file))
            if name == "coordinator"
            else (*cli, "node", "--config", str(directory / "node.json"))
        )
        node_doc = json.loads((directory / "node.json").read_text())
        members.append(
            Member(
                name=name,
                command=command,
                api=entry["api"],
                p2p=entry["p2p"],
                directory=directory,
                admin_token=node_doc["api"]["admin_token"],
            )
        )
    faucet = AccountKey(
        bytes.fromhex(json.loads((data_dir / "secrets.json").read_text())["faucet"]), 0
    )
    return Devnet(
        members=tuple(members),
        accounts=tuple(faucet.address_key(i) for i in range(ACCOUNTS)),
        faucet_port=int(description["faucet"].rsplit(":", 1)[1].split("/")[0]),
    )


async def _stop_gently(process: trio.Process) -> None:
    """Cancel delivery for a devnet process: SIGTERM, then SIGKILL after 15 s."""
    process.send_signal(signal.SIGTERM)
    with trio.move_on_after(15):
        await process.wait()
        return
    process.kill()


async def launch(
    members: tuple[Member, ...], nursery: trio.Nursery, client: httpx.AsyncClient
) -> list[Launched]:
    """Start `members` as processes in `nursery` (cancelling it stops them: SIGTERM, then
    SIGKILL after 15 s) and wait until each answers on its API."""
    started = []
    for member in members:
        member.directory.mkdir(parents=True, exist_ok=True)
        log = member.directory / "log"
        with log.open("ab") as sink:
            run = functools.partial(
                trio.run_process,
                member.command,
                stdout=sink,
                stderr=subprocess.STDOUT,
                check=False,
                deliver_cancel=_stop_gently,
            )
            process: trio.Process = await nursery.start(run)
        started.append(Launched(member=member, process=process, log=log))
    for launched in started:
        await _ready(launched, client)
    return started


async def _ready(launched: Launched, client: httpx.AsyncClient) -> None:
    member, process = launched.member, launched.process
    with trio.move_on_after(STARTUP_S):
        while process.returncode is None:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{member.api}/api/v1/info")).status_code == 200:
                    return
            await trio.sleep(0.2)
        raise ConfigError(f"{member.name} exited ({process.returncode}); see {launched.log}")
    raise ConfigError(f"{member.name} did not answer in {STARTUP_S:g} s; see {launched.log}")


@dataclass(slots=True)
class _Traffic:
    """The traffic generator's view of its accounts."""

    keys: dict[Address, AddressKey]
    unspent: dict[OutputId, tuple[Address, int]] = field(default_factory=dict)
    in_flight: set[OutputId] = field(default_factory=set)
    sent: dict[str, tuple[float, tuple[OutputId, ...]]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def settle(self, message_id: str, included: bool) -> None:
        """A transfer of ours was confirmed (or refused): its inputs are free (or gone)."""
        sent = self.sent.pop(message_id, None)
        if sent is None:
            return
        self.latencies.append(time.monotonic() - sent[0])
        self.in_flight.difference_update(sent[1])
        if included:
            for oid in sent[1]:
                self.unspent.pop(oid, None)


async def _refresh(traffic: _Traffic, client: httpx.AsyncClient, api: str) -> None:
    unspent: dict[OutputId, tuple[Address, int]] = {}
    for address in traffic.keys:
        body = (await client.get(f"{api}/api/v1/addresses/{address.hex()}/outputs")).json()
        for out in body["outputs"]:
            unspent[OutputId.from_hex(out["output_id"])] = (address, int(out["amount"]))
    traffic.unspent = unspent


async def _pay(
    traffic: _Traffic,
    client: httpx.AsyncClient,
    api: str,
    to: Address,
    amount: int | None,
    rng: np.random.Generator,
) -> str | None:
    """Send `amount` (None: a random amount) from one of the generator's confirmed outputs to
    `to`, the change back; returns the message id, or None if no output can pay it."""
    floor = PARAMS.min_output_amount
    least = floor + (floor if amount is None else amount)
    candidates = [
        (oid, held)
        for oid, held in traffic.unspent.items()
        if oid not in traffic.in_flight and held[1] >= least
    ]
    if not candidates:
        return None
    oid, (owner, held) = candidates[int(rng.integers(len(candidates)))]
    traffic.in_flight.add(oid)
    try:
        paid = int(rng.integers(floor, held - floor + 1)) if amount is None else amount
        essence = TransactionEssence(
            network_id=NETWORK_ID,
            inputs=(oid,),
            outputs=(
                BasicOutput(address=to, amount=paid),
                BasicOutput(address=owner, amount=held - paid),
            ),
        )
        unsent = prepare(NETWORK_ID, sign_transaction(essence, [traffic.keys[owner]]), 1 << 12)
        nonce = await work.solve(unsent.root, unsent.target)
        answer = await client.get(f"{api}/api/v1/tips", params={"count": 2})
        if answer.status_code != 200:  # 503 while the node catches up: the next turn retries
            traffic.in_flight.discard(oid)
            return None
        tips = answer.json()["tips"]
        raw = encode_message(unsent.attach(tuple(MessageId.from_hex(t) for t in tips), nonce))
        response = await client.post(
            f"{api}/api/v1/messages",
            content=raw,
            headers={"content-type": "application/octet-stream"},
        )
    except BaseException:
        traffic.in_flight.discard(oid)
        raise
    if response.status_code != 201:
        traffic.in_flight.discard(oid)
        return None
    message_id: str = response.json()["id"]
    traffic.sent[message_id] = (time.monotonic(), (oid,))
    return message_id


async def _send(
    traffic: _Traffic, client: httpx.AsyncClient, api: str, rng: np.random.Generator
) -> None:
    """One transfer of a random amount between the generator's own accounts."""
    to = list(traffic.keys)[int(rng.integers(len(traffic.keys)))]
    await _pay(traffic, client, api, to, None, rng)


def _address(text: str) -> Address:
    """A devnet address in bech32m (`tpdev1...`) or 64 hex digits."""
    if len(text) == 2 * Address.SIZE and all(c in string.hexdigits for c in text):
        return Address.from_hex(text)
    return decode_address(text, DEVNET_NETWORK)


def faucet_app(traffic: _Traffic, client: httpx.AsyncClient, api: str) -> Starlette:
    """`POST /faucet` with `{"address": hex, "amount": int}` (amount optional, at most
    FAUCET_MAX): pays the address from the faucet accounts; 201 `{"message_id"}`."""
    rng = np.random.default_rng()

    async def pay(request: Request) -> Response:
        try:
            body = await request.json()
            address = _address(str(body["address"]))
            amount = int(body.get("amount", FAUCET_AMOUNT))
        except (ValueError, KeyError, TypeError, TangleError, WalletError):
            return JSONResponse(
                {"error": "expected {'address': tpdev1... or hex, 'amount': int}"}, 400
            )
        if not PARAMS.min_output_amount <= amount <= FAUCET_MAX:
            return JSONResponse(
                {"error": f"amount must be in {PARAMS.min_output_amount}..{FAUCET_MAX}"}, 400
            )
        message_id = await _pay(traffic, client, api, address, amount, rng)
        if message_id is None:
            return JSONResponse({"error": "the faucet is busy; try again after a milestone"}, 503)
        return JSONResponse({"message_id": message_id, "amount": amount}, 201)

    return Starlette(routes=[Route("/faucet", pay, methods=["POST"])])


async def _follow(
    traffic: _Traffic,
    client: httpx.AsyncClient,
    api: str,
    say: Callable[[str], None],
    *,
    task_status: trio.TaskStatus[None],
) -> None:
    """Report each milestone from the event stream and keep the generator's view current."""
    started = False
    async with client.stream("GET", f"{api}/api/v1/events", timeout=None) as stream:
        event = ""
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
                continue
            if not line.startswith("data: "):
                continue
            data: dict[str, Any] = json.loads(line.removeprefix("data: "))
            if event == "transaction":
                traffic.settle(data["message_id"], data["inclusion"] == "included")
            elif event == "milestone":
                latencies, traffic.latencies = traffic.latencies, []
                p50 = f"{statistics.median(latencies):.2f} s" if latencies else "-"
                say(
                    f"milestone {data['index']:>5}  {data['included']:>4} transfers confirmed "
                    f"(ours {len(latencies)}, p50 {p50})  {data['conflicting']} conflicting  "
                    f"ledger {data['ledger_state_hash'][:16]}"
                )
                await _refresh(traffic, client, api)
                if not started:
                    started = True
                    task_status.started()


async def run(options: DevnetOptions, say: Callable[[str], None] = print) -> int:
    """Run the devnet until `options.duration_s` has passed or the caller is cancelled; returns
    the confirmed milestone index it stopped at."""
    devnet = load_or_create(options.data_dir, options.nodes, options.interval_s)
    work.warm_up()
    traffic = _Traffic(keys={key.address: key for key in devnet.accounts})
    rng = np.random.default_rng()
    coordinator, *nodes = devnet.members
    async with httpx.AsyncClient(timeout=30) as client, trio.open_nursery() as processes:
        for launched in await launch(devnet.members, processes, client):
            member = launched.member
            say(f"{member.name:<12} api {member.api}  p2p {member.p2p}")
        say(
            f"devnet {options.data_dir}: network {NETWORK_ID:#x}, committee "
            f"{THRESHOLD}-of-{COMMITTEE_SIZE}, a milestone every {options.interval_s:g} s; "
            f"endpoints in {options.data_dir / 'devnet.json'}"
        )
        duration = options.duration_s if options.duration_s is not None else math.inf
        with trio.move_on_after(duration):
            async with trio.open_nursery() as work_nursery:
                await work_nursery.start(_follow, traffic, client, nodes[0].api, say)
                app = faucet_app(traffic, client, nodes[0].api)
                await work_nursery.start(serve_api, app, HOST, devnet.faucet_port)
                say(f"faucet       POST http://{HOST}:{devnet.faucet_port}/faucet")
                turn = 0
                while True:
                    await _send(traffic, client, nodes[turn % len(nodes)].api, rng)
                    turn += 1
                    await trio.sleep(1 / options.tps)
        info = (await client.get(f"{coordinator.api}/api/v1/info")).json()
        processes.cancel_scope.cancel()
    return int(info["confirmed_milestone_index"])
