"""`decode_many`, the HPMN's one-pass decoder of a batch's records: the records `decode` builds,
and for any bytes the same outcome as `decode` (the record, or the same named error)."""

from __future__ import annotations

import dataclasses
import struct
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.roaming import _record_bulk
from payments.roaming._record_bulk import build_many, decode_many
from payments.roaming.batch import (
    SIGNED_HEADER_SIZE,
    Batch,
    BatchHeader,
    SignedBatchHeader,
    decode_batch,
    encode_batch,
)
from payments.roaming.errors import InvalidRecordError, MalformedBatchError, MalformedRecordError
from payments.roaming.pending import pack_records
from payments.roaming.record import RECORD_MAX_SIZE, EventType, UsageRecord
from tangle.protocol.ids import MerkleRoot, Signature

from .strategies import records

SHARED_MACHINE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(raw: bytes) -> tuple[str, object]:
    """What `UsageRecord.decode` makes of `raw`: the record (with its derived id) or the error."""
    try:
        record = UsageRecord.decode(raw)
    except MalformedRecordError as e:
        return ("error", str(e))
    return ("record", (record, record.event_id, record.encode()))


def outcome_many(raw: bytes) -> tuple[str, object]:
    try:
        (record,) = decode_many([raw])
    except MalformedRecordError as e:
        return ("error", str(e))
    return ("record", (record, record.event_id, record.encode()))


@SHARED_MACHINE
@given(st.lists(records(), max_size=8))
def test_decode_many_of_encodings_is_the_records(rs: list[UsageRecord]) -> None:
    decoded = decode_many([r.encode() for r in rs])
    assert decoded == rs
    assert [r.event_id for r in decoded] == [r.event_id for r in rs]
    assert [r.encode() for r in decoded] == [r.encode() for r in rs]


@st.composite
def altered(draw: st.DrawFn) -> bytes:
    """A record's encoding with a few bytes overwritten, cut short or extended."""
    raw = bytearray(draw(records()).encode())
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(raw) - 1))
        raw[position] = draw(st.sampled_from([0, 1, 2, 5, 6, 7, 0x2D, 0x41, 0x5A, 0x7F, 0x80]))
    cut = draw(st.integers(0, len(raw)))
    return bytes(raw[: cut if draw(st.booleans()) else len(raw)]) + draw(st.binary(max_size=2))


@SHARED_MACHINE
@given(altered())
def test_hostile_bytes_same_outcome_as_decode(raw: bytes) -> None:
    assert outcome_many(raw) == outcome(raw)


@SHARED_MACHINE
@given(st.binary(max_size=200))
def test_random_bytes_same_outcome_as_decode(raw: bytes) -> None:
    assert outcome_many(raw) == outcome(raw)


def test_each_broken_rule_named_as_decode_names_it() -> None:
    good = UsageRecord(
        sender="AAV01", recipient="ZZH01", imsi_hash=b"\x01" * 32, msisdn_hash=bytes(32),
        event_type=EventType.MOC, start_utc=1_790_000_000, duration_s=60, volume_up=0,
        volume_down=0, apn="", serving_network="262-01", charge=5,
    ).encode()  # fmt: skip
    head = struct.calcsize("<B5s5s32s32sBQIQQ")
    broken = {
        "version": b"\x02" + good[1:],
        "sender": good[:1] + b"aav01" + good[6:],
        "same pair": good[:6] + good[1:6] + good[11:],
        "no subscriber": good[:11] + bytes(32) + good[43:],
        "event type": good[:75] + b"\x09" + good[76:],
        "sms duration": good[:75] + bytes([EventType.SMS_MO]) + good[76:],
        "call volume": good[:88] + b"\x01" + good[89:],
        "apn": good[:head] + b"\x02a_" + good[head + 1 :],
        "serving network": good[: head + 1] + b"\x06262-0x" + good[head + 8 :],
        "truncated": good[:-1],
        "trailing": good + b"\x00",
    }
    for name, raw in broken.items():
        kind, message = outcome(raw)
        assert kind == "error", name
        assert outcome_many(raw) == (kind, message), name
        # one broken record among good ones: the same error, the good ones do not hide it
        with pytest.raises(MalformedRecordError, match="^" + str(message)):
            decode_many([good, raw, good])


