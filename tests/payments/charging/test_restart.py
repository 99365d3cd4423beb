"""A CSMS process SIGKILLed mid-session and restarted on its database loses no acknowledged meter
value and bills the session once; the charger reconnects and resumes the session. The CSMS runs
as `tanglepay charging serve` in a subprocess; the charger is the `ocpp` library over loopback.
Also: the CSMS process never loads trio."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from payments.charging.cli import main as charging_main
from payments.charging.simulator import Charger201, connect_charger

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pytest

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_780_000_000.0
PASSWORD = "pw-of-cp-7"


class CsmsProcess:
    """`tanglepay charging serve` on port 0, its URL read from its first line."""

    def __init__(self, db: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        code = "import sys; from tanglepay.cli import main; sys.exit(main(sys.argv[1:]))"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                "charging",
                "--db",
                str(db),
                "--json",
                "serve",
                "--port",
                "0",
                "--api-port",
                "0",
            ],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.process.stdout is not None
        self.started = json.loads(self.process.stdout.readline())
        self.url: str = self.started["url"]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=10)
        return out


def _cli(db: Path, *args: str) -> Any:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert charging_main(["--db", str(db), "--json", *args]) == 0
    return json.loads(buffer.getvalue())


def iter_events() -> Iterator[tuple[str, int, int, float]]:
    yield "Started", 0, 50_000, T0
    for seq in range(1, 7):
        yield "Updated", seq, 50_000 + 700 * seq, T0 + 60 * seq
    yield "Ended", 7, 55_600, T0 + 420


def test_a_sigkilled_csms_loses_no_meter_value_and_bills_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "csms.sqlite"
    monkeypatch.setenv("CP7_PASSWORD", PASSWORD)
    assert _cli(db, "stations", "add", "CP-7", "--password-env", "CP7_PASSWORD") == {
        "added": "CP-7"
    }
    events = list(iter_events())

    async def send(url: str, chosen: list[tuple[str, int, int, float]]) -> None:
        async with connect_charger(url, "CP-7", PASSWORD, "2.0.1") as charger:
            assert isinstance(charger, Charger201)
            for kind, seq, wh, at in chosen:
                token = "DRIVER" if kind == "Started" else None
                await charger.event(kind, "TX-7", seq, wh, at, id_token=token)

    first = CsmsProcess(db)
    assert first.started["resumed_sessions"] == 0
    asyncio.run(asyncio.wait_for(send(first.url, events[:4]), 20))  # seq 0..3 acknowledged
    first.kill()

    second = CsmsProcess(db)
    assert second.started["resumed_sessions"] == 1
    # the charger resends seq 3 (it was unsure) and the rest, then seq 7 twice
    asyncio.run(asyncio.wait_for(send(second.url, [events[3], *events[4:], events[7]]), 20))
    assert second.stop().strip().endswith('{"stopped": true}')

    third = CsmsProcess(db)  # a restart after the bill: nothing to resume, nothing billed again
    assert third.started["resumed_sessions"] == 0
    third.stop()

    [bill] = _cli(db, "cdrs")
    assert bill == {
        "charge_point": "CP-7",
        "transaction_id": "TX-7",
        "energy_wh": 5_600,
        "duration_s": 420,
        "amount": 168,  # 30 per kWh, the serve default
    }
    [session] = _cli(db, "sessions")
    assert session["events"] == 8


def test_the_charging_modules_never_import_trio() -> None:
    """The CSMS runs on asyncio only: no module of `payments.charging` imports trio (the `payments`
    package root still loads the trio module through `payments.ledger`, but nothing here runs a
    trio loop)."""
    for path in sorted((ROOT / "payments" / "charging").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not [n for n in names if n.split(".")[0] == "trio"], path.name
