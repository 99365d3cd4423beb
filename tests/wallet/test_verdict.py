"""The wallet's verdict on a transfer never calls an applied transaction failed: against the real
in-process node of `test_client` (sqlite ledger, coordinator, ASGI app), a transfer applied
through an attachment the node has forgotten (pruned) or the wallet never knew (a re-attachment
by someone else), with no output of it left unspent (an exact amount, spent on by its
recipient), is confirmed when the node can tell and left pending when it cannot; and the
client's reading of an output by id (`NodeClient.output`), which it tells them apart by."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import pytest

from payments.charging.refund_attempts import never_applies
from tangle.ledger.ledger import Conflict, Inclusion
from tangle.protocol.ids import MessageId, OutputId
from tangle.protocol.message import Message, encode_message
from tests.builders import address, message, transfer
from tests.wallet.test_client import ACCOUNT, BOB, CAROL, CONFIG, PARAMS, open_wallet, running
from wallet import (
    InsufficientFundsError,
    InvalidResponseError,
    NodeClient,
    NotFoundError,
    RateLimitedError,
    TransferStatus,
    TransferTimeoutError,
)
from wallet.config import BELOW_MAX_DEPTH
from wallet.confirmation import ConfirmingWallet

if TYPE_CHECKING:
    from pathlib import Path

    from tangle.protocol.ids import Address
    from tangle.protocol.transaction import Transaction
    from tests.wallet.test_client import Harness

EXACT = 1_000_000
"""The account's whole genesis coin: a transfer of it has no change output."""
KEEP = 16
"""Milestones the node keeps when it prunes (the least it allows)."""


async def submit(h: Harness, raw: bytes) -> MessageId:
    async with h.http() as client:
        response = await client.post("/api/v1/messages", json={"message": raw.hex()})
    assert response.status_code == 201, response.text
    return MessageId.from_hex(response.json()["id"])


async def tips(h: Harness) -> tuple[MessageId, ...]:
    async with h.http() as client:
        found = (await client.get("/api/v1/tips")).json()["tips"]
    return tuple(sorted(MessageId.from_hex(t) for t in found))


async def paid(h: Harness, to: Address, amount: int) -> None:
    """Wait until a milestone paid `amount` to `to`."""
    for _ in range(300):
        if await h.balance_of(to) == amount:
            return
        await h.wait_for_index(await h.confirmed_index() + 1)
    raise AssertionError(f"{to.hex()} was not paid")


async def spend_on(h: Harness, tx: Transaction) -> None:
    """The recipient (BOB) spends the exact transfer's only output to CAROL."""
    onward = transfer([(OutputId.of(tx.id, 0), BOB)], [(address(CAROL), EXACT)])
    await submit(h, message(onward, await tips(h), work_per_kib=PARAMS.work_per_kib))
    await paid(h, address(CAROL), EXACT)


@pytest.mark.parametrize("old_node", [False, True], ids=["node", "older-node"])
async def test_an_applied_transfer_whose_attachment_was_pruned_is_never_failed(
    tmp_path: Path, old_node: bool
) -> None:
    async with running(tmp_path, tick_s=0.01) as h, open_wallet(h, tmp_path / "w.db") as w:
        h.old_node = old_node  # without the outputs route the conflict on its inputs is no failure
        await w.sync()
        sent = await w.send(address(BOB), EXACT, idempotency_key="exact", wait=False)
        assert len(sent.transaction.essence.outputs) == 1  # no change output
        (first,) = sent.attachments
        assert first.message_id is not None
        await paid(h, address(BOB), EXACT)
        await spend_on(h, sent.transaction)
        # the node forgets the attachment and the spends (its pruning window)
        await h.wait_for_index(await h.confirmed_index() + KEEP + 2)
        await h.node.write(lambda ledger: ledger.prune(KEEP))
        async with NodeClient("http://node", transport=h.transport()) as client:
            with pytest.raises(NotFoundError):
                await client.metadata(first.message_id)
            # a re-attachment (as an older wallet made one) is referenced, and conflicting:
            # its inputs were spent, by the same transaction through the forgotten attachment
            assert sent.nonce is not None
            again = Message(
                network_id=PARAMS.network_id,
                parents=await tips(h),
                payload=sent.transaction,
                nonce=sent.nonce,
            )
            raw = encode_message(again)
            second = await submit(h, raw)
            w.state.add_attachment(
                sent.key_hash,
                message_id=second,
                raw=raw,
                cmi=await h.confirmed_index(),
                now_ms=time.time_ns() // 1_000_000,
            )
            await h.wait_for_index(await h.confirmed_index() + 2)
            metadata = await client.metadata(second)
            assert metadata.inclusion is Inclusion.CONFLICTING
            assert metadata.conflict is Conflict.INPUT_NOT_FOUND

        # the wallet cannot tell: the transfer stays pending, it is not re-attached
        with pytest.raises(TransferTimeoutError):
            await w.resume("exact", timeout_s=1.0)
        (record,) = await w.transfers()
        assert record.status is TransferStatus.SUBMITTED
        assert not never_applies(record)  # a refunder would not pay it again
        assert w.counters.reattachments == 0  # (a submission the node refused leaves no record)
        assert len(record.attachments) == 2
        # and it is not pending for ever: it expires as any transfer nobody re-attached
        assert record.last_cmi is not None
        await h.wait_for_index(record.last_cmi + CONFIG.expire_after)
        (expired,) = await w.settle()
        assert expired.status is TransferStatus.EXPIRED
        assert not never_applies(expired)
        # its input is gone from the ledger, so from the wallet's coins too: never spent again
        assert (await w.balance()).total == 0
        with pytest.raises(InsufficientFundsError):
            await w.send(address(CAROL), 10_000, idempotency_key="later", wait=False)
        assert [t.status for t in await w.transfers()] == [TransferStatus.EXPIRED]


