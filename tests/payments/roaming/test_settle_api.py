"""The operator-to-operator HTTP API in process (httpx's ASGI transport, trio): a VPMN sends
signed batches and gets signed acknowledgements; a retry after a lost answer gets the same
acknowledgement; unsigned, replayed, stale and wrongly signed requests, forged batches and
oversized bodies are refused with their status; the OpenAPI document lists the routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from payments.roaming.acknowledgement import SignedAcknowledgement, verify_ack
from payments.roaming.api import BATCHES, MAX_BODY, post_batch, roaming_app
from payments.roaming.batch import Batch, encode_batch, seal
from payments.roaming.desk import CarrierDesk
from payments.roaming.errors import BatchError, RequestAuthError
from payments.roaming.request_auth import NONCE, RequestVerifier, sign_request
from payments.roaming.store import RoamingStore
from tests.payments.roaming.settle_support import (
    AGREEMENT,
    HOME,
    HOME_KEY,
    MALLORY_KEY,
    NOW,
    T0,
    VISITED,
    VISITED_KEY,
    rated,
    record,
    signed,
)

if TYPE_CHECKING:
    from pathlib import Path

OTHER_PARTNER = "ZZZZZ"
"""A third carrier with its own key, partner of the same HPMN."""


def batch(sequence: int, n: int = 3) -> Batch:
    records = tuple(rated(record(up=10 + i, start=T0 + 10 * sequence + i)) for i in range(n))
    return seal(AGREEMENT, VISITED_KEY, records, sequence=sequence, now=NOW)


def client(tmp_path: Path) -> tuple[httpx.AsyncClient, CarrierDesk]:
    store = RoamingStore(tmp_path / "hpmn.db")
    desk = CarrierDesk(store, signed(AGREEMENT), HOME_KEY, window_capacity=1000)
    verifier = RequestVerifier(
        {VISITED: VISITED_KEY.public_key, OTHER_PARTNER: MALLORY_KEY.public_key}
    )
    app = roaming_app(desk, verifier, clock=lambda: NOW)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hpmn"), desk


async def test_batches_in_acks_back_and_a_retry_gets_the_same_ack(tmp_path: Path) -> None:
    http, desk = client(tmp_path)
    async with http:
        first = await post_batch(http, VISITED_KEY, VISITED, batch(1), NOW)
        verify_ack(first, AGREEMENT)
        assert first.ack.accepted
        assert first.ack.accepted_count == 3
        again = await post_batch(http, VISITED_KEY, VISITED, batch(1), NOW)
        assert again == first
        path = f"/roaming/v1/acks/{VISITED}/{HOME}/1"
        headers = sign_request(VISITED_KEY, VISITED, "GET", path, b"", NOW)
        response = await http.get(path, headers=headers)
        assert SignedAcknowledgement.decode(response.content) == first
        headers = sign_request(VISITED_KEY, VISITED, "GET", path[:-1] + "9", b"", NOW)
        assert (await http.get(path[:-1] + "9", headers=headers)).status_code == 404
        # Another partner of this HPMN, properly signed, may not read this pair's acks.
        headers = sign_request(MALLORY_KEY, OTHER_PARTNER, "GET", path, b"", NOW)
        assert (await http.get(path, headers=headers)).status_code == 403
        gap = await post_batch(http, VISITED_KEY, VISITED, batch(3), NOW)
        assert not gap.ack.accepted
    assert desk.next_sequence == 2
    desk.store.close()


async def test_hostile_requests_get_their_status_and_change_nothing(tmp_path: Path) -> None:
    http, desk = client(tmp_path)
    b = batch(1)
    body = encode_batch(b)

    async def post(content: bytes, headers: dict[str, str]) -> httpx.Response:
        return await http.post(BATCHES, content=content, headers=headers)

    async with http:
        ok = sign_request(VISITED_KEY, VISITED, "POST", BATCHES, body, NOW)
        assert (await post(body, {})).status_code == 401
        assert (await post(body + b"x", ok)).status_code == 401  # the body is signed
        by_mallory = sign_request(MALLORY_KEY, VISITED, "POST", BATCHES, body, NOW)
        assert (await post(body, by_mallory)).status_code == 401
        stale = sign_request(VISITED_KEY, VISITED, "POST", BATCHES, body, NOW - 3_600)
        assert (await post(body, stale)).status_code == 401
        garbage = b"\x00" * 50
        r = await post(garbage, sign_request(VISITED_KEY, VISITED, "POST", BATCHES, garbage, NOW))
        assert r.status_code == 400
        assert r.json()["error"] == "MalformedBatchError"
        forged = bytearray(body)
        forged[-1] ^= 1  # a record's charge: the Merkle root no longer matches
        f = bytes(forged)
        r = await post(f, sign_request(VISITED_KEY, VISITED, "POST", BATCHES, f, NOW))
        assert r.status_code == 403
        huge = {"content-length": str(MAX_BODY + 1), **ok}
        assert (await post(body, huge)).status_code == 413
        assert desk.next_sequence == 1
        assert (await post(body, ok)).status_code == 200
        assert (await post(body, ok)).status_code == 401  # the same nonce again: replayed
        other = batch(1, n=2)
        with pytest.raises(BatchError, match="409"):
            await post_batch(http, VISITED_KEY, VISITED, other, NOW)
        doc = (await http.get("/roaming/v1/openapi.json")).json()
        assert set(doc["paths"]) == {
            BATCHES,
            "/roaming/v1/acks/{sender}/{recipient}/{sequence}",
            "/roaming/v1/openapi.json",
        }
    desk.store.close()


def test_the_verifier_bounds_nonces_per_operator() -> None:
    verifier = RequestVerifier({VISITED: VISITED_KEY.public_key}, window_s=10, max_nonces=2)
    for _ in range(2):
        h = sign_request(VISITED_KEY, VISITED, "POST", "/x", b"", NOW)
        assert verifier.verify("POST", "/x", h, b"", NOW) == VISITED
    h = sign_request(VISITED_KEY, VISITED, "POST", "/x", b"", NOW)
    with pytest.raises(RequestAuthError, match="too many"):
        verifier.verify("POST", "/x", h, b"", NOW)
    later = sign_request(VISITED_KEY, VISITED, "POST", "/x", b"", NOW + 11)
    assert verifier.verify("POST", "/x", later, b"", NOW + 11) == VISITED  # old nonces expired
    with pytest.raises(RequestAuthError, match="nonce"):
        verifier.verify("POST", "/x", dict(later, **{NONCE: "zz"}), b"", NOW + 11)
