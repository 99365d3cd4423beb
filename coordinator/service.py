"""The coordinator service: issues a milestone every interval for the node it runs beside.

Order of every issuance, so that no index ever gets two different milestones:

1. build the checkpoints and the milestone (proof-of-work in a worker thread), attaching the
   checkpoints to the local node, a layer at a time, so the white-flag preview sees them;
2. record the whole issue in the journal (`synchronous=FULL`): from here on the index is taken;
3. publish: submit every message to the local node (one submission), then hand each to
   `publish` (gossip).

A coordinator killed at any point and restarted runs `recover` first: if the journal holds an
index its node has not confirmed, it republishes exactly those bytes; it never builds that index
again.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import trio

from tangle import work
from tangle.errors import DuplicateMessageError
from tangle.protocol.message import encode_message, prepare

from .errors import JournalError, NotConfirmedError
from .issuer import (
    MAX_PARENTS,
    checkpoint_payload,
    group,
    milestone_essence,
    newest_entry_point,
    tips_to_confirm,
)
from .journal import Issue, Journal
from .signers import sign_milestone

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from tangle.node.core import NodeCore, Parameters
    from tangle.node.node import Node
    from tangle.protocol.ids import MessageId, MilestoneId
    from tangle.protocol.milestone import KeySet, KeySetChange, MilestoneEssence
    from tangle.protocol.payload import Payload
    from tangle.protocol.signature import Signer


async def _solve(root: bytes, target: int) -> int:
    return await work.solve(root, target)


class Coordinator:
    """Issues milestones signed by the committee members at hand."""

    __slots__ = ("_clock_ms", "_journal", "_node", "_rotation", "_signers", "_solve")

    def __init__(
        self,
        node: Node,
        journal: Journal,
        signers: Sequence[Signer],
        *,
        solve: Callable[[bytes, int], Awaitable[int]] = _solve,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._node = node
        self._journal = journal
        self._signers = tuple(signers)
        self._solve = solve
        self._clock_ms = clock_ms
        self._rotation: KeySetChange | None = None

    def schedule_rotation(self, change: KeySetChange) -> None:
        """Announce `change` in the next milestone (and keep announcing until it is applied)."""
        self._rotation = change

    def _pending_rotation(self, core: NodeCore) -> KeySetChange | None:
        change = self._rotation
        if change is None or core.schedule.key_set_at(change.activation_index) == change.key_set:
            return None
        return change

    async def _message(
        self, params: Parameters, payload: Payload, parents: tuple[MessageId, ...]
    ) -> bytes:
        unsent = prepare(params.network_id, payload, params.work_per_kib)
        nonce = await self._solve(unsent.root, unsent.target)
        return encode_message(unsent.attach(parents, nonce))

    async def _checkpoints(
        self,
        params: Parameters,
        index: int,
        previous: MilestoneId,
        first: int,
        parent_sets: Sequence[tuple[MessageId, ...]],
    ) -> list[bytes]:
        """Checkpoints `first`, `first + 1`, ... of milestone `index`, one approving each of
        `parent_sets`, their proofs-of-work done concurrently (each is a thread round trip)."""
        layer = [b""] * len(parent_sets)

        async def one(n: int, parents: tuple[MessageId, ...]) -> None:
            payload = checkpoint_payload(index, first + n, previous)
            layer[n] = await self._message(params, payload, parents)

        async with trio.open_nursery() as nursery:
            for n, parents in enumerate(parent_sets):
                nursery.start_soon(one, n, parents)
        return layer

    async def build(self) -> Issue:
        """Build the next milestone and its checkpoints (step 1 of the module docstring).

        A checkpoint the local node refuses (its tips went lazy meanwhile, say) is left out, and
        the tips it approved wait for the next milestone: one refusal never stops issuance."""
        node = self._node
        index, previous, params, tips = await node.read_core(
            lambda core: (
                core.confirmed_index + 1,
                core.confirmed_id,
                core.params,
                tips_to_confirm(core),
            )
        )
        messages: list[bytes] = []
        sequence = 0
        while len(tips) > MAX_PARENTS:
            parent_sets = group(tips)
            layer = await self._checkpoints(params, index, previous, sequence, parent_sets)
            sequence += len(layer)
            # One submission per layer: the writer thread is shared with the gossip and the API,
            # and a wait for it per checkpoint would delay the milestone.
            outcome = await node.submit_many(layer)
            for position, error in outcome.rejected:
                log.warning("checkpoint %d of milestone %d refused: %s", position, index, error)
            refused = {position for position, _ in outcome.rejected}
            messages += [raw for n, raw in enumerate(layer) if n not in refused]
            tips = tuple(sorted(parsed.id for parsed in outcome.accepted))
            if not tips:
                tips = await node.read_core(newest_entry_point)
        parents = tuple(sorted(tips))
        timestamp_ms = self._clock_ms()

        def essence_and_keys(core: NodeCore) -> tuple[MilestoneEssence, KeySet]:
            essence = milestone_essence(
                core,
                parents=parents,
                timestamp_ms=timestamp_ms,
                key_set_change=self._pending_rotation(core),
            )
            return essence, core.schedule.key_set_at(index)

        essence, key_set = await node.read_core(essence_and_keys)
        milestone = sign_milestone(essence, self._signers, key_set)
        messages.append(await self._message(params, milestone, parents))
        return Issue(index=index, messages=tuple(messages))

    async def issue(self, publish: Callable[[bytes], Awaitable[None]]) -> Issue:
        """Build, journal, then publish the next milestone."""
        issue = await self.build()
        await trio.to_thread.run_sync(self._journal.record, issue)
        await self._publish(issue, publish)
        return issue

    async def _publish(self, issue: Issue, publish: Callable[[bytes], Awaitable[None]]) -> None:
        # One submission for the whole issue (the checkpoints are there already, unless this is
        # a recovery): a wait for the shared writer thread per message would delay the milestone.
        outcome = await self._node.submit_many(issue.messages)
        for _, error in outcome.rejected:
            if not isinstance(error, DuplicateMessageError):
                raise error
        for raw in issue.messages:
            await publish(raw)
        confirmed = await self._node.read_core(lambda core: core.confirmed_index)
        if confirmed != issue.index:
            raise NotConfirmedError(f"issued milestone {issue.index}, the node is at {confirmed}")

    async def recover(self, publish: Callable[[bytes], Awaitable[None]]) -> None:
        """Republish a journaled milestone the node has not confirmed; check the rest agrees."""
        last = self._journal.last()
        confirmed = await self._node.read_core(lambda core: core.confirmed_index)
        if last is None:
            if confirmed:
                raise JournalError(f"the node is at milestone {confirmed}; the journal is empty")
            return
        if last.index == confirmed + 1:
            await self._publish(last, publish)
            return
        record = await self._node.read_storage(lambda storage: storage.milestone(last.index))
        if last.index != confirmed or record is None or record.raw != last.messages[-1]:
            raise JournalError(
                f"journal ends at milestone {last.index}, the node confirmed {confirmed} "
                "with other bytes: another coordinator issued with these keys"
            )

    async def run(
        self,
        publish: Callable[[bytes], Awaitable[None]],
        interval_s: float,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Recover, report ready, then issue one milestone every `interval_s` seconds."""
        await self.recover(publish)
        task_status.started()
        deadline = trio.current_time()
        while True:
            deadline += interval_s
            await trio.sleep_until(deadline)
            await self.issue(publish)
