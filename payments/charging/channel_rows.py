"""The CPO's payee channels in the CSMS's own database, so that a payment is one commit.

`CsmsChannels` is the store (`payments.channels.store.ChannelRecords`) of the `PayeeService`
behind the CSMS's cashier: the channel table of `payments.channels.store` (its rows and its
checks) in the CSMS's sqlite file, written through the CSMS store's group commit
(`CsmsStore.write`) together with the meter values. A payment for a session runs inside
`paying_for(key)` (`ChargePayments.pay`): the save of the channel record its proof makes
carries the session's paid amount (what the proof credits over the channel's record saved
before it) in the same transaction; a prepayment (`ChargePayments.prepay`) carries the token's
prepaid amount likewise. So:

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
    record_row,
    row_record,
)
from ..errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from tangle.protocol.ids import ChannelId

    from ..channels.state import Role
    from .store import CsmsStore, Statement

Counting = Callable[[int], "Statement"]
"""The statement that counts an amount a proof credits (for a session or a token)."""
_PAYING: Final[ContextVar[Counting | None]] = ContextVar("paying_for", default=None)


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

    __slots__ = ("_balances", "_store")

    def __init__(self, store: CsmsStore) -> None:
        self._store = store
        self._balances: dict[tuple[bytes, Role], int] = {}
        """The payee balance of each channel's latest record read or saved here (the channels
        a service read from this store or saved: as many as it holds in memory, and those a
        payment found absent). A read never replaces what a save put here (the read may have
        begun before that save's commit)."""

    @property
    def store(self) -> CsmsStore:
        return self._store

    async def save(self, record: ChannelRecord) -> None:
        """Make `record` durable in the next group commit, with what the current task counts
        its credit as (`paying_for`), if anything; return after that commit."""
        check_record(record)
        where = (record.terms.channel_id, record.role)
        statements: list[Statement] = [(UPSERT, record_row(record))]
        count = _PAYING.get()
        if count is not None:
            before = self._balances.get(where)
            if before is None:
                before = _balance(await self.load(*where))
            credited = _balance(record) - before
            if credited > 0:
                statements.append(count(credited))
        try:
            await self._store.write(statements)
        except Exception as e:
            raise StoreError(f"commit failed: {e!r}") from e
        self._balances[where] = _balance(record)

    async def take_over(self, records: Iterable[ChannelRecord]) -> None:
        """Keep `records` (a channel store file's, from before the channels moved into the
        CSMS's database) in one commit; a record never replaces a newer one kept here."""
        statements: list[Statement] = []
        for record in records:
            check_record(record)
            statements.append((UPSERT, record_row(record)))
        if statements:
            await self._store.write(statements)
            self._balances.clear()  # read again: a record here may have been replaced

    async def load(self, channel_id: ChannelId, role: Role) -> ChannelRecord | None:
        """The committed record of `channel_id` for `role`, if any."""
        query = f"SELECT {COLUMNS} FROM channels WHERE channel_id = ? AND role = ?"
        async with self._store.db.execute(query, (channel_id, int(role))) as c:
            row = await c.fetchone()
        if row is None:
            if _PAYING.get() is not None:  # a payment's channel (bound to its session or token)
                self._balances.setdefault((channel_id, role), 0)
            return None  # else not remembered: a caller may ask about any number of unknown ids
        record = row_record(tuple(row))
        self._balances.setdefault((channel_id, role), _balance(record))  # a save may be newer
        return record

    async def records(self, role: Role | None = None) -> list[ChannelRecord]:
        """Every committed record (of `role`, if given)."""
        async with self._store.db.execute(f"SELECT {COLUMNS} FROM channels") as rows:
            found = [row_record(tuple(r)) async for r in rows]
        return [r for r in found if role is None or r.role is role]


def _balance(record: ChannelRecord | None) -> int:
    """The payee balance `record`'s proof gives (0 without one)."""
    return 0 if record is None or record.latest is None else record.latest.proof.payee_balance
