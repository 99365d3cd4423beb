"""The CSMS database's connection and its group-commit writer (`GroupCommit`, which
`store.CsmsStore` builds on).

WAL mode with `synchronous=FULL`: a commit is fsync'd before it returns, and the CSMS answers a
charger only after the event is committed, so a SIGKILLed CSMS loses no meter value the charger
saw acknowledged (the charger resends what was not). `write` (an event: `event_rows`; a payment:
the channel's new proof and the session's paid amount, `channel_rows`) is a group commit: a
write that finds the writer idle waits `group_window_s` (2 ms by default) for others, and writes
that arrive while a commit is in flight go together into the next transaction (one executemany
per kind of statement, one commit and one fsync for many chargers and drivers). So the
statements a group commit takes must not depend on their order: an event is inserted `OR
IGNORE`, a channel's proof never replaces a newer one, a paid amount is added, and a
prepayment's credit is added to its token or owed back to its channel's payer
(`refund_rows.credit_or_owe`: which one applies depends only on whether the token is bound to
the channel, and no statement a group commit takes binds or unbinds a token, so every order
gives the same answer; the binding and the unbinding are writes of their own). Every other write
(`write_now`, `transaction`) holds the same lock from its first statement to its commit, and is
one transaction that rolls back on any error: a failed write leaves nothing for the next commit
to take.

*Checkpoints off the commit's path.* sqlite copies the WAL back into the database file (a
checkpoint, with an fsync of that file) in whichever commit finds the WAL over 1,000 pages: that
commit, and every charger waiting in it, then took up to a few hundred milliseconds, every ten
seconds or so at 1,000 meter values a second (`benchmarks.charging`: `csms_commit_max_ms`). The
writer's connection does not checkpoint (`wal_autocheckpoint=0`); a second connection, on its
own thread, runs a passive checkpoint every `CHECKPOINT_EVERY_S` (it waits for no reader nor
writer, and copies what it can), so the WAL stays small and a commit only appends to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import deque
from typing import TYPE_CHECKING, Final, Self, TypeVar

import aiosqlite

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from pathlib import Path
    from types import TracebackType

    Statement = tuple[str, tuple[object, ...]]
    """One SQL statement and its parameters."""

A = TypeVar("A")
R = TypeVar("R")

LOG: Final = logging.getLogger(__name__)
MAX_BATCH: Final = 1024
"""The most writes (events, payments) one group commit takes."""
MAX_COMMIT_SAMPLES: Final = 100_000
"""Group commits `GroupCommit.commits` remembers."""
GROUP_WINDOW_S: Final = 0.002
"""How long a write that finds the writer idle waits for others to share its commit. At 5 ms
the wait was most of a meter value's answer (`benchmarks.charging`, 1,000 charge points,
3 runs each, interleaved: 5 ms gave p50 4.3-4.5 ms and p99 8.7-11.2 ms, 2 ms gave 3.7 ms and
6.5-7.3 ms, at 5.7 instead of 6.7 writes per commit and the same CPU per meter value)."""
CHECKPOINT_EVERY_S: Final = 1.0
"""How often the checkpointer copies the WAL's committed pages into the database file."""


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


class GroupCommit:
    """The database's connection, its write lock and its group commit (see the module
    docstring); open with `async with`."""

    def __init__(
        self,
        path: Path,
        group_window_s: float = GROUP_WINDOW_S,
        checkpoint_every_s: float = CHECKPOINT_EVERY_S,
    ) -> None:
        self.path = path
        self.group_window_s = group_window_s
        self.checkpoint_every_s = checkpoint_every_s
        self._db: aiosqlite.Connection | None = None
        self._checkpointer: asyncio.Task[None] | None = None
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

    @property
    def write_lock(self) -> asyncio.Lock:
        """What every writer on this database holds from its first statement to its commit
        (given to other writers on the same connection: `RoamingRows`)."""
        return self._lock

    async def __aenter__(self) -> Self:
        self._db = await aiosqlite.connect(self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's work
        self._checkpointer = asyncio.create_task(self._checkpoints())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
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

    async def _checkpoints(self) -> None:
        """Every `checkpoint_every_s`, a passive checkpoint on a connection of its own (see the
        module docstring); one that fails (its connection too) is logged and tried again next
        time, on a new connection."""
        db: aiosqlite.Connection | None = None
        try:
            while True:
                await asyncio.sleep(self.checkpoint_every_s)
                try:
                    if db is None:
                        db = await aiosqlite.connect(self.path)
                        await db.execute("PRAGMA synchronous=FULL")
                    await db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except (sqlite3.Error, ValueError) as error:  # ValueError: connection closed
                    LOG.warning("WAL checkpoint failed: %r", error)
                    if db is not None:
                        with contextlib.suppress(sqlite3.Error, ValueError):
                            await db.close()
                    db = None
        finally:
            if db is not None:
                await db.close()

    async def _flush(self) -> None:
        await asyncio.sleep(self.group_window_s)
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            waited = time.perf_counter()
            rows: dict[str, list[tuple[object, ...]]] = {}
            for statements, _ in batch:  # one executemany per kind of statement
                for sql, params_of in statements:
                    rows.setdefault(sql, []).append(params_of)
            try:
                async with self.transaction() as db:  # nothing of a failed batch stays applied
                    began = time.perf_counter()
                    committing = await on_connection_thread(db, _commit, rows)
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


def _commit(db: sqlite3.Connection, rows: dict[str, list[tuple[object, ...]]]) -> float:
    """A group commit's statements and its commit, on the connection's thread; when the commit
    began (`time.perf_counter`). If a statement or the commit fails, the transaction stays open
    for `locked_transaction` to roll back."""
    for sql, params_of in rows.items():
        db.executemany(sql, params_of)
    committing = time.perf_counter()
    db.commit()
    return committing


async def on_connection_thread(
    db: aiosqlite.Connection, work: Callable[[sqlite3.Connection, A], R], arg: A
) -> R:
    """`work(connection, arg)` run on `db`'s own thread, in one hand-over each way.

    Each awaited call of aiosqlite's API is a trip to its thread and back, and the way back is
    a callback that waits its turn on the event loop: behind every charger's message the loop
    took in with it, some milliseconds under load. A group commit of several kinds of
    statement made several such trips and every charger in it waited out each one; as one
    call it makes one. aiosqlite has no public call for this: its `_execute` (queue a function
    for the connection's thread) and `_conn` (the thread's `sqlite3.Connection`) are what its
    own compound calls (`execute_fetchall`, `execute_insert`) use (aiosqlite 0.20-0.22,
    `pyproject.toml`'s range; every group commit of `tests/payments/charging/test_store.py`
    runs through them)."""

    def call() -> R:
        return work(db._conn, arg)

    result: R = await db._execute(call)  # type: ignore[no-untyped-call]
    return result
