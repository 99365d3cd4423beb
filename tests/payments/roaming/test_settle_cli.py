"""`tanglepay roaming ...` end to end on the sample TAP file: agreement create, sign by both,
seal and show; import (idempotent, the file's audit total flagged); batch at the VPMN; validate
at the HPMN (re-rating returns the records the agreement does not price that way); batches and
a statement; errors as one JSON object with their exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tanglepay.cli import main as tanglepay

if TYPE_CHECKING:
    import pytest

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "tap"
VPMN, HPMN = "WERFD", "XLKJE"
"""The carriers of tap_3_12_valid.ber."""
SEEDS = {VPMN: "11" * 32, HPMN: "22" * 32}
NOW = 1_393_800_000


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, object]]:
    code = tanglepay(["roaming", "--json", *map(str, args)])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_a_carrier_pair_from_agreement_to_statement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from payments.roaming._cli_base import SeedSigner

    keys = {}
    for tadig, seed in SEEDS.items():
        (tmp_path / f"{tadig}.key").write_text(seed)
        keys[tadig] = SeedSigner(bytes.fromhex(seed)).public_key.hex()
    (tmp_path / "salt").write_text("ab" * 16)
    draft, sealed = tmp_path / "agreement.json", tmp_path / "signed.json"
    code, doc = run(
        capsys, "agreement", "create", "--party", f"{VPMN}:{keys[VPMN]}",
        "--party", f"{HPMN}:{keys[HPMN]}", "--valid-from", "1388534400",
        "--valid-until", "1420070400", "--decimal-places", "3", "-o", draft,
        "--voice-price", "575", "--voice-increment", "60",
    )  # fmt: skip
    # 575 a minute in whole minutes: the sample's 213 s call rates at its 2300, as charged
    assert code == 0
    sigs = []
    for tadig in (VPMN, HPMN):
        code, doc = run(capsys, "agreement", "sign", draft, "--key-file", tmp_path / f"{tadig}.key")
        assert code == 0
        assert doc["party"] == tadig
        sigs += ["--signature", str(doc["signature"])]
    assert run(capsys, "agreement", "seal", draft, *sigs, "-o", sealed)[0] == 0
    code, doc = run(capsys, "agreement", "show", sealed)
    assert doc["signed_by_both"] is True

    vpmn_db, hpmn_db = tmp_path / "vpmn.db", tmp_path / "hpmn.db"
    tap = VECTORS / "tap_3_12_valid.ber"
    imp = ("import", tap, "--db", vpmn_db, "--format", "tap", "--salt-file", tmp_path / "salt")
    code, doc = run(capsys, *imp)
    assert (code, doc["outcome"], doc["records"]) == (0, "new", 4)
    assert (doc["declared_total_charge"], doc["total_charge"]) == (2300, 71200)
    assert doc["audit_total_matches"] is False
    assert run(capsys, *imp)[1]["outcome"] == "already-imported"

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, doc = run(
        capsys, "batch", "--db", vpmn_db, "--agreement", sealed, "--key-file",
        tmp_path / f"{VPMN}.key", "--pair", VPMN, HPMN, "--now", str(NOW), "--out-dir", out_dir,
    )  # fmt: skip
    assert code == 0
    assert [b["count"] for b in doc["batches"]] == [4]  # type: ignore[union-attr, index]
    (batch_file,) = out_dir.iterdir()
    ack_file = tmp_path / "ack.bin"
    code, doc = run(
        capsys, "validate", batch_file, "--db", hpmn_db, "--agreement", sealed,
        "--key-file", tmp_path / f"{HPMN}.key", "--now", str(NOW), "--ack-out", ack_file,
    )  # fmt: skip
    assert code == 0
    assert doc["fatal"] == "NONE"
    # the other charges of the sample are not this agreement's rates: returned (severe)
    assert {tuple(r)[1:] for r in doc["returns"]} == {  # type: ignore[union-attr]
        ("SEVERE", "CHARGE_MISMATCH")
    }
    assert doc["accepted_count"] == 2  # the call and the supplementary event (charge 0)
    assert doc["accepted_amount"] == 2300
    code, doc = run(capsys, "batches", "--db", hpmn_db, "--pair", VPMN, HPMN)
    assert doc["batches"][0]["acknowledged"] is not None  # type: ignore[index]
    code, doc = run(
        capsys, "statement", "--db", hpmn_db, "--agreement", sealed, "--from", "1388534400",
        "--to", "1420070400", "--format", "csv",
    )  # fmt: skip
    assert code == 0
    assert len(str(doc["hash"])) == 64

    # the VPMN keeps the ack; the HPMN disputes the batch; the VPMN grants a credit note
    assert run(capsys, "ack", ack_file, "--db", vpmn_db, "--agreement", sealed)[1]["new"] is True
    claim, answer = tmp_path / "dispute.json", tmp_path / "resolution.json"
    common = ("--agreement", sealed, "--now", str(NOW + 86_400), "--reason")
    code, doc = run(
        capsys, "disputes", "raise", "--db", hpmn_db, "--key-file", tmp_path / f"{HPMN}.key",
        "--pair", VPMN, HPMN, "--sequence", "1", "--amount", "1", *common, "not our SIM",
        "-o", claim,
    )  # fmt: skip
    assert code == 0, doc
    code, doc = run(
        capsys, "disputes", "answer", claim, "--db", vpmn_db, "--key-file",
        tmp_path / f"{VPMN}.key", "--credit", "1", *common, "agreed", "-o", answer,
    )  # fmt: skip
    assert (code, doc["credit_note"]) == (0, 1)
    assert run(capsys, "disputes", "record", answer, "--db", hpmn_db, "--agreement", sealed)[0] == 0
    for db in (vpmn_db, hpmn_db):
        code, doc = run(capsys, "disputes", "list", "--db", db, "--agreement", sealed)
        assert doc["credit_notes"] == [{"debtor": VPMN, "creditor": HPMN, "amount": 1}]
    # a second answer, or a dispute past the window, is refused by name
    code, doc = run(
        capsys, "disputes", "answer", claim, "--db", vpmn_db, "--key-file",
        tmp_path / f"{VPMN}.key", "--reject", *common, "changed my mind", "-o", answer,
    )  # fmt: skip
    assert (code, doc["error"]["code"]) == (3, "DisputeError")  # type: ignore[index]
    late = ("--agreement", sealed, "--now", str(NOW + 46 * 86_400), "--reason", "late")
    code, doc = run(
        capsys, "disputes", "raise", "--db", hpmn_db, "--key-file", tmp_path / f"{HPMN}.key",
        "--pair", VPMN, HPMN, "--sequence", "1", "--amount", "1", *late, "-o", claim,
    )  # fmt: skip
    assert (code, doc["error"]["code"]) == (3, "DisputeError")  # type: ignore[index]

    # the HPMN bars a SIM; the VPMN keeps the bar; neither output names the IMSI
    imsi = "234150999999999"
    bar_file = tmp_path / "bar.bin"
    code, doc = run(
        capsys, "bars", "add", "--db", hpmn_db, "--agreement", sealed, "--key-file",
        tmp_path / f"{HPMN}.key", "--imsi", imsi, "--salt-file", tmp_path / "salt",
        "--since", str(NOW), "--now", str(NOW), "-o", bar_file,
    )  # fmt: skip
    assert (code, doc["new"]) == (0, True)
    recorded = ("--agreement", sealed, "--now", str(NOW))
    assert run(capsys, "bars", "record", bar_file, "--db", vpmn_db, *recorded)[0] == 0
    for db in (hpmn_db, vpmn_db):
        code = tanglepay(["roaming", "--json", "bars", "list", "--db", str(db)])
        out = capsys.readouterr().out
        assert imsi not in out
        assert json.loads(out)["bars"][0]["since"] == NOW


def test_errors_are_one_json_object_with_an_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    code, doc = run(capsys, "agreement", "show", bad)
    assert code == 3
    assert doc["error"]["code"] == "MalformedAgreementError"  # type: ignore[index]
    code, doc = run(capsys, "agreement", "show", tmp_path / "missing.json")
    assert code == 4


def signed_agreement_file(tmp_path: Path, batch_max_records: int = 100) -> Path:
    """Both carriers' key files, a salt and their agreement signed by both, under `tmp_path`;
    the agreement's path."""
    from payments.roaming._cli_base import SeedSigner
    from payments.roaming.agreement import Agreement, Party, SignedAgreement, sign_agreement
    from tests.payments.roaming.settle_support import standard_plans

    signers = {t: SeedSigner(bytes.fromhex(s)) for t, s in SEEDS.items()}
    for tadig, seed in SEEDS.items():
        (tmp_path / f"{tadig}.key").write_text(seed)
    (tmp_path / "salt").write_text("00" * 16)
    agreement = Agreement(
        version=1, previous=None,
        parties=tuple(Party(tadig=t, key=signers[t].public_key, plans=standard_plans())
                      for t in (VPMN, HPMN)),  # type: ignore[arg-type]
        valid_from=1_388_534_400, valid_until=1_420_070_400, currency="EUR", decimal_places=3,
        tax_bp=0, batch_max_records=batch_max_records, batch_max_age_s=60, fraud_charge_4h=10**9,
        dispute_window_s=45 * 86_400,
    )  # fmt: skip
    sealed = tmp_path / "signed.json"
    sealed.write_bytes(
        SignedAgreement(
            agreement=agreement,
            signatures=tuple(
                sign_agreement(agreement, signers[p.tadig]) for p in agreement.parties
            ),  # type: ignore[arg-type]
        ).encode()
    )
    return sealed


