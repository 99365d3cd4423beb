"""The details of a batch's returns, as a carrier expects them from a RAP (TD.32) return: for each
returned record its error code and severity, the record field and the TAP 3.12 element at fault,
and the value found against the value expected; for a batch rejected whole, the same for its
header (fatal).

The signed acknowledgement carries the compact form (index, severity, code: `acknowledgement.py`)
so that it stays small and its summary fits a ledger anchor. `explain` derives the details from
that acknowledgement, the batch it answers and the agreement, the same way on both sides: the
expected charge is the agreement's rating (which both carriers compute to the last unit), the
bounds are the validator's (`validation.py`). Nothing here is taken on trust from the partner
beyond the signed acknowledgement: `explain` refuses an acknowledgement of another batch.
The TAP element names are the field names of TD.57 (facts, no text of the specification).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .acknowledgement import FatalCode, ReturnCode
from .errors import ForgedHeaderError
from .rating import rate
from .validation import CLOCK_SKEW_S, LATE_S, MAX_DURATION_S, MAX_VOLUME

if TYPE_CHECKING:
    from .acknowledgement import RecordReturn, SignedAcknowledgement
    from .agreement import Agreement
    from .batch import Batch, BatchHeader
    from .record import UsageRecord

FATAL: Final = "fatal"
_START: Final = ("start_utc", "CallEventStartTimeStamp")
_TAP_FIELDS: Final = {
    ReturnCode.DUPLICATE: ("event_id", "CallEventDetail"),
    ReturnCode.TOO_OLD: _START,
    ReturnCode.CHARGE_MISMATCH: ("charge", "ChargeInformation/ChargeDetail/Charge"),
    ReturnCode.LATE: _START,
    ReturnCode.BARRED: ("imsi_hash", "ChargeableSubscriber/SimChargeableSubscriber/Imsi"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnDetail:
    """One returned record, or (index None) the batch rejected whole."""

    index: int | None
    """The record's position in the batch; None for a fatal return of the whole batch."""
    event_id: bytes | None
    severity: str
    """"fatal" (the batch), "severe" (not paid) or "warning" (paid), as RAP grades them."""
    code: int
    """The acknowledgement's code: `ReturnCode` (a record) or `FatalCode` (the batch)."""
    reason: str
    """The code's name, lower case."""
    field: str
    """The canonical record's (or header's) field at fault."""
    tap_element: str
    """Where that value sits in a TAP 3.12 file."""
    found: int | None
    """The value the VPMN sent (None where the fault is not one number)."""
    expected: int | None
    """What the HPMN expected (the rated charge, the count) or the bound it crossed."""
    message: str

    def to_json_object(self) -> dict[str, object]:
        return {
            "index": self.index,
            "event_id": None if self.event_id is None else self.event_id.hex(),
            "severity": self.severity,
            "code": self.code,
            "reason": self.reason,
            "field": self.field,
            "tap_element": self.tap_element,
            "found": self.found,
            "expected": self.expected,
            "message": self.message,
        }


def _fatal(header: BatchHeader, records: tuple[UsageRecord, ...], code: FatalCode) -> ReturnDetail:
    expected: int | None
    if code is FatalCode.SEQUENCE_GAP:
        field, element = "sequence", "BatchControlInfo/FileSequenceNumber"
        found, expected = header.sequence, None
        message = f"batch {found} arrived before an earlier one: a batch is missing"
    elif code is FatalCode.AUDIT_COUNT:
        field, element = "count", "AuditControlInfo/CallEventDetailsCount"
        found, expected = header.count, len(records)
        message = f"the header counts {found} records, the batch holds {expected}"
    else:
        field, element = "total_charge", "AuditControlInfo/TotalCharge"
        found, expected = header.total_charge, sum(r.charge for r in records)
        message = f"the header totals {found}, the records' charges sum to {expected}"
    return ReturnDetail(
        index=None, event_id=None, severity=FATAL, code=int(code), reason=code.name.lower(),
        field=field, tap_element=element, found=found, expected=expected, message=message,
    )  # fmt: skip


