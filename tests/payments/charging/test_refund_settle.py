"""Settling a held refund consults the CPO wallet's own record of its transfer
(`refund_desk.RefundDesk.settle_held`, the back office's `.../settle`, the CLI's
`refund-settle`): refused by name while the transfer under the refund's current key is pending
(it may still confirm), confirmed (the ledger paid it) or abandoned after it was attached (its
payload may be attached again and apply), allowed once it failed (an abandoned one, once
another confirmed transfer spent one of its inputs) or was never recorded; the listing shows
each refund's transfer. The
wallet is a real state file beside the CSMS's database, which its owner keeps open and changes
while the back office and the CLI read it (read only). Before, settling deleted a `paused`
refund whose transfer was still in flight: when it confirmed, the driver was paid twice."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sqlite3
import threading
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from payments.charging.backoffice import backoffice_app
from payments.charging.cli import main as charging_main
from payments.charging.csms import Csms
from payments.charging.errors import (
    RefundTransferLiveError,
    RefundWalletError,
    UnknownRefundError,
)
from payments.charging.refund_attempts import (
    REFUND_KEY,
    TransferState,
    attempt_key,
    unbind_refund_key,
)
from payments.charging.refund_wallet import WALLET_READ_S, state_records, wallet_state_path
from payments.charging.store import CsmsStore
from tangle.protocol.ids import OutputId, TransactionId, blake2b_256
from tests.builders import address, key
from tests.builders import transfer as signed_transfer
from tests.wallet.test_client import ACCOUNT
from wallet.idempotency import account_fingerprint, idempotency_hash
from wallet.records import Draft, TransferStatus
from wallet.state import WalletState

from .test_backoffice import ADMIN, OPERATOR
from .test_refund_desk import CHANNEL, NOTE, NOTHING, owe
from .test_restart import CsmsProcess

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from payments.charging.refund_desk import RefundRef
    from wallet.coin_selection import Coin
    from wallet.records import Transfer

DRIVER = key(11)
SESSIONS = [  # charge point, transaction, amount, state, attempt, tries
    ("CP1", "PENDING", 540, "paused", 0, 1),
    ("CP1", "PAID", 300, "paused", 1, 1),
    ("CP1", "FAILED", 200, "held", 3, 4),
    ("CP1", "NEVER", 150, "paused", 0, 0),
    ("CP1", "ABANDONED", 120, "held", 0, 1),
    ("CP1", "SPENT", 110, "held", 0, 1),
]
TOKENS = [("CARD-Y", 450, "paused", 2, 3)]  # token refund 1, pending under attempt 2


def _key(transaction: str) -> bytes:
    """The key of session `CP1/transaction`'s current attempt (as `SESSIONS` has it)."""
    [attempt] = [row[4] for row in SESSIONS if row[1] == transaction]
    return attempt_key(REFUND_KEY + b"CP1/" + transaction.encode(), attempt)


TOKEN_KEY = attempt_key(unbind_refund_key(CHANNEL, "CARD-Y", 1), 2)


def _record(
    state: WalletState, idempotency_key: bytes, amount: int, spends: bytes | None = None
) -> bytes:
    """Record a signed transfer of `amount` to the driver under `idempotency_key` in `state`,
    as `Wallet.send` does before it attaches it, spending an input of its own (or the input of
    the transfer under key `spends`); its key hash."""
    key_hash = idempotency_hash(idempotency_key)
    spent = OutputId.of(TransactionId(blake2b_256(spends or idempotency_key)), 0)
    tx = signed_transfer([(spent, key(7))], [(address(DRIVER), amount)])

    def build(coins: list[Coin], change_index: int) -> Draft:
        del coins, change_index
        return Draft(transaction=tx, recipient=address(DRIVER), amount=amount, change=None)

    state.create_transfer(idempotency_key, key_hash, key_hash, build, 1)
    return key_hash


def _attached(
    state: WalletState, idempotency_key: bytes, amount: int, spends: bytes | None = None
) -> bytes:
    """`_record`, then attached once (submitted): it may confirm."""
    key_hash = _record(state, idempotency_key, amount, spends)
    state.add_attachment(key_hash, message_id=None, raw=None, cmi=1, now_ms=2)
    return key_hash


