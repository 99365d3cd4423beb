"""What the explorer notes of the ledger's anchors and device records, in bounded memory: the
tagged-data messages whose tag starts with `tanglepay/` (roaming agreements, batch headers,
acknowledgements, disputes, charging session commitments, device data anchors) with when they
arrived and which milestone confirmed them, and for each device or issuer the registry records
milestones applied to it, with who signed them (the registry keeps the outcome, not the
signers: a quarantine's signers are known here for records applied since the node started).

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
RECORDS_PER_SUBJECT: Final = 32


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
    at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordApplied:
    """A record a milestone applied to the registry."""

    record: RecordSeen
    milestone_index: int


class Notes:
    """The explorer's bounded memory of anchors and registry records (module docstring)."""

    __slots__ = ("_anchors", "_applied", "_waiting")

    def __init__(self) -> None:
        self._anchors: OrderedDict[MessageId, AnchorSeen] = OrderedDict()
        self._waiting: OrderedDict[MessageId, RecordSeen] = OrderedDict()
        self._applied: OrderedDict[bytes, deque[RecordApplied]] = OrderedDict()

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
            put(self._waiting, parsed.id, record_seen(parsed.id, payload, at_ms), RECORDS_WAITING)

    def confirmed(self, index: int, result: WhiteFlagResult) -> None:
        for message_id in result.referenced:
            anchor = self._anchors.get(message_id)
            if anchor is not None:
                anchor.referenced_by = index
        for message_id in result.records:
            record = self._waiting.pop(message_id, None)
            if record is None:
                continue
            kept = self._applied.get(record.subject)
            if kept is None:
                kept = deque(maxlen=RECORDS_PER_SUBJECT)
            kept.appendleft(RecordApplied(record=record, milestone_index=index))
            put(self._applied, record.subject, kept, SUBJECTS_KEPT)
        for message_id, _ in result.record_conflicts:
            self._waiting.pop(message_id, None)

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


def record_seen(message_id: MessageId, record: DeviceRecord, at_ms: int) -> RecordSeen:
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
        kind=KINDS[type(body)].name.lower(),
        subject=subject,
        signers=tuple(bytes(s.public_key) for s in record.signatures),
        at_ms=at_ms,
    )


def put(table: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    """Put `key` last in `table`, forgetting the oldest beyond `limit`."""
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)
