"""Paying back a prepaid session's unused rest, on the ledger.

A prepaid driver paid up front through a one-way channel (`payment.ChargePayments.prepay`); the
session stops once the energy paid for is delivered, but it may end sooner, and what was paid
beyond the bill is the driver's. A one-way channel carries money only to the CPO, so the CPO
pays the rest back with a ledger transfer from its own wallet to the address of the channel's
payer key (the key that signed the prepayment, so the driver holds it). `PrepaidRefunds` is a
`Csms.on_bill` hook and a retry loop over the store's owed refunds: the store writes
`paid - bill` as an owed refund in the bill's own transaction (`CsmsStore.bill`), and this pays
each owed row from the CPO's wallet (`refund_attempts.RefundWallet`) with the idempotency key
`refund_attempts.session_refund_key`, then deletes it once the ledger took the
transfer. A crash, a node that is down or a transfer not confirmed in time leaves the row owed;
`retrying` pays it at start and then every `interval_s`, and paying it again pays the rest once
(`Wallet.send`'s idempotency: a refund's amount is fixed at its first try,
`RefundRows.claim_refund`). Each failed try is counted, and each round reads the refunds tried
least often first, so refunds that fail again and again never keep newer ones out of the
bounded batch (`RefundRows.owed_refunds`).

A transfer that failed for good stays failed under its key (`Wallet.send` raises
`TransferFailedError` at every repeat). If the wallet's record shows it can never apply
(conflicting by a milestone's verdict, or never handed to a node:
`refund_attempts.never_applies`), the refund moves to its next attempt, sent at the same amount
under a key of its own (`refund_attempts.attempt_key`: the key above for attempt 0, with
`ATTEMPT_KEY || N /` before it after), in one statement that only the payer who saw the
failure first makes (`RefundRows.next_refund_attempt`). After `refund_attempts.MAX_ATTEMPTS`
attempts, or if the failed transfer may still apply (abandoned by its owner after it was
attached), the refund is `held`: kept at its amount, logged at error level once, and never read
by a round again (paying it is the operator's). So the money leaves at most once.

A rest below the ledger's smallest output (`min_amount`) cannot be an output of its own; it is
kept as the token's prepaid credit for its next session instead, once per session, or, if the
token was unbound or rebound meanwhile, owed to the channel's payer with the channel's other
small amounts (`RefundRows.refund_as_credit`). Only a rest never tried is: one whose amount is
fixed (tried at a lower minimum, or left `maybe_sent` by an older version: it may have been
sent) is sent again as it is (`Wallet.send` resumes a transfer recorded under its key whatever
the minimum is now); one the wallet refuses for its amount was never recorded, so never sent,
and is owed again as never tried (`RefundRows.unclaim_refund`).

A token the operator unbinds while it still holds a prepaid amount (`ChargePayments.unbind`)
leaves that amount owed to its channel's payer (`RefundRows.owed_token_refunds`, written with
the unbinding); `retry` pays those too, with the key `unbind_refund_key` (channel, token, refund
id: refund ids repeat across databases that may share a wallet; its attempts as above). Amounts
below `min_amount` owed to one channel are paid as soon as what the channel is owed reaches it:
with the next refund to that channel, or merged into one row once their total does (see
`refund_rows`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.errors import TangleError
from tangle.protocol.ids import ChannelId
from tangle.protocol.transaction import address_of
from wallet.errors import AmountError, TransferFailedError, WalletError

from ..errors import PaymentError
from .refund_attempts import REFUND_KEY as REFUND_KEY
from .refund_attempts import UNBIND_REFUND_KEY as UNBIND_REFUND_KEY
from .refund_attempts import (
    attempt_key,
    never_applies,
    next_attempt,
    session_refund_key,
    unbind_refund_key,
)
from .refund_rows import MAX_OWED_BATCH

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from tangle.protocol.ids import Address

    from .payment import ChargePayments
    from .refund_attempts import Claim, RefundWallet
    from .store import Bill

LOG: Final = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class PrepaidRefunds:
    """Pays each prepaid session's unused rest back (see the module docstring)."""

    payments: ChargePayments
    wallet: RefundWallet
    """The CPO's wallet the refunds are paid from (`refund_wallet.LedgerWallet`)."""
    min_amount: int = 1
    """The ledger's smallest output: a smaller rest is kept as the token's prepaid credit, or
    paid with the channel's other refunds once they reach it."""
    interval_s: float = 60.0
    """How often `retrying` pays the refunds still owed."""
    batch: int = MAX_OWED_BATCH
    """The most refunds of each kind (sessions', channels') one `retry` round reads."""

    async def __call__(self, bill: Bill) -> None:
        """Pay `bill`'s session rest back, if it is owed (a failure is logged and the refund
        stays owed: `retry` pays it later, with the same key unless its transfer failed for
        good)."""
        await self.pay((bill.charge_point, bill.transaction_id))

    async def pay(self, key: tuple[str, str]) -> bool:
        """Pay session `key`'s owed refund (or keep it as credit) and mark it done; False if
        nothing was owed or the payment failed (logged; it stays owed)."""
        store = self.payments.csms.store
        refunds = store.refunds
        name = f"{key[0]}/{key[1]}"
        try:
            owed = await refunds.owed_refund(key)
            binding = await store.binding(key)
            if owed is None or binding is None or binding.channel_id is None:
                return False
            if owed[0] < self.min_amount and not owed[1]:  # never tried: kept as credit
                if binding.id_token is None:
                    return False
                return await refunds.refund_as_credit(key, binding.id_token, binding.channel_id)
            channel = await self.payments.cashier.open(ChannelId(binding.channel_id))
            to = address_of(channel.terms.payer)
            claim = await refunds.claim_refund(key, binding.channel_id, self.min_amount)
            if claim is None:  # another payer paid it meanwhile
                return False
            await self._send(
                to,
                claim,
                session_refund_key(key),
                functools.partial(refunds.still_sending, key, claim.attempt),
                functools.partial(refunds.unclaim_refund, key),
                functools.partial(refunds.next_refund_attempt, key),
            )
            await refunds.refund_paid(key)
        except (PaymentError, WalletError, TangleError, OSError, sqlite3.Error) as e:
            LOG.warning("refund of %s not paid: %r", name, e)
            with contextlib.suppress(sqlite3.Error):  # counted: tried less often than new ones
                await refunds.refund_failed(key)
            return False
        LOG.info("refunded %d to %s for %s", claim.amount, to.hex(), name)
        return True

    async def retry(self) -> int:
        """Pay every refund still owed (one bounded batch of sessions' and one of the amounts
        owed to channels, after merging each channel's small ones: `RefundRows.merge_small`);
        returns how many were paid."""
        store = self.payments.csms.store
        owed = await store.refunds.owed_refunds(self.batch)
        paid = sum([await self.pay(key) for key, _ in owed])
        await store.refunds.merge_small(self.min_amount)
        unbound = await store.refunds.owed_token_refunds(self.min_amount, self.batch)
        return paid + sum([await self.pay_unbound(*refund[:3]) for refund in unbound])

    async def pay_unbound(self, refund_id: int, channel_id: bytes, id_token: str) -> bool:
        """Pay what refund `refund_id` owes back to its channel's payer (an unbound token's
        prepaid amount, a raced prepayment, merged small amounts), with the channel's small
        owed amounts (`RefundRows.claim_token_refund`), and forget it; False if nothing was
        owed or the payment failed (logged; it stays owed)."""
        name = f"unbound token refund {refund_id}"
        refunds = self.payments.csms.store.refunds
        try:
            channel = await self.payments.cashier.open(ChannelId(channel_id))
            to = address_of(channel.terms.payer)
            claim = await refunds.claim_token_refund(refund_id, self.min_amount)
            if claim is None:
                return False
            await self._send(
                to,
                claim,
                unbind_refund_key(channel_id, id_token, refund_id),
                functools.partial(refunds.still_sending, refund_id, claim.attempt),
                functools.partial(refunds.unclaim_token_refund, refund_id),
                functools.partial(refunds.next_token_refund_attempt, refund_id),
            )
            await refunds.token_refund_paid(refund_id)
        except (PaymentError, WalletError, TangleError, OSError, sqlite3.Error) as e:
            LOG.warning("%s not paid: %r", name, e)
            with contextlib.suppress(sqlite3.Error):  # counted: tried less often than new ones
                await refunds.token_refund_failed(refund_id)
            return False
        LOG.info("refunded %d to %s for %s", claim.amount, to.hex(), name)
        return True

    async def _send(
        self,
        to: Address,
        claim: Claim,
        key: bytes,
        claimed: Callable[[], Awaitable[bool]],
        unclaim: Callable[[], Awaitable[None]],
        move: Callable[[int, int | None], Awaitable[bool]],
    ) -> None:
        """Send `claim` to `to` under the key of its attempt (`attempt_key` of the refund's `key`),
        attached only while `claimed()` (the row is still `sending` at the claim's attempt) once its
        transfer is recorded (`LedgerWallet`). The wallet refused its amount: nothing was recorded
        under the key, so it was never sent, and it is owed again as never tried (`unclaim`). Its
        transfer failed for good: the refund moves to its next attempt, or is held (`move`,
        `next_attempt`). Either error is raised on."""
        sent_key = attempt_key(key, claim.attempt)
        try:
            await self.wallet.send(to, claim.amount, sent_key, claimed)
        except AmountError:  # nothing recorded under its key (`Wallet.send`): never sent
            await unclaim()
            raise
        except TransferFailedError:
            never = never_applies(await self.wallet.transfer(sent_key))
            then = next_attempt(claim.attempt, never)
            if not await move(claim.attempt, then):  # another payer moved it first
                raise
            if then is None:
                why = "its last attempt" if never else "it may still apply: abandoned, attached"
                LOG.error(
                    "refund of %d held: its transfer under %r failed for good (%s); not sent "
                    "again, the operator pays it",
                    claim.amount,
                    sent_key,
                    why,
                )
            else:
                LOG.warning(
                    "refund of %d under %r failed for good: attempt %d next",
                    claim.amount,
                    sent_key,
                    then,
                )
            raise

    @contextlib.asynccontextmanager
    async def retrying(self) -> AsyncIterator[None]:
        """Within: pay the owed refunds now and then every `interval_s`."""

        async def loop() -> None:
            while True:
                try:
                    await self.retry()
                except sqlite3.Error as e:  # the store failed this round: the rows stay owed
                    LOG.warning("owed refunds not read: %r", e)
                await asyncio.sleep(self.interval_s)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
