"""RAP 1.5 (GSMA TD.32) files, read far enough to classify them and know what they answer.

A RAP file goes back from the HPMN to the VPMN: a return batch (`ReturnBatch`, tag 534, with its
`RapBatchControlInfo`, tag 537) or the acknowledgement of one (`Acknowledgement`, tag 535). The
tag numbers are read off the samples `rap_mini.ber` and `rap_ack.ber` beside their XML twins.
This reader takes the control information (sender, recipient, RAP sequence number, time stamps,
versions) and counts the return details; it does not decode the returned TAP records or the
severity of each return (fatal, severe, missing): the project's own acknowledgements carry
severities (see the validation module), so RAP is read here for the partners that still send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from .ber import TagClass, parse
from .errors import TapStructureError, TapValueError
from .fields import Fields, date_time
from .partner_file import file_sequence
from .record import is_tadig

RETURN_BATCH: Final = 534
ACKNOWLEDGEMENT: Final = 535
RAP_BATCH_CONTROL_INFO: Final = 537


class RapKind(Enum):
    """What a RAP file is."""

    RETURN_BATCH = "return-batch"
    """Records (or a whole TAP file) returned to the sender as invalid."""
    ACKNOWLEDGEMENT = "acknowledgement"
    """The receipt of a return batch."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RapFile:
    """The control information of a RAP file."""

    kind: RapKind
    sender: str
    """TADIG of the sender (the HPMN for a return batch)."""
    recipient: str
    rap_sequence: int
    """The RAP file sequence number (the one acknowledged, for an acknowledgement)."""
    created_utc: int
    available_utc: int
    tap_version: tuple[int, int] | None
    """The TAP specification and release the returned records follow (return batches)."""
    rap_version: tuple[int, int] | None
    """The RAP specification and release (return batches)."""
    other_elements: int
    """How many elements besides the control information the file holds (return details and
    audit info; 0 in a minimal return batch and in an acknowledgement)."""


def read_rap(data: bytes) -> RapFile:
    """Classify a RAP file and read its control information."""
    root = parse(data)
    if root.tag_class is not TagClass.APPLICATION or root.tag not in (
        RETURN_BATCH,
        ACKNOWLEDGEMENT,
    ):
        raise TapStructureError(
            root.offset, f"not a RAP return batch or acknowledgement ({root.tag})"
        )
    if root.tag == ACKNOWLEDGEMENT:
        ack = Fields(root, "Acknowledgement")
        sender, recipient = _parties(ack)
        return RapFile(
            kind=RapKind.ACKNOWLEDGEMENT,
            sender=sender,
            recipient=recipient,
            rap_sequence=file_sequence(ack.need(181, "RapFileSequenceNumber"), "RapFileSequence"),
            created_utc=date_time(ack.sub(516, "AckFileCreationTimeStamp"), 231, "created"),
            available_utc=date_time(ack.sub(515, "AckFileAvailableTimeStamp"), 231, "available"),
            tap_version=None,
            rap_version=None,
            other_elements=0,
        )
    batch = Fields(root, "ReturnBatch")
    control = batch.sub(RAP_BATCH_CONTROL_INFO, "RapBatchControlInfo")
    sender, recipient = _parties(control)
    return RapFile(
        kind=RapKind.RETURN_BATCH,
        sender=sender,
        recipient=recipient,
        rap_sequence=file_sequence(control.need(181, "RapFileSequenceNumber"), "RapFileSequence"),
        created_utc=date_time(control.sub(526, "RapFileCreationTimeStamp"), 231, "created"),
        available_utc=date_time(control.sub(525, "RapFileAvailableTimeStamp"), 231, "available"),
        tap_version=_version(control, 201, 189),
        rap_version=_version(control, 544, 543),
        other_elements=len(root.children) - 1,
    )


def _parties(fields: Fields) -> tuple[str, str]:
    found: list[str] = []
    for tag, name in ((196, "Sender"), (182, "Recipient")):
        element = fields.need(tag, name)
        value = element.text(name, shortest=5, longest=5)
        if not is_tadig(value):
            raise TapValueError(element.value_offset, f"{name} is not a TADIG code")
        found.append(value)
    return found[0], found[1]


def _version(fields: Fields, spec_tag: int, release_tag: int) -> tuple[int, int]:
    spec = fields.need(spec_tag, "specification version").unsigned("version", max_octets=1)
    release = fields.need(release_tag, "release version").unsigned("version", max_octets=1)
    return spec, release
