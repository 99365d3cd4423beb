"""The wallet client against a real node: a `LedgerNode` on sqlite with a coordinator issuing
milestones every few milliseconds, reached through httpx transports over its ASGI app (no
sockets) or, for the asyncio backend, over loopback HTTP.

`httpx.ASGITransport` hands a response over only when the app has finished, which an event
stream never does; `StreamingASGITransport` runs the app in a task and streams the body, so the
event-stream path is tested in-process. Requests that go through plain `httpx.ASGITransport`
for the events route never get an answer: that is how the polling fallback is exercised.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
import trio

import wallet
from coordinator import Coordinator, Journal, KeySigner
from tangle.http.api import ApiConfig, create_app, serve_api
from tangle.ledger.committee import KeySchedule
from tangle.ledger.ledger import Genesis
from tangle.node.core import Parameters
from tangle.node.ledger_node import LedgerNode
from tangle.node.node import Node
from tangle.protocol.ids import Address, MessageId, OutputId, TransactionId
from tangle.protocol.message import decode_message, encode_message, prepare
from tangle.protocol.milestone import KeySet
from tangle.protocol.payload import TaggedData
from tangle.protocol.pow import work_value
from tangle.protocol.transaction import BasicOutput, TransactionEssence
from tests.builders import NET, address, key, message, transfer
from wallet import (
    AccountKey,
    AmountError,
    IdempotencyConflictError,
    InsufficientFundsError,
    NodeClient,
    NodeUnavailableError,
    NodeUrlError,
    NotFoundError,
    RejectedError,
    RetryPolicy,
    SyncWallet,
    TransferFailedError,
    TransferStatus,
    Wallet,
    WalletConfig,
    WalletConfigError,
    WalletError,
    WalletState,
    WalletStateError,
    encode_address,
    find_nonce,
    sign_transaction,
)
from wallet.coin_selection import Coin, select_coins
from wallet.idempotency import MEMO_TAG, account_fingerprint, idempotency_hash
from wallet.keys import ExtendedKey, address_path
from wallet.records import Draft

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Sequence

    from anyio.abc import TaskGroup
    from starlette.types import ASGIApp, Message

MIN_OUTPUT = 100
PARAMS = Parameters(network_id=NET, work_per_kib=16, min_output_amount=MIN_OUTPUT)
SIGNERS = sorted((KeySigner(bytes([i]) * 32) for i in range(1, 4)), key=lambda s: s.public_key)
KEY_SET = KeySet(threshold=2, public_keys=tuple(s.public_key for s in SIGNERS))
SEED = bytes(range(100, 132))
ACCOUNT = AccountKey(SEED, 0)
FAUCET, BOB, CAROL = key(1), key(2), key(3)
GENESIS = Genesis(
    network_id=NET,
    supply=100_000_000,
    allocations=((address(FAUCET), 99_000_000), (ACCOUNT.address(0), 1_000_000)),
)
RETRY = RetryPolicy(attempts=12, base_delay_s=0.01, max_delay_s=0.2)
CONFIG = WalletConfig(
    confirm_timeout_s=20,
    poll_interval_s=0.05,
    stream_open_timeout_s=0.5,
    stream_retry_s=0.3,
    pow_threads=1,
)


def open_ledger(path: Path) -> LedgerNode:
    return LedgerNode.open(
        path, genesis=GENESIS, params=PARAMS, schedule=KeySchedule(entries=((1, KEY_SET),))
    )


async def _publish(raw: bytes) -> None:
    pass


# -- a streaming ASGI transport ----------------------------------------------------------------


class _Body(httpx.AsyncByteStream):
    """The response body as the app sends it; closing it tells the app the client left."""

    def __init__(self, chunks: Any, disconnected: anyio.Event) -> None:
        self._chunks = chunks
        self._disconnected = disconnected

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk: bytes = await self._chunks.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        return chunk

    async def aclose(self) -> None:
        self._disconnected.set()
        self._chunks.close()


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Runs the app for each request in a task of `group` and streams its body."""

    def __init__(self, app: ASGIApp, group: TaskGroup) -> None:
        self.app = app
        self.group = group
        self.running: set[anyio.CancelScope] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        sender, chunks = anyio.create_memory_object_stream[bytes](math.inf)
        started, disconnected = anyio.Event(), anyio.Event()
        head: dict[str, Any] = {}
        consumed = False

        async def receive() -> Message:
            nonlocal consumed
            if not consumed:
                consumed = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                head["status"] = message["status"]
                head["headers"] = list(message.get("headers", []))
                started.set()
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                        sender.send_nowait(message["body"])
                if not message.get("more_body"):
                    sender.close()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": "http",
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": ("node", 80),
            "client": ("127.0.0.1", 4000),
            "root_path": "",
        }

        async def run() -> None:
            with anyio.CancelScope() as cancel:
                self.running.add(cancel)
                try:
                    await self.app(scope, receive, send)
                finally:
                    self.running.discard(cancel)
                    sender.close()
                    started.set()

        self.group.start_soon(run)
        await started.wait()
        if "status" not in head:
            raise httpx.RemoteProtocolError("the app ended without answering")
        return httpx.Response(
            head["status"], headers=head["headers"], stream=_Body(chunks, disconnected)
        )

    def cut(self) -> None:
        """End every response still streaming (the server went away)."""
        for cancel in list(self.running):
            cancel.cancel()