@contextlib.contextmanager
def _wallet(db: Path) -> Iterator[WalletState]:
    """The CPO's wallet state beside `db` (`<db>.wallet.sqlite`), as the CSMS's refunder left
    it: the transfer of `CP1/PENDING` and of token refund 1 submitted and unconfirmed,
    `CP1/PAID`'s confirmed, `CP1/FAILED`'s conflicting (`input_spent`), `CP1/ABANDONED`'s
    and `CP1/SPENT`'s attached, expired and abandoned by its owner (`CP1/SPENT`'s input then
    spent by another confirmed transfer of the wallet), and nothing under `CP1/NEVER`'s key.
    Held open (by its owner) while the test runs."""
    state = WalletState.open(wallet_state_path(db), account=account_fingerprint(ACCOUNT))
    try:
        _attached(state, _key("PENDING"), 540)
        _attached(state, TOKEN_KEY, 450)
        state.confirm(_attached(state, _key("PAID"), 300), 2, [], 3)
        state.fail(_attached(state, _key("FAILED"), 200), "input_spent", 3)
        for transaction, amount in [("ABANDONED", 120), ("SPENT", 110)]:
            abandoned = _attached(state, _key(transaction), amount)
            state.expire(abandoned, 3)
            state.abandon(abandoned, 10, 11)
        state.confirm(_attached(state, b"another payment", 50, _key("SPENT")), 4, [], 12)
        yield state
    finally:
        state.close()


async def _owing(db: Path) -> None:
    async with CsmsStore(db) as store:
        await owe(store, SESSIONS, TOKENS)


def _states(db: Path) -> dict[str, str]:
    """Each refund still owed (`KIND/ID`) and its transfer, as the CLI lists them."""
    return {f"{r['kind']}/{r['id']}": r["transfer"] for r in _cli(db, "refunds")}


def test_the_back_office_settles_only_a_refund_whose_transfer_cannot_pay_it(
    tmp_path: Path,
) -> None:
    """Listed, each refund shows its transfer; settling the pending, the confirmed and the
    abandoned ones answers 409 `refund_transfer_live` naming the key and the transfer's state
    (the confirmed one: retry it; the abandoned one: not `wallet abandon`, it is abandoned
    already), and changes nothing; the failed, the never recorded and the abandoned one whose
    input another confirmed transfer spent (listed failed) are settled. Once the wallet's owner
    records the pending transfer failed for good, settling it goes through; the token refund's,
    confirmed meanwhile, stays refused."""
    db = tmp_path / "csms.sqlite"

    async def main(owner: WalletState) -> None:
        async with CsmsStore(db) as store, state_records(wallet_state_path(db)) as wallet:
            await owe(store, SESSIONS, TOKENS)
            csms = Csms(store=store, pricing=lambda t, wh, s: 0)
            app = backoffice_app(csms, None, OPERATOR, refund_wallet=wallet)
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://csms.test") as http:
                listed = (await http.get("/api/refunds?state=held", headers=ADMIN)).json()
                assert {r["id"]: r["transfer"] for r in listed["refunds"]} == {
                    "CP1/ABANDONED": "abandoned",
                    "CP1/FAILED": "failed",
                    "CP1/NEVER": "none",
                    "CP1/PAID": "confirmed",
                    "CP1/PENDING": "pending",
                    "CP1/SPENT": "failed",
                    "1": "pending",
                }

                async def settle(path: str) -> httpx.Response:
                    url = f"/api/refunds/{path}/settle"
                    return await http.post(url, json={"note": NOTE}, headers=ADMIN)

                for path, refund_key, state, then in [
                    ("session/CP1/PENDING", _key("PENDING"), "pending", "may still confirm"),
                    ("session/CP1/PAID", _key("PAID"), "confirmed", "retry it"),
                    ("session/CP1/ABANDONED", _key("ABANDONED"), "abandoned", "attaches it"),
                    ("token/1", TOKEN_KEY, "pending", "may still confirm"),
                ]:
                    refused = await settle(path)
                    assert refused.status_code == 409, path
                    error = refused.json()["error"]
                    assert error["code"] == "refund_transfer_live"
                    assert f"{refund_key.decode()!r} is {state}" in error["message"]
                    assert then in error["message"]
                    assert "wallet abandon" not in error["message"]
                for path in ["session/CP1/FAILED", "session/CP1/SPENT", "session/CP1/NEVER"]:
                    settled = await settle(path)
                    assert (settled.status_code, settled.json()["settled"]) == (200, True), path
                left = (await http.get("/api/refunds", headers=ADMIN)).json()["refunds"]
                assert [r["id"] for r in left] == [
                    "CP1/ABANDONED",
                    "CP1/PAID",
                    "CP1/PENDING",
                    "1",
                ]

                owner.fail(idempotency_hash(_key("PENDING")), "input_spent", 4)
                owner.confirm(idempotency_hash(TOKEN_KEY), 5, [], 5)
                assert (await settle("session/CP1/PENDING")).status_code == 200
                assert (await settle("token/1")).json()["error"]["code"] == "refund_transfer_live"
                doc = (await http.get("/openapi.json")).json()["paths"]
                answers = doc["/api/refunds/{kind}/{id}/settle"]["post"]["responses"]
                assert "refund_transfer_live" in answers["409"]["description"]

    with _wallet(db) as owner:
        asyncio.run(asyncio.wait_for(main(owner), 20))


