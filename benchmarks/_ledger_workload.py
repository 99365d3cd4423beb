"""What the ledger benchmark feeds a node, and the node it feeds.

The devnet (genesis holders, a 2-of-3 committee), the senders' signed transfers and sensor
messages, and a node stack on fresh temporary databases: the `LedgerNode` behind its trio
writer thread (`tangle.node.Node`) and a `Coordinator` beside it, with the helpers that check
and time it (`LedgerCheckError`, `GcClock`, `harness_frozen`).

Senders do their own proof-of-work before they pick parents (the work root leaves the parents
out), as devices do, then approve tips as they see them: a message reaches the senders' view
`delay` messages after it was sent, and each new message approves 2 tips drawn uniformly from
the tip pool of that view (the arrival model of `benchmarks._arrival`, counted in messages
instead of seconds). The result is a DAG whose messages approve recent messages that precede
them, with a small tip pool for the coordinator to reference.
"""

from __future__ import annotations

import contextlib
import gc
import random
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

from nacl.signing import SigningKey

from coordinator import Coordinator, Journal, KeySigner
from tangle.ledger.committee import KeySchedule
from tangle.ledger.ledger import Genesis
from tangle.node.core import Parameters
from tangle.node.ledger_node import LedgerNode
from tangle.node.node import Node
from tangle.protocol.codec import u64
from tangle.protocol.ids import MessageId, OutputId, PublicKey, Signature, blake2b_256
from tangle.protocol.message import encode_message, prepare
from tangle.protocol.milestone import KeySet
from tangle.protocol.payload import TaggedData
from tangle.protocol.transaction import (
    BasicOutput,
    SignatureUnlock,
    Transaction,
    TransactionEssence,
    address_of,
    signing_message,
    transaction_id,
)
from tangle.window.dag import GENESIS_ID
from tangle.work import search

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from tangle.protocol.payload import Payload

NETWORK_ID: Final = 0xDE7
DEVNET_WORK_PER_KIB: Final = 1 << 12
"""Proof-of-work of the devnet: 4096 hashes per KiB of message."""
CHEAP_WORK_PER_KIB: Final = 1
"""Proof-of-work for the memory run: every nonce is valid, the search costs one call."""
ALLOCATION: Final = 1_000_000
"""Base units each genesis holder starts with."""
PAYMENT: Final = 1_000
"""Base units each transfer pays to the next holder; the rest goes back as change."""
SENDER_DELAY: Final = 16
"""Messages in flight: a message reaches the senders' view this many messages after it left."""
SENSOR_TAG: Final = b"tanglepay/bench/sensor"