def _impossible(
    record: UsageRecord, header: BatchHeader, acked: int
) -> tuple[str, str, int | None, int | None, str]:
    """Which bound an IMPOSSIBLE_VALUE record crossed, in the validator's order; if it crossed
    none, the detail says so (the return is not this validator's: dispute it)."""
    start = record.start_utc
    if start > acked + CLOCK_SKEW_S:
        return (*_START, start, acked + CLOCK_SKEW_S, "the event starts after it was acknowledged")
    if start < header.first_start:
        return (*_START, start, header.first_start, "the event starts before the batch's span")
    if start > header.last_start:
        return (*_START, start, header.last_start, "the event starts after the batch's span")
    if record.duration_s > MAX_DURATION_S:
        return ("duration_s", "TotalCallEventDuration", record.duration_s, MAX_DURATION_S,
                "the duration is beyond the bound")  # fmt: skip
    volume = record.volume_up + record.volume_down
    if volume > MAX_VOLUME:
        return ("volume", "DataVolumeIncoming+DataVolumeOutgoing", volume, MAX_VOLUME,
                "the volume is beyond the bound")  # fmt: skip
    return ("record", "CallEventDetail", None, None,
            "returned as impossible, but the record is within every bound")  # fmt: skip


def _record(
    agreement: Agreement, header: BatchHeader, record: UsageRecord, ret: RecordReturn, acked: int
) -> ReturnDetail:
    code = ret.code
    found: int | None = None
    expected: int | None = None
    if code is ReturnCode.IMPOSSIBLE_VALUE:
        field, element, found, expected, message = _impossible(record, header, acked)
    else:
        field, element = _TAP_FIELDS[code]
        if code is ReturnCode.CHARGE_MISMATCH:
            found, expected = record.charge, rate(agreement, record).charge
            message = f"charged {found}, the agreement rates it {expected}"
        elif code is ReturnCode.LATE:
            found, expected = header.sealed_utc - record.start_utc, LATE_S
            message = f"presented {found} s after the event (more than {LATE_S} s)"
        elif code is ReturnCode.TOO_OLD:
            found = record.start_utc
            message = "older than the duplicate window: it cannot be checked, so it is not paid"
        elif code is ReturnCode.DUPLICATE:
            message = "the same event was accepted before (80-day window) or earlier in the batch"
        else:
            found = record.start_utc
            message = "the HPMN barred the subscriber before the event started"
    return ReturnDetail(
        index=ret.index, event_id=record.event_id, severity=ret.severity.name.lower(),
        code=int(code), reason=code.name.lower(), field=field, tap_element=element,
        found=found, expected=expected, message=message,
    )  # fmt: skip


def explain(
    signed: SignedAcknowledgement, batch: Batch, agreement: Agreement
) -> tuple[ReturnDetail, ...]:
    """The details of every return of `signed`, which must answer `batch` (its header hash):
    one fatal detail for a batch rejected whole, else one per returned record, by index."""
    ack = signed.ack
    header = batch.signed.header
    if ack.batch != header.hash:
        raise ForgedHeaderError(
            f"the acknowledgement of batch {ack.sequence} answers another batch"
        )
    if ack.fatal is not FatalCode.NONE:
        return (_fatal(header, batch.records, ack.fatal),)
    if any(r.index >= len(batch.records) for r in ack.returns):
        raise ForgedHeaderError("a return of a record the batch does not hold")
    return tuple(
        _record(agreement, header, batch.records[r.index], r, ack.acked_utc) for r in ack.returns
    )


def details_csv(details: tuple[ReturnDetail, ...]) -> str:
    """The details as CSV (a header row, then one row each), for a carrier's RAP desk."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = ["index", "event_id", "severity", "code", "reason", "field", "tap_element",
               "found", "expected", "message"]  # fmt: skip
    writer.writerow(columns)
    for d in details:
        row = d.to_json_object()
        writer.writerow(["" if row[c] is None else row[c] for c in columns])
    return out.getvalue()
