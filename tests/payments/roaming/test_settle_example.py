"""`python -m examples.roaming --self-contained --json` end to end on a devnet of its own: the
agreement, every batch header, acknowledgement and dispute step anchored; the sample TAP file's
audit total flagged; a cloned SIM caught; payments over the ledger-funded two-way channel that
agree with the signed statement; attached to a devnet with its faucet, round after round of
roaming, anchoring and settling."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from tangle.http.api import serve_api
from tanglepay.devnet import PARAMS, launch, load_or_create
from tanglepay.traffic import Traffic, faucet_app, follow
from tests._programs import run_json

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_two_carriers_roam_settle_dispute_and_sign_a_statement() -> None:
    doc = run_json("-m", "examples.roaming", "--self-contained", "--json", timeout=240)
    assert doc["ledger_deposit"] == doc["channel_deposit"]
    assert doc["tap_audit_total_flagged"] is True
    assert doc["cloned_sim_alerts"] >= 1
    assert doc["nrtrde_records"] == 7
    # the agreement, then a header and an ack per batch, then the dispute and its answer
    assert doc["anchors"] == 1 + 2 * doc["batches"] + 2
    directions = {(d[0], d[1]): d[2:] for d in doc["statement_directions"]}
    charged_to_home = directions[("WERFD", "XLKJE")][0]
    charged_to_visited = directions[("XLKJE", "WERFD")][0]
    paid = {(p[0], p[1]): p[3] for p in doc["payments"]}
    # the channel nets both directions: XLKJE paid the difference, WERFD paid back the credit
    assert paid[("XLKJE", "WERFD")] == charged_to_home - charged_to_visited
    assert paid[("WERFD", "XLKJE")] == doc["credit_note"]
    assert doc["channel_payee_balance"] == paid[("XLKJE", "WERFD")] - doc["credit_note"]


@pytest.mark.slow
async def test_attached_to_a_devnet_the_carriers_roam_round_after_round(tmp_path: Path) -> None:
    """`--node URL --faucet URL --forever` (bounded by `--rounds` here) against a devnet with its
    faucet service: each round batches both ways, anchors, acknowledges and settles."""
    devnet = load_or_create(tmp_path / "devnet", nodes=1, interval_s=0.5)
    traffic = Traffic(params=PARAMS, keys={key.address: key for key in devnet.accounts})
    async with httpx.AsyncClient(timeout=30) as client, trio.open_nursery() as nursery:
        _, node = await launch(devnet.members, nursery, client)
        api = node.member.api
        await nursery.start(partial(follow, traffic, client, api, lambda _: None))
        port = await nursery.start(serve_api, faucet_app(traffic, client, api), "127.0.0.1", 0)
        argv = [sys.executable, "-m", "examples.roaming", "--node", api, "--faucet",
                f"http://127.0.0.1:{port}/faucet", "--forever", "--rounds", "2",
                "--interval", "0.2"]  # fmt: skip
        with trio.fail_after(240):
            done = await trio.run_process(
                argv, cwd=ROOT, capture_stdout=True, capture_stderr=True, check=False
            )
        nursery.cancel_scope.cancel()
    assert done.returncode == 0, done.stderr.decode()[-4000:]
    first, *rounds = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert set(first["operator_api"]) == {"WERFD", "XLKJE"}
    assert set(first["backoffice_api"]) == {"WERFD", "XLKJE"}
    assert [r["round"] for r in rounds] == [1, 2]
    for r in rounds:
        assert r["accepted"] > 0
        assert r["note"] == ""
        assert r["payments"]  # the channel settled what the round made due
    assert rounds[1]["channel_sequence"] > rounds[0]["channel_sequence"]
    # the agreement, then per round a header and an ack for each of the two directions
    assert rounds[1]["anchors"] == 1 + 2 * 2 * 2
