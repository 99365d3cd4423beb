"""The operator's side of the owed refunds (`refund_desk.RefundDesk`, on `CsmsStore.refunds`): a
listing of every refund still owed in bounded pages after a cursor, with each one's state,
attempt, tries and the key of its current attempt; a held refund retried under its next attempt
or settled (deleted, the note logged), each only from `held`, a raced second action refused by
name. Before, a held refund was one error line in the log: nothing listed it, and only SQL could
settle it."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import pytest

from payments.charging.errors import (
    RefundNoteError,
    RefundNotHeldError,
    RefundRefError,
    RefundWalletError,
    UnknownRefundError,
)
from payments.charging.refund_attempts import (
    REFUND_KEY,
    attempt_key,
    session_refund_key,
    unbind_refund_key,
)
from payments.charging.refund_desk import (
    MAX_PAGE,
    ListedRefund,
    OwedRefund,
    parse_ref,
    ref_text,
)
from payments.charging.store import CsmsStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from pathlib import Path

    from payments.charging.refund_desk import RefundRef
    from tangle.protocol.ids import OutputId
    from wallet.records import Transfer

CHANNEL = bytes(range(32))
NOTE = "paid by bank transfer ref X-42"
SESSIONS = [  # charge point, transaction, amount, state, attempt, tries
    ("CP1", "T2", 300, "held", 3, 5),
    ("CP1", "T1", 540, "sending", 1, 2),
    ("CP2", "A/B", 200, "owed", 0, 0),
]
TOKENS = [  # token, amount, state, attempt, tries (ids 1, 2, 3)
    ("CARD-X", 450, "maybe_sent", 0, 0),
    ("CARD-Y", 150, "held", 0, 1),
    ("CARD-Z", 120, "owed", 0, 0),
]


class NothingRecorded:
    """The CPO's wallet, which recorded no transfer."""

    async def transfer(self, key: bytes, /) -> Transfer | None:
        return None

    async def spenders(self, inputs: Sequence[OutputId], /) -> dict[OutputId, bytes]:
        return {}


NOTHING = NothingRecorded()


async def owe(
    store: CsmsStore,
    sessions: list[tuple[str, str, int, str, int, int]],
    tokens: list[tuple[str, int, str, int, int]],
) -> None:
    """Write owed refund rows as the refunder leaves them (with each session's binding)."""
    async with store.transaction() as db:
        await db.executemany(
            "INSERT INTO refunds (charge_point, transaction_id, amount, state, attempt, tries) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            sessions,
        )
        await db.executemany(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, 100, 3000, NULL, 900)",
            [(cp, tx, f"CARD-{tx}", CHANNEL) for cp, tx, *_ in sessions],
        )
        await db.executemany(
            "INSERT INTO token_refunds (id_token, channel_id, amount, state, attempt, tries) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(token, CHANNEL, *rest) for token, *rest in tokens],
        )


def run_with(tmp_path: Path, body: Callable[[CsmsStore], Awaitable[None]]) -> None:
    """`body` on a CSMS store owing `SESSIONS` and `TOKENS`."""

    async def main() -> None:
        async with CsmsStore(tmp_path / "csms.sqlite") as store:
            await owe(store, SESSIONS, TOKENS)
            await asyncio.wait_for(body(store), 20)

    asyncio.run(main())


async def _all_pages(store: CsmsStore, size: int, held_only: bool = False) -> list[list[RefundRef]]:
    pages: list[list[RefundRef]] = []
    after: RefundRef | None = None
    for _ in range(20):
        page = await store.refunds.owed_page(held_only=held_only, after=after, limit=size)
        pages.append([refund.ref for refund in page])
        if len(page) < size:
            return pages
        after = page[-1].ref
    raise AssertionError("the pages never ended")


def test_every_owed_refund_is_listed_in_bounded_pages_after_a_cursor(tmp_path: Path) -> None:
    """Six refunds in every unpaid state, pages of two: sessions' (by charge point and
    transaction), then tokens' (by id), each once; `held_only` lists the held ones; a page
    never holds more than `MAX_PAGE`."""

    async def body(store: CsmsStore) -> None:
        refunds = store.refunds
        assert await _all_pages(store, 2) == [
            [("CP1", "T1"), ("CP1", "T2")],
            [("CP2", "A/B"), 1],
            [2, 3],
            [],
        ]
        assert await _all_pages(store, 5, held_only=True) == [[("CP1", "T2"), 2]]
        assert [r.ref for r in await refunds.owed_page(held_only=True, after=("CP1", "T2"))] == [2]
        assert await refunds.owed_page(after=3) == []
        held = await refunds.owed(("CP1", "T2"))
        assert held == OwedRefund(
            ref=("CP1", "T2"),
            id_token="CARD-T2",
            channel_id=CHANNEL,
            amount=300,
            state="held",
            attempt=3,
            tries=5,
            first_key=REFUND_KEY + b"CP1/T2",
        )
        assert held.key == attempt_key(REFUND_KEY + b"CP1/T2", 3)
        token = await refunds.owed(2)
        assert token is not None
        assert token.key == unbind_refund_key(CHANNEL, "CARD-Y", 2)  # attempt 0: its own key
        assert token.to_json() == {
            "kind": "token",
            "id": "2",
            "charge_point": None,
            "transaction_id": None,
            "id_token": "CARD-Y",
            "channel_id": CHANNEL.hex(),
            "amount": 150,
            "state": "held",
            "held": True,
            "attempt": 0,
            "tries": 1,
            "key": token.key.decode(),
        }
        await owe(store, [], [("CARD-M", 1, "owed", 0, 0)] * (MAX_PAGE + 5))
        assert len(await refunds.owed_page(limit=10**9)) == MAX_PAGE

    run_with(tmp_path, body)


