"""One account of a wallet, on one node: address discovery, balance, and payments that confirm
exactly once.

Async on anyio (trio or asyncio): `Wallet`. Blocking, for simple device code: `SyncWallet`
(`sync_wallet.py`), which runs each call in its own event loop with `anyio.run`.

This module holds discovery and the sending API; the rest of a wallet lives beside it:
`config.py` (`WalletConfig`), `idempotency.py` (what names a payment), `confirmation.py`
(attaching and waiting, steps 2 to 4 below), `reattach.py` (the re-attach policy, pure) and
`_base.py` (what they share).

**Discovery.** Addresses are `m/44'/21584'/account'/change'/index'` (chain 0 receiving, chain 1
change). `sync` scans each chain from index 0 and stops after `gap_limit` consecutive unused
addresses; an address is used if the node shows an unspent output on it or the state remembers
it as used (the node keeps no history of spent outputs, so a restore from the mnemonic alone
finds an emptied address only within the gap of a funded one).

**Sending** (`send`), in this order:

1. The idempotency key (the caller's, or a random one) is hashed; one exclusive state
   transaction either finds the transfer recorded under that hash (a repeat: nothing new is
   built or signed) or selects inputs from the outputs no transfer has reserved, signs, and
   records the transfer with its inputs reserved. A caller's key also goes into the memo
   (`"tpik"` and the 32-byte hash), so the payment names its request on the ledger.
2. Proof-of-work: locally (Numba `search` in a worker thread, cancelled with the caller) or by
   the node (`POST /api/v1/messages/pow`), after which the wallet reads the node's message back
   for its nonce. The nonce is stored: the work root leaves out the parents, so every later
   attachment reuses it.
3. Each attachment is recorded (message id, bytes, the node's confirmed index) before it is
   submitted, so a crash or a lost answer never loses track of what may be on the tangle.
4. Confirmation: the wallet follows the node's event stream for the transaction id; if the
   stream cannot be opened or breaks, it polls message metadata instead (and tries the stream
   again later). A transfer not confirmed `reattach_after` (> 15) milestones after its last
   attachment is below max depth: it is re-attached with the same payload and nonce on fresh
   tips, never re-signed. A transfer fails for good, and is never re-attached, only when the
   ledger shows it can never apply: a milestone found it broke a rule of its own, or another
   transaction spent one of its inputs; an applied transaction is never called failed, even
   once the node has pruned its attachment (`confirmation.py`'s docstring).

**Exactly once.** One key is one transaction, for ever: a repeat returns the recorded transfer
(driving it on if it is unfinished) and a failed transfer stays failed. Only a new key makes a
new transaction. Different keys never share an input while both may confirm, because inputs are
reserved in the same exclusive transaction that chooses them, across every process sharing the
state file. Reservations are released only when the ledger says so: on confirmation or when
it can never apply (another transaction spent an input, or it broke a rule of its own: a
conflict on its inputs alone is none, `wallet.confirmation`), or once every attachment is below
max depth (the transfer is then EXPIRED and can only confirm if re-attached, so spending one of
its inputs elsewhere cancels it for good; inputs already gone, which it may have spent itself
through an attachment the node forgot, left the coins before), or
for a transfer never submitted whose sender has been silent for `abandon_after_s`, or when the
owner abandons a transfer that can no longer confirm (`wallet.pending`).

**Keys.** The state keeps each transfer's idempotency key (a send without one gets a random
text key), so a key whose printout was lost is read back from `transfers()`.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from tangle.protocol.ids import Address
from tangle.protocol.transaction import MAX_MEMO, BasicOutput, TransactionEssence

from ._base import now_ms
from .address import DEVNET, Network, decode_address, encode_address
from .client import NodeClient
from .coin_selection import Coin, require_amount, select_coins
from .config import CHANGE, RECEIVE, WalletConfig
from .confirmation import ConfirmingWallet
from .errors import (
    InsufficientFundsError,
    SendError,
    TransferFailedError,
    TransferTimeoutError,
    UnknownTransferError,
)
from .idempotency import (
    MEMO_TAG,
    account_fingerprint,
    idempotency_hash,
    key_bytes,
    request_fingerprint,
    submission_fingerprint,
)
from .records import Balance, Draft, Received, Transfer, TransferStatus
from .state import WalletState
from .transfer import sign_transaction

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from pathlib import Path

    import httpx

    from tangle.protocol.ids import OutputId
    from tangle.protocol.signature import Signer
    from tangle.protocol.transaction import Transaction

    from ._responses import NodeInfo
    from .config import RetryPolicy
    from .keys import AccountKey, AddressKey

    Funding = Sequence[tuple[OutputId, Signer]]
    """Coins chosen to fund a transaction, each with the key that spends it."""
    Compose = Callable[[Funding, tuple[Address, int] | None], Transaction]
    """Builds and signs a transaction from its funding and its change (address, amount)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    """What `sync` found."""

    balance: Balance
    """The account's funds afterwards."""
    ledger_index: int
    """The node's confirmed milestone when the scan began."""
    used: tuple[tuple[int, int], ...]
    """(chain, index) of every used address."""
    scanned: int
    """Addresses queried."""
    next_receive_index: int
    """The first receiving index after every used one."""


