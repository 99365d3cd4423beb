"""Real devnet processes for `test_network.py`: start, SIGKILL and restart them, drive signed
transfers through their HTTP APIs, follow their event streams, administer their peers, and
speak raw gossip frames to their p2p ports.

A `Cluster` is the devnet of `tanglepay.devnet` (a coordinator process and N node processes on
loopback) with its processes in one nursery: leaving `cluster(...)` stops them all, on success
or failure. Waits poll with a deadline; one that runs out fails with the tail of the logs of the
processes concerned, and any failure inside `cluster` carries the tail of every log.

The traffic is split into `Payer`s, each owning some of the faucet accounts and spending only
their outputs, every output at most once: no transfer of these tests can conflict, so every
acknowledged one must end up included.
"""

from __future__ import annotations

import contextlib
import json
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import httpx
import trio

from tangle import work
from tangle.node.config import NetworkSpec, parse_network
from tangle.p2p.gossip import (
    FrameReader,
    Handshake,
    MessageFrame,
    NodeId,
    encode_frame,
    key_set_digest,
)
from tangle.protocol.ids import MessageId, OutputId
from tangle.protocol.message import encode_message, prepare
from tangle.protocol.payload import TaggedData
from tangle.protocol.pow import work_value
from tangle.protocol.transaction import BasicOutput, TransactionEssence
from tanglepay.devnet import NETWORK_ID, PARAMS, Devnet, Launched, Member, launch, load_or_create
from wallet import sign_transaction

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
    from pathlib import Path

    from tangle.p2p.gossip import Frame
    from tangle.protocol.ids import Address
    from wallet import AddressKey

LOG_TAIL_LINES: Final = 25
POLL_S: Final = 0.2


# -- processes -------------------------------------------------------------------------------


class WaitTimeout(AssertionError):
    """A condition a test waited for did not come true in time."""


