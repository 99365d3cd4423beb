"""The CSMS's durable state on sqlite through aiosqlite (`CsmsStore`): stations, sessions'
bindings and payments, the final bill of each session, drivers' tokens; with the transaction
events (`event_rows.EventRows`) and the group-commit writer (`group_commit.GroupCommit`) it
builds on, and the refunds owed (`refund_rows`, `CsmsStore.refunds`). A bill is keyed by its
session, so a replay after a restart bills nothing twice; `unsettled` is what a restarted CSMS
resumes.

```
stations(id TEXT PK, salt BLOB, key BLOB)                         scrypt of the password
events(...), transactions16(...)                                  `event_rows`
sessions(charge_point, transaction_id, id_token, channel_id, margin, energy_wh, duration_s, paid,
         PK(charge_point, transaction_id))
bills(charge_point, transaction_id, energy_wh, duration_s, amount, PK(charge_point,
      transaction_id))
commitments(charge_point, transaction_id, digest, message_id)    a session on the ledger
tokens(id_token PK, channel_id INDEXED, prepaid)                  a driver's token -> channel
refunds(charge_point, transaction_id, amount, state, attempt, tries, PK(charge_point,
        transaction_id))
          a prepaid session's rest, while owed (state owed | maybe_sent | sending | held)
token_refunds(id INTEGER PK AUTOINCREMENT, id_token, channel_id, amount, state, proof_sequence,
              attempt, tries)
          owed to a channel's payer: a prepaid amount an unbound token held, a prepayment raced
          by an unbinding (with its proof's sequence), a small rest (state owed | maybe_sent |
          sending | held)
channels(...)                 the CPO's payee channels (`payments.channels.store`'s table)
```

A prepaid session's rest (`paid - amount`) is written as an owed refund in the same transaction
as its bill, so a crash after the bill loses no refund: the refunder (`refund.PrepaidRefunds`)
pays the owed rows at start and periodically and deletes each once done (`refund_rows`: the
rows are bounded). Binding a prepaid session takes the token's prepaid amount in the same commit
as the binding (once: a resent start binds nothing). Unbinding a token that still holds a
prepaid amount writes that amount as an owed refund to its channel's payer in the same commit as
the unbinding (`token_refunds`, paid by the same refunder), so the operator's unbinding never
keeps a driver's money. Every write under the lock is one transaction that rolls back on any
error (`GroupCommit.transaction`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Self

from ..channels.store import SCHEMA as CHANNELS_SCHEMA
from .errors import StationAuthError, StoreVersionError
from .event_rows import EVENTS_SCHEMA, UPGRADE_3, EventRows
from .group_commit import CHECKPOINT_EVERY_S, GROUP_WINDOW_S
from .refund_rows import UPGRADE_1, UPGRADE_2, RefundRows, credit_or_owe
from .session import SessionLimits

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from .group_commit import Statement

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS stations (id TEXT PRIMARY KEY, salt BLOB NOT NULL, key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    charge_point TEXT NOT NULL, transaction_id TEXT NOT NULL, id_token TEXT, channel_id BLOB,
    margin INTEGER, energy_wh INTEGER, duration_s INTEGER, paid INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (charge_point, transaction_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bills (
    charge_point TEXT NOT NULL, transaction_id TEXT NOT NULL, energy_wh INTEGER NOT NULL,
    duration_s INTEGER NOT NULL, amount INTEGER NOT NULL,
    PRIMARY KEY (charge_point, transaction_id));
CREATE TABLE IF NOT EXISTS commitments (
    charge_point TEXT NOT NULL, transaction_id TEXT NOT NULL, digest BLOB NOT NULL,
    message_id BLOB NOT NULL, PRIMARY KEY (charge_point, transaction_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
    id_token TEXT PRIMARY KEY, channel_id BLOB NOT NULL, prepaid INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tokens_channel ON tokens (channel_id);
CREATE TABLE IF NOT EXISTS refunds (
    charge_point TEXT NOT NULL, transaction_id TEXT NOT NULL, amount INTEGER NOT NULL,
    state TEXT NOT NULL, PRIMARY KEY (charge_point, transaction_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS token_refunds (
    id INTEGER PRIMARY KEY AUTOINCREMENT, id_token TEXT NOT NULL, channel_id BLOB NOT NULL,
    amount INTEGER NOT NULL, state TEXT NOT NULL);
"""
_UPGRADES: Final = (UPGRADE_1, UPGRADE_2, UPGRADE_3)
"""The upgrade from version `i` to `i + 1` at index `i` (`CsmsStore._upgrade`)."""
SCHEMA_VERSION: Final = len(_UPGRADES)
"""This version's `PRAGMA user_version` of the database (`CsmsStore._upgrade`)."""
OPEN_WAIT_S: Final = 600
"""How long opening the store waits for another connection's write lock before it fails
(`CsmsStore._upgrade`): another CSMS process may be upgrading the file, which takes seconds a
million 1.6 sessions (version 2 -> 3 rebuilds `transactions16`: 4 to 16 s measured on a shared
developer machine), more on a slow disk. sqlite's busy timeout (5 s, aiosqlite's default, kept
for every other statement) made the second opening fail with "database is locked" instead of
finding the upgrade done."""
_OWE_REFUND: Final = """
    INSERT OR IGNORE INTO refunds (charge_point, transaction_id, amount, state)
    SELECT charge_point, transaction_id, paid - ?, 'owed' FROM sessions
    WHERE charge_point = ? AND transaction_id = ? AND channel_id IS NOT NULL
    AND energy_wh IS NOT NULL AND paid > ?"""
