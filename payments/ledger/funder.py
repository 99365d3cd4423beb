"""Channels on the ledger, through a wallet: open, top up, and the closing transactions.

`LedgerFunder` is the real `ChannelFunder` (see `auth.py`): it funds a channel from a
`wallet.Wallet`'s coins, waits until a milestone confirms it, and reads the channel back from the
node, so the terms it returns are the ledger's. Every ledger step is an idempotent wallet
transfer (keyed by the channel and the step), so a device that crashes mid-open and calls again
gets the same channel, never a second one.

`close_with_proof`, `start_close` and `settle` submit the channel's closing transactions for the
party whose key is given; the watch service (`watch.py`) uses them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from tangle.protocol.codec import u64
from tangle.protocol.ids import Address, ChannelId, blake2b_256
from wallet import channel_tx
from wallet.records import TransferStatus

from ..channels.core import ChannelTerms
from ..errors import BelowMinimumOutputError, UnknownChannelError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tangle.protocol.channel import SignedBalanceProof
    from tangle.protocol.ids import OutputId, PublicKey
    from tangle.protocol.signature import Signer
    from tangle.protocol.transaction import Transaction
    from wallet import ChannelInfo, Wallet
    from wallet.records import Transfer

_REQUEST_DOMAIN = b"tanglepay/payments/funding/v1"
_IN_FLIGHT = frozenset({TransferStatus.SIGNED, TransferStatus.SUBMITTED, TransferStatus.EXPIRED})
"""A recorded open in one of these states is driven on under its own key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelPolicy:
    """The terms a funder asks for when it opens a channel."""

    challenge_period: int = 30
    """Milestones the payee has to answer a unilateral close (30 s at 1 s milestones)."""
    lifetime: int = 86_400
    """Milestones from opening to expiry (a day at 1 s milestones)."""
    bidirectional: bool = False
    """Open two-way channels."""


