"""The error tree of the `payments` package.

Every failure the package reports is one of these; callers catch `PaymentError` to catch them all.
A refused input never changes any state: the error is raised before anything is mutated. This
module imports nothing from the package, so every module may import it without a cycle.

```
PaymentError
├── ProtocolError                      the counterparty broke the off-chain protocol
│   ├── ChannelFrameError              bytes that are not a canonical frame (garbage, oversized)
│   ├── UnexpectedChannelFrameError    a frame the connection's state or role does not allow
│   ├── VersionMismatchError           another protocol version in Hello
│   └── ConnectionClosedError          data or events after the connection closed
├── ProofError                         a balance proof this channel must refuse
│   ├── WrongChannelError              for another network or another channel
│   ├── InvalidProofError              a signature that is missing or does not verify
│   ├── StaleProofError                a sequence number not above the latest one
│   ├── BalanceDecreasedError          a one-way proof that pays the payee less than before
│   ├── InsufficientDepositError       a payee balance above the deposit
│   └── WrongParityError               a two-way proposal with the other party's parity
├── InvalidAmountError                 an amount that is not a positive integer in range
│   └── BelowMinimumOutputError        a deposit or top-up below the network's min_output_amount
├── InvalidTermsError                  channel terms (or a signer for them) that cannot be used
├── ChannelKindError                   a one-way operation on a two-way channel, or the reverse
├── ChannelStateError                  the channel is in the wrong state for the operation
│   ├── InvalidTransitionError         a state change the transitions table does not allow
│   ├── ChannelClosedError             paying on a channel that is closing or settled
│   ├── ChannelExpiringError           paying within the challenge period of the expiry
│   └── NoPendingProposalError         a countersignature with no matching proposal (two-way)
├── CounterpartyRejectedError          the counterparty refused a payment (its Reject code)
├── PaymentInDoubtError                a two-way payment sent, but its outcome is not saved here
├── UnknownChannelError                no such channel (in a store or at the counterparty)
├── StoreError                         the channel database is unusable or inconsistent
└── BillingError                       pay-per-use
    ├── TariffError                    a tariff or budget value out of range
    ├── MeterOverflowError             units or an amount beyond u64
    ├── ReceiptError                   a receipt that cannot be accepted
    │   ├── MalformedReceiptError      bytes that are not a canonical receipt
    │   ├── ReceiptSignatureError      not signed by the payee
    │   ├── ReceiptMismatchError       channel, sequence, amount or tag differ from the payment
    │   └── OverchargeError            the payee bills more than the payer metered
    ├── PaywallError                   a paid request the paywall refuses (besides the core's
    │   │                              ProofError, UnknownChannelError, ChannelClosedError)
    │   ├── MalformedPaymentError      the payment header is not base64url of a proof
    │   ├── UnacceptableChannelError   the channel's terms are outside what the payee accepts
    │   ├── InsufficientPaymentError   the proof raises the balance by less than the price
    │   └── QuarantinedPayerError      the payer is a device under quarantine on the ledger
    └── PayerError                     the paying client (`payments.payperuse.auth`)
        ├── BudgetExceededError        the price is over the owner's budget; nothing was paid
        ├── OfferError                 a 402 whose terms cannot be read or are not acceptable
        ├── FundingError               the funder's channel terms are not what was asked for
        └── PaymentRejectedError       the payee refused a paid request (`status`, `code`)
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from enum import Enum

    from tangle.protocol.channel import SignedBalanceProof


class PaymentError(Exception):
    """Root of every error raised by the `payments` package."""

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take their own constructor arguments: rebuild from args and attributes so
        # errors cross process boundaries intact.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(
    cls: type[PaymentError], args: tuple[object, ...], state: dict[str, object]
) -> PaymentError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


# -- the wire protocol -----------------------------------------------------------------------


class ProtocolError(PaymentError):
    """The counterparty broke the off-chain protocol; the connection should be dropped."""


class ChannelFrameError(ProtocolError):
    """Bytes that are not a canonical frame: unknown type, oversized, truncated, trailing."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"bad {what} frame: {reason}")
        self.what = what
        self.reason = reason


class UnexpectedChannelFrameError(ProtocolError):
    """A well-formed frame that the connection's state or role does not allow."""

    def __init__(self, frame: str, reason: str) -> None:
        super().__init__(f"unexpected {frame}: {reason}")
        self.frame = frame
        self.reason = reason


class VersionMismatchError(ProtocolError):
    """The counterparty speaks another version of the channel protocol."""

    def __init__(self, ours: int, theirs: int) -> None:
        super().__init__(f"channel protocol version {theirs}, this side speaks {ours}")
        self.ours = ours
        self.theirs = theirs


class ConnectionClosedError(ProtocolError):
    """Data was fed, or an event sent, after the connection closed."""


# -- balance proofs --------------------------------------------------------------------------


class ProofError(PaymentError):
    """A balance proof that this channel must refuse."""


class WrongChannelError(ProofError):
    """A proof bound to another network or another channel."""

    def __init__(self, field: str, expected: object, got: object) -> None:
        super().__init__(f"proof {field} is {got!r}, this channel's is {expected!r}")
        self.field = field
        self.expected = expected
        self.got = got


class InvalidProofError(ProofError):
    """A signature the channel needs is missing or does not verify."""

    def __init__(self, sequence: int, reason: str) -> None:
        super().__init__(f"proof {sequence}: {reason}")
        self.sequence = sequence
        self.reason = reason


class StaleProofError(ProofError):
    """A sequence number that is not above the latest accepted one (a replay, or old state)."""

    def __init__(self, sequence: int, latest: int) -> None:
        super().__init__(f"proof sequence {sequence} is not above the latest {latest}")
        self.sequence = sequence
        self.latest = latest


