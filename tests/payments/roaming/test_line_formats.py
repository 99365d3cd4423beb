"""JSON Lines and CSV usage files: good files import whole, every hostile line is refused with
its line number and nothing of the file is returned, and no generated input gets anything out
but a roaming error or a result."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.roaming import (
    EventType,
    FileKind,
    ImportPolicy,
    LineFileHeader,
    read_csv,
    read_jsonl,
)
from payments.roaming.errors import LineFormatError, RoamingError
from payments.roaming.line_formats import COLUMNS, MAX_LINE

from .vectors import POLICY

# Time is not what these tests measure: on a loaded machine it must not fail them.
SHARED_MACHINE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

HEADER = LineFileHeader(
    sender="DEUD1", recipient="FRAF1", sequence=7, currency="EUR", decimal_places=2
)
EVENT = {
    "imsi": "208011234567890",
    "msisdn": "33612345678",
    "event_type": "DATA",
    "start_utc": 1_767_225_600,
    "duration_s": 600,
    "volume_up": 1_000,
    "volume_down": 50_000,
    "apn": "iot.example",
    "serving_network": "262-01",
    "charge": 125,
}


def jsonl(*events: dict[str, object]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def csv_file(*rows: dict[str, object]) -> bytes:
    lines = [",".join(COLUMNS)] + [",".join(str(r[c]) for c in COLUMNS) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_jsonl_and_csv_import_the_same_records() -> None:
    sms = {
        **EVENT,
        "event_type": "SMS_MO",
        "duration_s": 0,
        "volume_up": 0,
        "volume_down": 0,
        "apn": "",
        "msisdn": "",
    }
    from_jsonl = read_jsonl(jsonl(EVENT, sms), HEADER, POLICY)
    from_csv = read_csv(csv_file(EVENT, sms), HEADER, POLICY)
    assert from_jsonl.records == from_csv.records
    data, message = from_jsonl.records
    assert data.event_type is EventType.DATA
    assert data.imsi_hash == POLICY.hasher.imsi("208011234567890")
    assert data.msisdn_hash == POLICY.hasher.msisdn("33612345678")
    assert (data.sender, data.recipient, data.charge) == ("DEUD1", "FRAF1", 125)
    assert message.event_type is EventType.SMS_MO
    assert from_jsonl.meta.kind is FileKind.JSON_LINES
    assert from_csv.meta.kind is FileKind.CSV
    assert (from_csv.meta.local_currency, from_csv.meta.decimal_places, from_csv.meta.sequence) == (
        "EUR",
        2,
        7,
    )


def test_unknown_ranges_are_flagged() -> None:
    policy = ImportPolicy(hasher=POLICY.hasher, allowed_imsi_prefixes=frozenset({"20810"}))
    imported = read_jsonl(jsonl(EVENT), HEADER, policy)
    assert imported.meta.unknown_range_events == (imported.records[0].event_id,)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "empty"),
        (b"[1]", "one JSON object"),
        (b"{", "not JSON"),
        (b'{"a": 1, "a": 2}', "not JSON"),
        (json.dumps({**EVENT, "charge": 1.5}).encode(), "integer"),
        (json.dumps({**EVENT, "charge": True}).encode(), "integer"),
        (json.dumps({**EVENT, "charge": -1}).encode(), "charge"),
        (json.dumps({**EVENT, "charge": 2**64}).encode(), "charge"),
        (json.dumps({**EVENT, "start_utc": "1"}).encode(), "integer"),
        (json.dumps({**EVENT, "imsi": 208011234567890}).encode(), "string"),
        (json.dumps({**EVENT, "imsi": "12"}).encode(), "IMSI"),
        (json.dumps({**EVENT, "event_type": "VOICE"}).encode(), "event type"),
        (json.dumps({**EVENT, "apn": "a b"}).encode(), "apn"),
        (json.dumps({**EVENT, "extra": 1}).encode(), "keys"),
        (json.dumps({k: v for k, v in EVENT.items() if k != "charge"}).encode(), "keys"),
        (json.dumps({**EVENT, "charge": float("nan")}).encode(), "not JSON"),
        (b"[" * 3000 + b"]" * 3000, "line longer"),
        (b"[" * 500 + b"]" * 500, "one JSON object"),
        (b"\xff\xfe", "UTF-8"),
        (json.dumps(EVENT).encode() + b"\rx", "carriage return"),
    ],
)
def test_hostile_jsonl_lines_are_refused_with_their_line_number(line: bytes, reason: str) -> None:
    with pytest.raises(LineFormatError, match=reason) as caught:
        read_jsonl(jsonl(EVENT) + line + b"\n" + jsonl(EVENT), HEADER, POLICY)
    assert caught.value.offset == 2


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("a,b", "fields"),
        ('"unterminated', "CSV"),
        ("208011234567890,,DATA,1,1,1,1,iot,262-01,01", "decimal integer"),
        ("208011234567890,,DATA,1,1,1,1,iot,262-01,-1", "decimal integer"),
        ("208011234567890,,DATA,1,1,1,1,iot,262-01, 1", "decimal integer"),
        ("208011234567890,,DATA,1,1,1,1,iot,262-01,1e3", "decimal integer"),
        ("208011234567890,,DATA,1,1,1,1,iot,262-01,99999999999999999999", "charge"),
        ("208011234567890,,MOC,1,1,1,1,,262-01,1", "volume"),
        ("208011234567890,,DATA,1,1,1,1,iot,26201,1", "serving_network"),
    ],
)
def test_hostile_csv_rows_are_refused_with_their_line_number(row: str, reason: str) -> None:
    good = csv_file(EVENT)
    with pytest.raises(LineFormatError, match=reason) as caught:
        read_csv(good + row.encode() + b"\n", HEADER, POLICY)
    assert caught.value.offset == 3


def test_csv_header_must_be_exact() -> None:
    with pytest.raises(LineFormatError, match="header") as caught:
        read_csv(b"imsi,charge\n", HEADER, POLICY)
    assert caught.value.offset == 1
    with pytest.raises(LineFormatError):
        read_csv(b"", HEADER, POLICY)


def test_overlong_lines_are_refused_before_parsing() -> None:
    with pytest.raises(LineFormatError, match="longer"):
        read_csv(csv_file(EVENT) + b"x" * (MAX_LINE + 1) + b"\n", HEADER, POLICY)


@pytest.mark.parametrize(
    "changes",
    [
        {"sender": "deud1"},
        {"recipient": "DEUD1"},
        {"sequence": 0},
        {"sequence": 100_000},
        {"currency": "eur"},
        {"decimal_places": 7},
    ],
)
def test_bad_headers_are_refused(changes: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "sender": "DEUD1",
        "recipient": "FRAF1",
        "sequence": 7,
        "currency": "EUR",
        "decimal_places": 2,
    }
    fields.update(changes)
    with pytest.raises(LineFormatError):
        LineFileHeader(**fields)  # type: ignore[arg-type]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@SHARED_MACHINE
@given(
    st.lists(
        st.dictionaries(st.sampled_from([*COLUMNS, "x"]), JSON_VALUES, max_size=12), max_size=4
    )
)
def test_generated_json_never_crashes_the_importer(objects: list[dict[str, object]]) -> None:
    data = b"".join(json.dumps(o).encode() + b"\n" for o in objects)
    with contextlib.suppress(RoamingError):
        read_jsonl(data, HEADER, POLICY)


@SHARED_MACHINE
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_either_importer(data: bytes) -> None:
    for reader in (read_jsonl, read_csv):
        with contextlib.suppress(RoamingError):
            reader(data, HEADER, POLICY)


@SHARED_MACHINE
@given(st.lists(st.text(max_size=30), min_size=len(COLUMNS), max_size=len(COLUMNS)))
def test_generated_csv_rows_never_crash(fields: list[str]) -> None:
    row = ",".join('"' + f.replace('"', '""') + '"' for f in fields).encode(
        "utf-8", "surrogatepass"
    )
    with contextlib.suppress(RoamingError):
        read_csv(csv_file() + row + b"\n", HEADER, POLICY)
