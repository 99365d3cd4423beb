"""The CPO's wallet as the refunds use it: `LedgerWallet`, the refunder's (on a
`wallet.Wallet` with its key: sync, record, re-check, attach), and the records of a wallet state
file read without the key (`state_records`: the CLI beside the CSMS, a CSMS run without a
refund seed), found beside the CSMS's database (`wallet_state_path`). What the records say of a
refund is `refund_attempts`' (`recorded_state`); what the operator may do with it,
`refund_desk`'s.

A file that cannot be read (damaged, or of another schema version: an older wallet's file is
upgraded only by its owner, a CSMS with the refund seed) stops nothing but settling: its records
are `UnreadableRecords`, every read of which fails, so settling is refused (fails closed) and
the listing shows each transfer as `unknown`, while the CSMS serves its chargers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Final

from wallet.errors import StillPendingError, WalletError, WalletStateError
from wallet.idempotency import idempotency_hash
from wallet.pending import abandon
from wallet.records import TransferStatus
from wallet.state import WalletState

from .errors import RefundReleasedError, RefundWalletError
from .refund_attempts import TransferState, recorded_state

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
    from pathlib import Path

    from tangle.protocol.ids import Address, OutputId
    from wallet.account import Wallet
    from wallet.records import Transfer

    from .refund_attempts import TransferRecords

SYNC_EVERY_S: Final = 10.0
"""How old the CPO wallet's last sync may be when a refund is sent (`LedgerWallet`)."""

LOG: Final = logging.getLogger(__name__)
WALLET_READ_S: Final = 1.0
"""The longest a wallet record is waited for (`RefundWalletError` after it). A settlement reads
it while it holds the database's write lock, so every charger's group commit waits behind the
read, and a writer of the wallet's file may hold that file for as long as its busy timeout
(`wallet.database.BUSY_TIMEOUT_S`, 30 s): refusing to settle is safe, stalling the CSMS is not."""


def wallet_state_path(db: Path) -> Path:
    """The state file of the CPO wallet refunds are paid from, beside the CSMS's database."""
    return db.with_suffix(".wallet.sqlite")


