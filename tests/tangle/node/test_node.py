"""The trio `Node`: group commit of concurrent submissions, each caller getting its own result."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

from tangle.errors import InsufficientWorkError, TangleError
from tangle.ledger.committee import KeySchedule
from tangle.node.core import Parameters
from tangle.node.ledger_node import LedgerNode
from tangle.node.node import Node
from tangle.protocol.message import decode_message, encode_message, prepare
from tangle.protocol.payload import TaggedData
from tangle.protocol.pow import work_value
from tangle.window.dag import GENESIS_ID
from tests.builders import NET, committee, genesis, key, message

if TYPE_CHECKING:
    from pathlib import Path

PARAMS = Parameters(network_id=NET, work_per_kib=64, min_output_amount=1)


async def test_concurrent_submissions_share_commits_and_keep_their_results(
    tmp_path: Path,
) -> None:
    _, key_set = committee(3, 2)
    ledger = LedgerNode.open(
        tmp_path / "node.db",
        genesis=genesis([(key(1), 1_000)]),
        params=PARAMS,
        schedule=KeySchedule(entries=((1, key_set),)),
    )
    node = Node(ledger)
    raws = [
        message(TaggedData(tag=b"g", data=bytes([i])), (GENESIS_ID,), work_per_kib=64)
        for i in range(40)
    ]
    unsent = prepare(NET, TaggedData(tag=b"g", data=b"bad"), 64)
    nonce = next(n for n in range(1000) if work_value(unsent.root, n) > unsent.target)
    raws[7] = encode_message(unsent.attach((GENESIS_ID,), nonce))
    results: dict[int, object] = {}

    async def one(i: int) -> None:
        try:
            results[i] = (await node.submit(raws[i])).id
        except TangleError as exc:
            results[i] = exc

    try:
        async with trio.open_nursery() as nursery:
            for i in range(len(raws)):
                nursery.start_soon(one, i)
        for i, raw in enumerate(raws):
            if i == 7:
                assert isinstance(results[i], InsufficientWorkError)
            else:
                assert results[i] == decode_message(raw).id
                assert ledger.storage.message(decode_message(raw).id) == raw
        assert node.counters.messages_accepted == 39
        with pytest.raises(TangleError):
            await node.submit(raws[0])  # a duplicate, alone in its group
    finally:
        ledger.close()
