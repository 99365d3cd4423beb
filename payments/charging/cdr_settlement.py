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
`TwoWayChannel.countersign`): both are the shared rule of `payments.channels.settle`, which the
carriers' settlement uses too. Recording a period is idempotent: the same period's CDRs again
change nothing, and a different net for a period already held is refused; CDRs of more than one
currency in one period are refused by name (`CurrencyMismatchError`). `by_month` files a CDR in
the month it was issued (`last_updated`: a session's CDR is issued at its end), so a correction
after a period closed (a credit CDR, which keeps the original's session times, and the corrected
CDR) falls in the period it is issued. Because the target is a function of the periods, not of
the payments made, a party that was offline pays everything due in one proposal and never twice;
`SettlementPeriods` keeps the periods in sqlite, so a restarted party derives the same target
(without them it would propose paying back what was settled).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Final, Self

import aiosqlite

from ..channels.settle import due_to, settle_to
from ..errors import PaymentError
from .errors import CurrencyMismatchError, RoamingError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path
    from types import TracebackType

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
    """CDRs grouped into monthly periods ("YYYY-MM", UTC) by when they were issued
    (`last_updated`; see the module docstring): what a CPO sent (`OcpiStore.cdrs`) or an eMSP
    received, ready for `CdrSettlement.record`."""
    periods: dict[str, list[Cdr]] = {}
    for cdr in cdrs:
        period = cdr.last_updated.astimezone(dt.UTC).strftime("%Y-%m")
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
        held = list(cdrs)
        for cdr in held[1:]:
            if cdr.currency != held[0].currency:
                raise CurrencyMismatchError(held[0].currency, cdr.currency)
        return self.hold(period, cpo, sum(cdr_amount(c) for c in held))

    def hold(self, period: str, cpo: PublicKey, net: int) -> bool:
        """Hold `period`'s net amount owed to `cpo` (`record`, or restored from
        `SettlementPeriods`); False if it was held already with the same net."""
        terms = self._channel.terms
        if cpo not in (terms.payer, terms.payee):
            raise RoamingError("settlement", "the CPO is not a party of the channel")
        if not period or len(period) > 32:
            raise RoamingError("settlement", "a period is named in 1 to 32 characters")
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

    def release(self, period: str, cpo: PublicKey) -> None:
        """Hold `period` no more (`SettlementPeriods.record`, when saving it failed)."""
        self._nets.pop((period, cpo), None)

    @property
    def target(self) -> int:
        """The payee balance the channel must show once every period held is paid."""
        payee = self._channel.terms.payee
        owed = sum(net if cpo == payee else -net for (_, cpo), net in self._nets.items())
        return self._base + owed

    @property
    def due(self) -> int:
        """What this party still has to pay (0 if the other side owes, or nothing is due)."""
        return due_to(self._channel, self.target)

    def pay(self) -> Proposal | None:
        """Propose the target state if this party owes anything; None otherwise."""

        def short(due: int, available: int) -> RoamingError:
            return RoamingError("settlement", f"{due} due, {available} in the channel")

        try:
            return settle_to(self._channel, self.target, short=short)
        except RoamingError:
            raise
        except PaymentError as e:
            raise RoamingError("settlement", f"the channel refused the payment: {e}") from e


class SettlementPeriods:
    """The periods of every `CdrSettlement` of one party, in sqlite (`synchronous=FULL`):
    `record` holds a period and commits it before returning, `restore` holds them all again.
    Open with `async with SettlementPeriods(path) as periods`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    async def __aenter__(self) -> Self:
        self._db = await aiosqlite.connect(self.path)
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS periods (channel_id BLOB NOT NULL, period TEXT NOT NULL,"
            " cpo BLOB NOT NULL, net INTEGER NOT NULL, PRIMARY KEY (channel_id, period, cpo))"
        )
        await self._db.commit()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the settlement periods are not open")
        return self._db

    async def record(
        self, settlement: CdrSettlement, period: str, cpo: PublicKey, cdrs: Iterable[Cdr]
    ) -> bool:
        """`settlement.record`, and the period committed if it is new; a period whose commit
        fails is not held either (held but not saved, a restart would drop it and the payee
        side would then propose paying it back)."""
        new = settlement.record(period, cpo, cdrs)
        if new:
            net = settlement.periods[(period, cpo)]
            channel_id = bytes(settlement.channel.terms.channel_id)
            try:
                await self.db.execute(
                    "INSERT OR IGNORE INTO periods VALUES (?, ?, ?, ?)",
                    (channel_id, period, bytes(cpo), net),
                )
                await self.db.commit()
            except BaseException:
                settlement.release(period, cpo)
                raise
        return new

    async def restore(self, settlement: CdrSettlement) -> int:
        """Hold again every period saved for `settlement`'s channel; returns how many."""
        query = "SELECT period, cpo, net FROM periods WHERE channel_id = ? LIMIT ?"
        channel_id = bytes(settlement.channel.terms.channel_id)
        async with self.db.execute(query, (channel_id, MAX_PERIODS)) as rows:
            held = [(r[0], bytes(r[1]), int(r[2])) async for r in rows]
        terms = settlement.channel.terms
        keys = {bytes(terms.payer): terms.payer, bytes(terms.payee): terms.payee}
        for period, cpo, net in held:
            if cpo not in keys:
                raise RoamingError("settlement", "a saved period names no party of the channel")
            settlement.hold(period, keys[cpo], net)
        return len(held)
