"""Batches and their validation: the VPMN seals by count and age under a signed header, the HPMN
re-rates and checks each batch and answers with a signed acknowledgement; forged, replayed and
wrongly signed batches and records outside the agreement are refused by name, and a refusal
changes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.roaming.acknowledgement import (
    FatalCode,
    RecordReturn,
    ReturnCode,
    Severity,
    SignedAcknowledgement,
    verify_ack,
)
from payments.roaming.acknowledgement import anchor_payload as ack_anchor
from payments.roaming.batch import (
    Batch,
    Batcher,
    BatchHeader,
    SignedBatchHeader,
    anchor_payload,
    header_from_payload,
    seal,
)
from payments.roaming.errors import (
    BatchError,
    BatchingError,
    ForgedHeaderError,
    MalformedBatchError,
    RecordOutsideAgreementError,
    ReplayedBatchError,
    WrongSignerError,
)
from payments.roaming.rating import rate
from payments.roaming.record import EventType, UsageRecord
from payments.roaming.validation import DUPLICATE_WINDOW_S, DuplicateWindow, Validator
from tangle.protocol.ids import Signature
from tangle.protocol.payload import MAX_DATA
from tests.payments.roaming.settle_support import (
    HOME,
    HOME_KEY,
    MALLORY_KEY,
    T0,
    VISITED,
    VISITED_KEY,
    agreement,
    record,
)

A = agreement(batch_max_records=3, batch_max_age_s=60, valid_from=T0 - 100 * 86_400)
NOW = T0 + 3_600


def rated(r: UsageRecord) -> UsageRecord:
    return replace(r, charge=rate(A, r).charge)


def usage(n: int, start: int = T0) -> tuple[UsageRecord, ...]:
    return tuple(rated(record(up=1000 * (i + 1), start=start + i)) for i in range(n))


def batch(
    n: int = 3, *, sequence: int = 1, records: tuple[UsageRecord, ...] | None = None
) -> Batch:
    return seal(A, VISITED_KEY, records or usage(n), sequence=sequence, now=NOW)


def resigned(b: Batch, **changes: object) -> Batch:
    """`b` with header fields changed, signed again by the VPMN (a lying header)."""
    header = replace(b.signed.header, **changes)  # type: ignore[arg-type]
    signature = VISITED_KEY.sign(header.signing_message())
    return replace(b, signed=SignedBatchHeader(header=header, signature=signature))


def validator() -> Validator:
    return Validator(A, HOME_KEY, known=(MALLORY_KEY.public_key,))


def test_the_batcher_seals_by_count_and_by_age() -> None:
    batcher = Batcher(A, VISITED_KEY, sender=VISITED, recipient=HOME)
    records = usage(4)
    assert batcher.add(records[0], now=T0) is None
    assert batcher.add(records[1], now=T0 + 10) is None
    full = batcher.add(records[2], now=T0 + 20)
    assert full is not None
    assert full.signed.header.count == 3
    assert full.signed.header.sequence == 1
    assert batcher.add(records[3], now=T0 + 30) is None
    assert not batcher.due(T0 + 89)
    assert batcher.due(T0 + 90)
    aged = batcher.flush(T0 + 90)
    assert aged is not None
    assert aged.signed.header.sequence == 2
    assert aged.records == records[3:]
    assert batcher.flush(T0 + 91) is None
    with pytest.raises(BatchingError):
        batcher.add(record(sender=HOME, recipient=VISITED), now=T0)
    with pytest.raises(BatchingError):
        Batcher(A, HOME_KEY, sender=VISITED, recipient=HOME)


def test_the_signed_header_round_trips_and_its_anchor_holds_no_record() -> None:
    b = batch()
    raw = b.signed.encode()
    assert SignedBatchHeader.decode(raw) == b.signed
    payload = anchor_payload(b.signed)
    assert len(payload.data) <= MAX_DATA
    assert header_from_payload(payload) == b.signed
    assert all(r.imsi_hash not in payload.data for r in b.records)
    header = b.signed.header
    assert header.total_charge == sum(r.charge for r in b.records)
    assert header.count == 3


@given(st.binary(max_size=300))
def test_hostile_header_and_ack_bytes_raise_only_named_errors(data: bytes) -> None:
    with pytest.raises(MalformedBatchError):
        SignedBatchHeader.decode(data)
    with pytest.raises(MalformedBatchError):
        SignedAcknowledgement.decode(data)


def test_an_honest_batch_is_accepted_and_the_ack_is_signed_by_the_hpmn() -> None:
    v = validator()
    b = batch()
    signed = v.validate(b, NOW)
    ack = signed.ack
    assert ack.accepted
    assert ack.returns == ()
    assert ack.accepted_count == 3
    assert ack.accepted_amount == b.signed.header.total_charge > 0
    assert ack.batch == b.signed.header.hash
    verify_ack(signed, A)
    assert SignedAcknowledgement.decode(signed.encode()) == signed
    assert len(ack_anchor(signed).data) <= MAX_DATA
    assert v.next_sequence == 2


def test_forged_replayed_wrongly_signed_and_outside_batches_are_refused_and_change_nothing() -> (
    None
):
    v = validator()
    b = batch()
    bad_signature = replace(b, signed=replace(b.signed, signature=Signature(bytes(64))))
    by_mallory = replace(
        b,
        signed=replace(b.signed, signature=MALLORY_KEY.sign(b.signed.header.signing_message())),
    )
    by_home = replace(
        b, signed=replace(b.signed, signature=HOME_KEY.sign(b.signed.header.signing_message()))
    )
    tampered = replace(
        b, records=(replace(b.records[0], charge=b.records[0].charge + 1), *b.records[1:])
    )
    other_version = seal(A.amend(tax_bp=5), VISITED_KEY, b.records, sequence=1, now=NOW)
    outside = (record(up=1, start=A.valid_until),)  # after the validity period
    cases: list[tuple[Batch, type[BatchError] | type[RecordOutsideAgreementError]]] = [
        (bad_signature, ForgedHeaderError),
        (by_mallory, WrongSignerError),
        (by_home, WrongSignerError),
        (tampered, ForgedHeaderError),
        (other_version, ForgedHeaderError),
        (batch(records=outside), RecordOutsideAgreementError),
    ]
    for hostile, error in cases:
        with pytest.raises(error):
            v.validate(hostile, NOW)
        assert v.next_sequence == 1
        assert len(v.window) == 0
    v.validate(b, NOW)
    with pytest.raises(ReplayedBatchError):
        v.validate(b, NOW)
    assert v.next_sequence == 2


def test_fatal_returns_sequence_gap_and_audit_totals() -> None:
    v = validator()
    gap = v.validate(batch(sequence=2), NOW).ack
    assert gap.fatal is FatalCode.SEQUENCE_GAP
    assert gap.accepted_amount == 0
    b = batch()
    assert v.validate(resigned(b, total_charge=2_300), NOW).ack.fatal is FatalCode.AUDIT_TOTAL
    assert v.validate(resigned(b, count=4), NOW).ack.fatal is FatalCode.AUDIT_COUNT
    assert v.next_sequence == 1
    assert len(v.window) == 0
    assert v.validate(b, NOW).ack.accepted


def test_record_returns_duplicates_charges_impossible_and_late() -> None:
    v = validator()
    first = usage(2)
    v.validate(batch(records=first), NOW)
    late_start = NOW - 40 * 86_400
    late = rated(record(kind=EventType.SMS_MO, start=late_start))
    future = rated(record(kind=EventType.SMS_MO, start=NOW + 3_600))
    overcharged = replace(rated(record(kind=EventType.MOC, duration=61, start=T0)), charge=99_999)
    long_call = rated(record(kind=EventType.MOC, duration=8 * 86_400, start=T0 + 5))
    records = (first[0], overcharged, late, late, future, long_call)
    b = seal(A, VISITED_KEY, records, sequence=2, now=NOW)
    ack = v.validate(b, NOW).ack
    severe, warning = Severity.SEVERE, Severity.WARNING
    assert ack.returns == (
        RecordReturn(index=0, severity=severe, code=ReturnCode.DUPLICATE),
        RecordReturn(index=1, severity=severe, code=ReturnCode.CHARGE_MISMATCH),
        RecordReturn(index=2, severity=warning, code=ReturnCode.LATE),
        RecordReturn(index=3, severity=severe, code=ReturnCode.DUPLICATE),
        RecordReturn(index=4, severity=severe, code=ReturnCode.IMPOSSIBLE_VALUE),
        RecordReturn(index=5, severity=severe, code=ReturnCode.IMPOSSIBLE_VALUE),
    )
    assert ack.accepted_count == 1
    assert ack.accepted_amount == late.charge
    # the corrected record (same event, right charge) is accepted in the next batch
    corrected = rated(overcharged)
    assert corrected.event_id == overcharged.event_id
    assert (
        v.validate(seal(A, VISITED_KEY, (corrected,), sequence=3, now=NOW), NOW).ack.returns == ()
    )


def test_the_duplicate_window_is_eighty_days_and_bounded() -> None:
    window = DuplicateWindow(capacity=3)
    window.add((bytes([i]) * 32, T0 + i) for i in range(3))
    assert len(window) == 3
    assert window.horizon == T0 + 2 - DUPLICATE_WINDOW_S
    window.add([(b"\x09" * 32, T0 + DUPLICATE_WINDOW_S + 1)])
    assert b"\x00" * 32 not in window
    assert b"\x01" * 32 in window
    assert window.horizon == T0 + 1
    assert len(window) == 3
    window.add((bytes([10 + i]) * 32, T0 + DUPLICATE_WINDOW_S + 2 + i) for i in range(3))
    assert len(window) == 3  # full: the oldest went and the horizon rose past it
    assert window.horizon > T0 + DUPLICATE_WINDOW_S + 1


def test_an_event_the_window_cannot_vouch_for_is_not_paid() -> None:
    v = Validator(A, HOME_KEY, window=DuplicateWindow(capacity=1))
    v.validate(batch(records=usage(2)), NOW)  # the older of the two is forgotten
    again = seal(A, VISITED_KEY, usage(1), sequence=2, now=NOW)
    assert v.validate(again, NOW).ack.returns == (
        RecordReturn(index=0, severity=Severity.SEVERE, code=ReturnCode.TOO_OLD),
    )


def test_an_ack_signed_by_anyone_but_the_hpmn_is_refused() -> None:
    signed = validator().validate(batch(), NOW)
    by_vpmn = replace(signed, signature=VISITED_KEY.sign(signed.ack.signing_message()))
    with pytest.raises(WrongSignerError):
        verify_ack(by_vpmn, A)
    inflated = replace(signed, ack=replace(signed.ack, accepted_amount=10**9))
    with pytest.raises(ForgedHeaderError):
        verify_ack(inflated, A)
    raw = bytearray(signed.encode())
    raw[-1] ^= 1  # a returns byte
    with pytest.raises(MalformedBatchError):
        SignedAcknowledgement.decode(bytes(raw + b"\x00" * 6))
    assert BatchHeader.decode(batch().signed.header.encode()) == batch().signed.header