def _cli(db: Path, *args: str) -> Any:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert charging_main(["--db", str(db), "--json", *args]) == 0
    return json.loads(buffer.getvalue())


def test_the_cli_refuses_to_settle_a_refund_whose_transfer_may_confirm_or_confirmed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI beside the CSMS reads the wallet's state file read only: `refunds` shows each
    transfer, `refund-settle` of a pending or a confirmed one is one line on stderr naming the
    key and what to do, exit status 2, and nothing changes; a failed one is settled."""
    db = tmp_path / "csms.sqlite"
    asyncio.run(_owing(db))
    with _wallet(db):
        assert _states(db) == {
            "session/CP1/ABANDONED": "abandoned",
            "session/CP1/FAILED": "failed",
            "session/CP1/NEVER": "none",
            "session/CP1/PAID": "confirmed",
            "session/CP1/PENDING": "pending",
            "session/CP1/SPENT": "failed",
            "token/1": "pending",
        }
        capsys.readouterr()
        for transaction, then in [("PENDING", "may still confirm"), ("PAID", "retry it")]:
            settle = ["--db", str(db), "refund-settle", "session", f"CP1/{transaction}"]
            assert charging_main([*settle, "--note", NOTE]) == 2
            err = capsys.readouterr().err
            assert err.startswith("error: session refund ")
            assert err.count("\n") == 1
            assert _key(transaction).decode() in err
            assert then in err
        settled = _cli(db, "refund-settle", "session", "CP1/FAILED", "--note", NOTE)
        assert (settled["settled"], settled["amount"], settled["transfer"]) == (True, 200, "failed")
        assert "session/CP1/FAILED" not in _states(db)
        assert "session/CP1/PENDING" in _states(db)


def test_without_a_wallet_nothing_was_sent_and_settling_is_not_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No wallet state file beside the database (a CSMS never run with a refund seed): the
    listing shows no transfer (null), settling a paused refund never tried goes through
    (`transfer` null in its answer), one whose row shows a failed try is refused (its wallet's
    file is missing), and the CLI creates no wallet file. A wallet file that cannot be read
    (damaged; of schema version 1, which only its owner upgrades) refuses settling (exit 2),
    and the listing shows each transfer `unknown`."""
    db = tmp_path / "csms.sqlite"
    asyncio.run(_owing(db))
    assert set(_states(db).values()) == {None}
    capsys.readouterr()
    tried = ["--db", str(db), "refund-settle", "session", "CP1/PENDING", "--note", NOTE]
    assert charging_main(tried) == 2
    assert "shows a send (attempt 0, 1 failed tries, paused)" in capsys.readouterr().err
    assert not wallet_state_path(db).exists()
    for unreadable in [_damaged, _version_1]:
        unreadable(wallet_state_path(db))
        capsys.readouterr()
        settle = ["--db", str(db), "refund-settle", "session", "CP1/NEVER", "--note", NOTE]
        assert charging_main(settle) == 2
        assert "the CPO wallet's records cannot be read" in capsys.readouterr().err
        assert set(_states(db).values()) == {"unknown"}
        wallet_state_path(db).unlink()
    settled = _cli(db, "refund-settle", "session", "CP1/NEVER", "--note", NOTE)
    assert (settled["settled"], settled["transfer"]) == (True, None)
    assert "session/CP1/PENDING" in _states(db)
    assert not wallet_state_path(db).exists()


def _damaged(path: Path) -> None:
    path.write_bytes(b"not a wallet state" * 100)


def _version_1(path: Path) -> None:
    """A wallet state as a version before idempotency keys were kept left it (schema 1)."""
    WalletState.open(path, account=account_fingerprint(ACCOUNT)).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        db.commit()


