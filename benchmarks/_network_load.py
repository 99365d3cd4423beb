"""What the network benchmark sends, and the client that sends it and watches it confirm.

**The load.** Signed, proof-of-worked transfers in independent lanes; the devices do their work
ahead of time. Before the devnet starts, `plan_load` builds:

* the **fan-out**: one transaction per faucet account that splits its genesis output into up to
  `FANOUT_WIDTH` lane outputs (and its change), so that `lanes` outputs can be spent at once;
* the **lanes**: lane `i` spends its fan-out output, then each time its own previous change
  output, paying `min_output_amount` to the next faucet account. Every transfer is signed and its
  proof-of-work done here: the work root leaves the parents out (PROTOCOL.md section 2).

Transfers are sent in the order `n = round * lanes + lane`, round-robin over the nodes, so node
`n % nodes` gets transfer `n`; `lanes` is a multiple of `nodes`, so a lane always talks to the
same node, as a device does. Parents are fixed once the fan-out is confirmed, before the timed
window (`transfer_messages`):

* round 0 approves the fan-out message that funded the lane (just confirmed, so not lazy);
* round r > 0 approves the lane's previous message, so the spend follows the creation of its
  input in white-flag order, and one other recent message: transfer `n - other_offset`, sent
  about `APPROVE_LAG_S` earlier to another node, which has reached this node by gossip meanwhile.

Each message is then approved by its lane's next message and by the one `other_offset` after it,
so the tip pool holds about `tps * APPROVE_LAG_S` messages for the coordinator to reference.

**The client.** Transfer `n` is due at `start + n / tps` and goes to node `n % nodes`. Two ways
to send, as two kinds of client would: `send` POSTs each transfer alone (raw bytes to
`/api/v1/messages`, as a device talking to a node directly); `send_batches` plays one gateway
per node that fronts that node's devices and every `window_s` POSTs the transfers that came due
meanwhile in one batch (`/api/v1/messages/batch`, octet framing, at most `MAX_BATCH` a request).
Either keeps at most `in_flight` requests outstanding per node, through httpx `AsyncClient`s
with keep-alive, each node's requests spread over its own clients of `POOL_SIZE` connections
(httpcore scans its whole pool on every request, so a request's cost grows with the pool it is
in). A request that cannot start on time starts late; the achieved rate is what the benchmark
reports. `follow` reads one
node's event stream and records, on the client's clock (`trio.current_time()`), the
`transaction` events of the transfers sent to that node and (on the first node) those of the
fan-out and the milestones. `probe` measures what a request costs the client.
"""

from __future__ import annotations

import json
import math
import resource
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import httpx
import trio

from tangle import work
from tangle.http._batch import MAX_BATCH, encode_batch
from tangle.protocol.ids import MessageId, OutputId, blake2b_256
from tangle.protocol.message import encode_message, prepare
from tangle.protocol.transaction import BasicOutput, TransactionEssence
from wallet import sign_transaction

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable, Sequence

    from tangle.ledger.ledger import Genesis
    from tangle.node.core import Parameters
    from tangle.protocol.ids import Address, TransactionId
    from tangle.protocol.message import Unsent
    from wallet import AddressKey

