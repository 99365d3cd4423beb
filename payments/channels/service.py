"""The payee's channels in one process: the one payee path behind every transport.

TCP (`tcp.serve_payee`), HTTP (`http.payee_app`) and the 402 paywall (`cashier.Cashier`) share
one `PayeeService`, so a channel served by several transports at once has one state. For each
payment, under the channel's lock:

1. the proof (or a run of proofs, `receive_batch`) is checked on a trial copy of the channel's
   core: the core's checks (`WrongChannelError`, `ChannelClosedError`, `StaleProofError`,
   `BalanceDecreasedError`, `InsufficientDepositError`, `InvalidProofError`), then that the
   channel can still be settled safely (`ChannelExpiringError`, see below), then, if asked, that
   it credits at least a price (`InsufficientPaymentError`);
2. the trial's state is saved (`ChannelStore.save`, or another `ChannelRecords`: a group commit
   with every other save in flight, fsync'd before it returns);
3. only then does the trial become the channel's core.

So what the service holds in memory is always what is on disk, a refused proof changes nothing,
and an answer (ACK, 200, receipt) sent after a call returned never runs ahead of the disk. The
save and the adoption are shielded from cancellation: a state that reached the disk is the state
in memory too.

**Expiry.** A payee settles a one-way channel with PAYEE_CLOSE, which the ledger takes until the
close is mature: `challenge_period` milestones after the expiry at the latest. The service takes
no payment once the ledger's milestone index is within `challenge_period` of the expiry
(`expiry - index <= challenge_period`), nor on a channel that is closing (its state). It learns
the index from its caller (`observe_index`, sans-I/O: the paywall feeds it from its directory, a
TCP operator from its node through `ledger_feed.run_ledger_feed`, which also applies top-ups and
closes); until it is told one it cannot check the expiry.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import anyio

from tangle.protocol.codec import U64_MAX

from ..errors import (
    BalanceDecreasedError,
    ChannelClosedError,
    ChannelExpiringError,
    ChannelStateError,
    InsufficientDepositError,
    InsufficientPaymentError,
    InvalidAmountError,
    InvalidProofError,
    InvalidTermsError,
    PaymentError,
    ProtocolError,
    StaleProofError,
    UnknownChannelError,
    WrongChannelError,
    WrongParityError,
)
from .core import PayeeChannel, check_uint
from .state import ChannelState, Role
from .store import ChannelRecord
from .wire import RejectCode

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from tangle.protocol.channel import SignedBalanceProof
    from tangle.protocol.ids import ChannelId

    from .core import ChannelTerms
    from .store import ChannelRecords


_CODES: tuple[tuple[type[PaymentError], RejectCode], ...] = (
    (ProtocolError, RejectCode.PROTOCOL),
    (UnknownChannelError, RejectCode.UNKNOWN_CHANNEL),
    (WrongChannelError, RejectCode.WRONG_CHANNEL),
    (InvalidProofError, RejectCode.INVALID_PROOF),
    (StaleProofError, RejectCode.STALE_PROOF),
    (BalanceDecreasedError, RejectCode.BALANCE_DECREASED),
    (InsufficientDepositError, RejectCode.INSUFFICIENT_DEPOSIT),
    (ChannelClosedError, RejectCode.CHANNEL_CLOSED),
    (ChannelExpiringError, RejectCode.CHANNEL_EXPIRING),
    (ChannelStateError, RejectCode.CHANNEL_CLOSED),
    (InvalidAmountError, RejectCode.INVALID_AMOUNT),
    (WrongParityError, RejectCode.INVALID_PROOF),
)


def reject_code(error: PaymentError) -> RejectCode:
    """The `RejectCode` that tells the counterparty about `error`."""
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return RejectCode.INTERNAL


@dataclass(frozen=True, slots=True, kw_only=True)
class Credit:
    """A payment the payee accepted and made durable (unsigned; the paywall's signed receipt
    is `payments.payperuse.receipt.Receipt`)."""

    proof: SignedBalanceProof
    """The accepted proof: the channel's latest state, durable at the payee."""
    credited: int
    """What it newly credited (its balance minus the one before)."""

    @property
    def sequence(self) -> int:
        return self.proof.proof.sequence

    @property
    def payee_balance(self) -> int:
        return self.proof.proof.payee_balance


@dataclass(frozen=True, slots=True, kw_only=True)
class Taken:
    """What `receive_batch` did with a run of proofs."""

    sequence: int
    """The channel's durable sequence number afterwards (acknowledge up to it)."""
    refused: tuple[tuple[int, PaymentError], ...]
    """The sequence number and error of each refused proof, in order."""


def _same_channel(held: ChannelTerms, known: ChannelTerms) -> bool:
    return (
        known.network_id == held.network_id
        and known.channel_id == held.channel_id
        and known.payer == held.payer
        and known.payee == held.payee
        and known.bidirectional == held.bidirectional
        and known.challenge_period == held.challenge_period
    )


