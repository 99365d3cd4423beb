"""The examples run end to end in their self-contained mode: in this process (fast), and as the
commands their docstrings give (slow: a Python process each)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from examples import base_station, sensor_api

ROOT = Path(__file__).resolve().parent.parent


def check_sensor(doc: dict[str, object], readings: int) -> None:
    assert doc["readings"] == readings
    assert doc["receipts"] == readings
    assert doc["paid"] == readings * sensor_api.PRICE
    assert doc["payer_sequence"] == readings
    assert doc["payee_durable_sequence"] == readings
    assert doc["payee_durable_balance"] == readings * sensor_api.PRICE
    assert doc["opened"] == 1


def check_station(doc: dict[str, object], megabytes: int) -> None:
    assert doc["bytes"] == megabytes * 1_000_000
    assert doc["paid"] == doc["owed"] == megabytes * base_station.TARIFF.price
    assert doc["station_durable_balance"] == doc["paid"]
    assert doc["station_durable_sequence"] == doc["payer_sequence"] == doc["receipts"]


async def test_sensor_api_reads_and_pays_in_process() -> None:
    doc = await sensor_api.self_contained(100)
    check_sensor(doc, 100)
    assert doc["topped_up"] == 3  # 30 readings a deposit, 30 more a top-up


async def test_base_station_meters_and_pays_in_process() -> None:
    doc = await base_station.self_contained(12)
    check_station(doc, 12)
    assert isinstance(doc["top_ups"], int)
    assert doc["top_ups"] >= 1


def run(*argv: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, *argv, "--self-contained", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    doc: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return doc


@pytest.mark.slow
@pytest.mark.parametrize("form", [["-m", "examples.sensor_api"], ["examples/sensor_api.py"]])
def test_sensor_api_command(form: list[str]) -> None:
    check_sensor(run(*form), 100)


@pytest.mark.slow
@pytest.mark.parametrize("form", [["-m", "examples.base_station"], ["examples/base_station.py"]])
def test_base_station_command(form: list[str]) -> None:
    check_station(run(*form), 20)
