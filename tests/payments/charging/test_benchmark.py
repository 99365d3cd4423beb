"""`python -m benchmarks.charging --quick --json` runs end to end: every charge point connects,
every meter value sent is committed, payments are taken, the simulators' ceiling against the
trivial answerer is measured in the same run, the JSON names its figures, and `--profile` leaves
a readable profile of the CSMS and of each simulator process; and
`python -m benchmarks.charging_payments --quick --json` measures what a payment costs each side;
and `python -m benchmarks.charging_commit --quick --json` times group commits on an idle and on a
busy loop."""

from __future__ import annotations

import pstats
from typing import TYPE_CHECKING

import pytest

from tests._programs import run_json

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.slow
def test_the_quick_benchmark_runs_and_reports_its_figures(tmp_path: Path) -> None:
    quick = ["--quick", "--json", "--stations", "10", "--profile", str(tmp_path)]
    doc = run_json("-m", "benchmarks.charging", *quick, timeout=120)
    assert doc["connected_charge_points"] == 10
    assert doc["meter_values"] >= 10 * 2  # 3 s at one per second each, minus the last one
    assert doc["payments_per_s"] > 0
    assert doc["payments_merged"] >= 0
    assert doc["payment_asked_p99_ms"] >= doc["payment_p99_ms"] > 0  # each: ask <= send
    assert doc["response_p99_ms"] > 0
    assert doc["sqlite_fsync_commits_per_s"] > 0
    assert isinstance(doc["targets_met"], bool)
    assert isinstance(doc["simulators_saturated"], bool)
    assert doc["csms_cpu_ms_per_meter_value"] > 0
    assert doc["simulator_ceiling_offered_per_s"] == 3 * doc["meter_values_offered_per_s"]
    assert doc["simulator_ceiling_meter_values_per_s"] > doc["meter_values_per_s"]
    assert 0 <= doc["csms_kernel_share_of_cpu"] <= 1
    assert 0 <= doc["simulator_kernel_share_of_cpu"] <= 1
    assert doc["csms_loop_lag_p99_ms"] >= 0
    assert doc["csms_gc_cpu_ms_per_s"] >= 0
    assert isinstance(doc["csms_gc_full_collections"], int)
    assert doc["csms_commit_max_ms"] >= doc["csms_commit_p99_ms"] > 0
    assert doc["csms_rows_per_commit"] >= 1
    assert doc["csms_commit_p99_ms"] >= doc["csms_commit_fsync_p99_ms"] > 0
    assert doc["csms_commit_lock_wait_p99_ms"] >= 0
    assert len(doc["response_p99_ms_by_interval_phase"]) == doc["pay_every_meter_values"] == 2
    assert 1 <= len(doc["response_p99_ms_by_interval"]) <= 3  # 3 s: up to 3 intervals each
    assert doc["payments_together"] is False
    profiles = sorted(p.name.split("-")[0] for p in tmp_path.glob("*.prof"))
    assert profiles == ["csms", "simulator", "simulator"]  # --quick: two simulator processes
    for profile in tmp_path.glob("*.prof"):
        assert pstats.Stats(str(profile)).total_calls > 0  # type: ignore[attr-defined]


@pytest.mark.slow
def test_the_quick_payment_cost_benchmark_runs_and_reports_both_sides() -> None:
    doc = run_json("-m", "benchmarks.charging_payments", "--quick", "--json", timeout=180)
    assert doc["failed_charge_points"] == 0
    assert doc["payments"] >= doc["stations"]  # every charge point paid, each interval
    assert doc["meter_values_without_payments"] > 0
    assert doc["ed25519_sign_verify_ms"] > 0
    assert doc["payments"] <= doc["meter_values"]  # at most one payment per meter value
    assert doc["payment_p50_ms"] is not None  # (the CPU figures of --quick are sampling noise)
    assert isinstance(doc["targets_met"], bool)


@pytest.mark.slow
def test_the_quick_commit_benchmark_times_idle_and_busy_loops() -> None:
    doc = run_json("-m", "benchmarks.charging_commit", "--quick", "--json", timeout=60)
    for run in ("idle", "busy_default", "busy_tuned"):
        assert doc[f"{run}_writes"] > 0
        assert doc[f"{run}_write_p99_ms"] >= doc[f"{run}_write_p50_ms"] > 0
    assert doc["busy_tuned_loop_cpu_share"] > doc["idle_loop_cpu_share"]
    assert doc["tuned_p99_gain"] > 0
    assert doc["switch_interval_ms"] == 0.1
    assert isinstance(doc["targets_met"], bool)
