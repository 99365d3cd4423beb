"""Attaching a recorded transfer and following it to its end: proof-of-work (local or by the
node), each attachment recorded before it is submitted, confirmation from the event stream or by
polling, re-attachment by the policy in `reattach.py`, and `settle` for every unfinished transfer
of the state. Steps 2 to 4 of sending in `account.py`'s docstring.

**The verdict** (`_verdict`) never calls an applied transaction failed. Every attachment carries
the same signed transaction, so once one is applied a later one is conflicting on its inputs
(spent: by the transaction itself). A conflict on the inputs (`input_spent`, or
`input_not_found`: spent before the node's pruning window) therefore fails a transfer only when
the node names another transaction as an input's spender; an output of the transaction the
ledger knows (unspent, or spent inside the window), or an input spent by the transaction itself,
confirms it. When the node cannot tell (pruned, or never saw the spend), the transfer stays
pending, is not re-attached (its inputs are gone: no attachment can apply) and expires
`expire_after` milestones after its last attachment, as any transfer nobody re-attached; an
owner may then abandon it, which a refunder reads as "may still apply" (`wallet.pending`).

**The node it wants** serves `GET /api/v1/outputs/{output_id}` (docs/PROTOCOL.md section 8; the
node of this release, the first with the route). An older node answers the route 404 `not_found`
(an unknown output is 404 `unknown_output`): the wallet then confirms by its outputs' addresses
(`_on_addresses`), as before the route, and, unable to name an input's spender, leaves a transfer
whose attachment conflicts on its inputs pending, not re-attached, until it expires."""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread

from tangle.ledger.events import TransactionEvent
from tangle.ledger.ledger import Conflict, Inclusion
from tangle.protocol.ids import MessageId, OutputId, blake2b_256
from tangle.protocol.message import Message, encode_message, prepare
from tangle.work import solve

from ._base import WalletBase, now_ms
from .coin_selection import Coin
from .errors import (
    ClientError,
    EventStreamError,
    NodeUnavailableError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    TransferFailedError,
    WalletStateError,
)
from .reattach import Verdict, expire_due, reattach_due
from .records import TransferStatus

if TYPE_CHECKING:
    from ._responses import NodeInfo
    from .records import Transfer

ON_INPUTS: Final = frozenset({Conflict.INPUT_SPENT, Conflict.INPUT_NOT_FOUND})
"""Conflicts about a transaction's inputs, not its own rules: what every attachment after an
applied one meets, so no failure by themselves (the module docstring)."""


async def find_nonce(root: bytes, target: int, *, threads: int | None = None) -> int:
    """The proof-of-work nonce for `root`, by `tangle.work.solve` (a worker thread); works
    under trio and asyncio. Cancelling the caller stops the search at its next batch."""
    return await solve(root, target, threads=threads)


