"""The paywall's till: what a 402 payee adds to the shared `PayeeService`.

`Cashier.accept(proof, price)` is what a paywall or a metered service calls for each payment. The
channel state lives in the `PayeeService` that every transport of the process shares (so a
channel paid over TCP and over the paywall at once has one state); the cashier adds what a payee
that meets its payers over HTTP needs, in order:

1. the proof's network (`WrongChannelError`);
2. the ledger's milestone index, from the `ChannelDirectory`, for the service's expiry check;
3. a channel the service does not hold yet comes from the directory (the ledger): it must be an
   open one-way channel to this payee (`UnknownChannelError`) with terms the payee accepts
   (`UnacceptableChannelError`); it is only kept once a payment on it is accepted, so a refused
   one leaves no trace;
4. a proof that pays beyond the deposit known here, if its signature verifies (only a genuine
   proof makes the cashier ask the ledger), makes the cashier ask the directory for a top-up;
5. with a `DeviceStanding` (`standing.py`), a payer that is a device under quarantine
   (`QuarantinedPayerError`);
6. `PayeeService.receive` with the price: the core's checks, the expiry, the price
   (`InsufficientPaymentError`), the durable save, and only then the adoption.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import anyio

from ..channels.core import ChannelTerms, PayeeChannel
from ..errors import (
    InvalidProofError,
    QuarantinedPayerError,
    UnacceptableChannelError,
    UnknownChannelError,
    WrongChannelError,
)
from .offer import ChannelRequirements

if TYPE_CHECKING:
    from tangle.protocol.channel import SignedBalanceProof
    from tangle.protocol.ids import ChannelId, PublicKey
    from wallet.client import NodeClient

    from ..channels.service import Credit, PayeeService
    from .standing import DeviceStanding

INDEX_MAX_AGE_S = 0.5
"""How long `LedgerDirectory` reuses the ledger index it read (well under a milestone)."""


class ChannelDirectory(Protocol):
    """Where the payee learns of channels opened to it: the ledger (a node's API), in production
    `LedgerDirectory`."""

    async def lookup(self, channel_id: ChannelId) -> ChannelTerms | None:
        """The terms of the confirmed, open channel `channel_id` as the ledger has them now (the
        deposit after every confirmed top-up), or None if there is no such channel."""
        ...

    async def ledger_index(self) -> int:
        """The index of the latest confirmed milestone."""
        ...


class LedgerDirectory:
    """The `ChannelDirectory` of a real network: asks a node (`GET /api/v1/channels/{id}`,
    `GET /api/v1/info`; the index is reused for `INDEX_MAX_AGE_S`)."""

    __slots__ = ("_client", "_index", "_read_at", "network_id")

    def __init__(self, client: NodeClient, network_id: int) -> None:
        self._client = client
        self.network_id = network_id
        self._index = 0
        self._read_at = -INDEX_MAX_AGE_S

    async def lookup(self, channel_id: ChannelId) -> ChannelTerms | None:
        """The channel's terms if the ledger holds it and it is not closing."""
        found = await self._client.channel(channel_id)
        if found is None or found.output.is_closing(found.ledger_index):
            return None
        return ChannelTerms.from_output(self.network_id, found.output)

    async def ledger_index(self) -> int:
        """The node's confirmed milestone index (read at most every `INDEX_MAX_AGE_S`)."""
        now = anyio.current_time()
        if now - self._read_at >= INDEX_MAX_AGE_S:
            self._index = (await self._client.info()).confirmed_milestone_index
            self._read_at = now
        return self._index


class Cashier:
    """Accepts payments for one payee key on one network (see the module docstring)."""

    __slots__ = ("_devices", "_directory", "network_id", "payee", "requirements", "service")

    def __init__(
        self,
        *,
        payee: PublicKey,
        network_id: int,
        directory: ChannelDirectory,
        service: PayeeService,
        requirements: ChannelRequirements | None = None,
        devices: DeviceStanding | None = None,
    ) -> None:
        self.payee = payee
        self._devices = devices
        self.network_id = network_id
        self.requirements = requirements or ChannelRequirements()
        self.service = service
        self._directory = directory

    async def accept(self, signed: SignedBalanceProof, *, price: int) -> Credit:
        """Credit `signed` if it pays at least `price` more (see the module docstring)."""
        proof = signed.proof
        if proof.network_id != self.network_id:
            raise WrongChannelError("network_id", self.network_id, proof.network_id)
        self.service.observe_index(await self._directory.ledger_index())
        known: ChannelTerms | None = None
        try:
            held = await self._held(proof.channel_id)
        except UnknownChannelError:
            known = await self._lookup(proof.channel_id)
            payer = known.payer
        else:
            payer = held.terms.payer
            if proof.payee_balance > held.terms.deposit:
                if not signed.verify(held.terms.payer, self.payee, bidirectional=False):
                    raise InvalidProofError(proof.sequence, "the payer's signature does not verify")
                known = await self._directory.lookup(proof.channel_id)
        if self._devices is not None:
            until = await self._devices.quarantined_until(payer)
            if until is not None:
                raise QuarantinedPayerError(payer, until)
        return await self.service.receive(signed, price=price, known=known)

    async def open(self, channel_id: ChannelId) -> PayeeChannel:
        """The channel `channel_id` as this payee holds it (from the service) or else as the
        directory has it (`UnknownChannelError`, `UnacceptableChannelError` as for a payment);
        a channel from the directory is not kept until a payment on it is accepted."""
        try:
            return await self._held(channel_id)
        except UnknownChannelError:
            return PayeeChannel(await self._lookup(channel_id))

    async def _held(self, channel_id: ChannelId) -> PayeeChannel:
        """The service's channel, if it is one to this payee."""
        held = await self.service.channel(channel_id)
        if held.terms.payee != self.payee:
            raise UnknownChannelError(channel_id)
        return held

    async def _lookup(self, channel_id: ChannelId) -> ChannelTerms:
        """An acceptable one-way channel to this payee from the directory."""
        terms = await self._directory.lookup(channel_id)
        if terms is None or terms.channel_id != channel_id or terms.payee != self.payee:
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
        return terms
