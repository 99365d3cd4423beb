"""The error tree of `payments.roaming`, rooted in the package's `PaymentError`.

A flat list, one class per rule a caller must tell apart; the file-format errors share
`RoamingFormatError`, which carries the byte offset (or line number) where the rule broke. An
importer that raises has imported nothing: the error comes before any record is returned.

```
PaymentError
└── RoamingError                       roaming settlement between carriers
    ├── InvalidRecordError             a usage record field out of range (field, reason)
    ├── MalformedRecordError           bytes or JSON that are not one canonical usage record
    ├── InvalidSubscriberError         an IMSI or MSISDN that is not digits of a valid length
    ├── FraudConfigError               a fraud threshold, cap or table bound out of range
    ├── BerWriteError                  a value the BER or TAP writer cannot encode (what, reason)
    └── RoamingFormatError             a partner's file that cannot be imported (offset)
        ├── BerTruncatedError          the input ends inside a tag, a length or a value
        ├── BerLengthError             a length beyond its enclosing value, or too long to hold
        ├── BerEndOfContentsError      an end-of-contents where none is allowed
        ├── BerNestingError            constructed values nested deeper than the bound
        ├── BerElementCountError       more elements in one file than the bound
        ├── BerTrailingBytesError      bytes after the one top-level value
        ├── BerTagError                a tag that is not minimally encoded or out of range
        ├── BerIntegerError            an INTEGER that is empty, non-minimal or too wide
        ├── BerPrimitiveError          a primitive where a constructed value is needed, or back
        ├── TapStructureError          a TAP/RAP/NRTRDE element missing, repeated or unexpected
        ├── TapValueError              a field whose value is impossible (negative volume, ...)
        └── LineFormatError            a JSON Lines or CSV line that is not a usage record
```
"""

from __future__ import annotations

from ..errors import PaymentError


class RoamingError(PaymentError):
    """Root of every error raised by `payments.roaming`."""


class InvalidRecordError(RoamingError):
    """A usage record field is outside its allowed range."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"usage record {field}: {reason}")
        self.field = field
        self.reason = reason


class MalformedRecordError(RoamingError):
    """Bytes or JSON that are not exactly one canonical usage record."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed usage record: {reason}")
        self.reason = reason


class InvalidSubscriberError(RoamingError):
    """An IMSI or MSISDN given to the hasher is not a string of digits of a valid length (the
    value itself is not repeated: it must not reach a log)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


class FraudConfigError(RoamingError):
    """A fraud threshold, cap or table bound that is not a positive integer (or out of order)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"fraud config {field}: {reason}")
        self.field = field
        self.reason = reason


class BerWriteError(RoamingError):
    """A value the BER writer (`ber_writer.py`) or the TAP writer (`tap_writer.py`) cannot put
    in a file the reader would accept: a tag or length out of range, a negative count, text that
    is not printable ASCII."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"cannot write {what}: {reason}")
        self.what = what
        self.reason = reason


class RoamingFormatError(RoamingError):
    """A partner's file (BER, JSON Lines, CSV) that cannot be imported; `offset` is the byte
    offset (BER) or the 1-based line number (text formats) where the rule broke."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"at {offset}: {reason}")
        self.offset = offset
        self.reason = reason


class BerTruncatedError(RoamingFormatError):
    """The input ends inside a tag, a length or a value."""


class BerLengthError(RoamingFormatError):
    """A length that runs past its enclosing value or the input, or has too many octets."""


class BerEndOfContentsError(RoamingFormatError):
    """An end-of-contents marker outside an indefinite-length value (or one that is malformed)."""


class BerNestingError(RoamingFormatError):
    """Constructed values nested deeper than the reader's bound."""


class BerElementCountError(RoamingFormatError):
    """More elements in one file than the reader's bound."""


class BerTrailingBytesError(RoamingFormatError):
    """Bytes after the single top-level value."""


class BerTagError(RoamingFormatError):
    """A tag that is not minimally encoded, too large, or of a class the format never uses."""