def test_a_held_refund_is_retried_under_its_next_attempt_only_from_held(tmp_path: Path) -> None:
    """Retried, the held rest is `sending` at attempt 4, same amount, the key of attempt 4, and
    the refunder's claim sends it so; a second retry, a retry of a refund the refunder is paying
    and one of a refund not owed are refused by name, changing nothing."""

    async def body(store: CsmsStore) -> None:
        refunds = store.refunds
        retried = await refunds.retry_held(("CP1", "T2"), wallet=NOTHING)
        assert (retried.state, retried.attempt, retried.amount) == ("sending", 4, 300)
        assert retried.key == attempt_key(session_refund_key(("CP1", "T2")), 4)
        claim = await refunds.claim_refund(("CP1", "T2"), CHANNEL, 100)
        assert claim is not None
        assert (claim.amount, claim.attempt) == (300, 4)
        with pytest.raises(RefundNotHeldError) as again:
            await refunds.retry_held(("CP1", "T2"), wallet=NOTHING)
        assert (again.value.kind, again.value.ref, again.value.state) == (
            "session",
            "CP1/T2",
            "sending",
        )
        with pytest.raises(RefundNotHeldError):
            await refunds.retry_held(3, wallet=NOTHING)  # owed, never tried
        with pytest.raises(UnknownRefundError):
            await refunds.retry_held(("CP9", "T9"), wallet=NOTHING)
        assert await refunds.owed(("CP1", "T2")) == retried
        token = await refunds.retry_held(2, wallet=NOTHING)
        assert token.key == attempt_key(unbind_refund_key(CHANNEL, "CARD-Y", 2), 1)
        assert [r.ref for r in await refunds.owed_page(held_only=True)] == []

    run_with(tmp_path, body)


