"""Choosing which unspent outputs pay a transfer: a pure function, no I/O.

Rules every selection keeps (tested as hypothesis properties):

- it never overspends and conserves amounts exactly: `sum(inputs) == amount + change`;
- `change` is 0 or at least `min_output` (the network's dust deposit): a change output below it
  would be refused by every node, and folding it into the payment would pay the recipient more
  than asked. Dust change is avoided by choosing other or more inputs; if no choice avoids it,
  `InsufficientFundsError`;
- at most `max_inputs` inputs (128, the protocol's limit);
- few inputs: one output if one will do (an exact match first, then the smallest output that
  leaves a valid change), otherwise the fewest largest outputs that work, with the last of them
  swapped for the smallest one that still works. The result never has more inputs than the
  shortest largest-first prefix that pays without dust.

Ties between equal amounts break by output id, so a selection is reproducible.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tangle.errors import InvalidFieldError
from tangle.protocol.codec import U64_MAX, require_uint
from tangle.protocol.transaction import MAX_INPUTS

from .errors import AmountError, InputLimitError, InsufficientFundsError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from tangle.protocol.ids import Address, OutputId


@dataclass(frozen=True, slots=True, kw_only=True)
class Coin:
    """An unspent output the wallet may spend."""

    output_id: OutputId
    """The output."""
    address: Address
    """Where it is locked (which key signs for it)."""
    amount: int
    """Base units."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The inputs of a transfer and what comes back as change."""

    inputs: tuple[Coin, ...]
    """The outputs to spend, largest first."""
    amount: int
    """What the recipient gets."""
    change: int
    """What returns to the wallet: 0 (no change output) or at least the minimum output."""

    @property
    def total(self) -> int:
        return sum(coin.amount for coin in self.inputs)


def _ordered(coins: Iterable[Coin]) -> list[Coin]:
    return sorted(coins, key=lambda c: (-c.amount, c.output_id))


def _pays(total: int, amount: int, min_output: int) -> bool:
    """Whether inputs worth `total` pay `amount` with a change of 0 or >= `min_output`."""
    return total == amount or total - amount >= min_output


def require_amount(amount: int, minimum: int) -> None:
    """Raise `AmountError` unless `amount` can be an output: an integer from `minimum` (the
    network's `min_output_amount`) to U64_MAX (tangle's `require_uint`, in the wallet's tree)."""
    try:
        require_uint("amount", amount, U64_MAX, minimum)
    except InvalidFieldError:
        raise AmountError(amount, minimum) from None


def select_coins(
    coins: Sequence[Coin], amount: int, *, min_output: int, max_inputs: int = MAX_INPUTS
) -> Selection:
    """The inputs that pay `amount`, by the rules of the module docstring."""
    if min_output < 1:
        raise AmountError(amount, min_output)
    require_amount(amount, min_output)
    if not 1 <= max_inputs <= MAX_INPUTS:
        raise InputLimitError(max_inputs, MAX_INPUTS)
    ordered = _ordered(coins)
    available = sum(c.amount for c in ordered)
    if available < amount:
        raise InsufficientFundsError(amount, available, min_output=min_output)
    single = _single(ordered, amount, min_output)
    if single is not None:
        return Selection(inputs=(single,), amount=amount, change=single.amount - amount)
    prefix = list(itertools.accumulate(c.amount for c in ordered))
    fewest = next(k for k, total in enumerate(prefix, start=1) if total >= amount)
    for count in range(max(fewest, 2), min(len(ordered), max_inputs) + 1):
        chosen = _with_last_swapped(ordered, count, prefix[count - 2], amount, min_output)
        if chosen is not None:
            total = sum(c.amount for c in chosen)
            return Selection(inputs=tuple(chosen), amount=amount, change=total - amount)
    fragmented = fewest > max_inputs or prefix[min(len(prefix), max_inputs) - 1] < available
    raise InsufficientFundsError(amount, available, min_output=min_output, fragmented=fragmented)


def _single(ordered: Sequence[Coin], amount: int, min_output: int) -> Coin | None:
    """An output equal to `amount`, else the smallest that leaves at least `min_output`."""
    best: Coin | None = None
    for coin in ordered:
        if coin.amount == amount:
            return min((c for c in ordered if c.amount == amount), key=lambda c: c.output_id)
        if coin.amount - amount >= min_output:
            best = coin  # ordered largest first: the last that qualifies is the smallest
    return best


def _with_last_swapped(
    ordered: Sequence[Coin], count: int, base: int, amount: int, min_output: int
) -> list[Coin] | None:
    """The `count - 1` largest outputs (worth `base`) and the smallest remaining output that
    completes a valid payment with them, or None if none does."""
    best: Coin | None = None
    for coin in ordered[count - 1 :]:
        if _pays(base + coin.amount, amount, min_output):
            best = coin  # largest first: keep going for a smaller one
        elif best is not None and base + coin.amount < amount:
            break  # smaller ones do not even reach the amount
    if best is None:
        return None
    return [*ordered[: count - 1], best]
