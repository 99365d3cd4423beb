"""`benchmarks._roaming_anchors.Anchoring` on a devnet of its own: every payload queued is
submitted once (client-side work, the batch endpoint), kept in the carrier's `LedgerBook`, and
counted only once a milestone references it; a payload the book already holds is not submitted
again, and is confirmed all the same."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import pytest
import trio

from benchmarks._roaming_anchors import Anchoring
from payments.roaming.ledger_book import LedgerBook
from tangle.protocol.ids import MessageId
from tangle.protocol.payload import TaggedData
from tanglepay.devnet import launch, load_or_create
from wallet.client import NodeClient

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.slow
async def test_anchors_are_submitted_once_and_confirmed(tmp_path: Path) -> None:
    devnet = load_or_create(tmp_path / "devnet", nodes=1, interval_s=0.5)
    payloads = [TaggedData(tag=b"roaming-test", data=bytes([i]) * 40) for i in range(5)]
    with LedgerBook(tmp_path / "book.db") as book:
        async with httpx.AsyncClient(timeout=10.0) as control, trio.open_nursery() as nursery:
            api = (await launch(devnet.members, nursery, control))[-1].member.api
            with trio.fail_after(60):
                async with Anchoring(api, book) as first:
                    for payload in payloads[:3]:
                        await first.put(payload, "test", time.perf_counter())
                    await first.finish()
                kept = book.anchors()
                async with Anchoring(api, book) as second:
                    for payload in payloads[1:]:  # two of them anchored before
                        await second.put(payload, "test", time.perf_counter())
                    await second.finish()
            async with NodeClient(api) as node:
                for _, _, message_id in book.anchors():
                    metadata = await node.metadata(MessageId(message_id))
                    assert metadata.referenced_by is not None
            nursery.cancel_scope.cancel()
        assert (first.queued, first.confirmed) == (3, 3)
        assert (second.queued, second.confirmed) == (4, 4)  # held ones followed too
        assert all(0 < s < 60 for s in first.latencies + second.latencies)
        assert len(kept) == 3
        assert len(book.anchors()) == 5
        assert set(kept) <= set(book.anchors())  # the held ones keep their first messages