async def test_a_transfer_applied_through_an_attachment_it_never_knew_is_confirmed(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, tick_s=0.01) as h, open_wallet(h, tmp_path / "w.db") as w:
        await w.sync()
        await h.wait_for_index(10)
        h.lazy_tips = 1  # the wallet's attachment approves the genesis only: never referenced
        sent = await w.send(address(BOB), EXACT, idempotency_key="exact", wait=False)
        (first,) = sent.attachments
        # once it is below max depth, someone else (the payee, say) attaches the payload again
        await h.wait_for_index(first.cmi + BELOW_MAX_DEPTH + 1)
        theirs = await submit(
            h, message(sent.transaction, await tips(h), work_per_kib=PARAMS.work_per_kib)
        )
        await paid(h, address(BOB), EXACT)
        await spend_on(h, sent.transaction)
        async with NodeClient("http://node", transport=h.transport()) as client:
            applied_at = (await client.metadata(theirs)).referenced_by
            assert first.message_id is not None
            assert (await client.metadata(first.message_id)).referenced_by is None
        assert applied_at is not None

        done = await w.resume("exact", timeout_s=5.0)
        assert done.status is TransferStatus.CONFIRMED
        assert done.confirmed_index == applied_at
        assert done.attachments == sent.attachments  # not attached again


async def test_the_ledger_is_asked_about_no_input_after_one_gone(tmp_path: Path) -> None:
    more = 500_000
    async with running(tmp_path, tick_s=0.01) as h, open_wallet(h, tmp_path / "w.db") as w:
        await h.fund([(ACCOUNT.address(0), more)])
        await w.sync()
        sent = await w.send(address(BOB), EXACT + more, idempotency_key="two", wait=False)
        tx = sent.transaction
        assert (len(tx.essence.inputs), len(tx.essence.outputs)) == (2, 1)
        await paid(h, address(BOB), EXACT + more)
        onward = transfer([(OutputId.of(tx.id, 0), BOB)], [(address(CAROL), EXACT + more)])
        await submit(h, message(onward, await tips(h), work_per_kib=PARAMS.work_per_kib))
        await paid(h, address(CAROL), EXACT + more)
        # the node forgets the attachment and every spend: both inputs are gone
        await h.wait_for_index(await h.confirmed_index() + KEEP + 2)
        await h.node.write(lambda ledger: ledger.prune(KEEP))
        h.asked.clear()
        with pytest.raises(TransferTimeoutError):
            await w.resume("two", timeout_s=1.0)
        # the transaction spends its inputs in one milestone: once one is gone, no other can
        # show it applied, so each scan stops there (the requests a pending transfer makes)
        first, second = (f"/api/v1/outputs/{i.hex()}" for i in tx.essence.inputs)
        assert first in h.asked
        assert second not in h.asked
        (record,) = await w.transfers()
        assert record.status is TransferStatus.SUBMITTED
        assert w.counters.reattachments == 0


async def test_an_input_spent_by_the_transaction_itself_confirms_it(tmp_path: Path) -> None:
    async with running(tmp_path, tick_s=0.01) as h, open_wallet(h, tmp_path / "w.db") as w:
        await w.sync()
        await h.wait_for_index(10)
        h.lazy_tips = 1  # the wallet's attachment is never referenced
        sent = await w.send(address(BOB), EXACT, idempotency_key="exact", wait=False)
        (first,) = sent.attachments
        await h.wait_for_index(first.cmi + BELOW_MAX_DEPTH + 1)
        # someone else attaches it and the payee spends its only output on, in one milestone:
        # no record of that output is left, only of the input the transaction spent
        h.ticking = False
        tx = sent.transaction
        theirs = await submit(h, message(tx, await tips(h), work_per_kib=PARAMS.work_per_kib))
        onward = transfer([(OutputId.of(tx.id, 0), BOB)], [(address(CAROL), EXACT)])
        await submit(h, message(onward, (theirs,), work_per_kib=PARAMS.work_per_kib))
        applied_at = await h.milestone()
        h.ticking = True
        assert await h.balance_of(address(CAROL)) == EXACT
        async with NodeClient("http://node", transport=h.transport()) as client:
            assert await client.output(OutputId.of(tx.id, 0)) is None
            (spent_input,) = tx.essence.inputs
            spent = await client.output(spent_input)
            assert spent is not None
            assert (spent.spent_by, spent.spent_at) == (tx.id, applied_at)

        done = await w.resume("exact", timeout_s=5.0)
        assert done.status is TransferStatus.CONFIRMED
        assert done.confirmed_index == applied_at
        assert w.counters.reattachments == 0