class LedgerWallet:
    """A `RefundWallet` on a CPO's `wallet.Wallet`, which it syncs before a send (so coins it
    received since are spent too) when its last sync is `sync_every_s` old or a send failed
    since: a round of many refunds syncs once, not once per refund.

    *Record, check, attach.* A send records its transfer first (`Wallet.record`: signed and
    stored, handed to no node), then asks whether the refund is still claimed (`claimed`: its
    row still `sending` at its attempt), and only then attaches it (`Wallet.resume`). The
    operator may hold and settle a refund at any time, from another process too, and neither
    database's lock holds the other's writes; this order closes that window. A hold committed
    before the check is seen, and nothing is attached: the signed transfer no node saw is
    abandoned at once (`wallet.pending.abandon`: failed, it can never apply), so the operator
    may settle the refund at once, or retry it, under its next attempt. A hold committed
    after it finds the transfer recorded, so a settlement's check of the wallet refuses it
    (`refund_desk`). The sync before a send takes the longest (seconds, more on a slow node),
    and it is before the record, so the window left is one read."""

    __slots__ = ("_clock", "_synced_at", "sync_every_s", "wallet")

    def __init__(
        self,
        *,
        wallet: Wallet,
        sync_every_s: float = SYNC_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wallet = wallet
        """The CPO's wallet."""
        self.sync_every_s = sync_every_s
        self._clock = clock
        self._synced_at: float | None = None

    async def send(
        self, to: Address, amount: int, key: bytes, claimed: Callable[[], Awaitable[bool]], /
    ) -> object:
        now = self._clock()
        if self._synced_at is None or now - self._synced_at >= self.sync_every_s:
            await self.wallet.sync()
            self._synced_at = now
        try:
            transfer = await self.wallet.record(to, amount, idempotency_key=key)
            if not await claimed():
                if transfer.status is TransferStatus.SIGNED:  # no node saw it: it never applies
                    with contextlib.suppress(StillPendingError):  # attached meanwhile: live
                        await abandon(self.wallet, transfer, online=False)
                raise RefundReleasedError(key)
            return await self.wallet.resume(transfer)
        except RefundReleasedError:  # the operator's doing, not the wallet's: no sync owed
            raise
        except BaseException:
            self._synced_at = None  # perhaps short of coins it has not seen: sync next time
            raise

    async def transfer(self, key: bytes, /) -> Transfer | None:
        return await self.wallet.transfer(key)

    async def spenders(self, inputs: Sequence[OutputId], /) -> dict[OutputId, bytes]:
        return await self.wallet.spenders(inputs)


class StateRecords:
    """The transfers a CPO wallet's state file records, read without the wallet's key
    (`WalletState.open_read_only`): never created, upgraded nor written, so it may be read
    beside the running CSMS that owns it."""

    __slots__ = ("_state",)

    def __init__(self, state: WalletState) -> None:
        self._state = state

    async def transfer(self, key: bytes, /) -> Transfer | None:
        return await asyncio.to_thread(self._state.transfer, idempotency_hash(key))

    async def spenders(self, inputs: Sequence[OutputId], /) -> dict[OutputId, bytes]:
        return await asyncio.to_thread(self._state.spenders, inputs)


class UnreadableRecords:
    """The records of a wallet state file that could not be opened: every read raises
    `WalletStateError` with the `reason`, so settling fails closed (the module docstring)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason
        """Why the file could not be read."""

    async def transfer(self, key: bytes, /) -> Transfer | None:
        raise WalletStateError(self.reason)

    async def spenders(self, inputs: Sequence[OutputId], /) -> dict[OutputId, bytes]:
        raise WalletStateError(self.reason)


@contextlib.asynccontextmanager
async def state_records(path: Path) -> AsyncIterator[StateRecords | UnreadableRecords | None]:
    """Within: the records of the wallet state at `path`, None if there is no such file (no
    refund was ever sent from it: the CSMS creates it when it first runs with a refund seed),
    `UnreadableRecords` (logged at error level) if the file is not a state this wallet reads:
    a process beside it still starts, and refuses to settle."""
    if not await asyncio.to_thread(path.exists):
        yield None
        return
    try:
        state = await asyncio.to_thread(WalletState.open_read_only, path)
    except WalletError as e:
        LOG.error("the CPO wallet's state cannot be read, no refund is settled: %s", e)
        yield UnreadableRecords(str(e))
        return
    try:
        yield StateRecords(state)
    finally:
        state.close()


_LATE_READS: Final[set[asyncio.Task[Any]]] = set()
"""Wallet reads given up on (`read_record`), kept until they end (the loop holds tasks weakly)."""


async def read_record(wallet: TransferRecords, key: bytes) -> tuple[Transfer | None, TransferState]:
    """The transfer `wallet` records under `key` and its state (`recorded_state`);
    `RefundWalletError` if it cannot be read, or not within `WALLET_READ_S`. A read given up
    on is cancelled, and left to end (one in a worker thread ends when the thread does)."""
    read = asyncio.ensure_future(recorded_state(wallet, key))
    try:
        done, _ = await asyncio.wait((read,), timeout=WALLET_READ_S)
    finally:
        if not read.done():
            read.cancel()
            _LATE_READS.add(read)
            read.add_done_callback(_forget)
    if not done:
        raise RefundWalletError(f"no answer within {WALLET_READ_S} s (its file is held)")
    try:
        return read.result()
    except WalletError as e:
        raise RefundWalletError(str(e)) from None


def _forget(read: asyncio.Task[Any]) -> None:
    """A late read ended: its answer (or error) is no longer wanted."""
    _LATE_READS.discard(read)
    if not read.cancelled():
        read.exception()
