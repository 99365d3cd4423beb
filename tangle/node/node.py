"""The node on trio: the `LedgerNode` behind one writer thread, and the fan-out of its events.

Every change to the node's state (`NodeCore` and its sqlite writes) runs in one worker thread,
one call at a time, through `trio.to_thread` with a capacity-1 limiter, so the event loop never
blocks on sqlite or signature checks and the core is never touched by two threads at once.
Reads that only need committed data (`read_storage`) use storage's read connection in other
worker threads. Confirmed milestones are published to subscribers (the HTTP event stream, the
traffic reporter) as `Notice`s on bounded memory channels: a subscriber that falls behind is
dropped, never allowed to slow the node down. Each batch of accepted (or refused) messages is
published the same way, as an `Arrival`, to those that watch arrivals (the explorer).

This module holds what a node does locally; `peering.py` connects it to its peers and `api.py`
serves it over HTTP.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

import trio

from tangle.errors import EquivocationError
from tangle.protocol.ids import MessageId, blake2b_256

from .core import Accepted, Confirmed, Expired, Requested

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterator, Sequence

    from tangle.errors import TangleError
    from tangle.protocol.message import Parsed
    from tangle.storage.storage import Storage

    from .core import NodeCore
    from .ledger_node import LedgerNode, Submitted

T = TypeVar("T")
E = TypeVar("E")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    """A milestone made durable, as subscribers see it."""

    confirmed: Confirmed
    """The milestone, its white-flag result and ledger state hash."""
    applied_at: float
    """`trio.current_time()` when the node stored it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrival:
    """One batch of messages the node accepted, as watchers (the explorer) see it."""

    accepted: tuple[Parsed, ...]
    """New valid messages, in order."""
    solid: tuple[MessageId, ...]
    """Messages that became solid through them."""
    rejected: tuple[tuple[MessageId, TangleError], ...]
    """The batch's refused messages: the id their bytes would have (BLAKE2b-256), and why."""
    at: float
    """`trio.current_time()` when the node stored them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What one batch did, for the gossip layer."""

    accepted: tuple[Parsed, ...]
    """New valid messages, in order."""
    solid: tuple[MessageId, ...]
    """Messages that became solid, in order (accepted ones, and pending ones they completed):
    to relay. A pending message is relayed only once it is solid."""
    requested: tuple[MessageId, ...]
    """Missing parents: to ask peers for."""
    confirmed: tuple[Confirmed, ...]
    """Milestones applied."""
    expired: tuple[MessageId, ...]
    """Messages the node dropped from memory unconfirmed (they may be received again)."""
    rejected: tuple[tuple[int, TangleError], ...]
    """(position in the batch, error) of refused messages."""

    def results(self, count: int) -> list[Parsed | TangleError]:
        """What became of each of the batch's `count` messages, in order: the accepted message
        or the refusal."""
        refused = dict(self.rejected)
        accepted = iter(self.accepted)
        return [refused[i] if i in refused else next(accepted) for i in range(count)]


GROUP_MAX: Final = 256
"""Most messages submitted in one group."""


_NOT_SUBMITTED: Final = RuntimeError("the group did not submit this message")


