"""Whatever a client sends, the API answers with a 2xx or a 4xx in the error shape, never a 5xx,
and the node keeps answering."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest
import trio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from coordinator.issuer import milestone_essence, tips_to_confirm
from coordinator.signers import sign_milestone
from tangle.http._batch import encode_batch
from tangle.http.api import ApiConfig, create_app
from tangle.node.node import Node
from tangle.p2p.peering import Peering
from tangle.protocol.message import decode_message
from tangle.protocol.payload import TaggedData, encode_payload
from tangle.service import PeeringAdmin
from tests.builders import address, message, on_tips
from tests.tangle.http.test_api import (
    ALICE,
    BOB,
    KEY_SET,
    SIGNERS,
    TOKEN,
    open_ledger,
    open_stream,
    spend_genesis,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tangle.node.ledger_node import LedgerNode

CODE = re.compile(r"[a-z][a-z0-9_]*")
FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerNode]:
    """A node with one confirmed transfer, shared by every example."""
    node = open_ledger(tmp_path_factory.mktemp("fuzz") / "node.db")
    node.submit(on_tips(node.core, spend_genesis([(BOB, 1_000_000)]), np.random.default_rng(5)))
    parents = tips_to_confirm(node.core)
    essence = milestone_essence(
        node.core, parents=parents, timestamp_ms=int(time.time() * 1000), key_set_change=None
    )
    node.submit(message(sign_milestone(essence, SIGNERS, KEY_SET), parents, work_per_kib=16))
    yield node
    node.close()


def _known(ledger: LedgerNode) -> tuple[str, str, bytes]:
    """A stored message id, an address with outputs, and a valid message's bytes."""
    record = ledger.storage.milestone(1)
    assert record is not None
    (parent,) = decode_message(record.raw).message.parents
    raw = ledger.storage.message(parent)
    assert raw is not None
    return parent.hex(), address(BOB).hex(), raw


METHODS = {
    "/api/v1/info": "GET",
    "/api/v1/messages": "POST",
    "/api/v1/messages/pow": "POST",
    "/api/v1/messages/batch": "POST",
    "/api/v1/messages/{}": "GET",
    "/api/v1/messages/{}/metadata": "GET",
    "/api/v1/tips": "GET",
    "/api/v1/outputs/{}": "GET",
    "/api/v1/addresses/{}/outputs": "GET",
    "/api/v1/addresses/{}/balance": "GET",
    "/api/v1/milestones/latest": "GET",
    "/api/v1/milestones/{}": "GET",
    "/metrics": "GET",
    "/openapi.json": "GET",
    "/api/v1/admin/peers": "POST",
    "/api/v1/admin/peers/{}": "DELETE",
    "/api/v1/admin/prune": "POST",
}
ROUTES = tuple(METHODS)
printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
words = st.text(printable, max_size=40)
segments = st.one_of(
    st.text(st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/?#%"), max_size=70),
    st.binary(min_size=30, max_size=34).map(bytes.hex),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["latest", "00" * 32, address(ALICE).hex(), "1", "0", "..", ""]),
)
paths = st.one_of(
    st.builds(lambda route, seg: route.format(seg), st.sampled_from(ROUTES), segments),
    st.lists(segments, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts)),
)
methods = st.one_of(
    st.sampled_from(["GET", "POST"]),
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    st.from_regex(r"[A-Z]{1,10}", fullmatch=True),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | words,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(words, inner, max_size=4),
    max_leaves=12,
)
payload_hex = st.builds(
    lambda tag, data: encode_payload(TaggedData(tag=tag, data=data)).hex(),
    st.binary(max_size=64),
    st.binary(max_size=200),
)
json_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"message": st.binary(max_size=300).map(bytes.hex) | words}),
    st.fixed_dictionaries(
        {
            "messages": st.lists(st.binary(max_size=300).map(bytes.hex) | words, max_size=5)
            | json_values
        }
    ),
    st.fixed_dictionaries({"payload": payload_hex | st.binary(max_size=300).map(bytes.hex)}),
    st.fixed_dictionaries({"keep_milestones": st.integers(-5, 2**40) | json_values}),
    st.fixed_dictionaries({"host": words | json_values, "port": st.integers(-5, 70_000)}),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "content-type": st.sampled_from(
            ["application/json", "application/octet-stream", "text/plain", "application/json; x"]
        )
        | words,
        "accept": st.sampled_from(["application/octet-stream", "*/*", "application/json"]) | words,
        "authorization": st.sampled_from([f"Bearer {TOKEN}", "Bearer nope", "Basic x", ""]) | words,
    },
)
queries = st.dictionaries(st.sampled_from(["count", "address", "index", "x"]), words, max_size=3)


def check(response: httpx.Response) -> None:
    assert response.status_code // 100 in (2, 4), response.text
    event(f"status {response.status_code}")
    if response.request.method == "HEAD":
        return  # no body
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}
        assert CODE.fullmatch(body["error"]["code"])
        assert isinstance(body["error"]["message"], str)
    elif response.headers.get("content-type", "").startswith("application/json"):
        response.json()


