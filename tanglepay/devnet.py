"""`tanglepay devnet`: a coordinator and N nodes on loopback, each its own process on embedded
sqlite, and a faucet-funded traffic generator that sends signed transfers through the nodes'
HTTP APIs and reports each milestone and how long its transfers took to confirm, and a device
that pays a meter per reading over a payment channel (`metered.py`). It prints the URL of the
explorer (the dashboard every node serves at `/`) first.

Everything lives under the data directory:

```
devnet.json           what runs where: API URLs and p2p addresses (public)
network.json          network id, genesis, committee key set (shared by every node)
secrets.json          committee seeds and the faucet wallet seed (0600; devnet only)
coordinator/          coordinator.json, signers.json (0600), node.json, node.db, journal, log
node1/ ... nodeN/     node.json, node.db, log
```
The first run picks free loopback ports and writes the files; later runs reuse them and resume
from the databases. The directories are 0700 and the files that hold secrets (seeds, admin
tokens) 0600, created so. The processes run in their own session: Ctrl-C (or `duration_s`, or
the caller's `stop`) reaches the devnet alone, which stops the traffic, reads the coordinator's
last milestone, then stops every process cleanly.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import secrets
import socket
import stat
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import httpx
import numpy as np
import trio

from coordinator.signers import KeySigner
from tangle import work
from tangle.errors import ConfigError, StartupError, TangleError
from tangle.http.api import serve_api
from tangle.ledger.ledger import Genesis
from tangle.node.config import NetworkSpec, network_document
from tangle.node.core import Parameters
from tangle.protocol.milestone import KeySet
from tangle.service import start_listener
from wallet import AccountKey, WalletError

from .flows import FLOWS, Flow, run_flow, stop_gently
from .metered import run_device, serve_meter
from .traffic import Traffic, faucet_app, follow, send

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from wallet import AddressKey

NETWORK_ID: Final = int.from_bytes(b"tpdev", "big")
SUPPLY: Final = 10**15
COMMITTEE_SIZE: Final = 5
THRESHOLD: Final = 3
ACCOUNTS: Final = 8
PARAMS: Final = Parameters(network_id=NETWORK_ID, work_per_kib=1 << 12, min_output_amount=1_000)
HOST: Final = "127.0.0.1"
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
    flows: tuple[Flow, ...] = FLOWS
    """The child-process flows it runs (`flows.py`); a test of one page may run none."""


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
    """Write `doc` to `path` atomically, readable by the owner only if `private` (created so,
    never loosened first), in a folder readable by the owner only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)  # one left by a crash keeps its mode: create a new one
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
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
            private=True,  # the admin token
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


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None


def load_or_create(data_dir: Path, nodes: int, interval_s: float) -> Devnet:
    """Read the devnet under `data_dir`, creating it on first use. A file it cannot use is a
    `ConfigError` naming it and the fix."""
    try:
        if not (data_dir / "devnet.json").exists():
            _create(data_dir, nodes)
        return _load(data_dir, nodes, interval_s)
    except ConfigError:
        raise
    except OSError as exc:
        raise ConfigError(
            f"cannot write the devnet under {data_dir}: {exc.strerror}; use another --data-dir"
        ) from None
    except (KeyError, TypeError, ValueError, IndexError, TangleError, WalletError) as exc:
        raise ConfigError(
            f"{data_dir} holds damaged devnet files ({type(exc).__name__}: {exc}); "
            "delete the folder to start a new devnet, or use another --data-dir"
        ) from None


def _load(data_dir: Path, nodes: int, interval_s: float) -> Devnet:
    description = _read(data_dir / "devnet.json")
    if len(description["members"]) != nodes + 1:
        raise ConfigError(
            f"{data_dir} holds a devnet of {len(description['members']) - 1} nodes, not {nodes}; "
            "use --nodes accordingly or another --data-dir"
        )
    coordinator_file = data_dir / "coordinator" / "coordinator.json"
    coordinator_doc = _read(coordinator_file)
    if coordinator_doc["interval_s"] != interval_s:
        coordinator_doc["interval_s"] = interval_s
        _write(coordinator_file, coordinator_doc)
    cli = (sys.executable, "-m", "tanglepay.cli")
    members = []
    for entry in description["members"]:
        directory = data_dir / entry["data_dir"]
        name = entry["name"]
        command = (
            (*cli, "coordinator", "--config", str(coordinator_file))
            if name == "coordinator"
            else (*cli, "node", "--config", str(directory / "node.json"))
        )
        node_file = directory / "node.json"
        node_doc = _read(node_file)
        if stat.S_IMODE(node_file.stat().st_mode) & 0o077:  # written before it was private
            _write(node_file, node_doc, private=True)
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
    faucet = AccountKey(bytes.fromhex(_read(data_dir / "secrets.json")["faucet"]), 0)
    return Devnet(
        members=tuple(members),
        accounts=tuple(faucet.address_key(i) for i in range(ACCOUNTS)),
        faucet_port=int(description["faucet"].rsplit(":", 1)[1].split("/")[0]),
    )


