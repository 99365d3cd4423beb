"""`python -m benchmarks.registry --quick --json` runs, checks its own end state and prints one
JSON object with its figures, the ceiling and the verdict."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from benchmarks import registry

if TYPE_CHECKING:
    import pytest


def test_the_quick_benchmark_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    registry.main(["--quick", "--json"])
    (line,) = capsys.readouterr().out.splitlines()
    figures = json.loads(line)
    assert figures["registrations"] == registry.QUICK_REGISTRATIONS
    assert figures["registrations_per_s"] > 0
    assert figures["registrations_node_per_s"] > 0
    assert figures["ratio_node_to_verify_ceiling"] == (
        figures["registrations_node_per_s"] * 3 / figures["ed25519_verify_per_s"]
    )
    assert figures["targets_met"] == (figures["registrations_per_s"] >= 2_000)
    assert figures["one_change_devices"] == registry.QUICK_ONE_CHANGE_BASE
    assert 0 < figures["one_update_ms"] < figures["one_registration_ms"]
