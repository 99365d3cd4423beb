"""How the wallet's state and the payment channel store open their sqlite files: one opener, so
both keep the same durability.

Autocommit mode (every transaction is an explicit `BEGIN`), usable from any thread (each store
serialises its own access), WAL journaling (readers do not block the writer), `synchronous=FULL`
(a committed transaction survives a power cut: a payment or a reservation is never forgotten) and
foreign keys enforced. A reader that must never write (an operator's tool beside the process that
owns the file) opens it read only: the file must exist, and its journal mode is left as it is.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

BUSY_TIMEOUT_S: Final = 30.0
"""How long a statement waits for another process's write lock before `sqlite3.OperationalError`."""
PRAGMAS: Final = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON")


def open_database(
    path: Path, *, page_size: int | None = None, read_only: bool = False
) -> sqlite3.Connection:
    """The database at `path` (created if absent) with the settings above, and `page_size`
    bytes a page if given (a power of two, 512..65536) when this call creates it (a database
    keeps the page size it was created with); with `read_only`, the existing file, which this
    connection never writes (a write raises `sqlite3.OperationalError`). Raises
    `sqlite3.Error`; each caller maps it to its own error."""
    target = f"{path.resolve().as_uri()}?mode=ro" if read_only else path
    db = sqlite3.connect(
        target,
        timeout=BUSY_TIMEOUT_S,
        isolation_level=None,
        check_same_thread=False,
        uri=read_only,
    )
    try:
        if page_size is not None:  # before WAL mode writes the file's header
            db.execute(f"PRAGMA page_size = {int(page_size)}")
        for pragma in PRAGMAS[1:] if read_only else PRAGMAS:  # the journal mode is the file's
            db.execute(pragma)
    except BaseException:
        db.close()
        raise
    return db
