"""The proof and committee files, and `tanglepay verify` on them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tangle.ledger.committee import KeySchedule
from tangle.protocol.milestone import encode_milestone
from tangle.protocol.proof_bundle import bundle_to_json
from tanglepay.cli import main as tanglepay_main
from wallet.devices.cli import main as verify_main
from wallet.devices.errors import ProofBundleFormatError
from wallet.devices.proof import verify_bundle
from wallet.devices.proof_file import (
    MAX_FILE,
    Committee,
    bundle_from_json,
    committee_from_json,
    committee_to_json,
)

from ._chain import build_chain, committee
from ._support import NETWORK

if TYPE_CHECKING:
    from pathlib import Path

SIGNERS, KEY_SET = committee(0)
NEW_SIGNERS, NEW_KEY_SET = committee(50, size=4, threshold=2)
SCHEDULE = KeySchedule(entries=((1, KEY_SET), (10, NEW_KEY_SET)))
BUNDLE = build_chain(index=12, signers=NEW_SIGNERS, key_set=NEW_KEY_SET).bundle(3)


def test_files_round_trip() -> None:
    text = bundle_to_json(BUNDLE)
    assert bundle_from_json(text) == BUNDLE
    assert bundle_to_json(bundle_from_json(text)) == text
    for trusted in (
        Committee(schedule=SCHEDULE, network_id=None),
        Committee(schedule=SCHEDULE, network_id=NETWORK),
    ):
        assert committee_from_json(committee_to_json(trusted)) == trusted
    network = {
        "network_id": 7,
        "committee": {"threshold": 3, "public_keys": [k.hex() for k in KEY_SET.public_keys]},
    }
    assert committee_from_json(json.dumps(network)) == Committee(
        schedule=KeySchedule(entries=((1, KEY_SET),)), network_id=7
    )


def test_a_version_1_file_is_read_and_verifies() -> None:
    # Version 1 held the milestone's payload encoding (whole signer keys): read as version 2.
    chain = build_chain(index=12, signers=NEW_SIGNERS, key_set=NEW_KEY_SET)
    doc = _doc()
    doc.update(version=1, milestone=encode_milestone(chain.milestone).hex())
    bundle = bundle_from_json(json.dumps(doc))
    assert bundle == BUNDLE
    verify_bundle(bundle, SCHEDULE)


def _doc() -> dict[str, object]:
    doc: dict[str, object] = json.loads(bundle_to_json(BUNDLE))
    return doc


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d: d.pop("anchor"), "missing"),
        (lambda d: d.update(extra=1), "unknown"),
        (lambda d: d.update(version=3), "version"),
        (lambda d: d.update(version=1), "not a version 1 milestone"),  # a v2 link
        (lambda d: d.update(version=True), "integer"),
        (lambda d: d.update(reading="ABCD"), "hex"),
        (lambda d: d.update(reading="abc"), "hex"),
        (lambda d: d.update(milestone=12), "hex"),
        (lambda d: d["batch_path"].update(index=-1), "batch_path"),
        (lambda d: d["batch_path"].update(size=1.5), "integer"),
        (lambda d: d["registry_path"].update(siblings=["00" * 31]), "registry_path"),
        (lambda d: d["inclusion_path"].update(siblings=["00" * 32] * 65), "at most"),
    ],
)
def test_a_malformed_proof_file_is_named(change: object, why: str) -> None:
    doc = _doc()
    change(doc)  # type: ignore[operator]
    with pytest.raises(ProofBundleFormatError, match=why):
        bundle_from_json(json.dumps(doc))


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"[",
        b"[]",
        b"\xff",
        b"1" * (MAX_FILE + 1),
        b"[" * 100_000,
        bundle_to_json(BUNDLE).replace('"version": 2', '"version": 2, "version": 2').encode(),
    ],
)
def test_not_json_is_a_format_error(text: bytes) -> None:
    with pytest.raises(ProofBundleFormatError):
        bundle_from_json(text)


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"key_schedule": []},
        {"key_schedule": [{"activation_index": 2, "threshold": 1, "public_keys": ["00" * 32]}]},
        {"key_schedule": [{"activation_index": 1, "threshold": 2, "public_keys": ["00" * 32]}]},
        {"committee": {"threshold": 1, "public_keys": ["00" * 31]}},
        {"committee": {"threshold": 1, "public_keys": ["00" * 32], "extra": 0}},
        {"network_id": "7", "committee": {"threshold": 1, "public_keys": ["00" * 32]}},
    ],
)
def test_a_malformed_committee_file_is_named(doc: object) -> None:
    with pytest.raises(ProofBundleFormatError):
        committee_from_json(json.dumps(doc))


def _files(tmp_path: Path, proof: str, network_id: int = NETWORK) -> tuple[str, str]:
    (tmp_path / "proof.json").write_text(proof)
    committee = Committee(schedule=SCHEDULE, network_id=network_id)
    (tmp_path / "keys.json").write_text(committee_to_json(committee))
    return str(tmp_path / "proof.json"), str(tmp_path / "keys.json")


def test_tanglepay_verify_accepts_a_valid_proof(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proof, keys = _files(tmp_path, bundle_to_json(BUNDLE))
    assert tanglepay_main(["verify", proof, "--committee", keys]) == 0
    out = capsys.readouterr().out
    assert out.startswith("proof ok: reading ")
    assert "milestone 12 with 2 committee signatures" in out


def test_tanglepay_verify_names_the_broken_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _doc()
    milestone = str(doc["milestone"])
    doc["milestone"] = milestone[:20] + ("0" if milestone[20] != "0" else "1") + milestone[21:]
    proof, keys = _files(tmp_path, json.dumps(doc))
    assert verify_main([proof, "--committee", keys]) == 1
    assert "broken link: milestone:" in capsys.readouterr().err


def test_tanglepay_verify_refuses_a_proof_of_another_network(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proof, keys = _files(tmp_path, bundle_to_json(BUNDLE), network_id=NETWORK + 1)
    assert verify_main([proof, "--committee", keys]) == 1
    assert "broken link: milestone: a milestone of network" in capsys.readouterr().err


def test_tanglepay_verify_refuses_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proof, keys = _files(tmp_path, "{}")
    assert verify_main([proof, "--committee", keys]) == 2
    assert "missing" in capsys.readouterr().err
    assert verify_main([proof, "--committee", str(tmp_path / "absent.json")]) == 2
    assert "absent.json" in capsys.readouterr().err