class _Gate:
    """A channel's lock and the tasks holding or awaiting it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = anyio.Lock()
        self.users = 0


class PayeeService:
    """The payee's channel cores over one store (see the module docstring)."""

    __slots__ = ("_channels", "_index", "_locks", "_store")

    def __init__(self, store: ChannelRecords) -> None:
        self._store = store
        self._channels: dict[bytes, PayeeChannel] = {}
        self._locks: dict[bytes, _Gate] = {}
        self._index = 0

    @property
    def store(self) -> ChannelRecords:
        return self._store

    @property
    def index(self) -> int:
        """The highest ledger milestone index observed (0: none yet)."""
        return self._index

    def observe_index(self, index: int) -> None:
        """Learn the ledger's confirmed milestone index; the highest one seen counts."""
        check_uint("index", index, U64_MAX)
        self._index = max(self._index, index)

    def held(self, channel_id: ChannelId) -> PayeeChannel | None:
        """The channel's core if it is in memory (read it; change it only through the service)."""
        return self._channels.get(channel_id)

    async def channel(self, channel_id: ChannelId) -> PayeeChannel:
        """The channel's core, from memory or the store; `UnknownChannelError` if neither holds
        it. Read it; change it only through the service."""
        held = self._channels.get(channel_id)
        if held is not None:
            return held
        record = await self._store.load(channel_id, Role.PAYEE)
        if record is None:
            raise UnknownChannelError(channel_id)
        return self._channels.setdefault(
            channel_id, PayeeChannel.restore(record.terms, record.latest, record.state)
        )

    async def open_channel(self, terms: ChannelTerms) -> PayeeChannel:
        """Start accepting payments on a confirmed channel (kept as it is if already known)."""
        async with self._lock(terms.channel_id):
            try:
                return await self.channel(terms.channel_id)
            except UnknownChannelError:
                pass
            return await self._adopt(PayeeChannel(terms))

    async def refresh(self, known: ChannelTerms) -> PayeeChannel:
        """Record the ledger's current terms of a held channel: a confirmed top-up raises the
        deposit and may move the expiry later (`InvalidTermsError` for another channel's)."""
        async with self._lock(known.channel_id):
            trial = self._refreshed(await self.channel(known.channel_id), known)
            return await self._adopt(trial)

    async def advance(self, channel_id: ChannelId, state: ChannelState) -> PayeeChannel:
        """Move a channel to `state` (closing, settled) and make it durable."""
        async with self._lock(channel_id):
            trial = self._copy(await self.channel(channel_id))
            trial.advance(state)
            return await self._adopt(trial)

    async def receive(
        self, signed: SignedBalanceProof, *, price: int = 0, known: ChannelTerms | None = None
    ) -> Credit:
        """Check one proof, save it and adopt it (see the module docstring); it must credit at
        least `price`. `known`, the channel's terms as the ledger has them now, opens a channel
        the service does not hold yet and applies a confirmed top-up to the trial."""
        channel_id = signed.proof.channel_id
        async with self._lock(channel_id):
            trial = await self._trial(channel_id, known)
            credited = trial.receive(signed)
            self._check_settleable(trial.terms)
            if credited < price:
                raise InsufficientPaymentError(credited, price)
            await self._adopt(trial, credited)
        return Credit(proof=signed, credited=credited)

    async def receive_batch(
        self, channel_id: ChannelId, batch: Sequence[SignedBalanceProof]
    ) -> Taken:
        """Take a run of proofs of one channel (the TCP path): checked together, verifying only
        the newest signature (`PayeeChannel.receive_batch`); if the run is refused, one by one.
        The accepted ones are saved and adopted; the refused ones are reported."""
        async with self._lock(channel_id):
            held = await self.channel(channel_id)
            trial = self._copy(held)
            refused: list[tuple[int, PaymentError]] = []
            try:
                trial.receive_batch(batch)
                self._check_settleable(trial.terms)
            except PaymentError:
                trial = self._copy(held)
                for signed in batch:
                    try:
                        self._check_settleable(trial.terms)
                        trial.receive(signed)
                    except PaymentError as e:
                        refused.append((signed.proof.sequence, e))
            if trial.sequence > held.sequence:
                await self._adopt(trial, trial.payee_balance - held.payee_balance)
        return Taken(sequence=trial.sequence, refused=tuple(refused))

    # -- internals -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lock(self, channel_id: ChannelId) -> AsyncIterator[None]:
        """Hold the channel's lock. A lock is kept only while the service holds the channel or
        a task uses it: asking about unknown channel ids leaves nothing behind."""
        gate = self._locks.get(channel_id)
        if gate is None:
            gate = self._locks[channel_id] = _Gate()
        gate.users += 1
        try:
            async with gate.lock:
                yield
        finally:
            gate.users -= 1
            if not gate.users and channel_id not in self._channels:
                del self._locks[channel_id]

    async def _trial(self, channel_id: ChannelId, known: ChannelTerms | None) -> PayeeChannel:
        try:
            held = await self.channel(channel_id)
        except UnknownChannelError:
            if known is None or known.channel_id != channel_id:
                raise
            return PayeeChannel(known)
        return self._copy(held) if known is None else self._refreshed(held, known)

    @staticmethod
    def _copy(channel: PayeeChannel) -> PayeeChannel:
        return channel.copy()

    @staticmethod
    def _refreshed(held: PayeeChannel, known: ChannelTerms) -> PayeeChannel:
        if not _same_channel(held.terms, known):
            raise InvalidTermsError("known", "the ledger's channel has other parties or kind")
        terms = replace(
            held.terms,
            deposit=max(held.terms.deposit, known.deposit),
            expiry=max(held.terms.expiry, known.expiry),
        )
        return PayeeChannel.restore(terms, held.latest, held.state)

    def _check_settleable(self, terms: ChannelTerms) -> None:
        index = self._index
        if index and terms.expiry - index <= terms.challenge_period:
            raise ChannelExpiringError(index, terms.expiry, terms.challenge_period)

    async def _adopt(self, trial: PayeeChannel, credited: int = 0) -> PayeeChannel:
        """Save `trial` (with what its proof newly credited, for a store that counts it in the
        same commit: `ChannelRecords.save`), then hold it."""
        with anyio.CancelScope(shield=True):
            await self._store.save(ChannelRecord.of(trial, Role.PAYEE), credited)
            self._channels[trial.terms.channel_id] = trial
        return trial