SIGNED = SignedBatchHeader(
    header=BatchHeader(
        agreement=bytes(32), sender="AAV01", recipient="ZZH01", sequence=1, count=1,
        total_charge=0, first_start=0, last_start=0, sealed_utc=0, root=MerkleRoot(bytes(32)),
    ),
    signature=Signature(bytes(64)),
)  # fmt: skip
"""A header that decodes (the validator checks it, the decoder does not)."""


@SHARED_MACHINE
@given(st.lists(records(), min_size=1, max_size=4), st.data())
def test_decode_batch_hostile_records(rs: list[UsageRecord], data: st.DataObject) -> None:
    """A batch with bytes of its records' part altered is the batch the per-record decoder
    reads from them, or `MalformedBatchError`; a decoded batch keeps its records' bytes as
    received, which are what packing its records gives (`Batch.packed`)."""
    body = bytearray(encode_batch(Batch(signed=SIGNED, records=tuple(rs)))[SIGNED_HEADER_SIZE:])
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(body) - 1))
        body[position] = data.draw(st.integers(0, 255))
    try:
        expected: object = tuple(UsageRecord.decode(f) for f in _split(bytes(body)))
    except (MalformedRecordError, ValueError, struct.error):
        expected = MalformedBatchError
    try:
        batch = decode_batch(SIGNED.encode() + bytes(body))
    except MalformedBatchError:
        got: object = MalformedBatchError
    else:
        got = batch.records
        assert batch.packed == pack_records(batch.records) == bytes(body[4:])
    assert got == expected


def _split(body: bytes) -> list[bytes]:
    """The record frames of a body (u32 n, then n times u16 length and at most
    `RECORD_MAX_SIZE` bytes) read plainly; ValueError when they do not fill it exactly."""
    (n,) = struct.unpack_from("<I", body)
    pos, out = 4, []
    for _ in range(n):
        (size,) = struct.unpack_from("<H", body, pos)
        if pos + 2 + size > len(body) or size > RECORD_MAX_SIZE:
            raise ValueError("a frame past the end")
        out.append(body[pos + 2 : pos + 2 + size])
        pos += 2 + size
    if pos != len(body):
        raise ValueError("trailing bytes")
    return out


# -- build_many: the TAP kernel path's builder -------------------------------------------------

FIELDS = (
    "imsi_hash", "msisdn_hash", "event_type", "start_utc", "duration_s", "volume_up",
    "volume_down", "apn", "charge",
)  # fmt: skip


def built(rows: list[dict[str, object]], ends: tuple[str, str, str]) -> tuple[str, object]:
    """What `build_many` makes of `rows` (the record, its id and encoding, or the error)."""
    columns = tuple([row[name] for row in rows] for name in FIELDS)
    try:
        records = build_many(*ends, columns)  # type: ignore[arg-type]
    except InvalidRecordError as e:
        return ("error", str(e))
    return ("records", [(r, r.event_id, r.encode()) for r in records])


def constructed(rows: list[dict[str, object]], ends: tuple[str, str, str]) -> tuple[str, object]:
    sender, recipient, serving = ends
    try:
        records = [
            UsageRecord(sender=sender, recipient=recipient, serving_network=serving, **row)  # type: ignore[arg-type]
            for row in rows
        ]
    except InvalidRecordError as e:
        return ("error", str(e))
    return ("records", [(r, r.event_id, r.encode()) for r in records])


