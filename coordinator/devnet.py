"""`tanglepay devnet`: a local network on embedded sqlite, in one trio process.

A coordinator issues a milestone every interval for the node beside it; a faucet-funded traffic
generator sends signed transfers between devnet accounts and reports each milestone and how long
its transfers took to confirm. Everything lives under the data directory:

```
devnet.json      network id, genesis, committee key set, database paths (public)
secrets.json     committee seeds and the faucet wallet seed (0600; devnet only)
node.db          the node's sqlite database (WAL)
coordinator.db   the coordinator's issuance journal
```
Running it again resumes from the data directory; Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np
import trio

from tangle import pow as work
from tangle.committee import KeySchedule
from tangle.core import Parameters
from tangle.dag import GENESIS_ID
from tangle.errors import NoTipsError
from tangle.ledger import Genesis
from tangle.ledger_node import LedgerNode
from tangle.message import decode_message, encode_message, prepare
from tangle.milestone import KeySet
from tangle.node import Node
from tangle.tip_selection import UniformRandomTips
from tangle.transaction import BasicOutput, Transaction, TransactionEssence
from wallet import AccountKey, sign_transaction

from .journal import Journal
from .service import Coordinator
from .signers import KeySigner

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tangle.core import NodeCore
    from tangle.ids import MessageId, OutputId
    from wallet import AddressKey

NETWORK_ID: Final = int.from_bytes(b"tpdev", "big")
SUPPLY: Final = 10**15
COMMITTEE_SIZE: Final = 5
THRESHOLD: Final = 3
ACCOUNTS: Final = 8
PARAMS: Final = Parameters(network_id=NETWORK_ID, work_per_kib=1 << 12, min_output_amount=1_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class DevnetOptions:
    """How to run the devnet."""

    data_dir: Path
    """Where its files live."""
    interval_s: float = 1.0
    """Milestone interval."""
    tps: float = 20.0
    """Transfers per second the traffic generator sends."""
    duration_s: float | None = None
    """Stop after this long (None: until Ctrl-C)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Devnet:
    """A devnet's fixed setup, as stored in its data directory."""

    genesis: Genesis
    """The genesis allocations (one per traffic account)."""
    schedule: KeySchedule
    """The committee key set."""
    signers: tuple[KeySigner, ...]
    """The committee members (all held here: a devnet)."""
    accounts: tuple[AddressKey, ...]
    """The traffic generator's keys."""


