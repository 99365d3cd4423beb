"""Hashing subscribers for one roaming agreement: `SubscriberHasher` turns IMSIs and MSISDNs
into the keyed BLAKE2b-256 hashes a `UsageRecord` carries (the key the agreement's secret salt,
IMSIs and MSISDNs in separate domains), so the clear values never leave the importer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from .errors import InvalidSubscriberError
from .record import HASH_SIZE

if TYPE_CHECKING:
    from collections.abc import Iterable

SALT_MIN: Final = 16
SALT_MAX: Final = 64
"""A BLAKE2b key is at most 64 bytes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriberHasher:
    """Hashes IMSIs and MSISDNs for one agreement: keyed BLAKE2b-256, the key the agreement's
    salt, IMSIs and MSISDNs in separate domains. Without the salt the hashes cannot be reversed
    by running through the (small) space of IMSIs."""

    salt: bytes
    """The agreement's secret salt, `SALT_MIN`..`SALT_MAX` bytes, held by both carriers."""
    _keyed: tuple[hashlib.blake2b, hashlib.blake2b] = field(init=False, repr=False, compare=False)
    """Derived: the IMSI and MSISDN hashes with the key block fed in (each hash copies one)."""

    def __post_init__(self) -> None:
        if not isinstance(self.salt, bytes) or not SALT_MIN <= len(self.salt) <= SALT_MAX:
            raise InvalidSubscriberError("salt", f"must be {SALT_MIN}..{SALT_MAX} bytes")
        keyed = tuple(
            hashlib.blake2b(digest_size=HASH_SIZE, key=self.salt, person=person)
            for person in (b"tp-roam-imsi", b"tp-roam-msisdn")
        )
        object.__setattr__(self, "_keyed", keyed)

    def imsi(self, imsi: str) -> bytes:
        """The hash of an IMSI (6 to 15 digits: MCC, MNC, MSIN)."""
        return self.imsis([imsi])[0]

    def imsis(self, imsis: Iterable[str]) -> list[bytes]:
        """`imsi` of each (an importer's distinct IMSIs of a file, hashed in one pass); the
        first that is not an IMSI raises `InvalidSubscriberError`."""
        keyed = self._keyed[0].copy
        out: list[bytes] = []
        append = out.append
        for imsi in imsis:
            # what _require_digits checks; it names the rule of one that fails
            if not (type(imsi) is str and 6 <= len(imsi) <= 15 and imsi.isascii()) or (
                not imsi.isdigit()
            ):
                _require_digits("IMSI", imsi, 6, 15)
            h = keyed()
            h.update(imsi.encode("ascii"))
            append(h.digest())
        return out

    def msisdn(self, msisdn: str) -> bytes:
        """The hash of an MSISDN (E.164: 1 to 15 digits, no '+')."""
        _require_digits("MSISDN", msisdn, 1, 15)
        return self._hash(self._keyed[1], msisdn)

    @staticmethod
    def _hash(keyed: hashlib.blake2b, value: str) -> bytes:
        """Keyed BLAKE2b-256 of `value`: the same as `blake2b(value, key=salt, person=...)`."""
        h = keyed.copy()
        h.update(value.encode("ascii"))
        return h.digest()


def _require_digits(kind: str, value: str, shortest: int, longest: int) -> None:
    # an ASCII string's isdigit() is [0-9]+ (only 0-9 are ASCII digits), without the regex
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise InvalidSubscriberError(kind, "must be decimal digits")
    if not shortest <= len(value) <= longest:
        raise InvalidSubscriberError(kind, f"must be {shortest} to {longest} digits")
