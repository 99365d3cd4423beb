"""The refunds the CSMS owes drivers, in the CSMS store's database (`CsmsStore.refunds`).

A prepaid session's rest (`paid - amount`) is written as an owed row of `refunds` in the same
transaction as its bill (`CsmsStore.bill`); a token the operator unbinds while it still holds a
prepaid amount leaves that amount as an owed row of `token_refunds` (`unbind_token`: the
unbinding and the owed row are one commit), and so does a prepayment whose token the operator
unbound or rebound while it was being taken (`credit_or_owe`, in the payment's commit). The
refunder (`refund.PrepaidRefunds`) reads the owed rows here in bounded batches. Every write runs
under the store's lock in one transaction that rolls back on any error
(`CsmsStore.transaction`).

*Bounded.* A row lives only while its money is owed: paid, it is deleted (nothing reads a paid
refund: the ledger's transfer is its record, and the back office shows bills, not refunds);
rows marked `paid` or `credited` by older versions are deleted by the store's upgrade
(`UPGRADE_1`). A row is `owed` until a payment of it is first tried, then `sending`: from then
on its amount never changes, and its idempotency key changes only when the wallet says the
transfer under it failed and can never apply: the row moves to its next `attempt`, a key of its
own (`next_refund_attempt`; `refund_attempts`), so a retry pays it once. Past the last attempt
(or after a failure that may still apply) it is `held`: kept, still owed (`owed_back`), never
read by a retry round, taken in or merged; so is one the operator holds (`paused`:
`refund_desk`). Every failed try adds one to the row's `tries`, and
the retry batches read the rows tried least often first (then the oldest), so no set of rows
failing round after round keeps the others out of the `MAX_OWED_BATCH` rows a round reads.

Versions before `sending` existed sent an `owed` row as it was and marked it paid afterwards: a
row they left `owed` may have been sent already (killed between the two). The store marks such
rows `maybe_sent` once, when it first opens a database they wrote (`UPGRADE_1`, PRAGMA
user_version 0 -> 1; `UPGRADE_2`, 1 -> 2, adds `attempt` and `tries`, 0 for every row, so a row
`sending` keeps its key). A `maybe_sent` row's amount is fixed whatever it is: claiming one
fixes it at its amount (-> `sending`) and takes nothing in, nothing takes it in, and a small one
is not credited. The wallet's record of its key then tells (`Wallet.send` looks the key up
first): recorded, it was sent, and the transfer is resumed at its amount whatever the minimum is
now; not recorded and below the minimum, the wallet refuses it before recording anything
(`AmountError`), so it was never sent, and it is `owed` again (`unclaim_refund`,
`unclaim_token_refund`), a small amount like any other. (Before, a `maybe_sent` row below the
minimum was taken for never sent; sent by those versions at a lower minimum, it was paid twice.)

*Amounts below the ledger's smallest output* (`min_amount`) cannot be paid on their own. A
session's rest below it is kept as its token's prepaid credit if the token is still bound to the
channel that paid it, else owed to that channel's payer as a `token_refunds` row
(`refund_as_credit`). Small owed amounts of one channel are then paid as soon as what that
channel is owed reaches the minimum: every `owed` refund to the channel takes in, before its
first try, the channel's small amounts never sent (`owed`: `claim_refund`, `claim_token_refund`;
one transfer pays them all), and small amounts with no larger refund to join are merged into one
row per channel (`merge_small`), paid once their total reaches the minimum. So after each
`merge_small` round (every `PrepaidRefunds.retry`) a channel is owed at most one never-sent row
below the minimum (between rounds, new small amounts add rows); it stays owed only while nothing
more is owed to that channel (the ledger cannot carry it alone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .refund_attempts import Claim
from .refund_desk import OWED_STATES, READ_STATES, RefundDesk, row_of, sql_states

if TYPE_CHECKING:
    import aiosqlite

    from .group_commit import Statement
    from .refund_desk import RefundRef, RefundStore

CREDIT_BOUND: Final = (
    "UPDATE tokens SET prepaid = prepaid + ? WHERE id_token = ? AND channel_id = ?"
)
"""Add an amount to a token's prepaid credit if it is bound to the channel it was paid from."""
OWE_UNBOUND: Final = """
    INSERT INTO token_refunds (id_token, channel_id, amount, state, proof_sequence)
    SELECT ?, ?, ?, 'owed', ? WHERE NOT EXISTS
    (SELECT 1 FROM tokens WHERE id_token = ? AND channel_id = ?)"""
