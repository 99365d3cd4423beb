"""JSON Lines and CSV usage files, as newer partner systems send them.

Each line is one event with the clear IMSI (and optionally the MSISDN), hashed here at once:

```
imsi, msisdn, event_type, start_utc, duration_s, volume_up, volume_down, apn,
serving_network, charge
```

JSON Lines: one object per line with exactly these keys (`msisdn` may be "" or absent), integers
as JSON integers, `event_type` by name (`DATA`, `MOC`, ...). CSV: a header row with exactly these
column names in this order, then one row per event. What the file is (sender, recipient,
sequence number, currency, decimal places) comes from the channel it arrived over, as a
`LineFileHeader`. Hostile input is bounded: at most `MAX_LINE` bytes a line and `MAX_LINES`
lines; a line that breaks any rule raises `LineFormatError` with its 1-based line number (0 for
a bad `LineFileHeader` or a file over the size bound), and nothing of the file is returned.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .errors import (
    InvalidRecordError,
    InvalidSubscriberError,
    LineFormatError,
    MalformedRecordError,
)
from .partner_file import (
    FILE_SEQUENCE_MAX,
    FileKind,
    ImportedFile,
    PartnerFile,
    file_digest,
)
from .record import NO_MSISDN, EventType, UsageRecord, is_tadig

if TYPE_CHECKING:
    from .partner_file import ImportPolicy

COLUMNS: Final = (
    "imsi",
    "msisdn",
    "event_type",
    "start_utc",
    "duration_s",
    "volume_up",
    "volume_down",
    "apn",
    "serving_network",
    "charge",
)
MAX_LINE: Final = 1024
MAX_LINES: Final = 1_000_000
_INT: Final = re.compile(r"0|[1-9][0-9]{0,19}")
_INT_FIELDS: Final = ("start_utc", "duration_s", "volume_up", "volume_down", "charge")


@dataclass(frozen=True, slots=True, kw_only=True)
class LineFileHeader:
    """What a JSON Lines or CSV file is, as the channel it came over says."""

    sender: str
    """TADIG of the VPMN that sent it."""
    recipient: str
    """TADIG of the HPMN it is for."""
    sequence: int
    """The file's sequence number for this partner pair, 1..`FILE_SEQUENCE_MAX`."""
    currency: str
    """ISO 4217 code of the charges."""
    decimal_places: int
    """Decimal places of the integer charges."""

    def __post_init__(self) -> None:
        if not (is_tadig(self.sender) and is_tadig(self.recipient)):
            raise LineFormatError(0, "sender and recipient must be TADIG codes")
        if self.sender == self.recipient:
            raise LineFormatError(0, "sender and recipient are the same network")
        if isinstance(self.sequence, bool) or not 1 <= self.sequence <= FILE_SEQUENCE_MAX:
            raise LineFormatError(0, f"sequence must be 1..{FILE_SEQUENCE_MAX}")
        if not (len(self.currency) == 3 and self.currency.isascii() and self.currency.isupper()):
            raise LineFormatError(0, "currency must be an ISO 4217 code")
        if isinstance(self.decimal_places, bool) or not 0 <= self.decimal_places <= 6:
            raise LineFormatError(0, "decimal_places must be 0..6")


