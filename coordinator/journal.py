"""The issuance journal: what the coordinator issued, persisted before it is published.

One row per milestone index (the primary key), written with `synchronous=FULL` before any byte
of the milestone leaves the process. A coordinator restarted after a crash at any point finds
the last index it may have published and republishes exactly those bytes; it never builds a
second, different milestone for an index it journaled.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from tangle.protocol.codec import Reader, sized

from .errors import JournalError

if TYPE_CHECKING:
    from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS issued (
    milestone_index INTEGER PRIMARY KEY,
    messages BLOB NOT NULL
) STRICT;
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Issue:
    """One milestone and the checkpoint messages it references, in publishing order."""

    index: int
    """The milestone index."""
    messages: tuple[bytes, ...]
    """Checkpoints first, the milestone message last."""


def _pack(messages: tuple[bytes, ...]) -> bytes:
    return b"".join(sized(4, m) for m in messages)


def _unpack(blob: bytes) -> tuple[bytes, ...]:
    r = Reader(blob, "journal entry")
    out = []
    while r.remaining:
        out.append(r.sized(4, 1 << 20, "message"))
    return tuple(out)


class Journal:
    """A write-once, index-keyed log of issued milestones in one sqlite file."""

    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    @classmethod
    def open(cls, path: str | Path) -> Self:
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the journal {path}: {exc}") from exc
        return cls(db)

    def close(self) -> None:
        self._db.close()

    def record(self, issue: Issue) -> None:
        """Persist `issue`; refuses a second entry for the same index."""
        if not issue.messages:
            raise JournalError("an issue needs at least its milestone message")
        try:
            self._db.execute(
                "INSERT INTO issued (milestone_index, messages) VALUES (?, ?)",
                (issue.index, _pack(issue.messages)),
            )
        except sqlite3.IntegrityError:
            raise JournalError(f"milestone {issue.index} was already issued") from None

    def last(self) -> Issue | None:
        row = self._db.execute(
            "SELECT milestone_index, messages FROM issued ORDER BY milestone_index DESC LIMIT 1"
        ).fetchone()
        return None if row is None else Issue(index=row[0], messages=_unpack(row[1]))

    def get(self, index: int) -> Issue | None:
        row = self._db.execute(
            "SELECT milestone_index, messages FROM issued WHERE milestone_index = ?", (index,)
        ).fetchone()
        return None if row is None else Issue(index=row[0], messages=_unpack(row[1]))