"""Owe an amount back to a channel's payer if the token is not bound to that channel (unbound
or rebound by the operator): the complement of `CREDIT_BOUND`, so the two credit an amount
exactly once, whichever runs first (no statement of a group commit binds or unbinds a token).
A prepayment's row holds its proof's sequence (`owed_back`)."""
MAX_OWED_BATCH: Final = 1000
"""The most owed refunds one retry round reads (those tried least often first)."""
_UNPAID: Final = sql_states(READ_STATES)
_OWED: Final = sql_states(OWED_STATES)
"""Every state in which the money is still owed (`held` and `paused` too: kept for the operator,
`refund_desk`)."""
UPGRADE_1: Final = """
    DELETE FROM refunds WHERE state IN ('paid', 'credited');
    DELETE FROM token_refunds WHERE state IN ('paid', 'credited');
    UPDATE refunds SET state = 'maybe_sent' WHERE state = 'owed';
    UPDATE token_refunds SET state = 'maybe_sent' WHERE state = 'owed';
    ALTER TABLE token_refunds ADD COLUMN proof_sequence BLOB;
    CREATE INDEX token_refunds_proof ON token_refunds (channel_id, proof_sequence);"""
"""The refund tables of version 0 (older versions' and a new database's) to version 1 (run once,
by the store's upgrade): the rows of refunds done that older versions kept (only those states,
so that no state a later version adds is taken for done) are deleted; the rows they left `owed`
may have been sent; a raced prepayment's row holds its proof's sequence (u64 big-endian,
`owed_back`)."""
UPGRADE_2: Final = """
    ALTER TABLE refunds ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE refunds ADD COLUMN tries INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE token_refunds ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE token_refunds ADD COLUMN tries INTEGER NOT NULL DEFAULT 0;"""
"""Version 1 to 2: each row counts its attempt (0 for every row a version 1 left: a row
`sending` keeps its key, `attempt_key`) and its failed tries (0: the batches' order)."""
_SMALL: Final = "state = 'owed' AND amount < ?"
"""Never sent and not fixed (`owed`), below the minimum: may be taken in."""
_SMALL_SUM: Final = (
    f"SELECT coalesce(sum(amount), 0) FROM token_refunds WHERE channel_id = ? AND {_SMALL}"
)
_DELETE_SMALL: Final = f"DELETE FROM token_refunds WHERE channel_id = ? AND {_SMALL}"


def credit_or_owe(
    id_token: str, channel_id: bytes, amount: int, sequence: int | None = None
) -> tuple[Statement, Statement]:
    """The statements crediting `amount`, paid from `channel_id` for `id_token`, to the token's
    prepaid credit if it is still bound to that channel, else owing it back to the channel's
    payer (`owed_token_refunds`; with the `sequence` of the proof that paid it, if a proof did:
    `owed_back`); run in one transaction."""
    proof = None if sequence is None else _proof_sequence(sequence)
    return (
        (CREDIT_BOUND, (amount, id_token, channel_id)),
        (OWE_UNBOUND, (id_token, channel_id, amount, proof, id_token, channel_id)),
    )


def _proof_sequence(sequence: int) -> bytes:
    return sequence.to_bytes(8, "big")


