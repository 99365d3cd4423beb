"""CPO-eMSP settlement: each period's net CDR amount paid over the pair's two-way channel.

A CPO charges an eMSP's drivers and sends it CDRs; the eMSP owes the CPO their totals (credit
CDRs count negative). Two parties are often CPO and eMSP to each other, so one two-way channel
(`payments.channels.twoway`) carries both directions, as it carries both carriers' amounts in
`payments.roaming.settlement`, and this follows that design: a `CdrSettlement` (sans-I/O, one
per channel and party) holds the net amount of every period it was given, keyed by (period,
creditor), and derives the one balance the channel must show:

```
target payee balance = base + sum(period nets owed to the channel's payee)
                            - sum(period nets owed by the channel's payee)
```

`due` is how far the channel's latest co-signed state is from that target in the direction this
party pays, and `pay` proposes exactly the target (the other party countersigns it with
`TwoWayChannel.countersign`). Recording a period is idempotent: the same period's CDRs again
change nothing, and a different net for a period already held is refused (a correction after a
period closed is a credit CDR in a later period). Because the target is a function of the
periods, not of the payments made, a party that was offline pays everything due in one proposal
and never twice.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Final

from ..channels.state import Role
from ..errors import PaymentError
from .errors import RoamingError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tangle.protocol.ids import PublicKey

    from ..channels.twoway import Proposal, TwoWayChannel
    from .ocpi_cdr import Cdr

MAX_PERIODS: Final = 100_000
"""Periods held per channel (decades of monthly periods)."""


def cdr_amount(cdr: Cdr) -> int:
    """What a CDR bills: its total including VAT when given, else excluding (negative for a
    credit CDR)."""
    total = cdr.total_cost
    return total.excl_vat if total.incl_vat is None else total.incl_vat


def by_month(cdrs: Iterable[Cdr]) -> dict[str, list[Cdr]]:
    """CDRs grouped into monthly periods ("YYYY-MM", UTC) by when their session ended: what a
    CPO sent (`OcpiStore.cdrs`) or an eMSP received, ready for `CdrSettlement.record`."""
    periods: dict[str, list[Cdr]] = {}
    for cdr in cdrs:
        period = cdr.end_date_time.astimezone(dt.UTC).strftime("%Y-%m")
        periods.setdefault(period, []).append(cdr)
    return periods


class CdrSettlement:
    """What one party's two-way channel with its roaming partner must pay (module docstring)."""

    __slots__ = ("_base", "_channel", "_nets")

    def __init__(self, channel: TwoWayChannel, *, base_payee_balance: int = 0) -> None:
        if not 0 <= base_payee_balance <= channel.terms.deposit:
            raise RoamingError("settlement", "the base balance is outside the deposit")
        self._channel = channel
        self._base = base_payee_balance
        self._nets: dict[tuple[str, PublicKey], int] = {}

    @property
    def channel(self) -> TwoWayChannel:
        return self._channel

    @property
    def periods(self) -> dict[tuple[str, PublicKey], int]:
        """The net amount of every period held, by (period, creditor CPO's key) (a copy)."""
        return dict(self._nets)

    def record(self, period: str, cpo: PublicKey, cdrs: Iterable[Cdr]) -> bool:
        """Take the CDRs the CPO `cpo` (a channel party) sent the other party in `period`;
        False if that period was already held with the same net (nothing changes)."""
        terms = self._channel.terms
        if cpo not in (terms.payer, terms.payee):
            raise RoamingError("settlement", "the CPO is not a party of the channel")
        if not period or len(period) > 32:
            raise RoamingError("settlement", "a period is named in 1 to 32 characters")
        net = sum(cdr_amount(c) for c in cdrs)
        key = (period, cpo)
        held = self._nets.get(key)
        if held is not None:
            if held != net:
                raise RoamingError(
                    f"period {period}", f"held with net {held}, now {net}: correct it later"
                )
            return False
        if len(self._nets) >= MAX_PERIODS:
            raise RoamingError("settlement", f"more than {MAX_PERIODS} periods")
        self._nets[key] = net
        return True

    @property
    def target(self) -> int:
        """The payee balance the channel must show once every period held is paid."""
        payee = self._channel.terms.payee
        owed = sum(net if cpo == payee else -net for (_, cpo), net in self._nets.items())
        return self._base + owed

    @property
    def due(self) -> int:
        """What this party still has to pay (0 if the other side owes, or nothing is due)."""
        gap = self.target - self._channel.payee_balance
        return max(0, gap if self._channel.role is Role.PAYER else -gap)

    def pay(self) -> Proposal | None:
        """Propose the target state if this party owes anything; None otherwise."""
        due = self.due
        if due == 0:
            return None
        if due > self._channel.own_balance:
            raise RoamingError(
                "settlement", f"{due} due, {self._channel.own_balance} in the channel"
            )
        try:
            return self._channel.propose(self.target)
        except PaymentError as e:
            raise RoamingError("settlement", f"the channel refused the payment: {e}") from e
