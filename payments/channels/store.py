"""The durable channel store: the latest proof, the terms and the state of each channel, on sqlite.

One row per (channel, role), overwritten in place: a newer proof supersedes every older one, so
the store never needs the history. The database runs in WAL mode with `synchronous=FULL`, so a
commit is fsync'd before it returns and an acknowledged payment survives a crash or power loss.

All database work runs through `anyio.to_thread` behind a capacity-1 limiter (one writer at a
time, the event loop never blocks; it works under trio and asyncio alike). `save` is a group
commit: callers that arrive while a commit is in flight queue their records in the next batch,
and the first of them to get the lock commits the whole batch in one transaction (one fsync);
every caller returns only after the commit that holds its record. A transport must not
acknowledge a payment before `save` returned. Within a batch, and in the table, a record with a
lower sequence number never replaces a higher one: the store never goes backwards.

```
channels(channel_id BLOB, role INTEGER, terms BLOB, state INTEGER,
         sequence BLOB (u64 big-endian, so it sorts), proof BLOB NULL,
         PRIMARY KEY (channel_id, role))
```
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, Self

import anyio
import anyio.to_thread

from tangle.protocol.ids import ChannelId, PublicKey
from wallet.database import open_database

from ..errors import ChannelFrameError, InsufficientDepositError, PaymentError, StoreError
from .core import ChannelCore, ChannelTerms, check_binding
from .state import ChannelState, Role
from .wire import decode_signed_proof, encode_signed_proof

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tangle.protocol.channel import SignedBalanceProof

_TERMS: Final = struct.Struct("<Q32s32s32sQBII")
_SEQUENCE: Final = struct.Struct(">Q")

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS channels (
    channel_id BLOB NOT NULL,
    role INTEGER NOT NULL,
    terms BLOB NOT NULL,
    state INTEGER NOT NULL,
    sequence BLOB NOT NULL,
    proof BLOB,
    PRIMARY KEY (channel_id, role)
) WITHOUT ROWID
"""
UPSERT: Final = """
INSERT INTO channels (channel_id, role, terms, state, sequence, proof) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (channel_id, role) DO UPDATE SET
    terms = excluded.terms, state = excluded.state, sequence = excluded.sequence,
    proof = excluded.proof
WHERE excluded.sequence >= channels.sequence
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelRecord:
    """What the store keeps of one channel for one party."""

    terms: ChannelTerms
    """The channel's terms (with the deposit after the latest top-up)."""
    role: Role
    """Which party this side is."""
    state: ChannelState
    """Where the channel is in its life."""
    latest: SignedBalanceProof | None
    """The newest proof (None before the first payment)."""

    @classmethod
    def of(cls, channel: ChannelCore, role: Role) -> Self:
        """The record of `channel` as it is now, for the party `role`."""
        return cls(terms=channel.terms, role=role, state=channel.state, latest=channel.latest)

    @property
    def sequence(self) -> int:
        return 0 if self.latest is None else self.latest.proof.sequence


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreStats:
    """Counters since the store was opened."""

    saves: int
    """Calls of `save` that returned."""
    commits: int
    """sqlite transactions committed by `save` (fewer than `saves` when grouped)."""


def encode_terms(terms: ChannelTerms) -> bytes:
    """u64 network_id || 32 channel_id || 32 payer || 32 payee || u64 deposit
    || u8 bidirectional || u32 challenge_period || u32 expiry."""
    return _TERMS.pack(
        terms.network_id,
        terms.channel_id,
        terms.payer,
        terms.payee,
        terms.deposit,
        terms.bidirectional,
        terms.challenge_period,
        terms.expiry,
    )


def decode_terms(data: bytes) -> ChannelTerms:
    if len(data) != _TERMS.size:
        raise ChannelFrameError("channel terms", f"{len(data)} bytes, expected {_TERMS.size}")
    network_id, channel_id, payer, payee, deposit, two, period, expiry = _TERMS.unpack(data)
    if two > 1:
        raise ChannelFrameError("channel terms", f"bidirectional flag {two}")
    return ChannelTerms(
        network_id=network_id,
        channel_id=ChannelId(channel_id),
        payer=PublicKey(payer),
        payee=PublicKey(payee),
        deposit=deposit,
        bidirectional=two == 1,
        challenge_period=period,
        expiry=expiry,
    )


def record_row(record: ChannelRecord) -> tuple[bytes, int, bytes, int, bytes, bytes | None]:
    latest = record.latest
    return (
        record.terms.channel_id,
        int(record.role),
        encode_terms(record.terms),
        int(record.state),
        _SEQUENCE.pack(record.sequence),
        None if latest is None else encode_signed_proof(latest),
    )


def row_record(row: tuple[bytes, int, bytes, int, bytes, bytes | None]) -> ChannelRecord:
    _, role, terms, state, _, proof = row
    try:
        return ChannelRecord(
            terms=decode_terms(terms),
            role=Role(role),
            state=ChannelState(state),
            latest=None if proof is None else decode_signed_proof(proof),
        )
    except (PaymentError, ValueError) as e:
        raise StoreError(f"unreadable channel row: {e}") from e


def _connect(path: Path) -> sqlite3.Connection:
    try:
        db = open_database(path)
        db.execute(SCHEMA)
    except sqlite3.Error as e:
        raise StoreError(f"cannot open the channel store {path}: {e}") from e
    return db


COLUMNS: Final = "channel_id, role, terms, state, sequence, proof"


