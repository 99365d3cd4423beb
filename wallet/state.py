"""The wallet's persistent state: one sqlite file per account, shared safely by every task and
process that sends from that account.

The tables (and the upgrade of older files) are drawn in `wallet._state_schema`.

**Exclusive choice of inputs.** `create_transfer` runs coin selection and signing inside one
`BEGIN IMMEDIATE` transaction: it sees every reservation committed by any process, and no other
writer can commit between its read of the free outputs and its insert of its own reservations.
Two wallets on one file therefore never pick the same input. The same transaction records the
idempotency key, so two concurrent sends with one key make one transfer.

**Durability.** `synchronous=FULL` in WAL mode: a transfer and its attachment row are on disk
before the message is submitted, so a crash at any point leaves a record to resume from.

Status changes follow `TRANSITIONS`; anything else raises `WalletStateError`. Every method is
blocking and thread-safe (one connection per `WalletState`, one lock); async code calls them in
a worker thread.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, TypeVar

from tangle.protocol.ids import Address, MessageId, OutputId

from ._state_rows import coin_of, encode_transaction, read_transfer
from ._state_schema import RECORD_RECEIVED, SCHEMA_VERSION, prepare
from .database import open_database
from .errors import IdempotencyConflictError, WalletStateError
from .records import (
    AddressRow,
    Balance,
    Draft,
    Received,
    Transfer,
    TransferStatus,
    check_transition,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from .coin_selection import Coin

T = TypeVar("T")


class WalletState:
    """The sqlite state of one account (see the module docstring)."""

    __slots__ = ("_db", "_lock", "path")

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        """Internal; use `open`."""
        self._db = db
        self._lock = threading.Lock()
        self.path = path

    @classmethod
    def open(cls, path: Path, *, account: bytes) -> WalletState:
        """Open or create the state at `path` for the account identified by `account` (a
        public fingerprint); a file made for another account is refused."""
        try:
            db = open_database(path)
        except sqlite3.Error as exc:
            raise WalletStateError(f"cannot open {path}: {exc}") from None
        state = cls(db, path)
        try:
            with state._write() as tx:
                prepare(tx, path, time.time_ns() // 1_000_000)
                state._claim(tx, "account", account.hex())
        except sqlite3.Error as exc:
            db.close()
            raise WalletStateError(f"cannot open {path}: {exc}") from None
        except BaseException:
            db.close()
            raise
        return state

    @classmethod
    def open_read_only(cls, path: Path) -> WalletState:
        """The existing state at `path`, to read only: a process that holds no key of the
        account (an operator's tool beside the wallet's owner) looks its transfers up without
        creating, upgrading or claiming the file; every write raises `WalletStateError`. A
        file of another schema version than this wallet's is refused (its owner upgrades a
        version 1 file when it next opens it)."""
        try:
            db = open_database(path, read_only=True)
        except sqlite3.Error as exc:
            raise WalletStateError(f"cannot read {path}: {exc}") from None
        state = cls(db, path)
        try:
            row = state._read(
                lambda db: db.execute(
                    "SELECT value FROM meta WHERE key = 'schema_version'"
                ).fetchone()
            )
            if row is None or row[0] != str(SCHEMA_VERSION):
                version = None if row is None else row[0]
                raise WalletStateError(f"{path} has schema version {version}, not {SCHEMA_VERSION}")
        except BaseException:
            state.close()
            raise
        return state

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"WalletState(path={str(self.path)!r})"

    # -- plumbing ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One exclusive (IMMEDIATE) transaction."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise WalletStateError(f"{self.path}: {exc}") from None
            try:
                yield db
            except sqlite3.Error as exc:
                db.execute("ROLLBACK")
                raise WalletStateError(f"{self.path}: {exc}") from None
            except BaseException:
                db.execute("ROLLBACK")
                raise
            try:
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                db.execute("ROLLBACK")
                raise WalletStateError(f"{self.path}: {exc}") from None

    def _read(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """`read` on one consistent snapshot."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN")
                try:
                    return read(db)
                finally:
                    db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise WalletStateError(f"{self.path}: {exc}") from None

    def _claim(self, db: sqlite3.Connection, key: str, value: str) -> None:
        """Set meta `key` to `value`, or check that it already has that value."""
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        elif row[0] != value:
            raise WalletStateError(f"{self.path}: {key} is {row[0]}, not {value}")

    def bind_network(self, network_id: int) -> None:
        """Record the network the account's transfers are for; another one is refused."""
        with self._write() as db:
            self._claim(db, "network_id", str(network_id))

    # -- addresses and outputs ---------------------------------------------------------------

    def addresses(self) -> list[AddressRow]:
        rows = self._read(
            lambda db: db.execute(
                "SELECT chain, idx, address, used FROM addresses ORDER BY chain, idx"
            ).fetchall()
        )
        return [
            AddressRow(chain=c, index=i, address=Address(a), used=bool(u)) for c, i, a, u in rows
        ]

    def remember_addresses(self, rows: Iterable[tuple[int, int, Address]], *, used: bool) -> None:
        """Store derived addresses; with `used`, mark them used (they stay used)."""
        with self._write() as db:
            for chain, index, address in rows:
                db.execute(
                    "INSERT INTO addresses (chain, idx, address, used) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (chain, idx) DO UPDATE SET used = max(used, excluded.used)",
                    (chain, index, address, int(used)),
                )

    def replace_outputs(
        self, addresses: Iterable[Address], coins: Iterable[Coin], index: int, now_ms: int
    ) -> None:
        """The node's view of `addresses` at ledger `index`: their outputs become `coins`;
        those no transfer of this state made are recorded as received."""
        with self._write() as db:
            for address in addresses:
                db.execute(
                    "DELETE FROM outputs WHERE address = ? AND ledger_index <= ?", (address, index)
                )
            for coin in coins:
                if db.execute(
                    "SELECT 1 FROM spent WHERE output_id = ?", (coin.output_id,)
                ).fetchone():
                    continue
                db.execute(
                    "INSERT OR IGNORE INTO outputs (output_id, address, amount, ledger_index) "
                    "VALUES (?, ?, ?, ?)",
                    (coin.output_id, coin.address, str(coin.amount), index),
                )
                db.execute(
                    RECORD_RECEIVED,
                    (coin.output_id, coin.address, str(coin.amount), index, now_ms),
                )
                db.execute("UPDATE addresses SET used = 1 WHERE address = ?", (coin.address,))

    def received(self) -> list[Received]:
        """Every incoming output seen, oldest first."""
        rows = self._read(
            lambda db: db.execute(
                "SELECT output_id, address, amount, ledger_index, seen_ms FROM received "
                "ORDER BY seen_ms, ledger_index, output_id"
            ).fetchall()
        )
        return [
            Received(
                output_id=OutputId(oid),
                address=Address(address),
                amount=int(amount),
                ledger_index=index,
                seen_ms=seen,
            )
            for oid, address, amount, index, seen in rows
        ]

    def coins(self, *, free: bool = False) -> list[Coin]:
        """Known unspent outputs; with `free`, only those no transfer has reserved."""
        sql = "SELECT o.output_id, o.address, o.amount FROM outputs o"
        if free:
            sql += " WHERE o.output_id NOT IN (SELECT output_id FROM reservations)"
        rows = self._read(lambda db: db.execute(sql + " ORDER BY o.output_id").fetchall())
        return [coin_of(row) for row in rows]

    def balance(self) -> Balance:
        def read(db: sqlite3.Connection) -> Balance:
            rows = db.execute(
                "SELECT o.amount, r.output_id IS NOT NULL FROM outputs o "
                "LEFT JOIN reservations r ON r.output_id = o.output_id"
            ).fetchall()
            total = sum(int(amount) for amount, _ in rows)
            reserved = sum(int(amount) for amount, held in rows if held)
            return Balance(total=total, reserved=reserved, outputs=len(rows))

        return self._read(read)

    # -- transfers ---------------------------------------------------------------------------

    def create_transfer(
        self,
        key: bytes,
        key_hash: bytes,
        request: bytes,
        build: Callable[[list[Coin], int], Draft],
        now_ms: int,
    ) -> tuple[Transfer, bool]:
        """The transfer of idempotency `key` (whose hash is `key_hash`): the recorded one
        (False), or a new one (True) that `build` makes from the free coins and the next change
        index, recorded with its inputs reserved, all in one exclusive transaction. `request`
        fingerprints the payment: a key recorded with another fingerprint raises
        `IdempotencyConflictError`."""
        with self._write() as db:
            found = db.execute(
                "SELECT request, transaction_id FROM transfers WHERE key_hash = ?", (key_hash,)
            ).fetchone()
            if found is not None:
                if bytes(found[0]) != request:
                    raise IdempotencyConflictError(bytes(found[1]).hex())
                return read_transfer(db, key_hash), False
            rows = db.execute(
                "SELECT output_id, address, amount FROM outputs WHERE output_id NOT IN "
                "(SELECT output_id FROM reservations) ORDER BY output_id"
            ).fetchall()
            change_index = db.execute(
                "SELECT coalesce(max(idx) + 1, 0) FROM addresses WHERE chain = 1 AND used = 1"
            ).fetchone()[0]
            draft = build([coin_of(row) for row in rows], change_index)
            tx = draft.transaction
            db.execute(
                "INSERT INTO transfers (key_hash, transaction_id, payload, request, recipient, "
                "amount, status, created_ms, updated_ms, idempotency_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key_hash,
                    tx.id,
                    encode_transaction(tx),
                    request,
                    draft.recipient,
                    str(draft.amount),
                    TransferStatus.SIGNED.value,
                    now_ms,
                    now_ms,
                    key,
                ),
            )
            db.executemany(
                "INSERT INTO reservations (output_id, key_hash, since_ms) VALUES (?, ?, ?)",
                [(oid, key_hash, now_ms) for oid in tx.essence.inputs],
            )
            if draft.change is not None:
                db.execute(
                    "INSERT INTO addresses (chain, idx, address, used) VALUES (1, ?, ?, 1) "
                    "ON CONFLICT (chain, idx) DO UPDATE SET used = 1",
                    draft.change,
                )
            return read_transfer(db, key_hash), True

    def transfer(self, key_hash: bytes) -> Transfer | None:
        def read(db: sqlite3.Connection) -> Transfer | None:
            found = db.execute("SELECT 1 FROM transfers WHERE key_hash = ?", (key_hash,))
            return None if found.fetchone() is None else read_transfer(db, key_hash)

        return self._read(read)

    def transfers(self, statuses: Iterable[TransferStatus] | None = None) -> list[Transfer]:
        """Transfers (with one of `statuses`), oldest first."""
        wanted = None if statuses is None else {s.value for s in statuses}

        def read(db: sqlite3.Connection) -> list[Transfer]:
            rows = db.execute(
                "SELECT key_hash, status FROM transfers ORDER BY created_ms, key_hash"
            ).fetchall()
            return [read_transfer(db, bytes(k)) for k, s in rows if wanted is None or s in wanted]

        return self._read(read)

    def spenders(self, output_ids: Iterable[OutputId]) -> dict[OutputId, bytes]:
        """The confirmed transfer (its key hash) recorded as spending each of `output_ids` that
        one of this state's confirmed transfers spent (`confirm`): a spent output stays spent,
        so a transfer with an input another transfer spent can never apply."""
        wanted = list(output_ids)
        marks = ", ".join("?" * len(wanted))

        def read(db: sqlite3.Connection) -> dict[OutputId, bytes]:
            query = f"SELECT output_id, key_hash FROM spent WHERE output_id IN ({marks})"
            return {OutputId(bytes(r[0])): bytes(r[1]) for r in db.execute(query, wanted)}

        return self._read(read) if wanted else {}

    def set_nonce(self, key_hash: bytes, nonce: int, now_ms: int) -> Transfer:
        with self._write() as db:
            db.execute(
                "UPDATE transfers SET nonce = ?, updated_ms = ? WHERE key_hash = ?",
                (str(nonce), now_ms, key_hash),
            )
            return read_transfer(db, key_hash)

    def add_attachment(
        self,
        key_hash: bytes,
        *,
        message_id: MessageId | None,
        raw: bytes | None,
        cmi: int,
        now_ms: int,
    ) -> Transfer:
        """Record an attachment about to be submitted; the transfer becomes SUBMITTED. An
        EXPIRED transfer takes back those of its inputs that no other transfer reserved
        meanwhile. A final transfer is never attached again (`WalletStateError`)."""
        with self._write() as db:
            transfer = read_transfer(db, key_hash)
            self._move(db, transfer, TransferStatus.SUBMITTED, now_ms)
            sequence = transfer.attachments[-1].sequence + 1 if transfer.attachments else 0
            db.execute(
                "INSERT INTO attachments (key_hash, sequence, message_id, raw, cmi, at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key_hash, sequence, message_id, raw, cmi, now_ms),
            )
            if transfer.status is TransferStatus.EXPIRED:
                db.executemany(
                    "INSERT OR IGNORE INTO reservations (output_id, key_hash, since_ms) "
                    "VALUES (?, ?, ?)",
                    [(oid, key_hash, now_ms) for oid in transfer.inputs],
                )
            return read_transfer(db, key_hash)

    def name_attachment(
        self, key_hash: bytes, sequence: int, message_id: MessageId, raw: bytes | None
    ) -> Transfer:
        """Fill in the message id (and bytes) of an attachment the node made."""
        with self._write() as db:
            db.execute(
                "UPDATE attachments SET message_id = ?, raw = coalesce(?, raw) "
                "WHERE key_hash = ? AND sequence = ?",
                (message_id, raw, key_hash, sequence),
            )
            return read_transfer(db, key_hash)

    def drop_attachment(self, key_hash: bytes, sequence: int, now_ms: int) -> Transfer:
        """Forget an attachment the node refused (it was not stored anywhere); without
        attachments left, the transfer is SIGNED again (never published)."""
        with self._write() as db:
            db.execute(
                "DELETE FROM attachments WHERE key_hash = ? AND sequence = ?", (key_hash, sequence)
            )
            transfer = read_transfer(db, key_hash)
            if not transfer.attachments and transfer.status is TransferStatus.SUBMITTED:
                self._move(db, transfer, TransferStatus.SIGNED, now_ms)
            return read_transfer(db, key_hash)

    def confirm(
        self, key_hash: bytes, index: int, own_outputs: Iterable[Coin], now_ms: int
    ) -> Transfer:
        """The transfer was included at milestone `index`: its inputs are spent, its outputs
        to our addresses (`own_outputs`) are ours, its reservations go."""
        with self._write() as db:
            transfer = read_transfer(db, key_hash)
            if transfer.status is TransferStatus.CONFIRMED:
                return transfer
            self._move(db, transfer, TransferStatus.CONFIRMED, now_ms)
            db.execute(
                "UPDATE transfers SET confirmed_index = ? WHERE key_hash = ?", (index, key_hash)
            )
            db.executemany(
                "DELETE FROM outputs WHERE output_id = ?", [(i,) for i in transfer.inputs]
            )
            db.executemany(
                "INSERT OR IGNORE INTO spent (output_id, key_hash) VALUES (?, ?)",
                [(i, key_hash) for i in transfer.inputs],
            )
            for coin in own_outputs:
                db.execute(
                    "INSERT OR IGNORE INTO outputs (output_id, address, amount, ledger_index) "
                    "VALUES (?, ?, ?, ?)",
                    (coin.output_id, coin.address, str(coin.amount), index),
                )
                db.execute("UPDATE addresses SET used = 1 WHERE address = ?", (coin.address,))
            db.execute("DELETE FROM reservations WHERE key_hash = ?", (key_hash,))
            return read_transfer(db, key_hash)

    def fail(self, key_hash: bytes, reason: str, now_ms: int) -> Transfer:
        """The transfer can never apply: record why and release its inputs."""
        with self._write() as db:
            transfer = read_transfer(db, key_hash)
            if transfer.status is TransferStatus.FAILED:
                return transfer
            self._move(db, transfer, TransferStatus.FAILED, now_ms)
            db.execute("UPDATE transfers SET failure = ? WHERE key_hash = ?", (reason, key_hash))
            db.execute("DELETE FROM reservations WHERE key_hash = ?", (key_hash,))
            return read_transfer(db, key_hash)

    def expire(self, key_hash: bytes, now_ms: int) -> Transfer:
        """Every attachment is below max depth: release the inputs (see EXPIRED)."""
        with self._write() as db:
            transfer = read_transfer(db, key_hash)
            if transfer.status is not TransferStatus.SUBMITTED:
                return transfer
            self._move(db, transfer, TransferStatus.EXPIRED, now_ms)
            db.execute("DELETE FROM reservations WHERE key_hash = ?", (key_hash,))
            return read_transfer(db, key_hash)

    def abandon(self, key_hash: bytes, older_than_ms: int, now_ms: int) -> Transfer:
        """Fail, as `abandoned`, a transfer that cannot confirm unless it is attached again and
        whose row has not changed since `older_than_ms`: SIGNED (never handed to a node) or
        EXPIRED (every attachment below max depth). Its inputs are released (an EXPIRED one's
        already were), and no repeat of its send attaches it again. Any other transfer is
        returned as it stands. The change is exclusive: a sender that attaches the transfer at
        the same moment either records its attachment first (and the transfer is not abandoned)
        or finds it failed and attaches nothing."""
        abandonable = (TransferStatus.SIGNED, TransferStatus.EXPIRED)
        with self._write() as db:
            transfer = read_transfer(db, key_hash)
            if transfer.status not in abandonable or transfer.updated_ms > older_than_ms:
                return transfer
            self._move(db, transfer, TransferStatus.FAILED, now_ms)
            db.execute("UPDATE transfers SET failure = 'abandoned' WHERE key_hash = ?", (key_hash,))
            db.execute("DELETE FROM reservations WHERE key_hash = ?", (key_hash,))
            return read_transfer(db, key_hash)

    # -- rows --------------------------------------------------------------------------------

    def _move(
        self, db: sqlite3.Connection, transfer: Transfer, to: TransferStatus, now_ms: int
    ) -> None:
        check_transition(transfer, to)
        db.execute(
            "UPDATE transfers SET status = ?, updated_ms = ? WHERE key_hash = ?",
            (to.value, now_ms, transfer.key_hash),
        )