# -- a node with a coordinator, and the transports into it ----------------------------------


@dataclass
class Harness:
    """A node, its coordinator and app, which can be 'restarted' (closed and reopened)."""

    path: Path
    group: TaskGroup
    ledger: LedgerNode = field(init=False)
    journal: Journal = field(init=False)
    node: Node = field(init=False)
    coordinator: Coordinator = field(init=False)
    app: ASGIApp = field(init=False)
    streaming: StreamingASGITransport = field(init=False)
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    ticking: bool = True
    down: bool = False
    crash_on_submit: bool = False
    crashed: anyio.Event = field(default_factory=anyio.Event)
    lazy_tips: int = 0
    refuse_tips: bool = False
    old_node: bool = False
    """Serve the node as one older than `GET /api/v1/outputs/{output_id}`: the route is
    answered as any unknown one."""
    submitted: list[bytes] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    """The path of every request that reached the node through a `Router`."""
    faucet_output: OutputId = field(init=False)
    faucet_balance: int = 99_000_000

    def __post_init__(self) -> None:
        self._open()
        self.faucet_output = next(iter(GENESIS.outputs()))

    def _open(self) -> None:
        self.ledger = open_ledger(self.path / "node.db")
        self.journal = Journal.open(self.path / "journal.db")
        self.node = Node(self.ledger)
        self.coordinator = Coordinator(self.node, self.journal, SIGNERS)
        self.app = create_app(self.node, ApiConfig())
        self.streaming = StreamingASGITransport(self.app, self.group)

    def close(self) -> None:
        self.journal.close()
        self.ledger.close()

    async def restart(self) -> None:
        async with self.lock:
            self.down = True
            self.streaming.cut()
            await anyio.sleep(0.05)
            self.close()
            self._open()
            self.down = False

    async def milestone(self) -> int:
        async with self.lock:
            return (await self.coordinator.issue(_publish)).index

    async def tick(self, interval_s: float) -> None:
        while True:
            if self.ticking and not self.down:
                await self.milestone()
            await anyio.sleep(interval_s)

    async def confirmed_index(self) -> int:
        return await self.node.read_core(lambda core: core.confirmed_index)

    async def wait_for_index(self, index: int) -> None:
        for _ in range(3000):
            if await self.confirmed_index() >= index:
                return
            await anyio.sleep(0.01)
        raise AssertionError(f"milestone {index} did not come")

    def transport(self, *, stream: bool = True) -> Router:
        return Router(self, stream=stream)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(self.app), base_url="http://node")

    async def fund(self, payouts: Sequence[tuple[Address, int]]) -> None:
        """The faucet pays `payouts` and a milestone confirms it."""
        rest = self.faucet_balance - sum(amount for _, amount in payouts)
        tx = transfer([(self.faucet_output, FAUCET)], [*payouts, (address(FAUCET), rest)])
        async with self.http() as client:
            tips = (await client.get("/api/v1/tips")).json()["tips"]
            parents = tuple(MessageId.from_hex(t) for t in tips)
            raw = message(tx, parents, work_per_kib=PARAMS.work_per_kib)
            response = await client.post("/api/v1/messages", json={"message": raw.hex()})
            assert response.status_code == 201, response.text
        self.faucet_output = tx.output_id(len(payouts))
        self.faucet_balance = rest
        await self.wait_for_index(await self.confirmed_index() + 2)

    async def balance_of(self, who: Address) -> int:
        return await self.node.read_storage(lambda s: s.balance(who))


