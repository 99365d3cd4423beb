"""`python -m examples.sensor_registry --self-contained --json` runs end to end on a devnet of its
own: issuers admitted, sensors registered, readings anchored, one proof checked offline by the
CLI in another process, the hijacked sensor quarantined and refused by gateway and node, a
constrained sensor's update refused alone and applied through its gateway."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._programs import run_json

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_the_sensor_registry_example_runs_end_to_end() -> None:
    doc = run_json("-m", "examples.sensor_registry", "--self-contained", "--json", timeout=240)
    assert doc["issuers_admitted_at"] < doc["registered_at"] < doc["anchored_at"]
    assert doc["anchored_at"] < doc["quarantined_at"]
    assert doc["batch_readings"] == 30
    assert doc["verify_exit_status"] == 0
    assert doc["verify_output"].startswith("proof ok: ")
    assert doc["gateway_serves_hijacked"] is False
    assert doc["gateway_refused"] == "UnknownDeviceError"
    assert doc["node_refused"] == "quarantined_device"
    assert doc["quarantined_at"] < doc["constrained_registered_at"] < doc["through_gateway_at"]
    assert doc["alone_refused"] == "unserved_device"
