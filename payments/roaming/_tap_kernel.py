"""The Numba kernel behind `tap.read_tap`: a TAP 3.12 call event list, read in one walk.

`scan` takes a transfer batch's bytes, finds its CallEventDetailList (3) among the top-level
fields, checks every BER rule of `ber.parse` over the list's whole subtree (tags, lengths,
nesting depth, element count) and then reads each event as `tap_events` does, field by field,
into one row of an int64 table (the `COL_*` columns): the event kind as an `EventType` value,
its offset, the IMSI, MSISDN and APN as (start, length) slices of the input, the start time as
local seconds plus its UtcTimeOffsetCode (resolved by the caller), duration, volumes and charge.

It raises nothing: anything it does not fully understand or that breaks a rule (an indefinite
length below the event list, a repeated field, a bad digit, a charge sum past int64, more
events than the caller allows...) makes it return `DECLINE`, and `read_tap` then runs the
tree-based reader, which names the broken rule and its offset. So for every input the kernel
either declines or gives what the reference gives; the differential tests in
`tests/payments/roaming/test_tap_kernel.py` hold it to that. The BER and field primitives it
uses are in `_ber_kernel.py`.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from ._ber_kernel import (
    APPLICATION,
    I64,
    MAX_FIELDS,
    U8,
    contents_end,
    digits,
    fields_ok,
    get,
    header,
    kernel,
    local_seconds,
    sub,
    text_ok,
    tree_elements,
    unsigned,
)
from .record import APN_MAX, EventType

OK: Final = 0
DECLINE: Final = 1

COL_KIND: Final = 0
COL_OFFSET: Final = 1
COL_IMSI: Final = 2
COL_IMSI_LEN: Final = 3
COL_MSISDN: Final = 4
COL_MSISDN_LEN: Final = 5
"""0: the event names no MSISDN."""
COL_APN: Final = 6
COL_APN_LEN: Final = 7
COL_LOCAL: Final = 8
"""The start time stamp in local seconds (as if UTC); the caller subtracts the code's offset."""
COL_CODE: Final = 9
COL_DURATION: Final = 10
COL_UP: Final = 11
COL_DOWN: Final = 12
COL_CHARGE: Final = 13
COLUMNS: Final = 14

_IMSI_SHORTEST: Final = 6
_APN_LONGEST: Final = min(63, APN_MAX)
_INT64_MAX: Final = (1 << 63) - 1

_DATA: Final = int(EventType.DATA)
_MOC: Final = int(EventType.MOC)
_MTC: Final = int(EventType.MTC)
_SMS_MO: Final = int(EventType.SMS_MO)
_SMS_MT: Final = int(EventType.SMS_MT)
_SUPPLEMENTARY: Final = int(EventType.SUPPLEMENTARY)
_BATCH_IDENTIFIER: Final = 0x61
"""APPLICATION, constructed, tag 1: a TransferBatch."""
_LIST_IDENTIFIER: Final = 0x63
"""APPLICATION, constructed, tag 3: the CallEventDetailList."""


# -- call events (`tap_events.py`, tag for tag) ------------------------------------------------


@kernel
def _charge(data: U8, value: int, stop: int, seen: I64) -> int:
    """The total charge over an optional ChargeInformationList 70; -1: declined."""
    listing, pos, end = get(data, value, stop, 70)
    if listing < 0:
        return 0
    if not listing & 0x20:
        return -1
    total = 0
    while pos < end:
        first, tag, start, after = header(data, pos, end)
        if first >> 6 != APPLICATION or tag != 69 or not fields_ok(data, first, start, after, seen):
            return -1
        details, d_pos, d_end = get(data, start, after, 64)
        if details < 0 or not details & 0x20:
            return -1
        while d_pos < d_end:
            item, item_tag, i_start, i_stop = header(data, d_pos, d_end)
            if item >> 6 != APPLICATION or item_tag != 63:
                return -1
            if not fields_ok(data, item, i_start, i_stop, seen):
                return -1
            kind, k_start, k_stop = get(data, i_start, i_stop, 71)
            if not text_ok(data, kind, k_start, k_stop, 2, 3):
                return -1
            if k_stop - k_start == 2 and data[k_start] == 0x30 and data[k_start + 1] == 0x30:
                f, c_start, c_stop = get(data, i_start, i_stop, 62)
                amount = unsigned(data, f, c_start, c_stop, 8)
                if amount < 0 or amount > _INT64_MAX - total:
                    return -1
                total += amount
            d_pos = i_stop
        pos = after
    return total