class RefundRows(RefundDesk):
    """The owed refunds of a `CsmsStore` (see the module docstring), with the operator's
    listing and actions (`RefundDesk`)."""

    __slots__ = ()

    async def owed_refunds(self, limit: int = MAX_OWED_BATCH) -> list[tuple[tuple[str, str], int]]:
        """Refunds of sessions' rests owed and not yet paid: (session, rest), those whose
        payment failed least often first (`refund_failed`), then oldest bill first."""
        query = (
            "SELECT r.charge_point, r.transaction_id, r.amount FROM refunds r JOIN bills b "
            "ON b.charge_point = r.charge_point AND b.transaction_id = r.transaction_id "
            f"WHERE r.state IN {_UNPAID} ORDER BY r.tries, b.rowid LIMIT ?"
        )
        async with self._store.db.execute(query, (limit,)) as rows:
            return [((r[0], r[1]), int(r[2])) async for r in rows]

    async def owed_refund(self, key: tuple[str, str]) -> tuple[int, bool] | None:
        """The rest owed back for session `key` and whether its amount is fixed (`sending`: a
        payment of it was tried, or `maybe_sent`: so it may have been sent), None if nothing is
        (or it was paid, or it is `held`)."""
        query = (
            "SELECT amount, state FROM refunds WHERE charge_point = ? AND transaction_id = ? "
            f"AND state IN {_UNPAID}"
        )
        async with self._store.db.execute(query, key) as c:
            row = await c.fetchone()
        return None if row is None else (int(row[0]), row[1] != "owed")

    async def claim_refund(
        self, key: tuple[str, str], channel_id: bytes, minimum: int
    ) -> Claim | None:
        """What to send for session `key`'s rest, paid to `channel_id`'s payer: at its first
        try, the rest and, if the rest is `owed` (never sent), the channel's never-sent amounts
        below `minimum` (taken in, in the same transaction); the same amount at every later try
        (the row is `sending` from the first), under its current attempt. None if nothing is
        owed (or the refund is `held`)."""
        async with self._store.transaction() as db:
            query = (
                "SELECT amount, state, attempt FROM refunds WHERE charge_point = ? "
                f"AND transaction_id = ? AND state IN {_UNPAID}"
            )
            async with db.execute(query, key) as c:
                row = await c.fetchone()
            if row is None:
                return None
            amount, state = int(row[0]), str(row[1])
            if state == "owed":
                amount += await _take_in(db, channel_id, minimum)
            if state != "sending":
                await db.execute(
                    "UPDATE refunds SET amount = ?, state = 'sending' "
                    "WHERE charge_point = ? AND transaction_id = ?",
                    (amount, *key),
                )
        return Claim(amount=amount, attempt=int(row[2]))

    async def unclaim_refund(self, key: tuple[str, str]) -> None:
        """Session `key`'s refund was never sent after all (the wallet refused its amount
        before it recorded anything under its key): it is `owed` again, never tried, so a rest
        below the ledger's minimum takes the way of a small amount."""
        await self._store.write_now(
            "UPDATE refunds SET state = 'owed' "
            "WHERE charge_point = ? AND transaction_id = ? AND state = 'sending'",
            key,
        )

    async def still_sending(self, ref: RefundRef, attempt: int) -> bool:
        """Whether refund `ref` (a session's key, or a `token_refunds` id) is still `sending`
        at `attempt`: its payer's claim holds (the operator neither held nor settled it
        since)."""
        table, where, params = row_of(ref)
        query = f"SELECT 1 FROM {table} WHERE {where} AND state = 'sending' AND attempt = ?"
        async with self._store.db.execute(query, (*params, attempt)) as c:
            return await c.fetchone() is not None

    async def refund_failed(self, key: tuple[str, str]) -> None:
        """A payment of session `key`'s refund failed (it stays owed): counted, so that the
        retry batches read the refunds tried least often first (`owed_refunds`) and rows that
        fail again and again cannot keep newer ones out."""
        await self._store.write_now(
            "UPDATE refunds SET tries = tries + 1 WHERE charge_point = ? AND transaction_id = ?",
            key,
        )

    async def next_refund_attempt(
        self, key: tuple[str, str], failed: int, then: int | None
    ) -> bool:
        """The transfer of session `key`'s attempt `failed` failed for good: the refund moves
        to attempt `then` at the same amount, or, if `then` is None, is `held`
        (`refund_attempts.next_attempt`).
        One statement, from attempt `failed` only: False if another payer who saw the same
        failure moved it first (nothing changes)."""
        where = "charge_point = ? AND transaction_id = ?"
        return await _next_attempt(self._store, "refunds", where, key, failed, then)

    async def refund_paid(self, key: tuple[str, str]) -> None:
        """Session `key`'s refund is paid (the ledger took the transfer): forget it."""
        await self._store.write_now(
            "DELETE FROM refunds WHERE charge_point = ? AND transaction_id = ?", key
        )

    async def refund_as_credit(
        self, key: tuple[str, str], id_token: str, channel_id: bytes
    ) -> bool:
        """Settle session `key`'s owed rest (one below the smallest output) in one transaction:
        as `id_token`'s prepaid credit if the token is still bound to `channel_id`, else owed to
        the channel's payer with its other small amounts (`credit_or_owe`: a token unbound or
        rebound to another channel keeps its own credit); False if nothing was owed, or its
        amount is fixed (`sending` or `maybe_sent`: it may have been sent, so it is sent again,
        never credited)."""
        async with self._store.transaction() as db:
            owed = await self.owed_refund(key)
            if owed is None or owed[1]:
                return False
            for sql, params in credit_or_owe(id_token, channel_id, owed[0]):
                await db.execute(sql, params)
            await db.execute(
                "DELETE FROM refunds WHERE charge_point = ? AND transaction_id = ?", key
            )
        return True

    async def unbind_token(self, id_token: str) -> int | None:
        """Unbind `id_token`: the prepaid amount it held (owed back to its channel's payer from
        now on, written in the same commit: `owed_token_refunds`), None if it was not bound."""
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

    async def owed_back(self, channel_id: bytes, sequence: int) -> bool:
        """Whether the commit of `channel_id`'s proof `sequence` owed its prepayment back
        (`credit_or_owe`: the row it wrote is still owed; it is gone once paid or taken into
        another refund)."""
        query = (
            "SELECT 1 FROM token_refunds WHERE channel_id = ? AND proof_sequence = ? "
            f"AND state IN {_OWED}"
        )
        params = (channel_id, _proof_sequence(sequence))
        async with self._store.db.execute(query, params) as c:
            return await c.fetchone() is not None

    async def owed_token_refunds(
        self, at_least: int = 1, limit: int = MAX_OWED_BATCH
    ) -> list[tuple[int, bytes, str, int]]:
        """Amounts owed back to channels' payers and not yet paid (unbound tokens' prepaid
        amounts, raced prepayments, small rests), of at least `at_least` unless their amount is
        fixed (`sending`: tried, or `maybe_sent`: so sent again as it is, whatever the minimum
        is now, or found never sent: `unclaim_token_refund`): (refund id, channel, token,
        amount), those whose payment failed least often first
        (`token_refund_failed`), then oldest first."""
        query = (
            "SELECT id, channel_id, id_token, amount FROM token_refunds WHERE state IN "
            "('sending', 'maybe_sent') OR (state = 'owed' AND amount >= ?) "
            "ORDER BY tries, id LIMIT ?"
        )
        async with self._store.db.execute(query, (at_least, limit)) as rows:
            return [(int(r[0]), bytes(r[1]), str(r[2]), int(r[3])) async for r in rows]

    async def claim_token_refund(self, refund_id: int, minimum: int) -> Claim | None:
        """What to send for owed refund `refund_id`: at its first try, its amount and, if it is
        `owed` (never sent), its channel's other never-sent amounts below `minimum` (taken in, in
        the same transaction); the same amount at every later try (the row is `sending` from the
        first), under its current attempt. None if it is not owed (or `held`)."""
        async with self._store.transaction() as db:
            async with db.execute(
                "SELECT channel_id, state, amount, attempt FROM token_refunds WHERE id = ? "
                f"AND state IN {_UNPAID}",
                (refund_id,),
            ) as c:
                row = await c.fetchone()
            if row is None:
                return None
            amount, state = int(row[2]), str(row[1])
            if state == "owed":
                amount += await _take_in(db, bytes(row[0]), minimum, refund_id)
            if state != "sending":
                await db.execute(
                    "UPDATE token_refunds SET amount = ?, state = 'sending' WHERE id = ?",
                    (amount, refund_id),
                )
        return Claim(amount=amount, attempt=int(row[3]))

    async def unclaim_token_refund(self, refund_id: int) -> None:
        """Refund `refund_id` was never sent after all (as `unclaim_refund`): `owed` again."""
        await self._store.write_now(
            "UPDATE token_refunds SET state = 'owed' WHERE id = ? AND state = 'sending'",
            (refund_id,),
        )

    async def token_refund_failed(self, refund_id: int) -> None:
        """A payment of refund `refund_id` failed (as `refund_failed`): counted."""
        await self._store.write_now(
            "UPDATE token_refunds SET tries = tries + 1 WHERE id = ?", (refund_id,)
        )

    async def next_token_refund_attempt(
        self, refund_id: int, failed: int, then: int | None
    ) -> bool:
        """Refund `refund_id`'s attempt `failed` failed for good (as `next_refund_attempt`)."""
        return await _next_attempt(
            self._store, "token_refunds", "id = ?", (refund_id,), failed, then
        )

    async def merge_small(self, minimum: int, limit: int = MAX_OWED_BATCH) -> int:
        """Merge each channel's owed amounts below `minimum` (never tried: they are below it)
        into one row of their total (with the newest one's token), in one transaction; that row
        is paid once its total reaches `minimum`. Returns how many channels were merged (at most
        `limit` per call)."""
        async with self._store.transaction() as db:
            async with db.execute(
                f"SELECT channel_id, sum(amount), max(id) FROM token_refunds WHERE {_SMALL} "
                "GROUP BY channel_id HAVING count(*) > 1 LIMIT ?",
                (minimum, limit),
            ) as c:
                merging = [(bytes(r[0]), int(r[1]), int(r[2])) async for r in c]
            for channel_id, total, newest in merging:
                await db.execute(
                    "INSERT INTO token_refunds (id_token, channel_id, amount, state) "
                    "SELECT id_token, channel_id, ?, 'owed' FROM token_refunds WHERE id = ?",
                    (total, newest),
                )
                await db.execute(f"{_DELETE_SMALL} AND id <= ?", (channel_id, minimum, newest))
        return len(merging)

    async def token_refund_paid(self, refund_id: int) -> None:
        """The owed refund `refund_id` is paid (the ledger took the transfer): forget it."""
        await self._store.write_now("DELETE FROM token_refunds WHERE id = ?", (refund_id,))


async def _next_attempt(
    store: RefundStore,
    table: str,
    where: str,
    key: tuple[object, ...],
    failed: int,
    then: int | None,
) -> bool:
    """`next_refund_attempt` on `table`'s row `where`: one statement, so the write lock is held
    from the row's check to its change."""
    state, attempt = ("held", failed) if then is None else ("sending", then)
    changed = await store.write_now(
        f"UPDATE {table} SET state = ?, attempt = ? "
        f"WHERE {where} AND state = 'sending' AND attempt = ?",
        (state, attempt, *key, failed),
    )
    return changed == 1


async def _take_in(
    db: aiosqlite.Connection, channel_id: bytes, minimum: int, but: int | None = None
) -> int:
    """Delete `channel_id`'s never-sent owed amounts below `minimum` (but row `but`) in the
    open transaction; their total (added to the refund that takes them in)."""
    other = "" if but is None else " AND id != ?"
    params = (channel_id, minimum) if but is None else (channel_id, minimum, but)
    async with db.execute(_SMALL_SUM + other, params) as c:
        row = await c.fetchone()
    await db.execute(_DELETE_SMALL + other, params)
    return 0 if row is None else int(row[0])