async def _answer_info(client: httpx.AsyncClient) -> None:
    info = await client.get("/api/v1/info")
    assert info.status_code == 200
    assert info.json()["confirmed_milestone_index"] >= 1


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://node")


@FUZZ
@given(
    method=methods,
    path=paths,
    query=queries,
    headers=headers,
    body=st.one_of(st.none(), st.binary(max_size=600), json_bodies.map(json.dumps).map(str.encode)),
)
async def test_no_request_gets_a_server_error(
    ledger: LedgerNode,
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes | None,
) -> None:
    if path.startswith("/api/v1/events"):
        return  # a stream: fuzzed below
    app = create_app(Node(ledger), ApiConfig(admin_token=TOKEN), peers=_peers(ledger))
    async with _client(app) as client:
        url = httpx.URL(scheme="http", host="node", path=path, params=query)
        check(await client.request(method, url, headers=headers, content=body))
        await _answer_info(client)


@FUZZ
@given(data=st.data(), json_body=json_bodies, use_json=st.booleans())
async def test_known_routes_with_fuzzed_inputs(
    ledger: LedgerNode, data: st.DataObject, json_body: Any, use_json: bool
) -> None:
    message_id, owner, raw = _known(ledger)
    route = data.draw(st.sampled_from(ROUTES))
    fill = data.draw(st.sampled_from([message_id, owner, "1", "latest"]) | segments)
    method = data.draw(st.sampled_from([METHODS[route]] * 4 + ["GET", "POST", "DELETE"]))
    mutated = data.draw(_mutations(raw))
    if route == "/api/v1/messages/batch" and data.draw(st.booleans()):
        batch = data.draw(st.lists(_mutations(raw) | st.just(raw), min_size=1, max_size=4))
        mutated = data.draw(_mutations(encode_batch(batch)) | st.just(encode_batch(batch)))
    auth = {"authorization": f"Bearer {TOKEN}"}
    app = create_app(Node(ledger), ApiConfig(admin_token=TOKEN), peers=_peers(ledger))
    async with _client(app) as client:
        url = httpx.URL(scheme="http", host="node", path=route.format(fill))
        if use_json:
            text = json.dumps(json_body).encode()  # Python's JSON: NaN and Infinity too
            as_json = {**auth, "content-type": "application/json"}
            response = await client.request(method, url, content=text, headers=as_json)
        else:
            octets = {**auth, "content-type": "application/octet-stream"}
            response = await client.request(method, url, content=mutated, headers=octets)
        check(response)
        await _answer_info(client)


def _peers(ledger: LedgerNode) -> PeeringAdmin:
    """The real gossip layer's admin view (not started: nothing is dialed)."""
    return PeeringAdmin(Peering(Node(ledger)))


def _mutations(raw: bytes) -> st.SearchStrategy[bytes]:
    """A valid message with bytes flipped, cut off or appended."""
    flips = st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(1, 255)), max_size=4)

    def flipped(changes: list[tuple[int, int]]) -> bytes:
        out = bytearray(raw)
        for at, mask in changes:
            out[at] ^= mask
        return bytes(out)

    return st.one_of(
        flips.map(flipped),
        st.integers(0, len(raw)).map(lambda n: raw[:n]),
        st.binary(min_size=1, max_size=40).map(lambda tail: raw + tail),
    )


raw_headers = st.lists(
    st.tuples(
        st.sampled_from(["content-length", "content-type", "accept", "authorization", "x"]),
        st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
    ),
    max_size=4,
)


@FUZZ
@given(
    path=st.sampled_from(ROUTES).map(lambda r: r.format("%2F..%00")) | st.just("/api/v1/events"),
    query=st.binary(max_size=120).map(lambda b: b.decode("latin-1")),
    head=raw_headers,
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    body=st.lists(st.binary(max_size=200), max_size=3),
)
async def test_raw_asgi_requests_and_event_streams(
    ledger: LedgerNode,
    path: str,
    query: str,
    head: list[tuple[str, str]],
    method: str,
    body: list[bytes],
) -> None:
    """What a client library would never send: bad Content-Length, bytes in the query, odd
    paths, bodies in pieces; and the event stream, which is read up to its first chunk."""
    app = create_app(Node(ledger), ApiConfig(admin_token=TOKEN), peers=_peers(ledger))
    async with open_stream(app, path, query, head, method=method, body=body) as response:
        assert response.status // 100 in (2, 4)
        event(f"status {response.status}")
        try:
            first = await response.chunks.receive()
        except trio.EndOfChannel:
            first = b""  # 204
        if response.status >= 400:
            assert CODE.fullmatch(json.loads(first)["error"]["code"])
        elif path == "/api/v1/events" and method == "GET":
            assert first.startswith(b"retry: ")
    async with _client(app) as client:
        await _answer_info(client)
