"""The explorer's side of the API against a real node and coordinator: the dashboard's files,
the live `messages` events, and the views its pages read (timing, cones, channels, address
history, refusals, peers). Their JSON against the OpenAPI document is checked by
`test_api_schema.py`, which covers every documented route."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import trio

from coordinator.signers import KeySigner
from tangle.http import _event_stream as event_stream_module
from tangle.http._events import EventHub
from tangle.http.explorer import Timeline
from tangle.http.explorer import _timeline as timeline_module
from tangle.http.explorer._live import arrival_event
from tangle.http.explorer._views import static_files
from tangle.node.node import Arrival
from tangle.protocol.bech32 import DEVNET, encode_address
from tangle.protocol.channel import channel_id_of
from tangle.protocol.ids import PublicKey
from tangle.protocol.message import decode_message
from tangle.protocol.payload import TaggedData
from tangle.storage.storage import Storage
from tests.builders import address, on_tips
from tests.tangle.http.test_api import (
    ALICE,
    BOB,
    GENESIS,
    error_code,
    lifespan,
    network,
    open_stream,
)
from wallet import channel_tx

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from tangle.protocol.ids import Address, OutputId
    from tangle.protocol.transaction import Output
    from tests.tangle.http.test_api import Stream


async def test_the_dashboard_and_its_files_are_served_read_only(tmp_path: Path) -> None:
    async with network(tmp_path) as net:
        page = await net.client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert '<script type="module" src="/explorer/app.js">' in page.text
        script = await net.client.get("/explorer/pages/live.js")
        assert script.headers["content-type"].startswith("text/javascript")
        assert "export async function render" in script.text
        for missing in ("/explorer/nope.js", "/explorer/../api.py", "/explorer/"):
            response = await net.client.get(missing)
            assert (response.status_code, error_code(response)) == (404, "not_found"), missing
        response = await net.client.post("/")
        assert response.status_code == 405


def test_the_dashboard_loads_nothing_from_elsewhere() -> None:
    """Every file is served by the node; none names another origin (no CDN, no fonts)."""
    files = static_files()
    assert {"index.html", "app.js", "style.css", "pages/live.js"} <= set(files)
    for name, (body, _) in files.items():
        text = body.decode().replace('xmlns="http://www.w3.org/2000/svg"', "")  # a name only
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), name
        for imported in re.findall(r"""(?:import|from)\s*\(?\s*["'`]([^"'`]+)""", text):
            assert imported.startswith("."), (name, imported)


async def _until(stream: Stream, name: str) -> list[tuple[str, dict[str, Any]]]:
    """Events up to and including the next `name` event."""
    seen = []
    with trio.fail_after(10):
        while True:
            seen.append(await stream.event())
            if seen[-1][0] == name:
                return seen


async def test_a_live_stream_and_the_views_follow_a_channel_from_arrival_to_milestone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with network(tmp_path) as net, lifespan(net.app):
        (coin,) = GENESIS.outputs()
        opening = channel_tx.open_channel(
            network_id=net.ledger.core.params.network_id,
            funding=[(coin, KeySigner(bytes(ALICE)))],
            payer=PublicKey(bytes(ALICE.verify_key)),
            payee=PublicKey(bytes(BOB.verify_key)),
            deposit=1_000,
            challenge_period=5,
            expiry=1_000,
            change=(address(ALICE), 999_000),
        )
        raw = on_tips(net.ledger.core, opening, net.rng)
        message_id = decode_message(raw).id.hex()
        async with open_stream(net.app, "/api/v1/events", "live=true") as stream:
            assert (
                await net.client.post("/api/v1/messages", json={"message": raw.hex()})
            ).status_code == 201
            [(_, arrived)] = await _until(stream, "messages")
            assert arrived["messages"][0] | {"parents": []} == {
                "id": message_id,
                "parents": [],
                "kind": "transaction",
                "index": None,
            }
            assert message_id in arrived["solid"]
            again = await net.client.post("/api/v1/messages", json={"message": raw.hex()})
            assert error_code(again) == "duplicate_message"
            [(_, refused)] = await _until(stream, "messages")
            assert (refused["messages"], refused["refused"]) == ([], ["duplicate_message"])
            index = await net.milestone()
            events = await _until(stream, "milestone")
        names = [name for name, _ in events]
        assert names[-2:] == ["transaction", "milestone"]
        milestone = events[-1][1]
        assert milestone["index"] == index == 1
        assert milestone["applied_at_ms"] >= arrived["at_ms"]

        timing = (await net.client.get(f"/api/v1/explorer/messages/{message_id}/timing")).json()
        assert timing["milestone_index"] == index
        assert timing["arrived_at_ms"] == arrived["at_ms"]
        assert timing["confirmation_ms"] == timing["confirmed_at_ms"] - timing["arrived_at_ms"]
        unknown = (await net.client.get(f"/api/v1/explorer/messages/{'00' * 32}/timing")).json()
        assert unknown["arrived_at_ms"] is unknown["confirmation_ms"] is None

        recent = (await net.client.get("/api/v1/explorer/recent")).json()["messages"]
        [ours] = [m for m in recent if m["id"] == message_id]
        assert (ours["state"], ours["referenced_by"], ours["kind"]) == (
            "included",
            index,
            "transaction",
        )
        [carrier] = [m for m in recent if m["kind"] == "milestone"]
        assert (carrier["index"], carrier["id"]) == (index, milestone["message_id"])

        listed = (await net.client.get("/api/v1/explorer/milestones")).json()
        [row] = listed["milestones"]
        assert row["cone"]["included"] == 1
        assert row["cone"]["applied_at_ms"] == milestone["applied_at_ms"]
        assert (await net.client.get("/api/v1/explorer/milestones?before=1")).json()[
            "milestones"
        ] == []
        bad = await net.client.get("/api/v1/explorer/milestones?count=101")
        assert error_code(bad) == "invalid_parameter"

        [channel] = (await net.client.get("/api/v1/explorer/channels")).json()["channels"]
        assert channel["channel_id"] == channel_id_of(coin, 0).hex()
        assert (channel["last_op"], channel["output"]["amount"]) == ("open", "1000")

        history = await net.client.get(f"/api/v1/explorer/addresses/{address(ALICE).hex()}/history")
        [touched] = history.json()["transactions"]
        assert (touched["message_id"], touched["inclusion"]) == (message_id, "included")
        bob = await net.client.get(f"/api/v1/explorer/addresses/{address(BOB).hex()}/history")
        assert bob.json()["transactions"] == []

        [refusal] = (await net.client.get("/api/v1/explorer/refusals")).json()["refusals"]
        assert (refusal["code"], refusal["message_id"]) == ("duplicate_message", message_id)
        why = await net.client.get(f"/api/v1/explorer/refusals/{message_id}")
        assert why.json() == refusal
        for query, kind, found in [
            (message_id, "message", message_id),
            (f"#{index}", "milestone", str(index)),
            ("99", "none", None),
            (channel["channel_id"], "channel", channel["channel_id"]),
            (address(BOB).hex(), "address", encode_address(address(BOB), DEVNET)),
            (encode_address(address(BOB), DEVNET), "address", encode_address(address(BOB), DEVNET)),
            ("tpdev1nonsense", "none", None),
            ("x" * 101, "none", None),
        ]:
            said = (await net.client.get("/api/v1/explorer/search", params={"q": query})).json()
            assert (said["kind"], said["id"]) == (kind, found), query
        never = await net.client.get(f"/api/v1/explorer/refusals/{'00' * 32}")
        assert (never.status_code, error_code(never)) == (404, "unknown_message")
        peers = (await net.client.get("/api/v1/explorer/peers")).json()
        assert peers == {"confirmed_milestone_index": index, "peers": None}
        wrong = await net.client.get("/api/v1/events?live=maybe")
        assert error_code(wrong) == "invalid_parameter"

        # The channel view is read from storage once a milestone, not once a request.
        scans: list[Address] = []
        outputs_of = Storage.outputs_of

        def counted(storage: Storage, owner: Address) -> list[tuple[OutputId, Output]]:
            scans.append(owner)
            return outputs_of(storage, owner)

        monkeypatch.setattr(Storage, "outputs_of", counted)
        again = (await net.client.get("/api/v1/explorer/channels")).json()["channels"]
        assert (again, scans) == ([channel], [])
        await net.milestone()
        again = (await net.client.get("/api/v1/explorer/channels")).json()["channels"]
        assert (again, len(scans)) == ([channel], 1)


async def test_the_timeline_forgets_the_oldest_messages_first(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(timeline_module, "MESSAGES_KEPT", 2)
    hub = EventHub(DEVNET, capacity=4, max_streams=1, max_per_client=1)
    timeline = Timeline(lambda: 1_000.0, hub)
    async with network(tmp_path) as net:
        parsed = [
            decode_message(on_tips(net.ledger.core, TaggedData(tag=b"t", data=bytes([i])), net.rng))
            for i in range(3)
        ]
    for i, message in enumerate(parsed):
        at = trio.current_time() - i
        timeline.arrived(Arrival(accepted=(message,), solid=(), rejected=(), at=at))
    kept = [timeline.arrived_ms(m.id) for m in parsed]
    assert kept[0] is None
    assert kept[1] is not None
    assert kept[2] is not None
    assert kept[1] > kept[2]  # the clock passed in, less how long ago each arrived


async def test_a_live_client_that_reads_too_slowly_is_dropped(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(event_stream_module, "LIVE_BUFFER", 2)
    async with network(tmp_path) as net, lifespan(net.app):
        async with open_stream(net.app, "/api/v1/events", "live=true") as stream:
            for i in range(6):  # one batch each; the stream's first send blocks: nothing read
                raw = on_tips(net.ledger.core, TaggedData(tag=b"t", data=bytes([i])), net.rng)
                response = await net.client.post("/api/v1/messages", json={"message": raw.hex()})
                assert response.status_code == 201
            names = [name for name, _ in await _until(stream, "dropped")]
        assert names.count("messages") <= 3
        assert names[-1] == "dropped"
        assert net.node.counters.subscribers_dropped == 1


async def test_a_batch_is_encoded_once_for_every_live_stream() -> None:
    hub = EventHub(DEVNET, capacity=4, max_streams=1, max_per_client=1)
    timeline = Timeline(lambda: 1_000.0, hub)
    first = Arrival(accepted=(), solid=(), rejected=(), at=trio.current_time())
    second = Arrival(accepted=(), solid=(), rejected=(), at=trio.current_time())
    calls: list[Arrival] = []

    def encode(arrival: Arrival) -> bytes:
        calls.append(arrival)
        return f"chunk {len(calls)}".encode()

    sent = [timeline.encoded(a, encode) for a in (first, first, second, first, second)]
    assert calls == [first, second]
    assert sent == [b"chunk 1", b"chunk 1", b"chunk 2", b"chunk 1", b"chunk 2"]
    assert arrival_event(first, timeline) == arrival_event(first, timeline)
