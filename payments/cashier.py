"""The payee's till: accepts balance proofs for a price, durably, on any number of channels.

`Cashier.accept(proof, price)` is what a paywall or a metered service calls for each payment. In
order: the proof's network (`WrongChannelError`); the channel, from memory, the store or else the
`ChannelDirectory` (the ledger), which must be an open one-way channel to this payee
(`UnknownChannelError`) with terms the payee accepts (`UnacceptableChannelError`); if the proof
pays beyond the deposit known here, the directory is asked again for a top-up; then the channel
core's checks (`StaleProofError`, `BalanceDecreasedError`, `InsufficientDepositError`,
`InvalidProofError`, `ChannelClosedError`); then the price (`InsufficientPaymentError`). Only
when all pass is the new state saved (`ChannelStore.save` returns after the fsync'd commit) and
adopted; a refused proof changes nothing, in memory or on disk.

Proofs of one channel are taken one at a time (a lock per channel), so two requests racing with
the same proof are credited once. The save and the adoption are shielded from cancellation: a
proof whose state reached the disk is always the state in memory too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import anyio

from .billing_errors import InsufficientPaymentError, UnacceptableChannelError
from .channel import ChannelTerms, PayeeChannel
from .errors import InvalidProofError, UnknownChannelError, WrongChannelError
from .offer import ChannelRequirements
from .state import ChannelState, Role
from .store import ChannelRecord

if TYPE_CHECKING:
    from tangle.channel import SignedBalanceProof
    from tangle.ids import ChannelId, PublicKey
    from wallet.client import NodeClient

    from .store import ChannelStore


class ChannelDirectory(Protocol):
    """Where the payee learns of channels opened to it: the ledger (a node's API), in production
    the ledger-backed `payments.funding` module."""

    async def lookup(self, channel_id: ChannelId) -> ChannelTerms | None:
        """The terms of the confirmed, open channel `channel_id` as the ledger has them now (the
        deposit after every confirmed top-up), or None if there is no such channel."""
        ...


class LedgerDirectory:
    """The `ChannelDirectory` of a real network: asks a node (`GET /api/v1/channels/{id}`)."""

    __slots__ = ("_client", "network_id")

    def __init__(self, client: NodeClient, network_id: int) -> None:
        self._client = client
        self.network_id = network_id

    async def lookup(self, channel_id: ChannelId) -> ChannelTerms | None:
        """The channel's terms if the ledger holds it and it is not closing."""
        found = await self._client.channel(channel_id)
        if found is None or found.output.is_closing(found.ledger_index):
            return None
        return ChannelTerms.from_output(self.network_id, found.output)


@dataclass(frozen=True, slots=True, kw_only=True)
class Credit:
    """A payment the cashier accepted and saved."""

    proof: SignedBalanceProof
    """The proof, now the channel's latest."""
    credited: int
    """What it newly credited (its balance minus the one before)."""
    terms: ChannelTerms
    """The channel's terms (with the deposit after any top-up)."""


class Cashier:
    """Accepts payments for one payee key on one network (see the module docstring)."""

    __slots__ = (
        "_channels",
        "_directory",
        "_locks",
        "_store",
        "network_id",
        "payee",
        "requirements",
    )

    def __init__(
        self,
        *,
        payee: PublicKey,
        network_id: int,
        directory: ChannelDirectory,
        store: ChannelStore,
        requirements: ChannelRequirements | None = None,
    ) -> None:
        self.payee = payee
        self.network_id = network_id
        self.requirements = requirements or ChannelRequirements()
        self._directory = directory
        self._store = store
        self._channels: dict[bytes, PayeeChannel] = {}
        self._locks: dict[bytes, anyio.Lock] = {}

    def channel(self, channel_id: ChannelId) -> PayeeChannel | None:
        """The channel as this cashier holds it in memory, if it has been used."""
        return self._channels.get(channel_id)

    async def accept(self, signed: SignedBalanceProof, *, price: int) -> Credit:
        """Credit `signed` if it pays at least `price` more (see the module docstring)."""
        proof = signed.proof
        if proof.network_id != self.network_id:
            raise WrongChannelError("network_id", self.network_id, proof.network_id)
        lock = self._locks.setdefault(proof.channel_id, anyio.Lock())
        async with lock:
            channel = await self.open(proof.channel_id)
            trial = PayeeChannel.restore(channel.terms, channel.latest, channel.state)
            if proof.payee_balance > trial.terms.deposit:
                # Only a genuine proof may make the cashier ask the ledger again.
                if not signed.verify(trial.terms.payer, self.payee, bidirectional=False):
                    raise InvalidProofError(proof.sequence, "the payer's signature does not verify")
                await self._top_up(trial)
            credited = trial.receive(signed)
            if credited < price:
                raise InsufficientPaymentError(credited, price)
            record = ChannelRecord(
                terms=trial.terms, role=Role.PAYEE, state=trial.state, latest=trial.latest
            )
            with anyio.CancelScope(shield=True):
                await self._store.save(record)
                self._channels[proof.channel_id] = trial
        return Credit(proof=signed, credited=credited, terms=trial.terms)

    async def open(self, channel_id: ChannelId) -> PayeeChannel:
        """The channel `channel_id` as this payee holds it: from memory, the store, or else the
        directory (`UnknownChannelError`, `UnacceptableChannelError` as for a payment). Only an
        accepted payment puts a channel in memory, so a refused one leaves no trace."""
        cached = self._channels.get(channel_id)
        if cached is not None:
            return cached
        record = await self._store.load(channel_id, Role.PAYEE)
        if record is not None:
            channel = PayeeChannel.restore(record.terms, record.latest, record.state)
        else:
            terms = await self._directory.lookup(channel_id)
            if terms is None:
                raise UnknownChannelError(channel_id)
            self._check_terms(channel_id, terms)
            channel = PayeeChannel(terms, state=ChannelState.OPEN)
        return channel

    def _check_terms(self, channel_id: ChannelId, terms: ChannelTerms) -> None:
        """Refuse a channel that is not an acceptable one-way channel to this payee."""
        if terms.channel_id != channel_id or terms.payee != self.payee:
            raise UnknownChannelError(channel_id)
        if terms.network_id != self.network_id:
            raise WrongChannelError("network_id", self.network_id, terms.network_id)
        if terms.bidirectional:
            raise UnacceptableChannelError("a two-way channel; this payee takes one-way only")
        if terms.deposit < self.requirements.min_deposit:
            raise UnacceptableChannelError(
                f"deposit {terms.deposit} is below {self.requirements.min_deposit}"
            )
        if terms.challenge_period < self.requirements.min_challenge_period:
            raise UnacceptableChannelError(
                f"challenge period {terms.challenge_period} is below "
                f"{self.requirements.min_challenge_period}"
            )

    async def _top_up(self, channel: PayeeChannel) -> None:
        """Apply a confirmed top-up to `channel` (a trial copy) if the ledger has one."""
        current = channel.terms
        fresh = await self._directory.lookup(current.channel_id)
        if fresh is None or fresh.deposit <= current.deposit:
            return
        same = (
            fresh.channel_id == current.channel_id
            and fresh.payer == current.payer
            and fresh.payee == current.payee
            and fresh.network_id == current.network_id
            and fresh.bidirectional == current.bidirectional
        )
        if not same:
            raise UnacceptableChannelError("the ledger's channel changed parties or kind")
        channel.top_up(fresh.deposit)