async def test_an_older_node_without_the_outputs_route_still_gets_a_due_reattachment(
    tmp_path: Path,
) -> None:
    """The wallet asks for the route, falls back to the address query (which finds nothing:
    the transfer was never applied) and re-attaches as before, confirmed through the
    re-attachment's metadata."""
    async with running(tmp_path, tick_s=0.01) as h, open_wallet(h, tmp_path / "w.db") as w:
        h.old_node = True
        await w.sync()
        await h.wait_for_index(10)
        h.lazy_tips = 1  # the first attachment is never referenced: a re-attachment is due
        sent = await w.send(address(BOB), 40_000, idempotency_key="lazy")
        assert sent.status is TransferStatus.CONFIRMED
        assert w.counters.reattachments == 1
        assert await w.settle() == []
        assert await h.balance_of(address(BOB)) == 40_000


async def test_the_client_reads_an_output_with_its_spender_or_nothing(tmp_path: Path) -> None:
    async with running(tmp_path) as h, open_wallet(h, tmp_path / "w.db") as w:
        await w.sync()
        sent = await w.send(address(BOB), 10_000)
        (coin,) = sent.inputs
        paid_out = OutputId.of(sent.transaction_id, 0)
        async with NodeClient("http://node", transport=h.transport()) as client:
            spent = await client.output(coin)
            assert spent is not None
            assert (spent.spent_by, spent.spent_at) == (sent.transaction_id, sent.confirmed_index)
            unspent = await client.output(paid_out)
            assert unspent is not None
            assert (unspent.created_at, unspent.spent_by) == (sent.confirmed_index, None)
            assert await client.output(OutputId.of(sent.transaction_id, 9)) is None

    def answer(status: int, body: object) -> httpx.MockTransport:
        return httpx.MockTransport(lambda _: httpx.Response(status, json=body))

    # a node without the route cannot tell: not taken for "no record of it"
    no_route = answer(404, {"error": {"code": "not_found", "message": "no such route"}})
    async with NodeClient("http://node", transport=no_route) as client:
        with pytest.raises(NotFoundError):
            await client.output(coin)
    other = {"output": {"output_id": paid_out.hex()}, "created_at": 1}
    async with NodeClient("http://node", transport=answer(200, other)) as client:
        with pytest.raises(InvalidResponseError):
            await client.output(coin)
    # a spender without its milestone (or the reverse) is no record a verdict may rest on
    halves = [{"spent_by": sent.transaction_id.hex(), "spent_at": None}, {"spent_at": 5}]
    for half in halves:
        body = {"output": {"output_id": coin.hex()}, "created_at": 1, **half}
        async with NodeClient("http://node", transport=answer(200, body)) as client:
            with pytest.raises(InvalidResponseError, match="spent_by and spent_at"):
                await client.output(coin)


@pytest.mark.parametrize("old_node", [False, True], ids=["node", "older-node"])
async def test_an_expiry_frees_no_spent_input_even_when_the_node_does_not_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old_node: bool
) -> None:
    """`settle` expires a transfer it cannot decide (its attachment pruned, its only output
    spent on) only after it read its inputs' coins from the node: a node that does not answer
    (429) leaves it for the next settle, and once expired its spent input is gone from the
    coins, on a node with the outputs route or without it."""
    async with running(tmp_path, tick_s=0.01) as h, open_wallet(h, tmp_path / "w.db") as w:
        h.old_node = old_node
        await w.sync()
        sent = await w.send(address(BOB), EXACT, idempotency_key="exact", wait=False)
        await paid(h, address(BOB), EXACT)
        await spend_on(h, sent.transaction)
        await h.wait_for_index(await h.confirmed_index() + KEEP + 2)
        await h.node.write(lambda ledger: ledger.prune(KEEP))
        (record,) = await w.transfers()
        await h.wait_for_index(record.last_cmi + CONFIG.expire_after)

        async def limited(self: object, addresses: object) -> object:
            raise RateLimitedError("GET /api/v1/addresses/{address}/outputs", "limited", 1.0)

        with monkeypatch.context() as patched:
            patched.setattr(ConfirmingWallet, "_query_outputs", limited)
            assert await w.settle() == []  # not expired: its coins could not be read
        (expired,) = await w.settle()
        assert expired.status is TransferStatus.EXPIRED
        assert (await w.balance()).total == 0
        with pytest.raises(InsufficientFundsError):
            await w.send(address(CAROL), 10_000, idempotency_key="later", wait=False)
