"""The wallet client's event reader across broken streams: it resumes with `Last-Event-ID` and
gets what it missed, and turns a `reset` into `EventStreamError` (the caller re-reads state)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from tangle.http.api import ApiConfig
from tangle.ledger.events import TransactionEvent
from tests.builders import address, on_tips
from tests.tangle.http.test_api import BOB, lifespan, network, spend_genesis
from tests.wallet.test_client import StreamingASGITransport
from wallet import EventStreamError, MilestoneEvent, NodeClient, RetryPolicy

if TYPE_CHECKING:
    from pathlib import Path

QUICK = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.02)


async def test_a_wallet_reconnecting_lost_the_confirmation_sent_while_away(
    tmp_path: Path,
) -> None:
    async with network(tmp_path) as net, lifespan(net.app), anyio.create_task_group() as group:
        streaming = StreamingASGITransport(net.app, group)
        async with (
            NodeClient("http://node", transport=streaming, retry=QUICK) as client,
            client.events([address(BOB)]) as reader,
        ):
            await net.milestone()
            first = await anext(reader)
            assert isinstance(first, MilestoneEvent)
            assert (first.index, reader.last_event_id) == (1, "1")
            streaming.cut()  # the connection breaks; meanwhile Bob is paid
            tx = spend_genesis([(BOB, 1_000_000)])
            await net.client.post(
                "/api/v1/messages", json={"message": on_tips(net.ledger.core, tx, net.rng).hex()}
            )
            await net.milestone()
            await net.milestone()
            with anyio.fail_after(10):
                missed = [await anext(reader) for _ in range(3)]
            assert isinstance(missed[0], TransactionEvent)
            assert (missed[0].transaction_id, missed[0].milestone_index) == (tx.id, 2)
            assert [e.index for e in missed[1:] if isinstance(e, MilestoneEvent)] == [2, 3]
            assert reader.last_event_id == "3"
        group.cancel_scope.cancel()


async def test_a_reset_makes_the_wallet_re_read_the_state(tmp_path: Path) -> None:
    config = ApiConfig(event_history=1)
    async with (
        network(tmp_path, config) as net,
        lifespan(net.app),
        anyio.create_task_group() as group,
    ):
        streaming = StreamingASGITransport(net.app, group)
        async with (
            NodeClient("http://node", transport=streaming, retry=QUICK) as client,
            client.events() as reader,
        ):
            await net.milestone()
            assert isinstance(await anext(reader), MilestoneEvent)
            streaming.cut()
            for _ in range(3):  # more than the node's history holds
                await net.milestone()
            with anyio.fail_after(10), pytest.raises(EventStreamError, match="re-read the state"):
                await anext(reader)
        async with (
            NodeClient("http://node", transport=streaming, retry=QUICK) as client,
            client.events(last_event_id="4") as reader,  # resuming from a known place works
        ):
            await net.milestone()
            event = await anext(reader)
            assert isinstance(event, MilestoneEvent)
            assert (event.index, reader.last_event_id) == (5, "5")
        group.cancel_scope.cancel()
