"""`tanglepay charging serve --ocpi-port` (a process of its own): the start line names the OCPI
versions URL, an eMSP's Token A reaches it and nothing else does, and SIGTERM stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from payments.charging import ocpi_json
from payments.charging.ocpi_client import authorization
from payments.charging.ocpi_location import cdr_location_to_json
from payments.charging.ocpi_tariff import tariff_to_json

from .test_roaming_cpo import LOCATION, TARIFF

ROOT = Path(__file__).resolve().parents[3]


def test_serve_with_ocpi_answers_the_token_a_and_stops(tmp_path: Path) -> None:
    (tmp_path / "tariff.json").write_text(ocpi_json.dumps(tariff_to_json(TARIFF)))
    (tmp_path / "location.json").write_text(ocpi_json.dumps(cdr_location_to_json(LOCATION)))
    code = "import sys; from tanglepay.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "charging", "--db", str(tmp_path / "csms.sqlite")]
    argv += ["--json", "serve", "--port", "0", "--api-port", "0", "--ocpi-port", "0"]
    argv += [
        "--tariff",
        str(tmp_path / "tariff.json"),
        "--location",
        str(tmp_path / "location.json"),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OCPI_TOKEN_A": "the-token-a"}
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert child.stdout is not None
    try:
        line = json.loads(child.stdout.readline())
        versions = line["ocpi"]
        ok = httpx.get(versions, headers={"Authorization": authorization("the-token-a")})
        assert ok.status_code == 200
        assert ok.json()["data"][0]["version"] == "2.2.1"
        refused = httpx.get(versions, headers={"Authorization": authorization("guess")})
        assert refused.status_code == 401
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == 0
        child.stdout.close()
    bad = subprocess.run([*argv[:6], "serve", "--devices"], env=env, capture_output=True, text=True)
    assert bad.returncode != 0
    assert "--devices and --refund-seed-file need --node-api" in bad.stderr