class BerIntegerError(RoamingFormatError):
    """An INTEGER that is empty, not minimally encoded, or wider than the field allows."""


class BerPrimitiveError(RoamingFormatError):
    """A primitive encoding where the format needs a constructed value, or the reverse."""


class TapStructureError(RoamingFormatError):
    """An element of a TAP, RAP or NRTRDE file that is missing, repeated or not expected."""


class TapValueError(RoamingFormatError):
    """A field whose value is impossible: a negative volume, a bad time stamp, an unknown code."""


class LineFormatError(RoamingFormatError):
    """A JSON Lines or CSV line that is not a usage record (`offset` is the line number)."""


# -- settlement (agreement, rating, batches, acknowledgements, channel payments, netting) ----
#
# RoamingError
# ├── AgreementError                   an agreement field out of range (field, reason)
# │   ├── MalformedAgreementError      bytes or JSON that are not one canonical agreement
# │   ├── AgreementSignatureError      a party's signature missing or not verifying
# │   └── AmendmentError               a version that does not follow the one it amends
# ├── RecordOutsideAgreementError      a record of another pair, period or currency
# ├── BatchError                       a batch header or acknowledgement that must be refused
# │   ├── MalformedBatchError          bytes that are not one canonical header or acknowledgement
# │   ├── ForgedHeaderError            a signature that does not verify, or records that do not
# │   │                                match the signed header (root, count, totals)
# │   ├── WrongSignerError             signed by a key that is not the sender's in the agreement
# │   ├── ReplayedBatchError           a sequence number already acknowledged
# │   └── BatchingError                a record the batcher cannot take (another pair, full)
# ├── SettlementError                  an acknowledged amount that cannot be paid
# │   └── ChannelCapacityError         more than the channel can hold: top it up
# ├── NettingError                     obligations or a clearing statement that cannot be used
# │   └── ClearingTransferError        a transfer of the plan the ledger refused or not confirmed
# ├── RoamingStoreError                the roaming database: unusable, full, inconsistent
# ├── DisputeError                     a dispute or resolution to refuse (window, amount, signer)
# ├── StatementError                   a statement that cannot be built or accepted
# ├── RequestAuthError                 an HTTP request not signed by a partner, stale or replayed
# │   └── MisaddressedRequestError     a signed request addressed to another carrier
# ├── BarError                         a bar of a subscriber that is malformed or wrongly signed
# │   └── BackdatedBarError            a bar starting before it arrived (less the grace)
# ├── BarredUsageError                 the VPMN refuses usage of a subscriber its HPMN barred
# ├── BackOfficeError                  the back-office API unreachable or answering an error
# └── AnchorError                      the node did not take an anchor (unreachable, refused)


class AgreementError(RoamingError):
    """A roaming agreement field outside its allowed range."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"agreement {field}: {reason}")
        self.field = field
        self.reason = reason


class MalformedAgreementError(AgreementError):
    """Bytes or JSON that are not exactly the canonical form of one agreement."""

    def __init__(self, reason: str) -> None:
        super().__init__("encoding", reason)


class AgreementSignatureError(AgreementError):
    """A party's signature of the agreement is missing, or it does not verify."""

    def __init__(self, party: str, reason: str) -> None:
        super().__init__(f"signature of {party}", reason)
        self.party = party


class AmendmentError(AgreementError):
    """An amendment that does not name the hash of the version it amends, or whose version
    number is not the next one, or that changes the parties."""

    def __init__(self, reason: str) -> None:
        super().__init__("amendment", reason)


class RecordOutsideAgreementError(RoamingError):
    """A usage record the agreement does not cover: another pair of carriers, or an event
    outside the agreement's validity period."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"record outside the agreement: {reason}")
        self.reason = reason


class BatchError(RoamingError):
    """A batch header, batch or acknowledgement that must be refused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedBatchError(BatchError):
    """Bytes that are not exactly one canonical batch header or acknowledgement."""


class ForgedHeaderError(BatchError):
    """A signature that does not verify, or records that do not match the signed header."""


