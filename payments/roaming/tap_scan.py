"""The kernel path of the TAP importer: a transfer batch scanned by `_tap_kernel`, its records
built from the kernel's event table.

`scan_batch` runs the kernel over the file; where it accepts, the rest of the file (batch
control, accounting, network and audit info: a few hundred bytes) is read by the strict tree
reader around the event list (`ber.parse_around`), so `tap.py` reads those parts with the same
code on both paths. `ScannedBatch.records` then resolves each event's UtcTimeOffsetCode for the
whole table at once, hashes each distinct IMSI and MSISDN of the file once (keyed hashes are
deterministic) and builds the `UsageRecord`s. It returns None for what only the reference can
name (an undefined offset code, a time before the epoch, a value a record refuses): `read_tap`
then reads the file again the reference way and raises its error.

Importing this module costs about 50 ms (`payments` has Numba loaded already); the kernel is
loaded from Numba's cache on the first file (a few hundred ms in a fresh process: `warm_up`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from . import _tap_kernel as kernel
from ._record_bulk import build_many
from .ber import MAX_ELEMENTS, Element, TagClass, parse_around
from .errors import InvalidRecordError, InvalidSubscriberError
from .record import INSTANT_EVENTS, NO_MSISDN, EventType, UsageRecord

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .partner_file import ImportPolicy, PartnerFile

CALL_EVENT_LIST: Final = 3
_EVENT_TYPES: Final = tuple(EventType)
_INSTANT: Final = [int(kind) for kind in INSTANT_EVENTS]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannedBatch:
    """A transfer batch the kernel read: its tree without the events, and the events' table."""

    root: Element
    """The file's tree, the CallEventDetailList standing childless in it."""
    data: bytes
    """The file (the table's slices point into it)."""
    table: NDArray[np.int64]
    """One row an event, `_tap_kernel.COL_*` columns."""

    def records(
        self, meta: PartnerFile, offsets: dict[int, int], policy: ImportPolicy
    ) -> tuple[list[UsageRecord], list[bytes]] | None:
        """The records and the event ids outside the policy's IMSI ranges; None: declined."""
        table = self.table
        starts = _utc_starts(table, offsets)
        if starts is None:
            return None
        data = self.data
        msisdns: dict[bytes, bytes] = {b"": NO_MSISDN}  # an empty slice: no MSISDN
        apns: dict[bytes, str] = {}
        kinds = table[:, kernel.COL_KIND]
        durations = np.where(np.isin(kinds, _INSTANT), 0, table[:, kernel.COL_DURATION])
        imsi_slices = _slices(data, table, kernel.COL_IMSI, kernel.COL_IMSI_LEN)
        try:
            distinct = list(dict.fromkeys(imsi_slices))
            imsis = dict(zip(distinct, policy.imsis([_tbcd(raw) for raw in distinct]), strict=True))
            subscribers = [imsis[raw] for raw in imsi_slices]
            if table[:, kernel.COL_MSISDN_LEN].any():
                msisdn_hashes = [
                    msisdns.get(raw) or msisdns.setdefault(raw, policy.hasher.msisdn(_tbcd(raw)))
                    for raw in _slices(data, table, kernel.COL_MSISDN, kernel.COL_MSISDN_LEN)
                ]
            else:  # a file without MSISDNs (a data roaming file): no slice to look at
                msisdn_hashes = [NO_MSISDN] * len(imsi_slices)
            records = build_many(
                meta.sender,
                meta.recipient,
                meta.sender,
                (
                    [imsi for imsi, _ in subscribers],
                    msisdn_hashes,
                    [_EVENT_TYPES[kind] for kind in kinds.tolist()],
                    starts.tolist(),
                    durations.tolist(),
                    table[:, kernel.COL_UP].tolist(),
                    table[:, kernel.COL_DOWN].tolist(),
                    [
                        apns.get(raw) or apns.setdefault(raw, raw.decode("ascii"))
                        for raw in _slices(data, table, kernel.COL_APN, kernel.COL_APN_LEN)
                    ],
                    table[:, kernel.COL_CHARGE].tolist(),
                ),
            )
        except (InvalidRecordError, InvalidSubscriberError):
            return None
        if all(known for _, known in imsis.values()):
            return records, []
        unknown = [
            r.event_id for r, (_, known) in zip(records, subscribers, strict=True) if not known
        ]
        return records, unknown


def scan_batch(data: bytes, max_events: int) -> ScannedBatch | None:
    """The kernel's reading of a transfer batch, or None where it declines; raises the
    `RoamingFormatError` of a rule broken outside the event list."""
    status, root_start, root_stop, list_at, list_start, list_end, elements, table = kernel.scan(
        np.frombuffer(data, np.uint8), max_events
    )
    if status != kernel.OK:
        return None
    hole = Element(TagClass.APPLICATION, CALL_EVENT_LIST, list_at, list_start, True, b"", ())
    children = parse_around(
        data, root_start, root_stop, hole, list_end, max_elements=MAX_ELEMENTS - 1 - elements
    )
    root = Element(TagClass.APPLICATION, 1, 0, root_start, True, b"", children)
    return ScannedBatch(root=root, data=data, table=table)


def warm_up() -> None:
    """Compile (or load from Numba's cache) the kernel, with the argument types `scan_batch`
    passes (a read-only byte array: `np.frombuffer` of `bytes`)."""
    kernel.scan(np.frombuffer(bytes(2), np.uint8), 0)


def _utc_starts(table: NDArray[np.int64], offsets: dict[int, int]) -> NDArray[np.int64] | None:
    """Each event's start in UTC seconds, or None if a code is undefined or a start is before
    the epoch."""
    codes = table[:, kernel.COL_CODE]
    defined = np.array(sorted(offsets), np.int64)
    seconds = np.array([offsets[code] for code in sorted(offsets)], np.int64)
    at = np.searchsorted(defined, codes)
    if defined.size == 0 or (at >= defined.size).any():
        return None
    if (defined[at] != codes).any():
        return None
    starts = table[:, kernel.COL_LOCAL] - seconds[at]
    if (starts < 0).any():
        return None
    return starts


def _slices(data: bytes, table: NDArray[np.int64], at: int, length: int) -> list[bytes]:
    """Each event's slice of `data` whose start and length are the table's columns `at` and
    `length`."""
    starts = table[:, at]
    ends = starts + table[:, length]
    return [data[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def _tbcd(raw: bytes) -> str:
    """The digits of a packed digit string the kernel checked (a filler F only last)."""
    digits = raw.hex()
    return digits[:-1] if digits.endswith("f") else digits
