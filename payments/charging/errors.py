"""The error tree of `payments.charging`, rooted in the package's `PaymentError`.

A flat list: one class per rule a caller must tell apart, each with typed context. Input from a
partner (an eMSP's JSON, a charger's figures) that breaks a rule raises one of these before any
state changes. This module imports only the package's root error.

```
PaymentError
└── ChargingError                    EV charging (`payments.charging`)
    ├── OcpiFieldError               a JSON field missing, of the wrong type or out of range
    ├── UnknownEnumError             an enum value OCPI 2.2.1 does not define
    ├── ExcessPrecisionError         a decimal finer than its exact integer unit
    ├── UnknownCurrencyError         not an ISO 4217 code this module knows the minor unit of
    ├── InvalidTariffError           a tariff that parses but cannot be priced
    ├── InvalidUsageError            a session description that is not a valid timeline
    ├── CurrencyMismatchError        a tariff and a session, CDR or price in other currencies
    ├── CdrSentError                 changing a CDR after it was sent (OCPI: immutable)
    ├── UnknownObjectError           no such tariff, session, CDR or token
    ├── OcpiAuthError                a request without a valid credentials token
    ├── HandshakeError               a credentials exchange step out of order or refused
    └── OcpiPartnerError             the partner answered with an OCPI error status
        └── OcpiUnreachableError     no answer: a transport failure or a timeout
```
"""

from __future__ import annotations

from ..errors import PaymentError


class ChargingError(PaymentError):
    """Root of the EV charging errors."""


class OcpiFieldError(ChargingError):
    """A field of an OCPI object that is missing, of the wrong JSON type, or out of range."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnknownEnumError(ChargingError):
    """A value that is not one of the members OCPI 2.2.1 defines for the enum."""

    def __init__(self, field: str, value: object, enum: str) -> None:
        super().__init__(f"{field}: {value!r} is not a {enum}")
        self.field = field
        self.value = value
        self.enum = enum


class ExcessPrecisionError(ChargingError):
    """A decimal with more digits than the exact integer unit it is stored in."""

    def __init__(self, field: str, value: object, digits: int) -> None:
        super().__init__(f"{field}: {value} has more than {digits} decimal digits")
        self.field = field
        self.value = value
        self.digits = digits


class UnknownCurrencyError(ChargingError):
    """A currency that is not a three-letter ISO 4217 code with a known minor unit."""

    def __init__(self, currency: object) -> None:
        super().__init__(f"unknown currency {currency!r}")
        self.currency = currency


class InvalidTariffError(ChargingError):
    """A tariff that is well formed JSON but cannot be priced (no elements, min above max)."""

    def __init__(self, tariff_id: str, reason: str) -> None:
        super().__init__(f"tariff {tariff_id!r}: {reason}")
        self.tariff_id = tariff_id
        self.reason = reason


class InvalidUsageError(ChargingError):
    """A session description that is not a timeline: periods out of order or outside the
    session, negative energy, an end before the start, a naive timestamp."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"session {field}: {reason}")
        self.field = field
        self.reason = reason


class CurrencyMismatchError(ChargingError):
    """Two amounts or objects that must share a currency do not."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"currency {got}, expected {expected}")
        self.expected = expected
        self.got = got


class CdrSentError(ChargingError):
    """A change to a CDR that was already sent: correct it with a credit CDR instead."""

    def __init__(self, cdr_id: str) -> None:
        super().__init__(f"CDR {cdr_id!r} was sent and is immutable; issue a credit CDR")
        self.cdr_id = cdr_id


class UnknownObjectError(ChargingError):
    """No tariff, session, CDR, token or party with this id."""

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(f"unknown {kind} {object_id!r}")
        self.kind = kind
        self.object_id = object_id


class OcpiAuthError(ChargingError):
    """An OCPI request whose `Authorization: Token ...` header is missing or not accepted."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"OCPI authorization: {reason}")
        self.reason = reason


