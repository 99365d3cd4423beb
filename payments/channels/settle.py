"""Settling a two-way channel to a target balance: the one rule two netting settlements share.

A netting settlement (`payments.roaming.settlement` between carriers, `payments.charging.
cdr_settlement` between a CPO and an eMSP) derives, from what it holds, the payee balance its
two-way channel (`twoway.TwoWayChannel`) must show once everything is paid: the target. What a
side still owes is how far the latest co-signed state is from the target in the direction that
side pays, and paying is proposing exactly the target, so a side that was offline pays
everything due in one proposal and never twice. Each caller names its own refusals:
`settle_to` raises the `short` error it is given when this side's share cannot cover what is
due, and lets the channel core's `PaymentError` through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .state import Role

if TYPE_CHECKING:
    from collections.abc import Callable

    from .twoway import Proposal, TwoWayChannel


def due_to(channel: TwoWayChannel, target: int) -> int:
    """What this side of `channel` still has to pay to reach the payee balance `target` (0 if
    the other side owes, or nothing is due)."""
    gap = target - channel.payee_balance
    return max(0, gap if channel.role is Role.PAYER else -gap)


def settle_to(
    channel: TwoWayChannel, target: int, *, short: Callable[[int, int], Exception]
) -> Proposal | None:
    """Propose the state with payee balance `target` if this side owes anything; None
    otherwise. Raises `short(due, available)` when this side's share cannot cover it."""
    due = due_to(channel, target)
    if due == 0:
        return None
    available = channel.own_balance
    if due > available:
        raise short(due, available)
    return channel.propose(target)