def test_a_bar_recorded_at_the_vpmn_refuses_the_subscribers_later_usage_at_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The HPMN bars one subscriber of the sample TAP file; once the VPMN keeps the bar, that
    subscriber's usage from then on is refused by name at import, the rest is kept; usage
    imported before the bar arrived is refused when the VPMN batches."""
    sealed = signed_agreement_file(tmp_path)
    vpmn_db, hpmn_db, bar_file = tmp_path / "vpmn.db", tmp_path / "hpmn.db", tmp_path / "bar.bin"
    code, doc = run(
        capsys, "bars", "add", "--db", hpmn_db, "--agreement", sealed, "--key-file",
        tmp_path / f"{HPMN}.key", "--imsi", "133713371337133", "--salt-file", tmp_path / "salt",
        "--since", "1388534400", "--now", "1388534400", "-o", bar_file,
    )  # fmt: skip
    assert code == 0, doc
    recorded = ("--agreement", sealed, "--now", "1388534400")
    assert run(capsys, "bars", "record", bar_file, "--db", vpmn_db, *recorded)[0] == 0
    tap = VECTORS / "tap_3_12_valid.ber"
    code, doc = run(
        capsys, "import", tap, "--db", vpmn_db, "--format", "tap", "--salt-file", tmp_path / "salt"
    )
    assert (code, doc["outcome"], doc["records"], doc["refused"]) == (0, "new", 2, 2)
    refusals = doc["refusals"]
    assert isinstance(refusals, list)
    assert {r["error"] for r in refusals} == {"BarredUsageError"}
    assert "133713371337133" not in json.dumps(doc)

    late_db = tmp_path / "late.db"
    code, doc = run(
        capsys, "import", tap, "--db", late_db, "--format", "tap", "--salt-file", tmp_path / "salt"
    )
    assert (doc["records"], doc["refused"]) == (4, 0)
    assert run(capsys, "bars", "record", bar_file, "--db", late_db, *recorded)[0] == 0
    code, doc = run(
        capsys, "batch", "--db", late_db, "--agreement", sealed, "--key-file",
        tmp_path / f"{VPMN}.key", "--pair", VPMN, HPMN, "--now", str(NOW),
    )  # fmt: skip
    assert code == 0, doc
    assert doc["refused"] == 2
    assert [b["count"] for b in doc["batches"]] == [2]  # type: ignore[union-attr, index]


def test_batching_pending_records_that_fill_batches_loses_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Four pending records and batches of two: two batches of two, nothing left pending (the
    batch filled by the last record read is sealed and kept, with the rows it was read from)."""
    sealed, db = signed_agreement_file(tmp_path, batch_max_records=2), tmp_path / "vpmn.db"
    tap = VECTORS / "tap_3_12_valid.ber"
    code, doc = run(
        capsys, "import", tap, "--db", db, "--format", "tap", "--salt-file", tmp_path / "salt"
    )
    assert (code, doc["records"]) == (0, 4)
    code, doc = run(
        capsys, "batch", "--db", db, "--agreement", sealed, "--key-file",
        tmp_path / f"{VPMN}.key", "--pair", VPMN, HPMN, "--now", str(NOW),
    )  # fmt: skip
    assert code == 0, doc
    assert [b["sequence"] for b in doc["batches"]] == [1, 2]  # type: ignore[union-attr, index]
    assert [b["count"] for b in doc["batches"]] == [2, 2]  # type: ignore[union-attr, index]
