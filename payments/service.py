"""The payee's channels in one process, shared by every transport (TCP and HTTP).

`PayeeService` keeps one `PayeeChannel` core per channel, loaded from the `ChannelStore` on first
use, and makes its latest state durable before anything is acknowledged: `commit` saves a
snapshot of the channel (a group commit with every other save in flight) and returns the
sequence number that is now durable. The cores are synchronous, so a proof is checked and
adopted without any other task interleaving; concurrent transports on one channel are safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .channel import PayeeChannel
from .errors import (
    BalanceDecreasedError,
    ChannelClosedError,
    ChannelStateError,
    InsufficientDepositError,
    InvalidAmountError,
    InvalidProofError,
    PaymentError,
    ProtocolError,
    StaleProofError,
    UnknownChannelError,
    WrongChannelError,
)
from .state import ChannelState, Role
from .store import ChannelRecord
from .wire import RejectCode

if TYPE_CHECKING:
    from tangle.channel import SignedBalanceProof
    from tangle.ids import ChannelId

    from .channel import ChannelTerms
    from .store import ChannelStore


_CODES: tuple[tuple[type[PaymentError], RejectCode], ...] = (
    (ProtocolError, RejectCode.PROTOCOL),
    (UnknownChannelError, RejectCode.UNKNOWN_CHANNEL),
    (WrongChannelError, RejectCode.WRONG_CHANNEL),
    (InvalidProofError, RejectCode.INVALID_PROOF),
    (StaleProofError, RejectCode.STALE_PROOF),
    (BalanceDecreasedError, RejectCode.BALANCE_DECREASED),
    (InsufficientDepositError, RejectCode.INSUFFICIENT_DEPOSIT),
    (ChannelClosedError, RejectCode.CHANNEL_CLOSED),
    (ChannelStateError, RejectCode.CHANNEL_CLOSED),
    (InvalidAmountError, RejectCode.INVALID_AMOUNT),
)


def reject_code(error: PaymentError) -> RejectCode:
    """The `RejectCode` that tells the counterparty about `error`."""
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return RejectCode.INTERNAL


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """A payment the payee has made durable."""

    sequence: int
    """The durable sequence number (at least the payment's)."""
    payee_balance: int
    """The payee's balance in that state."""
    credited: int
    """What this payment newly credited."""


class PayeeService:
    """The payee's channel cores over one store (see the module docstring)."""

    __slots__ = ("_channels", "_store")

    def __init__(self, store: ChannelStore) -> None:
        self._store = store
        self._channels: dict[bytes, PayeeChannel] = {}

    @property
    def store(self) -> ChannelStore:
        return self._store

    async def open_channel(self, terms: ChannelTerms) -> PayeeChannel:
        """Start accepting payments on a confirmed channel (kept as it is if already known)."""
        try:
            return await self.channel(terms.channel_id)
        except UnknownChannelError:
            pass
        channel = PayeeChannel(terms)
        await self._store.save(self._record(channel))
        self._channels.setdefault(terms.channel_id, channel)
        return self._channels[terms.channel_id]

    async def channel(self, channel_id: ChannelId) -> PayeeChannel:
        """The core of `channel_id`; `UnknownChannelError` if the store does not hold it."""
        channel = self._channels.get(channel_id)
        if channel is not None:
            return channel
        record = await self._store.load(channel_id, Role.PAYEE)
        if record is None:
            raise UnknownChannelError(channel_id)
        channel = self._channels.setdefault(
            channel_id, PayeeChannel.restore(record.terms, record.latest, record.state)
        )
        return channel

    @staticmethod
    def _record(channel: PayeeChannel) -> ChannelRecord:
        return ChannelRecord(
            terms=channel.terms, role=Role.PAYEE, state=channel.state, latest=channel.latest
        )

    async def commit(self, channel: PayeeChannel) -> int:
        """Make the channel's current state durable; returns its now durable sequence."""
        record = self._record(channel)
        await self._store.save(record)
        return record.sequence

    async def receive(self, proof: SignedBalanceProof) -> Receipt:
        """Check one proof, adopt it and make it durable (the HTTP path)."""
        channel = await self.channel(proof.proof.channel_id)
        credited = channel.receive(proof)
        durable = await self.commit(channel)
        return Receipt(sequence=durable, payee_balance=channel.payee_balance, credited=credited)

    async def advance(self, channel_id: ChannelId, state: ChannelState) -> None:
        """Move a channel to `state` (closing, settled) and make it durable."""
        channel = await self.channel(channel_id)
        channel.advance(state)
        await self.commit(channel)

    async def top_up(self, channel_id: ChannelId, new_deposit: int) -> None:
        """Record a confirmed top-up and make it durable."""
        channel = await self.channel(channel_id)
        channel.top_up(new_deposit)
        await self.commit(channel)