async def launch(
    members: tuple[Member, ...], nursery: trio.Nursery, client: httpx.AsyncClient
) -> list[Launched]:
    """Start `members` as processes in `nursery` (cancelling it stops them: SIGTERM, then
    SIGKILL after 15 s) and wait until each answers on its API; one that exits first is a
    `StartupError` quoting the last line of its log (which names the cause and the fix)."""
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
                deliver_cancel=stop_gently,
                start_new_session=True,  # a Ctrl-C in the terminal is the devnet's to handle
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
        lines = launched.log.read_text(errors="replace").strip().splitlines()
        said = lines[-1] if lines else "no output"
        raise StartupError(
            f"{member.name} exited ({process.returncode}): {said} (log: {launched.log})"
        )
    raise StartupError(f"{member.name} did not answer in {STARTUP_S:g} s; see {launched.log}")


async def _cancel_when_set(stop: trio.Event, scope: trio.CancelScope) -> None:
    await stop.wait()
    scope.cancel()


async def run(
    options: DevnetOptions, say: Callable[[str], None] = print, *, stop: trio.Event | None = None
) -> int | None:
    """Run the devnet until `options.duration_s` has passed or `stop` is set (or the caller is
    cancelled: then the processes are stopped all the same); returns the confirmed milestone
    index it stopped at, None if the coordinator did not answer by then."""
    devnet = load_or_create(options.data_dir, options.nodes, options.interval_s)
    work.warm_up()
    traffic = Traffic(params=PARAMS, keys={key.address: key for key in devnet.accounts})
    rng = np.random.default_rng()
    coordinator, *nodes = devnet.members
    say(
        f"dashboard    {nodes[0].api}/  (the explorer: open it in a browser; every node serves one)"
    )
    duration = options.duration_s if options.duration_s is not None else math.inf
    async with httpx.AsyncClient(timeout=30) as client, trio.open_nursery() as processes:
        with trio.CancelScope() as running:
            if stop is not None:
                processes.start_soon(_cancel_when_set, stop, running)
            for launched in await launch(devnet.members, processes, client):
                member = launched.member
                say(f"{member.name:<12} api {member.api}  p2p {member.p2p}")
            running.deadline = trio.current_time() + duration  # counted once all are up
            say(
                f"devnet {options.data_dir}: network {NETWORK_ID:#x}, committee "
                f"{THRESHOLD}-of-{COMMITTEE_SIZE}, a milestone every {options.interval_s:g} s; "
                f"endpoints in {options.data_dir / 'devnet.json'}"
            )
            async with trio.open_nursery() as work_nursery:
                await work_nursery.start(follow, traffic, client, nodes[0].api, say)
                faucet = partial(
                    serve_api, faucet_app(traffic, client, nodes[0].api), HOST, devnet.faucet_port
                )
                where = f"{HOST}:{devnet.faucet_port}"
                await start_listener(
                    work_nursery,
                    faucet,
                    what="the faucet",
                    where=where,
                    fix="stop what uses it, or change the faucet URL in devnet.json",
                )
                say(f"faucet       POST http://{where}/faucet")
                data_dir, api = options.data_dir, nodes[0].api
                meter = await work_nursery.start(serve_meter, data_dir, api, NETWORK_ID)
                device = partial(run_device, traffic=traffic, client=client, rng=rng, say=say)
                work_nursery.start_soon(device, data_dir, api, meter, NETWORK_ID)
                say(f"meter        {meter}/reading, paid per reading by a device over a channel")
                for flow in options.flows:  # each a child process: `flows.py`
                    runner = partial(run_flow, flow, api, f"http://{where}/faucet", data_dir, say)
                    await work_nursery.start(runner)
                turn = 0
                while True:
                    await send(traffic, client, nodes[turn % len(nodes)].api, rng)
                    turn += 1
                    await trio.sleep(1 / options.tps)
        index = None
        with contextlib.suppress(httpx.HTTPError):
            info = (await client.get(f"{coordinator.api}/api/v1/info")).json()
            index = int(info["confirmed_milestone_index"])
        processes.cancel_scope.cancel()
    return index
