"""Milestone records: an applied milestone as the node keeps it for ever.

The record is what the sans-I/O node core hands to storage and what the HTTP API renders; it is
a value of the ledger (not of the database), so the core can build one without loading storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tangle.errors import InvalidFieldError
from tangle.protocol.codec import U32_MAX, U64_MAX, require_uint
from tangle.protocol.ids import MessageId, MilestoneId
from tangle.protocol.milestone import Milestone

if TYPE_CHECKING:
    from tangle.protocol.message import Parsed


@dataclass(frozen=True, slots=True, kw_only=True)
class MilestoneRecord:
    """An applied milestone, kept for ever (pruning never removes it)."""

    index: int
    """Milestone index, from 1."""
    milestone_id: MilestoneId
    """BLAKE2b-256 of its essence; the `previous` of the next milestone."""
    message_id: MessageId
    """Id of the message that carries it."""
    timestamp_ms: int
    """Issuance time, Unix milliseconds."""
    raw: bytes
    """Canonical bytes of that message."""

    def __post_init__(self) -> None:
        require_uint("MilestoneRecord.index", self.index, U32_MAX, minimum=1)
        require_uint("MilestoneRecord.timestamp_ms", self.timestamp_ms, U64_MAX)
        if not isinstance(self.milestone_id, MilestoneId):
            raise InvalidFieldError("MilestoneRecord.milestone_id", "must be a MilestoneId")
        if not isinstance(self.message_id, MessageId):
            raise InvalidFieldError("MilestoneRecord.message_id", "must be a MessageId")
        if not isinstance(self.raw, bytes) or not self.raw:
            raise InvalidFieldError("MilestoneRecord.raw", "must be non-empty bytes")


def milestone_record(parsed: Parsed) -> MilestoneRecord:
    """The record of a parsed milestone message."""
    payload = parsed.message.payload
    if not isinstance(payload, Milestone):
        raise InvalidFieldError("MilestoneRecord", "the message carries no milestone")
    return MilestoneRecord(
        index=payload.essence.index,
        milestone_id=payload.id,
        message_id=parsed.id,
        timestamp_ms=payload.essence.timestamp_ms,
        raw=parsed.raw,
    )
