"""`python -m benchmarks.roaming --quick --json` runs both carrier processes end to end, from TAP
3.12 files through the importer (kept in the VPMN's store) to durable payments, with every batch
header and acknowledgement anchored on a devnet of its own and confirmed, and prints one JSON
object with the measured figures, the ceiling, the CPU split per stage, the targets and
`targets_met` (the benchmark itself refuses a run whose durable payments differ from the
batches' charges)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_the_quick_benchmark_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.roaming", "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["records"] == 20_000
    assert doc["records_per_s"] > 0
    assert 0 < doc["record_to_payment_p50_s"] <= doc["record_to_payment_p99_s"]
    assert doc["blake2b_hashes_per_s"] > doc["records_per_s"]
    assert doc["paid_total"] > 0
    # every batch header (VPMN) and acknowledgement (HPMN) anchored and confirmed by a milestone
    assert doc["anchors"] == 2 * doc["records"] // doc["batch"]
    assert doc["anchors_confirmed"] == doc["anchors"]
    assert 0 < doc["anchor_p50_s"] <= doc["anchor_p99_s"]
    assert 0 < doc["committed_records_per_s"] <= doc["records_per_s"]
    assert doc["tap_files"] >= doc["pairs"]
    assert doc["tap_bytes"] > 100 * doc["records"]
    stages = doc["stages_cpu_s"]
    assert set(stages["vpmn"]) >= {"tap_import", "store_file", "rate", "seal", "store_batch",
                                   "store_ack", "other"}  # fmt: skip
    assert set(stages["hpmn"]) >= {"decode", "validate_and_commit", "settle", "other"}
    assert stages["vpmn"]["tap_import"] > 0
    assert stages["vpmn"]["after_last_payment"] >= 0
    assert doc["vpmn_us_per_record"] > 0
    assert stages["hpmn"]["validate_and_commit"] > 0
    assert doc["targets_met"] is False  # quick mode never covers the 10-million-record statement
