"""The CSMS's durable state on sqlite through aiosqlite: stations, transaction events, sessions'
bindings and payments, and the final bill of each session.

WAL mode with `synchronous=FULL`: a commit is fsync'd before it returns, and the CSMS answers a
charger only after the event is committed, so a SIGKILLed CSMS loses no meter value the charger
saw acknowledged (the charger resends what was not). `record` and `write` (a payment: the
channel's new proof and the session's paid amount, `channel_rows`) are a group commit: a write
that finds the writer idle waits `group_window_s` (5 ms by default) for others, and writes that
arrive while a commit is in flight go together into the next transaction (one executemany per
kind of statement, one commit and one fsync for many chargers and drivers). So the statements a
group commit takes must not depend on their order: an event is inserted `OR IGNORE`, a channel's
proof never replaces a newer one, a paid amount is added. Events are keyed by (charge point,
transaction id, seq), and a bill is keyed by its session, so a replay after a restart records
and bills nothing twice.

```
stations(id TEXT PK, salt BLOB, key BLOB)                         scrypt of the password
events(charge_point, transaction_id, seq_no, kind, timestamp_s, register_wh, signed, offline,
       id_token, PK(charge_point, transaction_id, seq_no))
sessions(charge_point, transaction_id, id_token, channel_id, margin, energy_wh, duration_s, paid,
         PK(charge_point, transaction_id))
bills(charge_point, transaction_id, energy_wh, duration_s, amount, PK(charge_point,
      transaction_id))
commitments(charge_point, transaction_id, digest, message_id)    a session on the ledger
tokens(id_token PK, channel_id, prepaid)                          a driver's token -> channel
transactions16(id INTEGER PK AUTOINCREMENT, charge_point, connector_id, timestamp_s, meter_start,
               UNIQUE(charge_point, connector_id, timestamp_s))   1.6 transaction ids
refunds(charge_point, transaction_id, amount, state, PK(charge_point, transaction_id))
                                  a prepaid session's rest, while owed (state owed | sending)
token_refunds(id INTEGER PK AUTOINCREMENT, id_token, channel_id, amount, state)
          owed to a channel's payer: a prepaid amount an unbound token held, a prepayment raced
          by an unbinding, a small rest (state owed | sending)
channels(...)                 the CPO's payee channels (`payments.channels.store`'s table)
```

A prepaid session's rest (`paid - amount`) is written as an owed refund in the same transaction
as its bill, so a crash after the bill loses no refund: the refunder (`refund.PrepaidRefunds`)
pays the owed rows at start and periodically and deletes each once done (`refund_rows`: the
rows are bounded). Binding a prepaid session takes the token's prepaid
amount in the same commit as the binding (once: a resent start binds nothing). Unbinding a token
that still holds a prepaid amount writes that amount as an owed refund to its channel's payer in
the same commit as the unbinding (`token_refunds`, paid by the same refunder), so the operator's
unbinding never keeps a driver's money. The refund rows are read and written by `refund_rows`
(`CsmsStore.refunds`). Every write under the lock is one transaction that rolls back on any
error (`CsmsStore.transaction`): a failed write leaves nothing for the next commit to take.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Self

import aiosqlite

from ..channels.store import SCHEMA as CHANNELS_SCHEMA
from .errors import StationAuthError
from .refund_rows import ADD_CREDIT, PRUNE_DONE, RefundRows, credit_or_owe
from .session import EventKind, SessionLimits, TransactionEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from pathlib import Path
    from types import TracebackType

    Statement = tuple[str, tuple[object, ...]]
    """One SQL statement and its parameters."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS stations (id TEXT PRIMARY KEY, salt BLOB NOT NULL, key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    charge_point TEXT NOT NULL, transaction_id TEXT NOT NULL, seq_no INTEGER NOT NULL,
    kind TEXT NOT NULL, timestamp_s INTEGER NOT NULL, register_wh INTEGER, signed TEXT,
    offline INTEGER NOT NULL, id_token TEXT,
    PRIMARY KEY (charge_point, transaction_id, seq_no)) WITHOUT ROWID;
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
CREATE TABLE IF NOT EXISTS transactions16 (
    id INTEGER PRIMARY KEY AUTOINCREMENT, charge_point TEXT NOT NULL,
    connector_id INTEGER NOT NULL, timestamp_s INTEGER NOT NULL, meter_start INTEGER NOT NULL,
    UNIQUE (charge_point, connector_id, timestamp_s));