class BalanceDecreasedError(ProofError):
    """A one-way proof whose payee balance is below the latest (payments are cumulative)."""

    def __init__(self, payee_balance: int, latest: int) -> None:
        super().__init__(f"payee balance {payee_balance} is below the latest {latest}")
        self.payee_balance = payee_balance
        self.latest = latest


class InsufficientDepositError(ProofError):
    """A payee balance (or a payment that would make one) above the channel's deposit."""

    def __init__(self, payee_balance: int, deposit: int) -> None:
        super().__init__(f"payee balance {payee_balance} is above the deposit {deposit}")
        self.payee_balance = payee_balance
        self.deposit = deposit


class WrongParityError(ProofError):
    """A two-way proposal whose sequence number has the parity of the receiving party (the
    payer proposes odd sequence numbers only, the payee even ones)."""

    def __init__(self, sequence: int, proposer: str) -> None:
        super().__init__(f"proposal {sequence}: the {proposer} proposes the other parity only")
        self.sequence = sequence
        self.proposer = proposer


# -- values and terms ------------------------------------------------------------------------


class InvalidAmountError(PaymentError):
    """An amount that is not an integer in its allowed range."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"invalid {field} {value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


class BelowMinimumOutputError(InvalidAmountError):
    """A deposit or top-up below the network's `min_output_amount`: the ledger refuses it."""

    def __init__(self, field: str, value: int, minimum: int) -> None:
        super().__init__(field, value, f"below the network's min_output_amount {minimum}")
        self.minimum = minimum


class InvalidTermsError(PaymentError):
    """Channel terms (or a signer for them) that cannot be used."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid channel terms {field}: {reason}")
        self.field = field
        self.reason = reason


class ChannelKindError(PaymentError):
    """A one-way operation on a two-way channel, or the reverse."""

    def __init__(self, operation: str, bidirectional: bool) -> None:
        kind = "two-way" if bidirectional else "one-way"
        super().__init__(f"{operation} is not available on a {kind} channel")
        self.operation = operation
        self.bidirectional = bidirectional


# -- channel state ---------------------------------------------------------------------------


class ChannelStateError(PaymentError):
    """The channel is in the wrong state for the operation."""


class InvalidTransitionError(ChannelStateError):
    """A state change that `payments.channels.state.TRANSITIONS` does not allow."""

    def __init__(self, current: Enum, requested: Enum) -> None:
        super().__init__(f"channel cannot go from {current.name} to {requested.name}")
        self.current = current
        self.requested = requested


class ChannelClosedError(ChannelStateError):
    """A payment or a state update on a channel that no longer takes them."""

    def __init__(self, state: Enum) -> None:
        super().__init__(f"the channel is {state.name} and takes no payments")
        self.state = state


class ChannelExpiringError(ChannelStateError):
    """A payment the payee could not settle safely: the ledger's index is within the channel's
    challenge period of its expiry (after it, a settlement of the old state could win)."""

    def __init__(self, index: int, expiry: int, challenge_period: int) -> None:
        super().__init__(
            f"milestone {index} is within the challenge period ({challenge_period}) of the "
            f"expiry {expiry}; the channel takes no more payments"
        )
        self.index = index
        self.expiry = expiry
        self.challenge_period = challenge_period


class NoPendingProposalError(ChannelStateError):
    """A countersignature that matches no outstanding proposal of this party."""

    def __init__(self, sequence: int, reason: str) -> None:
        super().__init__(f"countersignature for {sequence}: {reason}")
        self.sequence = sequence
        self.reason = reason


# -- transports and storage ------------------------------------------------------------------


class CounterpartyRejectedError(PaymentError):
    """The counterparty refused a payment or a session; `code` is its `RejectCode`."""

    def __init__(self, code: int, sequence: int, reason: str) -> None:
        super().__init__(f"rejected (code {code}) at sequence {sequence}: {reason}")
        self.code = code
        self.sequence = sequence
        self.reason = reason


class PaymentInDoubtError(PaymentError):
    """A two-way payment whose proposal (`sequence`) was sent but whose co-signed state this
    side has not saved: the session ended before the answer (`reason`), or the answer came and
    saving it failed. `signed` is the co-signed state if the countersignature arrived: the
    payment is then made, the other party holds it. Either way the other party may hold it:
    reconnect (its HELLO brings the newest co-signed state) and look at the balance before
    paying again."""

    def __init__(
        self, sequence: int, reason: str, *, signed: SignedBalanceProof | None = None
    ) -> None:
        made = "made, not saved here" if signed is not None else "in doubt"
        super().__init__(f"payment {sequence} {made}: {reason}")
        self.sequence = sequence
        self.reason = reason
        self.signed = signed


class UnknownChannelError(PaymentError):
    """No such channel in the store, or the counterparty does not know it."""

    def __init__(self, channel_id: bytes) -> None:
        super().__init__(f"unknown channel {channel_id.hex()}")
        self.channel_id = channel_id


class StoreError(PaymentError):
    """The channel database is unusable or its content is inconsistent."""


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
    """A payment the paywall refuses for a reason of its own; nothing was credited or stored
    (`paywall.refusal_of` gives each refusal, the channel core's too, its status and code)."""

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


class QuarantinedPayerError(PaywallError):
    """The channel's payer is a registered device under quarantine (operators cut it off)."""

    def __init__(self, payer: bytes, until: int) -> None:
        super().__init__(f"payer {payer.hex()} is a device quarantined until milestone {until}")
        self.payer = payer
        self.until = until


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
