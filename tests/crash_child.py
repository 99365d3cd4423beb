"""A coordinator and its node under traffic, to be SIGKILLed by `test_crash.py`.

Usage: python -m tests.crash_child DIRECTORY SEED ROUNDS

Every message the process publishes is appended to DIRECTORY/wire (u32 length, bytes, fsync
after each), standing in for gossip. On start it recovers like a real coordinator: republishes
the journaled milestone its node has not confirmed and the stored messages no milestone has
referenced yet (what a restarted node gossips again).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import trio

from coordinator import Coordinator, Journal, KeySigner
from tangle.ledger.committee import KeySchedule
from tangle.node.core import Parameters
from tangle.node.ledger_node import LedgerNode
from tangle.node.node import Node
from tangle.protocol.milestone import KeySet
from tangle.protocol.transaction import address_of
from tests.builders import NET, genesis, key, on_tips, transfer

PARAMS = Parameters(network_id=NET, work_per_kib=64, min_output_amount=1)
SIGNERS = [KeySigner(bytes([i]) * 32) for i in (1, 2, 3, 4)]
SCHEDULE = KeySchedule(
    entries=((1, KeySet(threshold=3, public_keys=tuple(sorted(s.public_key for s in SIGNERS)))),)
)
OWNERS = [key(i) for i in range(1, 9)]
GENESIS = genesis([(owner, 1 << 40) for owner in OWNERS])


def open_node(directory: Path) -> LedgerNode:
    return LedgerNode.open(directory / "node.db", genesis=GENESIS, params=PARAMS, schedule=SCHEDULE)


def read_wire(directory: Path) -> list[bytes]:
    """The published messages, in order (a torn last record is ignored)."""
    data = (directory / "wire").read_bytes() if (directory / "wire").exists() else b""
    out, pos = [], 0
    while pos + 4 <= len(data):
        n = int.from_bytes(data[pos : pos + 4], "little")
        if pos + 4 + n > len(data):
            break
        out.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


async def main(directory: Path, seed: int, rounds: int) -> None:
    wire = os.open(directory / "wire", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    async def publish(raw: bytes) -> None:
        os.write(wire, len(raw).to_bytes(4, "little") + raw)
        os.fsync(wire)

    node = open_node(directory)
    for raw in node.storage.unreferenced_messages():
        await publish(raw)
    coordinator = Coordinator(Node(node), Journal.open(directory / "journal.db"), SIGNERS[:3])
    await coordinator.recover(publish)
    rng = np.random.default_rng(seed)
    owners = {address_of(bytes(k.verify_key)): k for k in OWNERS}
    for _ in range(rounds):
        unspent = sorted(node.core.ledger.unspent.items())
        for _ in range(int(rng.integers(1, 6))):
            oid, output = unspent[int(rng.integers(len(unspent)))]
            half = output.amount // 2
            to = OWNERS[int(rng.integers(len(OWNERS)))]
            tx = transfer(
                [(oid, owners[output.address])],
                [(address_of(bytes(to.verify_key)), half), (output.address, output.amount - half)],
                memo=rng.bytes(8),
            )
            raw = on_tips(node.core, tx, rng)
            await publish(raw)
            node.submit(raw)  # a second spend of one output is accepted, then conflicts
        await coordinator.issue(publish)
    node.close()


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