class Wallet(ConfirmingWallet):
    """One account on one node (see the module docstring). Build it with `Wallet.open`, or from
    an open `NodeClient` and `WalletState`."""

    __slots__ = ()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        account: AccountKey,
        *,
        url: str,
        state_path: Path,
        network: Network = DEVNET,
        config: WalletConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncIterator[Wallet]:
        """A wallet on the node at `url` (through `transport` if given), its state at
        `state_path`; the client and the state are closed on exit."""
        fingerprint = account_fingerprint(account)
        state = await anyio.to_thread.run_sync(
            functools.partial(WalletState.open, state_path, account=fingerprint)
        )
        try:
            async with NodeClient(url, transport=transport, retry=retry) as client:
                yield cls(account, client=client, state=state, network=network, config=config)
        finally:
            state.close()

    def __repr__(self) -> str:
        return f"Wallet(account={self._keys.account.account}, state={self._state!r})"

    # -- addresses ---------------------------------------------------------------------------

    def address(self, index: int, *, change: int = RECEIVE) -> Address:
        """The address at `index` on chain `change`."""
        return self._keys.key(change, index).address

    def channel_key(self, index: int) -> AddressKey:
        """The key of receiving address `index`, to hold a payment channel with: a channel pays
        its payer's share back to this key's address, which `sync` watches."""
        return self._keys.key(RECEIVE, index)

    async def receive_address(self) -> str:
        """The first receiving address after every used one, in bech32m."""
        rows = await self._db(self._state.addresses)
        used = [r.index for r in rows if r.chain == RECEIVE and r.used]
        index = max(used) + 1 if used else 0
        address = self.address(index)
        await self._db(self._state.remember_addresses, [(RECEIVE, index, address)], used=False)
        return encode_address(address, self._network)

    async def sync(self) -> SyncResult:
        """Discover the account's addresses (gap limit; at least up to every address the state
        remembers as used), record their unspent outputs, and settle unfinished transfers."""
        info = await self._info()
        remembered = {(r.chain, r.index): r.used for r in await self._db(self._state.addresses)}
        used: list[tuple[int, int]] = []
        scanned = 0
        for chain in (RECEIVE, CHANGE):
            index = gap = 0
            horizon = max((i for (c, i), u in remembered.items() if c == chain and u), default=-1)
            while gap < self._config.gap_limit or index <= horizon:
                window = range(index, max(index + self._config.gap_limit - gap, horizon + 1))
                addresses = [self.address(i, change=chain) for i in window]
                found = await self._query_outputs(addresses)
                coins = [
                    Coin(output_id=o.output_id, address=o.address, amount=o.amount)
                    for answer in found.values()
                    for o in answer.outputs
                ]
                rows = []
                for i, address in zip(window, addresses, strict=True):
                    is_used = bool(found[address].outputs) or remembered.get((chain, i), False)
                    rows.append((chain, i, address))
                    if is_used:
                        used.append((chain, i))
                        gap = 0
                    else:
                        gap += 1
                scanned += len(addresses)
                ledger_index = min(a.ledger_index for a in found.values())
                await self._db(self._state.remember_addresses, rows, used=False)
                await self._db(
                    self._state.replace_outputs, addresses, coins, ledger_index, now_ms()
                )
                index = window.stop
        await self.settle()
        receiving = [i for c, i in used if c == RECEIVE]
        return SyncResult(
            balance=await self.balance(),
            ledger_index=info.confirmed_milestone_index,
            used=tuple(used),
            scanned=scanned,
            next_receive_index=max(receiving) + 1 if receiving else 0,
        )

    async def balance(self) -> Balance:
        """The funds the state knows of (after the last `sync` and confirmations)."""
        return await self._db(self._state.balance)

    async def transfers(self, statuses: Sequence[TransferStatus] | None = None) -> list[Transfer]:
        return await self._db(self._state.transfers, statuses)

    async def received(self) -> list[Received]:
        """Outputs paid to the account by others, as its syncs saw them, oldest first."""
        return await self._db(self._state.received)

    async def transfer(self, idempotency_key: str | bytes) -> Transfer | None:
        return await self._db(self._state.transfer, idempotency_hash(idempotency_key))

    async def spenders(self, output_ids: Sequence[OutputId]) -> dict[OutputId, bytes]:
        """The confirmed transfer (key hash) this wallet recorded as spending each of
        `output_ids` that one spent (`WalletState.spenders`)."""
        return await self._db(self._state.spenders, output_ids)

    # -- sending -----------------------------------------------------------------------------

    async def send(
        self,
        recipient: str | Address,
        amount: int,
        *,
        idempotency_key: str | bytes | None = None,
        memo: bytes = b"",
        remote_pow: bool | None = None,
        wait: bool = True,
        timeout_s: float | None = None,
    ) -> Transfer:
        """Pay `amount` to `recipient` (bech32m of this wallet's network, or an `Address`) and,
        with `wait`, return once a milestone confirmed it. A repeat with the same
        `idempotency_key` returns the same transfer and never pays twice (module docstring).

        Raises `InsufficientFundsError`, `AmountError`, `IdempotencyConflictError`,
        `TransferFailedError` (never applicable: an input spent by another transaction, or a
        rule of its own broken), `TransferTimeoutError` (still pending: repeat to
        resume), `RejectedError` (the node refused it; `code`), `NodeUnavailableError`."""
        key, request, compose = await self._payment(recipient, amount, idempotency_key, memo)
        return await self._fund(
            key,
            request,
            amount,
            compose,
            remote_pow=remote_pow,
            wait=wait,
            timeout_s=timeout_s,
        )

    async def record(
        self,
        recipient: str | Address,
        amount: int,
        *,
        idempotency_key: str | bytes,
        memo: bytes = b"",
    ) -> Transfer:
        """`send`'s first step alone: the transfer recorded under `idempotency_key` (a repeat:
        the one recorded before, as it stands), or a new one signed and recorded (its inputs
        reserved), handed to no node; `resume` attaches it and follows it as `send` would. So
        a caller can check, between the two, that the payment is still wanted (a refund the
        operator paused meanwhile), and attach nothing if not: a transfer no node saw is
        abandoned by a later `sync` once its sender is silent for `abandon_after_s`, or
        attached by a later `send` or `resume` under its key. Raises as `send` does before it
        attaches (`InsufficientFundsError`, `AmountError`, `IdempotencyConflictError`,
        `NodeUnavailableError`)."""
        key, request, compose = await self._payment(recipient, amount, idempotency_key, memo)
        return await self._fund_record(key, request, amount, compose)

    async def _payment(
        self,
        recipient: str | Address,
        amount: int,
        idempotency_key: str | bytes | None,
        memo: bytes,
    ) -> tuple[bytes, bytes, Compose]:
        """The key, request fingerprint and transaction builder of a payment of `amount` to
        `recipient` (`send`)."""
        to = (
            recipient
            if isinstance(recipient, Address)
            else decode_address(recipient, self._network)
        )
        if idempotency_key is None:
            key = key_bytes(secrets.token_hex(16))
            full_memo = memo
        else:
            key = key_bytes(idempotency_key)
            full_memo = MEMO_TAG + idempotency_hash(key) + memo
        if len(full_memo) > MAX_MEMO:
            raise SendError(
                f"memo is {len(memo)} bytes; at most {MAX_MEMO - len(full_memo) + len(memo)} fit"
            )
        # the amount is checked where a new transfer is built (`select_coins`, in the state's
        # transaction that first looks the key up): a repeat of a recorded transfer is resumed
        # as it was, under the rule it was checked against, a minimum output raised since or not
        info = await self._info()
        request = request_fingerprint(to, amount, memo)

        def compose(funding: Funding, change: tuple[Address, int] | None) -> Transaction:
            outputs = [BasicOutput(address=to, amount=amount)]
            if change is not None:
                outputs.append(BasicOutput(address=change[0], amount=change[1]))
            essence = TransactionEssence(
                network_id=info.network_id,
                inputs=tuple(oid for oid, _ in funding),
                outputs=tuple(outputs),
                memo=full_memo,
            )
            return sign_transaction(essence, [signer for _, signer in funding])

        return key, request, compose

    async def pay_with(
        self,
        compose: Compose,
        amount: int,
        *,
        request: bytes,
        idempotency_key: str | bytes,
        remote_pow: bool | None = None,
        wait: bool = True,
        timeout_s: float | None = None,
    ) -> Transfer:
        """`send`'s general form: fund `amount` from this wallet's coins into a transaction that
        `compose(funding, change)` builds and signs (a channel opening or top-up, say). The
        transaction's first output is what the transfer watches; `request` fingerprints it for
        the idempotency check, as in `send`."""
        require_amount(amount, 1)
        return await self._fund(
            key_bytes(idempotency_key),
            request,
            amount,
            compose,
            remote_pow=remote_pow,
            wait=wait,
            timeout_s=timeout_s,
        )

    async def submit(
        self,
        transaction: Transaction,
        *,
        idempotency_key: str | bytes,
        remote_pow: bool | None = None,
        wait: bool = True,
        timeout_s: float | None = None,
    ) -> Transfer:
        """Attach a transaction signed elsewhere that spends none of this wallet's coins (a
        channel close or settlement) and follow it to confirmation, re-attaching as `send`
        does; idempotent per key."""
        key = key_bytes(idempotency_key)
        request = submission_fingerprint(transaction.id)
        first = transaction.essence.outputs[0]

        def build(_coins: list[Coin], _change_index: int) -> Draft:
            return Draft(
                transaction=transaction, recipient=first.address, amount=first.amount, change=None
            )

        transfer, _created = await self._db(
            self._state.create_transfer, key, idempotency_hash(key), request, build, now_ms()
        )
        return await self._complete(transfer, remote_pow=remote_pow, wait=wait, timeout_s=timeout_s)

    async def _fund(
        self,
        key: bytes,
        request: bytes,
        amount: int,
        compose: Compose,
        *,
        remote_pow: bool | None,
        wait: bool,
        timeout_s: float | None,
    ) -> Transfer:
        transfer = await self._fund_record(key, request, amount, compose)
        return await self._complete(transfer, remote_pow=remote_pow, wait=wait, timeout_s=timeout_s)

    async def _fund_record(
        self, key: bytes, request: bytes, amount: int, compose: Compose
    ) -> Transfer:
        """The transfer recorded under `key`, or a new one funded from the free coins (settling
        unfinished transfers first if they fall short) and recorded."""
        await self._load_owners()
        info = await self._info()
        try:
            return await self._create(key, request, amount, compose, info)
        except InsufficientFundsError:
            if not await self.settle():
                raise
            return await self._create(key, request, amount, compose, info)

    async def check_amount(self, amount: int) -> None:
        """Raise `AmountError` unless `amount` can be an output on the node's network: at least
        its minimum output (the dust deposit), at most 2**64 - 1."""
        require_amount(amount, (await self._info()).min_output_amount)

    async def resume(
        self,
        which: str | bytes | Transfer,
        *,
        remote_pow: bool | None = None,
        timeout_s: float | None = None,
    ) -> Transfer:
        """Drive a recorded transfer (`which`, or the one recorded under idempotency key
        `which`) to its end, as a repeat of its `send` would (without needing its arguments).
        Raises `UnknownTransferError` for a key nothing was recorded under."""
        transfer = which if isinstance(which, Transfer) else await self.transfer(which)
        if transfer is None:
            raise UnknownTransferError
        return await self._complete(transfer, remote_pow=remote_pow, wait=True, timeout_s=timeout_s)

    async def _create(
        self, key: bytes, request: bytes, amount: int, compose: Compose, info: NodeInfo
    ) -> Transfer:
        keys = self._keys

        def build(coins: list[Coin], change_index: int) -> Draft:
            spendable = [c for c in coins if c.address in keys.owners]
            selection = select_coins(spendable, amount, min_output=info.min_output_amount)
            change: tuple[int, Address] | None = None
            if selection.change:
                change = (change_index, keys.key(CHANGE, change_index).address)
            inputs = sorted(selection.inputs, key=lambda c: c.output_id)
            funding = [(c.output_id, keys.key(*keys.owners[c.address])) for c in inputs]
            tx = compose(funding, None if change is None else (change[1], selection.change))
            first = tx.essence.outputs[0]
            return Draft(transaction=tx, recipient=first.address, amount=amount, change=change)

        transfer, _created = await self._db(
            self._state.create_transfer, key, idempotency_hash(key), request, build, now_ms()
        )
        return transfer

    async def _complete(
        self, transfer: Transfer, *, remote_pow: bool | None, wait: bool, timeout_s: float | None
    ) -> Transfer:
        remote = self._config.remote_pow if remote_pow is None else remote_pow
        if transfer.status is TransferStatus.FAILED:
            raise TransferFailedError(transfer.transaction_id.hex(), transfer.failure or "failed")
        if transfer.status is TransferStatus.CONFIRMED:
            return transfer
        if transfer.status is TransferStatus.SIGNED:
            transfer = await self._attach(transfer, remote)
        if not wait:
            return transfer
        timeout = self._config.confirm_timeout_s if timeout_s is None else timeout_s
        try:
            with anyio.fail_after(timeout):
                transfer = await self._await_final(transfer, remote)
        except TimeoutError:
            raise TransferTimeoutError(transfer.transaction_id.hex(), timeout) from None
        if transfer.status is TransferStatus.FAILED:
            raise TransferFailedError(transfer.transaction_id.hex(), transfer.failure or "failed")
        return transfer