FANOUT_WIDTH: Final = 127
"""Lane outputs per fan-out transaction (plus one change output: the 128 allowed)."""
LANE_PERIOD_S: Final = 1.0
"""Seconds between two transfers of one lane at the offered rate (each device pays once a
second), unless the fan-out cannot fund that many lanes."""
APPROVE_LAG_S: Final = 0.25
"""How long before a transfer the other message it approves was sent."""
SEARCH_BATCH: Final = 1 << 16
"""Nonces per kernel call in the proof-of-work search (a devnet message needs about 4096)."""
OCTETS: Final = {"content-type": "application/octet-stream"}
POOL_SIZE: Final = 8
"""Connections per httpx client."""
RETRIES: Final = 2
"""Retries of a POST whose connection failed (the server may close an idle keep-alive one)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Worked:
    """A payload with its proof-of-work done: only the parents are missing."""

    unsent: Unsent
    """The prepared payload (work root and target)."""
    nonce: int
    """A nonce valid for any parents."""

    def attach(self, parents: Sequence[MessageId]) -> bytes:
        """The encoded message approving `parents`."""
        return encode_message(self.unsent.attach(tuple(sorted(set(parents))), self.nonce))


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadPlan:
    """Every message the benchmark will send, worked and signed, parents not yet chosen."""

    nodes: int
    """Nodes the transfers are spread over."""
    lanes: int
    """Independent chains of transfers (a multiple of `nodes`)."""
    rounds: int
    """Transfers per lane."""
    other_offset: int
    """Transfer `n` also approves transfer `n - other_offset` (sent to another node)."""
    fanouts: tuple[Worked, ...]
    """The fan-out transactions, one per funding account used."""
    lane_fanout: tuple[int, ...]
    """Per lane, the index in `fanouts` of the transaction that funds it."""
    transfers: tuple[Worked, ...]
    """Every transfer, in send order: `transfers[round * lanes + lane]`."""
    seconds: float
    """CPU-bound wall time the planning took (signing and proof-of-work)."""

    @property
    def count(self) -> int:
        return len(self.transfers)

    def node_of(self, n: int) -> int:
        """The node (0-based, among the nodes that take submissions) transfer `n` goes to."""
        return n % self.nodes


def lane_count(tps: float, nodes: int, funding_accounts: int) -> int:
    """Lanes for `tps`: one transfer a lane every `LANE_PERIOD_S`, as many as the fan-out of
    `funding_accounts` can fund, rounded to a multiple of `nodes`."""
    most = funding_accounts * FANOUT_WIDTH // nodes * nodes
    wanted = nodes * math.ceil(tps * LANE_PERIOD_S / nodes)
    return max(nodes, min(most, wanted))


def other_offset(tps: float, nodes: int) -> int:
    """The distance to the other approved transfer: about `APPROVE_LAG_S` of sending, and not
    a multiple of `nodes`, so that it was sent to another node."""
    offset = max(1, round(tps * APPROVE_LAG_S))
    while nodes > 1 and offset % nodes == 0:
        offset += 1
    return offset


def _worked(
    network_id: int, essence: TransactionEssence, key: AddressKey, work_per_kib: int
) -> tuple[Worked, TransactionId]:
    """Sign `essence` with `key` and do its proof-of-work, as the device would."""
    transaction = sign_transaction(essence, [key])
    unsent = prepare(network_id, transaction, work_per_kib)
    nonce = work.search(unsent.root, unsent.target, threads=1, batch=SEARCH_BATCH)
    return Worked(unsent=unsent, nonce=nonce), transaction.id


def plan_load(
    genesis: Genesis,
    keys: Sequence[AddressKey],
    params: Parameters,
    *,
    tps: float,
    duration_s: float,
    nodes: int,
) -> LoadPlan:
    """Sign and work every message for `duration_s` of sending at `tps` over `nodes` nodes,
    funded by the genesis outputs of `keys`."""
    began = time.perf_counter()
    by_address: dict[Address, AddressKey] = {key.address: key for key in keys}
    funding = [(oid, out) for oid, out in genesis.outputs().items() if out.address in by_address]
    lanes = lane_count(tps, nodes, len(funding))
    rounds = max(1, math.ceil(tps * duration_s / lanes))
    step = params.min_output_amount
    lane_amount = step * (rounds + 2)
    network_id, wpk = params.network_id, params.work_per_kib
    addresses = list(by_address)

    fanouts: list[Worked] = []
    lane_fanout: list[int] = []
    heads: list[tuple[OutputId, int, AddressKey]] = []  # per lane: unspent output, amount, key
    for start in range(0, lanes, FANOUT_WIDTH):
        oid, output = funding[len(fanouts)]
        key = by_address[output.address]
        width = min(FANOUT_WIDTH, lanes - start)
        change = output.amount - width * lane_amount
        if change < step:
            raise ValueError(f"a genesis output of {output.amount} cannot fund {width} lanes")
        outs = [BasicOutput(address=key.address, amount=lane_amount)] * width
        essence = TransactionEssence(
            network_id=network_id,
            inputs=(oid,),
            outputs=(*outs, BasicOutput(address=key.address, amount=change)),
        )
        worked, tx_id = _worked(network_id, essence, key, wpk)
        heads += [(OutputId.of(tx_id, i), lane_amount, key) for i in range(width)]
        lane_fanout += [len(fanouts)] * width
        fanouts.append(worked)

    transfers: list[Worked] = []
    for _ in range(rounds):
        for lane in range(lanes):
            oid, amount, key = heads[lane]
            payee = addresses[(addresses.index(key.address) + 1) % len(addresses)]
            essence = TransactionEssence(
                network_id=network_id,
                inputs=(oid,),
                outputs=(
                    BasicOutput(address=payee, amount=step),
                    BasicOutput(address=key.address, amount=amount - step),
                ),
            )
            worked, tx_id = _worked(network_id, essence, key, wpk)
            heads[lane] = (OutputId.of(tx_id, 1), amount - step, key)
            transfers.append(worked)
    return LoadPlan(
        nodes=nodes,
        lanes=lanes,
        rounds=rounds,
        other_offset=other_offset(tps, nodes),
        fanouts=tuple(fanouts),
        lane_fanout=tuple(lane_fanout),
        transfers=tuple(transfers),
        seconds=time.perf_counter() - began,
    )


def message_id(raw: bytes) -> MessageId:
    """The id of an encoded message."""
    return MessageId(blake2b_256(raw))


def fanout_messages(plan: LoadPlan, parents: Sequence[MessageId]) -> list[bytes]:
    """The fan-out messages, approving `parents` (fresh tips of the node they go to)."""
    return [fanout.attach(parents) for fanout in plan.fanouts]


def transfer_messages(plan: LoadPlan, fanout_ids: Sequence[MessageId]) -> list[bytes]:
    """Every transfer encoded with its parents (see the module docstring), in send order."""
    lanes, offset = plan.lanes, plan.other_offset
    raws: list[bytes] = []
    ids: list[MessageId] = []
    for n, worked in enumerate(plan.transfers):
        if n < lanes:
            parents = [fanout_ids[plan.lane_fanout[n]]]
        else:  # the lane's previous transfer, and the one `offset` before (if any)
            parents = [ids[n - lanes], ids[max(0, n - offset)]]
        raw = worked.attach(parents)
        raws.append(raw)
        ids.append(message_id(raw))
    return raws


# -- the client --------------------------------------------------------------------------------


def client_cpu_seconds() -> float:
    """CPU seconds this process (every thread) has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Tracker:
    """What happened to each transfer, on the client's clock (`trio.current_time()`)."""

    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        self.index: dict[str, int] = {}
        """Transfer ids (hex) to their position in the plan, once encoded (`identify`)."""
        count = plan.count
        self.started = [math.nan] * count
        """When its POST was started."""
        self.posted = [math.nan] * count
        """When its POST returned 201."""
        self.status = [0] * count
        """The POST's status (0: not sent, -1: no answer)."""
        self.confirmed = [math.nan] * count
        """When its `transaction` event arrived."""
        self.conflicting = [False] * count
        """Whether that event said CONFLICTING."""
        self.milestones: list[tuple[float, int]] = []
        """(arrival, index) of each milestone event on the first node's stream."""
        self.included: dict[int, int] = {}
        """Transfers included, by milestone index."""
        self.fanout: dict[str, bool] = {}
        """Inclusion of the other transactions seen on the first node's stream (the fan-out)."""
        self._milestone = trio.Event()

    def identify(self, raws: Sequence[bytes]) -> None:
        self.index = {message_id(raw).hex(): n for n, raw in enumerate(raws)}

    def settled(self, n: int) -> bool:
        return not math.isnan(self.confirmed[n])

    async def until(self, done: Callable[[], bool]) -> None:
        """Return once `done()` holds, checking after each milestone event on any stream."""
        while not done():
            await self._milestone.wait()

    def record(self, node: int, event: str, data: dict[str, Any], now: float) -> None:
        """One event of node `node`'s stream, arrived at `now`."""
        if event == "transaction":
            key: str = data["message_id"]
            n = self.index.get(key)
            if n is None:
                if node == 0:
                    self.fanout[key] = data["inclusion"] == "included"
            elif self.plan.node_of(n) == node:
                self.confirmed[n] = now
                self.conflicting[n] = data["inclusion"] != "included"
                if not self.conflicting[n]:
                    index: int = data["milestone_index"]
                    self.included[index] = self.included.get(index, 0) + 1
        elif event == "milestone":
            if node == 0:
                self.milestones.append((now, data["index"]))
            self._milestone.set()
            self._milestone = trio.Event()
        elif event == "dropped":
            raise RuntimeError(f"node {node} dropped the event stream: {data}")


