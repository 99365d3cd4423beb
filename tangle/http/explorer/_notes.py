"""What the explorer notes of the ledger's anchors and device records, in bounded memory: the
tagged-data messages whose tag starts with `tanglepay/` (roaming agreements, batch headers,
acknowledgements, disputes, charging session commitments, device data anchors) with when they
arrived and which milestone confirmed them, and for each device or issuer the registry records
milestones applied to it, with who signed them (the registry keeps the outcome, not the
signers). A record's signers are known here only if this node saw it arrive and it was still
among the last RECORDS_WAITING records waiting when a milestone applied it: a flood of records
can push an honest one out, so a record missing here is "not remembered by this node", never
"applied before this node started".

The node does not decode what an anchor carries (the layers above own those layouts): it keeps
the first bytes of each, and the page decodes the fixed layouts PROTOCOL.md lists (section 12).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from tangle.protocol.device import AdmitIssuer, DeviceRecord, Register, device_id_of
from tangle.protocol.device_bodies import KINDS
from tangle.protocol.payload import TaggedData

if TYPE_CHECKING:
    from tangle.ledger.white_flag import WhiteFlagResult
    from tangle.protocol.ids import MessageId
    from tangle.protocol.message import Parsed

K = TypeVar("K")
V = TypeVar("V")

ANCHOR_PREFIX: Final = b"tanglepay/"
ANCHORS_KEPT: Final = 4_096
"""Anchors remembered (the oldest are forgotten)."""
HEAD_KEPT: Final = 256
"""Bytes of an anchor's data kept (the fixed layouts of section 12 of PROTOCOL.md fit)."""
RECORDS_WAITING: Final = 4_096
"""Device records received and not yet applied (the oldest are forgotten)."""
SUBJECTS_KEPT: Final = 10_000
"""Devices and issuers whose applied records are remembered (least recently changed go)."""
RECORDS_PER_SUBJECT: Final = 8
KEYS_KEPT: Final = 4_096
"""Signer keys shared by the records that name them (one bytes object a key, not one a record);
past this many distinct keys a record keeps its own copies."""
MEMORY_BOUND: Final = 52 * 2**20
"""What the notes can hold at most: 48 MiB measured with tracemalloc
(`tests/tangle/http/test_explorer_notes.py`): SUBJECTS_KEPT subjects of RECORDS_PER_SUBJECT
records of 16 signers each, RECORDS_WAITING records waiting, ANCHORS_KEPT anchors of HEAD_KEPT
bytes."""


@dataclass(slots=True, kw_only=True)
class AnchorSeen:
    """A `tanglepay/` tagged-data message."""

    message_id: MessageId
    tag: bytes
    size: int
    """Bytes of its data."""
    head: bytes
    """Its first HEAD_KEPT bytes."""
    at_ms: int
    """When this node stored it (Unix ms)."""
    referenced_by: int | None = None
    """The milestone that confirmed it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordSeen:
    """A device registry record, as received."""

    message_id: MessageId
    kind: str
    """`register`, `quarantine`, ... (`RecordKind` in lower case)."""
    subject: bytes
    """The device id it changes, or the issuer key it admits."""
    signers: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordApplied:
    """A record a milestone applied to the registry."""

    record: RecordSeen
    milestone_index: int


class Notes:
    """The explorer's bounded memory of anchors and registry records (module docstring)."""

    __slots__ = ("_anchors", "_applied", "_keys", "_waiting")

    def __init__(self) -> None:
        self._anchors: OrderedDict[MessageId, AnchorSeen] = OrderedDict()
        self._waiting: OrderedDict[MessageId, RecordSeen] = OrderedDict()
        self._applied: OrderedDict[bytes, deque[RecordApplied]] = OrderedDict()
        self._keys: dict[bytes, bytes] = {}

    def arrived(self, parsed: Parsed, at_ms: int) -> None:
        payload = parsed.message.payload
        if isinstance(payload, TaggedData) and payload.tag.startswith(ANCHOR_PREFIX):
            seen = AnchorSeen(
                message_id=parsed.id,
                tag=payload.tag,
                size=len(payload.data),
                head=payload.data[:HEAD_KEPT],
                at_ms=at_ms,
            )
            put(self._anchors, parsed.id, seen, ANCHORS_KEPT)
        elif isinstance(payload, DeviceRecord):
            record = self._shared(record_seen(parsed.id, payload))
            put(self._waiting, parsed.id, record, RECORDS_WAITING)

    def _shared(self, seen: RecordSeen) -> RecordSeen:
        """`seen` with its signer keys the ones already held (KEYS_KEPT distinct keys at most)."""
        keys = self._keys
        signers = []
        for key in seen.signers:
            held = keys.get(key)
            if held is None and len(keys) < KEYS_KEPT:
                held = keys[key] = key
            signers.append(key if held is None else held)
        return RecordSeen(
            message_id=seen.message_id, kind=seen.kind, subject=seen.subject, signers=tuple(signers)
        )

    def confirmed(self, index: int, result: WhiteFlagResult) -> None:
        for message_id in result.referenced:
            anchor = self._anchors.get(message_id)
            if anchor is not None:
                anchor.referenced_by = index
        for message_id in result.records:
            record = self._waiting.pop(message_id, None)
            if record is not None:  # else pushed out while waiting: not remembered
                self.applied(RecordApplied(record=record, milestone_index=index))
        for message_id, _ in result.record_conflicts:
            self._waiting.pop(message_id, None)

    def applied(self, applied: RecordApplied) -> None:
        """Remember a record a milestone applied, first of its subject's."""
        record = applied.record
        kept = self._applied.get(record.subject)
        if kept is None:
            kept = deque(maxlen=RECORDS_PER_SUBJECT)
        kept.appendleft(applied)
        put(self._applied, record.subject, kept, SUBJECTS_KEPT)

    def anchors(self, prefix: bytes, count: int) -> list[AnchorSeen]:
        """The latest `count` anchors whose tag starts with `prefix`, newest first."""
        found: list[AnchorSeen] = []
        for anchor in reversed(self._anchors.values()):
            if len(found) == count:
                break
            if anchor.tag.startswith(prefix):
                found.append(anchor)
        return found

    def records(self, subject: bytes) -> list[RecordApplied]:
        """The records applied to a device (its id) or an issuer (its key), newest first."""
        return list(self._applied.get(subject, ()))

    def last(self, subject: bytes, kind: str) -> RecordApplied | None:
        """The latest record of `kind` applied to `subject`, if remembered."""
        return next((r for r in self.records(subject) if r.record.kind == kind), None)


def record_seen(message_id: MessageId, record: DeviceRecord) -> RecordSeen:
    """What the explorer notes of a record: its kind, whom it is about, who signed."""
    body = record.body
    if isinstance(body, AdmitIssuer):
        subject = bytes(body.issuer)
    elif isinstance(body, Register):
        subject = bytes(device_id_of(body.device_key))
    else:
        subject = bytes(body.device_id)
    return RecordSeen(
        message_id=message_id,
        kind=_KIND_NAMES[type(body)],
        subject=subject,
        signers=tuple(bytes(s.public_key) for s in record.signatures),
    )


_KIND_NAMES: Final = {body: kind.name.lower() for body, kind in KINDS.items()}
"""Each record body's kind in lower case (one string each, shared by the records)."""


def put(table: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    """Put `key` last in `table`, forgetting the oldest beyond `limit`."""
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)
