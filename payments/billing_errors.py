"""The errors of pay-per-use: tariffs and meters, receipts, the paywall and the paying client.

They hang under the package root `PaymentError` (`payments.errors`), so a caller that catches
`PaymentError` catches these too.

```
PaymentError                          payments.errors
└── BillingError                      pay-per-use (this module)
    ├── TariffError                   a tariff or budget value out of range
    ├── MeterOverflowError            units or an amount beyond u64
    ├── ReceiptError                  a receipt that cannot be accepted
    │   ├── MalformedReceiptError     bytes that are not a canonical receipt
    │   ├── ReceiptSignatureError     not signed by the payee
    │   ├── ReceiptMismatchError      channel, sequence, amount or tag differ from the payment
    │   └── OverchargeError           the payee bills more than the payer metered
    ├── PaywallError                  a paid request the paywall refuses (besides the core's
    │   │                             ProofError, UnknownChannelError, ChannelClosedError)
    │   ├── MalformedPaymentError     the payment header is not base64url of a proof
    │   ├── UnacceptableChannelError  the channel's terms are outside what the payee accepts
    │   └── InsufficientPaymentError  the proof raises the balance by less than the price
    └── PayerError                    the paying client (`payments.auth`)
        ├── BudgetExceededError       the price is over the owner's budget; nothing was paid
        ├── OfferError                a 402 whose terms cannot be read or are not acceptable
        ├── FundingError              the funder's channel terms are not what was asked for
        └── PaymentRejectedError      the payee refused a payment (`status`, `code`)
```
"""

from __future__ import annotations

from .errors import PaymentError


class BillingError(PaymentError):
    """Root of the pay-per-use errors."""


class TariffError(BillingError):
    """A tariff, budget or policy value out of its range."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class MeterOverflowError(BillingError):
    """Metered units or an amount that does not fit a u64."""

    def __init__(self, what: str, value: int) -> None:
        super().__init__(f"{what} {value} is beyond u64")
        self.what = what
        self.value = value


# -- receipts --------------------------------------------------------------------------------


class ReceiptError(BillingError):
    """A receipt the payer cannot accept."""


class MalformedReceiptError(ReceiptError):
    """Bytes (or a header) that are not the canonical encoding of a receipt."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed receipt: {reason}")
        self.reason = reason


class ReceiptSignatureError(ReceiptError):
    """The receipt's signature is not the payee's."""

    def __init__(self) -> None:
        super().__init__("the receipt is not signed by the channel's payee")


class ReceiptMismatchError(ReceiptError):
    """A receipt field differs from the payment it should acknowledge."""

    def __init__(self, field: str, expected: object, got: object) -> None:
        super().__init__(f"receipt {field} is {got!r}, the payment had {expected!r}")
        self.field = field
        self.expected = expected
        self.got = got


class OverchargeError(ReceiptError):
    """The payee bills more units or more money than the payer's own meter allows."""

    def __init__(self, what: str, billed: int, allowed: int) -> None:
        super().__init__(f"billed {what} {billed}, at most {allowed} metered")
        self.what = what
        self.billed = billed
        self.allowed = allowed


# -- the paywall -----------------------------------------------------------------------------


class PaywallError(BillingError):
    """A payment the paywall refuses for a reason of its own; nothing was credited or stored.

    The paywall also refuses proofs the channel core refuses (`payments.errors.ProofError`,
    `UnknownChannelError`, `ChannelClosedError`); `paywall.refusal_of` gives each its status
    and code."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedPaymentError(PaywallError):
    """The payment header is not base64url of an encoded signed balance proof."""


class UnacceptableChannelError(PaywallError):
    """The channel exists but its terms are outside what the payee accepts."""


class InsufficientPaymentError(PaywallError):
    """The proof raises the payee's balance by less than the price."""

    def __init__(self, credited: int, price: int) -> None:
        super().__init__(f"the proof pays {credited}, the price is {price}")
        self.credited = credited
        self.price = price


# -- the paying client -----------------------------------------------------------------------


class PayerError(BillingError):
    """The paying client could not or would not pay."""


class BudgetExceededError(PayerError):
    """Paying would exceed the owner's budget; nothing was paid."""

    def __init__(self, limit: str, price: int, allowed: int) -> None:
        super().__init__(f"price {price} is over the {limit} budget (at most {allowed} left)")
        self.limit = limit
        self.price = price
        self.allowed = allowed


class OfferError(PayerError):
    """A 402 answer whose payment terms cannot be read or cannot be accepted."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"payment terms: {reason}")
        self.reason = reason


class FundingError(PayerError):
    """The funder returned channel terms that do not match what was asked for."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"funded channel {field}: {reason}")
        self.field = field
        self.reason = reason


class PaymentRejectedError(PayerError):
    """The payee answered a paid request with a refusal."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"payment refused ({status} {code}): {message}")
        self.status = status
        self.code = code
        self.message = message
