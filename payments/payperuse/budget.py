"""What a device's owner sets for pay-per-use: the spending `Budget`, the `FundingPolicy` of its
channels, and the `ChannelFunder` that opens and tops them up on the ledger
(`payments.ledger.funder.LedgerFunder` on a real network); and the funder steps of a payment
(`OpenChannel`, `TopUp`) with the means to run them from blocking code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar

import anyio
import anyio.from_thread

from tangle.protocol.codec import U64_MAX

from .metering import tariff_uint

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from tangle.protocol.ids import PublicKey

    from ..channels.core import ChannelTerms

    _FunderCoroutine: TypeAlias = Callable[[], Coroutine[Any, Any, ChannelTerms]]


class ChannelFunder(Protocol):
    """Opens and tops up channels on the ledger (`payments.ledger.funder` on a real network)."""

    async def open(self, payee: PublicKey, deposit: int) -> ChannelTerms:
        """Lock `deposit` in a new one-way channel to `payee`; return its terms once the ledger
        confirmed it."""
        ...

    async def top_up(self, terms: ChannelTerms, amount: int) -> ChannelTerms:
        """Add `amount` to the channel's deposit; return the new terms once confirmed."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """What the device's owner lets it spend."""

    total: int
    """The most all payments together may cost (base units)."""
    per_request: int
    """The most one request may cost."""

    def __post_init__(self) -> None:
        tariff_uint("Budget.total", self.total)
        tariff_uint("Budget.per_request", self.per_request)


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingPolicy:
    """How channels are funded."""

    deposit: int
    """The deposit of a new channel (raised to the payee's minimum if that is higher, up to
    `max_deposit`)."""
    top_up: int
    """How much a top-up adds (more if one payment needs more)."""
    low_water: int = 0
    """Top up when what is left after a payment would fall below this."""
    max_deposit: int = U64_MAX
    """The largest deposit a new channel may lock."""

    def __post_init__(self) -> None:
        tariff_uint("FundingPolicy.deposit", self.deposit, minimum=1)
        tariff_uint("FundingPolicy.top_up", self.top_up, minimum=1)
        tariff_uint("FundingPolicy.low_water", self.low_water)
        tariff_uint("FundingPolicy.max_deposit", self.max_deposit, minimum=self.deposit)


_NO_EVENT_LOOP: type[Exception] = getattr(anyio, "NoEventLoopError", RuntimeError)
"""What `anyio.from_thread.run` raises outside a worker thread (older anyio: a RuntimeError)."""
_R = TypeVar("_R")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenChannel:
    """A step of a payment: the funder opens a channel to `payee` with `deposit`."""

    payee: PublicKey
    """The payee."""
    deposit: int
    """The deposit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TopUp:
    """A step of a payment: the funder adds `amount` to the channel of `terms`."""

    terms: ChannelTerms
    """The channel."""
    amount: int
    """What to add."""


FunderCall = OpenChannel | TopUp
"""What a payment's steps ask of the funder; `PaymentAuth`'s flows run it, sync or async."""


def funder_call(funder: ChannelFunder, step: FunderCall) -> _FunderCoroutine:
    """The funder's coroutine function for one step of a payment."""
    if isinstance(step, OpenChannel):
        return lambda: funder.open(step.payee, step.deposit)
    return lambda: funder.top_up(step.terms, step.amount)


def run_blocking(call: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine (the funder's, the store's) from sync code: in the caller's event loop
    from one of its anyio worker threads, else in a fresh one."""
    try:
        return anyio.from_thread.run(call)
    except _NO_EVENT_LOOP:
        return anyio.run(call)
