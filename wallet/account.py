"""One account of a wallet, on one node: address discovery, balance, and payments that confirm
exactly once.

Async on anyio (trio or asyncio): `Wallet`. Blocking, for simple device code: `SyncWallet`
(`sync_wallet.py`), which runs each call in its own event loop with `anyio.run`.

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
   tips, never re-signed. A transfer a milestone marks conflicting failed for good (its inputs
   were spent elsewhere) and is never re-attached.

**Exactly once.** One key is one transaction, for ever: a repeat returns the recorded transfer
(driving it on if it is unfinished) and a failed transfer stays failed. Only a new key makes a
new transaction. Different keys never share an input while both may confirm, because inputs are
reserved in the same exclusive transaction that chooses them, across every process sharing the
state file. Reservations are released only when the ledger says so: on confirmation or
conflict, or once every attachment is below max depth (the transfer is then EXPIRED and can
only confirm if re-attached, so spending one of its inputs elsewhere cancels it for good), or
for a transfer never submitted whose sender has been silent for `abandon_after_s`, or when the
owner abandons a transfer that can no longer confirm (`wallet.pending`).

**Keys.** The state keeps each transfer's idempotency key (a send without one gets a random
text key), so a key whose printout was lost is read back from `transfers()`.
"""

from __future__ import annotations

import contextlib
import functools
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, ParamSpec, TypeVar

import anyio
import anyio.to_thread

from tangle.codec import u8, u64
from tangle.events import TransactionEvent
from tangle.ids import Address, MessageId, OutputId, blake2b_256
from tangle.ledger import Inclusion
from tangle.message import Message, encode_message, prepare
from tangle.pow import search
from tangle.transaction import MAX_MEMO, BasicOutput, TransactionEssence

from .address import DEVNET, Network, decode_address, encode_address
from .client import AddressOutputs, NodeClient
from .coin_selection import Coin, require_amount, select_coins
from .errors import (
    ClientError,
    EventStreamError,
    InsufficientFundsError,
    NodeUnavailableError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    SendError,
    TransferFailedError,
    TransferTimeoutError,
    UnknownTransferError,
    WalletConfigError,
    WalletStateError,
)
from .records import Balance, Draft, Received, Transfer, TransferStatus
from .state import WalletState
from .transfer import sign_transaction

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from pathlib import Path

    import httpx

    from tangle.signature import Signer
    from tangle.transaction import Transaction

    from .client import NodeInfo, RetryPolicy
    from .keys import AccountKey, AddressKey

    Funding = Sequence[tuple[OutputId, Signer]]
    """Coins chosen to fund a transaction, each with the key that spends it."""
    Compose = Callable[[Funding, tuple[Address, int] | None], Transaction]
    """Builds and signs a transaction from its funding and its change (address, amount)."""

T = TypeVar("T")
P = ParamSpec("P")

RECEIVE: Final = 0
CHANGE: Final = 1
BELOW_MAX_DEPTH: Final = 15
"""Milestones after which an unconfirmed message can no longer be confirmed (PROTOCOL 6)."""
MEMO_TAG: Final = b"tpik"
"""Memo prefix of a payment sent with an idempotency key; the key's hash follows."""
_KEY_DOMAIN: Final = b"tanglepay/idempotency/v1"
_REQUEST_DOMAIN: Final = b"tanglepay/transfer-request/v1"
_ACCOUNT_DOMAIN: Final = b"tanglepay/wallet-state/v1"


def idempotency_hash(key: str | bytes) -> bytes:
    """BLAKE2b-256 of a domain tag and the key (UTF-8 for text): what the memo carries and the
    state is keyed by."""
    return blake2b_256(_KEY_DOMAIN, _key_bytes(key))


