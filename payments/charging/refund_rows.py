"""The refunds the CSMS owes drivers, in the CSMS store's database (`CsmsStore.refunds`).

A prepaid session's rest (`paid - amount`) is written as an owed row of `refunds` in the same
transaction as its bill (`CsmsStore.bill`); a token the operator unbinds while it still holds a
prepaid amount leaves that amount as an owed row of `token_refunds` (`unbind_token`: the
unbinding and the owed row are one commit), and so does a prepayment whose token the operator
unbound or rebound while it was being taken (`credit_or_owe`, in the payment's commit). The
refunder (`refund.PrepaidRefunds`) reads the owed rows here in bounded batches, pays each and
marks it `paid`, or keeps a session's rest as its token's prepaid credit and marks it
`credited` (one transaction). Every write runs under the store's lock in one transaction that
rolls back on any error (`CsmsStore.transaction`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    import aiosqlite

ADD_CREDIT: Final = """
    INSERT INTO tokens VALUES (?, ?, ?) ON CONFLICT (id_token) DO UPDATE SET
    prepaid = prepaid + excluded.prepaid WHERE channel_id = excluded.channel_id"""
"""Add an amount to a token's prepaid credit on a channel (bound anew if unbound; nothing if it
is bound to another channel): a binding (`CsmsStore.add_prepaid`), a rest kept as credit."""
CREDIT_BOUND: Final = (
    "UPDATE tokens SET prepaid = prepaid + ? WHERE id_token = ? AND channel_id = ?"
)
"""Add an amount to a token's prepaid credit if it is bound to the channel it was paid from."""
OWE_UNBOUND: Final = """
    INSERT INTO token_refunds (id_token, channel_id, amount, state)
    SELECT ?, ?, ?, 'owed' WHERE NOT EXISTS
    (SELECT 1 FROM tokens WHERE id_token = ? AND channel_id = ?)"""
"""Owe an amount back to a channel's payer if the token is not bound to that channel (unbound
or rebound by the operator): the complement of `CREDIT_BOUND`, so the two credit an amount
exactly once, whichever runs first (no statement of a group commit binds or unbinds a token)."""
MAX_OWED_BATCH: Final = 1000
"""The most owed refunds one retry round reads."""


def credit_or_owe(
    id_token: str, channel_id: bytes, amount: int
) -> tuple[tuple[str, tuple[object, ...]], ...]:
    """The statements crediting `amount`, paid from `channel_id` for `id_token`, to the token's
    prepaid credit if it is still bound to that channel, else owing it back to the channel's
    payer (`owed_token_refunds`); run in one transaction."""
    return (
        (CREDIT_BOUND, (amount, id_token, channel_id)),
        (OWE_UNBOUND, (id_token, channel_id, amount, id_token, channel_id)),
    )


class _Store(Protocol):
    """What `RefundRows` uses of its `CsmsStore` (so this module need not import the store)."""

    @property
    def db(self) -> aiosqlite.Connection: ...

    def transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

    async def write_now(self, sql: str, params: tuple[object, ...]) -> int: ...


class RefundRows:
    """The owed refunds of a `CsmsStore` (see the module docstring)."""

    __slots__ = ("_store",)

    def __init__(self, store: _Store) -> None:
        self._store = store

    async def owed_refunds(self, limit: int = MAX_OWED_BATCH) -> list[tuple[tuple[str, str], int]]:
        """Refunds owed and not yet paid: (session, rest), oldest bill first."""
        query = (
            "SELECT r.charge_point, r.transaction_id, r.amount FROM refunds r JOIN bills b "
            "ON b.charge_point = r.charge_point AND b.transaction_id = r.transaction_id "
            "WHERE r.state = 'owed' ORDER BY b.rowid LIMIT ?"
        )
        async with self._store.db.execute(query, (limit,)) as rows:
            return [((r[0], r[1]), int(r[2])) async for r in rows]

    async def owed_refund(self, key: tuple[str, str]) -> int | None:
        """The rest owed back for session `key`, None if nothing is (or it was paid)."""
        query = (
            "SELECT amount FROM refunds WHERE charge_point = ? AND transaction_id = ? "
            "AND state = 'owed'"
        )
        async with self._store.db.execute(query, key) as c:
            row = await c.fetchone()
        return None if row is None else int(row[0])

    async def refund_paid(self, key: tuple[str, str]) -> None:
        """Mark session `key`'s refund paid (the ledger took the transfer)."""
        await self._store.write_now(
            "UPDATE refunds SET state = 'paid' WHERE charge_point = ? AND transaction_id = ?",
            key,
        )

    async def refund_as_credit(
        self, key: tuple[str, str], id_token: str, channel_id: bytes
    ) -> bool:
        """Keep session `key`'s owed rest as `id_token`'s prepaid credit on `channel_id` and mark
        the refund credited, in one transaction; False (nothing changes) unless it was owed and
        the token is still bound to `channel_id` (or unbound): a token rebound to another channel
        keeps its own credit and this rest stays owed."""
        async with self._store.transaction() as db:
            rest = await self.owed_refund(key)
            if rest is None:
                return False
            credit = await db.execute(ADD_CREDIT, (id_token, channel_id, rest))
            if credit.rowcount != 1:
                return False
            await db.execute(
                "UPDATE refunds SET state = 'credited' WHERE charge_point = ? "
                "AND transaction_id = ?",
                key,
            )
        return True

    async def unbind_token(self, id_token: str) -> int | None:
        """Unbind `id_token`: the prepaid amount it held (owed back to its channel's payer from
        now on, written in the same commit: `owed_token_refunds`), None if it
        was not bound."""
        async with self._store.transaction() as db:
            async with db.execute(
                "DELETE FROM tokens WHERE id_token = ? RETURNING channel_id, prepaid", (id_token,)
            ) as c:
                row = await c.fetchone()
            if row is not None and row[1] > 0:
                await db.execute(
                    "INSERT INTO token_refunds (id_token, channel_id, amount, state) "
                    "VALUES (?, ?, ?, 'owed')",
                    (id_token, row[0], row[1]),
                )
        return None if row is None else int(row[1])

    async def owed_token_refunds(
        self, at_least: int = 1, limit: int = MAX_OWED_BATCH
    ) -> list[tuple[int, bytes, str, int]]:
        """Prepaid amounts of unbound tokens owed back and not yet paid, of at least
        `at_least`: (refund id, channel, token, amount), oldest first."""
        query = (
            "SELECT id, channel_id, id_token, amount FROM token_refunds WHERE state = 'owed' "
            "AND amount >= ? ORDER BY id LIMIT ?"
        )
        async with self._store.db.execute(query, (at_least, limit)) as rows:
            return [(int(r[0]), bytes(r[1]), str(r[2]), int(r[3])) async for r in rows]

    async def token_refund_paid(self, refund_id: int) -> None:
        """Mark the unbound token's refund `refund_id` paid (the ledger took the transfer)."""
        await self._store.write_now(
            "UPDATE token_refunds SET state = 'paid' WHERE id = ?", (refund_id,)
        )