@SHARED_MACHINE
@given(st.lists(records(), min_size=1, max_size=6))
def test_build_many_is_the_constructor(rs: list[UsageRecord]) -> None:
    ends = (rs[0].sender, rs[0].recipient, rs[0].serving_network)
    rows = [{name: getattr(r, name) for name in FIELDS} for r in rs]
    got = built(rows, ends)
    assert got == constructed(rows, ends)
    assert got[0] == "records"


BAD_VALUES: dict[str, list[object]] = {
    "imsi_hash": [bytes(32), b"\x01" * 31, "x" * 32],
    "msisdn_hash": [b"\x01" * 33],
    "event_type": [9, 0],
    "start_utc": [-1, 2**64, True, 1.0],
    "duration_s": [2**32, -1],
    "volume_up": [1, 2**64],
    "volume_down": [-1],
    "apn": ["a_b", "x" * 101, "iot.\u00e9"],
    "charge": [-1, 2**64, None],
}
"""Values a constructor refuses (`volume_up` 1 on a call; `duration_s` below on an SMS)."""


def test_build_many_refuses_as_the_constructor_names() -> None:
    good = {
        "imsi_hash": b"\x01" * 32, "msisdn_hash": bytes(32), "event_type": EventType.MOC,
        "start_utc": 1_790_000_000, "duration_s": 60, "volume_up": 0, "volume_down": 0,
        "apn": "", "charge": 5,
    }  # fmt: skip
    ends = ("AAV01", "ZZH01", "262-01")
    assert built([good], ends)[0] == "records"
    cases = [
        ({**good, name: value}, ends) for name, values in BAD_VALUES.items() for value in values
    ]
    cases.append(({**good, "event_type": EventType.SMS_MO}, ends))  # an SMS with a duration
    cases += [(good, bad) for bad in (("aav01", "ZZH01", "262-01"), ("AAV01", "AAV01", "262-01"))]
    cases.append((good, ("AAV01", "ZZH01", "26-01")))
    for row, e in cases:
        expected = constructed([row], e)
        assert expected[0] == "error", (row, e)
        # alone and among good rows: the same named error
        assert built([row], e) == expected, (row, e)
        assert built([good, row, good], e) == expected, (row, e)


def test_build_many_of_nothing_is_nothing() -> None:
    assert build_many("AAV01", "ZZH01", "AAV01", ([], [], [], [], [], [], [], [], [])) == []


def test_the_bulk_builders_set_every_field_of_a_record() -> None:
    """`build_many` and `decode_many` build a record as an `_Unsealed` (`UsageRecord`'s slots)
    and set each field by name: a field added to `UsageRecord` (one not set by `__init__`
    included) must be set there too, or a bulk-built record would be left without it; the
    builders' fields are typed as `UsageRecord`'s."""
    assert _record_bulk._Unsealed.__slots__ == UsageRecord.__slots__
    assert typing.get_type_hints(_record_bulk._Unsealed) == typing.get_type_hints(UsageRecord)
    assert sorted(UsageRecord.__slots__) == sorted(f.name for f in dataclasses.fields(UsageRecord))
    (reference,) = build_many(
        "AAV01", "ZZH01", "AAV01",
        ([b"\x01" * 32], [bytes(32)], [EventType.DATA], [1], [2], [3], [4], ["iot"], [5]),
    )  # fmt: skip
    (decoded,) = decode_many([reference.encode()])
    for record in (reference, decoded):
        assert type(record) is UsageRecord
        assert {name: getattr(record, name) for name in UsageRecord.__slots__} == {
            name: getattr(reference, name) for name in UsageRecord.__slots__
        }
    assert reference == UsageRecord(
        sender="AAV01", recipient="ZZH01", imsi_hash=b"\x01" * 32, msisdn_hash=bytes(32),
        event_type=EventType.DATA, start_utc=1, duration_s=2, volume_up=3, volume_down=4,
        apn="iot", serving_network="AAV01", charge=5,
    )  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        reference.charge = 6  # type: ignore[misc]
