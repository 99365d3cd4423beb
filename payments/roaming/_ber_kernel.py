"""BER and field primitives for the Numba kernels over partner files (`_tap_kernel`).

Each function reads the bytes of a file as `ber.py` and `fields.py` do and returns a value, or
-1 / False where the reference would raise or where it is unsure; a kernel then declines and the
reference reads the file. Elements are passed as (identifier octet, contents start, contents
stop); an identifier of -1 stands for an element that is absent or was declined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

import numba
import numpy as np
from numpy.typing import NDArray

from .ber import MAX_DEPTH

_F = TypeVar("_F", bound=Callable[..., Any])
U8 = NDArray[np.uint8]
I64 = NDArray[np.int64]

APPLICATION: Final = 1
"""The APPLICATION class, the two high bits of an identifier octet."""
MAX_FIELDS: Final = 64
"""More fields than this in one SEQUENCE: declined (the reference reads any number)."""
DIGITS_LONGEST: Final = 15


def kernel(fn: _F) -> _F:
    """A Numba kernel of ours: compiled once into the cache, no GIL, no division checks (every
    divisor is a constant)."""
    return cast("_F", numba.njit(cache=True, nogil=True, error_model="numpy")(fn))


# -- BER ---------------------------------------------------------------------------------------


@kernel
def header(data: U8, pos: int, end: int) -> tuple[int, int, int, int]:
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


@kernel
def tree_elements(data: U8, pos: int, end: int, depth: int) -> int:
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
        first, _, value, stop = header(data, pos, ends[top])
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


@kernel
def contents_end(data: U8, pos: int, end: int) -> int:
    """Where the end-of-contents of an indefinite-length value whose children (definite
    lengths only) start at `pos` lies, inside `end`; -1: none there, or a child declined."""
    while pos + 1 < end:
        if data[pos] == 0:
            return pos if data[pos + 1] == 0 else -1
        first, _, _, pos = header(data, pos, end)
        if first < 0:
            return -1
    return -1


# -- fields (the contents are BER-checked by now) ----------------------------------------------


@kernel
def fields_ok(data: U8, first: int, value: int, stop: int, seen: I64) -> bool:
    """Whether an element can be read as `fields.Fields`: constructed, every field in the
    APPLICATION class, no tag twice."""
    if first < 0 or not first & 0x20:
        return False
    n = 0
    pos = value
    while pos < stop:
        child, tag, _, end = header(data, pos, stop)
        if child >> 6 != APPLICATION or n == MAX_FIELDS:
            return False
        for i in range(n):
            if seen[i] == tag:
                return False
        seen[n] = tag
        n += 1
        pos = end
    return True


@kernel
def get(data: U8, value: int, stop: int, tag: int) -> tuple[int, int, int]:
    """(identifier, contents start, stop) of the field with `tag`; identifier -1: absent."""
    pos = value
    while pos < stop:
        first, found, start, end = header(data, pos, stop)
        if found == tag:
            return first, start, end
        pos = end
    return -1, 0, 0


@kernel
def sub(data: U8, value: int, stop: int, tag: int, seen: I64) -> tuple[int, int, int]:
    """A mandatory constructed field read as `Fields`; identifier -1 if it is not one."""
    first, start, end = get(data, value, stop, tag)
    if not fields_ok(data, first, start, end, seen):
        return -1, 0, 0
    return first, start, end


@kernel
def unsigned(data: U8, first: int, start: int, stop: int, max_octets: int) -> int:
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


@kernel
def text_ok(data: U8, first: int, start: int, stop: int, shortest: int, longest: int) -> bool:
    """Printable ASCII of `shortest`..`longest` characters (`Element.text`)."""
    if first < 0 or first & 0x20 or not shortest <= stop - start <= longest:
        return False
    printable = True
    for i in range(start, stop):
        printable = printable and 0x20 <= data[i] <= 0x7E
    return printable


@kernel
def digits(data: U8, first: int, start: int, stop: int) -> int:
    """How many digits a packed digit string (`Element.digits`, at most 15) holds; -1: broken."""
    n = stop - start
    if first < 0 or first & 0x20 or n < 1 or n > (DIGITS_LONGEST + 1) // 2:
        return -1
    for i in range(start, stop):
        high, low = data[i] >> 4, data[i] & 0x0F
        if high > 9 or (low > 9 and not (i == stop - 1 and low == 0x0F)):
            return -1
    count = 2 * n - 1 if data[stop - 1] & 0x0F == 0x0F else 2 * n
    return count if count <= DIGITS_LONGEST else -1


@kernel
def number(data: U8, start: int, count: int) -> int:
    value = 0
    for i in range(start, start + count):
        value = value * 10 + int(data[i]) - 0x30
    return value


@kernel
def local_seconds(data: U8, first: int, start: int, stop: int) -> int:
    """A `YYYYMMDDHHMMSS` time stamp as seconds since the epoch as if UTC; -1: not a time."""
    if first < 0 or first & 0x20 or stop - start != 14:
        return -1
    for i in range(start, stop):
        if not 0x30 <= data[i] <= 0x39:
            return -1
    year, month, day = (
        number(data, start, 4),
        number(data, start + 4, 2),
        number(data, start + 6, 2),
    )
    hour, minute = number(data, start + 8, 2), number(data, start + 10, 2)
    second = number(data, start + 12, 2)
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
