"""`python -m examples.roaming --self-contained --json` end to end on a devnet of its own: the
agreement, every batch header, acknowledgement and dispute step anchored; the sample TAP file's
audit total flagged; a cloned SIM caught; payments over the ledger-funded two-way channel that
agree with the signed statement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_two_carriers_roam_settle_dispute_and_sign_a_statement() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "examples.roaming", "--self-contained", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    doc = json.loads(done.stdout.strip().splitlines()[-1])
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