class WrongSignerError(BatchError):
    """A header or acknowledgement signed by a key that is not the one the agreement names for
    that carrier (a valid signature by the wrong party)."""


class ReplayedBatchError(BatchError):
    """A batch whose (pair, sequence) was already acknowledged: sent again, or replayed."""

    def __init__(self, sequence: int, acknowledged: int) -> None:
        super().__init__(f"batch {sequence} replayed: {acknowledged} batches already acknowledged")
        self.sequence = sequence
        self.acknowledged = acknowledged


class BatchingError(BatchError):
    """A record the batcher cannot take: of another pair, or past the bounds of a batch."""


class SettlementError(RoamingError):
    """An acknowledged amount that cannot be paid over the channel."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ChannelCapacityError(SettlementError):
    """Paying the acknowledged amount would exceed the paying carrier's share of the channel."""

    def __init__(self, due: int, available: int) -> None:
        super().__init__(f"{due} due, {available} left in the channel: top it up")
        self.due = due
        self.available = available


class NettingError(RoamingError):
    """Obligations or a clearing statement that cannot be netted, signed or accepted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RoamingStoreError(RoamingError):
    """The roaming database is unusable, full for a source, or holds something inconsistent."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"roaming store: {reason}")
        self.reason = reason


class DisputeError(RoamingError):
    """A dispute or its resolution that must be refused: outside the agreement's window, about
    a batch that was not acknowledged, for more than was accepted, wrongly signed, or resolved
    twice."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"dispute: {reason}")
        self.reason = reason


class StatementError(RoamingError):
    """A statement that cannot be built or accepted (inputs of another pair or period, a
    signature missing or not verifying)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"statement: {reason}")
        self.reason = reason


class RequestAuthError(RoamingError):
    """An operator-to-operator HTTP request that is not signed by a known partner's key, is
    outside the replay window, or repeats a nonce."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"request refused: {reason}")
        self.reason = reason


class BarError(RoamingError):
    """A bar that must be refused: malformed, not signed by the agreement's HPMN, or one too
    many for the list."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"bar: {reason}")
        self.reason = reason


class BackdatedBarError(BarError):
    """A bar whose first barred second lies before it reached this carrier (less the grace):
    it would turn usage already served into usage the HPMN need not pay."""

    def __init__(self, since: int, received: int) -> None:
        super().__init__(
            f"it starts at {since}, before it arrived at {received}: sign one from now on"
        )
        self.since = since
        self.received = received


class MisaddressedRequestError(RequestAuthError):
    """A signed operator request addressed to another carrier (or to none): one partner's
    request replayed to a third carrier is refused by name."""

    def __init__(self, operator: str, recipient: str, own: str) -> None:
        super().__init__(f"{operator!r} addressed this request to {recipient!r}, not to {own}")
        self.operator = operator
        self.recipient = recipient
        self.own = own


class BarredUsageError(RoamingError):
    """At the VPMN: usage of a subscriber that its HPMN barred from `since` on (the HPMN will
    not pay it), refused before it is kept or batched."""

    def __init__(self, imsi_hash: bytes, since: int, start_utc: int) -> None:
        super().__init__(
            f"usage at {start_utc} of subscriber {imsi_hash.hex()[:16]} barred since {since}"
        )
        self.imsi_hash = imsi_hash
        self.since = since
        self.start_utc = start_utc


class BackOfficeError(RoamingError):
    """The carrier's back-office API could not be reached or answered with an error (the
    `tanglepay roaming alerts` client)."""


class ClearingTransferError(NettingError):
    """A transfer of a clearing statement that the wallet could not get confirmed on the ledger
    (refused, conflicting, timed out, node unavailable); re-running resumes it, once."""

    def __init__(self, index: int, payee: str, amount: int, reason: str) -> None:
        super().__init__(f"transfer {index} ({amount} to {payee}): {reason}")
        self.index = index
        self.payee = payee
        self.amount = amount


class AnchorError(RoamingError):
    """The node did not take a roaming anchor (unreachable, or it refused the message)."""