def test_settling_deletes_a_held_refund_and_logs_the_note_with_amount_and_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(store: CsmsStore) -> None:
        refunds = store.refunds
        for note in ("", "  ", "x" * 501, "paid\nFAKE LOG LINE"):
            with pytest.raises(RefundNoteError):
                await refunds.settle_held(2, note, wallet=NOTHING)
        assert (await refunds.owed(2)) is not None  # a refused note changes nothing
        with caplog.at_level(logging.INFO, logger="payments.charging.refund_desk"):
            settled = (await refunds.settle_held(2, NOTE, wallet=NOTHING)).refund
        assert (settled.amount, settled.state, settled.id_token) == (150, "held", "CARD-Y")
        assert await refunds.owed(2) is None
        [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
        assert NOTE in line
        assert "150" in line
        assert repr(unbind_refund_key(CHANNEL, "CARD-Y", 2)) in line
        with pytest.raises(UnknownRefundError):
            await refunds.settle_held(2, NOTE, wallet=NOTHING)  # settled already
        with pytest.raises(RefundNotHeldError):  # the refunder is paying it
            await refunds.settle_held(("CP1", "T1"), NOTE, wallet=NOTHING)
        assert (await refunds.owed(("CP1", "T1"))) is not None
        session = (await refunds.settle_held(("CP1", "T2"), NOTE, wallet=NOTHING)).refund
        assert (session.id_token, session.channel_id, session.attempt) == ("CARD-T2", CHANNEL, 3)
        assert [r.ref for r in await refunds.owed_page(held_only=True)] == []

    run_with(tmp_path, body)


def test_a_refund_the_refunder_still_pays_is_held_then_settled(tmp_path: Path) -> None:
    """Holding takes a refund in a state the refunder reads out of its rounds (its claim finds
    nothing): `paused`, at its attempt, listed held, and the operator may settle it; holding
    again changes nothing, and holding a refund the refunder held keeps it `held` (its next
    retry is a new attempt); a refund not owed cannot be held."""

    async def body(store: CsmsStore) -> None:
        refunds = store.refunds
        held = await refunds.hold(("CP1", "T1"))  # sending
        assert (held.state, held.attempt, held.amount) == ("paused", 1, 540)
        assert held.to_json()["held"] is True
        assert await refunds.claim_refund(("CP1", "T1"), CHANNEL, 100) is None
        assert await refunds.owed_refunds() == []
        assert await refunds.hold(("CP1", "T1")) == held
        assert ("CP1", "T1") in [r.ref for r in await refunds.owed_page(held_only=True)]
        assert (await refunds.hold(1)).state == "paused"  # maybe_sent
        assert await refunds.claim_token_refund(1, 100) is None
        assert await refunds.owed_back(CHANNEL, 0) is False  # no proof's row: nothing else
        assert (await refunds.hold(("CP1", "T2"))).state == "held"  # the refunder's: kept
        with pytest.raises(UnknownRefundError):
            await refunds.hold(99)
        await refunds.settle_held(("CP1", "T1"), NOTE, wallet=NOTHING)
        assert await refunds.owed(("CP1", "T1")) is None

    run_with(tmp_path, body)


def test_a_paused_refund_retried_is_owed_again_under_the_same_key(tmp_path: Path) -> None:
    """A refund the operator held while the refunder was paying it (its transfer may still
    confirm) is owed again under the attempt it was paused at, the same key, so the refunder
    resumes that transfer rather than sending a second one beside it; a refund the refunder
    held moves to its next attempt. Before, both moved to the next attempt."""

    async def body(store: CsmsStore) -> None:
        refunds = store.refunds
        await refunds.hold(("CP1", "T1"))  # sending, attempt 1
        resumed = await refunds.retry_held(("CP1", "T1"), wallet=NOTHING)
        assert (resumed.state, resumed.attempt) == ("sending", 1)
        assert resumed.key == attempt_key(session_refund_key(("CP1", "T1")), 1)
        claim = await refunds.claim_refund(("CP1", "T1"), CHANNEL, 100)
        assert claim is not None
        assert (claim.amount, claim.attempt) == (540, 1)
        await refunds.hold(1)  # maybe_sent, attempt 0
        assert (await refunds.retry_held(1, wallet=NOTHING)).attempt == 0
        held = await refunds.retry_held(("CP1", "T2"), wallet=NOTHING)
        assert held.attempt == 4  # held: the next

    run_with(tmp_path, body)


def test_a_raced_second_action_from_another_process_gets_the_named_error(
    tmp_path: Path,
) -> None:
    """Two stores on one database (the CLI beside a running CSMS) act on one held refund at
    once, retry against settle: exactly one applies, whichever is first, and the other is
    refused by name (not held: retried first; not owed: settled first); the row shows the
    one."""

    async def body(store: CsmsStore) -> None:
        async with CsmsStore(tmp_path / "csms.sqlite") as other:
            for ref in [("CP1", "T2"), 2]:
                results = await asyncio.gather(
                    store.refunds.retry_held(ref, wallet=NOTHING),
                    other.refunds.settle_held(ref, NOTE, wallet=NOTHING),
                    return_exceptions=True,
                )
                done = [r for r in results if isinstance(r, (OwedRefund, ListedRefund))]
                refused = [r for r in results if isinstance(r, Exception)]
                assert (len(done), len(refused)) == (1, 1)
                now = await store.refunds.owed(ref)
                if isinstance(refused[0], RefundNotHeldError):  # retried first
                    assert now is not None
                    assert now.state == "sending"
                else:
                    assert isinstance(refused[0], UnknownRefundError)
                    assert now is None

    run_with(tmp_path, body)


def test_a_refund_reference_parses_strictly() -> None:
    assert parse_ref("session", "CP1/T/1") == ("CP1", "T/1")  # a charge point holds no "/"
    assert parse_ref("token", "17") == 17
    for ref in [("CP1", "T/1"), 17]:
        assert parse_ref(*ref_text(ref)) == ref
    for kind, text in [
        ("session", "CP1"),
        ("session", "/T1"),
        ("session", "CP1/"),
        ("token", "0"),
        ("token", "-1"),
        ("token", "1e3"),
        ("token", "٣"),
        ("token", "9" * 20),
        ("bill", "1"),
    ]:
        with pytest.raises(RefundRefError):
            parse_ref(kind, text)


def test_without_a_wallet_a_refund_whose_row_shows_a_send_is_not_settled(tmp_path: Path) -> None:
    """No wallet (no seed, no wallet file beside the database): a refund whose row shows that a
    send was tried (a later attempt, a failed try, held by the refunder) is refused, as its
    wallet's file must be missing, and stays owed; one paused before any try is settled, its
    answer showing no transfer. Before, every refund was settled unchecked."""

    async def body(store: CsmsStore) -> None:
        refunds = store.refunds
        await refunds.hold(("CP2", "A/B"))  # owed, never tried
        await refunds.hold(("CP1", "T1"))  # attempt 1, 2 tries
        for ref in [("CP1", "T2"), ("CP1", "T1"), 2]:
            with pytest.raises(RefundWalletError, match="shows a send"):
                await refunds.settle_held(ref, NOTE, wallet=None)
            assert await refunds.owed(ref) is not None
        settled = await refunds.settle_held(("CP2", "A/B"), NOTE, wallet=None)
        assert (settled.refund.amount, settled.transfer) == (200, None)
        assert settled.to_json()["transfer"] is None

    run_with(tmp_path, body)
