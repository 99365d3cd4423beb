"""Strict reading and canonical writing of OCPI JSON.

Reading: every number is parsed as `decimal.Decimal` (never a float) and turned into an exact
integer of a stated unit, or refused with `ExcessPrecisionError`; a field of the wrong JSON type,
a missing required field, an over-long string, a duplicate key or a document over
`MAX_DOCUMENT_BYTES` raises `OcpiFieldError`; an enum value OCPI does not define raises
`UnknownEnumError`. Fields OCPI does not define are ignored, as the spec asks of receivers.

Writing: `dumps` writes a canonical form (keys sorted, no spaces, UTF-8, decimals as plain
digits), so the same object always gives the same bytes (`payments.charging.ocpi_cdr` hashes them).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from .errors import ExcessPrecisionError, OcpiFieldError, UnknownCurrencyError, UnknownEnumError

MAX_DOCUMENT_BYTES = 1 << 20
"""The largest JSON document read."""
MAX_LIST = 1000
"""The longest list read inside one object (a page of a GET list is bounded separately)."""

Json = Mapping[str, object]
E = TypeVar("E")

_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z)?")
_DATE = re.compile(r"([12]\d{3})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])")
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_MINOR_DIGITS = {"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3}
_MINOR_DIGITS |= dict.fromkeys(
    ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV"), 0
)
_TWO_DIGITS = frozenset(
    {
        "AED",
        "AUD",
        "BGN",
        "BRL",
        "CAD",
        "CHF",
        "CNY",
        "CZK",
        "DKK",
        "EUR",
        "GBP",
        "HKD",
        "HUF",
        "ILS",
        "INR",
        "MXN",
        "MYR",
        "NOK",
        "NZD",
        "PLN",
        "RON",
        "RSD",
        "SAR",
        "SEK",
        "SGD",
        "THB",
        "TRY",
        "TWD",
        "UAH",
        "USD",
        "ZAR",
    }
)


def currency_digits(currency: object) -> int:
    """The number of minor-unit digits of an ISO 4217 currency this module knows."""
    if isinstance(currency, str) and currency in _MINOR_DIGITS:
        return _MINOR_DIGITS[currency]
    if isinstance(currency, str) and currency in _TWO_DIGITS:
        return 2
    raise UnknownCurrencyError(currency)


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise OcpiFieldError(key, "duplicate key")
        result[key] = value
    return result


def _no_constant(name: str) -> object:
    raise OcpiFieldError("document", f"{name} is not JSON")


def loads(data: bytes | str) -> object:
    """Parse one JSON document strictly (decimals as `Decimal`)."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_DOCUMENT_BYTES:
        raise OcpiFieldError("document", f"{size} bytes, more than {MAX_DOCUMENT_BYTES}")
    try:
        return json.loads(
            data,
            parse_float=Decimal,
            parse_constant=_no_constant,
            object_pairs_hook=_no_duplicates,
        )
    except (ValueError, RecursionError) as error:
        if isinstance(error, OcpiFieldError):
            raise
        raise OcpiFieldError("document", f"not JSON: {error}") from None


def obj(value: object, path: str) -> Json:
    if not isinstance(value, dict):
        raise OcpiFieldError(path, "not a JSON object")
    return value


def items(value: object, path: str, *, required: bool = True) -> Sequence[object]:
    """A JSON array (absent or null is empty unless `required`)."""
    if value is None and not required:
        return ()
    if not isinstance(value, list):
        raise OcpiFieldError(path, "not a JSON array")
    if len(value) > MAX_LIST:
        raise OcpiFieldError(path, f"more than {MAX_LIST} entries")
    return value


def text(o: Json, key: str, path: str, *, max_len: int, required: bool = True) -> str | None:
    value = o.get(key)
    if value is None:
        if required:
            raise OcpiFieldError(f"{path}.{key}", "missing")
        return None
    if not isinstance(value, str):
        raise OcpiFieldError(f"{path}.{key}", "not a string")
    if len(value) > max_len:
        raise OcpiFieldError(f"{path}.{key}", f"longer than {max_len} characters")
    return value


def _present(value: E | None, path: str) -> E:
    if value is None:  # the reader raises first for a required field; this narrows the type
        raise OcpiFieldError(path, "missing")
    return value


