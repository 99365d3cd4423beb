"""The error tree of `payments.roaming`, rooted in the package's `PaymentError`.

A flat list, one class per rule a caller must tell apart; the file-format errors share
`RoamingFormatError`, which carries the byte offset (or line number) where the rule broke. An
importer that raises has imported nothing: the error comes before any record is returned.

```
PaymentError
└── RoamingError                       roaming settlement between carriers
    ├── InvalidRecordError             a usage record field out of range (field, reason)
    ├── MalformedRecordError           bytes or JSON that are not one canonical usage record
    ├── InvalidSubscriberError         an IMSI or MSISDN that is not digits of a valid length
    ├── FraudConfigError               a fraud threshold, cap or table bound out of range
    └── RoamingFormatError             a partner's file that cannot be imported (offset)
        ├── BerTruncatedError          the input ends inside a tag, a length or a value
        ├── BerLengthError             a length beyond its enclosing value, or too long to hold
        ├── BerEndOfContentsError      an end-of-contents where none is allowed
        ├── BerNestingError            constructed values nested deeper than the bound
        ├── BerElementCountError       more elements in one file than the bound
        ├── BerTrailingBytesError      bytes after the one top-level value
        ├── BerTagError                a tag that is not minimally encoded or out of range
        ├── BerIntegerError            an INTEGER that is empty, non-minimal or too wide
        ├── BerPrimitiveError          a primitive where a constructed value is needed, or back
        ├── TapStructureError          a TAP/RAP/NRTRDE element missing, repeated or unexpected
        ├── TapValueError              a field whose value is impossible (negative volume, ...)
        └── LineFormatError            a JSON Lines or CSV line that is not a usage record
```
"""

from __future__ import annotations

from ..errors import PaymentError


class RoamingError(PaymentError):
    """Root of every error raised by `payments.roaming`."""


class InvalidRecordError(RoamingError):
    """A usage record field is outside its allowed range."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"usage record {field}: {reason}")
        self.field = field
        self.reason = reason


class MalformedRecordError(RoamingError):
    """Bytes or JSON that are not exactly one canonical usage record."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed usage record: {reason}")
        self.reason = reason


class InvalidSubscriberError(RoamingError):
    """An IMSI or MSISDN given to the hasher is not a string of digits of a valid length (the
    value itself is not repeated: it must not reach a log)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


class FraudConfigError(RoamingError):
    """A fraud threshold, cap or table bound that is not a positive integer (or out of order)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"fraud config {field}: {reason}")
        self.field = field
        self.reason = reason


class RoamingFormatError(RoamingError):
    """A partner's file (BER, JSON Lines, CSV) that cannot be imported; `offset` is the byte
    offset (BER) or the 1-based line number (text formats) where the rule broke."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"at {offset}: {reason}")
        self.offset = offset
        self.reason = reason


class BerTruncatedError(RoamingFormatError):
    """The input ends inside a tag, a length or a value."""


class BerLengthError(RoamingFormatError):
    """A length that runs past its enclosing value or the input, or has too many octets."""


class BerEndOfContentsError(RoamingFormatError):
    """An end-of-contents marker outside an indefinite-length value (or one that is malformed)."""


class BerNestingError(RoamingFormatError):
    """Constructed values nested deeper than the reader's bound."""


class BerElementCountError(RoamingFormatError):
    """More elements in one file than the reader's bound."""


class BerTrailingBytesError(RoamingFormatError):
    """Bytes after the single top-level value."""


class BerTagError(RoamingFormatError):
    """A tag that is not minimally encoded, too large, or of a class the format never uses."""


class BerIntegerError(RoamingFormatError):
    """An INTEGER that is empty, not minimally encoded, or wider than the field allows."""


class BerPrimitiveError(RoamingFormatError):
    """A primitive encoding where the format needs a constructed value, or the reverse."""


class TapStructureError(RoamingFormatError):
    """An element of a TAP, RAP or NRTRDE file that is missing, repeated or not expected."""


class TapValueError(RoamingFormatError):
    """A field whose value is impossible: a negative volume, a bad time stamp, an unknown code."""


class LineFormatError(RoamingFormatError):
    """A JSON Lines or CSV line that is not a usage record (`offset` is the line number)."""