def test_the_csms_serves_beside_a_wallet_it_cannot_read_and_settles_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`charging serve` without a refund seed, beside a damaged wallet state file: it starts
    (before, it exited with status 2 and could never start), lists each transfer `unknown`,
    and answers a settlement 503 `refund_wallet_unreadable`, changing nothing."""
    db = tmp_path / "csms.sqlite"
    asyncio.run(_owing(db))
    _damaged(wallet_state_path(db))
    monkeypatch.setenv("CSMS_OPERATOR_TOKEN", OPERATOR)
    csms = CsmsProcess(db)
    try:
        api = csms.started["api"]
        listed = httpx.get(f"{api}/api/refunds", headers=ADMIN, timeout=10).json()["refunds"]
        assert {r["transfer"] for r in listed} == {"unknown"}
        settle = f"{api}/api/refunds/session/CP1/NEVER/settle"
        refused = httpx.post(settle, json={"note": NOTE}, headers=ADMIN, timeout=10)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "refund_wallet_unreadable"
    finally:
        csms.stop()
    assert "session/CP1/NEVER" in _states(db)


def test_one_record_that_cannot_be_read_is_unknown_and_is_not_settled(tmp_path: Path) -> None:
    """One transfer whose stored payload does not decode: the listing shows it `unknown` and
    every other transfer as it is (before, the whole listing failed), and settling its refund
    is refused (503)."""
    db = tmp_path / "csms.sqlite"

    async def main() -> None:
        async with CsmsStore(db) as store, state_records(wallet_state_path(db)) as wallet:
            await owe(store, SESSIONS, TOKENS)
            page = await store.refunds.page(wallet=wallet)
            shown = {r.refund.ref: r.transfer for r in page.refunds}
            assert shown[("CP1", "FAILED")] == TransferState.UNKNOWN
            assert shown[("CP1", "PAID")] == TransferState.CONFIRMED
            with pytest.raises(RefundWalletError):
                await store.refunds.settle_held(("CP1", "FAILED"), NOTE, wallet=wallet)
            assert await store.refunds.owed(("CP1", "FAILED")) is not None

    with _wallet(db):
        with contextlib.closing(sqlite3.connect(wallet_state_path(db))) as writer:
            hashed = idempotency_hash(_key("FAILED"))
            writer.execute("UPDATE transfers SET payload = x'00' WHERE key_hash = ?", (hashed,))
            writer.commit()
        asyncio.run(asyncio.wait_for(main(), 20))


class _RetriedMeanwhile:
    """The CPO's wallet, with nothing recorded, read while a second store on the database (the
    CLI beside the CSMS) retries the refund being settled."""

    def __init__(self, other: CsmsStore, ref: RefundRef) -> None:
        self.other = other
        self.ref = ref
        self.retry: asyncio.Future[object] | None = None

    async def transfer(self, key: bytes, /) -> Transfer | None:
        retry = self.other.refunds.retry_held(self.ref, wallet=NOTHING)
        self.retry = asyncio.ensure_future(retry)
        await asyncio.sleep(0.3)
        assert not self.retry.done()  # it waits for the settlement's commit
        return None


def test_the_wallet_is_read_while_the_settlement_holds_the_row(tmp_path: Path) -> None:
    """The key checked is the key of the row deleted: an operator's retry from another process
    while the wallet is read waits for the settlement, and then finds nothing owed. Had the
    check run before the delete, the retry would have put the refund back in the refunder's
    hands (a transfer under its key could start) and the settlement would then have deleted
    it, or been refused, on a key nobody checked."""
    db = tmp_path / "csms.sqlite"

    async def main() -> None:
        async with CsmsStore(db) as store, CsmsStore(db) as other:
            await owe(store, SESSIONS, TOKENS)
            wallet = _RetriedMeanwhile(other, ("CP1", "NEVER"))
            settled = await store.refunds.settle_held(("CP1", "NEVER"), NOTE, wallet=wallet)
            assert (settled.refund.state, settled.transfer) == ("paused", TransferState.NONE)
            assert wallet.retry is not None
            with pytest.raises(UnknownRefundError):
                await wallet.retry

    asyncio.run(asyncio.wait_for(main(), 20))


class _HeldFile:
    """The CPO's wallet whose file a writer holds (`WalletState`'s lock, held by a wallet
    write waiting on another process's lock): every read waits, in a worker thread, until
    `held` is released."""

    def __init__(self) -> None:
        self.held = threading.Lock()
        self.held.acquire()
        self.reads = 0

    async def transfer(self, key: bytes, /) -> Transfer | None:
        self.reads += 1
        await asyncio.to_thread(self._wait)
        return None

    def _wait(self) -> None:
        with self.held:
            pass

    async def spenders(self, inputs: Sequence[OutputId], /) -> dict[OutputId, bytes]:
        return {}


def test_a_held_wallet_file_refuses_settling_in_a_second_and_stalls_no_charger(
    tmp_path: Path,
) -> None:
    """A settlement reads the wallet holding the database's write lock: with the wallet's file
    held, it is refused (`RefundWalletError`) after `WALLET_READ_S`, not after the wallet's
    30 s busy timeout, the refund stays owed, and a write of the CSMS (a charger's group
    commit) waited only that long; the listing shows `unknown` after one such wait, not one
    per refund. Before, both waited as long as the file was held."""
    db = tmp_path / "csms.sqlite"

    async def main() -> None:
        async with CsmsStore(db) as store:
            await owe(store, SESSIONS, TOKENS)
            wallet = _HeldFile()
            clock = asyncio.get_running_loop().time
            began = clock()
            settling = asyncio.ensure_future(
                store.refunds.settle_held(("CP1", "NEVER"), NOTE, wallet=wallet)
            )
            await asyncio.sleep(0.1)
            await store.refunds.hold(("CP1", "NEVER"))  # a write: waits for the settlement
            wrote = clock() - began
            with pytest.raises(RefundWalletError, match="no answer within"):
                await settling
            assert WALLET_READ_S <= wrote < WALLET_READ_S + 2
            assert await store.refunds.owed(("CP1", "NEVER")) is not None
            began = clock()
            page = await store.refunds.page(wallet=wallet)
            assert {r.transfer for r in page.refunds} == {TransferState.UNKNOWN}
            assert clock() - began < WALLET_READ_S + 2
            assert wallet.reads == 2
            wallet.held.release()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_held_refund_moves_to_a_new_key_only_once_its_transfer_cannot_pay_it(
    tmp_path: Path,
) -> None:
    """Retrying a `held` refund sends it under its next attempt's key: refused while its
    transfer under the current key was abandoned after it was attached (it may be attached
    again and apply: 409 `refund_transfer_live`) and with no wallet at all (a held refund was
    sent), allowed once that transfer can never apply (its input spent by another confirmed
    transfer). Before, a retry moved it to a new key unchecked: the driver could be paid by
    both transfers."""
    db = tmp_path / "csms.sqlite"

    async def main() -> None:
        async with CsmsStore(db) as store, state_records(wallet_state_path(db)) as wallet:
            await owe(store, SESSIONS, TOKENS)
            refunds = store.refunds
            with pytest.raises(RefundTransferLiveError, match="is abandoned"):
                await refunds.retry_held(("CP1", "ABANDONED"), wallet=wallet)
            with pytest.raises(RefundWalletError, match="shows a send"):
                await refunds.retry_held(("CP1", "SPENT"), wallet=None)
            still = await refunds.owed(("CP1", "ABANDONED"))
            assert still is not None
            assert (still.state, still.attempt) == ("held", 0)
            retried = await refunds.retry_held(("CP1", "SPENT"), wallet=wallet)
            assert (retried.state, retried.attempt, retried.key) == (
                "sending",
                1,
                attempt_key(_key("SPENT"), 1),
            )

    with _wallet(db):
        asyncio.run(asyncio.wait_for(main(), 20))


def test_a_transfer_signed_only_or_expired_is_pending_and_refuses_settling(tmp_path: Path) -> None:
    """A transfer recorded but never attached (the refunder's send stopped after recording it)
    and one whose every attachment expired are both pending: either may still confirm (the
    first if its send resumes, the second if anyone attaches it again), so settling is refused."""
    db = tmp_path / "csms.sqlite"

    async def main() -> None:
        async with CsmsStore(db) as store, state_records(wallet_state_path(db)) as wallet:
            await owe(store, SESSIONS, TOKENS)
            for transaction in ["NEVER", "PENDING"]:
                with pytest.raises(RefundTransferLiveError, match="is pending"):
                    await store.refunds.settle_held(("CP1", transaction), NOTE, wallet=wallet)

    with _wallet(db) as owner:
        _record(owner, _key("NEVER"), 150)  # signed, never attached
        owner.expire(idempotency_hash(_key("PENDING")), 5)
        for state in [TransferStatus.SIGNED, TransferStatus.EXPIRED]:
            assert state in {t.status for t in owner.transfers()}
        asyncio.run(asyncio.wait_for(main(), 20))