def need_text(o: Json, key: str, path: str, *, max_len: int) -> str:
    return _present(text(o, key, path, max_len=max_len), f"{path}.{key}")


def need_scaled(o: Json, key: str, path: str, digits: int, *, signed: bool = False) -> int:
    return _present(scaled(o, key, path, digits, signed=signed), f"{path}.{key}")


def need_member(enum: type[E], o: Json, key: str, path: str) -> E:
    return _present(member(enum, o, key, path), f"{path}.{key}")


def need_timestamp(o: Json, key: str, path: str) -> dt.datetime:
    return _present(timestamp(o, key, path), f"{path}.{key}")


def integer(o: Json, key: str, path: str, *, required: bool = True) -> int | None:
    value = o.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise OcpiFieldError(f"{path}.{key}", "not an integer")
    return value


def boolean(o: Json, key: str, path: str) -> bool:
    value = o.get(key)
    if not isinstance(value, bool):
        raise OcpiFieldError(f"{path}.{key}", "not a boolean")
    return value


def scaled(
    o: Json, key: str, path: str, digits: int, *, required: bool = True, signed: bool = False
) -> int | None:
    """A JSON number as an exact integer of 10**-digits units (`1.25` with 2 digits is 125)."""
    value = o.get(key)
    if value is None:
        if required:
            raise OcpiFieldError(f"{path}.{key}", "missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise OcpiFieldError(f"{path}.{key}", "not a number")
    try:
        units = Decimal(value).scaleb(digits)
        whole = int(units)
    except (InvalidOperation, OverflowError, ValueError):
        raise OcpiFieldError(f"{path}.{key}", "not a finite number") from None
    if whole != units:
        raise ExcessPrecisionError(f"{path}.{key}", value, digits)
    if whole < 0 and not signed:
        raise OcpiFieldError(f"{path}.{key}", "negative")
    if abs(whole) >= 1 << 63:
        raise OcpiFieldError(f"{path}.{key}", "out of range")
    return whole


def member(enum: type[E], o: Json, key: str, path: str, *, required: bool = True) -> E | None:
    value = o.get(key)
    if value is None and not required:
        return None
    for candidate in enum.__members__.values():  # type: ignore[attr-defined]
        if candidate.name == value:
            return candidate  # type: ignore[no-any-return]
    raise UnknownEnumError(f"{path}.{key}", value, enum.__name__)


def timestamp(o: Json, key: str, path: str, *, required: bool = True) -> dt.datetime | None:
    """An OCPI DateTime: UTC, `Z` optional, fractions of a second kept to microseconds."""
    value = o.get(key)
    if value is None and not required:
        return None
    match = _DATETIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise OcpiFieldError(f"{path}.{key}", "not an OCPI DateTime")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    micro = int((match.group(7) or "0")[:6].ljust(6, "0"))
    try:
        return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=dt.UTC)
    except ValueError:
        raise OcpiFieldError(f"{path}.{key}", "not a calendar date and time") from None


def date(o: Json, key: str, path: str) -> dt.date | None:
    value = o.get(key)
    if value is None:
        return None
    match = _DATE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise OcpiFieldError(f"{path}.{key}", "not a YYYY-MM-DD date")
    try:
        return dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        raise OcpiFieldError(f"{path}.{key}", "not a calendar date") from None


def time_of_day(o: Json, key: str, path: str) -> int | None:
    """A `HH:MM` time of day as minutes since midnight."""
    value = o.get(key)
    if value is None:
        return None
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise OcpiFieldError(f"{path}.{key}", "not an HH:MM time")
    return int(match.group(1)) * 60 + int(match.group(2))


# -- writing ---------------------------------------------------------------------------------


def decimal(units: int, digits: int) -> Decimal:
    """`units` of 10**-digits as a Decimal with exactly `digits` decimals."""
    return Decimal(units).scaleb(-digits)


def format_timestamp(when: dt.datetime) -> str:
    text = when.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def dumps(value: object) -> str:
    """Canonical JSON: sorted keys, no whitespace, decimals in plain notation."""
    if isinstance(value, Mapping):
        inner = ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in sorted(value.items()))
        return "{" + inner + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"{type(value).__name__} is not OCPI JSON")
