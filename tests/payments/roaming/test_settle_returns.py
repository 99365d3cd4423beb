"""Return details as a carrier's RAP desk expects them: each returned record's code, severity,
field, TAP element, found and expected value (the agreement's rating for a charge, the bound
for an impossible value); a batch rejected whole gets one fatal detail for its header; an
acknowledgement of another batch is refused by name; the CLI prints them as JSON and CSV."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from payments.roaming.acknowledgement import RecordReturn, ReturnCode, Severity
from payments.roaming.batch import SignedBatchHeader, seal
from payments.roaming.errors import ForgedHeaderError
from payments.roaming.rating import rate
from payments.roaming.record import EventType
from payments.roaming.returns import details_csv, explain
from payments.roaming.store import RoamingStore
from payments.roaming.validation import CLOCK_SKEW_S, LATE_S, MAX_DURATION_S, Validator
from tanglepay.cli import main as tanglepay
from tests.payments.roaming.settle_support import (
    HOME,
    HOME_KEY,
    NOW,
    T0,
    VISITED,
    VISITED_KEY,
    agreement,
    record,
    signed,
)

if TYPE_CHECKING:
    from pathlib import Path

    from payments.roaming.batch import Batch
    from payments.roaming.record import UsageRecord

A = agreement(valid_from=T0 - 100 * 86_400)
"""Valid long enough before T0 for a record presented 40 days late."""


def rated(r: UsageRecord) -> UsageRecord:
    return replace(r, charge=rate(A, r).charge)


def returned_batch() -> tuple[Batch, Batch, Validator]:
    """Batch 1 accepted; batch 2 with a duplicate, an overcharge, a late record, an event from
    the future and a call too long to be real."""
    v = Validator(A, HOME_KEY)
    first = (rated(record(up=100, start=T0)),)
    one = seal(A, VISITED_KEY, first, sequence=1, now=NOW)
    v.validate(one, NOW)
    overcharged = replace(rated(record(kind=EventType.MOC, duration=61, start=T0)), charge=99_999)
    late = rated(record(kind=EventType.SMS_MO, start=NOW - 40 * 86_400))
    future = rated(record(kind=EventType.SMS_MO, start=NOW + 3_600))
    long_call = rated(record(kind=EventType.MOC, duration=8 * 86_400, start=T0 + 5))
    records = (first[0], overcharged, late, future, long_call)
    return one, seal(A, VISITED_KEY, records, sequence=2, now=NOW), v


def test_each_return_names_its_field_and_the_value_expected() -> None:
    _, b, v = returned_batch()
    signed_ack = v.validate(b, NOW)
    rows = [d.to_json_object() for d in explain(signed_ack, b, A)]
    pick = ("index", "severity", "reason", "field", "tap_element", "found", "expected")
    assert [tuple(r[k] for k in pick) for r in rows] == [
        (0, "severe", "duplicate", "event_id", "CallEventDetail", None, None),
        (1, "severe", "charge_mismatch", "charge", "ChargeInformation/ChargeDetail/Charge",
         99_999, rate(A, b.records[1]).charge),
        (2, "warning", "late", "start_utc", "CallEventStartTimeStamp",
         b.signed.header.sealed_utc - b.records[2].start_utc, LATE_S),
        (3, "severe", "impossible_value", "start_utc", "CallEventStartTimeStamp",
         NOW + 3_600, NOW + CLOCK_SKEW_S),
        (4, "severe", "impossible_value", "duration_s", "TotalCallEventDuration",
         8 * 86_400, MAX_DURATION_S),
    ]  # fmt: skip
    assert [r["event_id"] for r in rows] == [r.event_id.hex() for r in b.records]
    text = details_csv(explain(signed_ack, b, A))
    assert text.splitlines()[0].startswith("index,event_id,severity,code,reason,field")
    assert len(text.splitlines()) == 6


def test_an_impossible_return_within_every_bound_says_so() -> None:
    """A record returned IMPOSSIBLE_VALUE although it crosses no bound (not this validator's
    return): the detail names no bound and says the record is within them all."""
    _, b, v = returned_batch()
    signed_ack = v.validate(b, NOW)
    claim = RecordReturn(index=1, severity=Severity.SEVERE, code=ReturnCode.IMPOSSIBLE_VALUE)
    lying = replace(signed_ack, ack=replace(signed_ack.ack, returns=(claim,)))
    [detail] = explain(lying, b, A)
    assert (detail.reason, detail.field, detail.found, detail.expected) == (
        "impossible_value", "record", None, None,
    )  # fmt: skip
    assert detail.message == "returned as impossible, but the record is within every bound"


def test_a_fatal_batch_gets_one_detail_for_its_header_and_another_batch_is_refused() -> None:
    one, b, v = returned_batch()
    header = replace(b.signed.header, total_charge=2_300)
    lying = replace(
        b,
        signed=SignedBatchHeader(
            header=header, signature=VISITED_KEY.sign(header.signing_message())
        ),
    )
    signed_ack = v.validate(lying, NOW)
    [fatal] = explain(signed_ack, lying, A)
    assert (fatal.index, fatal.severity, fatal.reason) == (None, "fatal", "audit_total")
    assert (fatal.tap_element, fatal.found) == ("AuditControlInfo/TotalCharge", 2_300)
    assert fatal.expected == sum(r.charge for r in b.records)
    with pytest.raises(ForgedHeaderError, match="another batch"):
        explain(signed_ack, one, A)


def test_the_cli_prints_the_returns_of_a_kept_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, b, v = returned_batch()
    db, agreement_file = tmp_path / "vpmn.db", tmp_path / "agreement.json"
    agreement_file.write_bytes(signed(A).encode())
    with RoamingStore(db) as store:
        store.save_batch(b)
        store.save_ack(v.validate(b, NOW))
    args = ["roaming", "returns", "--db", str(db), "--agreement", str(agreement_file)]
    args += ["--pair", VISITED, HOME, "--sequence", "2"]
    assert tanglepay(["roaming", "--json", *args[1:]]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["reason"] for r in doc["returns"]][:2] == ["duplicate", "charge_mismatch"]
    assert tanglepay([*args, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("index,")
    assert len(lines) == 6
    assert tanglepay([*args[:-1], "9"]) == 2  # no such batch: a usage error
