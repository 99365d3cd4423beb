"""The Numba kernel behind `tap.read_tap`: a TAP 3.12 call event list, read in one walk.

`scan` takes a transfer batch's bytes, finds its CallEventDetailList (3) among the top-level
fields, checks every BER rule of `ber.parse` over the list's whole subtree (tags, lengths,
nesting depth, element count) and then reads each event as `tap_events` does, field by field,
into one row of an int64 table (the `COL_*` columns): the event kind as an `EventType` value,
its offset, the IMSI, MSISDN and APN as (start, length) slices of the input, the start time as
local seconds plus its UtcTimeOffsetCode (resolved by the caller), duration, volumes and charge.

It raises nothing: anything it does not fully understand or that breaks a rule (an indefinite
length, a repeated field, a bad digit, a charge sum past int64, more than `MAX_EVENTS`
events...) makes it return `DECLINE`, and `read_tap` then runs the tree-based reader, which
names the broken rule and its offset. So for every input the kernel either declines or gives
what the reference gives; the differential tests in `tests/payments/roaming/test_tap_kernel.py`
hold it to that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

import numba
import numpy as np
from numpy.typing import NDArray

from .ber import MAX_DEPTH
from .record import APN_MAX, EventType

_F = TypeVar("_F", bound=Callable[..., Any])
U8 = NDArray[np.uint8]
I64 = NDArray[np.int64]

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

_MAX_FIELDS: Final = 64
"""More fields than this in one SEQUENCE: declined (the reference reads any number)."""
_IMSI_SHORTEST: Final = 6
_DIGITS_LONGEST: Final = 15
_APN_LONGEST: Final = min(63, APN_MAX)
_INT64_MAX: Final = (1 << 63) - 1

_DATA: Final = int(EventType.DATA)
_MOC: Final = int(EventType.MOC)
_MTC: Final = int(EventType.MTC)
_SMS_MO: Final = int(EventType.SMS_MO)
_SMS_MT: Final = int(EventType.SMS_MT)
_SUPPLEMENTARY: Final = int(EventType.SUPPLEMENTARY)
_APPLICATION: Final = 1
_BATCH_IDENTIFIER: Final = 0x61
"""APPLICATION, constructed, tag 1: a TransferBatch."""
_LIST_IDENTIFIER: Final = 0x63
"""APPLICATION, constructed, tag 3: the CallEventDetailList."""


def _kernel(fn: _F) -> _F:
    return cast("_F", numba.njit(cache=True, nogil=True, error_model="numpy")(fn))


# -- BER ---------------------------------------------------------------------------------------


@_kernel
def _header(data: U8, pos: int, end: int) -> tuple[int, int, int, int]:
    """(identifier octet, tag number, contents start, contents stop) of the element at `pos`
    inside `end`, by the rules of `ber.parse`; identifier -1: broken or indefinite (declined)."""
    if pos >= end:
        return -1, 0, 0, 0
    first = int(data[pos])
    if first == 0:
        return -1, 0, 0, 0
    tag = first & 0x1F
    p = pos + 1
    if tag == 0x1F:
        number = 0
        for i in range(5):
            if i == 4 or p >= end:
                return -1, 0, 0, 0
            b = int(data[p])
            p += 1
            if i == 0 and b == 0x80:
                return -1, 0, 0, 0
            number = (number << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        if number < 0x1F:
            return -1, 0, 0, 0
        tag = number
    if p >= end:
        return -1, 0, 0, 0
    length = int(data[p])
    p += 1
    if length == 0x80:
        return -1, 0, 0, 0
    if length > 0x80:
        n = length & 0x7F
        if n > 4 or p + n > end:
            return -1, 0, 0, 0
        length = 0
        for i in range(n):
            length = (length << 8) | int(data[p + i])
        p += n
    if p + length > end:
        return -1, 0, 0, 0
    return first, tag, p, p + length


@_kernel
def _tree_elements(data: U8, pos: int, end: int, depth: int) -> int:
    """How many elements lie in `data[pos:end]`, checked whole as the contents of a constructed
    value whose children are at `depth`; -1 if any rule breaks."""
    ends = np.empty(MAX_DEPTH + 2, np.int64)
    top = 0
    ends[0] = end
    count = 0
    while True:
        if pos == ends[top]:
            if top == 0:
                return count
            top -= 1
            depth -= 1
            continue
        first, _, value, stop = _header(data, pos, ends[top])
        if first < 0:
            return -1
        count += 1
        if first & 0x20:
            if depth + 1 > MAX_DEPTH:
                return -1
            top += 1
            ends[top] = stop
            depth += 1
            pos = value
        else:
            pos = stop


@_kernel
def _contents_end(data: U8, pos: int, end: int) -> int:
    """Where the end-of-contents of an indefinite-length value whose children (definite
    lengths only) start at `pos` lies, inside `end`; -1: none there, or a child declined."""
    while pos + 1 < end:
        if data[pos] == 0:
            return pos if data[pos + 1] == 0 else -1
        first, _, _, pos = _header(data, pos, end)
        if first < 0:
            return -1
    return -1


# -- fields (the contents are BER-checked by now) ----------------------------------------------


@_kernel
def _fields_ok(data: U8, first: int, value: int, stop: int, seen: I64) -> bool:
    """Whether an element can be read as `fields.Fields`: constructed, every field in the
    APPLICATION class, no tag twice."""
    if first < 0 or not first & 0x20:
        return False
    n = 0
    pos = value
    while pos < stop:
        child, tag, _, end = _header(data, pos, stop)
        if child >> 6 != _APPLICATION or n == _MAX_FIELDS:
            return False
        for i in range(n):
            if seen[i] == tag:
                return False
        seen[n] = tag
        n += 1
        pos = end
    return True


@_kernel
def _get(data: U8, value: int, stop: int, tag: int) -> tuple[int, int, int]:
    """(identifier, contents start, stop) of the field with `tag`; identifier -1: absent."""
    pos = value
    while pos < stop:
        first, found, start, end = _header(data, pos, stop)
        if found == tag:
            return first, start, end
        pos = end
    return -1, 0, 0


@_kernel
def _sub(data: U8, value: int, stop: int, tag: int, seen: I64) -> tuple[int, int, int]:
    """A mandatory constructed field read as `Fields`; identifier -1 if it is not one."""
    first, start, end = _get(data, value, stop, tag)
    if not _fields_ok(data, first, start, end, seen):
        return -1, 0, 0
    return first, start, end


@_kernel
def _unsigned(data: U8, first: int, start: int, stop: int, max_octets: int) -> int:
    """A minimally encoded INTEGER of 1..`max_octets` octets that is not negative; -1 if not."""
    n = stop - start
    if first < 0 or first & 0x20 or n < 1 or n > max_octets or data[start] >= 0x80:
        return -1
    if n > 1 and data[start] == 0 and data[start + 1] < 0x80:
        return -1
    value = 0
    for i in range(start, stop):
        value = (value << 8) | int(data[i])
    return value


@_kernel
def _text_ok(data: U8, first: int, start: int, stop: int, shortest: int, longest: int) -> bool:
    """Printable ASCII of `shortest`..`longest` characters (`Element.text`)."""
    if first < 0 or first & 0x20 or not shortest <= stop - start <= longest:
        return False
    printable = True
    for i in range(start, stop):
        printable = printable and 0x20 <= data[i] <= 0x7E
    return printable


@_kernel
def _digits(data: U8, first: int, start: int, stop: int) -> int:
    """How many digits a packed digit string (`Element.digits`, at most 15) holds; -1: broken."""
    n = stop - start
    if first < 0 or first & 0x20 or n < 1 or n > (_DIGITS_LONGEST + 1) // 2:
        return -1
    for i in range(start, stop):
        high, low = data[i] >> 4, data[i] & 0x0F
        if high > 9 or (low > 9 and not (i == stop - 1 and low == 0x0F)):
            return -1
    count = 2 * n - 1 if data[stop - 1] & 0x0F == 0x0F else 2 * n
    return count if count <= _DIGITS_LONGEST else -1


@_kernel
def _number(data: U8, start: int, count: int) -> int:
    value = 0
    for i in range(start, start + count):
        value = value * 10 + int(data[i]) - 0x30
    return value


@_kernel
def _local_seconds(data: U8, first: int, start: int, stop: int) -> int:
    """A `YYYYMMDDHHMMSS` time stamp as seconds since the epoch as if UTC; -1: not a time."""
    if first < 0 or first & 0x20 or stop - start != 14:
        return -1
    for i in range(start, stop):
        if not 0x30 <= data[i] <= 0x39:
            return -1
    year, month, day = (
        _number(data, start, 4),
        _number(data, start + 4, 2),
        _number(data, start + 6, 2),
    )
    hour, minute = _number(data, start + 8, 2), _number(data, start + 10, 2)
    second = _number(data, start + 12, 2)
    if year < 1970 or not 1 <= month <= 12 or hour >= 24 or minute >= 60 or second >= 60:
        return -1
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days_in_month = (
        29 if month == 2 and leap else (28 if month == 2 else 30 + ((month + month // 8) & 1))
    )
    if not 1 <= day <= days_in_month:
        return -1
    # Days from 1970-01-01 to the date (the proleptic Gregorian calendar, March-based years).
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (9 if month <= 2 else -3)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return days * 86400 + hour * 3600 + minute * 60 + second


# -- call events (`tap_events.py`, tag for tag) ------------------------------------------------


@_kernel
def _charge(data: U8, value: int, stop: int, seen: I64) -> int:
    """The total charge over an optional ChargeInformationList 70; -1: declined."""
    listing, pos, end = _get(data, value, stop, 70)
    if listing < 0:
        return 0
    if not listing & 0x20:
        return -1
    total = 0
    while pos < end:
        first, tag, start, after = _header(data, pos, end)
        if (
            first >> 6 != _APPLICATION
            or tag != 69
            or not _fields_ok(data, first, start, after, seen)
        ):
            return -1
        details, d_pos, d_end = _get(data, start, after, 64)
        if details < 0 or not details & 0x20:
            return -1
        while d_pos < d_end:
            item, item_tag, i_start, i_stop = _header(data, d_pos, d_end)
            if item >> 6 != _APPLICATION or item_tag != 63:
                return -1
            if not _fields_ok(data, item, i_start, i_stop, seen):
                return -1
            kind, k_start, k_stop = _get(data, i_start, i_stop, 71)
            if not _text_ok(data, kind, k_start, k_stop, 2, 3):
                return -1
            if k_stop - k_start == 2 and data[k_start] == 0x30 and data[k_start + 1] == 0x30:
                f, c_start, c_stop = _get(data, i_start, i_stop, 62)
                amount = _unsigned(data, f, c_start, c_stop, 8)
                if amount < 0 or amount > _INT64_MAX - total:
                    return -1
                total += amount
            d_pos = i_stop
        pos = after
    return total


@_kernel
def _subscriber(data: U8, value: int, stop: int, seen: I64, row: I64) -> bool:
    """SimChargeableSubscriber 199 of a ChargeableSubscriber: Imsi 129, Msisdn 152 (optional)."""
    sim, s_start, s_stop = _sub(data, value, stop, 199, seen)
    if sim < 0:
        return False
    f, start, end = _get(data, s_start, s_stop, 129)
    if _digits(data, f, start, end) < _IMSI_SHORTEST:
        return False
    row[COL_IMSI], row[COL_IMSI_LEN] = start, end - start
    f, start, end = _get(data, s_start, s_stop, 152)
    row[COL_MSISDN], row[COL_MSISDN_LEN] = 0, 0
    if f >= 0:
        if _digits(data, f, start, end) < 1:
            return False
        row[COL_MSISDN], row[COL_MSISDN_LEN] = start, end - start
    return True


@_kernel
def _stamp(data: U8, value: int, stop: int, tag: int, seen: I64, row: I64) -> bool:
    """An event time stamp (44 or 74): LocalTimeStamp 16 and UtcTimeOffsetCode 232."""
    stamp, start, end = _sub(data, value, stop, tag, seen)
    if stamp < 0:
        return False
    f, c_start, c_stop = _get(data, start, end, 232)
    row[COL_CODE] = _unsigned(data, f, c_start, c_stop, 2)
    f, l_start, l_stop = _get(data, start, end, 16)
    row[COL_LOCAL] = _local_seconds(data, f, l_start, l_stop)
    return bool(row[COL_CODE] >= 0 and row[COL_LOCAL] >= 0)


@_kernel
def _need_unsigned(data: U8, value: int, stop: int, tag: int) -> int:
    f, start, end = _get(data, value, stop, tag)
    return _unsigned(data, f, start, end, 8)


@_kernel
def _gprs(data: U8, value: int, stop: int, seen: I64, row: I64) -> bool:
    info, i_start, i_stop = _sub(data, value, stop, 114, seen)
    if info < 0:
        return False
    gprs_sub, g_start, g_stop = _sub(data, i_start, i_stop, 115, seen)
    if gprs_sub < 0:
        return False
    chargeable, c_start, c_stop = _sub(data, g_start, g_stop, 427, seen)
    if chargeable < 0 or not _subscriber(data, c_start, c_stop, seen, row):
        return False
    row[COL_APN], row[COL_APN_LEN] = 0, 0
    destination, d_start, d_stop = _get(data, i_start, i_stop, 116)
    if destination >= 0:
        if not _fields_ok(data, destination, d_start, d_stop, seen):
            return False
        apn, a_start, a_stop = _get(data, d_start, d_stop, 261)
        if apn >= 0:
            if not _text_ok(data, apn, a_start, a_stop, 0, _APN_LONGEST):
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
    used, u_start, u_stop = _sub(data, value, stop, 121, seen)
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


@_kernel
def _call(data: U8, tag: int, value: int, stop: int, seen: I64, row: I64) -> bool:
    info, i_start, i_stop = _sub(data, value, stop, 147 if tag == 9 else 153, seen)
    if info < 0:
        return False
    chargeable, c_start, c_stop = _sub(data, i_start, i_stop, 427, seen)
    if chargeable < 0 or not _subscriber(data, c_start, c_stop, seen, row):
        return False
    row[COL_DURATION] = _need_unsigned(data, i_start, i_stop, 223)
    services, pos, end = _get(data, value, stop, 38)
    if row[COL_DURATION] < 0 or services < 0 or not services & 0x20:
        return False
    sms = False
    charge = 0
    while pos < end:
        first, item_tag, u_start, u_stop = _header(data, pos, end)
        if first >> 6 != _APPLICATION or item_tag != 39:
            return False
        if not _fields_ok(data, first, u_start, u_stop, seen):
            return False
        basic, b_start, b_stop = _sub(data, u_start, u_stop, 36, seen)
        if basic < 0:
            return False
        service, s_start, s_stop = _sub(data, b_start, b_stop, 426, seen)
        if service < 0:
            return False
        code, t_start, t_stop = _get(data, s_start, s_stop, 218)
        if code >= 0:
            if not _text_ok(data, code, t_start, t_stop, 2, 2):
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


@_kernel
def _suppl(data: U8, value: int, stop: int, seen: I64, row: I64) -> bool:
    chargeable, c_start, c_stop = _sub(data, value, stop, 427, seen)
    if chargeable < 0 or not _subscriber(data, c_start, c_stop, seen, row):
        return False
    used, u_start, u_stop = _sub(data, value, stop, 206, seen)
    if used < 0 or not _stamp(data, u_start, u_stop, 74, seen, row):
        return False
    row[COL_KIND] = _SUPPLEMENTARY
    row[COL_DURATION], row[COL_UP], row[COL_DOWN], row[COL_APN], row[COL_APN_LEN] = 0, 0, 0, 0, 0
    row[COL_CHARGE] = _charge(data, u_start, u_stop, seen)
    return bool(row[COL_CHARGE] >= 0)


# -- the batch ---------------------------------------------------------------------------------


@_kernel
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
        root, root_tag, root_start, stop = _header(data, 0, size)
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
                _contents_end(data, pos + 2, stop),
            )
            if end < 0:
                return DECLINE, 0, 0, 0, 0, 0, 0, none
            after = end + 2
        else:
            first, tag, start, end = _header(data, pos, stop)
            after = end
        if first < 0:
            return DECLINE, 0, 0, 0, 0, 0, 0, none
        if tag == 3 and first >> 6 == _APPLICATION:
            if found >= 0 or not first & 0x20:
                return DECLINE, 0, 0, 0, 0, 0, 0, none
            found, list_at, list_start, list_stop, list_end = first, pos, start, end, after
        pos = after
    if found < 0:
        return DECLINE, 0, 0, 0, 0, 0, 0, none
    elements = _tree_elements(data, list_start, list_stop, 2)
    if elements < 0:
        return DECLINE, 0, 0, 0, 0, 0, 0, none
    count = 0
    pos = list_start
    while pos < list_stop:
        _, _, _, pos = _header(data, pos, list_stop)
        count += 1
    if count > max_events:
        return DECLINE, 0, 0, 0, 0, 0, 0, none
    table = np.empty((count, COLUMNS), np.int64)
    seen = np.empty(_MAX_FIELDS, np.int64)
    pos = list_start
    for i in range(count):
        first, tag, start, end = _header(data, pos, list_stop)
        row = table[i]
        row[COL_OFFSET] = pos
        if first >> 6 != _APPLICATION or not _fields_ok(data, first, start, end, seen):
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