class LedgerFunder:
    """Opens and tops up the channels of one payer key with a wallet's coins."""

    def __init__(
        self,
        wallet: Wallet,
        payer: Signer,
        *,
        policy: ChannelPolicy | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self._wallet = wallet
        self._payer = payer
        self._policy = policy or ChannelPolicy()
        self._timeout_s = timeout_s

    async def open(self, payee: PublicKey, deposit: int) -> ChannelTerms:
        """Lock `deposit` in a new channel to `payee`; its terms once a milestone confirmed it.
        `BelowMinimumOutputError` before anything is spent if `deposit` is below the network's
        `min_output_amount`."""
        info = await self._wallet.client.info()
        if deposit < info.min_output_amount:
            raise BelowMinimumOutputError("deposit", deposit, info.min_output_amount)
        policy = self._policy
        expiry = info.confirmed_milestone_index + policy.lifetime

        def compose(
            funding: Sequence[tuple[OutputId, Signer]], change: tuple[Address, int] | None
        ) -> Transaction:
            return channel_tx.open_channel(
                network_id=info.network_id,
                funding=funding,
                payer=self._payer.public_key,
                payee=payee,
                deposit=deposit,
                challenge_period=policy.challenge_period,
                expiry=expiry,
                bidirectional=policy.bidirectional,
                change=change,
            )

        request = blake2b_256(_REQUEST_DOMAIN, b"open", self._payer.public_key, payee, u64(deposit))
        key = await self._open_key(request, info.network_id, info.confirmed_milestone_index)
        if isinstance(key, ChannelTerms):
            return key
        transfer = await self._wallet.pay_with(
            compose, deposit, request=request, idempotency_key=key, timeout_s=self._timeout_s
        )
        return await self._terms(ChannelId(transfer.recipient), info.network_id)

    async def _open_key(self, request: bytes, network_id: int, index: int) -> bytes | ChannelTerms:
        """The idempotency key of this open: the n-th open of these terms gets key n. A
        recorded open still in flight is resumed under its key; one whose channel is still
        open on the ledger is returned as it is (an open repeated after a crash gets the same
        channel); one that failed, or whose channel is closing or settled, makes way for n+1."""
        n = 0
        while True:
            key = b"channel-open:" + request + u64(n)
            recorded = await self._wallet.transfer(key)
            if recorded is None or recorded.status in _IN_FLIGHT:
                return key
            if recorded.status is TransferStatus.CONFIRMED:
                found = await self._wallet.client.channel(ChannelId(recorded.recipient))
                if found is not None and not found.output.is_closing(index + 1):
                    return ChannelTerms.from_output(network_id, found.output)
            n += 1

    async def top_up(self, terms: ChannelTerms, amount: int) -> ChannelTerms:
        """Add `amount` to the deposit (moving the expiry a lifetime ahead); the new terms.
        `BelowMinimumOutputError` before anything is spent if `amount` is below the network's
        `min_output_amount` (the wallet funds it as an output of its own)."""
        info = await self._wallet.client.info()
        if amount < info.min_output_amount:
            raise BelowMinimumOutputError("amount", amount, info.min_output_amount)
        found = await self.channel(terms.channel_id)
        expiry = max(found.output.expiry, info.confirmed_milestone_index + self._policy.lifetime)

        def compose(
            funding: Sequence[tuple[OutputId, Signer]], change: tuple[Address, int] | None
        ) -> Transaction:
            return channel_tx.top_up(
                network_id=info.network_id,
                channel_input=found.output_id,
                channel=found.output,
                payer=self._payer,
                funding=funding,
                amount=amount,
                expiry=expiry,
                change=change,
            )

        request = blake2b_256(_REQUEST_DOMAIN, b"top-up", found.output_id, u64(amount))
        await self._wallet.pay_with(
            compose,
            amount,
            request=request,
            idempotency_key=b"channel-top-up:" + request,
            timeout_s=self._timeout_s,
        )
        return await self._terms(terms.channel_id, info.network_id)

    async def channel(self, channel_id: ChannelId) -> ChannelInfo:
        """The channel's output on the ledger (`UnknownChannelError` once it is settled)."""
        return await channel_on_ledger(self._wallet, channel_id)

    async def _terms(self, channel_id: ChannelId, network_id: int) -> ChannelTerms:
        found = await self.channel(channel_id)
        return ChannelTerms.from_output(network_id, found.output)


async def channel_on_ledger(wallet: Wallet, channel_id: ChannelId) -> ChannelInfo:
    found = await wallet.client.channel(channel_id)
    if found is None:
        raise UnknownChannelError(channel_id)
    return found


async def close_with_proof(
    wallet: Wallet, payee: Signer, proof: SignedBalanceProof, *, timeout_s: float | None = None
) -> Transfer:
    """The payee of a one-way channel settles with its latest proof (at once, any time)."""
    build = partial(
        channel_tx.payee_close, network_id=proof.proof.network_id, payee=payee, proof=proof
    )
    return await _spend_channel(wallet, proof.proof.channel_id, "payee-close", build, timeout_s)


async def start_close(
    wallet: Wallet,
    signer: Signer,
    channel_id: ChannelId,
    network_id: int,
    proof: SignedBalanceProof | None = None,
    *,
    timeout_s: float | None = None,
) -> Transfer:
    """Start the challenge period (a two-way party may record its latest co-signed state)."""
    build = partial(channel_tx.start_close, network_id=network_id, signer=signer, proof=proof)
    return await _spend_channel(wallet, channel_id, "start-close", build, timeout_s)


async def challenge(
    wallet: Wallet, signer: Signer, proof: SignedBalanceProof, *, timeout_s: float | None = None
) -> Transfer:
    """Record a newer co-signed state of a closing two-way channel."""
    build = partial(
        channel_tx.challenge, network_id=proof.proof.network_id, signer=signer, proof=proof
    )
    return await _spend_channel(wallet, proof.proof.channel_id, "challenge", build, timeout_s)


async def settle(
    wallet: Wallet,
    signer: Signer,
    channel_id: ChannelId,
    network_id: int,
    *,
    timeout_s: float | None = None,
) -> Transfer:
    """Pay out the ledger's state once the challenge period is over."""
    build = partial(channel_tx.settle, network_id=network_id, signer=signer)
    return await _spend_channel(wallet, channel_id, "settle", build, timeout_s)


async def _spend_channel(
    wallet: Wallet,
    channel_id: ChannelId,
    step: str,
    build: Callable[..., Transaction],
    timeout_s: float | None,
) -> Transfer:
    """The body every close step shares: `build` the step's transaction on the channel's output
    as the ledger holds it now, and submit it under a key of the step and the transaction."""
    found = await channel_on_ledger(wallet, channel_id)
    tx = build(channel_input=found.output_id, channel=found.output)
    key = f"channel-{step}:{channel_id.hex()}:{tx.id.hex()}"
    return await wallet.submit(tx, idempotency_key=key, timeout_s=timeout_s)
