"""The HTTP API against a real node: a `LedgerNode` on sqlite, a coordinator issuing milestones."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest
import trio
import trio.testing
from nacl.signing import SigningKey
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Message

import tangle.errors
from coordinator import Coordinator, Journal, KeySigner
from tangle.errors import TangleError
from tangle.http._batch import BATCH_BODY_LIMIT, MAX_BATCH, encode_batch
from tangle.http._schema import API_ERROR_CODES, TANGLE_ERROR_CODES, tangle_error_code
from tangle.http.api import ApiConfig, ApiError, PowLimits, api_document, create_app, serve_api
from tangle.ledger.committee import KeySchedule
from tangle.node.core import Parameters
from tangle.node.ledger_node import LedgerNode
from tangle.node.node import Node
from tangle.p2p.peering import Peering
from tangle.protocol.bech32 import DEVNET, TESTNET, encode_address
from tangle.protocol.ids import Address, MerkleRoot, MessageId, MilestoneId, blake2b_256
from tangle.protocol.merkle import merkle_root
from tangle.protocol.message import MAX_MESSAGE_SIZE, decode_message, encode_message, prepare
from tangle.protocol.milestone import KeySet
from tangle.protocol.payload import TaggedData, encode_payload
from tangle.protocol.pow import work_value
from tangle.protocol.transaction import Transaction
from tangle.service import PeeringAdmin
from tangle.storage.storage import InconsistentWriteError
from tangle.window.dag import GENESIS_ID
from tests.builders import NET, address, genesis, key, message, milestone, on_tips, transfer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from pathlib import Path

    from prometheus_client.metrics_core import Metric
    from starlette.types import ASGIApp

PARAMS = Parameters(network_id=NET, work_per_kib=16, min_output_amount=1)
SIGNERS = sorted((KeySigner(bytes([i]) * 32) for i in range(1, 4)), key=lambda s: s.public_key)
KEY_SET = KeySet(threshold=2, public_keys=tuple(s.public_key for s in SIGNERS))
ALICE, BOB, CAROL = key(1), key(2), key(3)
GENESIS = genesis([(ALICE, 1_000_000)])
TOKEN = "an-admin-token-of-some-length"


def open_ledger(path: Path) -> LedgerNode:
    return LedgerNode.open(
        path, genesis=GENESIS, params=PARAMS, schedule=KeySchedule(entries=((1, KEY_SET),))
    )


async def _publish(raw: bytes) -> None:
    pass


@dataclass
class Net:
    ledger: LedgerNode
    node: Node
    coordinator: Coordinator
    app: ASGIApp
    client: httpx.AsyncClient
    rng: np.random.Generator

    async def milestone(self) -> int:
        return (await self.coordinator.issue(_publish)).index


@contextlib.asynccontextmanager
async def network(
    tmp_path: Path, config: ApiConfig | None = None, *, peering: bool = False, **app_args: Any
) -> AsyncIterator[Net]:
    ledger = open_ledger(tmp_path / "node.db")
    journal = Journal.open(tmp_path / "journal.db")
    node = Node(ledger)
    if peering:  # the real gossip layer, not started: no peer is dialed
        app_args["peers"] = PeeringAdmin(Peering(node))
    app = create_app(node, config or ApiConfig(admin_token=TOKEN), **app_args)
    transport = httpx.ASGITransport(app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            yield Net(
                ledger=ledger,
                node=node,
                coordinator=Coordinator(node, journal, SIGNERS),
                app=app,
                client=client,
                rng=np.random.default_rng(7),
            )
    finally:
        journal.close()
        ledger.close()


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run the app's ASGI lifespan, as a server does."""
    to_app, app_in = trio.open_memory_channel[dict[str, Any]](1)
    app_out, from_app = trio.open_memory_channel[Message](1)
    async with trio.open_nursery() as nursery:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        nursery.start_soon(app, scope, app_in.receive, app_out.send)
        await to_app.send({"type": "lifespan.startup"})
        assert (await from_app.receive())["type"] == "lifespan.startup.complete"
        yield
        await to_app.send({"type": "lifespan.shutdown"})
        assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"


@dataclass
class Stream:
    """A response read chunk by chunk, straight from the ASGI app."""

    status: int
    headers: dict[str, str]
    chunks: trio.MemoryReceiveChannel[bytes]
    requested: Callable[[], int]
    """How many pieces of the request body the app has read."""
    pending: str = ""
    last_id: str | None = None
    """The id of the last event read that had one (what a reconnect sends back)."""

    async def event(self) -> tuple[str, dict[str, Any]]:
        """The next server-sent event (comments skipped)."""
        while True:
            while "\n\n" not in self.pending:
                self.pending += (await self.chunks.receive()).decode()
            block, self.pending = self.pending.split("\n\n", 1)
            fields = dict(
                line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
            )
            if "id" in fields:
                self.last_id = fields["id"]
            if "event" in fields:
                return fields["event"], json.loads(fields["data"])


@contextlib.asynccontextmanager
async def open_stream(
    app: ASGIApp,
    path: str,
    query: str = "",
    headers: Sequence[tuple[str, str]] = (),
    *,
    method: str = "GET",
    body: Sequence[bytes] = (),
    client: str = "127.0.0.1",
) -> AsyncIterator[Stream]:
    """Call the app directly with `body` in pieces, handing over the response body chunk by
    chunk (the app waits until each is read); the client disconnects on exit."""
    chunks_in, chunks = trio.open_memory_channel[bytes](0)
    head: dict[str, Any] = {}
    started = trio.Event()
    gone = trio.Event()
    pieces = list(body) or [b""]
    sent = 0

    async def receive() -> Message:
        nonlocal sent
        if sent < len(pieces):
            sent += 1
            return {
                "type": "http.request",
                "body": pieces[sent - 1],
                "more_body": sent < len(pieces),
            }
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            head["status"] = message["status"]
            head["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
            started.set()
        elif message["type"] == "http.response.body":
            if message.get("body"):
                await chunks_in.send(message["body"])
            if not message.get("more_body"):
                chunks_in.close()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.1"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": (client, 4000),
        "server": ("node", 80),
    }
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app, scope, receive, send)
        await started.wait()
        yield Stream(
            status=head["status"], headers=head["headers"], chunks=chunks, requested=lambda: sent
        )
        gone.set()


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["message"], str)
    code: str = body["error"]["code"]
    return code


