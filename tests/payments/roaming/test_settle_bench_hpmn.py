"""`python -m benchmarks.roaming_hpmn --quick --json`: one HPMN takes its VPMN's batches the way
its HTTP handler does and prints one JSON object with the CPU per record per stage, the ceiling,
the target and `targets_met`; every batch is accepted and paid in full."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from benchmarks import roaming_hpmn
from payments.roaming.batch import SIGNED_HEADER_SIZE, SignedBatchHeader

if TYPE_CHECKING:
    import pytest


def test_the_quick_benchmark_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    roaming_hpmn.main(["--quick", "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["records"] == roaming_hpmn.QUICK_BATCHES * roaming_hpmn.BATCH
    stages = doc["stages_us_per_record"]
    assert set(stages) == {"decode", "validate_and_commit", "settle"}
    assert all(us > 0 for us in stages.values())
    assert abs(sum(stages.values()) - doc["us_per_record"]) < 0.01
    assert doc["blake2b_hashes_per_s"] * doc["us_per_record"] / 1e6 > 1  # slower than a hash
    assert doc["targets_met"] == (doc["us_per_record"] <= doc["target_us_per_record"])
    # every record accepted and paid: the channel's balance is the batches' total charge
    bodies = roaming_hpmn.batches(roaming_hpmn.QUICK_BATCHES)
    charged = sum(
        SignedBatchHeader.decode(b[:SIGNED_HEADER_SIZE]).header.total_charge for b in bodies
    )
    assert doc["paid_total"] == charged > 0
