"""A strict reader for BER (X.690), the tag/length/value layer of TAP, RAP and NRTRDE files.

Why a reader of our own rather than `asn1crypto.parser`: asn1crypto parses one level at a time
and reports every failure as a bare `ValueError` without the byte offset; it bounds only the
nesting of indefinite-length values (at a fixed depth) and not of definite ones; and it cannot
tell a stray end-of-contents from other trailing data. The formats here need none of its
universal types, only tags, lengths and a few primitive decodings, so the reader is small: it
parses the whole file into a tree of `Element`s (keyed by tag class and number, each with its
offset), checking as it goes:

- tags: the high-tag form is minimal and at most 4 octets (tag numbers below 2**28);
- lengths: definite (short or long form, at most 4 length octets) and indefinite (constructed
  values only, ended by an end-of-contents); every value fits inside its parent and the input;
- end-of-contents only where an indefinite-length value ends, and exactly `00 00`;
- constructed values nested at most `max_depth` deep, and at most `max_elements` elements;
- exactly one top-level value, nothing after it.

Each rule has its own error (`errors.py`), all carrying the offset where the rule broke. The
primitive decoders (`Element.integer`, `.text`, `.digits`) check their own encodings.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Final, NamedTuple

from .errors import (
    BerElementCountError,
    BerEndOfContentsError,
    BerIntegerError,
    BerLengthError,
    BerNestingError,
    BerPrimitiveError,
    BerTagError,
    BerTrailingBytesError,
    BerTruncatedError,
    TapValueError,
)

MAX_DEPTH: Final = 24
"""The deepest nesting the formats need is below 12; twice that is the default bound."""
MAX_ELEMENTS: Final = 2_000_000
"""The reader holds the whole tree: about 200 bytes an element (measured: 1.1 million elements of
a 6 MB TAP file took 219 MiB), so this bound keeps one file under about 400 MiB, some 90 000
GPRS events; larger exchanges are split into several files."""
_MAX_TAG_OCTETS: Final = 4
_MAX_LENGTH_OCTETS: Final = 4


class TagClass(IntEnum):
    """The two high bits of an identifier octet."""

    UNIVERSAL = 0
    APPLICATION = 1
    CONTEXT = 2
    PRIVATE = 3


_CLASSES: Final = tuple(TagClass)
_new: Final = tuple.__new__
"""Builds an `Element` without the named tuple's Python-level `__new__` (several times faster)."""
_PRINTABLE: Final = re.compile(rb"[\x20-\x7e]*")


class Element(NamedTuple):
    """One BER value: its tag, where it starts, and its contents (primitive) or children. A
    named tuple rather than a frozen dataclass: a large file has millions of them, and a tuple
    is built several times faster (immutable all the same)."""

    tag_class: TagClass
    """The tag's class."""
    tag: int
    """The tag number."""
    offset: int
    """Offset of the identifier octet in the input."""
    value_offset: int
    """Offset of the first contents octet."""
    constructed: bool
    """Whether the value is a sequence of elements rather than octets."""
    contents: bytes
    """The contents octets of a primitive value; empty for a constructed one."""
    children: tuple[Element, ...]
    """The elements of a constructed value, in order; empty for a primitive one."""

    def _need_primitive(self, what: str) -> bytes:
        if self.constructed:
            raise BerPrimitiveError(self.offset, f"{what} (tag {self.tag}) must be primitive")
        return self.contents

    def _need_constructed(self, what: str) -> tuple[Element, ...]:
        if not self.constructed:
            raise BerPrimitiveError(self.offset, f"{what} (tag {self.tag}) must be constructed")
        return self.children

    def items(self, what: str) -> tuple[Element, ...]:
        """The children, raising `BerPrimitiveError` if this value is primitive."""
        return self._need_constructed(what)

    def integer(self, what: str, *, max_octets: int = 8) -> int:
        """A two's complement INTEGER, minimally encoded, at most `max_octets` octets."""
        data = self._need_primitive(what)
        if not data:
            raise BerIntegerError(self.value_offset, f"{what}: an INTEGER has no octets")
        if len(data) > max_octets:
            raise BerIntegerError(
                self.value_offset, f"{what}: {len(data)} octets, at most {max_octets}"
            )
        if len(data) > 1 and (
            (data[0] == 0x00 and data[1] < 0x80) or (data[0] == 0xFF and data[1] >= 0x80)
        ):
            raise BerIntegerError(self.value_offset, f"{what}: INTEGER not minimally encoded")
        return int.from_bytes(data, "big", signed=True)

    def unsigned(self, what: str, *, max_octets: int = 8) -> int:
        """An INTEGER that must not be negative (`TapValueError` otherwise)."""
        value = self.integer(what, max_octets=max_octets)
        if value < 0:
            raise TapValueError(self.value_offset, f"{what} is negative ({value})")
        return value

    def text(self, what: str, *, shortest: int = 0, longest: int = 255) -> str:
        """Printable ASCII (the AsciiString and VisibleString fields of the formats)."""
        data = self._need_primitive(what)
        if not shortest <= len(data) <= longest:
            raise TapValueError(
                self.value_offset, f"{what}: {len(data)} characters, {shortest}..{longest} allowed"
            )
        if _PRINTABLE.fullmatch(data) is None:
            raise TapValueError(self.value_offset, f"{what}: not printable ASCII")
        return data.decode("ascii")

    def digits(self, what: str, *, longest: int) -> str:
        """A packed digit string as TAP and NRTRDE carry IMSIs and MSISDNs: two decimal digits
        per octet, high nibble first, a filler 0xF only as the very last nibble (the samples'
        IMSI 133713371337133 is `13 37 13 37 13 37 13 3f`)."""
        data = self._need_primitive(what)
        if not data or len(data) > (longest + 1) // 2:
            raise TapValueError(self.value_offset, f"{what}: {len(data)} octets")
        nibbles = data.hex()  # one character a nibble, high first: 0-9, or a-f beyond 9
        if nibbles[-1] == "f":
            nibbles = nibbles[:-1]
        if not nibbles.isdigit():
            raise TapValueError(self.value_offset, f"{what}: not a TBCD digit string")
        return nibbles


