"""Paying back a prepaid session's unused rest, on the ledger.

A prepaid driver paid up front through a one-way channel (`payment.ChargePayments.prepay`); the
session stops once the energy paid for is delivered, but it may end sooner, and what was paid
beyond the bill is the driver's. A one-way channel carries money only to the CPO, so the CPO
pays the rest back with a ledger transfer from its own wallet to the address of the channel's
payer key (the key that signed the prepayment, so the driver holds it). `PrepaidRefunds` is a
`Csms.on_bill` hook: for each billed prepaid session it sends `paid - bill` with the idempotency
key `REFUND_KEY || charge point / transaction id`, so calling it again for the same bill (a
retry after a node failure) pays the rest once (`Wallet.send`'s idempotency). A rest below the
ledger's smallest output (`min_amount`) cannot be an output of its own; it is kept as the
token's prepaid credit for its next session instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.errors import TangleError
from tangle.protocol.ids import ChannelId
from tangle.protocol.transaction import address_of
from wallet.errors import WalletError

from ..errors import PaymentError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from tangle.protocol.ids import Address

    from .payment import ChargePayments
    from .store import Bill

    Sender = Callable[[Address, int, bytes], Awaitable[object]]
    """Pays (address, amount) with an idempotency key; returns once the ledger took it."""

REFUND_KEY: Final = b"tanglepay/charging/refund/"
LOG: Final = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class PrepaidRefunds:
    """Pays each prepaid session's unused rest back (see the module docstring)."""

    payments: ChargePayments
    send: Sender
    min_amount: int = 1
    """The ledger's smallest output: a smaller rest stays as the token's prepaid credit."""

    async def rest_of(self, bill: Bill) -> tuple[Address, int] | None:
        """Where and how much a prepaid session's rest goes, None if nothing is owed back."""
        key = (bill.charge_point, bill.transaction_id)
        binding = await self.payments.csms.store.binding(key)
        if binding is None or binding.channel_id is None or binding.limits.energy_wh is None:
            return None  # not a prepaid session
        rest = binding.paid - bill.amount
        if rest <= 0:
            return None
        channel = await self.payments.cashier.open(ChannelId(binding.channel_id))
        return address_of(channel.terms.payer), rest

    async def __call__(self, bill: Bill) -> None:
        """Pay `bill`'s session rest back (a failure is logged; the bill stands, and calling
        this again sends the refund with the same key)."""
        key = f"{bill.charge_point}/{bill.transaction_id}"
        try:
            owed = await self.rest_of(bill)
            if owed is None:
                return
            to, rest = owed
            if rest < self.min_amount:
                await self._keep_as_credit(bill, rest)
                return
            await self.send(to, rest, REFUND_KEY + key.encode())
            LOG.info("refunded %d to %s for %s", rest, to.hex(), key)
        except (PaymentError, WalletError, TangleError) as e:
            LOG.warning("refund of %s not paid: %r", key, e)

    async def _keep_as_credit(self, bill: Bill, rest: int) -> None:
        store = self.payments.csms.store
        binding = await store.binding((bill.charge_point, bill.transaction_id))
        if binding is None or binding.id_token is None or binding.channel_id is None:
            return
        bound = await store.token(binding.id_token)
        credit = bound[1] if bound is not None and bound[0] == binding.channel_id else 0
        await store.save_token(binding.id_token, binding.channel_id, credit + rest)
