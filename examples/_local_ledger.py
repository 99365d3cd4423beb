"""A real UTXO ledger inside one process, for the examples' `--self-contained` mode.

Every transaction is checked as a node checks it at attach (`validate_transaction`) and confirmed
by a white-flag milestone of its own (`white_flag`, `apply_diff`), exactly the code a devnet node
runs; what is left out is the network around it: no gossip, no proof-of-work, no committee (one
process confirms everything at once). Channels are opened and topped up with the wallet's own
transaction builders (`wallet.channel_tx`), so the `ChannelTerms` the funder returns are read back
from a confirmed `ChannelOutput`, as `payments.funding.LedgerFunder` reads them from a node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from payments.channel import ChannelTerms
from tangle.channel import ChannelOutput
from tangle.ids import MessageId, OutputId
from tangle.ledger import Genesis, apply_diff, genesis_state, validate_transaction
from tangle.transaction import BasicOutput, address_of
from tangle.white_flag import ConeMessage, white_flag
from wallet import channel_tx

if TYPE_CHECKING:
    from tangle.ids import ChannelId, PublicKey
    from tangle.signature import Signer
    from tangle.transaction import Transaction

_ENTRY = MessageId(bytes(32))


class LocalLedger:
    """The ledger state of one network, moved on one milestone per transaction."""

    def __init__(
        self, network_id: int, holders: list[tuple[PublicKey, int]], min_output_amount: int = 1
    ) -> None:
        allocations = tuple((address_of(key), amount) for key, amount in holders)
        genesis = Genesis(
            network_id=network_id,
            supply=sum(amount for _, amount in allocations),
            allocations=allocations,
        )
        self.network_id = network_id
        self.min_output_amount = min_output_amount
        self.state = genesis_state(genesis)

    @property
    def index(self) -> int:
        """The last confirmed milestone."""
        return self.state.milestone_index

    def confirm(self, tx: Transaction) -> None:
        """Check `tx` as a node would and confirm it in the next milestone; raise if the
        milestone does not apply it."""
        validate_transaction(tx, self.network_id, self.min_output_amount)
        mid = MessageId((self.index + 1).to_bytes(32, "big"))
        cone = {mid: ConeMessage(parents=(_ENTRY,), transaction=tx, referenced=False)}
        result = white_flag(
            index=self.index + 1,
            parents=(mid,),
            lookup=cone.get,
            is_entry_point=lambda m: m == _ENTRY,
            unspent=self.state.unspent,
            is_spent=lambda oid: False,
        )
        if result.conflicts:
            raise RuntimeError(f"the ledger refused the transaction: {result.conflicts[0][1]!r}")
        apply_diff(self.state, result.diff)

    def coins(self, key: PublicKey) -> list[tuple[OutputId, int]]:
        """The basic outputs the key can spend."""
        address = address_of(key)
        return [
            (oid, out.amount)
            for oid, out in self.state.unspent.items()
            if isinstance(out, BasicOutput) and out.address == address
        ]

    def channel(self, channel_id: ChannelId) -> tuple[OutputId, ChannelOutput] | None:
        """A channel's unspent output, if it is on the ledger."""
        for oid, out in self.state.unspent.items():
            if isinstance(out, ChannelOutput) and out.channel_id == channel_id:
                return oid, out
        return None


class LocalFunder:
    """`payments.auth.ChannelFunder` on a `LocalLedger`: one payer key's coins fund channels."""

    def __init__(
        self,
        ledger: LocalLedger,
        payer: Signer,
        *,
        challenge_period: int = 30,
        lifetime: int = 10_000,
    ) -> None:
        self.ledger = ledger
        self.payer = payer
        self.challenge_period = challenge_period
        self.lifetime = lifetime
        self.opened = 0
        self.topped_up = 0

    def _funding(self, amount: int) -> tuple[list[tuple[OutputId, Signer]], int]:
        chosen: list[tuple[OutputId, Signer]] = []
        total = 0
        for oid, value in self.ledger.coins(self.payer.public_key):
            chosen.append((oid, self.payer))
            total += value
            if total == amount or total >= amount + self.ledger.min_output_amount:
                return chosen, total - amount
        raise RuntimeError(f"the payer holds too little to lock {amount}")

    async def open(self, payee: PublicKey, deposit: int) -> ChannelTerms:
        funding, change = self._funding(deposit)
        tx = channel_tx.open_channel(
            network_id=self.ledger.network_id,
            funding=funding,
            payer=self.payer.public_key,
            payee=payee,
            deposit=deposit,
            challenge_period=self.challenge_period,
            expiry=self.ledger.index + self.lifetime,
            change=None if change == 0 else (address_of(self.payer.public_key), change),
        )
        self.ledger.confirm(tx)
        output = tx.essence.outputs[0]
        if not isinstance(output, ChannelOutput):
            raise RuntimeError("open_channel put no channel at output 0")
        self.opened += 1
        return await self._terms(output.channel_id)

    async def top_up(self, terms: ChannelTerms, amount: int) -> ChannelTerms:
        found = self.ledger.channel(terms.channel_id)
        if found is None:
            raise RuntimeError("the channel is not on the ledger")
        funding, change = self._funding(amount)
        tx = channel_tx.top_up(
            network_id=self.ledger.network_id,
            channel_input=found[0],
            channel=found[1],
            payer=self.payer,
            funding=funding,
            amount=amount,
            change=None if change == 0 else (address_of(self.payer.public_key), change),
        )
        self.ledger.confirm(tx)
        self.topped_up += 1
        return await self._terms(terms.channel_id)

    async def _terms(self, channel_id: ChannelId) -> ChannelTerms:
        found = self.ledger.channel(channel_id)
        if found is None:
            raise RuntimeError("the channel is not on the ledger")
        return ChannelTerms.from_output(self.ledger.network_id, found[1])


class LocalDirectory:
    """`payments.cashier.ChannelDirectory` on a `LocalLedger`: the open channels it holds."""

    def __init__(self, ledger: LocalLedger) -> None:
        self.ledger = ledger

    async def lookup(self, channel_id: ChannelId) -> ChannelTerms | None:
        found = self.ledger.channel(channel_id)
        if found is None or found[1].is_closing(self.ledger.index):
            return None
        return ChannelTerms.from_output(self.ledger.network_id, found[1])
