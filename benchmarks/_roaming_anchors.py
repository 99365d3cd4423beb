"""The ledger side of the roaming benchmark: each carrier process anchors what it signs (the VPMN
its batch headers, the HPMN its acknowledgements) on a devnet node while it settles.

`Anchoring` is one process's pipeline. `put` queues a payload with the time it was signed; the
queue holds at most `QUEUE` (a full queue holds up the payment path: nothing is dropped).
`SUBMITTERS` tasks each take what is queued, up to `BATCH_MAX` payloads gathered for at most
`LINGER_S` after the first (each submission costs two requests to the node, some 2 ms of CPU
each on a loaded 2-core machine: one batch every `LINGER_S` instead of one per anchor), leave
out those the carrier's `LedgerBook` already holds (whose messages are followed like the new
ones), do their proof-of-work here (as a carrier's own server would: the node's `/messages/pow`
does one search per client at a time, under a rate limit), attach them to the node's tips and
submit them in one request (`POST /api/v1/messages/batch`); the book keeps each message id
(fsync'd). A follower reads the node's event stream and, at each milestone, asks the node for
the metadata of every anchor submitted and not yet confirmed (`CHECKS` at a time): one a
milestone referenced is confirmed then, and its latency runs from its signing to that moment
(`time.perf_counter`, the process's own clock). `finish` closes the queue and returns once every
anchor queued is confirmed.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Final

import httpx
import trio

from payments.roaming.errors import AnchorError
from tangle import work
from tangle.http._batch import MAX_BATCH, encode_batch
from tangle.protocol.ids import MessageId, blake2b_256
from tangle.protocol.message import encode_message, prepare
from tangle.protocol.payload import TaggedData
from wallet import MilestoneEvent
from wallet.client import NodeClient

if TYPE_CHECKING:
    from payments.roaming.ledger_book import LedgerBook
    from tangle.protocol.message import Unsent
    from wallet.event_reader import EventReader

QUEUE: Final = 64
"""Anchors waiting to be submitted, per process."""
SUBMITTERS: Final = 1
"""Submissions in flight at once, per process."""
LINGER_S: Final = 0.45
"""How long a submitter gathers anchors after the first it takes (under the milestone
interval: the anchors still make the next milestone or the one after)."""
BATCH_MAX: Final = min(MAX_BATCH, 32)
"""Anchors a submitter sends in one request."""
OCTETS: Final = {"content-type": "application/octet-stream"}
CHECKS: Final = 8
"""Metadata requests at once, per process."""
CONFIRM_TIMEOUT_S: Final = 120.0
"""How long `finish` waits for the last anchors to be confirmed."""


_Receive = trio.MemoryReceiveChannel[tuple[TaggedData, str, float]]


class Anchoring:
    """One process's anchors (see the module docstring). Use as an async context manager
    around the run: it opens the node client and the event stream, and starts the tasks."""

    def __init__(self, api: str, book: LedgerBook) -> None:
        self._api = api
        self._book = book
        self._send, self._receive = trio.open_memory_channel[tuple[TaggedData, str, float]](QUEUE)
        self._unconfirmed: dict[MessageId, float] = {}
        self._all_confirmed = trio.Event()
        self._closed = False
        self.queued = 0
        self.latencies: list[float] = []
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Anchoring:
        node = await self._stack.enter_async_context(NodeClient(self._api))
        http = await self._stack.enter_async_context(httpx.AsyncClient(base_url=self._api))
        self._info = await node.info()
        await trio.to_thread.run_sync(self._warm)
        events = await self._stack.enter_async_context(node.events())
        nursery = await self._stack.enter_async_context(trio.open_nursery())
        self._stack.callback(nursery.cancel_scope.cancel)
        for _ in range(SUBMITTERS):
            nursery.start_soon(self._submit, node, http, self._receive.clone())
        self._receive.close()
        nursery.start_soon(self._follow, node, events)
        return self

    def _warm(self) -> None:
        """Search one nonce now: the solver's compiled kernel is loaded before the first
        anchor (some 0.2 s of CPU), not on the payment path."""
        unsent = prepare(self._info.network_id, TaggedData(tag=b"warm", data=b""), 1)
        work.search(unsent.root, unsent.target, threads=1)

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def put(self, payload: TaggedData, kind: str, signed_at: float) -> None:
        """Queue `payload` (signed at `signed_at`, `time.perf_counter`); waits while full."""
        self.queued += 1
        await self._send.send((payload, kind, signed_at))

    async def finish(self) -> None:
        """Close the queue; return once every anchor queued is confirmed."""
        self._closed = True
        await self._send.aclose()
        self._check_done()
        with trio.fail_after(CONFIRM_TIMEOUT_S):
            await self._all_confirmed.wait()

    @property
    def confirmed(self) -> int:
        return len(self.latencies)

    def _check_done(self) -> None:
        if self._closed and self.confirmed == self.queued:
            self._all_confirmed.set()

    async def _submit(self, node: NodeClient, http: httpx.AsyncClient, receive: _Receive) -> None:
        async with receive:
            async for first in receive:
                taken = [first]
                with trio.move_on_after(LINGER_S):
                    while len(taken) < BATCH_MAX:
                        try:
                            taken.append(await receive.receive())
                        except trio.EndOfChannel:
                            break
                await self._anchor(node, http, taken)

    async def _anchor(
        self, node: NodeClient, http: httpx.AsyncClient, taken: list[tuple[TaggedData, str, float]]
    ) -> None:
        """Anchor `taken` in one batch request: the anchors the book does not hold, their
        proof-of-work done here, approving the node's tips; the book keeps each message id."""
        book, info = self._book, self._info
        held = await trio.to_thread.run_sync(lambda: [book.anchored(t[0]) for t in taken])
        fresh = [t for t, message_id in zip(taken, held, strict=True) if message_id is None]
        for (_, _, signed_at), message_id in zip(taken, held, strict=True):
            if message_id is not None:  # anchored before: confirmed like the others
                self._unconfirmed[MessageId(message_id)] = signed_at
        if not fresh:
            return

        def worked() -> list[tuple[Unsent, int]]:
            unsent = [prepare(info.network_id, p, info.work_per_kib) for p, _, _ in fresh]
            return [(u, work.search(u.root, u.target, threads=1)) for u in unsent]

        done = await trio.to_thread.run_sync(worked)
        parents = await node.tips()
        raws = [encode_message(u.attach(parents, nonce)) for u, nonce in done]
        response = await http.post(
            "/api/v1/messages/batch", content=encode_batch(raws), headers=OCTETS
        )
        if response.status_code != 200:
            raise AnchorError(f"the node refused a batch of anchors: {response.text[:200]}")
        results = response.json()["results"]
        kept = []
        for (payload, kind, signed_at), raw, result in zip(fresh, raws, results, strict=True):
            if "error" in result:
                raise AnchorError(f"the node refused the {kind} anchor: {result['error']}")
            kept.append((payload, kind, MessageId(blake2b_256(raw)), signed_at))

        def save() -> None:
            for payload, kind, message_id, _ in kept:
                book.save_anchor(payload, kind, bytes(message_id))

        await trio.to_thread.run_sync(save)
        for _, _, message_id, signed_at in kept:
            self._unconfirmed[message_id] = signed_at

    async def _follow(self, node: NodeClient, events: EventReader) -> None:
        async for event in events:
            if isinstance(event, MilestoneEvent) and self._unconfirmed:
                await self._check(node)

    async def _check(self, node: NodeClient) -> None:
        limiter = trio.CapacityLimiter(CHECKS)

        async def one(message_id: MessageId) -> None:
            async with limiter:
                metadata = await node.metadata(message_id)
            if metadata.referenced_by is not None:
                signed_at = self._unconfirmed.pop(message_id)
                self.latencies.append(time.perf_counter() - signed_at)

        async with trio.open_nursery() as nursery:
            for message_id in list(self._unconfirmed):
                nursery.start_soon(one, message_id)
        self._check_done()
