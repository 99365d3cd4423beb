"""The CPO's payee channels in the CSMS's own database, so that a payment is one commit.

`CsmsChannels` is the store (`payments.channels.store.ChannelRecords`) of the `PayeeService`
behind the CSMS's cashier: the channel table of `payments.channels.store` (its rows and its
checks) in the CSMS's sqlite file, written through the CSMS store's group commit
(`CsmsStore.write`) together with the meter values. A payment for a session runs inside
`paying_for(key)` (`ChargePayments.pay`): the save of the channel record its proof makes
carries the session's paid amount (what the proof credits over the channel's record saved
before it, as the `PayeeService` worked it out and hands to the save: `Credit.credited`, the
one figure of it) in the same transaction; a prepayment (`ChargePayments.prepay`) carries the
token's prepaid amount likewise, or, if the operator unbound or rebound the token meanwhile, a
refund owed to the channel's payer (`refund_rows.credit_or_owe`). So:

* one payment costs one commit and no fsync of its own: it shares the group commit (and its
  fsync) of the meter values and payments around it;
* a CSMS killed at any moment has either taken the proof and counted it for the session (or
  the token), or neither: the driver's wallet sends the same proof again and it is taken then
  (before, the channel store's commit and the session's paid amount were two commits, and a
  crash between them kept the driver's money without counting it: the session owed it again).

`paying_for` is a context variable, so it belongs to the task taking the payment: the service's
lock on the channel, the check and the save all run in that task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final

from ..channels.store import (
    COLUMNS,
    UPSERT,
    ChannelRecord,
    check_record,
    read_records,
    record_row,
    row_record,
)
from ..errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from tangle.protocol.ids import ChannelId

    from ..channels.state import Role
    from .group_commit import Statement
    from .store import CsmsStore

Counting = Callable[[int], "Sequence[Statement]"]
"""The statements that count an amount a proof credits (for a session or a token)."""
_PAYING: Final[ContextVar[Counting | None]] = ContextVar("paying_for", default=None)
_INSERT_ABSENT: Final = f"INSERT OR IGNORE INTO channels ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
"""A record taken over only where this store has none: a row here is this store's own, and
newer than any in the old file even at the same sequence (a close, a settlement or a top-up
keeps the sequence)."""
TAKEN_OVER: Final = ".taken-over"
"""The suffix the old channel store file gets once taken over (so it is taken over once)."""


@contextlib.contextmanager
def paying_for(count: Counting) -> Iterator[None]:
    """Inside it, the current task's channel save commits `count(credited)`, what the proof
    credits, in the same transaction (`CsmsStore.add_paid`, `CsmsStore.add_credit`)."""
    token = _PAYING.set(count)
    try:
        yield
    finally:
        _PAYING.reset(token)


class CsmsChannels:
    """The payee channels' rows in a `CsmsStore`'s database (see the module docstring)."""

    __slots__ = ("_store",)

    def __init__(self, store: CsmsStore) -> None:
        self._store = store

    @property
    def store(self) -> CsmsStore:
        return self._store

    async def save(self, record: ChannelRecord, credited: int = 0) -> None:
        """Make `record` durable in the next group commit, with what the current task counts
        the proof's credit as (`paying_for`), if anything; return after that commit.
        `credited` is the service's own figure (`Credit.credited`: one source of truth, the
        figure its caller is told), not worked out again here."""
        check_record(record)
        statements: list[Statement] = [(UPSERT, record_row(record))]
        count = _PAYING.get()
        if count is not None and credited > 0:
            statements.extend(count(credited))
        try:
            await self._store.write(statements)
        except Exception as e:
            raise StoreError(f"commit failed: {e!r}") from e

    async def take_over(self, path: Path) -> bool:
        """Keep the records of the channel store file at `path` (from before the channels moved
        into the CSMS's database) that this store lacks, in one commit, then rename the file
        (and its sidecars) to `<name>.taken-over`, so that a later start takes nothing over
        again. A record never replaces one kept here. False if there is no file at `path`."""
        old = _old_records(path)
        if old is None:
            return False
        statements: list[Statement] = []
        for record in old:
            check_record(record)
            statements.append((_INSERT_ABSENT, record_row(record)))
        if statements:
            await self._store.write(statements)
        _mark_taken_over(path)  # after the commit: a crash before it takes over again (no harm)
        return True

    async def load(self, channel_id: ChannelId, role: Role) -> ChannelRecord | None:
        """The committed record of `channel_id` for `role`, if any."""
        query = f"SELECT {COLUMNS} FROM channels WHERE channel_id = ? AND role = ?"
        async with self._store.db.execute(query, (channel_id, int(role))) as c:
            row = await c.fetchone()
        return None if row is None else row_record(tuple(row))

    async def records(self, role: Role | None = None) -> list[ChannelRecord]:
        """Every committed record (of `role`, if given)."""
        where, params = ("", ()) if role is None else (" WHERE role = ?", (int(role),))
        async with self._store.db.execute(f"SELECT {COLUMNS} FROM channels{where}", params) as rows:
            return [row_record(tuple(r)) async for r in rows]


def _old_records(path: Path) -> list[ChannelRecord] | None:
    """The records of the channel store file at `path`; None if there is none (run once, at
    start, before the CSMS serves: blocking is fine)."""
    return read_records(path) if path.exists() else None


def _mark_taken_over(path: Path) -> None:
    """Rename the file at `path` (and its sidecars, if a crashed writer left any) so that it is
    not taken over again, and kept for an operator to inspect or delete."""
    for suffix in ("-wal", "-shm"):
        sidecar = path.with_name(path.name + suffix)
        if sidecar.exists():
            sidecar.rename(path.with_name(path.name + TAKEN_OVER + suffix))
    path.rename(path.with_name(path.name + TAKEN_OVER))