@kernel
def _subscriber(data: U8, value: int, stop: int, seen: I64, row: I64) -> bool:
    """SimChargeableSubscriber 199 of a ChargeableSubscriber: Imsi 129, Msisdn 152 (optional)."""
    sim, s_start, s_stop = sub(data, value, stop, 199, seen)
    if sim < 0:
        return False
    f, start, end = get(data, s_start, s_stop, 129)
    if digits(data, f, start, end) < _IMSI_SHORTEST:
        return False
    row[COL_IMSI], row[COL_IMSI_LEN] = start, end - start
    f, start, end = get(data, s_start, s_stop, 152)
    row[COL_MSISDN], row[COL_MSISDN_LEN] = 0, 0
    if f >= 0:
        if digits(data, f, start, end) < 1:
            return False
        row[COL_MSISDN], row[COL_MSISDN_LEN] = start, end - start
    return True


@kernel
def _stamp(data: U8, value: int, stop: int, tag: int, seen: I64, row: I64) -> bool:
    """An event time stamp (44 or 74): LocalTimeStamp 16 and UtcTimeOffsetCode 232."""
    stamp, start, end = sub(data, value, stop, tag, seen)
    if stamp < 0:
        return False
    f, c_start, c_stop = get(data, start, end, 232)
    row[COL_CODE] = unsigned(data, f, c_start, c_stop, 2)
    f, l_start, l_stop = get(data, start, end, 16)
    row[COL_LOCAL] = local_seconds(data, f, l_start, l_stop)
    return bool(row[COL_CODE] >= 0 and row[COL_LOCAL] >= 0)


@kernel
def _need_unsigned(data: U8, value: int, stop: int, tag: int) -> int:
    f, start, end = get(data, value, stop, tag)
    return unsigned(data, f, start, end, 8)


@kernel
def _gprs(data: U8, value: int, stop: int, seen: I64, row: I64) -> bool:
    info, i_start, i_stop = sub(data, value, stop, 114, seen)
    if info < 0:
        return False
    gprs_sub, g_start, g_stop = sub(data, i_start, i_stop, 115, seen)
    if gprs_sub < 0:
        return False
    chargeable, c_start, c_stop = sub(data, g_start, g_stop, 427, seen)
    if chargeable < 0 or not _subscriber(data, c_start, c_stop, seen, row):
        return False
    row[COL_APN], row[COL_APN_LEN] = 0, 0
    destination, d_start, d_stop = get(data, i_start, i_stop, 116)
    if destination >= 0:
        if not fields_ok(data, destination, d_start, d_stop, seen):
            return False
        apn, a_start, a_stop = get(data, d_start, d_stop, 261)
        if apn >= 0:
            if not text_ok(data, apn, a_start, a_stop, 0, _APN_LONGEST):
                return False
            for i in range(a_start, a_stop):
                c = data[i]
                if not (
                    0x30 <= c <= 0x39
                    or 0x41 <= c <= 0x5A
                    or 0x61 <= c <= 0x7A
                    or c == 0x2D
                    or c == 0x2E
                ):
                    return False
            row[COL_APN], row[COL_APN_LEN] = a_start, a_stop - a_start
    used, u_start, u_stop = sub(data, value, stop, 121, seen)
    if used < 0 or not _stamp(data, i_start, i_stop, 44, seen, row):
        return False
    row[COL_KIND] = _DATA
    row[COL_DURATION] = _need_unsigned(data, i_start, i_stop, 223)
    row[COL_UP] = _need_unsigned(data, u_start, u_stop, 251)
    row[COL_DOWN] = _need_unsigned(data, u_start, u_stop, 250)
    row[COL_CHARGE] = _charge(data, u_start, u_stop, seen)
    return bool(
        row[COL_DURATION] >= 0 and row[COL_UP] >= 0 and row[COL_DOWN] >= 0 and row[COL_CHARGE] >= 0
    )


@kernel
def _call(data: U8, tag: int, value: int, stop: int, seen: I64, row: I64) -> bool:
    info, i_start, i_stop = sub(data, value, stop, 147 if tag == 9 else 153, seen)
    if info < 0:
        return False
    chargeable, c_start, c_stop = sub(data, i_start, i_stop, 427, seen)
    if chargeable < 0 or not _subscriber(data, c_start, c_stop, seen, row):
        return False
    row[COL_DURATION] = _need_unsigned(data, i_start, i_stop, 223)
    services, pos, end = get(data, value, stop, 38)
    if row[COL_DURATION] < 0 or services < 0 or not services & 0x20:
        return False
    sms = False
    charge = 0
    while pos < end:
        first, item_tag, u_start, u_stop = header(data, pos, end)
        if first >> 6 != APPLICATION or item_tag != 39:
            return False
        if not fields_ok(data, first, u_start, u_stop, seen):
            return False
        basic, b_start, b_stop = sub(data, u_start, u_stop, 36, seen)
        if basic < 0:
            return False
        service, s_start, s_stop = sub(data, b_start, b_stop, 426, seen)
        if service < 0:
            return False
        code, t_start, t_stop = get(data, s_start, s_stop, 218)
        if code >= 0:
            if not text_ok(data, code, t_start, t_stop, 2, 2):
                return False
            if data[t_start] == 0x32:
                sms = True
        amount = _charge(data, u_start, u_stop, seen)
        if amount < 0 or amount > _INT64_MAX - charge:
            return False
        charge += amount
        pos = u_stop
    if not _stamp(data, i_start, i_stop, 44, seen, row):
        return False
    if tag == 9:
        row[COL_KIND] = _SMS_MO if sms else _MOC
    else:
        row[COL_KIND] = _SMS_MT if sms else _MTC
    row[COL_UP], row[COL_DOWN], row[COL_APN], row[COL_APN_LEN] = 0, 0, 0, 0
    row[COL_CHARGE] = charge
    return True


