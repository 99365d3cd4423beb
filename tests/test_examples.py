"""The examples run end to end as the commands their docstrings give, in their self-contained
mode: each starts a devnet of its own (a coordinator and a node as processes), funds its payer
from the faucet's key, opens and tops up its channel on that ledger, and prints a JSON summary,
which must agree with itself, with the payee's store and with the ledger."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from examples import base_station, sensor_api
from tests._programs import run_json

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> dict[str, object]:
    return run_json(*argv, "--self-contained", "--json", timeout=120)


def check_ledger(doc: dict[str, object]) -> None:
    """The channel is on the ledger, open, with the deposit the payer holds (top-ups included)
    and at least what was paid."""
    assert doc["ledger_deposit"] == doc["deposit"]
    assert isinstance(doc["ledger_deposit"], int)
    assert isinstance(doc["paid"], int)
    assert doc["ledger_deposit"] >= doc["paid"]
    assert doc["ledger_closing"] is False
    assert doc["ledger_payer"] != doc["ledger_payee"]


@pytest.mark.slow
def test_sensor_api_reads_and_pays_per_reading() -> None:
    doc = run("-m", "examples.sensor_api")
    readings = 100
    assert doc["readings"] == readings
    assert doc["receipts"] == readings  # every answer carried the sensor's receipt, checked
    assert doc["paid"] == readings * sensor_api.PRICE
    assert doc["payer_sequence"] == readings
    assert doc["payee_durable_sequence"] == readings
    assert doc["payee_durable_balance"] == doc["paid"]
    assert doc["opened"] == 1
    assert doc["topped_up"] == 3  # 30 readings a deposit, 30 more a top-up
    check_ledger(doc)


@pytest.mark.slow
def test_base_station_meters_and_pays_per_mb() -> None:
    doc = run("-m", "examples.base_station")
    megabytes = 20
    assert doc["bytes"] == megabytes * 1_000_000
    assert doc["paid"] == doc["owed"] == megabytes * base_station.TARIFF.price
    assert doc["station_durable_balance"] == doc["paid"]
    # every payment got the station's signed receipt, checked by the carrier
    assert doc["station_durable_sequence"] == doc["payer_sequence"] == doc["receipts"]
    assert isinstance(doc["top_ups"], int)
    assert doc["top_ups"] >= 1
    check_ledger(doc)


@pytest.mark.parametrize("example", ["sensor_api", "base_station"])
def test_an_example_also_runs_by_its_file_path(example: str) -> None:
    """`python examples/NAME.py` finds the project's packages as `python -m` does (the full run
    above is the same code either way, so the file form only has to start and parse)."""
    done = subprocess.run(
        [sys.executable, f"examples/{example}.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.startswith(f"usage: {example}.py ")
