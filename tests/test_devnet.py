"""`tanglepay devnet`: a coordinator, its node and traffic; it confirms transfers and resumes."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from coordinator.devnet import DevnetOptions, run

ROOT = Path(__file__).resolve().parents[1]


async def test_devnet_confirms_transfers_and_resumes(tmp_path: Path) -> None:
    lines: list[str] = []
    options = DevnetOptions(data_dir=tmp_path, interval_s=0.3, tps=40, duration_s=1.5)
    first = await run(options, lines.append)
    assert first >= 2
    confirmed = [line for line in lines if line.startswith("milestone")]
    assert any(" 0 transfers" not in line for line in confirmed)
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    description = json.loads((tmp_path / "devnet.json").read_text())
    assert description["committee"]["threshold"] == 3
    lines.clear()
    second = await run(options, lines.append)
    assert second > first
    assert f"resuming at milestone {first}" in lines[0]
    assert not any("conflicting" in line and " 0 conflicting" not in line for line in lines)


@pytest.mark.slow
def test_cli_runs_the_devnet(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tangle.cli",
            "devnet",
            "--data-dir",
            str(tmp_path),
            "--duration",
            "2",
            "--interval",
            "0.5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "milestone" in done.stdout
    assert "devnet stopped at milestone" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "tangle.cli", "devnet", "--tps", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "must be positive" in bad.stderr
    assert "Traceback" not in bad.stderr
