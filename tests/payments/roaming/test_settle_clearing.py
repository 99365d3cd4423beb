"""Executing a clearing statement: only a statement every participant signed is paid, only by a
participant; each transfer has its own stable idempotency key; on a real devnet (slow) the
payers' transfers land at the payees' operator-key addresses as confirmed ledger transactions,
and a re-run pays nothing twice and reports the same transactions."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING

import httpx
import pytest
import trio

from examples._devnet import pay_with_faucet_key
from payments.roaming.batch import seal
from payments.roaming.clearing import execute, payee_address, transfer_key
from payments.roaming.errors import NettingError
from payments.roaming.netting import ClearingStatement, Obligation
from payments.roaming.store import RoamingStore
from payments.roaming.validation import Validator
from tangle.protocol.transaction import address_of
from tanglepay.cli import main as tanglepay
from tanglepay.devnet import launch, load_or_create
from tests.payments.roaming.settle_support import (
    AGREEMENT,
    HOME,
    HOME_KEY,
    NOW,
    T0,
    VISITED,
    VISITED_KEY,
    rated,
    record,
    signed,
)
from tests.payments.roaming.settle_support import (
    KEYS as KEYS_BY_TADIG,
)
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


def test_a_plan_from_the_carriers_acknowledgements_counts_each_batch_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both carriers keep the acknowledgement of the same batch: it is one obligation of the
    HPMN to the VPMN; a different acknowledgement of that batch in one database is refused."""
    batch = seal(AGREEMENT, VISITED_KEY, (rated(record(up=5_000, start=T0)),), sequence=1, now=NOW)
    ack = Validator(AGREEMENT, HOME_KEY).validate(batch, NOW)
    other = Validator(AGREEMENT, HOME_KEY).validate(batch, NOW + 1)
    for name, kept in (("home", ack), ("visited", ack), ("liar", other)):
        with RoamingStore(tmp_path / f"{name}.db") as store:
            store.put_agreement(signed(AGREEMENT))
            store.save_ack(kept)
    keys = [f"--participant={t}:{k.public_key.hex()}" for t, k in KEYS_BY_TADIG.items()]
    plan = ["roaming", "--json", "clearing", "plan", *keys, "--from", str(NOW - 10),
            "--to", str(NOW + 10), "-o", str(tmp_path / "plan.json")]  # fmt: skip
    both = ["--acks-from", str(tmp_path / "home.db"), "--acks-from", str(tmp_path / "visited.db")]
    assert tanglepay([*plan, *both]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["transfers"] == [[HOME, VISITED, ack.ack.accepted_amount]]
    assert tanglepay([*plan, *both, "--acks-from", str(tmp_path / "liar.db")]) == 3
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "NettingError"
    early = [*plan[:-4], "--to", str(NOW), "-o", str(tmp_path / "none.json"), *both]
    assert tanglepay(early) == 0  # acknowledged after the period: nothing to net
    assert json.loads(capsys.readouterr().out)["transfers"] == []
