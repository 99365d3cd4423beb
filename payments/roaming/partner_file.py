"""What an importer returns: a partner file's metadata and its records, all or nothing.

`PartnerFile` keeps what the file itself declares (sender, recipient, sequence number, time
stamps, currency and decimal places, and the audit totals) next to the records decoded from it;
the HPMN's validation compares the declared totals with the records. `ImportKey` (sender,
recipient, file sequence number) names a file for idempotent import: `ImportLedger` is the
sans-I/O check a store calls before it saves a file, telling a new file from a re-import of the
same bytes and from a different file reusing a sequence number.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Final

from .errors import TapValueError

if TYPE_CHECKING:
    from .ber import Element
    from .record import UsageRecord
    from .subscriber import SubscriberHasher

FILE_SEQUENCE_MAX: Final = 99_999
"""TAP numbers a partner pair's files 00001 to 99999."""


class FileKind(Enum):
    """The format and kind of a partner file."""

    TAP_TRANSFER_BATCH = "tap-transfer-batch"
    TAP_NOTIFICATION = "tap-notification"
    """A TAP file with no events: the sender had nothing to send for the period."""
    NRTRDE = "nrtrde"
    JSON_LINES = "jsonl"
    CSV = "csv"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportKey:
    """Names one partner file: importing the same key twice must change nothing."""

    sender: str
    """TADIG of the network that sent the file (the VPMN)."""
    recipient: str
    """TADIG of the network it is for (the HPMN)."""
    kind: FileKind
    """TAP and NRTRDE number their files independently."""
    sequence: int
    """The file sequence number."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PartnerFile:
    """A partner file's metadata, as it declares it (values absent from a format are None)."""

    kind: FileKind
    """Format and kind."""
    sender: str
    """TADIG of the sender (the VPMN)."""
    recipient: str
    """TADIG of the recipient (the HPMN)."""
    sequence: int
    """File sequence number, 1..`FILE_SEQUENCE_MAX`."""
    digest: bytes
    """BLAKE2b-256 of the file's bytes: a re-import must be these same bytes."""
    test_data: bool = False
    """The file says it carries test data (TAP FileTypeIndicator "T")."""
    specification_version: int | None = None
    """The format's specification and release version (TAP 3.12: 3 and 12)."""
    release_version: int | None = None
    created_utc: int | None = None
    """File creation time, UTC seconds."""
    available_utc: int | None = None
    """When the file was made available to the recipient, UTC seconds."""
    cutoff_utc: int | None = None
    """Transfer cut-off: no event after this time is in the file, UTC seconds."""
    local_currency: str | None = None
    """ISO 4217 code of the charges (TAP LocalCurrency)."""
    decimal_places: int | None = None
    """How many decimal places the integer charges carry (TAP tapDecimalPlaces)."""
    declared_total_charge: int | None = None
    """The audit total of charges the file states (TAP AuditControlInfo TotalCharge)."""
    declared_total_tax: int | None = None
    declared_total_discount: int | None = None
    declared_event_count: int | None = None
    """The number of events the file states (TAP CallEventDetailsCount)."""
    declared_earliest_utc: int | None = None
    """The earliest and latest event time stamps the file states, UTC seconds."""
    declared_latest_utc: int | None = None
    unknown_range_events: tuple[bytes, ...] = ()
    """Event ids of records whose IMSI lies outside the policy's allowed ranges (for the fraud
    rules: the records are imported, flagged)."""

    @property
    def key(self) -> ImportKey:
        """The idempotent import key of this file."""
        return ImportKey(
            sender=self.sender, recipient=self.recipient, kind=self.kind, sequence=self.sequence
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedFile:
    """A whole partner file, decoded and checked: its metadata and every record, in order."""

    meta: PartnerFile
    """What the file declares."""
    records: tuple[UsageRecord, ...]
    """The usage it carries (none for a notification)."""

    @property
    def total_charge(self) -> int:
        """The sum of the records' charges (to compare with `meta.declared_total_charge`)."""
        return sum(r.charge for r in self.records)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportPolicy:
    """What an importer needs besides the bytes: the agreement's subscriber hasher and the IMSI
    ranges (MCC+MNC prefixes) the HPMN has issued. The clear IMSI is checked and hashed here and
    goes no further."""

    hasher: SubscriberHasher
    """Hashes IMSIs and MSISDNs with the agreement's salt."""
    allowed_imsi_prefixes: frozenset[str] | None = None
    """Prefixes of the HPMN's IMSI ranges; None accepts every IMSI."""

    def imsi(self, imsi: str) -> tuple[bytes, bool]:
        """The IMSI's hash and whether it lies in an allowed range."""
        return self.imsis([imsi])[0]

    def imsis(self, imsis: list[str]) -> list[tuple[bytes, bool]]:
        """`imsi` of each, hashed in one pass (`SubscriberHasher.imsis`)."""
        hashes = self.hasher.imsis(imsis)
        prefixes = self.allowed_imsi_prefixes
        if prefixes is None:
            return [(h, True) for h in hashes]
        return [
            (h, any(imsi.startswith(p) for p in prefixes))
            for h, imsi in zip(hashes, imsis, strict=True)
        ]


def file_digest(data: bytes) -> bytes:
    """The digest `PartnerFile.digest` holds."""
    return hashlib.blake2b(data, digest_size=32).digest()


def file_sequence(element: Element, what: str) -> int:
    """A file sequence number: 1 to 5 ASCII digits (TAP writes "00023"), not zero."""
    text = element.text(what, shortest=1, longest=5)
    if not text.isdigit() or not 1 <= int(text) <= FILE_SEQUENCE_MAX:
        raise TapValueError(element.value_offset, f"{what}: {text!r} is not 1..{FILE_SEQUENCE_MAX}")
    return int(text)


class ImportOutcome(Enum):
    """What `ImportLedger.check` says about a file."""

    NEW = "new"
    """Never seen: import it."""
    ALREADY_IMPORTED = "already-imported"
    """The same key and the same bytes: importing again changes nothing."""
    CONFLICT = "conflict"
    """The same key with other bytes: a partner reusing a sequence number; refuse it."""


@dataclass(slots=True)
class ImportLedger:
    """The import keys seen and the digest of each file (sans I/O: a store loads it, calls
    `check`, saves the file and its records, then calls `record` in the same transaction).
    Bounded by the keys themselves: at most `FILE_SEQUENCE_MAX` per partner pair and kind, and
    only files that imported whole are recorded."""

    seen: dict[ImportKey, bytes] = field(default_factory=dict)

    def check(self, meta: PartnerFile) -> ImportOutcome:
        """Whether `meta`'s file is new, a re-import, or a conflicting reuse of its key."""
        digest = self.seen.get(meta.key)
        if digest is None:
            return ImportOutcome.NEW
        return ImportOutcome.ALREADY_IMPORTED if digest == meta.digest else ImportOutcome.CONFLICT

    def record(self, meta: PartnerFile) -> None:
        """Note `meta`'s file as imported (after `check` said NEW)."""
        self.seen.setdefault(meta.key, meta.digest)