def load_or_create(data_dir: Path) -> Devnet:
    """Read the devnet under `data_dir`, creating its keys and genesis on first use."""
    data_dir.mkdir(parents=True, exist_ok=True)
    secrets_path = data_dir / "secrets.json"
    if not secrets_path.exists():
        fresh = {
            "committee_seeds": [secrets.token_hex(32) for _ in range(COMMITTEE_SIZE)],
            "faucet_seed": secrets.token_hex(64),
        }
        _write_private(secrets_path, json.dumps(fresh, indent=2))
    stored = json.loads(secrets_path.read_text())
    signers = tuple(
        sorted(
            (KeySigner(bytes.fromhex(s)) for s in stored["committee_seeds"]),
            key=lambda s: s.public_key,
        )
    )
    faucet = AccountKey(bytes.fromhex(stored["faucet_seed"]), 0)
    accounts = tuple(faucet.address_key(i) for i in range(ACCOUNTS))
    genesis = Genesis(
        network_id=NETWORK_ID,
        supply=SUPPLY,
        allocations=tuple((key.address, SUPPLY // ACCOUNTS) for key in accounts),
    )
    key_set = KeySet(threshold=THRESHOLD, public_keys=tuple(s.public_key for s in signers))
    devnet = Devnet(
        genesis=genesis,
        schedule=KeySchedule(entries=((1, key_set),)),
        signers=signers,
        accounts=accounts,
    )
    _write_description(data_dir, devnet)
    return devnet


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_description(data_dir: Path, devnet: Devnet) -> None:
    key_set = devnet.schedule.key_set_at(1)
    description = {
        "network_id": NETWORK_ID,
        "work_per_kib": PARAMS.work_per_kib,
        "min_output_amount": PARAMS.min_output_amount,
        "supply": SUPPLY,
        "committee": {
            "threshold": key_set.threshold,
            "public_keys": [k.hex() for k in key_set.public_keys],
        },
        "nodes": [{"database": str(data_dir / "node.db")}],
        "coordinator": {"journal": str(data_dir / "coordinator.db")},
    }
    (data_dir / "devnet.json").write_text(json.dumps(description, indent=2) + "\n")


@dataclass(slots=True)
class _Traffic:
    """The traffic generator's bookkeeping."""

    sent_at: dict[MessageId, float] = field(default_factory=dict)
    reserved: dict[MessageId, tuple[OutputId, ...]] = field(default_factory=dict)
    in_flight: set[OutputId] = field(default_factory=set)

    def reserve(self, message_id: MessageId, inputs: tuple[OutputId, ...]) -> None:
        self.reserved[message_id] = inputs
        self.in_flight.update(inputs)

    def settle(self, message_id: MessageId) -> float | None:
        """Forget a referenced transfer; its latency if it was ours."""
        for oid in self.reserved.pop(message_id, ()):
            self.in_flight.discard(oid)
        sent = self.sent_at.pop(message_id, None)
        return None if sent is None else time.monotonic() - sent


async def _report(
    node: Node, traffic: _Traffic, say: Callable[[str], None], *, task_status: trio.TaskStatus[None]
) -> None:
    """Say what each milestone confirmed and how long our transfers took."""
    with node.subscribe() as notices:
        task_status.started()
        async for notice in notices:
            event = notice.confirmed
            latencies = [
                latency
                for mid in event.result.referenced
                if (latency := traffic.settle(mid)) is not None
            ]
            p50 = f"{statistics.median(latencies):.2f} s" if latencies else "-"
            say(
                f"milestone {event.record.index:>5}  "
                f"{len(event.result.included):>4} transfers confirmed (p50 {p50})  "
                f"{len(event.result.conflicts)} conflicting  "
                f"ledger {event.state_hash.hex()[:16]}"
            )


async def _send(node: Node, devnet: Devnet, traffic: _Traffic, rng: np.random.Generator) -> None:
    """Send one transfer between devnet accounts, from a confirmed output not in flight."""
    keys = {key.address: key for key in devnet.accounts}
    least = 2 * PARAMS.min_output_amount
    candidates = await node.read_core(
        lambda core: [
            (oid, out)
            for oid, out in core.ledger.unspent.items()
            if oid not in traffic.in_flight and out.address in keys and out.amount >= least
        ]
    )
    if not candidates:
        return
    oid, output = candidates[int(rng.integers(len(candidates)))]
    to = devnet.accounts[int(rng.integers(len(devnet.accounts)))]
    amount = int(rng.integers(PARAMS.min_output_amount, output.amount // 2 + 1))
    essence = TransactionEssence(
        network_id=NETWORK_ID,
        inputs=(oid,),
        outputs=(
            BasicOutput(address=to.address, amount=amount),
            BasicOutput(address=output.address, amount=output.amount - amount),
        ),
    )
    tx = sign_transaction(essence, [keys[output.address]])
    unsent = prepare(NETWORK_ID, tx, PARAMS.work_per_kib)
    nonce = await work.solve(unsent.root, unsent.target)
    parents = await node.read_core(lambda core: _tips(core, rng))
    raw = encode_message(unsent.attach(parents, nonce))
    mid = (await node.submit(raw)).id
    traffic.reserve(mid, (oid,))
    traffic.sent_at[mid] = time.monotonic()


def _tips(core: NodeCore, rng: np.random.Generator) -> tuple[MessageId, ...]:
    try:
        return UniformRandomTips().select(core.dag, rng, 2)
    except NoTipsError:
        return (GENESIS_ID,)


async def run(options: DevnetOptions, say: Callable[[str], None] = print) -> int:
    """Run the devnet until `options.duration_s` has passed or the caller is cancelled;
    returns the confirmed milestone index it stopped at."""
    devnet = load_or_create(options.data_dir)
    work.warm_up()
    traffic = _Traffic()
    ledger = LedgerNode.open(
        options.data_dir / "node.db",
        genesis=devnet.genesis,
        params=PARAMS,
        schedule=devnet.schedule,
    )
    journal = Journal.open(options.data_dir / "coordinator.db")
    for raw in ledger.storage.unreferenced_messages():  # transfers sent before a restart
        parsed = decode_message(raw)
        if isinstance(parsed.message.payload, Transaction):
            traffic.reserve(parsed.id, parsed.message.payload.essence.inputs)
    node = Node(ledger)
    try:
        say(
            f"devnet {options.data_dir}: network {NETWORK_ID:#x}, committee "
            f"{THRESHOLD}-of-{COMMITTEE_SIZE}, milestone every {options.interval_s:g} s, "
            f"resuming at milestone {ledger.core.confirmed_index}"
        )
        coordinator = Coordinator(node, journal, devnet.signers)

        async def publish(raw: bytes) -> None:
            del raw  # a single-node devnet: nobody else to gossip to

        rng = np.random.default_rng()
        duration = options.duration_s if options.duration_s is not None else math.inf
        with trio.move_on_after(duration):
            async with trio.open_nursery() as nursery:
                await nursery.start(_report, node, traffic, say)
                await nursery.start(coordinator.run, publish, options.interval_s)
                while True:
                    await _send(node, devnet, traffic, rng)
                    await trio.sleep(1 / options.tps)
        return await node.read_core(lambda core: core.confirmed_index)
    finally:
        journal.close()
        ledger.close()