class HandshakeError(ChargingError):
    """A credentials (Token A/B/C) step that is out of order, or refused by the partner."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"credentials handshake: {reason}")
        self.reason = reason


class OcpiPartnerError(ChargingError):
    """The partner answered with an HTTP error or an OCPI `status_code` other than 1xxx."""

    def __init__(self, http_status: int, status_code: int, message: str) -> None:
        super().__init__(f"partner answered HTTP {http_status}, OCPI {status_code}: {message}")
        self.http_status = http_status
        self.status_code = status_code
        self.message = message


class OcpiUnreachableError(OcpiPartnerError):
    """The partner could not be reached: a transport failure, a timeout or an HTTP 5xx (no
    answer to the question, unlike an HTTP client error or an OCPI status, which are the
    partner's answer)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, 0, message)


# -- the CSMS (`session`, `store`, `csms`, `payment`) -----------------------------------------
#
# ChargingError
# └── SessionError                  a charging session event or command the CSMS must refuse
#     ├── MalformedEventError       a field out of range (ids, seqNo, register, timestamps)
#     ├── EventConflictError        a second Started/Ended, a register below the start, or a
#     │                             seq again with another reading
#     ├── SessionLimitError         too many sessions for one charge point or in total
#     ├── UnknownSessionError       no such session
#     ├── StationAuthError          unknown station or wrong password
#     ├── StationCallError          a call to a station answered with a CALLERROR, outside the
#     │   │                         schema, or not at all as the connection closed
#     │   └── StationTimeoutError   no answer in time (back office: 502 / 504)
#     ├── TokenBindingError         a token not bound to (or not signed for) the channel
#     └── InvoiceDisagreesError     a driver's invoice that is not the CSMS's (402 with its own)
#
# ChargingError
# ├── PrepaymentOwedBackError       a prepayment taken while its token was unbound or rebound:
# │                                 applied, owed back to the channel's payer (409 with amount)
# ├── StoreVersionError             a CSMS database a newer version wrote
# ├── LogLimitError                 a log limiter's bound out of range (`log_limit`)
# ├── RefundReleasedError           a refund held or settled while its transfer was recorded:
# │                                 not attached (`refund_wallet.LedgerWallet`)
# └── RefundActionError             an operator's action on an owed refund refused (`refund_desk`)
#     ├── RefundRefError            not a refund's reference (kind session | token, its id)
#     ├── UnknownRefundError        no such refund owed (never, or paid, or settled)
#     ├── RefundNotHeldError        owed, but not held: the refunder is paying it
#     ├── RefundNoteError           a settlement's note that is empty or too long
#     ├── RefundTransferLiveError   settling one whose ledger transfer is live (may pay it)
#     └── RefundWalletError         the CPO wallet's record of its transfer could not be read


class SessionError(ChargingError):
    """A charging session event or command the CSMS refuses; nothing was applied."""


class MalformedEventError(SessionError):
    """A session event with a field out of range."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class EventConflictError(SessionError):
    """An event that contradicts what the session already holds."""

    def __init__(self, key: tuple[str, str], reason: str) -> None:
        super().__init__(f"session {key[0]}/{key[1]}: {reason}")
        self.key = key
        self.reason = reason


class SessionLimitError(SessionError):
    """A new session beyond the bound per charge point or in total."""

    def __init__(self, scope: str, limit: int) -> None:
        super().__init__(f"more than {limit} open sessions ({scope})")
        self.scope = scope
        self.limit = limit


class UnknownSessionError(SessionError):
    """No session with this key."""

    def __init__(self, key: tuple[str, str]) -> None:
        super().__init__(f"no session {key[0]}/{key[1]}")
        self.key = key


class StationAuthError(SessionError):
    """A charge point that is not registered, or that gave the wrong password."""

    def __init__(self, station: str) -> None:
        super().__init__(f"station {station!r} refused")
        self.station = station


class StationCallError(SessionError):
    """A call of the CSMS to a connected station (a remote start, a charging profile) that got
    no usable answer: the station answered with a CALLERROR or outside the schema, or the
    connection closed first."""

    def __init__(self, station: str, reason: str) -> None:
        super().__init__(f"station {station!r}: {reason}")
        self.station = station
        self.reason = reason


class StationTimeoutError(StationCallError):
    """A call of the CSMS to a station that was not answered in time (the station may still
    carry it out)."""


class TokenBindingError(SessionError):
    """An id token that cannot be bound to, or paid through, the channel given."""

    def __init__(self, id_token: str, reason: str) -> None:
        super().__init__(f"token {id_token!r}: {reason}")
        self.id_token = id_token
        self.reason = reason


class PrepaymentOwedBackError(ChargingError):
    """A prepayment the CSMS took while the operator unbound or rebound its token: the payment
    was applied (unlike a `SessionError`: the proof is taken), and what it credited (`amount`)
    is owed back to the channel's payer (a `token_refunds` row written in the payment's own
    commit, paid by `refund.PrepaidRefunds`), not credited to the token."""

    def __init__(self, id_token: str, amount: int) -> None:
        super().__init__(
            f"token {id_token!r} unbound or rebound during the payment: {amount} is owed back "
            "to the channel's payer"
        )
        self.id_token = id_token
        self.amount = amount


class StoreVersionError(ChargingError):
    """A CSMS database written by a newer version (its `PRAGMA user_version`): this one does not
    open it, as it would not know its rows (a refund in a state it does not know)."""

    def __init__(self, version: int, known: int) -> None:
        super().__init__(f"the CSMS database is at version {version}; this CSMS knows {known}")
        self.version = version
        self.known = known


class LogLimitError(ChargingError):
    """A `log_limit.LogLimiter` bound out of range: `field`'s `value` is not `rule` (a window
    that does not pass, a key table that holds no key, a negative number of lines)."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        super().__init__(f"log limit {field} = {value!r}: must be {rule}")
        self.field = field
        self.value = value
        self.rule = rule