@dataclass(slots=True)
class Cluster:
    """A running devnet: its processes, an HTTP client and the nursery everything runs in."""

    devnet: Devnet
    """Members as `devnet.json` describes them (the coordinator first)."""
    spec: NetworkSpec
    """The network every member runs."""
    client: httpx.AsyncClient
    """For every HTTP call."""
    nursery: trio.Nursery
    """Holds the processes and the tests' background tasks; cancelled on leaving."""
    running: dict[str, Launched] = field(default_factory=dict)
    """Processes started and not killed, by member name."""
    logs: dict[str, Path] = field(default_factory=dict)
    """Each started member's log (`Launched.log`; a restart appends to it)."""

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.devnet.members]

    def member(self, name: str) -> Member:
        for member in self.devnet.members:
            if member.name == name:
                return member
        raise KeyError(name)

    def p2p(self, name: str) -> tuple[str, int]:
        host, _, port = self.member(name).p2p.rpartition(":")
        return host, int(port)

    async def start(self, *names: str) -> None:
        """Start members (again: same command, same database) and wait for their APIs."""
        members = tuple(self.member(name) for name in names)
        for launched in await launch(members, self.nursery, self.client):
            self.running[launched.member.name] = launched
            self.logs[launched.member.name] = launched.log

    async def kill(self, name: str) -> None:
        """SIGKILL a member's process and reap it."""
        launched = self.running.pop(name)
        launched.process.kill()
        await launched.process.wait()

    def tail(self, *names: str) -> str:
        """The last lines of the logs of `names` (every started member's by default)."""
        parts = []
        for name in names or list(self.logs):
            log = self.logs[name]
            lines = log.read_text(errors="replace").splitlines() if log.exists() else []
            text = "\n".join(f"  {line}" for line in lines[-LOG_TAIL_LINES:])
            parts.append(f"--- {name} log ({log}), last {LOG_TAIL_LINES} lines:\n{text}")
        return "\n".join(parts)

    async def wait_for(
        self,
        what: str,
        check: Callable[[], Awaitable[bool]],
        *,
        within: float,
        logs: Sequence[str] = (),
    ) -> None:
        """Poll `check` until it holds (an unreachable API counts as not yet); fail after
        `within` seconds with the tail of the logs of the members concerned, `logs` (every
        member's if empty)."""
        with trio.move_on_after(within):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if await check():
                        return
                await trio.sleep(POLL_S)
        raise WaitTimeout(f"{what}: not within {within:g} s\n{self.tail(*logs)}")

    # -- HTTP --------------------------------------------------------------------------------

    async def get(self, name: str, path: str, **params: Any) -> Any:
        response = await self.client.get(f"{self.member(name).api}{path}", params=params)
        if response.status_code != 200:
            raise AssertionError(f"GET {path} on {name}: {response.status_code} {response.text}")
        return response.json()

    async def info(self, name: str) -> dict[str, Any]:
        info: dict[str, Any] = await self.get(name, "/api/v1/info")
        return info

    async def index(self, name: str) -> int:
        return int((await self.info(name))["confirmed_milestone_index"])

    async def admin(
        self, name: str, method: str, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        member = self.member(name)
        return await self.client.request(
            method,
            f"{member.api}/api/v1/admin{path}",
            json=body,
            headers={"authorization": f"Bearer {member.admin_token}"},
        )

    async def peers(self, name: str) -> list[dict[str, Any]]:
        response = await self.admin(name, "GET", "/peers")
        if response.status_code != 200:
            raise AssertionError(f"GET peers on {name}: {response.status_code} {response.text}")
        peers: list[dict[str, Any]] = response.json()["peers"]
        return peers

    async def connected(self, name: str) -> dict[str, str]:
        """Connected peers of `name`: node id -> address."""
        return {p["node_id"]: p["address"] for p in await self.peers(name) if p["connected"]}

    async def node_ids(self) -> dict[str, str]:
        """Every running member's gossip node id, as its peers see it (by p2p address)."""
        by_address: dict[str, str] = {}
        for name in self.running:
            by_address.update({a: i for i, a in (await self.connected(name)).items()})
        return {m.name: by_address[m.p2p] for m in self.devnet.members if m.p2p in by_address}

    async def meshed(self) -> None:
        """Wait until every running member is linked with every other one."""

        async def full() -> bool:
            want = len(self.running) - 1
            return all([len(await self.connected(name)) == want for name in self.running])

        await self.wait_for("a full mesh", full, within=30, logs=list(self.running))

    async def metric(self, name: str, metric: str) -> float:
        response = await self.client.get(f"{self.member(name).api}/metrics")
        for line in response.text.splitlines():
            key, _, value = line.partition(" ")
            if key == metric:
                return float(value)
        raise AssertionError(f"{name} exposes no {metric}")


@contextlib.asynccontextmanager
async def cluster(data_dir: Path, nodes: int, interval_s: float = 1.0) -> AsyncIterator[Cluster]:
    """A new devnet under `data_dir`, every member started; stopped (SIGTERM, then SIGKILL)
    when the block ends, however it ends."""
    devnet = load_or_create(data_dir, nodes, interval_s)
    spec = parse_network(json.loads((data_dir / "network.json").read_text()))
    async with httpx.AsyncClient(timeout=15) as client, trio.open_nursery() as nursery:
        net = Cluster(devnet=devnet, spec=spec, client=client, nursery=nursery)
        try:
            await net.start(*net.names)
            await net.meshed()
            yield net
        except Exception as exc:
            if not isinstance(exc, WaitTimeout):  # those carry the logs concerned already
                exc.add_note(net.tail())
            raise
        finally:
            nursery.cancel_scope.cancel()


# -- traffic -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Payer:
    """Faucet accounts that send signed transfers among themselves, spending each output once."""

    keys: dict[Address, AddressKey]
    """The accounts, by address."""
    rng: random.Random
    """Chooses outputs, recipients and amounts."""
    unspent: dict[OutputId, tuple[Address, int]] = field(default_factory=dict)
    """Our unspent outputs as a node last reported them."""
    used: set[OutputId] = field(default_factory=set)
    """Outputs spent by a transfer we built (sent or not): never spent again."""
    accepted: dict[str, str] = field(default_factory=dict)
    """Message id (hex) of each transfer a node answered 201 -> that node's name."""
    refused: list[str] = field(default_factory=list)
    """Other answers to our submissions."""
    unsynced: int = 0
    """Turns skipped because the node was catching up (503 on its tips)."""

    @classmethod
    def of(cls, keys: Iterable[AddressKey], seed: int) -> Payer:
        return cls(keys={k.address: k for k in keys}, rng=random.Random(seed))

    def spendable(self) -> list[tuple[OutputId, Address, int]]:
        least = 2 * PARAMS.min_output_amount
        return [
            (oid, owner, amount)
            for oid, (owner, amount) in self.unspent.items()
            if oid not in self.used and amount >= least
        ]

    async def refresh(self, net: Cluster, name: str) -> None:
        """Read our unspent outputs from `name`'s ledger."""
        unspent: dict[OutputId, tuple[Address, int]] = {}
        for address in self.keys:
            body = await net.get(name, f"/api/v1/addresses/{address.hex()}/outputs")
            for out in body["outputs"]:
                unspent[OutputId.from_hex(out["output_id"])] = (address, int(out["amount"]))
        self.unspent = unspent

    async def pay(self, net: Cluster, name: str, parts: int = 2) -> str | None:
        """Split one spendable output into `parts` outputs among our accounts, with proof-of-work,
        on tips from `name`, through `name`'s API. Returns the message id if it was accepted."""
        spendable = self.spendable()
        if not spendable:
            return None
        oid, owner, amount = self.rng.choice(spendable)
        self.used.add(oid)
        share = max(PARAMS.min_output_amount, amount // (2 * parts))
        recipients = self.rng.choices(list(self.keys), k=parts - 1)
        outputs = [BasicOutput(address=to, amount=share) for to in recipients]
        outputs.append(BasicOutput(address=owner, amount=amount - share * (parts - 1)))
        essence = TransactionEssence(network_id=NETWORK_ID, inputs=(oid,), outputs=tuple(outputs))
        unsent = prepare(
            NETWORK_ID, sign_transaction(essence, [self.keys[owner]]), PARAMS.work_per_kib
        )
        nonce = await work.solve(unsent.root, unsent.target, threads=1)
        api = net.member(name).api
        answer = await net.client.get(f"{api}/api/v1/tips", params={"count": 2})
        if answer.status_code == 503:  # the node is catching up: try another turn
            self.used.discard(oid)
            self.unsynced += 1
            return None
        parents = tuple(sorted(MessageId.from_hex(t) for t in answer.json()["tips"]))
        response = await net.client.post(
            f"{api}/api/v1/messages",
            content=encode_message(unsent.attach(parents, nonce)),
            headers={"content-type": "application/octet-stream"},
        )
        if response.status_code != 201:
            self.refused.append(f"{name}: {response.status_code} {response.text}")
            return None
        message_id: str = response.json()["id"]
        self.accepted[message_id] = name
        return message_id

    async def fund(self, net: Cluster, name: str, parts: int) -> None:
        """Split each of our outputs into `parts` through `name` and wait until they are ours."""
        await self.refresh(net, name)
        count = len(self.spendable())
        for _ in range(count):
            await self.pay(net, name, parts)

        async def funded() -> bool:
            await self.refresh(net, name)
            return len(self.spendable()) >= count * parts

        await net.wait_for(f"{count * parts} funded outputs", funded, within=30, logs=[name])


@dataclass(slots=True)
class Load:
    """A steady stream of transfers from one `Payer` to some nodes' APIs, in turn; its view of
    the ledger comes from `source`. A node that does not answer is skipped."""

    net: Cluster
    payer: Payer
    targets: list[str]
    """Nodes to send to, in turn (the test may change it)."""
    source: str
    """Node whose ledger the payer's view is refreshed from."""
    rate: float
    """Transfers a second to aim at."""
    unreachable: int = 0
    """Submissions that met a dead API."""
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self.scope:
            await self.payer.refresh(self.net, self.source)
            task_status.started()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._refresh)
                nursery.start_soon(self._send)

    def stop(self) -> None:
        self.scope.cancel()

    async def _refresh(self) -> None:
        while True:
            await trio.sleep(0.5)
            with contextlib.suppress(httpx.TransportError):
                await self.payer.refresh(self.net, self.source)

    async def _send(self) -> None:
        turn = 0
        next_at = trio.current_time()
        while True:
            targets = self.targets
            if targets:
                target = targets[turn % len(targets)]
                turn += 1
                try:
                    await self.payer.pay(self.net, target)
                except httpx.TransportError:
                    self.unreachable += 1
            next_at = max(next_at + 1 / self.rate, trio.current_time() - 1.0)
            await trio.sleep_until(next_at)


@dataclass(slots=True)
class Follower:
    """What one node's event stream told: each referenced transaction and each milestone."""

    name: str
    transactions: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Message id (hex) -> (milestone index, "included" | "conflicting")."""
    milestones: dict[int, str] = field(default_factory=dict)
    """Milestone index -> ledger state hash after it."""
    conflicting: int = 0
    """Conflicting transactions over all milestones."""

    def included(self) -> dict[str, int]:
        return {m: index for m, (index, how) in self.transactions.items() if how == "included"}

    async def run(
        self, net: Cluster, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        url = f"{net.member(self.name).api}/api/v1/events"
        async with net.client.stream("GET", url, timeout=httpx.Timeout(15, read=None)) as stream:
            if stream.status_code != 200:
                raise AssertionError(f"events of {self.name}: {stream.status_code}")
            task_status.started()  # the node subscribed us before it answered
            event = ""
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = json.loads(line.removeprefix("data: "))
                    if event == "transaction":
                        self.transactions[data["message_id"]] = (
                            data["milestone_index"],
                            data["inclusion"],
                        )
                    elif event == "milestone":
                        self.milestones[data["index"]] = data["ledger_state_hash"]
                        self.conflicting += data["conflicting"]
                    elif event == "dropped":
                        raise AssertionError(f"{self.name} dropped our event stream: {data}")


# -- raw gossip --------------------------------------------------------------------------------


def handshake(spec: NetworkSpec, node_id: NodeId, listen_port: int = 0) -> bytes:
    """A valid HANDSHAKE frame of this network, from `node_id`."""
    return encode_frame(
        Handshake(
            network_id=spec.params.network_id,
            key_set_digest=key_set_digest(spec.key_set),
            node_id=node_id,
            listen_port=listen_port,
            confirmed_index=0,
        )
    )


def bad_work_frame(spec: NetworkSpec) -> bytes:
    """A MESSAGE frame holding a well-formed tagged-data message whose nonce misses the target."""
    params = spec.params
    payload = TaggedData(tag=b"hostile", data=b"no work")
    unsent = prepare(params.network_id, payload, params.work_per_kib)
    nonce = next(n for n in range(1 << 16) if work_value(unsent.root, n) > unsent.target)
    raw = encode_message(unsent.attach((MessageId(bytes(32)),), nonce))
    return encode_frame(MessageFrame(raw=raw))


@dataclass(slots=True)
class Probe:
    """One raw TCP connection to a node's p2p port, as the node treated it."""

    local_port: int
    """Our end's port (the address a node bans before a handshake names a listen port)."""
    opened_at: float
    """`trio.current_time()` when it connected."""
    received: bytearray = field(default_factory=bytearray)
    """Everything the node sent."""
    closed_at: float | None = None
    """When the node closed it (None: still open when the probe gave up)."""
    marks: dict[str, float] = field(default_factory=dict)
    """Times the script noted."""

    def closed_after(self, mark: str) -> float | None:
        """Seconds from the time the script noted as `mark` to the close (None: still open)."""
        return None if self.closed_at is None else self.closed_at - self.marks[mark]

    def frames(self) -> list[Frame]:
        """The complete frames the node sent."""
        return [frame for frame, _ in FrameReader().feed(bytes(self.received), 0.0)]


if TYPE_CHECKING:
    Script: TypeAlias = Callable[[trio.SocketStream, Probe], Awaitable[None]]
    """What a probe sends; it notes times in `Probe.marks`."""


def script(*steps: bytes, trickle: bool = False) -> Script:
    """Send `steps` half a second apart (so that the node reads each on its own), noting the
    time of the last one as "sent"; then, with `trickle`, one zero byte a second."""

    async def run(stream: trio.SocketStream, probe: Probe) -> None:
        for number, step in enumerate(steps):
            if number:
                await trio.sleep(0.5)
            probe.marks["sent"] = trio.current_time()
            await stream.send_all(step)
        while trickle:
            await trio.sleep(1)
            await stream.send_all(b"\x00")

    return run


async def probe(
    address: tuple[str, int], sends: Script, *, within: float, local_host: str | None = None
) -> Probe:
    """Connect (from `local_host`, another loopback address, to stand for another host), run
    `sends` (a `script`), read everything until the node closes the connection or `within`
    seconds pass, then close our end."""
    stream = await trio.open_tcp_stream(*address, local_address=local_host)
    async with stream:
        result = Probe(local_port=stream.socket.getsockname()[1], opened_at=trio.current_time())

        async def send() -> None:
            with contextlib.suppress(trio.BrokenResourceError):
                await sends(stream, result)
            await trio.sleep_forever()

        with trio.move_on_after(within):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                try:
                    while data := await stream.receive_some(65536):
                        result.received += data
                except trio.BrokenResourceError:  # reset: closed all the same
                    pass
                result.closed_at = trio.current_time()
                nursery.cancel_scope.cancel()
    return result
