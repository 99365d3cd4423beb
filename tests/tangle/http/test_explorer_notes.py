"""The explorer's notes stay within `MEMORY_BOUND` filled to every limit at once (measured with
tracemalloc), records share signer keys, and an applied record that a flood pushed out of the
waiting table is not remembered (the page says so, not that it predates the node)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from tangle.http.explorer import _notes
from tangle.http.explorer._notes import (
    ANCHORS_KEPT,
    HEAD_KEPT,
    MEMORY_BOUND,
    RECORDS_PER_SUBJECT,
    RECORDS_WAITING,
    SUBJECTS_KEPT,
    AnchorSeen,
    Notes,
    RecordApplied,
    RecordSeen,
    put,
)
from tangle.protocol.ids import MessageId

KEYS = [bytes([i]) * 32 for i in range(16)]
PAGES = Path(_notes.__file__).parent / "static" / "pages"


def _id(i: int) -> MessageId:
    return MessageId(i.to_bytes(32, "little"))


def test_notes_filled_to_every_limit_fit_the_stated_bound() -> None:
    tracemalloc.start()
    try:
        notes = Notes()
        n = 0
        for subject in range(SUBJECTS_KEPT):
            about = subject.to_bytes(32, "big")
            for _ in range(RECORDS_PER_SUBJECT):
                seen = RecordSeen(
                    message_id=_id(n), kind="quarantine", subject=about, signers=tuple(KEYS)
                )
                notes.applied(RecordApplied(record=seen, milestone_index=n))
                n += 1
        for i in range(RECORDS_WAITING):  # a flood: 16 keys no record shares
            signers = tuple(bytes([i % 256, i // 256, k]) * 11 for k in range(16))
            seen = RecordSeen(
                message_id=_id(n + i), kind="register", subject=bytes(32), signers=signers
            )
            put(notes._waiting, seen.message_id, seen, RECORDS_WAITING)
        for i in range(ANCHORS_KEPT):
            anchor = AnchorSeen(
                message_id=_id(i),
                tag=b"tanglepay/x",
                size=2**16,
                head=bytes([i % 256]) * HEAD_KEPT,
                at_ms=i,
            )
            put(notes._anchors, anchor.message_id, anchor, ANCHORS_KEPT)
        used = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert used <= MEMORY_BOUND, used / 2**20
    assert MEMORY_BOUND - used < 8 * 2**20  # the stated bound is what was measured, not a guess
    kept = notes.records((SUBJECTS_KEPT - 1).to_bytes(32, "big"))
    assert len(kept) == RECORDS_PER_SUBJECT
    assert all(r.record.signers[0] is KEYS[0] for r in kept)


def test_records_share_their_signer_keys() -> None:
    notes = Notes()
    first = notes._shared(
        RecordSeen(message_id=_id(1), kind="k", subject=b"s", signers=(bytes(KEYS[3]),))
    )
    again = notes._shared(
        RecordSeen(message_id=_id(2), kind="k", subject=b"s", signers=(bytes(bytearray(KEYS[3])),))
    )
    assert first.signers[0] is again.signers[0]


def test_a_record_not_remembered_is_not_said_to_predate_the_node() -> None:
    text = (PAGES / "devices.js").read_text()
    assert "not remembered by this node" in text
    assert "applied before this node started" not in text