async def follow(
    client: httpx.AsyncClient,
    api: str,
    node: int,
    tracker: Tracker,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Feed node `node`'s event stream (at `api`) to `tracker`; started once connected."""
    async with client.stream("GET", f"{api}/api/v1/events", timeout=None) as stream:
        event = ""
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                tracker.record(node, event, json.loads(line[6:]), trio.current_time())
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith(": connected"):
                task_status.started()


async def _post(client: httpx.AsyncClient, url: str, raw: bytes, n: int, tracker: Tracker) -> None:
    """POST transfer `n`, again if the connection failed (as a device would)."""
    tracker.started[n] = trio.current_time()
    status = -1
    for _ in range(RETRIES + 1):
        try:
            status = (await client.post(url, content=raw, headers=OCTETS)).status_code
            break
        except httpx.TransportError:
            continue
    tracker.status[n] = status
    if status == 201:
        tracker.posted[n] = trio.current_time()


async def open_clients(
    stack: contextlib.AsyncExitStack[bool | None], in_flight: int
) -> list[httpx.AsyncClient]:
    """Clients of `POOL_SIZE` connections for `in_flight` requests to one node, closed with
    `stack`."""
    limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
    return [
        await stack.enter_async_context(httpx.AsyncClient(timeout=30, limits=limits))
        for _ in range(math.ceil(in_flight / POOL_SIZE))
    ]


async def send(
    clients: Sequence[Sequence[httpx.AsyncClient]],
    apis: Sequence[str],
    raws: Sequence[bytes],
    tracker: Tracker,
    *,
    start: float,
    stop: float,
    tps: float,
    in_flight: int,
) -> None:
    """POST transfer `n` to node `k = n % len(apis)` (with one of `clients[k]`, in turn) at
    `start + n / tps`, or as soon as fewer than `in_flight` of that node's are outstanding,
    until `stop`."""
    limiters = [trio.CapacityLimiter(in_flight) for _ in apis]
    urls = [f"{api}/api/v1/messages" for api in apis]

    async def one(n: int, k: int) -> None:
        try:
            own = clients[k]
            await _post(own[n // len(apis) % len(own)], urls[k], raws[n], n, tracker)
        finally:
            limiters[k].release_on_behalf_of(n)

    async with trio.open_nursery() as nursery:
        for n in range(len(raws)):
            due = start + n / tps
            if due >= stop:
                break
            await trio.sleep_until(due)
            k = tracker.plan.node_of(n)
            await limiters[k].acquire_on_behalf_of(n)
            if trio.current_time() >= stop:
                limiters[k].release_on_behalf_of(n)
                break
            nursery.start_soon(one, n, k)


async def _post_batch(
    client: httpx.AsyncClient, url: str, raws: Sequence[bytes], ns: Sequence[int], tracker: Tracker
) -> None:
    """POST transfers `ns` (encoded: `raws`) as one batch, again if the connection failed; a
    transfer the node refused gets status 400, all of them the status of a refused batch."""
    began = trio.current_time()
    for n in ns:
        tracker.started[n] = began
    body = encode_batch(raws)
    response: httpx.Response | None = None
    for _ in range(RETRIES + 1):
        try:
            response = await client.post(url, content=body, headers=OCTETS)
            break
        except httpx.TransportError:
            continue
    now = trio.current_time()
    if response is None or response.status_code != 200:
        status = -1 if response is None else response.status_code
        for n in ns:
            tracker.status[n] = status
        return
    for n, result in zip(ns, response.json()["results"], strict=True):
        tracker.status[n] = 400 if "error" in result else 201
        if "error" not in result:
            tracker.posted[n] = now


async def send_batches(
    clients: Sequence[Sequence[httpx.AsyncClient]],
    apis: Sequence[str],
    raws: Sequence[bytes],
    tracker: Tracker,
    *,
    start: float,
    stop: float,
    tps: float,
    in_flight: int,
    window_s: float,
) -> None:
    """Every `window_s` from `start` until `stop`, POST to each node `k` the transfers `n`
    (`k = n % len(apis)`) that came due since the last time, in batches of at most `MAX_BATCH`
    (with one of `clients[k]`, in turn), at most `in_flight` batches outstanding per node."""
    nodes = len(apis)
    limiters = [trio.CapacityLimiter(in_flight) for _ in apis]
    urls = [f"{api}/api/v1/messages/batch" for api in apis]
    due_before_stop = min(len(raws), math.ceil((stop - start) * tps))
    sent = 0
    posts = 0

    async def one(k: int, ns: list[int], token: int) -> None:
        try:
            own = clients[k]
            body = [raws[n] for n in ns]
            await _post_batch(own[token % len(own)], urls[k], body, ns, tracker)
        finally:
            limiters[k].release_on_behalf_of(token)

    async with trio.open_nursery() as nursery:
        flush = start
        while sent < due_before_stop and flush < stop:
            flush = min(flush + window_s, stop)
            await trio.sleep_until(flush)
            due = min(due_before_stop, math.floor((trio.current_time() - start) * tps) + 1)
            for k in range(nodes):
                mine = [n for n in range(sent, due) if n % nodes == k]
                for at in range(0, len(mine), MAX_BATCH):
                    posts += 1
                    await limiters[k].acquire_on_behalf_of(posts)
                    nursery.start_soon(one, k, mine[at : at + MAX_BATCH], posts)
            sent = max(sent, due)


async def fan_out(
    client: httpx.AsyncClient, api: str, plan: LoadPlan, tracker: Tracker, timeout_s: float
) -> list[MessageId]:
    """Send the fan-out to `api` (approving two of its tips) and wait until the event stream
    (`follow` of node 0, already running) shows it all INCLUDED; returns its message ids."""
    answer = await client.get(f"{api}/api/v1/tips", params={"count": 2})
    answer.raise_for_status()
    raws = fanout_messages(plan, [MessageId.from_hex(t) for t in answer.json()["tips"]])
    ids = [message_id(raw) for raw in raws]
    for raw in raws:
        response = await client.post(f"{api}/api/v1/messages", content=raw, headers=OCTETS)
        if response.status_code != 201:
            raise RuntimeError(f"the fan-out was refused: {response.text}")
    with trio.fail_after(timeout_s):
        await tracker.until(lambda: all(i.hex() in tracker.fanout for i in ids))
    if not all(tracker.fanout[i.hex()] for i in ids):
        raise RuntimeError("the fan-out conflicted")
    return ids


async def probe(
    clients: Sequence[httpx.AsyncClient], api: str, seconds: float, in_flight: int
) -> tuple[int, float, float]:
    """POSTs the node at `api` refuses at once (a one-byte body is not a message: 400), as fast
    as `in_flight` workers spread over `clients` can send them, for `seconds`: (requests,
    elapsed seconds, client CPU seconds)."""
    done = 0
    url = f"{api}/api/v1/messages"

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while True:
            await client.post(url, content=b"\x00", headers=OCTETS)
            done += 1

    cpu, began = client_cpu_seconds(), trio.current_time()
    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for i in range(in_flight):
                nursery.start_soon(worker, clients[i % len(clients)])
    return done, trio.current_time() - began, client_cpu_seconds() - cpu