class RefundReleasedError(ChargingError):
    """A refund whose row was no longer `sending` at the attempt its payer claimed once the
    wallet had recorded its transfer under `key` (the operator held or settled it meanwhile):
    the transfer is not attached, so a refund settled by hand is not paid on the ledger too."""

    def __init__(self, key: bytes) -> None:
        text = key.decode("utf-8", "backslashreplace")
        super().__init__(f"the refund under {text!r} was held or settled meanwhile: not attached")
        self.key = key


class InvoiceDisagreesError(SessionError):
    """A payment sent with the driver's own invoice that the CSMS does not bill: more energy
    than it metered, or an amount its tariff does not give for that energy. Nothing was taken;
    `units`, `amount`, `paid` are the CSMS's own invoice (answered as 402)."""

    def __init__(self, key: tuple[str, str], units: int, amount: int, paid: int) -> None:
        super().__init__(
            f"session {key[0]}/{key[1]}: the CSMS bills {units} units for {amount}, paid {paid}"
        )
        self.key = key
        self.units = units
        self.amount = amount
        self.paid = paid


# -- refused tokens, signed meter values, roaming (`devices`, `ocmf`, `roaming_cpo`) ------------
#
# ChargingError
# ├── TokenRefusedError             Authorize refused for a named reason (an OCPP status)
# │   ├── DeviceQuarantinedError    the token's or channel key's device is quarantined
# │   ├── DeviceLookupError         the registry could not be read: refused, not guessed
# │   └── RoamingTokenRefusedError  an eMSP's token it invalidated or did not allow
# ├── TokenClashError               an eMSP's token pushed with a local driver's uid
# ├── SignedMeterValueError         a signed meter value that does not verify or parse
# └── RoamingError                  an eMSP's session that cannot be reported or settled


class TokenRefusedError(ChargingError):
    """An id token refused at Authorize for a reason the charger is told (`status`, an OCPP
    AuthorizationStatus that 1.6 and 2.0.1 share)."""

    status = "Invalid"

    def __init__(self, id_token: str, reason: str) -> None:
        super().__init__(f"token {id_token!r} refused: {reason}")
        self.id_token = id_token
        self.reason = reason


class DeviceQuarantinedError(TokenRefusedError):
    """The token, or the key of the channel it is bound to, is a registered device under a
    quarantine in force (issue #14): it is not served."""

    status = "Blocked"

    def __init__(self, id_token: str, device_id: bytes, index: int) -> None:
        super().__init__(id_token, f"device {device_id.hex()} quarantined at milestone {index}")
        self.device_id = device_id
        self.index = index