class Router(httpx.AsyncBaseTransport):
    """The wallet's way into the harness: refuses connections while the node is down, streams
    the events route (or not), can make the first tips lazy or lose a submission's answer, and can
    play an older node."""

    def __init__(self, harness: Harness, *, stream: bool) -> None:
        self.harness = harness
        self.stream = stream

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        h = self.harness
        if h.down:
            raise httpx.ConnectError("connection refused")
        path = request.url.path
        if path == "/api/v1/tips" and h.refuse_tips:
            raise httpx.ConnectError("connection refused")
        if path == "/api/v1/tips" and h.lazy_tips:  # the genesis: cone root index 0
            h.lazy_tips -= 1
            return httpx.Response(200, json={"tips": ["00" * 32]})
        if path == "/api/v1/events" and self.stream:
            return await h.streaming.handle_async_request(request)
        h.asked.append(path)
        if path.startswith("/api/v1/outputs/") and h.old_node:
            request = httpx.Request(request.method, request.url.copy_with(path="/api/v1/none"))
        response = await httpx.ASGITransport(h.app).handle_async_request(request)
        if path == "/api/v1/messages" and request.method == "POST":
            h.submitted.append(request.content)
            if h.crash_on_submit:  # the node stored it, then died before answering
                h.crash_on_submit = False
                h.down = True
                h.crashed.set()
                raise httpx.ReadError("connection reset by peer")
        return response


@contextlib.asynccontextmanager
async def running(tmp_path: Path, tick_s: float = 0.02) -> AsyncIterator[Harness]:
    harness: Harness | None = None
    try:
        async with anyio.create_task_group() as group:
            harness = Harness(tmp_path, group)
            group.start_soon(harness.tick, tick_s)
            yield harness
            group.cancel_scope.cancel()
    finally:
        if harness is not None:
            harness.close()


@contextlib.asynccontextmanager
async def open_wallet(
    h: Harness,
    state: Path,
    *,
    stream: bool = True,
    config: WalletConfig = CONFIG,
    retry: RetryPolicy = RETRY,
) -> AsyncIterator[Wallet]:
    async with Wallet.open(
        ACCOUNT,
        url="http://node",
        state_path=state,
        transport=h.transport(stream=stream),
        config=config,
        retry=retry,
    ) as w:
        yield w


def inputs_of(transfers: Sequence[wallet.Transfer]) -> list[set[OutputId]]:
    return [set(t.inputs) for t in transfers]


# -- discovery and balance -----------------------------------------------------------------------


