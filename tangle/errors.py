"""The error tree of the `tangle` package.

Every failure the package reports is one of these; callers catch `TangleError` to catch them all.

```
TangleError
├── DecodeError                  bytes that are not a canonical encoding
│   ├── TruncatedError           input ended inside a field
│   ├── TrailingBytesError       bytes left after the last field
│   ├── OversizedError           a length above its bound
│   ├── NonCanonicalError        valid meaning, forbidden spelling (unsorted, duplicate, ...)
│   ├── UnknownVersionError      protocol version this node does not speak
│   └── UnknownTypeError         payload / output / unlock type not defined
├── InvalidFieldError            a value out of its range (also raised by constructors)
├── WrongNetworkError            a message for another network
├── WorkError
│   ├── InsufficientWorkError    the nonce does not meet the target
│   └── WorkCancelledError       a nonce search was cancelled
├── DagError
│   ├── DuplicateMessageError    message already attached
│   ├── DuplicatePayloadError    payload already has a live attachment (one gossip slot each)
│   ├── UnknownMessageError      no such message in the window
│   └── NoTipsError              tip selection found nothing to approve
└── (ledger, milestone and storage errors live in the same tree, see below)
```
"""

from __future__ import annotations


class TangleError(Exception):
    """Root of every error raised by the `tangle` package."""


# -- decoding --------------------------------------------------------------------------------


class DecodeError(TangleError):
    """The bytes are not a canonical encoding of the expected object."""


class TruncatedError(DecodeError):
    """The input ended inside a field."""

    def __init__(self, what: str, needed: int, available: int) -> None:
        super().__init__(f"truncated {what}: needed {needed} bytes, {available} left")
        self.what = what
        self.needed = needed
        self.available = available


class TrailingBytesError(DecodeError):
    """Bytes remain after the last field."""

    def __init__(self, what: str, extra: int) -> None:
        super().__init__(f"{extra} trailing bytes after {what}")
        self.what = what
        self.extra = extra


class OversizedError(DecodeError):
    """A length (of the whole input or of a field) is above its bound."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} is {size}, above the limit of {limit}")
        self.what = what
        self.size = size
        self.limit = limit


class NonCanonicalError(DecodeError):
    """The input has a valid meaning but not its one canonical spelling."""


class UnknownVersionError(DecodeError):
    """A protocol version this implementation does not speak."""

    def __init__(self, version: int) -> None:
        super().__init__(f"unknown protocol version {version}")
        self.version = version


class UnknownTypeError(DecodeError):
    """A type tag (payload, output, unlock, ...) that is not defined."""

    def __init__(self, what: str, tag: int) -> None:
        super().__init__(f"unknown {what} type {tag}")
        self.what = what
        self.tag = tag


# -- field values ----------------------------------------------------------------------------


class InvalidFieldError(TangleError):
    """A field value is outside its allowed range."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid {field}: {reason}")
        self.field = field
        self.reason = reason


class WrongNetworkError(TangleError):
    """An object that belongs to another network."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"network id {got} does not match this network ({expected})")
        self.expected = expected
        self.got = got


# -- proof of work ---------------------------------------------------------------------------


class WorkError(TangleError):
    """Proof-of-work failures."""


class InsufficientWorkError(WorkError):
    """The nonce does not meet the message's target."""

    def __init__(self, value: int, target: int) -> None:
        super().__init__(f"work value {value:#018x} is above the target {target:#018x}")
        self.value = value
        self.target = target


class WorkCancelledError(WorkError):
    """A nonce search was cancelled before it found a nonce."""


# -- the DAG ---------------------------------------------------------------------------------


class DagError(TangleError):
    """Failures of the message window (attach, lookup, tip selection)."""


class DuplicateMessageError(DagError):
    """The message is already in the window."""


class DuplicatePayloadError(DagError):
    """The payload already has a live attachment in the window (one gossip slot per payload)."""


class UnknownMessageError(DagError):
    """No message with that id is in the window."""


class NoTipsError(DagError):
    """Tip selection found no message to approve."""
