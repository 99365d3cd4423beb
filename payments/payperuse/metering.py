"""Metered streaming payments: tariffs, the payee's meter and the payer's check of its bills.

Sans-I/O and integer-only. A `Tariff` prices a measured quantity: `price` base units for every
`per` measured units (per second: per 1000 ms; per kWh: per 1000 Wh; per MB: per 10**6 bytes).
The cost of `u` units is rounded up, `ceil(u * price / per)`, and always computed from the
*cumulative* usage, so billing in many small steps never costs more than billing once; every
result is checked to fit a u64 (`MeterOverflowError`).

A session on one channel:

```
payee (Meter)                                   payer (PayerMeter)
  record(units) as it delivers                    observe(units) as it receives
  invoice() ───────────── Invoice ─────────────>  accept(invoice) -> amount to pay
                                                  (OverchargeError if it bills more than
                                                   was metered here)
            <──────── SignedBalanceProof ────────  paying(proof, amount, invoice)
  credit(proof, credited) -> Receipt ── Receipt ─>  check_receipt(receipt)
  (after the channel core credited it and           (signature, channel, sequence, amounts,
   the store saved it)                               units: all must match)
```

`Receipt` (`payments.payperuse.receipt`) is re-exported here: a metered receipt carries the
cumulative units billed and the channel's cumulative amount after the payment it answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Self

from tangle.errors import InvalidFieldError
from tangle.protocol.codec import U64_MAX, require_uint
from tangle.protocol.ids import HASH_SIZE

from ..channels.core import check_uint
from ..errors import (
    InvalidAmountError,
    MeterOverflowError,
    OverchargeError,
    ReceiptMismatchError,
    TariffError,
)
from .receipt import NO_TAG, Receipt, ReceiptKind, issue_receipt

if TYPE_CHECKING:
    from tangle.protocol.channel import BalanceProof
    from tangle.protocol.ids import ChannelId, PublicKey
    from tangle.protocol.signature import Signer

__all__ = ["Invoice", "Meter", "PayerMeter", "Receipt", "Tariff", "checked_add"]

_UNIT_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,15}")


def tariff_uint(field: str, value: int, minimum: int = 0) -> None:
    """Raise `TariffError` unless `value` is an integer in `minimum..U64_MAX` (tangle's
    `require_uint`, reported as a tariff or policy value out of range)."""
    try:
        require_uint(field, value, U64_MAX, minimum)
    except InvalidFieldError as e:
        raise TariffError(field, e.reason) from None


def checked_add(what: str, a: int, b: int) -> int:
    """`a + b` for non-negative integers, or `MeterOverflowError` beyond u64."""
    for value in (a, b):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidAmountError(what, value, "must be a non-negative integer")
    total = a + b
    if total > U64_MAX:
        raise MeterOverflowError(what, total)
    return total


@dataclass(frozen=True, slots=True, kw_only=True)
class Tariff:
    """A price for a measured quantity, in base units per `per` measured units."""

    price: int
    """Base units charged for every `per` units (rounded up for a part), 1..U64_MAX."""
    per: int
    """The unit scale: how many measured units the price is for, 1..U64_MAX."""
    unit: str
    """The measured unit's name (`request`, `ms`, `Wh`, `byte`): 1-16 ASCII letters/digits."""

    def __post_init__(self) -> None:
        for field in ("price", "per"):
            value = getattr(self, field)
            tariff_uint(f"Tariff.{field}", value, minimum=1)
        if not isinstance(self.unit, str) or not _UNIT_NAME.fullmatch(self.unit):
            raise TariffError("Tariff.unit", "must be 1-16 ASCII letters, digits or _")

    @classmethod
    def per_request(cls, price: int) -> Self:
        """`price` for each request."""
        return cls(price=price, per=1, unit="request")

    @classmethod
    def per_second(cls, price: int) -> Self:
        """`price` per second of use, metered in milliseconds."""
        return cls(price=price, per=1000, unit="ms")

    @classmethod
    def per_kwh(cls, price: int) -> Self:
        """`price` per kWh, metered in watt-hours."""
        return cls(price=price, per=1000, unit="Wh")

    @classmethod
    def per_mb(cls, price: int) -> Self:
        """`price` per MB (10**6 bytes), metered in bytes."""
        return cls(price=price, per=1_000_000, unit="byte")

    def cost(self, units: int) -> int:
        """`ceil(units * price / per)`; `MeterOverflowError` if `units` or the cost is not a
        u64."""
        if isinstance(units, bool) or not isinstance(units, int) or units < 0:
            raise InvalidAmountError("units", units, "must be a non-negative integer")
        if units > U64_MAX:
            raise MeterOverflowError("units", units)
        amount = -(-(units * self.price) // self.per)
        if amount > U64_MAX:
            raise MeterOverflowError("cost", amount)
        return amount

    def units_for(self, amount: int) -> int:
        """The most units that `amount` pays for: `floor(amount * per / price)`, capped at
        U64_MAX (the inverse of `cost`: `cost(units_for(a)) <= a`)."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise InvalidAmountError("amount", amount, "must be a non-negative integer")
        return min(U64_MAX, amount * self.per // self.price)


@dataclass(frozen=True, slots=True, kw_only=True)
class Invoice:
    """The payee's bill: cumulative over the session, so a lost invoice loses nothing."""

    channel_id: ChannelId
    """The channel the session is paid through."""
    units: int
    """Measured units delivered so far in the session."""
    amount: int
    """`tariff.cost(units)`: what the session costs so far."""
    paid: int
    """What the payee has been paid in the session so far."""

    def __post_init__(self) -> None:
        for field in ("units", "amount", "paid"):
            value = getattr(self, field)
            check_uint(f"Invoice.{field}", value, U64_MAX)

    @property
    def due(self) -> int:
        """What is owed now (nothing when the payer is ahead)."""
        return max(0, self.amount - self.paid)


class Meter:
    """The payee's meter of one session on one channel: usage delivered, money credited, and the
    receipts it signs. Changed only by `record` and `credit`."""

    __slots__ = (
        "_signer",
        "channel_id",
        "credit_limit",
        "network_id",
        "paid",
        "session",
        "tariff",
        "units",
    )

    def __init__(
        self,
        tariff: Tariff,
        *,
        signer: Signer,
        network_id: int,
        channel_id: ChannelId,
        session: bytes = NO_TAG,
        credit_limit: int = 0,
    ) -> None:
        """`signer` holds the channel's payee key; `credit_limit` is how much unpaid usage the
        payee lets the payer run up (`may_deliver`); `session` tags every receipt."""
        if len(session) != HASH_SIZE:
            raise TariffError("Meter.session", f"must be {HASH_SIZE} bytes")
        tariff_uint("Meter.credit_limit", credit_limit)
        self.tariff = tariff
        self._signer = signer
        self.network_id = network_id
        self.channel_id = channel_id
        self.session = bytes(session)
        self.credit_limit = credit_limit
        self.units = 0
        """Units delivered in the session."""
        self.paid = 0
        """Base units credited in the session."""

    def billed(self) -> int:
        """What the session costs so far."""
        return self.tariff.cost(self.units)

    def due(self) -> int:
        """What is owed now."""
        return max(0, self.billed() - self.paid)

    def may_deliver(self, units: int) -> bool:
        """True if delivering `units` more keeps the unpaid amount within the credit limit."""
        total = checked_add("units", self.units, units)
        return self.tariff.cost(total) - self.paid <= self.credit_limit

    def deliverable(self, wanted: int) -> int:
        """The most of `wanted` units that may be delivered now within the credit limit."""
        ceiling = self.tariff.units_for(checked_add("limit", self.paid, self.credit_limit))
        return max(0, min(wanted, ceiling - self.units))

    def record(self, units: int) -> int:
        """Count `units` delivered; return the session's cumulative units."""
        total = checked_add("units", self.units, units)
        self.tariff.cost(total)  # the bill must stay a u64 too
        self.units = total
        return total

    def invoice(self) -> Invoice:
        """The current bill."""
        return Invoice(
            channel_id=self.channel_id, units=self.units, amount=self.billed(), paid=self.paid
        )

    def credit(self, proof: BalanceProof, credited: int) -> Receipt:
        """Count `credited` (what the channel core credited for `proof`, after the store saved
        it) as paid, and sign the receipt for it."""
        if proof.channel_id != self.channel_id:
            raise ReceiptMismatchError("channel_id", self.channel_id, proof.channel_id)
        self.paid = checked_add("paid", self.paid, credited)
        return issue_receipt(
            self._signer,
            kind=ReceiptKind.METERED,
            network_id=self.network_id,
            channel_id=self.channel_id,
            sequence=proof.sequence,
            cumulative_amount=proof.payee_balance,
            credited=credited,
            units=self.units,
            tag=self.session,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Expected:
    """A payment made and not yet acknowledged."""

    sequence: int
    """Its proof's sequence."""
    cumulative_amount: int
    """Its proof's payee balance."""
    credited: int
    """What it pays."""
    units: int
    """The units of the invoice it pays."""


class PayerMeter:
    """The payer's side of a session: its own measure of the usage, what it paid, and the checks
    that bills and receipts stay within both. Changed only by `observe`, `paying` and
    `check_receipt`."""

    __slots__ = (
        "_expected",
        "channel_id",
        "network_id",
        "paid",
        "payee",
        "session",
        "tariff",
        "tolerance",
        "units",
    )

    def __init__(
        self,
        tariff: Tariff,
        *,
        payee: PublicKey,
        network_id: int,
        channel_id: ChannelId,
        session: bytes = NO_TAG,
        tolerance: int = 0,
    ) -> None:
        """`tolerance`: units the payee may bill beyond this side's own count (for units in
        flight when the count was taken)."""
        tariff_uint("PayerMeter.tolerance", tolerance)
        self.tariff = tariff
        self.payee = payee
        self.network_id = network_id
        self.channel_id = channel_id
        self.session = bytes(session)
        self.tolerance = tolerance
        self.units = 0
        """Units this side measured as received."""
        self.paid = 0
        """Base units paid in the session."""
        self._expected: _Expected | None = None

    def observe(self, units: int) -> int:
        """Count `units` received; return the cumulative count."""
        self.units = checked_add("units", self.units, units)
        return self.units

    def allowed_units(self) -> int:
        """The most units the payee may bill now."""
        return min(U64_MAX, self.units + self.tolerance)

    def accept(self, invoice: Invoice) -> int:
        """What to pay for `invoice` (0 if nothing is due); `OverchargeError` if it bills more
        units than were metered here or more money than its units cost."""
        if invoice.channel_id != self.channel_id:
            raise ReceiptMismatchError("channel_id", self.channel_id, invoice.channel_id)
        if invoice.units > self.allowed_units():
            raise OverchargeError("units", invoice.units, self.allowed_units())
        cost = self.tariff.cost(invoice.units)
        if invoice.amount > cost:
            raise OverchargeError("amount", invoice.amount, cost)
        return max(0, invoice.amount - self.paid)

    def paying(self, proof: BalanceProof, amount: int, invoice: Invoice) -> None:
        """Record that `proof` pays `amount` for `invoice`; its receipt is expected next."""
        if proof.channel_id != self.channel_id:
            raise ReceiptMismatchError("channel_id", self.channel_id, proof.channel_id)
        self.paid = checked_add("paid", self.paid, amount)
        self._expected = _Expected(
            sequence=proof.sequence,
            cumulative_amount=proof.payee_balance,
            credited=amount,
            units=invoice.units,
        )

    def check_receipt(self, receipt: Receipt) -> None:
        """Accept the receipt of the last payment, or raise: `ReceiptSignatureError` if the payee
        did not sign it, `ReceiptMismatchError` if a field differs from the payment,
        `OverchargeError` if it bills more than was metered here."""
        receipt.verify(self.payee)
        expected = self._expected
        if expected is None:
            raise ReceiptMismatchError("sequence", None, receipt.sequence)
        checks: tuple[tuple[str, object, object], ...] = (
            ("kind", ReceiptKind.METERED, receipt.kind),
            ("network_id", self.network_id, receipt.network_id),
            ("channel_id", self.channel_id, receipt.channel_id),
            ("sequence", expected.sequence, receipt.sequence),
            ("cumulative_amount", expected.cumulative_amount, receipt.cumulative_amount),
            ("credited", expected.credited, receipt.credited),
            ("tag", self.session, receipt.tag),
        )
        for field, want, got in checks:
            if want != got:
                raise ReceiptMismatchError(field, want, got)
        if receipt.units > self.allowed_units():
            raise OverchargeError("units", receipt.units, self.allowed_units())
        if receipt.units < expected.units:
            raise ReceiptMismatchError("units", expected.units, receipt.units)
        if self.paid > self.tariff.cost(receipt.units):
            raise OverchargeError("amount", self.paid, self.tariff.cost(receipt.units))
        self._expected = None