@kernel
def _suppl(data: U8, value: int, stop: int, seen: I64, row: I64) -> bool:
    chargeable, c_start, c_stop = sub(data, value, stop, 427, seen)
    if chargeable < 0 or not _subscriber(data, c_start, c_stop, seen, row):
        return False
    used, u_start, u_stop = sub(data, value, stop, 206, seen)
    if used < 0 or not _stamp(data, u_start, u_stop, 74, seen, row):
        return False
    row[COL_KIND] = _SUPPLEMENTARY
    row[COL_DURATION], row[COL_UP], row[COL_DOWN], row[COL_APN], row[COL_APN_LEN] = 0, 0, 0, 0, 0
    row[COL_CHARGE] = _charge(data, u_start, u_stop, seen)
    return bool(row[COL_CHARGE] >= 0)


# -- the batch ---------------------------------------------------------------------------------


@kernel
def scan(data: U8, max_events: int) -> tuple[int, int, int, int, int, int, int, I64]:
    """(status, root contents start and stop, list offset, list contents start, list end,
    elements in the list's subtree counting the list, events table) of a transfer batch;
    status `DECLINE` leaves the rest 0 (so does a list of more than `max_events` events)."""
    none = np.zeros((0, COLUMNS), np.int64)
    size = data.shape[0]
    if size >= 4 and data[0] == _BATCH_IDENTIFIER and data[1] == 0x80:
        # An indefinite length at the top (as some billing systems write): the end-of-contents
        # must be the file's last two octets (an earlier one is declined as a child below).
        if data[size - 2] != 0 or data[size - 1] != 0:
            return DECLINE, 0, 0, 0, 0, 0, 0, none
        root_start, stop = 2, size - 2
    else:
        root, root_tag, root_start, stop = header(data, 0, size)
        if root != _BATCH_IDENTIFIER or root_tag != 1 or stop != size:
            return DECLINE, 0, 0, 0, 0, 0, 0, none
    pos = root_start
    found, list_at, list_start, list_stop, list_end = -1, 0, 0, 0, 0
    while pos < stop:
        if data[pos] == _LIST_IDENTIFIER and pos + 1 < stop and data[pos + 1] == 0x80:
            first, tag, start, end = (
                _LIST_IDENTIFIER,
                3,
                pos + 2,
                contents_end(data, pos + 2, stop),
            )
            if end < 0:
                return DECLINE, 0, 0, 0, 0, 0, 0, none
            after = end + 2
        else:
            first, tag, start, end = header(data, pos, stop)
            after = end
        if first < 0:
            return DECLINE, 0, 0, 0, 0, 0, 0, none
        if tag == 3 and first >> 6 == APPLICATION:
            if found >= 0 or not first & 0x20:
                return DECLINE, 0, 0, 0, 0, 0, 0, none
            found, list_at, list_start, list_stop, list_end = first, pos, start, end, after
        pos = after
    if found < 0:
        return DECLINE, 0, 0, 0, 0, 0, 0, none
    elements = tree_elements(data, list_start, list_stop, 2)
    if elements < 0:
        return DECLINE, 0, 0, 0, 0, 0, 0, none
    count = 0
    pos = list_start
    while pos < list_stop:
        _, _, _, pos = header(data, pos, list_stop)
        count += 1
    if count > max_events:
        return DECLINE, 0, 0, 0, 0, 0, 0, none
    table = np.empty((count, COLUMNS), np.int64)
    seen = np.empty(MAX_FIELDS, np.int64)
    pos = list_start
    for i in range(count):
        first, tag, start, end = header(data, pos, list_stop)
        row = table[i]
        row[COL_OFFSET] = pos
        if first >> 6 != APPLICATION or not fields_ok(data, first, start, end, seen):
            return DECLINE, 0, 0, 0, 0, 0, 0, none
        if tag == 14:
            ok = _gprs(data, start, end, seen, row)
        elif tag == 9 or tag == 10:
            ok = _call(data, tag, start, end, seen, row)
        elif tag == 11:
            ok = _suppl(data, start, end, seen, row)
        else:
            ok = False
        if not ok:
            return DECLINE, 0, 0, 0, 0, 0, 0, none
        pos = end
    return OK, root_start, stop, list_at, list_start, list_end, elements + 1, table