CREATE TABLE IF NOT EXISTS refunds (
    charge_point TEXT NOT NULL, transaction_id TEXT NOT NULL, amount INTEGER NOT NULL,
    state TEXT NOT NULL, PRIMARY KEY (charge_point, transaction_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS token_refunds (
    id INTEGER PRIMARY KEY AUTOINCREMENT, id_token TEXT NOT NULL, channel_id BLOB NOT NULL,
    amount INTEGER NOT NULL, state TEXT NOT NULL);
"""
_OWE_REFUND: Final = """
    INSERT OR IGNORE INTO refunds SELECT charge_point, transaction_id, paid - ?, 'owed'
    FROM sessions WHERE charge_point = ? AND transaction_id = ? AND channel_id IS NOT NULL
    AND energy_wh IS NOT NULL AND paid > ?"""
_CONSUME_PREPAID: Final = (
    "UPDATE tokens SET prepaid = prepaid - ? WHERE id_token = ? AND channel_id = ? AND prepaid >= ?"
)
_SCRYPT: Final = {"n": 2**12, "r": 8, "p": 1, "dklen": 32}
_INSERT_EVENT: Final = "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ADD_PAID: Final = (
    "UPDATE sessions SET paid = paid + ? WHERE charge_point = ? AND transaction_id = ?"
)
MAX_BATCH: Final = 1024
"""The most writes (events, payments) one group commit takes."""
MAX_COMMIT_SAMPLES: Final = 100_000
"""Group commits `CsmsStore.commits` remembers."""
GROUP_WINDOW_S: Final = 0.005
"""How long a write that finds the writer idle waits for others to share its commit."""


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


@contextlib.asynccontextmanager
async def locked_transaction(
    db: aiosqlite.Connection, lock: asyncio.Lock, closed: Callable[[], None] | None = None
) -> AsyncIterator[aiosqlite.Connection]:
    """One transaction on `db` under `lock` (every writer on `db` holds it): committed when the
    block ends (unless the block committed already), rolled back if it raises anything, so no
    statement of a failed write stays in the open transaction for the next commit to take. If
    the rollback fails too, `db` is closed (sqlite drops the open transaction): nothing
    half-applied can be committed later, and every later use of `db` fails (`closed` is called
    then)."""
    async with lock:
        try:
            yield db
            if db.in_transaction:
                await db.commit()
        except BaseException:
            try:
                await db.rollback()
            except BaseException:
                if closed is not None:
                    closed()
                with contextlib.suppress(Exception):
                    await db.close()
            raise


class CsmsStore:
    """The CSMS's database; open with `async with CsmsStore(path) as store`."""

    def __init__(self, path: Path, group_window_s: float = GROUP_WINDOW_S) -> None:
        self.path = path
        self.group_window_s = group_window_s
        self._db: aiosqlite.Connection | None = None
        self._pending: list[tuple[Sequence[Statement], asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.broken = asyncio.Event()
        """Set when the store closed itself because a failed write's rollback failed too
        (`mark_broken`): `charging serve` then exits, and a restart reopens the database."""
        self._lock = asyncio.Lock()
        """Held by every write from its first statement to its commit (the group writer's batch
        too), so no commit lands in the middle of another write's transaction."""
        self.commits: deque[tuple[float, float, int, float, float]] = deque(
            maxlen=MAX_COMMIT_SAMPLES
        )
        """The latest group commits: (Unix time it ended, seconds from taking the lock to the
        end of the commit, writes, seconds it waited for the lock, seconds of the commit call
        alone: the fsync), to see how long a commit makes chargers and drivers wait, and
        why."""
        self.refunds = RefundRows(self)
        """The refunds owed to drivers (`refund_rows`)."""
        self._verified: dict[str, bytes] = {}
        """station -> SHA-256 of the password last verified with scrypt, so that a station
        reconnecting costs no scrypt (bounded by the stations registered)."""

    @property
    def write_lock(self) -> asyncio.Lock:
        """What every writer on this database holds from its first statement to its commit
        (given to other writers on the same connection: `RoamingRows`)."""
        return self._lock

    async def __aenter__(self) -> Self:
        self._db = await aiosqlite.connect(self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.executescript(_SCHEMA)
        await self._db.executescript(PRUNE_DONE)
        await self._db.execute(CHANNELS_SCHEMA)
        await self._db.commit()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

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

    # -- events --------------------------------------------------------------------------------

    async def record(self, event: TransactionEvent) -> None:
        """Make `event` durable; returns after the commit that holds it (group commit)."""
        row = (
            event.charge_point,
            event.transaction_id,
            event.seq_no,
            event.kind.value,
            event.timestamp_s,
            event.register_wh,
            event.signed_meter_value,
            int(event.offline),
            event.id_token,
        )
        await self.write(((_INSERT_EVENT, row),))

    async def write(self, statements: Sequence[Statement]) -> None:
        """Run `statements` in the next group commit (all in the same transaction, each in any
        order with the other writes': see the module docstring); return after that commit."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((statements, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        await asyncio.shield(future)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One transaction under the lock (`locked_transaction`); a store whose rollback
        failed is closed, and every later call fails (`RuntimeError`: not open)."""
        async with locked_transaction(self.db, self._lock, self.mark_broken) as db:
            yield db

    def mark_broken(self) -> None:
        """The connection is being closed after a failed rollback: the store is not open from
        now on, and `broken` is set."""
        self._db = None
        self.broken.set()

    async def write_now(self, sql: str, params: tuple[object, ...]) -> int:
        """Run one statement in its own transaction (under the lock); its row count."""
        async with self.transaction() as db:
            cursor = await db.execute(sql, params)
        return cursor.rowcount

    async def _flush(self) -> None:
        await asyncio.sleep(self.group_window_s)
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            waited = time.perf_counter()
            try:
                async with self.transaction() as db:  # nothing of a failed batch stays applied
                    began = time.perf_counter()
                    rows: dict[str, list[tuple[object, ...]]] = {}
                    for statements, _ in batch:  # one executemany per kind of statement
                        for sql, params in statements:
                            rows.setdefault(sql, []).append(params)
                    for sql, params_of in rows.items():
                        await db.executemany(sql, params_of)
                    committing = time.perf_counter()
                    await db.commit()
                    ended = time.perf_counter()
            except Exception as error:  # the database failed: this batch's waiters learn it,
                for _, future in batch:  # and the writes queued behind it get their own try
                    if not future.done():
                        future.set_exception(error)
                continue
            self.commits.append(
                (time.time(), ended - began, len(batch), began - waited, ended - committing)
            )
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def events(self, key: tuple[str, str]) -> list[TransactionEvent]:
        """Every recorded event of session `key`, in seq order."""
        query = "SELECT * FROM events WHERE charge_point = ? AND transaction_id = ? ORDER BY seq_no"
        async with self.db.execute(query, key) as rows:
            return [
                TransactionEvent(
                    charge_point=r[0],
                    transaction_id=r[1],
                    seq_no=r[2],
                    kind=EventKind(r[3]),
                    timestamp_s=r[4],
                    register_wh=r[5],
                    signed_meter_value=r[6],
                    offline=bool(r[7]),
                    id_token=r[8],
                )
                async for r in rows
            ]

    async def event_count(self, key: tuple[str, str]) -> int:
        """How many events of session `key` are recorded."""
        query = "SELECT count(*) FROM events WHERE charge_point = ? AND transaction_id = ?"
        async with self.db.execute(query, key) as c:
            row = await c.fetchone()
        return 0 if row is None else int(row[0])

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

    async def transaction_id_16(
        self, charge_point: str, connector_id: int, timestamp_s: int, meter_start: int
    ) -> int:
        """The 1.6 transaction id for this start (the same one for a resent StartTransaction)."""
        await self.write_now(
            "INSERT OR IGNORE INTO transactions16 (charge_point, connector_id, timestamp_s, "
            "meter_start) VALUES (?, ?, ?, ?)",
            (charge_point, connector_id, timestamp_s, meter_start),
        )
        query = (
            "SELECT id FROM transactions16 WHERE charge_point = ? AND connector_id = ? "
            "AND timestamp_s = ?"
        )
        async with self.db.execute(query, (charge_point, connector_id, timestamp_s)) as c:
            row = await c.fetchone()
        if row is None:
            raise RuntimeError("transaction id vanished")
        return int(row[0])

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
    def add_credit(id_token: str, channel_id: bytes, amount: int) -> Sequence[Statement]:
        """The statements adding `amount` to `id_token`'s prepaid amount on `channel_id`, or,
        if the operator unbound or rebound the token meanwhile, owing it back to the channel's
        payer (`refund_rows.credit_or_owe`), committed with the proof that paid it
        (`channel_rows.CsmsChannels`): the driver's money is never taken uncounted."""
        return credit_or_owe(id_token, channel_id, amount)

    async def add_prepaid(self, id_token: str, channel_id: bytes, amount: int) -> bool:
        """Add `amount` to `id_token`'s prepaid amount on `channel_id` in one statement (bound
        anew if unbound); False, and nothing changes, if it is bound to another channel."""
        return await self.write_now(ADD_CREDIT, (id_token, channel_id, amount)) == 1

    async def token(self, id_token: str) -> tuple[bytes, int] | None:
        """The channel `id_token` is bound to and its prepaid amount, if bound."""
        query = "SELECT channel_id, prepaid FROM tokens WHERE id_token = ?"
        async with self.db.execute(query, (id_token,)) as c:
            row = await c.fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]))