def read_jsonl(data: bytes, header: LineFileHeader, policy: ImportPolicy) -> ImportedFile:
    """Import a JSON Lines usage file, all or nothing."""
    rows = []
    for number, line in _lines(data):
        if not line.strip():
            raise LineFormatError(number, "an empty line")
        try:
            obj = json.loads(line, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        except (ValueError, RecursionError) as e:
            raise LineFormatError(number, f"not JSON: {e}") from None
        if not isinstance(obj, dict):
            raise LineFormatError(number, "a line is one JSON object")
        obj.setdefault("msisdn", "")
        if set(obj) != set(COLUMNS):
            raise LineFormatError(number, f"keys must be exactly {', '.join(COLUMNS)}")
        for name in _INT_FIELDS:
            value = obj[name]
            if isinstance(value, bool) or not isinstance(value, int):
                raise LineFormatError(number, f"{name} must be an integer")
        for name in ("imsi", "msisdn", "event_type", "apn", "serving_network"):
            if not isinstance(obj[name], str):
                raise LineFormatError(number, f"{name} must be a string")
        rows.append((number, obj))
    return _imported(FileKind.JSON_LINES, data, header, policy, rows)


def read_csv(data: bytes, header: LineFileHeader, policy: ImportPolicy) -> ImportedFile:
    """Import a CSV usage file (header row first), all or nothing."""
    lines = _lines(data)
    if not lines:
        raise LineFormatError(1, "no header row")
    rows = []
    for number, text in lines:
        try:
            fields = next(csv.reader([text], strict=True))
        except (csv.Error, StopIteration) as e:
            raise LineFormatError(number, f"not one CSV row: {e}") from None
        if number == 1:
            if tuple(fields) != COLUMNS:
                raise LineFormatError(1, f"the header row must be {','.join(COLUMNS)}")
            continue
        if len(fields) != len(COLUMNS):
            raise LineFormatError(number, f"{len(fields)} fields, {len(COLUMNS)} expected")
        obj: dict[str, object] = dict(zip(COLUMNS, fields, strict=True))
        for name in _INT_FIELDS:
            if _INT.fullmatch(fields[COLUMNS.index(name)]) is None:
                raise LineFormatError(number, f"{name} must be a decimal integer")
            obj[name] = int(fields[COLUMNS.index(name)])
        rows.append((number, obj))
    return _imported(FileKind.CSV, data, header, policy, rows)


def _lines(data: bytes) -> list[tuple[int, str]]:
    if len(data) > MAX_LINES * MAX_LINE:
        raise LineFormatError(0, "the file is too large")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LineFormatError(data.count(b"\n", 0, e.start) + 1, "not UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) > MAX_LINES:
        raise LineFormatError(MAX_LINES + 1, f"more than {MAX_LINES} lines")
    found = []
    for number, line in enumerate(lines, start=1):
        stripped = line.removesuffix("\r")
        if len(stripped.encode("utf-8")) > MAX_LINE:
            raise LineFormatError(number, f"a line longer than {MAX_LINE} bytes")
        if "\r" in stripped:
            raise LineFormatError(number, "a carriage return inside a line")
        found.append((number, stripped))
    return found


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("a key appears twice")
    return obj


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


def _imported(
    kind: FileKind,
    data: bytes,
    header: LineFileHeader,
    policy: ImportPolicy,
    rows: list[tuple[int, dict[str, object]]],
) -> ImportedFile:
    records: list[UsageRecord] = []
    unknown: list[bytes] = []
    for number, obj in rows:
        try:
            record, known = _record(obj, header, policy)
        except (InvalidRecordError, InvalidSubscriberError, MalformedRecordError) as e:
            raise LineFormatError(number, str(e)) from None
        records.append(record)
        if not known:
            unknown.append(record.event_id)
    meta = PartnerFile(
        kind=kind,
        sender=header.sender,
        recipient=header.recipient,
        sequence=header.sequence,
        digest=file_digest(data),
        local_currency=header.currency,
        decimal_places=header.decimal_places,
        unknown_range_events=tuple(unknown),
    )
    return ImportedFile(meta=meta, records=tuple(records))


def _record(
    obj: dict[str, object], header: LineFileHeader, policy: ImportPolicy
) -> tuple[UsageRecord, bool]:
    imsi_hash, known = policy.imsi(str(obj["imsi"]))
    msisdn = str(obj["msisdn"])
    name = str(obj["event_type"])
    if name not in EventType.__members__:
        raise MalformedRecordError(f"unknown event type {name[:20]!r}")
    record = UsageRecord(
        sender=header.sender,
        recipient=header.recipient,
        imsi_hash=imsi_hash,
        msisdn_hash=policy.hasher.msisdn(msisdn) if msisdn else NO_MSISDN,
        event_type=EventType[name],
        start_utc=_as_int(obj["start_utc"]),
        duration_s=_as_int(obj["duration_s"]),
        volume_up=_as_int(obj["volume_up"]),
        volume_down=_as_int(obj["volume_down"]),
        apn=str(obj["apn"]),
        serving_network=str(obj["serving_network"]),
        charge=_as_int(obj["charge"]),
    )
    return record, known


def _as_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedRecordError("expected an integer")
    return value