def spend_genesis(to: Sequence[tuple[SigningKey, int]]) -> Transaction:
    (oid,) = GENESIS.outputs()
    return transfer([(oid, ALICE)], [(address(k), v) for k, v in to])


# -- submitting and reading ---------------------------------------------------------------------


async def test_a_transfer_is_included_after_a_milestone(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        tx = spend_genesis([(BOB, 400_000), (ALICE, 600_000)])
        raw = on_tips(net.ledger.core, tx, net.rng)
        headers = {"content-type": "application/octet-stream"}
        response = await net.client.post("/api/v1/messages", content=raw, headers=headers)
        assert response.status_code == 201
        message_id = response.json()["id"]
        assert message_id == decode_message(raw).id.hex()

        metadata = (await net.client.get(f"/api/v1/messages/{message_id}/metadata")).json()
        assert metadata == {
            "id": message_id,
            "solid": True,
            "referenced_by": None,
            "inclusion": "no_transaction",
            "conflict": "none",
        }
        assert await net.milestone() == 1
        metadata = (await net.client.get(f"/api/v1/messages/{message_id}/metadata")).json()
        assert metadata["referenced_by"] == 1
        assert metadata["inclusion"] == "included"

        bob, bob_hex = encode_address(address(BOB), DEVNET), address(BOB).hex()
        balance = (await net.client.get(f"/api/v1/addresses/{bob_hex}/balance")).json()
        assert balance == {
            "address": bob,
            "address_hex": bob_hex,
            "ledger_index": 1,
            "balance": "400000",
            "output_count": 1,
        }
        outputs = (await net.client.get(f"/api/v1/addresses/{bob}/outputs")).json()
        assert (outputs["address"], outputs["address_hex"]) == (bob, bob_hex)
        (output,) = outputs["outputs"]
        assert output["transaction_id"] == tx.id.hex()
        assert output["output_index"] == 0
        assert output["amount"] == "400000"

        message = (await net.client.get(f"/api/v1/messages/{message_id}")).json()
        assert message["raw"] == raw.hex()
        assert message["payload"]["type"] == "transaction"
        assert message["payload"]["outputs"][0] == {
            "type": "basic",
            "address": bob,
            "address_hex": bob_hex,
            "amount": "400000",
        }
        binary = await net.client.get(
            f"/api/v1/messages/{message_id}", headers={"accept": "application/octet-stream"}
        )
        assert binary.headers["content-type"] == "application/octet-stream"
        assert binary.content == raw

        latest = (await net.client.get("/api/v1/milestones/latest")).json()
        assert latest == (await net.client.get("/api/v1/milestones/1")).json()
        assert latest["index"] == 1
        record = net.ledger.storage.milestone(1)
        assert record is not None
        assert latest["message_id"] == record.message_id.hex()
        assert latest["milestone_id"] == record.milestone_id.hex()

        info = (await net.client.get("/api/v1/info")).json()
        assert info["confirmed_milestone_index"] == info["latest_milestone_index"] == 1
        assert info["ledger_state_hash"] == net.ledger.storage.head().state_hash.hex()
        assert info["healthy"] is True
        assert info["network_id"] == str(NET)
        assert info["work_per_kib"] == 16
        assert info["min_output_amount"] == "1"
        assert (info["peers_configured"], info["peers_connected"]) == (None, None)

        tips = (await net.client.get("/api/v1/tips")).json()["tips"]
        assert tips == [net.ledger.core.dag.tips()[0].hex()]  # the milestone is the only tip
        assert (await net.client.get("/api/v1/tips?count=1")).json()["tips"] == tips


async def test_an_output_is_read_by_id_with_its_spender_until_pruned(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        (genesis_output,) = GENESIS.outputs()
        paid = spend_genesis([(BOB, 1_000_000)])
        for tx in (paid, transfer([(paid.output_id(0), BOB)], [(address(CAROL), 1_000_000)])):
            raw = on_tips(net.ledger.core, tx, net.rng)
            assert (
                await net.client.post("/api/v1/messages", json={"message": raw.hex()})
            ).is_success
            await net.milestone()
        onward = (await net.client.get(f"/api/v1/outputs/{paid.output_id(0).hex()}")).json()
        assert onward["ledger_index"] == 2
        assert onward["output"]["transaction_id"] == paid.id.hex()
        assert onward["output"]["amount"] == "1000000"
        assert (onward["created_at"], onward["spent_at"]) == (1, 2)
        assert onward["spent_by"] != paid.id.hex()
        first = (await net.client.get(f"/api/v1/outputs/{genesis_output.hex()}")).json()
        assert (first["created_at"], first["spent_by"], first["spent_at"]) == (0, paid.id.hex(), 1)
        (last,) = (
            await net.client.get(f"/api/v1/addresses/{address(CAROL).hex()}/outputs")
        ).json()["outputs"]
        unspent = (await net.client.get(f"/api/v1/outputs/{last['output_id']}")).json()
        assert (unspent["created_at"], unspent["spent_by"], unspent["spent_at"]) == (2, None, None)

        for wrong, status, code in [
            (genesis_output.hex()[:-2] + "01", 404, "unknown_output"),  # never created
            (paid.id.hex(), 400, "invalid_id"),  # a transaction id, not an output id
            ("zz" * 34, 400, "invalid_id"),
        ]:
            response = await net.client.get(f"/api/v1/outputs/{wrong}")
            assert (response.status_code, error_code(response)) == (status, code), wrong
        # spent at or below the pruning index: forgotten, as the message that spent it
        for _ in range(16):
            await net.milestone()
        await net.node.write(lambda ledger: ledger.prune(16))
        response = await net.client.get(f"/api/v1/outputs/{genesis_output.hex()}")
        assert (response.status_code, error_code(response)) == (404, "unknown_output")
        response = await net.client.get(f"/api/v1/outputs/{last['output_id']}")
        assert response.json()["spent_by"] is None  # the UTXO set is never pruned


async def test_a_node_that_is_catching_up_serves_no_tips(tmp_path: Path) -> None:
    """Milestones 2..4 arrive before 1 (committee-signed, so they count as the network's
    progress): the node refuses tips until it has applied them; an attacker's milestone signed
    by other keys does not make it think it is behind."""
    committee = [SigningKey(bytes([i]) * 32) for i in range(1, 4)]
    chain, previous = [], MilestoneId(bytes(32))
    for index in range(1, 5):
        ms = milestone(
            index=index,
            previous=previous,
            parents=(GENESIS_ID,),
            root=merkle_root([]),
            signers=committee[:2],
        )
        chain.append(message(ms, (GENESIS_ID,), work_per_kib=PARAMS.work_per_kib))
        previous = ms.id
    async with network(tmp_path) as net:
        forged = milestone(
            index=99,
            previous=previous,
            parents=(GENESIS_ID,),
            root=merkle_root([]),
            signers=[key(66), key(67)],
        )
        await net.node.submit(message(forged, (GENESIS_ID,), work_per_kib=PARAMS.work_per_kib))
        assert (await net.client.get("/api/v1/tips")).status_code == 200
        for raw in chain[1:]:
            await net.node.submit(raw)
        info = (await net.client.get("/api/v1/info")).json()
        assert (info["confirmed_milestone_index"], info["latest_milestone_index"]) == (0, 4)
        refused = await net.client.get("/api/v1/tips")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "node_unsynced"
        assert refused.headers["retry-after"] == "1"
        pow_refused = await net.client.post(
            "/api/v1/messages/pow",
            json={"payload": encode_payload(TaggedData(tag=b"t", data=b"d")).hex()},
        )
        assert pow_refused.json()["error"]["code"] == "node_unsynced"
        await net.node.submit(chain[0])
        assert net.ledger.core.confirmed_index == 4
        assert (await net.client.get("/api/v1/tips")).status_code == 200


async def test_json_submission_and_refusals(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        tx = spend_genesis([(BOB, 1_000_000)])
        raw = on_tips(net.ledger.core, tx, net.rng)
        post = net.client.post
        response = await post("/api/v1/messages", json={"message": raw.hex()})
        assert response.status_code == 201
        response = await post("/api/v1/messages", json={"message": raw.hex()})
        assert (response.status_code, error_code(response)) == (400, "duplicate_message")

        unsent = prepare(NET, TaggedData(tag=b"t", data=b"no work"), PARAMS.work_per_kib)
        nonce = next(n for n in range(1000) if work_value(unsent.root, n) > unsent.target)
        lazy = encode_message(unsent.attach(tuple(net.ledger.core.dag.tips()), nonce))
        response = await post("/api/v1/messages", json={"message": lazy.hex()})
        assert (response.status_code, error_code(response)) == (400, "insufficient_work")
        assert "work value" in response.json()["error"]["message"]

        other = prepare(NET + 1, TaggedData(tag=b"", data=b""), PARAMS.work_per_kib)
        nonce = next(n for n in range(10_000) if work_value(other.root, n) <= other.target)
        foreign = encode_message(other.attach(tuple(net.ledger.core.dag.tips()), nonce))
        response = await post("/api/v1/messages", json={"message": foreign.hex()})
        assert error_code(response) == "wrong_network"

        octets = {"content-type": "application/octet-stream"}
        cases: list[tuple[dict[str, Any], int, str]] = [
            ({"content": raw[:-3], "headers": octets}, 400, "truncated"),
            ({"content": raw + b"\0", "headers": octets}, 400, "trailing_bytes"),
            ({"content": b"\x07" + raw[1:], "headers": octets}, 400, "unknown_version"),
            ({"content": bytes(MAX_MESSAGE_SIZE + 1), "headers": octets}, 413, "body_too_large"),
            ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, ""),
            ({"json": {"message": "xyz"}}, 400, "invalid_hex"),
            ({"json": {"message": "abc"}}, 400, "invalid_hex"),
            ({"json": {"msg": raw.hex()}}, 400, "invalid_body"),
            ({"json": [raw.hex()]}, 400, "invalid_body"),
            ({"content": b"{", "headers": {"content-type": "application/json"}}, 400, ""),
            ({"json": {"message": "00" * (MAX_MESSAGE_SIZE + 1)}}, 400, "oversized"),
            ({"json": {"message": "00" * (MAX_MESSAGE_SIZE + 1000)}}, 413, "body_too_large"),
        ]
        for request, status, code in cases:
            response = await post("/api/v1/messages", **request)
            assert response.status_code == status, request
            assert code in error_code(response)
        pieces = [bytes(1000)] * 100  # no Content-Length: the limit holds while reading
        head = list(octets.items())
        async with open_stream(
            net.app, "/api/v1/messages", "", head, method="POST", body=pieces
        ) as streamed:
            assert streamed.status == 413
            assert b"body_too_large" in await streamed.chunks.receive()
            assert streamed.requested() == 33


async def test_a_gateway_submits_a_batch_with_a_result_per_message(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        first = spend_genesis([(BOB, 400_000), (ALICE, 600_000)])
        raw1 = on_tips(net.ledger.core, first, net.rng)
        second = transfer([(first.output_id(0), BOB)], [(address(CAROL), 400_000)])
        raw2 = message(second, (decode_message(raw1).id,), work_per_kib=PARAMS.work_per_kib)
        garbage = b"\x01\x02"
        octets = {"content-type": "application/octet-stream"}
        body = encode_batch([raw1, raw2, garbage, raw1])
        response = await net.client.post("/api/v1/messages/batch", content=body, headers=octets)
        assert response.status_code == 200
        doc = response.json()
        assert (doc["accepted"], doc["rejected"]) == (2, 2)
        ids = [blake2b_256(r).hex() for r in (raw1, raw2, garbage, raw1)]
        assert [r["id"] for r in doc["results"]] == ids
        assert "error" not in doc["results"][0]
        assert "error" not in doc["results"][1]
        assert doc["results"][2]["error"]["code"] == "truncated"
        assert doc["results"][3]["error"]["code"] == "duplicate_message"
        assert net.ledger.core.knows(MessageId(bytes.fromhex(ids[1])))

        again = await net.client.post("/api/v1/messages/batch", json={"messages": [raw2.hex()]})
        assert again.status_code == 200
        assert again.json()["results"] == [
            {"id": ids[1], "error": again.json()["results"][0]["error"]}
        ]
        assert again.json()["results"][0]["error"]["code"] == "duplicate_message"

        assert await net.milestone() == 1
        carol = address(CAROL).hex()
        balance = (await net.client.get(f"/api/v1/addresses/{carol}/balance")).json()
        assert balance["balance"] == "400000"

        post = net.client.post
        cases: list[tuple[dict[str, Any], int, str]] = [
            ({"content": body[:-1], "headers": octets}, 400, "truncated"),
            ({"content": body + b"\0", "headers": octets}, 400, "trailing_bytes"),
            ({"content": bytes(2), "headers": octets}, 400, "non_canonical"),
            ({"content": (MAX_BATCH + 1).to_bytes(2, "little"), "headers": octets}, 400, "non"),
            (
                {"content": b"\1\0" + (1 << 20).to_bytes(4, "little"), "headers": octets},
                400,
                "over",
            ),
            ({"content": bytes(BATCH_BODY_LIMIT + 1), "headers": octets}, 413, "body_too_large"),
            ({"content": b"x", "headers": {"content-type": "text/plain"}}, 415, ""),
            ({"json": {"messages": []}}, 400, "invalid_body"),
            ({"json": {"messages": [raw1.hex()] * (MAX_BATCH + 1)}}, 400, "invalid_body"),
            ({"json": {"messages": [1]}}, 400, "invalid_body"),
            ({"json": {"messages": raw1.hex()}}, 400, "invalid_body"),
            ({"json": {"messages": ["xyz"]}}, 400, "invalid_hex"),
        ]
        for request, status, code in cases:
            response = await post("/api/v1/messages/batch", **request)
            assert response.status_code == status, request
            assert code in error_code(response), request


async def test_bad_routes_ids_and_indexes(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        get = net.client.get
        response = await get("/api/v2/nothing")
        assert (response.status_code, error_code(response)) == (404, "not_found")
        response = await net.client.delete("/api/v1/info")
        assert (response.status_code, error_code(response)) == (405, "method_not_allowed")
        assert "GET" in response.headers["allow"]
        response = await get("/api/v1/messages/" + "00" * 32)
        assert (response.status_code, error_code(response)) == (404, "unknown_message")
        response = await get("/api/v1/messages/" + "00" * 32 + "/metadata")
        assert (response.status_code, error_code(response)) == (404, "unknown_message")
        for bad in ("zz" * 32, "00" * 31, "00" * 33):
            response = await get(f"/api/v1/messages/{bad}")
            assert (response.status_code, error_code(response)) == (400, "invalid_id")
            response = await get(f"/api/v1/addresses/{bad}/balance")
            assert (response.status_code, error_code(response)) == (400, "invalid_address")
        response = await get("/api/v1/milestones/latest")
        assert (response.status_code, error_code(response)) == (404, "unknown_milestone")
        response = await get("/api/v1/milestones/3")
        assert (response.status_code, error_code(response)) == (404, "unknown_milestone")
        for bad in ("0", "-1", "x", str(2**32), "1" * 30):
            response = await get(f"/api/v1/milestones/{bad}")
            assert (response.status_code, error_code(response)) == (400, "invalid_parameter")
        for count in ("0", "9", "two"):
            response = await get(f"/api/v1/tips?count={count}")
            assert (response.status_code, error_code(response)) == (400, "invalid_parameter")
        nobody = (await get(f"/api/v1/addresses/{'ab' * 32}/balance")).json()
        assert nobody["balance"] == "0"
        # before any milestone the genesis entry point is the only parent there is
        assert (await get("/api/v1/tips")).json()["tips"] == ["00" * 32]


# -- proof-of-work at the node ------------------------------------------------------------------


async def test_the_node_does_the_work_for_a_payload(tmp_path: Path) -> None:
    async with network(tmp_path, ApiConfig(pow_per_minute=60)) as net:
        payload = TaggedData(tag=b"sensor", data=b"21.5C")
        response = await net.client.post(
            "/api/v1/messages/pow", json={"payload": encode_payload(payload).hex()}
        )
        assert response.status_code == 201
        stored = net.ledger.storage.message(MessageId.from_hex(response.json()["id"]))
        assert stored is not None
        parsed = decode_message(stored)
        assert parsed.message.payload == payload
        assert parsed.message.parents == (bytes(32),)

        tx = spend_genesis([(BOB, 1_000_000)])
        response = await net.client.post(
            "/api/v1/messages/pow", json={"payload": encode_payload(tx).hex()}
        )
        assert response.status_code == 201
        assert await net.milestone() == 1
        bob = address(BOB).hex()
        balance = (await net.client.get(f"/api/v1/addresses/{bob}/balance")).json()
        assert balance["balance"] == "1000000"

        other = spend_genesis([(BOB, 999_999), (CAROL, 1)])
        forged = Transaction(essence=other.essence, unlocks=tx.unlocks)  # another tx's signature
        response = await net.client.post(
            "/api/v1/messages/pow", json={"payload": encode_payload(forged).hex()}
        )
        assert (response.status_code, error_code(response)) == (400, "invalid_transaction")
        record = net.ledger.storage.milestone(1)
        assert record is not None
        milestone_payload = decode_message(record.raw).message.payload
        cases = [
            ({"payload": encode_payload(milestone_payload).hex()}, "invalid_body"),
            ({"payload": "05"}, "unknown_type"),
            ({"payload": "00"}, "truncated"),
            ({"payload": encode_payload(payload).hex() + "00"}, "trailing_bytes"),
            ({"payload": 5}, "invalid_body"),
            ({"payload": "0"}, "invalid_hex"),
        ]
        for body, code in cases:
            response = await net.client.post("/api/v1/messages/pow", json=body)
            assert (response.status_code, error_code(response)) == (400, code)


async def test_pow_requests_that_fail_validation_are_charged_before_parsing(
    tmp_path: Path,
) -> None:
    """The attack: POST payloads with many signatures to make the node parse and verify them
    for free, as often as the connection allows."""
    async with network(tmp_path, ApiConfig(pow_per_minute=2)) as net:
        tx = spend_genesis([(BOB, 999_999), (CAROL, 1)])
        forged = Transaction(essence=tx.essence, unlocks=spend_genesis([(BOB, 1)]).unlocks)
        body = {"payload": encode_payload(forged).hex()}
        for _ in range(2):
            response = await net.client.post("/api/v1/messages/pow", json=body)
            assert (response.status_code, error_code(response)) == (400, "invalid_transaction")
        for refused in (body, {"payload": "zz"}, {"nothing": 1}):
            response = await net.client.post("/api/v1/messages/pow", json=refused)
            assert (response.status_code, error_code(response)) == (429, "pow_rate_limited")
            assert int(response.headers["retry-after"]) >= 1


class GatedSolver:
    """A proof-of-work search that waits for the test to open its gate."""

    def __init__(self) -> None:
        self.entered = trio.Event()
        self.gate = trio.Event()

    async def __call__(self, root: bytes, target: int) -> int:
        self.entered.set()
        await self.gate.wait()
        return next(n for n in range(1 << 20) if work_value(root, n) <= target)


async def test_proof_of_work_limits_per_client_and_node(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    solver = GatedSolver()
    config = ApiConfig(pow_per_minute=2, pow_concurrency=1)
    async with network(tmp_path, config, solve=solver) as net:
        other = httpx.AsyncClient(
            transport=httpx.ASGITransport(net.app, client=("10.9.9.9", 1)), base_url="http://n"
        )
        payloads = iter(
            encode_payload(TaggedData(tag=b"n", data=bytes([i]))).hex() for i in range(10)
        )

        async def ask(client: httpx.AsyncClient) -> httpx.Response:
            return await client.post("/api/v1/messages/pow", json={"payload": next(payloads)})

        results: list[httpx.Response] = []

        async def first() -> None:
            results.append(await ask(net.client))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first)
            await solver.entered.wait()
            busy = await ask(net.client)
            assert (busy.status_code, error_code(busy)) == (429, "pow_in_flight")
            assert busy.headers["retry-after"] == "1"
            full = await ask(other)
            assert (full.status_code, error_code(full)) == (429, "pow_capacity")
            solver.gate.set()
        assert results[0].status_code == 201
        assert (await ask(net.client)).status_code == 201
        limited = await ask(net.client)
        assert (limited.status_code, error_code(limited)) == (429, "pow_rate_limited")
        assert limited.headers["retry-after"] == "30"
        assert (await ask(other)).status_code == 201  # a bucket per client
        mock_clock.jump(30)
        assert (await ask(net.client)).status_code == 201
        await other.aclose()


def test_token_buckets_refill_continuously() -> None:
    limits = PowLimits(per_minute=3, concurrency=5, max_clients=2)
    for _ in range(3):
        with limits.admit("a", 0.0):
            pass
    with pytest.raises(ApiError, match="3 proofs-of-work a minute"):
        limits.admit("a", 10.0).__enter__()
    with limits.admit("a", 20.0):  # one token back after 20 s
        assert limits.in_flight == 1
    for client in "bcd":
        with limits.admit(client, 100.0):
            pass
    assert limits.in_flight == 0


# -- the event stream ----------------------------------------------------------------------------


async def test_events_carry_milestones_and_address_filtered_transactions(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        (oid,) = GENESIS.outputs()
        first = transfer([(oid, ALICE)], [(address(BOB), 1_000_000)])
        second = transfer([(oid, ALICE)], [(address(CAROL), 1_000_000)])  # a double spend
        bob, carol = address(BOB).hex(), address(CAROL).hex()
        async with (
            open_stream(net.app, "/api/v1/events", f"address={bob}") as to_bob,
            open_stream(net.app, "/api/v1/events", f"address={carol}") as to_carol,
            open_stream(net.app, "/api/v1/events") as to_all,
        ):
            assert to_bob.status == 200
            assert to_bob.headers["content-type"].startswith("text/event-stream")
            raw_first = on_tips(net.ledger.core, first, net.rng)
            await net.client.post("/api/v1/messages", json={"message": raw_first.hex()})
            raw_second = on_tips(net.ledger.core, second, net.rng, count=1)
            await net.client.post("/api/v1/messages", json={"message": raw_second.hex()})
            await net.milestone()
            name, included = await to_bob.event()
            assert name == "transaction"
            assert included["message_id"] == decode_message(raw_first).id.hex()
            assert included["inclusion"] == "included"
            assert bob in included["addresses_hex"]
            assert encode_address(address(ALICE), DEVNET) in included["addresses"]
            assert included["addresses"] == [
                encode_address(Address.from_hex(a), DEVNET) for a in included["addresses_hex"]
            ]
            name, milestone = await to_bob.event()
            assert (name, milestone["index"], milestone["included"]) == ("milestone", 1, 1)
            assert milestone["conflicting"] == 1

            name, conflicting = await to_carol.event()
            assert name == "transaction"
            assert conflicting["message_id"] == decode_message(raw_second).id.hex()
            assert (conflicting["inclusion"], conflicting["conflict"]) == (
                "conflicting",
                "input_spent",
            )
            assert (await to_carol.event())[0] == "milestone"

            seen = {(await to_all.event())[1]["inclusion"] for _ in range(2)}
            assert seen == {"included", "conflicting"}
            assert (await to_all.event())[0] == "milestone"
            await net.milestone()
            assert (await to_bob.event())[1]["index"] == 2  # nothing of bob's in it
            assert (await to_carol.event())[1]["index"] == 2
        response = await net.client.get("/api/v1/events", params={"address": "nothex"})
        assert (response.status_code, error_code(response)) == (400, "invalid_address")


async def test_addresses_are_read_in_hex_or_bech32m_and_answered_in_bech32m(
    tmp_path: Path,
) -> None:
    async with network(tmp_path) as net:
        raw = on_tips(net.ledger.core, spend_genesis([(BOB, 1_000_000)]), net.rng)
        bob = encode_address(address(BOB), DEVNET)
        async with open_stream(net.app, "/api/v1/events", f"address={bob.upper()}") as to_bob:
            await net.client.post("/api/v1/messages", json={"message": raw.hex()})
            await net.milestone()
            name, event = await to_bob.event()
            assert (name, event["addresses"]) == ("transaction", sorted_forms(ALICE, BOB)[0])
            assert event["addresses_hex"] == sorted_forms(ALICE, BOB)[1]
        answers = [
            (await net.client.get(f"/api/v1/addresses/{form}/balance")).json()
            for form in (bob, bob.upper(), address(BOB).hex(), address(BOB).hex().upper())
        ]
        assert all(a == answers[0] for a in answers)
        assert (answers[0]["address"], answers[0]["balance"]) == (bob, "1000000")
        outputs = (await net.client.get(f"/api/v1/addresses/{bob}/outputs")).json()
        assert outputs["outputs"][0]["address"] == bob
        elsewhere = encode_address(address(BOB), TESTNET)
        typo = bob[:-1] + ("q" if bob[-1] != "q" else "p")
        for bad in (elsewhere, typo, bob[:10] + bob[10:].upper(), "tpdev1"):
            for path in (f"/api/v1/addresses/{bad}/balance", f"/api/v1/events?address={bad}"):
                response = await net.client.get(path)
                assert (response.status_code, error_code(response)) == (400, "invalid_address")


def sorted_forms(*keys: SigningKey) -> tuple[list[str], list[str]]:
    """The addresses of `keys` in bech32m and in hex, in the order events list them."""
    ordered = sorted(address(k) for k in keys)
    return [encode_address(a, DEVNET) for a in ordered], [a.hex() for a in ordered]


async def test_a_slow_event_client_is_dropped_not_waited_for(tmp_path: Path) -> None:
    config = ApiConfig(event_buffer=1, keepalive_s=3600)
    async with (
        network(tmp_path, config) as net,
        open_stream(net.app, "/api/v1/events") as stream,
    ):
        assert b"connected" in await stream.chunks.receive()
        for _ in range(4):  # the client reads nothing meanwhile
            await net.milestone()
        assert net.node.counters.subscribers_dropped == 1
        names = []
        while True:
            name, _data = await stream.event()
            names.append(name)
            if name == "dropped":
                break
        assert names == ["milestone", "milestone", "dropped"]
        with pytest.raises(trio.EndOfChannel):
            await stream.chunks.receive()


async def test_an_idle_stream_sends_keep_alive_comments(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with (
        network(tmp_path, ApiConfig(keepalive_s=5)) as net,
        open_stream(net.app, "/api/v1/events") as stream,
    ):
        assert b"connected" in await stream.chunks.receive()
        assert await stream.chunks.receive() == b": keep-alive\n\n"


async def test_too_many_streams_are_refused(tmp_path: Path) -> None:
    async with (
        network(tmp_path, ApiConfig(max_event_streams=1)) as net,
        open_stream(net.app, "/api/v1/events") as stream,
    ):
        await stream.chunks.receive()
        response = await net.client.get("/api/v1/events")
        assert (response.status_code, error_code(response)) == (429, "too_many_streams")


# -- metrics, health, admin, the document --------------------------------------------------------


async def test_metrics_parse_and_count_confirmation_latency(tmp_path: Path) -> None:
    async with network(tmp_path, peering=True) as net, lifespan(net.app):
        raw = on_tips(net.ledger.core, spend_genesis([(BOB, 1_000_000)]), net.rng)
        await net.client.post("/api/v1/messages", json={"message": raw.hex()})
        await net.client.post("/api/v1/messages", json={"message": "00"})
        await net.milestone()
        await trio.testing.wait_all_tasks_blocked()
        response = await net.client.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(response.text):  # the official parser
            _check_conventions(family)
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
                samples[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
        assert samples["tangle_confirmed_milestone_index"] == 1
        assert samples["tangle_milestones_applied_total"] == 1
        assert samples["tangle_transactions_included_total"] == 1
        assert samples['tangle_api_messages_submitted_total{outcome="accepted"}'] == 1
        assert samples['tangle_api_messages_submitted_total{outcome="rejected"}'] == 1
        assert samples["tangle_api_confirmation_latency_seconds_count"] == 1
        assert samples['tangle_api_confirmation_latency_seconds_bucket{le="+Inf"}'] == 1
        assert samples["tangle_api_unconfirmed_submissions"] == 0
        assert samples['tangle_api_responses_total{status="201"}'] == 1
        assert samples['tangle_tips{score="non_lazy"}'] == 1
        assert samples["tangle_gossip_received_bytes_total"] == 0
        assert samples["tangle_peers_configured"] == samples["tangle_peers_connected"] == 0


def _check_conventions(family: Metric) -> None:
    """Prometheus naming: units last (before `_total`), no ratios but `_ratio`, counters in
    `_total`, HELP a sentence."""
    name = family.name
    assert re.fullmatch(r"tangle_[a-z0-9_]+", name), name
    words = name.split("_")
    for unit in ("bytes", "seconds"):
        if unit in words:
            assert words[-1] == unit, name
    assert "per" not in words or words[-1] == "ratio", name
    assert "waiting" not in words, name
    assert re.fullmatch(r"[A-Z][^\n]+\.", family.documentation), (name, family.documentation)
    if family.type == "counter":
        assert all(s.name == name + "_total" for s in family.samples), name


async def test_health_follows_the_milestone_timestamp(tmp_path: Path) -> None:
    async with network(tmp_path, ApiConfig(health_window_s=60)) as net:
        assert (await net.client.get("/api/v1/info")).json()["healthy"] is False
        journal = Journal.open(tmp_path / "old.db")
        net.coordinator = Coordinator(net.node, journal, SIGNERS, clock_ms=lambda: 1_000)
        await net.milestone()
        journal.close()
        info = (await net.client.get("/api/v1/info")).json()
        assert (info["healthy"], info["latest_milestone_timestamp_ms"]) == (False, 1_000)


async def test_admin_needs_the_token(tmp_path: Path) -> None:
    async with network(tmp_path, ApiConfig()) as net:
        response = await net.client.get("/api/v1/admin/peers")
        assert (response.status_code, error_code(response)) == (404, "not_found")
        response = await net.client.post("/api/v1/admin/prune", json={"keep_milestones": 20})
        assert response.status_code == 404
    async with network(tmp_path, ApiConfig(admin_token=TOKEN), peering=True) as net:
        client = net.client
        response = await client.get("/api/v1/admin/peers")
        assert (response.status_code, error_code(response)) == (401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
        wrong = {"authorization": "Bearer not-the-token"}
        response = await client.get("/api/v1/admin/peers", headers=wrong)
        assert (response.status_code, error_code(response)) == (403, "forbidden")
        auth = {"authorization": f"Bearer {TOKEN}"}
        listed = (await client.get("/api/v1/admin/peers", headers=auth)).json()
        assert listed == {"peers": []}
        added = await client.post(
            "/api/v1/admin/peers", json={"host": "10.0.0.2", "port": 14666}, headers=auth
        )
        assert added.status_code == 201
        assert added.json()["peer"]["id"] == "10.0.0.2:14666"
        listed = (await client.get("/api/v1/admin/peers", headers=auth)).json()["peers"]
        assert [(p["address"], p["connected"], p["outbound"]) for p in listed] == [
            ("10.0.0.2:14666", False, True)
        ]
        for body in ({"host": "", "port": 1}, {"host": "h", "port": 0}, {}):
            response = await client.post("/api/v1/admin/peers", json=body, headers=auth)
            assert response.status_code == 400, body
        response = await client.delete("/api/v1/admin/peers/10.0.0.2:14666", headers=auth)
        assert response.status_code == 204
        response = await client.delete("/api/v1/admin/peers/10.0.0.2:14666", headers=auth)
        assert (response.status_code, error_code(response)) == (404, "unknown_peer")
        info = (await client.get("/api/v1/info")).json()
        assert (info["peers_configured"], info["peers_connected"]) == (0, 0)

        for _ in range(3):
            await net.milestone()
        response = await client.post(
            "/api/v1/admin/prune", json={"keep_milestones": 15}, headers=auth
        )
        assert (response.status_code, error_code(response)) == (400, "invalid_parameter")
        response = await client.post(
            "/api/v1/admin/prune", json={"keep_milestones": 16}, headers=auth
        )
        assert response.status_code == 200
        assert response.json()["pruned_index"] == 0
        response = await client.post("/api/v1/admin/prune", json={"keep_milestones": 16})
        assert response.status_code == 401


def test_every_error_has_a_code_derived_from_its_class() -> None:
    classes = [
        cls
        for cls in vars(tangle.errors).values()
        if isinstance(cls, type) and issubclass(cls, TangleError)
    ]
    assert set(classes) == set(TANGLE_ERROR_CODES)
    for cls, code in TANGLE_ERROR_CODES.items():
        words = re.findall(r"[A-Z][a-z0-9]*", cls.__name__.removesuffix("Error"))
        assert code == "_".join(w.lower() for w in words)
    assert tangle_error_code(tangle.errors.InsufficientWorkError(2, 1)) == "insufficient_work"
    assert tangle_error_code(tangle.errors.DecodeError()) == "decode"
    assert tangle_error_code(InconsistentWriteError("x")) == "inconsistent_write"
    assert set(API_ERROR_CODES) & set(TANGLE_ERROR_CODES.values()) == {"unknown_message"}
    assert all(400 <= status < 600 for status, _ in API_ERROR_CODES.values())


async def test_the_openapi_document_describes_every_route(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        document = (await net.client.get("/openapi.json")).json()
    assert document == api_document(keep_milestones_minimum=16)
    assert document["openapi"].startswith("3.1")
    assert {"title", "version"} <= set(document["info"])
    app = create_app(net.node, ApiConfig(admin_token=TOKEN))
    served = {
        (re.sub(r":\w+\}", "}", route.path), method.lower())  # type: ignore[attr-defined]
        for route in app.routes
        for method in route.methods - {"HEAD", "OPTIONS"}  # type: ignore[attr-defined]
    }
    documented = {(path, m) for path, item in document["paths"].items() for m in item}
    assert served == documented
    schemas = document["components"]["schemas"]
    codes = set(schemas["Error"]["properties"]["error"]["properties"]["code"]["enum"])
    assert codes == set(API_ERROR_CODES) | set(TANGLE_ERROR_CODES.values())

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(document):
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["summary"], (path, method)
            statuses = set(operation["responses"])
            assert all(re.fullmatch(r"[1-5][0-9][0-9]", s) for s in statuses)
            assert any(s.startswith("2") for s in statuses), (path, method)
            assert "500" in statuses
            for status, response in operation["responses"].items():
                assert response["description"]
                if status >= "400":
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"
                    }
            params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert params == set(re.findall(r"\{(\w+)\}", path)), path


async def test_get_of_a_post_route_was_routed_to_the_message_route(tmp_path: Path) -> None:
    """`GET /messages/pow` answered 400 invalid_id (as a message id), and each method of a
    path with two routes named only its own in `Allow`."""
    async with network(tmp_path) as net:
        document = (await net.client.get("/openapi.json")).json()
        for path, item in document["paths"].items():
            url = re.sub(r"\{\w+\}", "ab" * 32, path).replace("{index}", "1")
            documented = {m.upper() for m in item} | ({"HEAD"} if "get" in item else set())
            response = await net.client.options(url)
            assert response.status_code == 204, path
            assert _allowed(response) == documented | {"OPTIONS"}, path
            other = next(m for m in ("PATCH", "PUT", "DELETE") if m not in documented)
            response = await net.client.request(other, url)
            assert (response.status_code, error_code(response)) == (405, "method_not_allowed")
            assert _allowed(response) == documented | {"OPTIONS"}, path
        for path in ("/api/v1/messages/pow", "/api/v1/messages/batch"):
            response = await net.client.get(path)
            assert (response.status_code, error_code(response)) == (405, "method_not_allowed")
            assert _allowed(response) == {"POST", "OPTIONS"}


def _allowed(response: httpx.Response) -> set[str]:
    return {m.strip() for m in response.headers["allow"].split(",")}


# -- on a real socket ----------------------------------------------------------------------------


async def test_serves_on_loopback_with_hypercorn(tmp_path: Path) -> None:
    async with network(tmp_path) as net, trio.open_nursery() as nursery:
        port = await nursery.start(serve_api, net.app, "127.0.0.1", 0)
        assert port > 0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            info = await client.get("/api/v1/info")
            assert info.status_code == 200
            assert info.json()["confirmed_milestone_index"] == 0
            raw = on_tips(net.ledger.core, spend_genesis([(BOB, 1_000_000)]), net.rng)
            submitted = await client.post(
                "/api/v1/messages",
                content=raw,
                headers={"content-type": "application/octet-stream"},
            )
            assert submitted.status_code == 201
            response = await client.post(
                "/api/v1/messages",
                content=bytes(2 * MAX_MESSAGE_SIZE),
                headers={"content-type": "application/octet-stream"},
            )
            assert (response.status_code, error_code(response)) == (413, "body_too_large")
            bob = address(BOB).hex()
            async with client.stream("GET", f"/api/v1/events?address={bob}") as events:
                assert events.headers["content-type"].startswith("text/event-stream")
                lines = events.aiter_lines()
                assert await anext(lines) == "retry: 5000"
                assert await anext(lines) == ": connected"
                nursery.start_soon(net.milestone)
                received = []
                async for line in lines:
                    if line.startswith("event: "):
                        received.append(line.removeprefix("event: "))
                    if len(received) == 2:
                        break
                assert received == ["transaction", "milestone"]
            wanted = (
                "tangle_api_confirmation_latency_seconds_count 1\n",
                "tangle_api_event_streams 0\n",
            )
            for _ in range(200):  # the server notices the disconnect when the socket says so
                metrics = (await client.get("/metrics")).text
                if all(line in metrics for line in wanted):
                    break
                await trio.sleep(0.01)
            assert all(line in metrics for line in wanted), metrics
        nursery.cancel_scope.cancel()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/api/v1/info")


async def test_admin_snapshot_starts_a_new_node(tmp_path: Path) -> None:
    from tangle.storage.snapshot import create_from_snapshot, decode_snapshot

    async with network(tmp_path, ApiConfig(admin_token=TOKEN)) as net:
        await net.milestone()
        await net.milestone()
        forbidden = await net.client.get("/api/v1/admin/snapshot")
        assert forbidden.status_code == 401
        response = await net.client.get(
            "/api/v1/admin/snapshot", headers={"authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/octet-stream"
        snapshot = decode_snapshot(response.content)
        assert snapshot.milestone_index == net.ledger.core.confirmed_index == 2
        create_from_snapshot(tmp_path / "fresh.db", snapshot).close()
        fresh = open_ledger(tmp_path / "fresh.db")
        try:
            assert fresh.core.ledger.state_hash == net.ledger.core.ledger.state_hash
            assert fresh.core.confirmed_id == net.ledger.core.confirmed_id
        finally:
            fresh.close()


async def test_an_equivocation_is_shown_at_alarms_and_in_metrics(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        assert (await net.client.get("/api/v1/alarms")).json() == {
            "applying_milestones": True,
            "equivocations": [],
        }
        await net.milestone()
        first = net.ledger.core.confirmed_id
        rival = milestone(
            index=1,
            previous=MilestoneId(bytes(32)),
            parents=(GENESIS_ID,),
            root=MerkleRoot(b"\x02" * 32),
            signers=[SigningKey(bytes([i]) * 32) for i in (1, 2)],
        )
        raw = message(rival, (GENESIS_ID,), work_per_kib=PARAMS.work_per_kib)
        refused = await net.client.post(
            "/api/v1/messages", content=raw, headers={"content-type": "application/octet-stream"}
        )
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "equivocation"
        alarms = (await net.client.get("/api/v1/alarms")).json()
        assert alarms == {
            "applying_milestones": False,
            "equivocations": [{"index": 1, "milestone_ids": [first.hex(), rival.id.hex()]}],
        }
        metrics = (await net.client.get("/metrics")).text
        assert "\ntangle_alarms 1\n" in metrics
        assert "\ntangle_equivocations_total 1\n" in metrics
