"""Executing a clearing statement: only a statement every participant signed is paid, only by a
participant; each transfer has its own stable idempotency key; on a real devnet (slow) the
payers' transfers land at the payees' operator-key addresses as confirmed ledger transactions,
and a re-run pays nothing twice and reports the same transactions."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import httpx
import pytest
import trio

from examples._devnet import pay_with_faucet_key
from payments.roaming.clearing import execute, payee_address, transfer_key
from payments.roaming.errors import NettingError
from payments.roaming.netting import ClearingStatement, Obligation
from tangle.protocol.transaction import address_of
from tanglepay.devnet import launch, load_or_create
from wallet import AccountKey, Wallet, WalletConfig
from wallet.client import NodeClient
from wallet.keys import AddressKey, ExtendedKey

if TYPE_CHECKING:
    from pathlib import Path

    from tangle.protocol.ids import Signature

KEYS = {t: AddressKey(ExtendedKey.from_seed(bytes([i + 1]) * 32)) for i, t in enumerate("ABC")}
NAMES = {"A": "AAAAA", "B": "BBBBB", "C": "CCCCC"}
CONFIG = WalletConfig(confirm_timeout_s=60, pow_threads=1)
FUNDS = 2_000_000


def statement() -> tuple[ClearingStatement, dict[str, Signature]]:
    """A owes B 300k, B owes C 500k, C owes A 100k, A owes C 200k: A -400k, B -200k, C +600k,
    so A pays C 400k and B pays C 200k (two transfers for three carriers)."""
    a, b, c = NAMES.values()
    obligations = [
        Obligation(debtor=a, creditor=b, amount=300_000),
        Obligation(debtor=b, creditor=c, amount=500_000),
        Obligation(debtor=c, creditor=a, amount=100_000),
        Obligation(debtor=a, creditor=c, amount=200_000),
    ]
    keys = {NAMES[t]: k.public_key for t, k in KEYS.items()}
    made = ClearingStatement.of(
        obligations, keys, period_start=1_790_000_000, period_end=1_792_592_000, currency="EUR"
    )
    return made, dict(made.sign(k) for k in KEYS.values())


def test_each_transfer_has_its_own_stable_key() -> None:
    made, _ = statement()
    assert [(t.payer, t.payee, t.amount) for t in made.transfers] == [
        ("AAAAA", "CCCCC", 400_000),
        ("BBBBB", "CCCCC", 200_000),
    ]
    keys = {transfer_key(made, i) for i in range(len(made.transfers))}
    assert len(keys) == 2
    assert transfer_key(statement()[0], 0) == transfer_key(made, 0)
    assert payee_address(made, "CCCCC") == address_of(KEYS["C"].public_key)
    with pytest.raises(NettingError, match="not a participant"):
        payee_address(made, "ZZZZZ")


async def test_an_unsigned_statement_or_an_outsider_is_refused_before_paying(
    tmp_path: Path,
) -> None:
    made, signatures = statement()
    account = AccountKey(secrets.token_bytes(32), 0)
    # a node nobody listens on: nothing may reach it
    async with Wallet.open(account, url="http://127.0.0.1:9", state_path=tmp_path / "w.db") as w:
        partial = {t: s for t, s in signatures.items() if t != "BBBBB"}
        with pytest.raises(NettingError, match="signatures of"):
            await execute(made, partial, w, "AAAAA")
        forged = dict(signatures, BBBBB=signatures["AAAAA"])
        with pytest.raises(NettingError, match="BBBBB does not verify"):
            await execute(made, forged, w, "AAAAA")
        with pytest.raises(NettingError, match="not a participant"):
            await execute(made, signatures, w, "ZZZZZ")
        assert await w.transfers() == []


@pytest.mark.slow
async def test_the_plan_is_paid_on_the_ledger_once(tmp_path: Path) -> None:
    made, signatures = statement()
    devnet = load_or_create(tmp_path / "devnet", nodes=1, interval_s=0.5)
    async with httpx.AsyncClient(timeout=10) as http, trio.open_nursery() as nursery:
        _, node = await launch(devnet.members, nursery, http)
        api = node.member.api
        runs = {}
        for payer in ("AAAAA", "BBBBB"):
            account = AccountKey(secrets.token_bytes(32), 0)
            state = tmp_path / f"{payer}.db"
            async with Wallet.open(account, url=api, state_path=state, config=CONFIG) as w:
                await pay_with_faucet_key(tmp_path / "devnet", api, w.address(0), FUNDS)
                await w.sync()
                first = await execute(made, signatures, w, payer, timeout_s=60)
                again = await execute(made, signatures, w, payer, timeout_s=60)
                assert again == first  # the same transactions: nothing paid twice
                assert len(await w.transfers()) == 1
                runs[payer] = first
        for payer, run in runs.items():
            (paid,) = run.transfers
            assert (paid.payer, paid.payee) == (payer, "CCCCC")
            assert paid.confirmed_index is not None
            assert paid.message_ids
        async with NodeClient(api) as client:
            assert await client.balance(address_of(KEYS["C"].public_key)) == 600_000
            for t in ("A", "B"):
                assert await client.balance(address_of(KEYS[t].public_key)) == 0
        nursery.cancel_scope.cancel()
