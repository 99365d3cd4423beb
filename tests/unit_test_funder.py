"""FOR UNIT TESTS ONLY: a channel funder and directory that hand out valid `ChannelTerms` without
any ledger. Nothing is locked, signed or confirmed; it only lets the paywall, the auth flow and
the metering tests run without a network. Real code uses the ledger-backed `payments.ledger.funder`
(the examples run on a devnet of their own, `examples/_devnet.py`)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from payments.channels.core import ChannelTerms
from tangle.protocol.ids import ChannelId, blake2b_256

if TYPE_CHECKING:
    from tangle.protocol.ids import PublicKey


class UnitTestOnlyFunder:
    """Implements `payments.payperuse.auth.ChannelFunder` and
    `payments.payperuse.cashier.ChannelDirectory` from a dict. FOR UNIT TESTS ONLY (see the module
    docstring)."""

    def __init__(
        self, *, network_id: int, payer: PublicKey, challenge_period: int = 10, expiry: int = 10**6
    ) -> None:
        self.network_id = network_id
        self.payer = payer
        self.challenge_period = challenge_period
        self.expiry = expiry
        self.channels: dict[bytes, ChannelTerms] = {}
        self.opens: list[tuple[PublicKey, int]] = []
        self.top_ups: list[tuple[ChannelId, int]] = []
        self.lookups = 0
        self.index = 1
        """The ledger index `ledger_index` reports."""

    async def open(self, payee: PublicKey, deposit: int) -> ChannelTerms:
        """Like `payments.ledger.funder.LedgerFunder`, idempotent: asked again for the same payee
        and deposit, it returns that channel (as it is now), not a second one."""
        channel_id = ChannelId(blake2b_256(b"unit-test-channel", payee, deposit.to_bytes(8)))
        if channel_id in self.channels:
            return self.channels[channel_id]
        terms = ChannelTerms(
            network_id=self.network_id,
            channel_id=channel_id,
            payer=self.payer,
            payee=payee,
            deposit=deposit,
            bidirectional=False,
            challenge_period=self.challenge_period,
            expiry=self.expiry,
        )
        self.opens.append((payee, deposit))
        self.channels[channel_id] = terms
        return terms

    async def top_up(self, terms: ChannelTerms, amount: int) -> ChannelTerms:
        current = self.channels[terms.channel_id]
        topped = replace(current, deposit=current.deposit + amount)
        self.top_ups.append((terms.channel_id, amount))
        self.channels[terms.channel_id] = topped
        return topped

    async def lookup(self, channel_id: ChannelId) -> ChannelTerms | None:
        self.lookups += 1
        return self.channels.get(channel_id)

    async def ledger_index(self) -> int:
        return self.index
