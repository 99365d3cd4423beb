"""Strict little-endian reader and writer for the canonical binary formats.

Every decoder reads through `Reader`, so a short, long or malformed input always raises a
`DecodeError` subclass and never `IndexError` or `struct.error`.
"""

from __future__ import annotations

import struct
from typing import Final

from tangle.errors import InvalidFieldError, OversizedError, TrailingBytesError, TruncatedError

U8_MAX = 0xFF
U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF
U64_MAX = 0xFFFF_FFFF_FFFF_FFFF


_U16: Final = struct.Struct("<H")
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")


class Reader:
    """A cursor over immutable bytes; each read checks that the bytes are there. The fixed-width
    reads unpack in place (`struct`) rather than slice and convert: decoding is on every
    message's path."""

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: bytes | bytearray | memoryview, what: str) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _short(self, n: int, what: str) -> TruncatedError:
        return TruncatedError(f"{self._what}.{what}", n, len(self._data) - self._pos)

    def take(self, n: int, what: str) -> bytes:
        start = self._pos
        end = start + n
        if end > len(self._data):
            raise self._short(n, what)
        self._pos = end
        return self._data[start:end]

    def _unpack(self, fmt: struct.Struct, what: str) -> int:
        pos = self._pos
        if pos + fmt.size > len(self._data):
            raise self._short(fmt.size, what)
        self._pos = pos + fmt.size
        value: int = fmt.unpack_from(self._data, pos)[0]
        return value

    def u8(self, what: str) -> int:
        pos = self._pos
        if pos >= len(self._data):
            raise self._short(1, what)
        self._pos = pos + 1
        return self._data[pos]

    def u16(self, what: str) -> int:
        return self._unpack(_U16, what)

    def u32(self, what: str) -> int:
        return self._unpack(_U32, what)

    def u64(self, what: str) -> int:
        return self._unpack(_U64, what)

    def sized(self, width: int, limit: int, what: str) -> bytes:
        """A length prefix of `width` bytes (at most `limit`), then that many bytes."""
        n = int.from_bytes(self.take(width, f"{what}.length"), "little")
        if n > limit:
            raise OversizedError(f"{self._what}.{what} length", n, limit)
        return self.take(n, what)

    def finish(self) -> None:
        """Raise `TrailingBytesError` unless every byte was consumed."""
        if self._pos != len(self._data):
            raise TrailingBytesError(self._what, len(self._data) - self._pos)


def u8(value: int) -> bytes:
    return value.to_bytes(1, "little")


def u16(value: int) -> bytes:
    return value.to_bytes(2, "little")


def u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


def sized(width: int, data: bytes) -> bytes:
    return len(data).to_bytes(width, "little") + data


def require_uint(field: str, value: int, maximum: int, minimum: int = 0) -> None:
    """Raise `InvalidFieldError` unless `minimum <= value <= maximum` (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidFieldError(field, f"expected an integer, got {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise InvalidFieldError(field, f"{value} is outside [{minimum}, {maximum}]")


def require_bytes(field: str, value: bytes, maximum: int) -> None:
    """Raise `InvalidFieldError` unless `value` is bytes of at most `maximum` length."""
    if not isinstance(value, bytes):
        raise InvalidFieldError(field, f"expected bytes, got {type(value).__name__}")
    if len(value) > maximum:
        raise InvalidFieldError(field, f"{len(value)} bytes, at most {maximum} allowed")