class ConfirmingWallet(WalletBase):
    """A wallet's attaching and waiting (see the module docstring); `account.Wallet` adds
    discovery and sending on top."""

    __slots__ = ()

    # -- attaching ---------------------------------------------------------------------------

    async def _attach(self, transfer: Transfer, remote: bool) -> Transfer:
        """Attach the transfer's payload to fresh tips: with its stored nonce, else after a
        local search, else (remote) by the node's proof-of-work."""
        info = await self._info()
        if transfer.nonce is None and remote:
            return await self._attach_at_node(transfer, info)
        nonce = transfer.nonce
        if nonce is None:
            unsent = prepare(info.network_id, transfer.transaction, info.work_per_kib)
            nonce = await find_nonce(unsent.root, unsent.target, threads=self._config.pow_threads)
            transfer = await self._db(self._state.set_nonce, transfer.key_hash, nonce, now_ms())
        tips = await self._client.tips()
        message = Message(
            network_id=info.network_id,
            parents=tips,
            payload=transfer.transaction,
            nonce=nonce,
        )
        raw = encode_message(message)
        message_id = MessageId(blake2b_256(raw))
        transfer = await self._record_attachment(transfer, message_id, raw, info)
        sequence = transfer.attachments[-1].sequence
        try:
            await self._client.submit(raw)
        except (RejectedError, RateLimitedError) as exc:
            return await self._refused(transfer, sequence, exc)
        self.counters.attachments += 1
        return transfer

    async def _attach_at_node(self, transfer: Transfer, info: NodeInfo) -> Transfer:
        transfer = await self._record_attachment(transfer, None, None, info)
        sequence = transfer.attachments[-1].sequence
        try:
            message_id = await self._client.submit_pow(transfer.transaction)
        except (RejectedError, RateLimitedError) as exc:
            if isinstance(exc, RejectedError) and exc.code == "duplicate_payload":
                return transfer  # an earlier try whose answer was lost: the node holds it
            return await self._refused(transfer, sequence, exc)
        self.counters.attachments += 1
        transfer = await self._db(
            self._state.name_attachment, transfer.key_hash, sequence, message_id, None
        )
        with contextlib.suppress(ClientError):  # the nonce only saves work later
            parsed = await self._client.message(message_id)
            if parsed.message.payload == transfer.transaction:
                await self._db(
                    self._state.name_attachment, transfer.key_hash, sequence, message_id, parsed.raw
                )
                transfer = await self._db(
                    self._state.set_nonce, transfer.key_hash, parsed.message.nonce, now_ms()
                )
        return transfer

    async def _record_attachment(
        self, transfer: Transfer, message_id: MessageId | None, raw: bytes | None, info: NodeInfo
    ) -> Transfer:
        """Record an attachment before submitting it. If another process settled the transfer
        meanwhile (abandoned, confirmed), nothing is recorded and it is reported as it stands."""
        try:
            return await self._db(
                self._state.add_attachment,
                transfer.key_hash,
                message_id=message_id,
                raw=raw,
                cmi=info.confirmed_milestone_index,
                now_ms=now_ms(),
            )
        except WalletStateError:
            current = await self._reload(transfer)
            if current.status is TransferStatus.FAILED:
                raise TransferFailedError(
                    current.transaction_id.hex(), current.failure or "failed"
                ) from None
            raise

    async def _refused(
        self, transfer: Transfer, sequence: int, exc: RejectedError | RateLimitedError
    ) -> Transfer:
        """The node did not store this attachment: forget it. The client raises these only
        when no try of the submission may have been carried out (after a lost answer a 429 or
        refusal is a `NodeUnavailableError`, and the attachment is kept: `wallet.client`).
        `duplicate_payload` means an earlier attachment still holds the payload's slot (keep
        waiting); any other refusal of a transfer never published fails it, and is raised."""
        transfer = await self._db(
            self._state.drop_attachment, transfer.key_hash, sequence, now_ms()
        )
        if isinstance(exc, RejectedError) and exc.code == "duplicate_payload":
            return transfer
        if isinstance(exc, RejectedError) and not transfer.attachments:
            await self._db(self._state.fail, transfer.key_hash, exc.code, now_ms())
        raise exc

    # -- waiting -----------------------------------------------------------------------------

    async def _await_final(self, transfer: Transfer, remote: bool) -> Transfer:
        """Follow the event stream; while it is unavailable, poll."""
        while True:
            try:
                return await self._follow_events(transfer, remote)
            except (EventStreamError, RateLimitedError, NodeUnavailableError):
                self.counters.stream_failures += 1
            transfer = await self._reload(transfer)
            transfer, final = await self._poll(transfer, remote, self._config.stream_retry_s)
            if final:
                return transfer

    async def _follow_events(self, transfer: Transfer, remote: bool) -> Transfer:
        watched = transfer.transaction.essence.outputs[0].address
        async with contextlib.AsyncExitStack() as stack:
            try:
                with anyio.fail_after(self._config.stream_open_timeout_s):
                    events = await stack.enter_async_context(self._client.events([watched]))
            except TimeoutError:
                raise EventStreamError("GET /api/v1/events", "no answer in time") from None
            self.counters.streams_opened += 1
            transfer, final = await self._step(transfer, remote, None)
            if final:
                return transfer
            async for event in events:
                if isinstance(event, TransactionEvent):
                    if event.transaction_id != transfer.transaction_id:
                        continue
                    if event.inclusion is Inclusion.INCLUDED:
                        return await self._confirmed(transfer, event.milestone_index)
                    transfer, final = await self._step(transfer, remote, None)
                elif reattach_due(transfer, event.index, self._config.reattach_after):
                    transfer, final = await self._step(transfer, remote, event.index)
                if final:
                    return transfer
        raise EventStreamError("GET /api/v1/events", "the stream ended")  # pragma: no cover

    async def _poll(
        self, transfer: Transfer, remote: bool, duration_s: float
    ) -> tuple[Transfer, bool]:
        """Poll for `duration_s` (at least once); a node that does not answer is tried again."""
        rounds = max(1, math.ceil(duration_s / self._config.poll_interval_s))
        for _ in range(rounds):
            self.counters.polls += 1
            with contextlib.suppress(NodeUnavailableError, RateLimitedError):
                transfer, final = await self._step(transfer, remote, None)
                if final:
                    return transfer, True
            await anyio.sleep(self._config.poll_interval_s)
        return transfer, False

    async def _step(
        self, transfer: Transfer, remote: bool, cmi: int | None
    ) -> tuple[Transfer, bool]:
        """Ask the ledger about the transfer; finish it, or re-attach it when due, or submit
        its latest attachment again if the node lost it; neither while its inputs are gone
        (`Verdict.inputs_gone`: only expiry ends it then)."""
        if cmi is None:
            cmi = (await self._info()).confirmed_milestone_index
        verdict = await self._verdict(transfer, cmi)
        if verdict.confirmed_index is not None:
            return await self._confirmed(transfer, verdict.confirmed_index), True
        if verdict.conflict is not None:
            return await self._failed(transfer, verdict.conflict), True
        if verdict.inputs_gone:
            await self._refresh_inputs(transfer)
        transfer = await self._reload(transfer)
        if transfer.final or verdict.inputs_gone:
            return transfer, transfer.final
        if reattach_due(transfer, cmi, self._config.reattach_after):
            if transfer.status is not TransferStatus.SIGNED:
                self.counters.reattachments += 1
            return await self._attach(transfer, remote), False
        latest = transfer.attachments[-1] if transfer.attachments else None
        if verdict.missing and latest is not None and latest.raw is not None:
            self.counters.resubmissions += 1
            with contextlib.suppress(RejectedError):  # duplicate_payload: another holds the slot
                await self._client.submit(latest.raw)
        return transfer, False

    async def _verdict(self, transfer: Transfer, cmi: int) -> Verdict:
        """Included (at which milestone), never applicable (why), or neither (the module
        docstring), from the metadata of its attachments and, when those cannot tell, from the
        ledger's record of its outputs and inputs (`_on_ledger`): when one conflicted, none is
        known to the node, one is unnamed, or a re-attachment is due at `cmi` (so no applied
        transaction is attached again)."""
        conflict: Conflict | None = None
        known = 0
        missing = False
        for attachment in transfer.attachments:
            if attachment.message_id is None:
                continue
            try:
                metadata = await self._client.metadata(attachment.message_id)
            except NotFoundError:
                missing = attachment is transfer.attachments[-1]
                continue
            known += 1
            if metadata.referenced_by is None:
                continue
            if metadata.inclusion is Inclusion.INCLUDED:
                return Verdict(confirmed_index=metadata.referenced_by)
            if metadata.inclusion is not Inclusion.CONFLICTING:
                continue
            if conflict is None or conflict in ON_INPUTS:
                conflict = metadata.conflict  # a rule of its own outweighs one of its inputs
        unnamed = any(a.message_id is None for a in transfer.attachments)
        due = reattach_due(transfer, cmi, self._config.reattach_after)
        if conflict is None and known > 0 and not unnamed and not due:
            return Verdict(missing=missing)
        try:
            ledger = await self._on_ledger(transfer)
        except NotFoundError:  # a node older than the outputs route (`unknown_output` is None)
            ledger = await self._on_addresses(transfer, conflict is not None)
        if ledger.confirmed_index is None and conflict is not None and conflict not in ON_INPUTS:
            return Verdict(conflict=conflict.name.lower())  # its own rule: no attachment applies
        return Verdict(
            confirmed_index=ledger.confirmed_index,
            conflict=ledger.conflict,
            missing=missing,
            inputs_gone=ledger.inputs_gone,
        )

    async def _on_ledger(self, transfer: Transfer) -> Verdict:
        """What the node's ledger records of the transaction, whatever became of its
        attachments, from its inputs first: a transaction spends all its inputs at one
        milestone, so an input spent by it shows it applied at that milestone, one spent by
        another transaction shows it never applicable (`input_spent`), and one unspent that it
        has not applied (the next inputs are asked all the same: another may be spent
        elsewhere). Only once an input is gone with no record of its spender (pruned with its
        spent record, or never there) are its outputs asked, the change first (nobody else
        spends it): one the node knows (unspent, or spent inside its pruning window) shows it
        applied at the milestone that created it, else its inputs are gone
        (`Verdict.inputs_gone`). None is asked after an input gone: their spent records are
        pruned together, so no later input can show it applied; one another transaction
        spent, listed after, is then not seen, and the transfer expires instead of failing,
        which a refunder holds (the safe side) rather than pays again. A pending transfer
        asks this at every due step: one request per input while they are unspent."""
        tx = transfer.transaction
        for output_id in tx.essence.inputs:
            spent = await self._client.output(output_id)
            if spent is None:
                break
            if spent.spent_by == tx.id:
                return Verdict(confirmed_index=spent.spent_at)
            if spent.spent_by is not None:
                return Verdict(conflict=Conflict.INPUT_SPENT.name.lower())
        else:
            return Verdict()
        for position in reversed(range(len(tx.essence.outputs))):
            created = await self._client.output(OutputId.of(tx.id, position))
            if created is not None:
                return Verdict(confirmed_index=created.created_at)
        return Verdict(inputs_gone=True)

    async def _on_addresses(self, transfer: Transfer, conflicting: bool) -> Verdict:
        """What a node without `GET /api/v1/outputs/{output_id}` tells: applied at the ledger
        index where an output of the transaction is seen unspent (of its last two, the change
        first), else nothing. It cannot name an input's spender, so an attachment conflicting on
        the inputs (`conflicting`) leaves the transfer pending and not re-attached
        (`Verdict.inputs_gone`); otherwise it is re-attached when due, as before the route."""
        outputs = list(enumerate(transfer.transaction.essence.outputs))
        for position, output in reversed(outputs[-2:]):
            answer = await self._client.outputs(output.address)
            wanted = OutputId.of(transfer.transaction_id, position)
            if any(o.output_id == wanted for o in answer.outputs):
                return Verdict(confirmed_index=answer.ledger_index)
        return Verdict(inputs_gone=conflicting)

    async def _confirmed(self, transfer: Transfer, index: int) -> Transfer:
        await self._load_owners()
        tx = transfer.transaction
        own = [
            Coin(output_id=OutputId.of(tx.id, i), address=o.address, amount=o.amount)
            for i, o in enumerate(tx.essence.outputs)
            if o.address in self._keys.owners
        ]
        return await self._db(self._state.confirm, transfer.key_hash, index, own, now_ms())

    async def _failed(self, transfer: Transfer, reason: str) -> Transfer:
        """Record the failure, then refresh the inputs' addresses: some inputs were spent
        elsewhere, the others are free again."""
        transfer = await self._db(self._state.fail, transfer.key_hash, reason, now_ms())
        await self._refresh_inputs(transfer)
        return transfer

    async def _refresh_inputs(self, transfer: Transfer) -> bool:
        """Replace the coins at the addresses of the transfer's inputs still among the coins
        by the node's outputs there; False if the node did not answer (they are left as they
        are). Called when a transfer failed (its unspent inputs are free again), when its inputs
        are gone (`Verdict.inputs_gone`), and before it expires (`settle`): its reservation
        ends then, and a spent input left among the coins would count in the balance and fund
        a transfer that can never apply. Nothing is asked once none of its inputs is among the
        coins."""
        await self._load_owners()
        addresses = {
            c.address for c in await self._db(self._state.coins) if c.output_id in transfer.inputs
        }
        if not addresses:
            return True
        try:
            found = await self._query_outputs(sorted(addresses))
        except ClientError:
            return False
        for address, answer in found.items():
            coins = [
                Coin(output_id=o.output_id, address=o.address, amount=o.amount)
                for o in answer.outputs
            ]
            await self._db(
                self._state.replace_outputs, [address], coins, answer.ledger_index, now_ms()
            )
        return True

    # -- housekeeping ------------------------------------------------------------------------

    async def settle(self) -> list[Transfer]:
        """Bring every unfinished transfer of the state (any process's) up to date with the
        ledger, without attaching anything: confirm or fail what milestones decided, expire
        transfers `expire_after` milestones past their last attachment, and fail transfers
        never submitted whose sender has been silent for `abandon_after_s`. Returns the
        transfers that changed."""
        info = await self._info()
        now = now_ms()
        silent_since = now - int(self._config.abandon_after_s * 1000)
        expire_after = self._config.expire_after
        pending = (TransferStatus.SIGNED, TransferStatus.SUBMITTED, TransferStatus.EXPIRED)
        changed = []
        for transfer in await self._db(self._state.transfers, pending):
            if transfer.status is TransferStatus.SIGNED:
                after = await self._db(self._state.abandon, transfer.key_hash, silent_since, now)
            else:
                verdict = await self._verdict(transfer, info.confirmed_milestone_index)
                if verdict.confirmed_index is not None:
                    after = await self._confirmed(transfer, verdict.confirmed_index)
                elif verdict.conflict is not None:
                    after = await self._failed(transfer, verdict.conflict)
                elif expire_due(transfer, info.confirmed_milestone_index, expire_after):
                    # its inputs' coins first, as the node has them (one may be spent: its
                    # inputs gone, or an older node that cannot tell): the expiry frees them;
                    # a node that does not answer leaves it for the next settle
                    if not await self._refresh_inputs(transfer):
                        continue
                    after = await self._db(self._state.expire, transfer.key_hash, now)
                else:
                    continue
            if after.status is not transfer.status:
                changed.append(after)
        return changed