_BIND_TOKEN: Final = """
    INSERT INTO tokens SELECT ?, ?, 0
    WHERE (SELECT count(*) FROM tokens WHERE channel_id = ? AND id_token != ?) < ?
    ON CONFLICT (id_token) DO UPDATE SET prepaid = prepaid
    WHERE channel_id = excluded.channel_id"""
"""Bind a token to a channel with no prepaid amount, if the channel has fewer than the most
tokens other than it; bound to that channel already, it keeps its amount (a row still counts
as changed); bound to another one, or the channel full, no row changes."""
_CONSUME_PREPAID: Final = (
    "UPDATE tokens SET prepaid = prepaid - ? WHERE id_token = ? AND channel_id = ? AND prepaid >= ?"
)
_SCRYPT: Final = {"n": 2**12, "r": 8, "p": 1, "dklen": 32}
_ADD_PAID: Final = (
    "UPDATE sessions SET paid = paid + ? WHERE charge_point = ? AND transaction_id = ?"
)


def _password_key(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bill:
    """The final bill of an ended session."""

    charge_point: str
    """The station."""
    transaction_id: str
    """The transaction."""
    energy_wh: int
    """Energy delivered: the register difference."""
    duration_s: int
    """The session's length."""
    amount: int
    """What it cost, in minor units."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """How a session is paid: its id token, the driver's channel and the limits."""

    id_token: str | None
    """The driver's token."""
    channel_id: bytes | None
    """Pay as you charge or prepaid: the channel the driver pays from."""
    limits: SessionLimits
    """When to stop."""
    paid: int
    """What the driver paid so far."""


class CsmsStore(EventRows):
    """The CSMS's database; open with `async with CsmsStore(path) as store`."""

    def __init__(
        self,
        path: Path,
        group_window_s: float = GROUP_WINDOW_S,
        checkpoint_every_s: float = CHECKPOINT_EVERY_S,
    ) -> None:
        super().__init__(path, group_window_s, checkpoint_every_s)
        self.refunds = RefundRows(self)
        """The refunds owed to drivers (`refund_rows`)."""
        self._verified: dict[str, bytes] = {}
        """station -> SHA-256 of the password last verified with scrypt, so that a station
        reconnecting costs no scrypt (bounded by the stations registered)."""

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        try:
            await self.db.executescript(EVENTS_SCHEMA + _SCHEMA)
            await self._upgrade()
            await self.db.execute(CHANNELS_SCHEMA)
            await self.db.commit()
        except BaseException:  # closed, not left open (its thread would keep the process up)
            await super().__aexit__(None, None, None)
            raise
        return self

    async def _upgrade(self) -> None:
        """Bring a database older versions wrote up to this one's (`PRAGMA user_version`, 0 in
        a database they wrote or a new one), in one transaction that holds the write lock from
        the version's read on (two processes opening one old file: the second finds it done):
        0 -> 1, the refund rows of refunds done they kept are deleted, those they left owed may
        have been sent, a raced prepayment's owed row holds its proof's sequence
        (`refund_rows.UPGRADE_1`); 1 -> 2, each refund row counts its attempt and its failed
        tries (`refund_rows.UPGRADE_2`); 2 -> 3, a 1.6 transaction id is looked up by its
        start's meterStart and idTag too, with no unique key (`event_rows.UPGRADE_3`). Each
        step from the database's version on runs, all in that one transaction.
        `StoreVersionError` for a database a newer version wrote. Taking the lock waits up to
        `OPEN_WAIT_S`."""
        async with self.db.execute("PRAGMA busy_timeout") as c:
            row = await c.fetchone()
        busy_timeout_ms = 0 if row is None else int(row[0])
        await self.db.execute(f"PRAGMA busy_timeout = {OPEN_WAIT_S * 1000}")
        try:
            await self.db.execute("BEGIN IMMEDIATE")
        finally:
            await self.db.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        try:
            async with self.db.execute("PRAGMA user_version") as c:
                row = await c.fetchone()
            version = 0 if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise StoreVersionError(version, SCHEMA_VERSION)
            for upgrade in _UPGRADES[version:]:
                for statement in upgrade.split(";"):  # not executescript: it commits first
                    if statement.strip():
                        await self.db.execute(statement)
            if version < SCHEMA_VERSION:
                await self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            await self.db.commit()
        except BaseException:
            await self.db.rollback()
            raise

    # -- stations ------------------------------------------------------------------------------

    async def add_station(self, station: str, password: str) -> None:
        """Register `station` (or replace its password)."""
        salt = os.urandom(16)
        key = await asyncio.to_thread(_password_key, password, salt)
        await self.write_now(
            "INSERT OR REPLACE INTO stations VALUES (?, ?, ?)", (station, salt, key)
        )
        self._verified.pop(station, None)

    async def stations(self) -> list[str]:
        """Every registered station id."""
        async with self.db.execute("SELECT id FROM stations ORDER BY id") as rows:
            return [row[0] async for row in rows]

    async def check_password(self, station: str, password: str) -> None:
        """Return if `password` is `station`'s; else `StationAuthError`."""
        digest = hashlib.sha256(password.encode()).digest()
        known = self._verified.get(station)
        if known is not None and hmac.compare_digest(known, digest):
            return
        async with self.db.execute("SELECT salt, key FROM stations WHERE id = ?", (station,)) as c:
            row = await c.fetchone()
        if row is None:
            raise StationAuthError(station)
        key = await asyncio.to_thread(_password_key, password, row[0])
        if not hmac.compare_digest(key, row[1]):
            raise StationAuthError(station)
        self._verified[station] = digest

    # -- sessions, payments and bills ----------------------------------------------------------

    async def bind(self, key: tuple[str, str], binding: Binding) -> bool:
        """Save how session `key` is paid (once; a second binding is ignored). A prepaid
        binding takes what it was paid from its token's prepaid amount in the same commit (an
        Authorize only looks at the amount: `ChargePayments.authorize`); False, and nothing is
        saved, if that amount is no longer there (another session took it meanwhile)."""
        limits = binding.limits
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT OR IGNORE INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *key,
                    binding.id_token,
                    binding.channel_id,
                    limits.margin,
                    limits.energy_wh,
                    limits.duration_s,
                    binding.paid,
                ),
            )
            prepaid = binding.channel_id is not None and limits.energy_wh is not None
            taken = True
            if cursor.rowcount == 1 and prepaid and binding.paid > 0:
                used = await db.execute(
                    _CONSUME_PREPAID,
                    (binding.paid, binding.id_token, binding.channel_id, binding.paid),
                )
                if used.rowcount != 1:
                    taken = False
                    await db.execute(
                        "DELETE FROM sessions WHERE charge_point = ? AND transaction_id = ?", key
                    )
        return taken

    async def binding(self, key: tuple[str, str]) -> Binding | None:
        """How session `key` is paid, if it was bound."""
        query = (
            "SELECT id_token, channel_id, margin, energy_wh, duration_s, paid FROM sessions "
            "WHERE charge_point = ? AND transaction_id = ?"
        )
        async with self.db.execute(query, key) as c:
            r = await c.fetchone()
        if r is None:
            return None
        limits = SessionLimits(margin=r[2], energy_wh=r[3], duration_s=r[4])
        return Binding(id_token=r[0], channel_id=r[1], limits=limits, paid=r[5])

    @staticmethod
    def add_paid(key: tuple[str, str], amount: int) -> Sequence[Statement]:
        """The statement counting `amount` paid for session `key` (committed with the proof
        that paid it: `channel_rows.CsmsChannels`)."""
        return ((_ADD_PAID, (amount, *key)),)

    async def bill(self, bill: Bill) -> bool:
        """Save the final bill, and a prepaid session's rest as an owed refund in the same
        transaction; False if the session was billed already (nothing changes)."""
        key = (bill.charge_point, bill.transaction_id)
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT OR IGNORE INTO bills VALUES (?, ?, ?, ?, ?)",
                (*key, bill.energy_wh, bill.duration_s, bill.amount),
            )
            billed = cursor.rowcount == 1
            if billed:
                await db.execute(_OWE_REFUND, (bill.amount, *key, bill.amount))
        return billed

    async def bill_of(self, key: tuple[str, str]) -> Bill | None:
        """The bill of session `key`, if it was billed."""
        query = "SELECT * FROM bills WHERE charge_point = ? AND transaction_id = ?"
        async with self.db.execute(query, key) as c:
            r = await c.fetchone()
        if r is None:
            return None
        return Bill(
            charge_point=r[0], transaction_id=r[1], energy_wh=r[2], duration_s=r[3], amount=r[4]
        )

    async def bills(self) -> list[Bill]:
        """Every bill, oldest session first."""
        async with self.db.execute("SELECT * FROM bills ORDER BY rowid") as rows:
            return [
                Bill(
                    charge_point=r[0],
                    transaction_id=r[1],
                    energy_wh=r[2],
                    duration_s=r[3],
                    amount=r[4],
                )
                async for r in rows
            ]

    async def unsettled(self) -> list[tuple[str, str]]:
        """What a restarted CSMS resumes: sessions with events and no bill yet, and billed
        sessions paid through a channel that the driver has not paid in full."""
        query = """
            SELECT DISTINCT charge_point, transaction_id FROM events e WHERE NOT EXISTS
              (SELECT 1 FROM bills b WHERE b.charge_point = e.charge_point
               AND b.transaction_id = e.transaction_id)
            UNION
            SELECT b.charge_point, b.transaction_id FROM bills b JOIN sessions s
              ON s.charge_point = b.charge_point AND s.transaction_id = b.transaction_id
            WHERE s.channel_id IS NOT NULL AND s.paid < b.amount"""
        async with self.db.execute(query) as rows:
            return [(r[0], r[1]) async for r in rows]

    async def sessions(self, limit: int = 1000) -> list[dict[str, object]]:
        """A summary row per session, newest first: events, first and last register, bill."""
        query = """
            SELECT e.charge_point, e.transaction_id, count(*), min(e.register_wh),
                   max(e.register_wh), min(e.timestamp_s), max(e.timestamp_s), b.amount
            FROM events e LEFT JOIN bills b
              ON b.charge_point = e.charge_point AND b.transaction_id = e.transaction_id
            GROUP BY e.charge_point, e.transaction_id ORDER BY min(e.timestamp_s) DESC LIMIT ?"""
        names = [
            "charge_point",
            "transaction_id",
            "events",
            "first_wh",
            "last_wh",
            "start_s",
            "last_s",
            "billed",
        ]
        async with self.db.execute(query, (limit,)) as rows:
            return [dict(zip(names, r, strict=True)) async for r in rows]

    async def save_commitment(self, key: tuple[str, str], digest: bytes, message: bytes) -> None:
        """Record that session `key`'s digest is on the ledger in message `message`."""
        await self.write_now(
            "INSERT OR REPLACE INTO commitments VALUES (?, ?, ?, ?)", (*key, digest, message)
        )

    async def commitment(self, key: tuple[str, str]) -> tuple[bytes, bytes] | None:
        """(digest, message id) of session `key` on the ledger, if committed."""
        query = (
            "SELECT digest, message_id FROM commitments WHERE charge_point = ? "
            "AND transaction_id = ?"
        )
        async with self.db.execute(query, key) as c:
            row = await c.fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    async def save_token(self, id_token: str, channel_id: bytes, prepaid: int) -> None:
        """Bind `id_token` to a driver's channel (with what it prepaid, 0 for pay as you go)."""
        await self.write_now(
            "INSERT OR REPLACE INTO tokens VALUES (?, ?, ?)", (id_token, channel_id, prepaid)
        )

    @staticmethod
    def add_credit(
        id_token: str, channel_id: bytes, amount: int, sequence: int
    ) -> Sequence[Statement]:
        """The statements adding `amount` to `id_token`'s prepaid amount on `channel_id`, or,
        if the operator unbound or rebound the token meanwhile, owing it back to the channel's
        payer (`refund_rows.credit_or_owe`), committed with the proof that paid it, of
        `sequence` (`channel_rows.CsmsChannels`): the driver's money is never taken
        uncounted."""
        return credit_or_owe(id_token, channel_id, amount, sequence)

    async def bind_token(self, id_token: str, channel_id: bytes, most: int) -> bool:
        """Bind `id_token` to `channel_id` in one statement (bound to it already: its prepaid
        amount is kept); False, and nothing changes, if it is bound to another channel or
        `most` other tokens are bound to `channel_id`."""
        params = (id_token, channel_id, channel_id, id_token, most)
        return await self.write_now(_BIND_TOKEN, params) == 1

    async def token(self, id_token: str) -> tuple[bytes, int] | None:
        """The channel `id_token` is bound to and its prepaid amount, if bound."""
        query = "SELECT channel_id, prepaid FROM tokens WHERE id_token = ?"
        async with self.db.execute(query, (id_token,)) as c:
            row = await c.fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]))
