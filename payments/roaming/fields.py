"""Reading the SEQUENCEs of TAP, RAP and NRTRDE out of a BER tree, and their time stamps.

The formats tag every field with an APPLICATION tag of its own, so a SEQUENCE is read as a map
from tag number to element: `Fields` refuses a field that appears twice or a mandatory one that
is missing (`TapStructureError`, at the offset of the SEQUENCE or of the repeat) and leaves the
optional fields an importer does not use unread. Time stamps are `YYYYMMDDHHMMSS` in the
sender's local time plus a `+HHMM`/`-HHMM` offset; `utc_seconds` applies the offset.
"""

from __future__ import annotations

import calendar
import functools
import re
from typing import TYPE_CHECKING, Final

from .ber import TagClass
from .errors import TapStructureError, TapValueError

if TYPE_CHECKING:
    from .ber import Element

_LOCAL_TIME: Final = re.compile(r"[0-9]{14}")
_UTC_OFFSET: Final = re.compile(r"[+-][0-9]{4}")
_APPLICATION: Final = TagClass.APPLICATION
DAYS_CACHED: Final = 4096
"""Dates whose midnight `local_seconds` keeps (a bounded cache)."""
MAX_OFFSET_MINUTES: Final = 14 * 60
"""UTC offsets in use run from -12:00 to +14:00."""


class Fields:
    """The fields of one SEQUENCE (or SET) by tag number; each tag at most once."""

    __slots__ = ("_by_tag", "element", "what")

    def __init__(self, element: Element, what: str) -> None:
        self.element = element
        self.what = what
        items = element.items(what)
        # One pass by index (an Element is a tuple: [0] the class, [1] the tag); the loop that
        # names the broken rule runs only when a class is wrong or a tag repeats.
        by_tag = {child[1]: child for child in items if child[0] is _APPLICATION}
        if len(by_tag) != len(items):
            _refuse(items, what)
        self._by_tag = by_tag

    def get(self, tag: int) -> Element | None:
        """The field with `tag`, or None."""
        return self._by_tag.get(tag)

    def need(self, tag: int, name: str) -> Element:
        """The mandatory field with `tag`."""
        found = self._by_tag.get(tag)
        if found is None:
            raise TapStructureError(self.element.offset, f"{self.what}: {name} is missing")
        return found

    def sub(self, tag: int, name: str) -> Fields:
        """The mandatory constructed field with `tag`, as `Fields`."""
        return Fields(self.need(tag, name), name)

    def optional_sub(self, tag: int, name: str) -> Fields | None:
        found = self._by_tag.get(tag)
        return None if found is None else Fields(found, name)


def _refuse(items: tuple[Element, ...], what: str) -> None:
    """Raise for the first field of `items` not in APPLICATION class or whose tag repeats."""
    seen: set[int] = set()
    for child in items:
        if child.tag_class is not TagClass.APPLICATION:
            raise TapStructureError(child.offset, f"{what}: a field not in APPLICATION class")
        if child.tag in seen:
            raise TapStructureError(child.offset, f"{what}: field tag {child.tag} repeated")
        seen.add(child.tag)


def list_items(element: Element, what: str, item_tag: int) -> tuple[Element, ...]:
    """The items of a SEQUENCE OF whose items all carry `item_tag`."""
    items = element.items(what)
    for item in items:
        if item.tag_class is not TagClass.APPLICATION or item.tag != item_tag:
            raise TapStructureError(item.offset, f"{what}: an item with tag {item.tag}")
    return items


def utc_offset_seconds(element: Element, what: str) -> int:
    """A `+HHMM` or `-HHMM` UTC offset, in seconds east of UTC."""
    text = element.text(what, shortest=5, longest=5)
    if _UTC_OFFSET.fullmatch(text) is None:
        raise TapValueError(element.value_offset, f"{what}: not +HHMM or -HHMM")
    hours, minutes = int(text[1:3]), int(text[3:5])
    if minutes >= 60 or hours * 60 + minutes > MAX_OFFSET_MINUTES:
        raise TapValueError(element.value_offset, f"{what}: {text} is not a UTC offset")
    seconds = (hours * 60 + minutes) * 60
    return -seconds if text[0] == "-" else seconds


def local_seconds(element: Element, what: str) -> int:
    """A `YYYYMMDDHHMMSS` local time stamp, as seconds since the epoch as if it were UTC."""
    text = element.text(what, shortest=14, longest=14)
    if _LOCAL_TIME.fullmatch(text) is None:
        raise TapValueError(element.value_offset, f"{what}: not YYYYMMDDHHMMSS")
    midnight = _midnight(text[:8])
    hour, minute, second = int(text[8:10]), int(text[10:12]), int(text[12:14])
    if midnight is None or not (hour < 24 and minute < 60 and second < 60):
        raise TapValueError(element.value_offset, f"{what}: {text} is not a valid time")
    return midnight + hour * 3600 + minute * 60 + second


@functools.lru_cache(maxsize=DAYS_CACHED)
def _midnight(date: str) -> int | None:
    """A `YYYYMMDD` date's midnight as seconds since the epoch, or None if it is no date (the
    events of a file fall on a few days: each is worked out once)."""
    year, month, day = int(date[0:4]), int(date[4:6]), int(date[6:8])
    if not (year >= 1970 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return None
    return calendar.timegm((year, month, day, 0, 0, 0, 0, 0, 0))


def utc_seconds(local: Element, offset_seconds: int, what: str) -> int:
    """A local time stamp with its offset applied: seconds since the epoch, UTC."""
    value = local_seconds(local, what) - offset_seconds
    if value < 0:
        raise TapValueError(local.value_offset, f"{what}: before the epoch")
    return value


def date_time(fields: Fields, offset_tag: int, what: str) -> int:
    """A DateTime SEQUENCE (LocalTimeStamp 16 and a UtcTimeOffset) as UTC seconds."""
    offset = utc_offset_seconds(fields.need(offset_tag, f"{what} offset"), f"{what} offset")
    return utc_seconds(fields.need(16, f"{what} local time"), offset, what)