def parse(data: bytes, *, max_depth: int = MAX_DEPTH, max_elements: int = MAX_ELEMENTS) -> Element:
    """The single BER value that `data` holds; any breach of the rules in the module docstring
    raises its `RoamingFormatError` with the offset."""
    reader = _Reader(bytes(data), max_depth, max_elements)
    root = reader.element(0, len(reader.data))
    if reader.pos != len(reader.data):
        if reader.data[reader.pos : reader.pos + 2] == b"\x00\x00":
            raise BerEndOfContentsError(reader.pos, "end-of-contents after the top-level value")
        raise BerTrailingBytesError(
            reader.pos, f"{len(reader.data) - reader.pos} bytes after the top-level value"
        )
    return root


def parse_around(
    data: bytes, start: int, stop: int, hole: Element, hole_stop: int, *, max_elements: int
) -> tuple[Element, ...]:
    """The children of a top-level constructed value whose contents are `data[start:stop]`, read
    as `parse` reads them (at most `max_elements` of them and their descendants), except the
    child at `hole.offset`, whose bytes up to `hole_stop` its caller has read and checked
    another way (TAP's call event list, `_tap_kernel`): `hole` stands in for it."""
    reader = _Reader(data, MAX_DEPTH, max_elements)
    reader.pos = start
    children: list[Element] = []
    while reader.pos < stop:
        if reader.pos == hole.offset:
            children.append(hole)
            reader.pos = hole_stop
        else:
            children.append(reader.element(1, stop))
    return tuple(children)


