"""`tanglepay roaming anchor ...` and `clearing ...` against a real node on loopback (a node and
its coordinator in a thread, `tests.wallet.test_client.node_in_a_thread`): the agreement, batch
headers and acknowledgements anchored once each, however often the command runs; a netting plan
made, signed by every participant and paid by one payer from its `tanglepay wallet`, once,
with the transaction and message ids printed; an unsigned plan refused by name."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import anyio

from payments.roaming._cli_base import SeedSigner
from payments.roaming.acknowledgement import verify_ack
from payments.roaming.batch import seal
from payments.roaming.store import RoamingStore
from payments.roaming.validation import Validator
from tangle.protocol.transaction import address_of
from tanglepay.cli import main as tanglepay
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
from tests.wallet.test_cli import CHEAP, secret_file
from tests.wallet.test_client import ACCOUNT, CONFIG, RETRY, node_in_a_thread
from wallet import Wallet
from wallet.client import NodeClient

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

SEEDS = {"AAAAA": "a1" * 32, "BBBBB": "b2" * 32, "CCCCC": "c3" * 32}


def roaming(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, object]]:
    code = tanglepay(["roaming", "--json", *map(str, args)])
    return code, json.loads(capsys.readouterr().out)


def test_anchors_once_and_a_signed_plan_paid_once_from_the_wallet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TANGLEPAY_NODE", "TANGLEPAY_WALLET_DIR", "TANGLEPAY_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / "carrier.db"
    agreement_file = tmp_path / "agreement.json"
    agreement_file.write_bytes(signed(AGREEMENT).encode())
    batch = seal(AGREEMENT, VISITED_KEY, (rated(record(up=10, start=T0)),), sequence=1, now=NOW)
    ack = Validator(AGREEMENT, HOME_KEY).validate(batch, NOW)
    verify_ack(ack, AGREEMENT)
    with RoamingStore(db) as store:
        store.save_batch(batch)
        store.save_ack(ack)
    with node_in_a_thread(tmp_path) as port:
        url = f"http://127.0.0.1:{port}"
        code, doc = roaming(
            capsys, "anchor", "agreement", agreement_file, "--db", db, "--node", url
        )
        assert code == 0, doc
        [first] = doc["anchors"]  # type: ignore[misc]
        assert first["new"] is True
        code, doc = roaming(
            capsys, "anchor", "agreement", agreement_file, "--db", db, "--node", url
        )
        assert doc["anchors"] == [dict(first, new=False)]  # the same message, not anchored again
        pair = ("--pair", VISITED, HOME)
        code, doc = roaming(capsys, "anchor", "batches", *pair, "--db", db, "--node", url)
        assert [(a["kind"], a["new"]) for a in doc["anchors"]] == [("batch", True), ("ack", True)]  # type: ignore[union-attr]
        code, doc = roaming(capsys, "anchor", "batches", *pair, "--db", db, "--node", url)
        assert {a["new"] for a in doc["anchors"]} == {False}  # type: ignore[union-attr]
        code, doc = roaming(capsys, "anchor", "list", "--db", db)
        assert sorted(a["kind"] for a in doc["anchors"]) == ["ack", "agreement", "batch"]  # type: ignore[union-attr]

        # a carrier's wallet, funded; three carriers' operator keys
        password = secret_file(tmp_path, "password", "carrier A")
        wallet = [
            "wallet",
            "--dir",
            str(tmp_path / "w"),
            "--node",
            url,
            "--password-file",
            password,
        ]
        assert tanglepay([*wallet, "create", *CHEAP]) == 0
        capsys.readouterr()
        assert tanglepay([*wallet, "--json", "address"]) == 0
        mine = json.loads(capsys.readouterr().out)["address"]

        async def fund() -> None:
            async with Wallet.open(
                ACCOUNT, url=url, state_path=tmp_path / "funder.db", config=CONFIG, retry=RETRY
            ) as funder:
                await funder.sync()
                await funder.send(mine, 50_000, idempotency_key=f"fund:{mine}")

        anyio.run(fund, backend="trio")
        keys = {}
        for tadig, seed in SEEDS.items():
            (tmp_path / f"{tadig}.key").write_text(seed)
            keys[tadig] = SeedSigner(bytes.fromhex(seed)).public_key
        plan = tmp_path / "plan.json"
        code, doc = roaming(
            capsys, "clearing", "plan", *(f"--participant={t}:{k.hex()}" for t, k in keys.items()),
            "--obligation=AAAAA:BBBBB:3000", "--obligation=BBBBB:CCCCC:5000",
            "--obligation=CCCCC:AAAAA:1000", "--obligation=AAAAA:CCCCC:2000",
            "--from", "1790000000", "--to", "1792592000", "-o", plan,
        )  # fmt: skip
        assert code == 0, doc
        assert doc["transfers"] == [["AAAAA", "CCCCC", 4000], ["BBBBB", "CCCCC", 2000]]
        signatures = []
        for tadig in SEEDS:
            code, doc = roaming(
                capsys, "clearing", "sign", plan, "--key-file", tmp_path / f"{tadig}.key"
            )
            assert doc["participant"] == tadig
            signatures.append(f"--signature={tadig}:{doc['signature']}")
        pay = (
            "clearing", "pay", plan, "--payer", "AAAAA", "--db", db, "--node", url,
            "--wallet-dir", tmp_path / "w", "--password-file", password,
        )  # fmt: skip
        code, doc = roaming(capsys, *pay, *signatures[:2])
        assert (code, doc["error"]["code"]) == (3, "NettingError")  # type: ignore[index]
        code, paid = roaming(capsys, *pay, *signatures)
        assert code == 0, paid
        [transfer] = paid["transfers"]  # type: ignore[misc]
        assert (transfer["index"], transfer["payee"], transfer["amount"]) == (0, "CCCCC", 4000)
        assert transfer["message_ids"]
        assert transfer["confirmed_index"] is not None
        code, again = roaming(capsys, *pay, *signatures)
        assert again == paid  # the same transaction: nothing paid twice
        code, shown = roaming(capsys, "clearing", "show", plan, "--db", db)
        assert shown["transfers"] == [  # B's transfer is not this carrier's: no ids here
            transfer,
            {"index": 1, "payer": "BBBBB", "payee": "CCCCC", "amount": 2000},
        ]

        async def balance() -> int:
            async with NodeClient(url) as node:
                return await node.balance(address_of(keys["CCCCC"]))

        assert anyio.run(balance, backend="trio") == 4000