def read_records(path: Path) -> list[ChannelRecord]:
    """Every record in the store at `path`, read on a connection of its own (synchronous: for
    recovery before an event loop runs, and for tests after a crash)."""
    db = _connect(path)
    try:
        return [row_record(row) for row in db.execute(f"SELECT {COLUMNS} FROM channels")]
    finally:
        db.close()


def check_record(record: ChannelRecord) -> None:
    """What every store checks before it saves `record`: a record, its proof bound to its terms
    and within the deposit."""
    if not isinstance(record, ChannelRecord):
        raise StoreError(f"expected a ChannelRecord, got {type(record).__name__}")
    latest = record.latest
    if latest is not None:
        check_binding(record.terms, latest.proof)
        if latest.proof.payee_balance > record.terms.deposit:
            raise InsufficientDepositError(latest.proof.payee_balance, record.terms.deposit)


class ChannelRecords(Protocol):
    """What a `PayeeService` needs of its store: `ChannelStore`, or a store inside another
    database that commits a channel's record together with that database's own rows
    (`payments.charging.channel_rows.CsmsChannels`)."""

    async def save(self, record: ChannelRecord, credited: int = 0) -> None:
        """Make `record` durable (never going back to a lower sequence); return after the
        fsync'd commit that holds it. `credited` is what the record's proof newly credits over
        the record saved before it, as the `PayeeService` worked it out (`Credit.credited`; 0
        for a save no payment made): a store that counts payments commits that figure with the
        record (`CsmsChannels`); others ignore it."""
        ...

    async def load(self, channel_id: ChannelId, role: Role) -> ChannelRecord | None:
        """The committed record of `channel_id` for `role`, if any."""
        ...

    async def records(self, role: Role | None = None) -> list[ChannelRecord]:
        """Every committed record (of `role`, if given)."""
        ...


class _Batch:
    """Records waiting for one commit."""

    __slots__ = ("done", "error", "records")

    def __init__(self) -> None:
        self.records: dict[tuple[bytes, Role], ChannelRecord] = {}
        self.done = anyio.Event()
        self.error: BaseException | None = None


class ChannelStore:
    """The channel database of one process (see the module docstring)."""

    __slots__ = ("_closed", "_commits", "_db", "_limiter", "_lock", "_open", "_saves", "path")

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = _connect(self.path)
        self._limiter = anyio.CapacityLimiter(1)
        self._lock = anyio.Lock()
        self._open = _Batch()
        self._saves = 0
        self._commits = 0
        self._closed = False

    @property
    def stats(self) -> StoreStats:
        return StoreStats(saves=self._saves, commits=self._commits)

    async def save(self, record: ChannelRecord, credited: int = 0) -> None:
        """Make `record` durable; returns after the commit (fsync'd) that holds it. Concurrent
        calls are committed together. A record with a lower sequence than the one stored for
        its channel and role changes nothing. `credited` is not kept (this store counts no
        payments: `ChannelRecords.save`)."""
        del credited
        check_record(record)
        batch = self._open
        key = (record.terms.channel_id, record.role)
        queued = batch.records.get(key)
        if queued is None or queued.sequence <= record.sequence:
            batch.records[key] = record
        async with self._lock:
            if not batch.done.is_set():
                self._open = _Batch()
                with anyio.CancelScope(shield=True):
                    await self._commit(batch)
        if batch.error is not None:
            raise StoreError(f"commit failed: {batch.error}") from batch.error
        self._saves += 1

    async def _commit(self, batch: _Batch) -> None:
        try:
            rows = [record_row(r) for r in batch.records.values()]
            await anyio.to_thread.run_sync(self._write, rows, limiter=self._limiter)
            self._commits += 1
        except Exception as e:
            batch.error = e
        finally:
            batch.done.set()

    def _write(self, rows: Iterable[tuple[bytes, int, bytes, int, bytes, bytes | None]]) -> None:
        if self._closed:
            raise StoreError("the channel store is closed")
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(UPSERT, rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def load(self, channel_id: ChannelId, role: Role) -> ChannelRecord | None:
        """The committed record of `channel_id` for `role`, if any."""
        row = await anyio.to_thread.run_sync(
            self._select_one, channel_id, int(role), limiter=self._limiter
        )
        return None if row is None else row_record(row)

    async def records(self, role: Role | None = None) -> list[ChannelRecord]:
        """Every committed record (of `role`, if given)."""
        rows = await anyio.to_thread.run_sync(self._select_all, role, limiter=self._limiter)
        return [row_record(row) for row in rows]

    def _select_one(
        self, channel_id: bytes, role: int
    ) -> tuple[bytes, int, bytes, int, bytes, bytes | None] | None:
        rows = self._query(
            f"SELECT {COLUMNS} FROM channels WHERE channel_id = ? AND role = ?", (channel_id, role)
        )
        return rows[0] if rows else None

    def _select_all(
        self, role: Role | None
    ) -> list[tuple[bytes, int, bytes, int, bytes, bytes | None]]:
        if role is None:
            return self._query(f"SELECT {COLUMNS} FROM channels", ())
        return self._query(f"SELECT {COLUMNS} FROM channels WHERE role = ?", (int(role),))

    def _query(
        self, sql: str, params: tuple[object, ...]
    ) -> list[tuple[bytes, int, bytes, int, bytes, bytes | None]]:
        """Rows of a read; a closed or failing database is a `StoreError`."""
        if self._closed:
            raise StoreError("the channel store is closed")
        try:
            return list(self._db.execute(sql, params))
        except sqlite3.Error as exc:
            raise StoreError(f"read failed: {exc}") from exc

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the database after any commit in flight."""
        async with self._lock:
            await anyio.to_thread.run_sync(self._close, limiter=self._limiter)

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()
