"""The operator-to-operator HTTP API in process (httpx's ASGI transport, trio): a VPMN sends
signed batches and gets signed acknowledgements; a retry after a lost answer gets the same
acknowledgement; unsigned, replayed, stale and wrongly signed requests, forged batches and
oversized bodies are refused with their status; the OpenAPI document lists the routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import httpx
import pytest
import trio
import trio.testing

from payments.roaming.acknowledgement import SignedAcknowledgement, verify_ack
from payments.roaming.api import (
    BARS,
    BATCHES,
    MAX_BAR_BODY,
    MAX_BODY,
    post_bar,
    post_batch,
    roaming_app,
)
from payments.roaming.bars import Bar, BarList, sign_bar
from payments.roaming.batch import Batch, encode_batch, seal
from payments.roaming.desk import CarrierDesk
from payments.roaming.errors import (
    BarError,
    BarredUsageError,
    BatchError,
    MisaddressedRequestError,
    RequestAuthError,
)
from payments.roaming.request_auth import NONCE, RECIPIENT, RequestVerifier, sign_request
from payments.roaming.store import RoamingStore
from tests.payments.roaming.settle_support import (
    AGREEMENT,
    HASHER,
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


def client(
    tmp_path: Path, workers: anyio.CapacityLimiter | None = None
) -> tuple[httpx.AsyncClient, CarrierDesk]:
    store = RoamingStore(tmp_path / "hpmn.db")
    desk = CarrierDesk(store, signed(AGREEMENT), HOME_KEY, window_capacity=1000)
    verifier = RequestVerifier(
        {VISITED: VISITED_KEY.public_key, OTHER_PARTNER: MALLORY_KEY.public_key}, own=HOME
    )
    app = roaming_app(desk, verifier, clock=lambda: NOW, workers=workers)
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
        headers = sign_request(VISITED_KEY, VISITED, "GET", path, b"", NOW, recipient=HOME)
        response = await http.get(path, headers=headers)
        assert SignedAcknowledgement.decode(response.content) == first
        headers = sign_request(
            VISITED_KEY, VISITED, "GET", path[:-1] + "9", b"", NOW, recipient=HOME
        )
        assert (await http.get(path[:-1] + "9", headers=headers)).status_code == 404
        # Another partner of this HPMN, properly signed, may not read this pair's acks.
        headers = sign_request(MALLORY_KEY, OTHER_PARTNER, "GET", path, b"", NOW, recipient=HOME)
        assert (await http.get(path, headers=headers)).status_code == 403
        gap = await post_batch(http, VISITED_KEY, VISITED, batch(3), NOW)
        assert not gap.ack.accepted
    assert desk.next_sequence == 2
    desk.store.close()


async def test_the_desk_work_waits_for_a_worker_of_the_limiter_the_app_takes(
    tmp_path: Path,
) -> None:
    workers = anyio.CapacityLimiter(1)
    http, desk = client(tmp_path, workers)
    answers: list[SignedAcknowledgement] = []

    async def send() -> None:
        answers.append(await post_batch(http, VISITED_KEY, VISITED, batch(1), NOW))

    async with http, trio.open_nursery() as nursery:
        await workers.acquire()  # the only worker is busy: the batch waits for it
        nursery.start_soon(send)
        await trio.testing.wait_all_tasks_blocked()
        assert workers.statistics().tasks_waiting == 1
        assert desk.next_sequence == 1
        assert not answers
        workers.release()
    assert answers[0].ack.accepted
    assert desk.next_sequence == 2
    desk.store.close()


async def test_hostile_requests_get_their_status_and_change_nothing(tmp_path: Path) -> None:
    http, desk = client(tmp_path)
    b = batch(1)
    body = encode_batch(b)

    async def post(content: bytes, headers: dict[str, str]) -> httpx.Response:
        return await http.post(BATCHES, content=content, headers=headers)

    async with http:
        ok = sign_request(VISITED_KEY, VISITED, "POST", BATCHES, body, NOW, recipient=HOME)
        assert (await post(body, {})).status_code == 401
        assert (await post(body + b"x", ok)).status_code == 401  # the body is signed
        by_mallory = sign_request(MALLORY_KEY, VISITED, "POST", BATCHES, body, NOW, recipient=HOME)
        assert (await post(body, by_mallory)).status_code == 401
        stale = sign_request(
            VISITED_KEY, VISITED, "POST", BATCHES, body, NOW - 3_600, recipient=HOME
        )
        assert (await post(body, stale)).status_code == 401
        garbage = b"\x00" * 50
        r = await post(
            garbage,
            sign_request(VISITED_KEY, VISITED, "POST", BATCHES, garbage, NOW, recipient=HOME),
        )
        assert r.status_code == 400
        assert r.json()["error"] == "MalformedBatchError"
        forged = bytearray(body)
        forged[-1] ^= 1  # a record's charge: the Merkle root no longer matches
        f = bytes(forged)
        r = await post(
            f, sign_request(VISITED_KEY, VISITED, "POST", BATCHES, f, NOW, recipient=HOME)
        )
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
            BARS,
            "/roaming/v1/acks/{sender}/{recipient}/{sequence}",
            "/roaming/v1/openapi.json",
        }
    desk.store.close()


def test_the_verifier_bounds_nonces_per_operator() -> None:
    verifier = RequestVerifier(
        {VISITED: VISITED_KEY.public_key}, own=HOME, window_s=10, max_nonces=2
    )
    for _ in range(2):
        h = sign_request(VISITED_KEY, VISITED, "POST", "/x", b"", NOW, recipient=HOME)
        assert verifier.verify("POST", "/x", h, b"", NOW) == VISITED
    h = sign_request(VISITED_KEY, VISITED, "POST", "/x", b"", NOW, recipient=HOME)
    with pytest.raises(RequestAuthError, match="too many"):
        verifier.verify("POST", "/x", h, b"", NOW)
    later = sign_request(VISITED_KEY, VISITED, "POST", "/x", b"", NOW + 11, recipient=HOME)
    assert verifier.verify("POST", "/x", later, b"", NOW + 11) == VISITED  # old nonces expired
    with pytest.raises(RequestAuthError, match="nonce"):
        verifier.verify("POST", "/x", dict(later, **{NONCE: "zz"}), b"", NOW + 11)


def test_a_request_to_one_carrier_replayed_to_another_is_refused_by_name() -> None:
    """Partner A's request to B, replayed to C (who also knows A) within the window: C refuses
    it as addressed to B; rewriting the recipient breaks the signature."""
    to_b = sign_request(VISITED_KEY, VISITED, "POST", BATCHES, b"body", NOW, recipient=HOME)
    at_c = RequestVerifier({VISITED: VISITED_KEY.public_key}, own=OTHER_PARTNER)
    with pytest.raises(MisaddressedRequestError, match=f"to '{HOME}', not to {OTHER_PARTNER}"):
        at_c.verify("POST", BATCHES, to_b, b"body", NOW)
    rewritten = dict(to_b, **{RECIPIENT: OTHER_PARTNER})
    with pytest.raises(RequestAuthError, match="signature") as refused:
        at_c.verify("POST", BATCHES, rewritten, b"body", NOW)
    assert not isinstance(refused.value, MisaddressedRequestError)
    unaddressed = {k: v for k, v in to_b.items() if k != RECIPIENT}
    with pytest.raises(RequestAuthError, match="no recipient"):
        at_c.verify("POST", BATCHES, unaddressed, b"body", NOW)
    at_b = RequestVerifier({VISITED: VISITED_KEY.public_key}, own=HOME)
    assert at_b.verify("POST", BATCHES, to_b, b"body", NOW) == VISITED


async def test_a_misaddressed_batch_gets_421_and_changes_nothing(tmp_path: Path) -> None:
    http, desk = client(tmp_path)
    body = encode_batch(batch(1))
    async with http:
        h = sign_request(VISITED_KEY, VISITED, "POST", BATCHES, body, NOW, recipient="GBRCC")
        r = await http.post(BATCHES, content=body, headers=h)
        assert r.status_code == 421
        assert r.json()["error"] == "MisaddressedRequestError"
    assert desk.next_sequence == 1
    desk.store.close()


async def test_the_hpmn_bar_reaches_the_vpmn_and_later_usage_is_refused(tmp_path: Path) -> None:
    """HOME bars one of its subscribers at VISITED over the operator API; VISITED's desk then
    refuses that subscriber's usage from the bar on (also after a restart), not before it and
    not other subscribers'; a bar sent by the wrong carrier or signed by the wrong key is
    refused."""
    store = RoamingStore(tmp_path / "vpmn.db")
    vpmn = CarrierDesk(store, signed(AGREEMENT), VISITED_KEY, window_capacity=100)
    verifier = RequestVerifier({HOME: HOME_KEY.public_key}, own=VISITED)
    app = roaming_app(vpmn, verifier, clock=lambda: NOW)
    imsi = HASHER.imsi("262010000000001")
    bar = Bar(agreement=AGREEMENT.hash, hpmn=HOME, imsi_hash=imsi, since=T0 + 50)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://vpmn") as http:
        assert await post_bar(http, HOME_KEY, HOME, VISITED, sign_bar(bar, HOME_KEY), NOW)
        assert not await post_bar(http, HOME_KEY, HOME, VISITED, sign_bar(bar, HOME_KEY), NOW)
        theirs = Bar(agreement=AGREEMENT.hash, hpmn=VISITED, imsi_hash=imsi, since=T0)
        with pytest.raises(BarError, match="403"):  # HOME cannot send VISITED's bar
            await post_bar(http, HOME_KEY, HOME, VISITED, sign_bar(theirs, VISITED_KEY), NOW)
        with pytest.raises(BarError, match="401"):  # nor VISITED sign in HOME's name
            await post_bar(http, VISITED_KEY, HOME, VISITED, sign_bar(bar, HOME_KEY), NOW)
        forged = sign_bar(Bar(agreement=AGREEMENT.hash, hpmn=HOME, imsi_hash=bytes(range(32)),
                              since=T0), MALLORY_KEY)  # fmt: skip
        with pytest.raises(BarError, match="400"):
            await post_bar(http, HOME_KEY, HOME, VISITED, forged, NOW)
        with pytest.raises(BarError, match="421"):
            await post_bar(http, HOME_KEY, HOME, OTHER_PARTNER, sign_bar(bar, HOME_KEY), NOW)
        for body, status in ((b"\x01" * 5, 400), (b"\x01" * (MAX_BAR_BODY + 1), 413)):
            h = sign_request(HOME_KEY, HOME, "POST", BARS, body, NOW, recipient=VISITED)
            r = await http.post(BARS, content=body, headers=h)
            assert r.status_code == status
    store.close()
    before, after = record(up=10, start=T0 + 49), record(up=10, start=T0 + 50)
    other = record(up=10, start=T0 + 60, imsi="262010000000002")
    assert before.imsi_hash == after.imsi_hash == imsi
    with RoamingStore(tmp_path / "vpmn.db") as store:
        gate = BarList.restored(AGREEMENT, store.bars(), HOME)
        kept, refused = gate.admit(enumerate([before, after, other]))
        assert kept == [(0, before), (2, other)]
        assert [(i, type(e)) for i, e in refused] == [(1, BarredUsageError)]
        assert (refused[0][1].imsi_hash, refused[0][1].since) == (imsi, T0 + 50)
        assert [b.bar.since for b in store.bars()] == [T0 + 50]
