"""`tanglepay roaming serve` as processes on loopback: the HPMN's desk takes a partner's signed
batch, its fraud rules raise an alert that `tanglepay roaming alerts` prints and the metrics
count; the HPMN's bar goes to the VPMN's serving desk with `bars send` and is kept there; with
`--node`, each acknowledgement is anchored on a real node as it goes out."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import httpx

from payments.roaming._cli_base import SeedSigner
from payments.roaming.acknowledgement import anchor_payload as ack_anchor
from payments.roaming.agreement import Agreement, Party, SignedAgreement, sign_agreement
from payments.roaming.api import post_batch
from payments.roaming.batch import seal
from payments.roaming.ledger_book import payload_hash
from payments.roaming.rating import rate
from tanglepay.cli import main as tanglepay
from tests.payments.roaming.settle_support import HOME, T0, VISITED, record, standard_plans
from tests.wallet.test_client import node_in_a_thread

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pytest

    from payments.roaming.acknowledgement import SignedAcknowledgement
    from payments.roaming.batch import Batch

ROOT = Path(__file__).resolve().parents[3]
SEEDS = {HOME: "11" * 32, VISITED: "22" * 32}
SIGNERS = {t: SeedSigner(bytes.fromhex(s)) for t, s in SEEDS.items()}


def agreement() -> Agreement:
    return Agreement(
        version=1, previous=None,
        parties=tuple(Party(tadig=t, key=SIGNERS[t].public_key, plans=standard_plans())
                      for t in sorted(SIGNERS)),  # type: ignore[arg-type]
        valid_from=T0 - 86_400, valid_until=T0 + 3 * 365 * 86_400, currency="EUR",
        decimal_places=5, tax_bp=0, batch_max_records=100, batch_max_age_s=60,
        fraud_charge_4h=10**9, dispute_window_s=45 * 86_400,
    )  # fmt: skip


@contextmanager
def serving(tmp_path: Path, tadig: str, *extra: str) -> Iterator[dict[str, str]]:
    """`tanglepay roaming serve` of `tadig` as a process; the URLs it prints."""
    argv = [
        sys.executable, "-m", "tanglepay.cli", "roaming", "serve", "--db",
        str(tmp_path / f"{tadig}.db"), "--agreement", str(tmp_path / "agreement.json"),
        "--key-file", str(tmp_path / f"{tadig}.key"), *extra,
    ]  # fmt: skip
    with subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line, f"serve exited with {process.wait(timeout=30)}"
            yield json.loads(line)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                assert process.wait(timeout=30) == 0  # stopped cleanly, not by an interrupt
            finally:
                process.kill()  # never left behind (Popen's exit would wait on it forever)


def files(tmp_path: Path) -> tuple[Batch, int]:
    """The signed agreement, both key files and a salt under `tmp_path`; VISITED's first batch
    (two records of one SIM, 1500 bytes in all) and the second it was sealed."""
    made = agreement()
    signed = SignedAgreement(
        agreement=made,
        signatures=tuple(sign_agreement(made, SIGNERS[p.tadig]) for p in made.parties),  # type: ignore[arg-type]
    )
    (tmp_path / "agreement.json").write_bytes(signed.encode())
    for tadig, seed in SEEDS.items():
        (tmp_path / f"{tadig}.key").write_text(seed)
    (tmp_path / "salt").write_text("00" * 16)
    now = int(time.time())
    usage = [record(up=600, start=now - 600), record(up=900, start=now - 300)]
    rated = tuple(replace(r, charge=rate(made, r).charge) for r in usage)
    return seal(made, SIGNERS[VISITED], rated, sequence=1, now=now), now


async def send(url: str, batch: Batch) -> SignedAcknowledgement:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        return await post_batch(http, SIGNERS[VISITED], VISITED, batch, int(time.time()))


def test_a_served_desk_raises_alerts_and_takes_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch, now = files(tmp_path)
    with serving(tmp_path, HOME, "--data-volume-limit", "1000") as home:
        ack = anyio.run(send, home["operator_api"], batch, backend="trio")
        assert ack.ack.accepted_count == 2
        assert tanglepay(["roaming", "--json", "alerts", "--url", home["backoffice_api"]]) == 0
        page = json.loads(capsys.readouterr().out)
        assert [(a["rule"], a["partner"]) for a in page["alerts"]] == [("high-usage", VISITED)]
        metrics = httpx.get(home["backoffice_api"] + "/roaming/backoffice/v1/metrics").text
        assert (
            f'tanglepay_roaming_alerts_total{{rule="high-usage",partner="{VISITED}"}} 1' in metrics
        )

        bar_file = tmp_path / "bar.bin"
        add = ["roaming", "--json", "bars", "add", "--db", str(tmp_path / "hpmn-bars.db"),
               "--agreement", str(tmp_path / "agreement.json"), "--key-file",
               str(tmp_path / f"{HOME}.key"), "--imsi", "262010000000009", "--salt-file",
               str(tmp_path / "salt"), "--since", str(now), "-o", str(bar_file)]  # fmt: skip
        assert tanglepay(add) == 0
        capsys.readouterr()
        with serving(tmp_path, VISITED) as visited:
            send_bar = ["roaming", "--json", "bars", "send", str(bar_file), "--to",
                        visited["operator_api"], "--agreement", str(tmp_path / "agreement.json"),
                        "--key-file", str(tmp_path / f"{HOME}.key")]  # fmt: skip
            assert tanglepay(send_bar) == 0
            assert json.loads(capsys.readouterr().out)["new"] is True
            assert tanglepay(send_bar) == 0
            assert json.loads(capsys.readouterr().out)["new"] is False
    assert (
        tanglepay(["roaming", "--json", "bars", "list", "--db", str(tmp_path / f"{VISITED}.db")])
        == 0
    )
    [kept] = json.loads(capsys.readouterr().out)["bars"]
    assert (kept["hpmn"], kept["since"]) == (HOME, now)


def test_a_served_desk_anchors_each_acknowledgement_through_its_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TANGLEPAY_NODE", "TANGLEPAY_WALLET_DIR", "TANGLEPAY_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    batch, _ = files(tmp_path)
    db = str(tmp_path / f"{HOME}.db")
    with (
        node_in_a_thread(tmp_path) as port,
        serving(tmp_path, HOME, "--node", f"http://127.0.0.1:{port}") as home,
    ):
        ack = anyio.run(send, home["operator_api"], batch, backend="trio")
        anchored: list[dict[str, str]] = []
        for _ in range(100):  # the anchor goes out beside the answer: wait for it, bounded
            assert tanglepay(["roaming", "--json", "anchor", "list", "--db", db]) == 0
            anchored = json.loads(capsys.readouterr().out)["anchors"]
            if anchored:
                break
            time.sleep(0.2)
        assert [a["kind"] for a in anchored] == ["ack"]
        assert anchored[0]["payload"] == payload_hash(ack_anchor(ack)).hex()


def test_the_back_office_stays_on_loopback_unless_a_token_guards_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator API opened on another address leaves the back office (alerts name keyed
    IMSI hashes) on 127.0.0.1; a back office on an address that is not loopback is refused
    without `--token-file`, before anything listens."""
    files(tmp_path)
    with serving(tmp_path, HOME, "--host", "127.0.0.2") as home:
        assert home["operator_api"].startswith("http://127.0.0.2:")
        assert home["backoffice_api"].startswith("http://127.0.0.1:")
        assert httpx.get(home["backoffice_api"] + "/roaming/backoffice/v1/metrics").is_success
    argv = ["roaming", "--json", "serve", "--db", str(tmp_path / "x.db"), "--agreement",
            str(tmp_path / "agreement.json"), "--key-file", str(tmp_path / f"{HOME}.key"),
            "--backoffice-host", "0.0.0.0"]  # fmt: skip
    assert tanglepay(argv) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "usage"
    assert "--backoffice-host 0.0.0.0 is not loopback" in error["message"]
    assert not (tmp_path / "x.db").exists()