class LedgerCheckError(Exception):
    """The node did not end where the benchmark requires: its figures would mean nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Devnet:
    """The network a benchmark node joins: its rules, genesis and milestone committee."""

    params: Parameters
    """Network id, proof-of-work difficulty, storage deposit."""
    genesis: Genesis
    """The initial allocations."""
    signers: tuple[KeySigner, ...]
    """The committee members the coordinator holds (all of them: a devnet)."""
    schedule: KeySchedule
    """The committee in force from milestone 1."""


def devnet(holders: tuple[SigningKey, ...], work_per_kib: int) -> Devnet:
    """A devnet whose genesis gives each holder `ALLOCATION`, with a 2-of-3 committee."""
    signers = tuple(
        sorted((KeySigner(bytes([0xC0 + i]) * 32) for i in range(3)), key=lambda s: s.public_key)
    )
    allocations = tuple((address_of(bytes(k.verify_key)), ALLOCATION) for k in holders)
    key_set = KeySet(threshold=2, public_keys=tuple(s.public_key for s in signers))
    return Devnet(
        params=Parameters(network_id=NETWORK_ID, work_per_kib=work_per_kib, min_output_amount=1),
        genesis=Genesis(
            network_id=NETWORK_ID, supply=ALLOCATION * len(holders), allocations=allocations
        ),
        signers=signers,
        schedule=KeySchedule(entries=((1, key_set),)),
    )


def holder_keys(count: int) -> tuple[SigningKey, ...]:
    """`count` distinct deterministic ed25519 keys (at most 65535: one genesis output each)."""
    return tuple(SigningKey(blake2b_256(b"tanglepay/bench/holder", u64(i))) for i in range(count))


class SenderView:
    """The tip pool as senders see it, `delay` messages behind the newest message sent."""

    __slots__ = ("_delay", "_in_flight", "_positions", "_rng", "_tips")

    def __init__(self, *, seed: int, delay: int = SENDER_DELAY) -> None:
        self._rng = random.Random(seed)
        self._delay = delay
        self._in_flight: deque[tuple[MessageId, tuple[MessageId, ...]]] = deque()
        self._tips: list[MessageId] = [GENESIS_ID]
        self._positions: dict[MessageId, int] = {GENESIS_ID: 0}

    def parents(self) -> tuple[MessageId, ...]:
        """Two visible tips (one while only one is visible), sorted."""
        return tuple(sorted(self._rng.sample(self._tips, min(2, len(self._tips)))))

    def sent(self, message_id: MessageId, parents: tuple[MessageId, ...]) -> None:
        """Record a message sent on `parents`; the oldest one in flight becomes visible."""
        self._in_flight.append((message_id, parents))
        if len(self._in_flight) > self._delay:
            arrived, approved = self._in_flight.popleft()
            for parent in approved:
                self._remove_tip(parent)
            self._positions[arrived] = len(self._tips)
            self._tips.append(arrived)

    def _remove_tip(self, tip: MessageId) -> None:
        at = self._positions.pop(tip, None)
        if at is None:
            return
        last = self._tips.pop()
        if last != tip:
            self._tips[at] = last
            self._positions[last] = at


def send(payload: Payload, view: SenderView, params: Parameters) -> bytes:
    """What a sender puts on the wire: proof-of-work first, then the parents it sees now."""
    unsent = prepare(params.network_id, payload, params.work_per_kib)
    nonce = search(unsent.root, unsent.target, threads=1)
    parents = view.parents()
    raw = encode_message(unsent.attach(parents, nonce))
    view.sent(MessageId(blake2b_256(raw)), parents)
    return raw


def transfer(
    net: Devnet, holders: tuple[SigningKey, ...], sender: int, receiver: int
) -> Transaction:
    """Holder `sender` pays `PAYMENT` to holder `receiver` from its genesis output, signed."""
    key = holders[sender]
    public_key = bytes(key.verify_key)
    own = address_of(public_key)
    essence = TransactionEssence(
        network_id=net.params.network_id,
        inputs=(OutputId.of(net.genesis.transaction_id, sender),),
        outputs=(
            BasicOutput(address=address_of(bytes(holders[receiver].verify_key)), amount=PAYMENT),
            BasicOutput(address=own, amount=ALLOCATION - PAYMENT),
        ),
        memo=u64(sender),
    )
    signature = key.sign(signing_message(transaction_id(essence))).signature
    unlock = SignatureUnlock(public_key=PublicKey(public_key), signature=Signature(signature))
    return Transaction(essence=essence, unlocks=(unlock,))


def transfer_messages(net: Devnet, holders: tuple[SigningKey, ...], *, seed: int) -> list[bytes]:
    """One signed transfer per holder (each spends its own genesis output), as messages."""
    view = SenderView(seed=seed)
    count = len(holders)
    return [
        send(transfer(net, holders, i, (i + 1) % count), view, net.params) for i in range(count)
    ]


def sensor_batches(net: Devnet, count: int, batch: int, *, seed: int) -> Iterator[list[bytes]]:
    """`count` tagged-data messages (32-byte readings) in lists of at most `batch`."""
    view = SenderView(seed=seed)
    for start in range(0, count, batch):
        yield [
            send(TaggedData(tag=SENSOR_TAG, data=u64(i) * 4), view, net.params)
            for i in range(start, min(count, start + batch))
        ]


# -- the node under test ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStack:
    """A node of the devnet on trio and the coordinator beside it, on fresh databases."""

    ledger: LedgerNode
    """The node's core and database (what `node` runs in its writer thread)."""
    node: Node
    """The node on trio: submissions and changes go through its writer thread."""
    coordinator: Coordinator
    """Issues milestones for `node`."""


@contextlib.contextmanager
def node_stack(net: Devnet) -> Iterator[NodeStack]:
    """A node and its coordinator in a temporary directory, closed and deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="tanglepay-bench-") as tmp:
        directory = Path(tmp)
        ledger = LedgerNode.open(
            directory / "node.db", genesis=net.genesis, params=net.params, schedule=net.schedule
        )
        journal = Journal.open(directory / "journal.db")
        try:
            node = Node(ledger)
            yield NodeStack(
                ledger=ledger, node=node, coordinator=Coordinator(node, journal, net.signers)
            )
        finally:
            journal.close()
            ledger.close()


async def submit_all(node: Node, raws: Sequence[bytes]) -> None:
    """`node.submit_many(raws)`, every message accepted or `LedgerCheckError`."""
    outcome = await node.submit_many(raws)
    if outcome.rejected:
        position, error = outcome.rejected[0]
        raise LedgerCheckError(f"{len(outcome.rejected)} refused, the first at {position}: {error}")


async def no_gossip(raw: bytes) -> None:
    """The coordinator's `publish`: gossip is not part of what is measured."""


def prune(ledger: LedgerNode, keep: int) -> None:
    """What a node runs periodically (in its writer thread): forget, on disk and in memory,
    what milestones up to `confirmed - keep` referenced (`keep` > below-max-depth)."""
    ledger.storage.prune(keep)
    ledger.core.prune(ledger.core.confirmed_index - keep + 1)


# -- measuring -------------------------------------------------------------------------------


class GcClock:
    """Seconds spent in the cyclic garbage collector while installed (a `gc.callbacks` entry)."""

    __slots__ = ("_began", "seconds")

    def __init__(self) -> None:
        self._began = 0.0
        self.seconds = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._began

    def __enter__(self) -> Self:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


@contextlib.contextmanager
def harness_frozen() -> Iterator[None]:
    """Keep the objects alive so far (the senders' keys, the pre-built messages) out of the
    garbage collector's scans inside the block: a node's process would not hold them, and the
    collector's cost grows with every object it scans."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def status_mib(field: str) -> float:
    """A memory field of `/proc/self/status` (kB there), in MiB."""
    with Path("/proc/self/status").open() as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise LedgerCheckError(f"/proc/self/status has no {field}")