async def test_sync_discovers_funded_addresses_within_the_gap_limit(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        payouts = [
            (ACCOUNT.address(0), 5_000),
            (ACCOUNT.address(7), 7_000),
            (ACCOUNT.address(3, change=1), 300),
            (ACCOUNT.address(28), 28_000),  # 21 unused after index 7: beyond a gap of 20
        ]
        await h.fund(payouts)
        async with open_wallet(h, tmp_path / "w.db") as w:
            result = await w.sync()
            assert set(result.used) == {(0, 0), (0, 7), (1, 3)}
            assert result.balance.total == 1_000_000 + 5_000 + 7_000 + 300
            assert result.balance.outputs == 4
            assert result.next_receive_index == 8
            assert result.scanned == (8 + 20) + (4 + 20)
            assert await w.receive_address() == encode_address(ACCOUNT.address(8), wallet.DEVNET)
            assert await w.balance() == result.balance
        wide = WalletConfig(gap_limit=25, pow_threads=1)
        async with open_wallet(h, tmp_path / "w.db", config=wide) as w:
            result = await w.sync()
            assert (0, 28) in result.used
            assert result.balance.total == 1_000_000 + 5_000 + 7_000 + 300 + 28_000
        # the state remembers used addresses: a narrow gap still reaches index 28 through them
        async with open_wallet(h, tmp_path / "w.db", config=WalletConfig(gap_limit=1)) as w:
            result = await w.sync()
            assert (0, 28) in result.used


# -- sending -------------------------------------------------------------------------------------


async def test_send_is_confirmed_through_the_event_stream(tmp_path: Path) -> None:
    async with running(tmp_path) as h, open_wallet(h, tmp_path / "w.db") as w:
        await w.sync()
        sent = await w.send(encode_address(address(BOB), wallet.DEVNET), 250_000)
        assert sent.status is TransferStatus.CONFIRMED
        assert sent.confirmed_index is not None
        assert len(sent.attachments) == 1
        assert w.counters.streams_opened >= 1
        assert w.counters.stream_failures == 0
        assert w.counters.polls == 0
        assert await h.balance_of(address(BOB)) == 250_000
        # the change came back to a change address and is spendable at once
        assert sent.change == 750_000
        assert sent.transaction.essence.outputs[1].address == ACCOUNT.address(0, change=1)
        balance = await w.balance()
        assert (balance.total, balance.reserved) == (750_000, 0)
        assert (await w.sync()).balance.total == 750_000
        again = await w.send(address(CAROL), 750_000)  # all of it: no change output
        assert again.change == 0
        assert len(again.transaction.essence.outputs) == 1
        assert (await w.balance()).total == 0
        with pytest.raises(InsufficientFundsError) as caught:
            await w.send(address(CAROL), 1_000)
        assert caught.value.available == 0
        with pytest.raises(AmountError):
            await w.send(address(CAROL), MIN_OUTPUT - 1)


async def test_a_repeat_of_a_recorded_transfer_is_not_held_to_a_minimum_raised_since(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refund of 150 sent at a minimum output of 100 and repeated (its answer lost) after the
    node's minimum rose to 200: the repeat returns the recorded transfer instead of failing
    on the new rule for ever; a new transfer of 150 is refused."""
    async with running(tmp_path) as h, open_wallet(h, tmp_path / "w.db") as w:
        await w.sync()
        sent = await w.send(address(BOB), 150, idempotency_key="refund-1")
        node_info = NodeClient.info

        async def raised(client: NodeClient) -> wallet.NodeInfo:
            return dataclasses.replace(await node_info(client), min_output_amount=200)

        monkeypatch.setattr(NodeClient, "info", raised)
        before = len(h.submitted)
        again = await w.send(address(BOB), 150, idempotency_key="refund-1")
        assert again.transaction_id == sent.transaction_id
        assert len(h.submitted) == before
        with pytest.raises(AmountError):
            await w.send(address(BOB), 150, idempotency_key="refund-2")


async def test_an_idempotent_repeat_returns_the_transfer_and_pays_once(tmp_path: Path) -> None:
    async with (
        running(tmp_path) as h,
        open_wallet(h, tmp_path / "w.db") as first,
        open_wallet(h, tmp_path / "w.db") as second,
    ):
        await first.sync()
        sent = await first.send(address(BOB), 100_000, idempotency_key="invoice-17")
        assert sent.transaction.essence.memo == MEMO_TAG + idempotency_hash("invoice-17")
        assert sent.key_hash == idempotency_hash("invoice-17")
        before = len(h.submitted)
        again = await second.send(address(BOB), 100_000, idempotency_key="invoice-17")
        assert again.transaction_id == sent.transaction_id
        assert again.message_ids == sent.message_ids
        assert len(h.submitted) == before  # nothing was built, signed or submitted again
        with pytest.raises(IdempotencyConflictError) as caught:
            await second.send(address(BOB), 100_001, idempotency_key="invoice-17")
        assert "invoice-17" not in str(caught.value)

        # two concurrent sends with one key, from two wallets on one state file
        results: list[wallet.Transfer] = []

        async def pay(w: Wallet) -> None:
            results.append(await w.send(address(CAROL), 50_000, idempotency_key=b"\x00order-9"))

        async with anyio.create_task_group() as group:
            group.start_soon(pay, first)
            group.start_soon(pay, second)
        assert results[0].transaction_id == results[1].transaction_id
        assert await h.balance_of(address(BOB)) == 100_000
        assert await h.balance_of(address(CAROL)) == 50_000
        assert (await first.sync()).balance.total == 1_000_000 - 150_000
        assert len(await first.transfers()) == 2


async def test_concurrent_wallets_on_one_state_file_never_share_an_input(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        coins = [(ACCOUNT.address(i % 3), 1_000) for i in range(6)]
        await h.fund(coins)
        state = tmp_path / "shared.db"
        async with open_wallet(h, state) as a, open_wallet(h, state) as b:
            await a.sync()
            # leave the genesis output aside so that the small coins must be combined
            big = await a.send(address(CAROL), 1_000_000)
            assert big.change == 0
            results: list[wallet.Transfer] = []

            async def pay(w: Wallet, who: Address) -> None:
                results.append(await w.send(who, 1_500))

            async with anyio.create_task_group() as group:
                group.start_soon(pay, a, address(BOB))
                group.start_soon(pay, b, address(BOB))
                group.start_soon(pay, b, address(CAROL))
            assert [t.status for t in results] == [TransferStatus.CONFIRMED] * 3
            sets = inputs_of(results)
            assert all(len(s) == 2 for s in sets)
            assert len(set.union(*sets)) == 6  # pairwise disjoint
            changes = {t.transaction.essence.outputs[1].address for t in results}
            assert len(changes) == 3  # each got its own change address
            assert await h.balance_of(address(BOB)) == 3_000
            assert await h.balance_of(address(CAROL)) == 1_000_000 + 1_500
            assert (await b.sync()).balance.total == 6_000 - 4_500
            with pytest.raises(InsufficientFundsError):
                await a.send(address(BOB), 1_600)


async def test_a_conflicting_transfer_fails_and_is_not_reattached(tmp_path: Path) -> None:
    # two devices with one seed but separate state files do not see each other's
    # reservations: both spend the genesis output, the ledger applies one
    async with (
        running(tmp_path) as h,
        open_wallet(h, tmp_path / "one.db") as one,
        open_wallet(h, tmp_path / "two.db") as two,
    ):
        await one.sync()
        await two.sync()
        h.ticking = False
        first = await one.send(address(BOB), 10_000, idempotency_key="a", wait=False)
        second = await two.send(address(CAROL), 20_000, idempotency_key="b", wait=False)
        assert first.inputs == second.inputs
        h.ticking = True
        outcomes: dict[str, wallet.Transfer | TransferFailedError] = {}

        async def finish(w: Wallet, name: str) -> None:
            try:
                outcomes[name] = await w.resume(name)
            except TransferFailedError as exc:
                outcomes[name] = exc

        async with anyio.create_task_group() as group:
            group.start_soon(finish, one, "a")
            group.start_soon(finish, two, "b")
        failed = [o for o in outcomes.values() if isinstance(o, TransferFailedError)]
        assert len(failed) == 1
        assert failed[0].reason == "input_spent"
        loser = one if isinstance(outcomes["a"], TransferFailedError) else two
        (record,) = await loser.transfers()
        assert record.status is TransferStatus.FAILED
        assert len(record.attachments) == 1  # reported, never re-attached
        assert loser.counters.reattachments == 0
        assert (await loser.balance()).reserved == 0
        with pytest.raises(TransferFailedError):  # a repeat reports the same failure
            await loser.send(
                record.recipient, record.amount, idempotency_key="a" if loser is one else "b"
            )


async def test_an_unconfirmed_transfer_is_reattached_with_the_same_nonce(tmp_path: Path) -> None:
    async with running(tmp_path, tick_s=0.01) as h, open_wallet(h, tmp_path / "w.db") as w:
        await w.sync()
        await h.wait_for_index(10)
        # the first attachment approves the genesis only: lazy from the start (CMI - YCRI > 8),
        # so the coordinator never references it
        h.lazy_tips = 1
        sent = await w.send(address(BOB), 40_000, idempotency_key="lazy")
        assert sent.status is TransferStatus.CONFIRMED
        assert w.counters.reattachments == 1
        first, second = sent.attachments
        assert second.cmi - first.cmi >= CONFIG.reattach_after
        assert first.message_id is not None
        assert second.message_id is not None
        async with NodeClient("http://node", transport=h.transport()) as client:
            stale = await client.metadata(first.message_id)
            assert stale.referenced_by is None
            fresh = await client.metadata(second.message_id)
            assert fresh.referenced_by == sent.confirmed_index
            old, new = (
                await client.message(first.message_id),
                await client.message(second.message_id),
            )
        assert old.message.payload == new.message.payload == sent.transaction  # not re-signed
        assert old.message.nonce == new.message.nonce == sent.nonce  # no new work
        assert old.message.parents != new.message.parents
        assert await h.balance_of(address(BOB)) == 40_000


async def test_proof_of_work_at_the_node_and_polling_without_a_stream(tmp_path: Path) -> None:
    remote = WalletConfig(
        remote_pow=True, poll_interval_s=0.05, stream_open_timeout_s=0.2, stream_retry_s=0.3
    )
    async with (
        running(tmp_path) as h,
        open_wallet(h, tmp_path / "w.db", stream=False, config=remote) as w,
    ):
        await w.sync()
        sent = await w.send(address(BOB), 60_000)
        assert sent.status is TransferStatus.CONFIRMED
        assert h.submitted == []  # never POST /api/v1/messages: the node made the message
        (attachment,) = sent.attachments
        assert attachment.message_id is not None
        assert attachment.raw is not None
        parsed = decode_message(attachment.raw)
        assert parsed.id == attachment.message_id
        assert sent.nonce == parsed.message.nonce  # kept for any re-attachment
        assert w.counters.stream_failures >= 1  # plain ASGITransport: the stream never opens
        assert w.counters.polls >= 1
        assert await h.balance_of(address(BOB)) == 60_000


async def test_a_node_restart_in_the_middle_of_a_send(tmp_path: Path) -> None:
    async with running(tmp_path) as h, open_wallet(h, tmp_path / "w.db") as w:
        await w.sync()

        async def restart_when_crashed() -> None:
            await h.crashed.wait()
            await anyio.sleep(0.1)
            await h.restart()

        async with anyio.create_task_group() as group:
            group.start_soon(restart_when_crashed)
            h.crash_on_submit = True
            sent = await w.send(address(BOB), 70_000, idempotency_key="through-restart")
        assert sent.status is TransferStatus.CONFIRMED
        assert len(sent.attachments) == 1
        assert w.client.retries >= 1
        assert len(h.submitted) == 2  # the lost answer, then the retry (duplicate_message)
        assert h.submitted[0] == h.submitted[1]

        # a longer outage: the send gives up, the transfer waits in the state, a repeat
        # after the restart finishes it without paying twice
        h.crashed = anyio.Event()
        h.crash_on_submit = True
        short = RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.01)
        async with open_wallet(h, tmp_path / "w.db", retry=short) as impatient:
            with pytest.raises(NodeUnavailableError) as caught:
                await impatient.send(address(CAROL), 80_000, idempotency_key="outage")
            assert "http://node" not in str(caught.value)
        (pending,) = await w.transfers([TransferStatus.SUBMITTED])
        assert (await w.balance()).reserved == 1_000_000 - 70_000
        await h.restart()
        done = await w.send(address(CAROL), 80_000, idempotency_key="outage")
        assert done.transaction_id == pending.transaction_id
        assert done.status is TransferStatus.CONFIRMED
        assert await h.balance_of(address(BOB)) == 70_000
        assert await h.balance_of(address(CAROL)) == 80_000
        assert (await w.sync()).balance.total == 1_000_000 - 150_000


async def test_stale_reservations_expire_only_when_the_ledger_allows(tmp_path: Path) -> None:
    async with (
        running(tmp_path, tick_s=0.01) as h,
        open_wallet(h, tmp_path / "w.db") as sender,
        open_wallet(h, tmp_path / "w.db") as other,
    ):
        await sender.sync()
        await h.wait_for_index(10)
        h.lazy_tips = 1  # its only attachment will never be confirmed
        stuck = await sender.send(address(BOB), 10_000, idempotency_key="stuck", wait=False)
        assert stuck.status is TransferStatus.SUBMITTED
        # the sender goes away; its reservation holds while the attachment may still confirm
        with pytest.raises(InsufficientFundsError):
            await other.send(address(CAROL), 999_000, idempotency_key="later")
        assert (await other.balance()).reserved == 1_000_000
        assert stuck.last_cmi is not None
        await h.wait_for_index(stuck.last_cmi + CONFIG.expire_after)
        (expired,) = await other.settle()
        assert expired.status is TransferStatus.EXPIRED
        assert (await other.balance()).reserved == 0
        # spending its input elsewhere cancels it for good: never both payments
        paid = await other.send(address(CAROL), 999_000, idempotency_key="later")
        assert paid.inputs == stuck.inputs
        with pytest.raises(TransferFailedError) as caught:
            await sender.resume("stuck")
        assert caught.value.reason == "input_spent"
        assert await h.balance_of(address(BOB)) == 0
        assert await h.balance_of(address(CAROL)) == 999_000


async def test_a_transfer_never_submitted_is_abandoned_after_its_lease(tmp_path: Path) -> None:
    quick = RetryPolicy(attempts=2, base_delay_s=0.001, max_delay_s=0.001)
    async with running(tmp_path) as h, open_wallet(h, tmp_path / "w.db", retry=quick) as w:
        await w.sync()
        h.refuse_tips = True  # signed and recorded, then the sender loses the node
        with pytest.raises(NodeUnavailableError):
            await w.send(address(BOB), 10_000, idempotency_key="orphan")
        (orphan,) = await w.transfers()
        assert orphan.status is TransferStatus.SIGNED
        assert orphan.nonce is not None
        h.refuse_tips = False
        assert await w.settle() == []  # within its lease: the sender may still be working
        brief = WalletConfig(abandon_after_s=0.001, pow_threads=1)
        async with open_wallet(h, tmp_path / "w.db", config=brief) as janitor:
            await anyio.sleep(0.01)
            (abandoned,) = await janitor.settle()
        assert abandoned.status is TransferStatus.FAILED
        assert abandoned.failure == "abandoned"
        assert (await w.balance()).reserved == 0
        with pytest.raises(TransferFailedError, match="abandoned"):
            await w.send(address(BOB), 10_000, idempotency_key="orphan")
        assert h.submitted == []  # it was never published
        assert (await w.send(address(BOB), 10_000, idempotency_key="retry")).confirmed_index


def _reserve_in_process(state_path: str, start: int, count: int) -> list[list[bytes]]:
    """Run in a separate process: make `count` transfers of 1500 from the shared state."""
    state = WalletState.open(Path(state_path), account=account_fingerprint(ACCOUNT))
    signer = ACCOUNT.address_key(0)
    chosen = []
    try:
        for i in range(start, start + count):

            def build(coins: list[Coin], change_index: int) -> Draft:
                selection = select_coins(coins, 1_500, min_output=MIN_OUTPUT)
                essence = TransactionEssence(
                    network_id=NET,
                    inputs=tuple(c.output_id for c in selection.inputs),
                    outputs=(BasicOutput(address=address(BOB), amount=selection.total),),
                )
                tx = sign_transaction(essence, [signer] * len(selection.inputs))
                return Draft(transaction=tx, recipient=address(BOB), amount=1_500, change=None)

            key = idempotency_hash(f"process-{i}")
            made, created = state.create_transfer(f"process-{i}".encode(), key, key, build, i)
            assert created
            chosen.append([bytes(oid) for oid in made.inputs])
    finally:
        state.close()
    return chosen


def test_processes_sharing_a_state_file_reserve_disjoint_inputs(tmp_path: Path) -> None:
    state_path = tmp_path / "shared.db"
    state = WalletState.open(state_path, account=account_fingerprint(ACCOUNT))
    owner = ACCOUNT.address(0)
    coins = [
        Coin(output_id=OutputId.of(TransactionId(bytes(32)), i), address=owner, amount=1_000)
        for i in range(60)
    ]
    state.replace_outputs([owner], coins, 1, 0)
    state.close()
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        results = pool.starmap(
            _reserve_in_process, [(str(state_path), n * 10, 10) for n in range(3)]
        )
    chosen = [frozenset(inputs) for per_process in results for inputs in per_process]
    assert len(chosen) == 30
    assert all(len(inputs) == 2 for inputs in chosen)
    assert len(frozenset().union(*chosen)) == 60  # no output twice
    state = WalletState.open(state_path, account=account_fingerprint(ACCOUNT))
    try:
        assert state.balance().reserved == 60_000
        with pytest.raises(InsufficientFundsError):
            _reserve_in_process(str(state_path), 99, 1)
    finally:
        state.close()


# -- the client's errors --------------------------------------------------------------------------


async def test_client_errors_are_named_and_keep_the_node_code(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        async with NodeClient("http://node", transport=h.transport(), retry=RETRY) as client:
            info = await client.info()
            assert (info.network_id, info.min_output_amount) == (NET, MIN_OUTPUT)
            unsent = prepare(NET, TaggedData(tag=b"t", data=b"x"), PARAMS.work_per_kib)
            nonce = next(n for n in range(1000) if work_value(unsent.root, n) > unsent.target)
            lazy = encode_message(unsent.attach(await client.tips(), nonce))
            with pytest.raises(RejectedError) as refused:
                await client.submit(lazy)
            assert (refused.value.code, refused.value.status) == ("insufficient_work", 400)
            with pytest.raises(NotFoundError) as missing:
                await client.metadata(MessageId(bytes(range(32))))
            assert missing.value.code == "unknown_message"
            good = next(n for n in range(10**6) if work_value(unsent.root, n) <= unsent.target)
            raw = encode_message(unsent.attach(await client.tips(), good))
            first = await client.submit(raw)
            assert await client.submit(raw) == first  # a repeat counts as submitted
            with pytest.raises(RejectedError) as duplicate:
                await client.submit_pow(unsent.payload)
            assert duplicate.value.code == "duplicate_payload"
        h.down = True
        quick = RetryPolicy(attempts=3, base_delay_s=0.001, max_delay_s=0.001)
        async with NodeClient("http://user:secret@node", transport=h.transport(), retry=quick) as c:
            with pytest.raises(NodeUnavailableError) as down:
                await c.info()
            assert c.retries == 2
            assert "secret" not in str(down.value)
            assert down.value.__cause__ is None
        h.down = False
        async with open_wallet(h, tmp_path / "w.db") as w:
            await w.sync()
            record = await w.send(address(BOB), 1_000)
            texts = [repr(w), str(w), repr(w.state), repr(w.client), repr(record), str(down.value)]
            secrets = [
                SEED.hex(),
                ExtendedKey.from_seed(SEED).derive(address_path(0, 0)).private_key.hex(),
            ]
            assert not any(secret in text for secret in secrets for text in texts)
    other = AccountKey(bytes(32), 0)
    with pytest.raises(WalletStateError):  # one state file, one account
        async with Wallet.open(other, url="http://node", state_path=tmp_path / "w.db"):
            pass
    assert issubclass(NodeUnavailableError, WalletError)


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_local_proof_of_work_runs_beside_the_loop_and_stops_when_cancelled(backend: str) -> None:
    unsent = prepare(NET, TaggedData(tag=b"w", data=b"x"), PARAMS.work_per_kib)

    async def main() -> tuple[int, float]:
        nonce = await find_nonce(unsent.root, unsent.target, threads=1)
        start = time.monotonic()
        with anyio.move_on_after(0.1):
            await find_nonce(unsent.root, 0, threads=1)  # no nonce is that good
        return nonce, time.monotonic() - start

    nonce, waited = anyio.run(main, backend=backend)
    assert work_value(unsent.root, nonce) <= unsent.target
    assert waited < 1.0


def test_unusable_state_files_and_urls_are_named_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite" * 100)
    with pytest.raises(WalletStateError, match="not a database"):
        WalletState.open(garbage, account=account_fingerprint(ACCOUNT))
    with pytest.raises(WalletStateError):
        WalletState.open(tmp_path / "missing" / "w.db", account=account_fingerprint(ACCOUNT))
    with pytest.raises(WalletConfigError):
        NodeClient("http://[::1")
    with pytest.raises(WalletConfigError):
        WalletConfig(reattach_after=15)
    for url in ("127.0.0.1:8080", "localhost:8080", "ftp://node", "http://", "http:///api"):
        with pytest.raises(NodeUrlError, match="expected http://HOST:PORT"):
            NodeClient(url)


# -- the asyncio backend and the blocking API ---------------------------------------------------


@contextlib.contextmanager
def node_in_a_thread(path: Path) -> Iterator[int]:
    """A node with a coordinator served by hypercorn on loopback, in its own trio thread."""
    ready: queue.Queue[tuple[int, trio.lowlevel.TrioToken, trio.Event] | BaseException] = (
        queue.Queue()
    )

    async def serve() -> None:
        ledger = open_ledger(path / "node.db")
        journal = Journal.open(path / "journal.db")
        try:
            node = Node(ledger)
            coordinator = Coordinator(node, journal, SIGNERS)
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                port = await nursery.start(serve_api, create_app(node, ApiConfig()), "127.0.0.1", 0)

                async def tick() -> None:
                    while True:
                        await coordinator.issue(_publish)
                        await trio.sleep(0.02)

                nursery.start_soon(tick)
                ready.put((port, trio.lowlevel.current_trio_token(), stop))
                await stop.wait()
                nursery.cancel_scope.cancel()
        finally:
            journal.close()
            ledger.close()

    def main() -> None:
        try:
            trio.run(serve)
        except BaseException as exc:  # surface a failed start to the test
            ready.put(exc)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    started = ready.get(timeout=30)
    if isinstance(started, BaseException):
        raise started
    port, token, stop = started
    try:
        yield port
    finally:
        trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(timeout=30)


def test_the_asyncio_backend_and_the_blocking_api_over_loopback(tmp_path: Path) -> None:
    with node_in_a_thread(tmp_path) as port:
        url = f"http://127.0.0.1:{port}"

        async def main() -> wallet.Transfer:
            async with Wallet.open(
                ACCOUNT, url=url, state_path=tmp_path / "w.db", config=CONFIG, retry=RETRY
            ) as w:
                result = await w.sync()
                assert result.balance.total == 1_000_000
                sent = await w.send(address(BOB), 123_000, idempotency_key="asyncio")
                assert w.counters.streams_opened >= 1
                assert w.counters.stream_failures == 0
                return sent

        sent = anyio.run(main, backend="asyncio")
        assert sent.status is TransferStatus.CONFIRMED

        with SyncWallet(
            ACCOUNT, url=url, state_path=tmp_path / "w.db", config=CONFIG, retry=RETRY
        ) as device:
            assert device.sync().balance.total == 1_000_000 - 123_000
            again = device.send(address(BOB), 123_000, idempotency_key="asyncio")
            assert again.transaction_id == sent.transaction_id
            paid = device.send(encode_address(address(CAROL), wallet.DEVNET), 7_000)
            assert paid.status is TransferStatus.CONFIRMED
            assert device.balance().total == 1_000_000 - 130_000
            assert "SyncWallet(account=0" in repr(device)
        with httpx.Client(base_url=url) as http:
            bob = http.get(f"/api/v1/addresses/{address(BOB).hex()}/balance").json()
            assert bob["balance"] == "123000"
