"""The event stream across reconnects (`Last-Event-ID`, the bounded history, `reset`) and its
per-client limit, against a real node and coordinator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from tangle.http.api import ApiConfig
from tangle.protocol.message import decode_message
from tests.builders import address, on_tips, transfer
from tests.tangle.http.test_api import (
    ALICE,
    BOB,
    GENESIS,
    TOKEN,
    error_code,
    lifespan,
    network,
    open_stream,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tangle.protocol.ids import OutputId
    from tests.tangle.http.test_api import Net, Stream


async def _pay(net: Net, paid: list[OutputId]) -> str:
    """Pass the whole supply on (Alice to Bob, then back) from the last output `paid`
    (genesis first); the message id."""
    (oid,) = paid[-1:] or GENESIS.outputs()
    owner, to = (ALICE, BOB) if len(paid) % 2 == 0 else (BOB, ALICE)
    tx = transfer([(oid, owner)], [(address(to), 1_000_000)])
    paid.append(tx.output_id(0))
    raw = on_tips(net.ledger.core, tx, net.rng)
    response = await net.client.post("/api/v1/messages", json={"message": raw.hex()})
    assert response.status_code == 201
    return decode_message(raw).id.hex()


async def _events_until_milestone(stream: Stream) -> list[tuple[str, str | None, dict[str, Any]]]:
    """Events up to and including the next milestone (or reset) event: (name, id, data)."""
    out = []
    with trio.fail_after(10):
        while True:
            name, data = await stream.event()
            out.append((name, stream.last_id, data))
            if name in ("milestone", "reset"):
                return out


async def test_a_reconnect_lost_the_confirmations_sent_while_away(tmp_path: Path) -> None:
    async with network(tmp_path) as net, lifespan(net.app):
        paid: list[OutputId] = []
        first = await _pay(net, paid)
        async with open_stream(net.app, "/api/v1/events") as stream:
            await net.milestone()
            events = await _events_until_milestone(stream)
        assert [(n, i) for n, i, _ in events] == [("transaction", "1.0"), ("milestone", "1")]
        assert events[0][2]["message_id"] == first
        missed = [await _pay(net, paid)]
        await net.milestone()
        missed.append(await _pay(net, paid))
        await net.milestone()
        resumed = [("last-event-id", "1")]
        async with open_stream(net.app, "/api/v1/events", headers=resumed) as stream:
            events = await _events_until_milestone(stream)
            events += await _events_until_milestone(stream)
            assert [(n, i) for n, i, _ in events] == [
                ("transaction", "2.0"),
                ("milestone", "2"),
                ("transaction", "3.0"),
                ("milestone", "3"),
            ]
            assert [events[0][2]["message_id"], events[2][2]["message_id"]] == missed
            await net.milestone()  # then the live events, none twice
            assert [(n, i) for n, i, _ in await _events_until_milestone(stream)] == [
                ("milestone", "4")
            ]
        # Cut off between a transaction event and its milestone: the rest of that milestone.
        async with open_stream(net.app, "/api/v1/events", headers=[("last-event-id", "3.0")]) as s:
            assert [(n, i) for n, i, _ in await _events_until_milestone(s)] == [("milestone", "3")]
            assert [(n, i) for n, i, _ in await _events_until_milestone(s)] == [("milestone", "4")]


async def test_a_client_away_longer_than_the_history_gets_a_reset(tmp_path: Path) -> None:
    config = ApiConfig(admin_token=TOKEN, event_history=2)
    async with network(tmp_path, config) as net, lifespan(net.app):
        for _ in range(5):
            await net.milestone()
        for last in ("1", "2.0", "9", "garbage", "1" * 40):
            async with open_stream(
                net.app, "/api/v1/events", headers=[("last-event-id", last)]
            ) as stream:
                ((name, event_id, data),) = await _events_until_milestone(stream)
                assert (name, event_id, data["confirmed_milestone_index"]) == ("reset", "5", 5)
        async with open_stream(net.app, "/api/v1/events", headers=[("last-event-id", "3")]) as s:
            assert [(n, i) for n, i, _ in await _events_until_milestone(s)] == [("milestone", "4")]
    (tmp_path / "restarted").mkdir()
    async with network(tmp_path / "restarted") as net:  # no history after a restart
        await net.milestone()
        async with open_stream(net.app, "/api/v1/events", headers=[("last-event-id", "0")]) as s:
            assert (await _events_until_milestone(s))[0][0] == "reset"


async def test_one_client_held_every_event_stream(tmp_path: Path) -> None:
    config = ApiConfig(max_event_streams=3, max_event_streams_per_client=2)
    async with (
        network(tmp_path, config) as net,
        open_stream(net.app, "/api/v1/events") as one,
        open_stream(net.app, "/api/v1/events") as two,
    ):
        assert (one.status, two.status) == (200, 200)
        async with open_stream(net.app, "/api/v1/events") as third:
            assert third.status == 429
            body = await third.chunks.receive()
            assert b"too_many_streams" in body
            assert third.headers["retry-after"] == "5"
        async with open_stream(net.app, "/api/v1/events", client="127.0.0.2") as other:
            assert other.status == 200
            response = await net.client.get("/api/v1/events")  # the total cap still holds
            assert (response.status_code, error_code(response)) == (429, "too_many_streams")
