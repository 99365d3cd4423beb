"""A strict BER (X.690) writer: definite, minimal lengths only, the reader's (`ber.py`) mirror.

What it writes is exactly what the reader accepts and nothing else: tag numbers below 2**28 in
the minimal high-tag form (at most 4 octets), definite lengths in the short form below 128 and
the minimal long form (at most 4 octets) above, INTEGERs in minimal two's complement of at most
8 octets, printable ASCII, and packed decimal digits (TBCD, two per octet, high nibble first,
a filler 0xF only as the very last nibble). Indefinite lengths are never written: a writer has
no use for them (they exist for streaming), and one canonical form per value means
`parse(encode(e))` re-encodes to the same bytes.

A value the rules do not allow raises `BerWriteError` naming what was being written.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Final

from .ber import TagClass
from .errors import BerWriteError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .ber import Element

MAX_TAG: Final = (1 << 28) - 1
MAX_LENGTH: Final = (1 << 32) - 1
MAX_INTEGER_OCTETS: Final = 8
_PRINTABLE: Final = re.compile(r"[\x20-\x7e]*")
_DIGITS: Final = re.compile(r"[0-9]+")


@functools.lru_cache(maxsize=4096)
def identifier(tag_class: TagClass, constructed: bool, tag: int) -> bytes:
    """The identifier octets of a tag: the low form below 31, else the minimal high form
    (cached: a file repeats a few dozen tags, each once per event)."""
    if not 0 <= tag <= MAX_TAG:
        raise BerWriteError("tag", f"{tag} is outside 0..{MAX_TAG}")
    if tag == 0 and tag_class is TagClass.UNIVERSAL:
        raise BerWriteError("tag", "UNIVERSAL 0 is the end-of-contents marker")
    first = (tag_class << 6) | (0x20 if constructed else 0)
    if tag < 0x1F:
        return bytes((first | tag,))
    groups = [tag & 0x7F]
    tag >>= 7
    while tag:
        groups.append(0x80 | (tag & 0x7F))
        tag >>= 7
    return bytes((first | 0x1F, *reversed(groups)))


def length(n: int) -> bytes:
    """A definite length: the short form below 128, else the minimal long form."""
    if n < 0x80:
        if n < 0:
            raise BerWriteError("length", f"{n} is negative")
        return bytes((n,))
    if n > MAX_LENGTH:
        raise BerWriteError("length", f"{n} needs more than 4 length octets")
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, contents: bytes, *, constructed: bool = False) -> bytes:
    """One APPLICATION-class value (every field of TAP, RAP and NRTRDE is one); `contents` are
    the encoded children of a constructed value."""
    return identifier(TagClass.APPLICATION, constructed, tag) + length(len(contents)) + contents


def sequence(tag: int, *children: bytes) -> bytes:
    """A constructed APPLICATION value holding the already encoded `children`, in order."""
    return tlv(tag, b"".join(children), constructed=True)


def sequence_of(tag: int, children: Iterable[bytes]) -> bytes:
    """`sequence` over an iterable of encoded children."""
    return tlv(tag, b"".join(children), constructed=True)


def integer_contents(value: int, what: str) -> bytes:
    """The contents octets of an INTEGER: minimal two's complement, at most 8 octets."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BerWriteError(what, "an INTEGER must be an int")
    size = (value.bit_length() + 8) // 8 if value >= 0 else ((~value).bit_length() + 8) // 8
    if size > MAX_INTEGER_OCTETS:
        raise BerWriteError(what, f"{value} needs more than {MAX_INTEGER_OCTETS} octets")
    return value.to_bytes(size, "big", signed=True)


def integer(tag: int, value: int, what: str) -> bytes:
    """An INTEGER field."""
    return tlv(tag, integer_contents(value, what))


def text(tag: int, value: str, what: str) -> bytes:
    """A printable ASCII field (AsciiString, VisibleString)."""
    if not value.isascii() or _PRINTABLE.fullmatch(value) is None:
        raise BerWriteError(what, "not printable ASCII")
    return tlv(tag, value.encode("ascii"))


def digits(tag: int, value: str, what: str) -> bytes:
    """A TBCD digit string (IMSI, MSISDN): two digits an octet, high nibble first, 0xF filler."""
    if not value.isascii() or _DIGITS.fullmatch(value) is None:
        raise BerWriteError(what, "not decimal digits")
    padded = value + "F" if len(value) % 2 else value
    return tlv(tag, bytes.fromhex(padded))


def encode(element: Element) -> bytes:
    """Re-encode a parsed tree with definite, minimal lengths (any class, as parsed)."""
    body = (
        b"".join(encode(c) for c in element.children) if element.constructed else element.contents
    )
    return (
        identifier(element.tag_class, element.constructed, element.tag) + length(len(body)) + body
    )