class _Waiting:
    """One caller of `Node.submit` in a group."""

    __slots__ = ("done", "outcome", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.done = trio.Event()
        self.outcome: Parsed | Exception = _NOT_SUBMITTED
        """The accepted message or the error, set before `done`."""


@dataclass(slots=True)
class Counters:
    """Monotonic counters for metrics."""

    messages_accepted: int = 0
    messages_rejected: int = 0
    milestones_applied: int = 0
    transactions_included: int = 0
    transactions_conflicting: int = 0
    subscribers_dropped: int = 0
    messages_expired: int = 0
    equivocations: int = 0


class Node:
    """One node's state on trio."""

    __slots__ = (
        "_counters",
        "_group",
        "_ledger",
        "_submitting",
        "_subscribers",
        "_watchers",
        "_writer",
    )

    def __init__(self, ledger: LedgerNode) -> None:
        self._ledger = ledger
        self._writer = trio.CapacityLimiter(1)
        self._subscribers: set[trio.MemorySendChannel[Notice]] = set()
        self._watchers: set[trio.MemorySendChannel[Arrival]] = set()
        self._counters = Counters()
        self._group: list[_Waiting] = []
        self._submitting = trio.Lock()

    @property
    def counters(self) -> Counters:
        return self._counters

    @property
    def network_id(self) -> int:
        return self._ledger.core.params.network_id

    async def submit_many(
        self, raws: Sequence[bytes], sources: Sequence[Hashable | None] | None = None
    ) -> Outcome:
        """Check, attach and persist `raws` in order (one group commit); refusals are reported,
        not raised. `sources[i]` is who sent `raws[i]` (pending messages count against it)."""
        submitted: Submitted = await trio.to_thread.run_sync(
            self._ledger.submit_many, raws, sources, limiter=self._writer
        )
        return self._outcome(submitted, raws)

    async def submit(self, raw: bytes) -> Parsed:
        """Check, attach and persist one message; raises its `TangleError` if refused.

        Concurrent callers are grouped (group commit): callers that arrive while a submission is
        in the writer thread queue up, and the next one to get the (fair) lock submits all that
        are queued in one `submit_many` (one thread hop, one sqlite transaction); each caller
        gets its own result, and a caller whose message went with an earlier group just returns
        it. Submissions are shielded, so a cancelled caller never strands the others.
        """
        waiting = _Waiting(raw)
        self._group.append(waiting)
        async with self._submitting:
            with trio.CancelScope(shield=True):
                while not waiting.done.is_set():
                    batch, self._group = self._group[:GROUP_MAX], self._group[GROUP_MAX:]
                    await self._submit_group(batch)
        if isinstance(waiting.outcome, BaseException):
            raise waiting.outcome
        return waiting.outcome

    async def _submit_group(self, batch: list[_Waiting]) -> None:
        try:
            outcome = await self.submit_many([w.raw for w in batch])
        except Exception as exc:  # a storage failure: every caller of the group hears it
            for w in batch:
                w.outcome = exc
                w.done.set()
            return
        for w, result in zip(batch, outcome.results(len(batch)), strict=True):
            w.outcome = result
            w.done.set()

    async def read_core(self, read: Callable[[NodeCore], T]) -> T:
        """Run `read` on the core in the writer thread (the only thread that touches it)."""
        return await trio.to_thread.run_sync(read, self._ledger.core, limiter=self._writer)

    async def write(self, change: Callable[[LedgerNode], T]) -> T:
        """Run `change` on the ledger node in the writer thread (pruning, administration)."""
        return await trio.to_thread.run_sync(change, self._ledger, limiter=self._writer)

    async def read_storage(self, read: Callable[[Storage], T]) -> T:
        """Run `read` against committed data, beside the writer."""
        return await trio.to_thread.run_sync(read, self._ledger.storage)

    @contextlib.contextmanager
    def subscribe(self, buffer: int = 256) -> Iterator[trio.MemoryReceiveChannel[Notice]]:
        """Receive every milestone applied from now on; dropped if `buffer` notices pile up."""
        send, receive = trio.open_memory_channel[Notice](buffer)
        self._subscribers.add(send)
        try:
            yield receive
        finally:
            self._subscribers.discard(send)
            send.close()

    @contextlib.contextmanager
    def watch_arrivals(self, buffer: int = 256) -> Iterator[trio.MemoryReceiveChannel[Arrival]]:
        """Receive every batch of messages accepted from now on; dropped if `buffer` batches
        pile up (the channel ends)."""
        send, receive = trio.open_memory_channel[Arrival](buffer)
        self._watchers.add(send)
        try:
            yield receive
        finally:
            self._watchers.discard(send)
            send.close()

    def _outcome(self, submitted: Submitted, raws: Sequence[bytes]) -> Outcome:
        accepted: list[Parsed] = []
        solid: list[MessageId] = []
        requested: list[MessageId] = []
        confirmed: list[Confirmed] = []
        expired: list[MessageId] = []
        for event in submitted.events:
            if isinstance(event, Accepted):
                accepted.append(event.parsed)
                solid.extend(event.solid)
            elif isinstance(event, Requested):
                requested.extend(event.ids)
            elif isinstance(event, Confirmed):
                confirmed.append(event)
            elif isinstance(event, Expired):
                expired.extend(event.ids)
        counters = self._counters
        for _, error in submitted.rejected:
            if isinstance(error, EquivocationError) and not error.repeated:
                counters.equivocations += 1
                log.error("%s; milestones are no longer applied until an operator acts", error)
        counters.messages_accepted += len(accepted)
        counters.messages_expired += len(expired)
        counters.messages_rejected += len(submitted.rejected)
        now = trio.current_time()
        if self._watchers and (accepted or submitted.rejected):
            arrival = Arrival(
                accepted=tuple(accepted),
                solid=tuple(solid),
                rejected=tuple(
                    (MessageId(blake2b_256(raws[i])), error) for i, error in submitted.rejected
                ),
                at=now,
            )
            self._fan_out(self._watchers, arrival)
        if confirmed:
            # What a node holds is long-lived and free of reference cycles: move it out of the
            # cyclic collector's generations, which otherwise rescan the whole window over and
            # over (15-20% of the time at thousands of transfers per second). Objects are still
            # freed by reference counting when pruned.
            gc.freeze()
        for event in confirmed:
            counters.milestones_applied += 1
            counters.transactions_included += len(event.result.included)
            counters.transactions_conflicting += len(event.result.conflicts)
            self._publish(Notice(confirmed=event, applied_at=now))
        return Outcome(
            accepted=tuple(accepted),
            solid=tuple(solid),
            requested=tuple(dict.fromkeys(requested)),
            confirmed=tuple(confirmed),
            expired=tuple(expired),
            rejected=submitted.rejected,
        )

    def _publish(self, notice: Notice) -> None:
        self._fan_out(self._subscribers, notice)

    def _fan_out(self, channels: set[trio.MemorySendChannel[E]], item: E) -> None:
        """Send `item` to every channel; drop (close) a channel that is full."""
        for send in list(channels):
            try:
                send.send_nowait(item)
            except trio.WouldBlock:
                channels.discard(send)
                send.close()
                self._counters.subscribers_dropped += 1
            except trio.BrokenResourceError:
                channels.discard(send)