class DeviceLookupError(TokenRefusedError):
    """The node could not say whether the token's device is quarantined."""


class RoamingTokenRefusedError(TokenRefusedError):
    """An eMSP's token the eMSP invalidated or did not allow in real time (`status` Blocked
    for a blocked token, else Invalid)."""

    def __init__(self, id_token: str, reason: str, status: str) -> None:
        super().__init__(id_token, reason)
        self.status = status


class TokenClashError(ChargingError):
    """An eMSP's token whose uid a local driver's token already uses (the CPO refuses the push:
    the local driver keeps the uid)."""

    def __init__(self, uid: str) -> None:
        super().__init__(f"token uid {uid!r} is a local driver's token at this CPO")
        self.uid = uid


class SignedMeterValueError(ChargingError):
    """A signed meter value that cannot be parsed, is not signed by the meter's key, or reads
    another energy than the session's record."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class RoamingError(ChargingError):
    """A roaming session that cannot be reported to its eMSP or settled."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


class RefundActionError(ChargingError):
    """An operator's listing of, or action on, an owed refund that is refused; nothing changed."""


class RefundRefError(RefundActionError):
    """Text that names no refund: a kind other than `session` and `token`, a session's id that
    is not `charge point/transaction id`, a token refund's id that is not a positive integer."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"refund {text!r}: {reason}")
        self.text = text
        self.reason = reason


class UnknownRefundError(RefundActionError):
    """No refund owed under this reference: never owed, or paid, or settled since."""

    def __init__(self, kind: str, ref: str) -> None:
        super().__init__(f"no {kind} refund {ref!r} is owed")
        self.kind = kind
        self.ref = ref


class RefundNotHeldError(RefundActionError):
    """A refund owed but not `held` (its `state`): the refunder is paying it, so the operator
    may neither retry nor settle it (a second operator's action on one just retried)."""

    def __init__(self, kind: str, ref: str, state: str) -> None:
        super().__init__(f"{kind} refund {ref!r} is {state}, not held")
        self.kind = kind
        self.ref = ref
        self.state = state


class RefundNoteError(RefundActionError):
    """A settlement's note (how the refund was paid outside the ledger) that is empty, too long
    or not printable text."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"settlement note: {reason}")
        self.reason = reason


class RefundTransferLiveError(RefundActionError):
    """A held refund the operator would settle (or retry under its next attempt's key) whose
    transfer under its current `key` the CPO's wallet records as live (`state`, as the listing shows
    it): pending (it may still confirm), confirmed (the ledger paid it) or abandoned after it was
    attached (its payload may be attached again and apply): paid by hand too, the driver would be
    paid twice. `status` is the wallet's own (`TransferStatus`)."""

    def __init__(self, kind: str, ref: str, key: bytes, state: str, status: str) -> None:
        text = key.decode("utf-8", "backslashreplace")
        if state == "confirmed":
            then = "the ledger paid it: retry it, and the refunder records it as paid"
        elif state == "abandoned":
            then = (
                "abandoned after it was attached, it applies if anyone attaches it again while "
                "its inputs are unspent: settle it (or retry it under a new key) once the "
                "wallet records one of them spent by another of its transfers"
            )
        else:
            then = "it may still confirm: retry it to resume it; settle it only once it failed"
        super().__init__(
            f"{kind} refund {ref!r} not settled nor moved to a new key: the CPO wallet's "
            f"transfer under {text!r} is {state} (wallet status {status}); {then}"
        )
        self.kind = kind
        self.ref = ref
        self.key = key
        self.state = state
        self.status = status


class RefundWalletError(RefundActionError):
    """The CPO wallet's record of a refund's transfer could not be read (its state file is
    locked, damaged or of another version): the refund is not settled, as nothing shows that
    the transfer cannot pay it (the listing shows such a transfer as `unknown`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the CPO wallet's records cannot be read: {reason}")
        self.reason = reason