class _Reader:
    __slots__ = ("count", "data", "max_depth", "max_elements", "pos")

    def __init__(self, data: bytes, max_depth: int, max_elements: int) -> None:
        self.data = data
        self.pos = 0
        self.max_depth = max_depth
        self.max_elements = max_elements
        self.count = 0

    def _high_tag(self, start: int, end: int) -> int:
        """The number of a high-tag-form identifier at `start`; leaves `pos` after it."""
        data = self.data
        pos = start + 1
        number = 0
        for i in range(_MAX_TAG_OCTETS + 1):
            if i == _MAX_TAG_OCTETS:
                raise BerTagError(start, f"tag number longer than {_MAX_TAG_OCTETS} octets")
            if pos >= end:
                raise BerTruncatedError(pos, "input ends inside the tag number")
            b = data[pos]
            pos += 1
            if i == 0 and b == 0x80:
                raise BerTagError(start, "tag number not minimally encoded")
            number = (number << 7) | (b & 0x7F)
            if not b & 0x80:
                break
        if number < 0x1F:
            raise BerTagError(start, f"tag {number} in the high-tag form")
        self.pos = pos
        return number

    def _long_length(self, start: int, first: int, end: int) -> int:
        """A long-form length whose first octet `first` is at `start`; leaves `pos` after it."""
        n = first & 0x7F
        if n == 0x7F or n > _MAX_LENGTH_OCTETS:
            raise BerLengthError(start, f"a length of {n} octets")
        if start + 1 + n > end:
            raise BerTruncatedError(start + 1, "input ends inside the length")
        self.pos = start + 1 + n
        return int.from_bytes(self.data[start + 1 : start + 1 + n], "big")

    def element(self, depth: int, end: int) -> Element:
        # The common forms (a tag number below 16384, a short or long definite length) are
        # read inline, and the tuple is built without the named tuple's Python-level __new__:
        # this runs once per element of a large file.
        data = self.data
        offset = self.pos
        count = self.count = self.count + 1
        if count > self.max_elements:
            raise BerElementCountError(offset, f"more than {self.max_elements} elements")
        if offset >= end:
            raise BerTruncatedError(offset, "input ends inside the identifier")
        first = data[offset]
        if first == 0x00:
            raise BerEndOfContentsError(offset, "end-of-contents outside an indefinite value")
        tag = first & 0x1F
        pos = offset + 1
        if tag == 0x1F:
            b1 = data[pos] if pos < end else 0x80
            if 0x1F <= b1 < 0x80:
                tag, pos = b1, pos + 1
            elif b1 > 0x80 and pos + 1 < end and data[pos + 1] < 0x80:
                tag, pos = ((b1 & 0x7F) << 7) | data[pos + 1], pos + 2
            else:
                tag = self._high_tag(offset, end)
                pos = self.pos
        constructed = first & 0x20 != 0
        tag_class = _CLASSES[first >> 6]
        if pos >= end:
            raise BerTruncatedError(pos, "input ends inside the length")
        length = data[pos]
        value_offset = pos + 1
        found: Element
        if length >= 0x80:
            if length == 0x80:
                if not constructed:
                    raise BerPrimitiveError(pos, "indefinite length on a primitive value")
                self.pos = value_offset
                children = self._indefinite(depth + 1, end)
                found = _new(Element, (tag_class, tag, offset, value_offset, True, b"", children))
                return found
            length = self._long_length(pos, length, end)
            value_offset = self.pos
        stop = value_offset + length
        if stop > end:
            raise BerLengthError(
                pos, f"length {length} runs past its container ({end - value_offset} left)"
            )
        if constructed:
            self.pos = value_offset
            children = self._definite(depth + 1, stop)
            found = _new(Element, (tag_class, tag, offset, value_offset, True, b"", children))
        else:
            self.pos = stop
            contents = data[value_offset:stop]
            found = _new(Element, (tag_class, tag, offset, value_offset, False, contents, ()))
        return found

    def _check_depth(self, depth: int) -> None:
        if depth > self.max_depth:
            raise BerNestingError(self.pos, f"nested deeper than {self.max_depth}")

    def _definite(self, depth: int, stop: int) -> tuple[Element, ...]:
        self._check_depth(depth)
        children: list[Element] = []
        append, element, data = children.append, self.element, self.data
        pos, count, max_elements = self.pos, self.count, self.max_elements
        while pos < stop:
            # Most elements of a file have a tag below 16384 (one or two octets of tag number)
            # and a short definite length: those are read here, the position and the element
            # count kept in locals; anything else (and every broken rule) goes to `element`.
            first = data[pos]
            tag = first & 0x1F
            if tag == 0x1F:
                tag = data[pos + 1] if pos + 1 < stop else 0
                head = 2
                if tag > 0x80 and pos + 2 < stop and data[pos + 2] < 0x80:
                    tag = ((tag & 0x7F) << 7) | data[pos + 2]  # at least 128: minimal
                    head = 3
            else:
                head = 1
            value = pos + head + 1
            length = data[value - 1] if value <= stop else 0x80
            end = value + length
            if (
                not first
                or (head == 2 and not 0x1F <= tag < 0x80)
                or length >= 0x80
                or end > stop
                or count >= max_elements
            ):
                self.pos, self.count = pos, count
                append(element(depth, stop))
                pos, count = self.pos, self.count
                continue
            count += 1
            if first & 0x20:
                self.pos, self.count = value, count
                inner = self._definite(depth + 1, end)
                count = self.count
                append(_new(Element, (_CLASSES[first >> 6], tag, pos, value, True, b"", inner)))
            else:
                contents = data[value:end]
                append(_new(Element, (_CLASSES[first >> 6], tag, pos, value, False, contents, ())))
            pos = end
        self.pos, self.count = pos, count
        return tuple(children)

    def _indefinite(self, depth: int, end: int) -> tuple[Element, ...]:
        self._check_depth(depth)
        children: list[Element] = []
        while True:
            if self.pos >= end:
                raise BerTruncatedError(self.pos, "input ends before the end-of-contents")
            if self.data[self.pos] == 0x00:
                if self.pos + 1 >= end:
                    raise BerTruncatedError(self.pos, "input ends inside the end-of-contents")
                if self.data[self.pos + 1] != 0x00:
                    raise BerEndOfContentsError(self.pos, "end-of-contents with a non-zero length")
                self.pos += 2
                return tuple(children)
            children.append(self.element(depth, end))