def _key_bytes(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else bytes(key)


def request_fingerprint(recipient: Address, amount: int, memo: bytes) -> bytes:
    """What a repeat with the same key must match: recipient, amount and memo."""
    return blake2b_256(_REQUEST_DOMAIN, recipient, u64(amount), u8(len(memo)), memo)


def account_fingerprint(account: AccountKey) -> bytes:
    """A public identifier of an account (its coin type, index and first address), to keep one
    state file to one account."""
    first = account.address(0, change=RECEIVE)
    return blake2b_256(_ACCOUNT_DOMAIN, u64(account.coin_type), u64(account.account), first)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def find_nonce(root: bytes, target: int, *, threads: int | None = None) -> int:
    """The proof-of-work nonce for `root`, by `tangle.pow.search` in a worker thread; works
    under trio and asyncio. Cancelling the caller stops the search at its next batch."""
    cancel = threading.Event()
    run = functools.partial(search, root, target, threads=threads, cancel=cancel)
    try:
        return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
    finally:
        cancel.set()


@dataclass(frozen=True, slots=True, kw_only=True)
class WalletConfig:
    """How a wallet discovers addresses, does its work and waits."""

    gap_limit: int = 20
    """Consecutive unused addresses after which discovery stops (BIP-44's 20)."""
    reattach_after: int = 16
    """Milestones after its last attachment before an unconfirmed transfer is re-attached;
    more than 15 (below max depth), so the node has freed the payload's slot."""
    expire_after: int = 20
    """Milestones after which `settle` releases the inputs of an unconfirmed transfer that
    nobody re-attached (at least `reattach_after`, so a live sender re-attaches first)."""
    confirm_timeout_s: float = 120.0
    """How long `send` waits for confirmation before `TransferTimeoutError`."""
    remote_pow: bool = False
    """Ask the node to do the proof-of-work (small devices)."""
    pow_threads: int | None = None
    """Threads for a local search (None: Numba's whole pool)."""
    poll_interval_s: float = 1.0
    """Between two polls when the event stream is not available."""
    stream_open_timeout_s: float = 5.0
    """How long opening the event stream may take before polling instead."""
    stream_retry_s: float = 10.0
    """How long to poll before trying the event stream again."""
    abandon_after_s: float = 600.0
    """A transfer signed but never submitted, untouched this long, has lost its sender:
    `settle` fails it and releases its inputs."""
    sync_concurrency: int = 8
    """Address queries in flight at once during `sync`."""

    def __post_init__(self) -> None:
        if not 1 <= self.gap_limit <= 1000:
            raise WalletConfigError("WalletConfig.gap_limit", "must be in 1..1000")
        if self.reattach_after <= BELOW_MAX_DEPTH:
            raise WalletConfigError("WalletConfig.reattach_after", "must exceed 15")
        if self.expire_after < self.reattach_after:
            raise WalletConfigError("WalletConfig.expire_after", "must be >= reattach_after")
        for name in (
            "confirm_timeout_s",
            "poll_interval_s",
            "stream_open_timeout_s",
            "stream_retry_s",
            "abandon_after_s",
        ):
            if not getattr(self, name) > 0:
                raise WalletConfigError(f"WalletConfig.{name}", "must be positive")
        if self.sync_concurrency < 1:
            raise WalletConfigError("WalletConfig.sync_concurrency", "must be at least 1")


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


@dataclass(slots=True)
class Counters:
    """What a wallet did, for metrics and tests."""

    streams_opened: int = 0
    stream_failures: int = 0
    polls: int = 0
    attachments: int = 0
    reattachments: int = 0
    resubmissions: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class _Verdict:
    confirmed_index: int | None = None
    conflict: str | None = None
    missing: bool = False
    """The latest attachment is one the wallet built and the node does not hold."""


@dataclass(slots=True)
class KeyRing:
    """Derived address keys and which (chain, index) each address is, shared by the wallets
    of one `SyncWallet`."""

    account: AccountKey
    keys: dict[tuple[int, int], AddressKey] = field(default_factory=dict)
    owners: dict[Address, tuple[int, int]] = field(default_factory=dict)

    def key(self, chain: int, index: int) -> AddressKey:
        found = self.keys.get((chain, index))
        if found is None:
            found = self.keys[chain, index] = self.account.address_key(index, change=chain)
            self.owners[found.address] = (chain, index)
        return found


class Wallet:
    """One account on one node (see the module docstring). Build it with `Wallet.open`, or from
    an open `NodeClient` and `WalletState`."""

    __slots__ = ("_client", "_config", "_keys", "_network", "_network_id", "_state", "counters")

    def __init__(
        self,
        account: AccountKey,
        *,
        client: NodeClient,
        state: WalletState,
        network: Network = DEVNET,
        config: WalletConfig | None = None,
        _keys: KeyRing | None = None,
    ) -> None:
        self._keys = _keys or KeyRing(account)
        self._client = client
        self._state = state
        self._network = network
        self._config = config or WalletConfig()
        self._network_id: int | None = None
        self.counters = Counters()

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

    @property
    def client(self) -> NodeClient:
        return self._client

    @property
    def state(self) -> WalletState:
        return self._state

    @property
    def config(self) -> WalletConfig:
        return self._config

    async def _db(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A state call, in a worker thread (never abandoned: it always completes)."""
        return await anyio.to_thread.run_sync(functools.partial(call, *args, **kwargs))

    async def _info(self) -> NodeInfo:
        """The node's status; the first answer binds the state to its network."""
        info = await self._client.info()
        if self._network_id != info.network_id:
            await self._db(self._state.bind_network, info.network_id)
            self._network_id = info.network_id
        return info

    async def _load_owners(self) -> None:
        for row in await self._db(self._state.addresses):
            if row.address not in self._keys.owners:
                self._keys.owners[row.address] = (row.chain, row.index)

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
                    self._state.replace_outputs, addresses, coins, ledger_index, _now_ms()
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

    async def _query_outputs(self, addresses: Sequence[Address]) -> dict[Address, AddressOutputs]:
        """The outputs of each address, `sync_concurrency` queries at a time; the first
        `ClientError` cancels the rest and is raised as itself (not in an exception group)."""
        limiter = anyio.CapacityLimiter(self._config.sync_concurrency)
        found: dict[Address, AddressOutputs] = {}
        failures: list[ClientError] = []

        async def query(address: Address, cancel: anyio.CancelScope) -> None:
            async with limiter:
                try:
                    found[address] = await self._client.outputs(address)
                except ClientError as exc:
                    failures.append(exc)
                    cancel.cancel()

        async with anyio.create_task_group() as group:
            for address in addresses:
                group.start_soon(query, address, group.cancel_scope)
        if failures:
            raise failures[0]
        return found

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
        `TransferFailedError` (conflicting), `TransferTimeoutError` (still pending: repeat to
        resume), `RejectedError` (the node refused it; `code`), `NodeUnavailableError`."""
        to = (
            recipient
            if isinstance(recipient, Address)
            else decode_address(recipient, self._network)
        )
        if idempotency_key is None:
            key = _key_bytes(secrets.token_hex(16))
            full_memo = memo
        else:
            key = _key_bytes(idempotency_key)
            full_memo = MEMO_TAG + idempotency_hash(key) + memo
        if len(full_memo) > MAX_MEMO:
            raise SendError(
                f"memo is {len(memo)} bytes; at most {MAX_MEMO - len(full_memo) + len(memo)} fit"
            )
        await self.check_amount(amount)
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

        return await self._fund(
            key,
            request,
            amount,
            compose,
            remote_pow=remote_pow,
            wait=wait,
            timeout_s=timeout_s,
        )

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
            _key_bytes(idempotency_key),
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
        key = _key_bytes(idempotency_key)
        request = blake2b_256(_REQUEST_DOMAIN, transaction.id)
        first = transaction.essence.outputs[0]

        def build(_coins: list[Coin], _change_index: int) -> Draft:
            return Draft(
                transaction=transaction, recipient=first.address, amount=first.amount, change=None
            )

        transfer, _created = await self._db(
            self._state.create_transfer, key, idempotency_hash(key), request, build, _now_ms()
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
        await self._load_owners()
        info = await self._info()
        try:
            transfer = await self._create(key, request, amount, compose, info)
        except InsufficientFundsError:
            if not await self.settle():
                raise
            transfer = await self._create(key, request, amount, compose, info)
        return await self._complete(transfer, remote_pow=remote_pow, wait=wait, timeout_s=timeout_s)

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
            self._state.create_transfer, key, idempotency_hash(key), request, build, _now_ms()
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

    # -- attaching ---------------------------------------------------------------------------

    async def _attach(self, transfer: Transfer, remote: bool) -> Transfer:
        """Attach the transfer's payload to fresh tips: with its stored nonce, else after a
        local search, else (remote) by the node's proof-of-work."""
        info = await self._info()
        if transfer.nonce is None and remote:
            return await self._attach_at_node(transfer, info)
        nonce = transfer.nonce
        if nonce is None:
            unsent = prepare(info.network_id, transfer.transaction, info.work_per_kib)
            nonce = await find_nonce(unsent.root, unsent.target, threads=self._config.pow_threads)
            transfer = await self._db(self._state.set_nonce, transfer.key_hash, nonce, _now_ms())
        tips = await self._client.tips()
        message = Message(
            network_id=info.network_id,
            parents=tips,
            payload=transfer.transaction,
            nonce=nonce,
        )
        raw = encode_message(message)
        message_id = MessageId(blake2b_256(raw))
        transfer = await self._record_attachment(transfer, message_id, raw, info)
        sequence = transfer.attachments[-1].sequence
        try:
            await self._client.submit(raw)
        except (RejectedError, RateLimitedError) as exc:
            return await self._refused(transfer, sequence, exc)
        self.counters.attachments += 1
        return transfer

    async def _attach_at_node(self, transfer: Transfer, info: NodeInfo) -> Transfer:
        transfer = await self._record_attachment(transfer, None, None, info)
        sequence = transfer.attachments[-1].sequence
        try:
            message_id = await self._client.submit_pow(transfer.transaction)
        except (RejectedError, RateLimitedError) as exc:
            if isinstance(exc, RejectedError) and exc.code == "duplicate_payload":
                return transfer  # an earlier try whose answer was lost: the node holds it
            return await self._refused(transfer, sequence, exc)
        self.counters.attachments += 1
        transfer = await self._db(
            self._state.name_attachment, transfer.key_hash, sequence, message_id, None
        )
        with contextlib.suppress(ClientError):  # the nonce only saves work later
            parsed = await self._client.message(message_id)
            if parsed.message.payload == transfer.transaction:
                await self._db(
                    self._state.name_attachment, transfer.key_hash, sequence, message_id, parsed.raw
                )
                transfer = await self._db(
                    self._state.set_nonce, transfer.key_hash, parsed.message.nonce, _now_ms()
                )
        return transfer

    async def _record_attachment(
        self, transfer: Transfer, message_id: MessageId | None, raw: bytes | None, info: NodeInfo
    ) -> Transfer:
        """Record an attachment before submitting it. If another process settled the transfer
        meanwhile (abandoned, confirmed), nothing is recorded and it is reported as it stands."""
        try:
            return await self._db(
                self._state.add_attachment,
                transfer.key_hash,
                message_id=message_id,
                raw=raw,
                cmi=info.confirmed_milestone_index,
                now_ms=_now_ms(),
            )
        except WalletStateError:
            current = await self._reload(transfer)
            if current.status is TransferStatus.FAILED:
                raise TransferFailedError(
                    current.transaction_id.hex(), current.failure or "failed"
                ) from None
            raise

    async def _refused(
        self, transfer: Transfer, sequence: int, exc: RejectedError | RateLimitedError
    ) -> Transfer:
        """The node did not store this attachment: forget it. `duplicate_payload` means an
        earlier attachment still holds the payload's slot (keep waiting); any other refusal of
        a transfer never published fails it, and is raised."""
        transfer = await self._db(
            self._state.drop_attachment, transfer.key_hash, sequence, _now_ms()
        )
        if isinstance(exc, RejectedError) and exc.code == "duplicate_payload":
            return transfer
        if isinstance(exc, RejectedError) and not transfer.attachments:
            await self._db(self._state.fail, transfer.key_hash, exc.code, _now_ms())
        raise exc

    # -- waiting -----------------------------------------------------------------------------

    async def _await_final(self, transfer: Transfer, remote: bool) -> Transfer:
        """Follow the event stream; while it is unavailable, poll."""
        while True:
            try:
                return await self._follow_events(transfer, remote)
            except (EventStreamError, RateLimitedError, NodeUnavailableError):
                self.counters.stream_failures += 1
            transfer = await self._reload(transfer)
            transfer, final = await self._poll(transfer, remote, self._config.stream_retry_s)
            if final:
                return transfer

    async def _follow_events(self, transfer: Transfer, remote: bool) -> Transfer:
        watched = transfer.transaction.essence.outputs[0].address
        async with contextlib.AsyncExitStack() as stack:
            try:
                with anyio.fail_after(self._config.stream_open_timeout_s):
                    events = await stack.enter_async_context(self._client.events([watched]))
            except TimeoutError:
                raise EventStreamError("GET /api/v1/events", "no answer in time") from None
            self.counters.streams_opened += 1
            transfer, final = await self._step(transfer, remote, None)
            if final:
                return transfer
            async for event in events:
                if isinstance(event, TransactionEvent):
                    if event.transaction_id != transfer.transaction_id:
                        continue
                    if event.inclusion is Inclusion.INCLUDED:
                        return await self._confirmed(transfer, event.milestone_index)
                    transfer, final = await self._step(transfer, remote, None)
                elif self._due(transfer, event.index):
                    transfer, final = await self._step(transfer, remote, event.index)
                if final:
                    return transfer
        raise EventStreamError("GET /api/v1/events", "the stream ended")  # pragma: no cover

    async def _poll(
        self, transfer: Transfer, remote: bool, duration_s: float
    ) -> tuple[Transfer, bool]:
        """Poll for `duration_s` (at least once); a node that does not answer is tried again."""
        rounds = max(1, math.ceil(duration_s / self._config.poll_interval_s))
        for _ in range(rounds):
            self.counters.polls += 1
            with contextlib.suppress(NodeUnavailableError, RateLimitedError):
                transfer, final = await self._step(transfer, remote, None)
                if final:
                    return transfer, True
            await anyio.sleep(self._config.poll_interval_s)
        return transfer, False

    def _due(self, transfer: Transfer, cmi: int) -> bool:
        """Whether the transfer should be (re-)attached at confirmed index `cmi`."""
        if transfer.status is TransferStatus.SIGNED:
            return True
        last = transfer.last_cmi
        return last is None or cmi - last >= self._config.reattach_after

    async def _step(
        self, transfer: Transfer, remote: bool, cmi: int | None
    ) -> tuple[Transfer, bool]:
        """Ask the ledger about the transfer; finish it, or re-attach it when due, or submit
        its latest attachment again if the node lost it."""
        verdict = await self._verdict(transfer)
        if verdict.confirmed_index is not None:
            return await self._confirmed(transfer, verdict.confirmed_index), True
        if verdict.conflict is not None:
            return await self._failed(transfer, verdict.conflict), True
        transfer = await self._reload(transfer)
        if transfer.final:
            return transfer, True
        if cmi is None:
            cmi = (await self._info()).confirmed_milestone_index
        if self._due(transfer, cmi):
            if transfer.status is not TransferStatus.SIGNED:
                self.counters.reattachments += 1
            return await self._attach(transfer, remote), False
        latest = transfer.attachments[-1] if transfer.attachments else None
        if verdict.missing and latest is not None and latest.raw is not None:
            self.counters.resubmissions += 1
            with contextlib.suppress(RejectedError):  # duplicate_payload: another holds the slot
                await self._client.submit(latest.raw)
        return transfer, False

    async def _verdict(self, transfer: Transfer) -> _Verdict:
        """Included (at which milestone), conflicting (why), or neither, from the metadata of
        its attachments and, when those cannot tell, the ledger's outputs."""
        conflict: str | None = None
        known = 0
        missing = False
        for attachment in transfer.attachments:
            if attachment.message_id is None:
                continue
            try:
                metadata = await self._client.metadata(attachment.message_id)
            except NotFoundError:
                missing = attachment is transfer.attachments[-1]
                continue
            known += 1
            if metadata.referenced_by is None:
                continue
            if metadata.inclusion is Inclusion.INCLUDED:
                return _Verdict(confirmed_index=metadata.referenced_by)
            if metadata.inclusion is Inclusion.CONFLICTING:
                conflict = metadata.conflict.name.lower()
        unnamed = any(a.message_id is None for a in transfer.attachments)
        if conflict is not None or known == 0 or unnamed:
            index = await self._on_ledger(transfer)
            if index is not None:
                return _Verdict(confirmed_index=index)
        return _Verdict(conflict=conflict, missing=missing)

    async def _on_ledger(self, transfer: Transfer) -> int | None:
        """The ledger index at which an output of the transaction is seen unspent (the change
        first: nobody else spends it), or None."""
        outputs = list(enumerate(transfer.transaction.essence.outputs))
        for position, output in reversed(outputs[-2:]):
            answer = await self._client.outputs(output.address)
            wanted = OutputId.of(transfer.transaction_id, position)
            if any(o.output_id == wanted for o in answer.outputs):
                return answer.ledger_index
        return None

    async def _reload(self, transfer: Transfer) -> Transfer:
        found = await self._db(self._state.transfer, transfer.key_hash)
        return transfer if found is None else found

    async def _confirmed(self, transfer: Transfer, index: int) -> Transfer:
        await self._load_owners()
        tx = transfer.transaction
        own = [
            Coin(output_id=OutputId.of(tx.id, i), address=o.address, amount=o.amount)
            for i, o in enumerate(tx.essence.outputs)
            if o.address in self._keys.owners
        ]
        return await self._db(self._state.confirm, transfer.key_hash, index, own, _now_ms())

    async def _failed(self, transfer: Transfer, reason: str) -> Transfer:
        """Record the failure, then refresh the inputs' addresses: some inputs were spent
        elsewhere, the others are free again."""
        transfer = await self._db(self._state.fail, transfer.key_hash, reason, _now_ms())
        await self._load_owners()
        addresses = {
            c.address for c in await self._db(self._state.coins) if c.output_id in transfer.inputs
        }
        with contextlib.suppress(ClientError):
            found = await self._query_outputs(sorted(addresses))
            for address, answer in found.items():
                coins = [
                    Coin(output_id=o.output_id, address=o.address, amount=o.amount)
                    for o in answer.outputs
                ]
                await self._db(
                    self._state.replace_outputs, [address], coins, answer.ledger_index, _now_ms()
                )
        return transfer

    # -- housekeeping ------------------------------------------------------------------------

    async def settle(self) -> list[Transfer]:
        """Bring every unfinished transfer of the state (any process's) up to date with the
        ledger, without attaching anything: confirm or fail what milestones decided, expire
        transfers `expire_after` milestones past their last attachment, and fail transfers
        never submitted whose sender has been silent for `abandon_after_s`. Returns the
        transfers that changed."""
        info = await self._info()
        now = _now_ms()
        silent_since = now - int(self._config.abandon_after_s * 1000)
        pending = (TransferStatus.SIGNED, TransferStatus.SUBMITTED, TransferStatus.EXPIRED)
        changed = []
        for transfer in await self._db(self._state.transfers, pending):
            if transfer.status is TransferStatus.SIGNED:
                after = await self._db(self._state.abandon, transfer.key_hash, silent_since, now)
            else:
                verdict = await self._verdict(transfer)
                if verdict.confirmed_index is not None:
                    after = await self._confirmed(transfer, verdict.confirmed_index)
                elif verdict.conflict is not None:
                    after = await self._failed(transfer, verdict.conflict)
                elif (
                    transfer.status is TransferStatus.SUBMITTED
                    and transfer.last_cmi is not None
                    and info.confirmed_milestone_index - transfer.last_cmi
                    >= self._config.expire_after
                ):
                    after = await self._db(self._state.expire, transfer.key_hash, now)
                else:
                    continue
            if after.status is not transfer.status:
                changed.append(after)
        return changed
