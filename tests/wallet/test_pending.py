"""Pending transfers after an interrupted send (issue 16): every transfer keeps its idempotency
key for `history`, is found again by key or transaction id, and is abandoned only when its
transaction can no longer confirm; incoming outputs are recorded; a schema-1 state file is
upgraded. Against the real in-process node of `test_wallet_client` (sqlite ledger,
coordinator, ASGI app)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from tangle.protocol.ids import OutputId, TransactionId
from tests.builders import address
from tests.wallet.test_client import ACCOUNT, BOB, CAROL, CONFIG, RETRY, open_wallet, running
from wallet import (
    AlreadyConfirmedError,
    AmbiguousTransferError,
    NodeUnavailableError,
    StillPendingError,
    TransferFailedError,
    TransferStatus,
    UnknownTransferError,
    WalletState,
    WalletStateError,
)
from wallet.idempotency import account_fingerprint
from wallet.pending import abandon, find_transfer

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
V1_SHA256 = "34c647e67ae05761f0f38ce63cdf233f1668be69aa6597e8ff6b94da15708d76"


async def test_a_lost_idempotency_key_is_read_back_and_names_the_transfer(tmp_path: Path) -> None:
    async with running(tmp_path) as h, open_wallet(h, tmp_path / "w.db") as w:
        await h.fund([(ACCOUNT.address(i), 100_000) for i in (1, 2)])  # one coin per send
        await w.sync()
        stuck = await w.send(address(BOB), 10_000, idempotency_key="invoice-7", wait=False)
        anonymous = await w.send(address(CAROL), 20_000)  # the wallet made the key
        recorded = {t.transaction_id: t for t in await w.transfers()}
        assert recorded[stuck.transaction_id].key_text == "invoice-7"
        made_up = recorded[anonymous.transaction_id].key_text
        assert made_up is not None
        assert len(made_up) == 32
        # by key, by a transaction id prefix, by the whole id; the key repeats the send
        for name in ("invoice-7", stuck.transaction_id.hex()[:8], stuck.transaction_id.hex()):
            assert find_transfer(w.state, name).key_hash == stuck.key_hash
        assert find_transfer(w.state, made_up).transaction_id == anonymous.transaction_id
        assert (await w.resume(made_up)).transaction_id == anonymous.transaction_id
        done = await w.resume(find_transfer(w.state, stuck.transaction_id.hex()[:12]))
        assert done.status is TransferStatus.CONFIRMED
        with pytest.raises(UnknownTransferError):
            find_transfer(w.state, "invoice-8")
        with pytest.raises(UnknownTransferError):  # too short to be a prefix
            find_transfer(w.state, stuck.transaction_id.hex()[:7])
        # a key that is also a prefix of another transfer's id names two transfers
        clash = stuck.transaction_id.hex()[:8]
        await w.send(address(BOB), 30_000, idempotency_key=clash)
        with pytest.raises(AmbiguousTransferError):
            find_transfer(w.state, clash)


async def test_abandon_frees_a_transfer_never_handed_to_a_node(tmp_path: Path) -> None:
    async with running(tmp_path) as h, open_wallet(h, tmp_path / "w.db") as w:
        await w.sync()
        h.refuse_tips = True  # signed and recorded, then the sender loses the node
        with pytest.raises(NodeUnavailableError):
            await w.send(address(BOB), 10_000, idempotency_key="orphan")
        h.refuse_tips = False
        (orphan,) = await w.transfers()
        assert orphan.status is TransferStatus.SIGNED
        assert (await w.balance()).reserved == 1_000_000
        abandoned = await abandon(w, orphan, online=False)  # no node needed: never published
        assert abandoned.status is TransferStatus.FAILED
        assert abandoned.failure == "abandoned"
        assert (await w.balance()).reserved == 0
        assert await abandon(w, abandoned, online=True) == abandoned  # again: as it stands
        with pytest.raises(TransferFailedError, match="abandoned"):
            await w.send(address(BOB), 10_000, idempotency_key="orphan")
        assert h.submitted == []  # it never reached the node
        paid = await w.send(address(BOB), 10_000, idempotency_key="orphan-2")
        with pytest.raises(AlreadyConfirmedError):
            await abandon(w, paid, online=True)


async def test_abandoning_a_transfer_that_may_still_confirm_is_refused_no_double_spend(
    tmp_path: Path,
) -> None:
    async with (
        running(tmp_path, tick_s=0.01) as h,
        open_wallet(h, tmp_path / "w.db", retry=RETRY) as w,
    ):
        await w.sync()
        await h.wait_for_index(10)
        h.lazy_tips = 1  # its only attachment will never be confirmed, but nobody knows yet
        stuck = await w.send(address(BOB), 10_000, idempotency_key="stuck", wait=False)
        assert stuck.status is TransferStatus.SUBMITTED
        assert stuck.last_cmi is not None
        with pytest.raises(StillPendingError) as offline:
            await abandon(w, stuck, online=False)
        assert offline.value.expires_at is None
        with pytest.raises(StillPendingError) as online:
            await abandon(w, stuck, online=True)
        assert online.value.expires_at == stuck.last_cmi + CONFIG.expire_after
        assert (await w.balance()).reserved == 1_000_000  # its input stays held
        submitted = len(h.submitted)
        await h.wait_for_index(stuck.last_cmi + CONFIG.expire_after)
        abandoned = await abandon(w, stuck, online=True)  # settles first: it expired
        assert abandoned.status is TransferStatus.FAILED
        assert abandoned.failure == "abandoned"
        with pytest.raises(TransferFailedError, match="abandoned"):
            await w.resume("stuck")  # never re-attached
        assert len(h.submitted) == submitted
        paid = await w.send(address(CAROL), 999_000, idempotency_key="instead")
        assert paid.inputs == stuck.inputs  # at most one of the two can ever confirm
        assert await h.balance_of(address(BOB)) == 0
        assert await h.balance_of(address(CAROL)) == 999_000


async def test_history_keeps_received_outputs_but_not_change(tmp_path: Path) -> None:
    async with running(tmp_path) as h, open_wallet(h, tmp_path / "w.db") as w:
        await w.sync()
        (genesis,) = await w.received()
        assert (genesis.address, genesis.amount) == (ACCOUNT.address(0), 1_000_000)
        await h.fund([(ACCOUNT.address(1), 5_000)])
        sent = await w.send(address(BOB), 600_000, idempotency_key="spend-genesis")
        assert sent.change > 0
        await w.sync()
        received = await w.received()
        assert [(r.address, r.amount) for r in received] == [
            (ACCOUNT.address(0), 1_000_000),  # spent by now, still shown
            (ACCOUNT.address(1), 5_000),
        ]
        assert sent.transaction_id not in {r.transaction_id for r in received}
        assert received[1].ledger_index >= 1


def _load_v1(tmp_path: Path) -> Path:
    script = (VECTORS / "wallet_state_v1.sql").read_bytes()
    assert hashlib.sha256(script).hexdigest() == V1_SHA256
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path)
    db.executescript(script.decode())
    db.close()
    return path


def test_a_schema_1_state_file_is_upgraded_in_place(tmp_path: Path) -> None:
    path = _load_v1(tmp_path)
    fingerprint = account_fingerprint(ACCOUNT)
    for _ in range(2):  # upgraded once, then opened as it is
        state = WalletState.open(path, account=fingerprint)
        try:
            (transfer,) = state.transfers()
            assert transfer.idempotency_key is None  # schema 1 kept only its hash
            assert transfer.key_text is None
            assert transfer.status is TransferStatus.SUBMITTED
            assert state.balance().reserved == 5_000
            made_here = TransactionId(bytes([9]) * 32)
            assert [r.output_id for r in state.received()] == [
                OutputId.of(made_here, 0),
                OutputId.of(made_here, 1),
            ]
            assert find_transfer(state, transfer.transaction_id.hex()[:8]) == transfer
        finally:
            state.close()
    db = sqlite3.connect(path)
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == ("2",)
    db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(WalletStateError, match="schema version 3"):
        WalletState.open(path, account=fingerprint)


async def test_a_recorded_transfer_is_handed_to_no_node_until_resumed(tmp_path: Path) -> None:
    """`Wallet.record` signs and records a transfer (its inputs reserved) and attaches nothing:
    Bob has nothing, a repeat returns the same record, and `resume` attaches it and follows it
    to its milestone once. Once confirmed, `spenders` names it as the spender of each of its
    inputs (and of no other output)."""
    async with running(tmp_path) as h, open_wallet(h, tmp_path / "w.db") as w:
        await w.sync()
        recorded = await w.record(address(BOB), 10_000, idempotency_key="refund-1")
        assert (recorded.status, recorded.attachments) == (TransferStatus.SIGNED, ())
        again = await w.record(address(BOB), 10_000, idempotency_key="refund-1")
        assert again.transaction_id == recorded.transaction_id
        assert await h.balance_of(address(BOB)) == 0
        assert await w.spenders(recorded.inputs) == {}
        done = await w.resume(recorded)
        assert done.status is TransferStatus.CONFIRMED
        assert await h.balance_of(address(BOB)) == 10_000
        other = OutputId.of(TransactionId(hashlib.blake2b(b"x", digest_size=32).digest()), 0)
        spent = await w.spenders([*recorded.inputs, other])
        assert spent == dict.fromkeys(recorded.inputs, recorded.key_hash)
