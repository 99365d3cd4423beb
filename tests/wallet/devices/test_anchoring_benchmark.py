"""`python -m benchmarks.anchoring --quick --json` runs and reports every figure it promises."""

from __future__ import annotations

import json

import pytest

from benchmarks import anchoring


def test_the_quick_benchmark_reports_measured_figures(capsys: pytest.CaptureFixture[str]) -> None:
    anchoring.main(["--quick", "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    for name in (
        "readings_per_s",
        "ed25519_verify_per_s",
        "proof_bytes",
        "proof_verify_us",
        "registrations_per_s",
    ):
        assert doc[name] > 0, name
    assert doc["ratio_to_verify_ceiling"] == pytest.approx(
        doc["readings_per_s"] / doc["ed25519_verify_per_s"], abs=0.01
    )
    assert doc["readings"] == anchoring.QUICK_READINGS
    assert doc["proof_json_bytes"] > doc["proof_bytes"]
    assert isinstance(doc["targets_met"], bool)
