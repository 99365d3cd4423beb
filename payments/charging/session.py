"""The sans-I/O charging session core: transaction events in, session state and decisions out.

The CSMS adapters (`csms16`, `csms201`) turn OCPP messages into `TransactionEvent`s; this module
holds no sockets, clocks or databases. A session is keyed by (charge point, transaction id) and
each event by (charge point, transaction id, `seq_no`):

- OCPP 2.0.1: `TransactionEvent` Started / Updated / Ended with the charger's `seqNo`;
- OCPP 1.6: StartTransaction is seq 0, StopTransaction is `STOP_SEQ`, and a MeterValues sample,
  which has no seqNo, is keyed by its time and reading (`ChargingSession.sample_seq`): its
  timestamp in ms times `SAMPLE_SLOTS`, plus a slot per distinct reading stamped that ms (a
  clock-aligned and a periodic sample often share a whole second). A resent sample finds its
  slot again, so it is recognised all the same.

Events a charger queued while offline arrive late and out of order: each key is applied once, and
nothing depends on the order. The meter register only grows, so the energy delivered is the
highest register reading minus the start register (`meterStart`, or the lowest reading until the
Started event arrives); the time is from the Started (or earliest) timestamp to the Ended (or
latest) one. A reading below the start register is refused (`EventConflictError`).

After each event the session is priced with the `Pricing` callable it was given (the OCPI tariff
engine's price, or a flat per-kWh price) and checked against its `SessionLimits`: it emits one
`StopSession` decision when the unpaid amount would pass the margin by the next meter value (the
energy of the last step again, unpaid: pay as you charge), or when the prepaid energy or time is
reached. `ChargingSession.decide(now_s)` checks the time limit between meter values (the
CSMS's clock tick).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Final

from .errors import EventConflictError, MalformedEventError, SessionLimitError

if TYPE_CHECKING:
    from collections.abc import Callable

    Pricing = Callable[[int, int, int], int]
    """The price in minor units of a session `(start_s, energy_wh, duration_s)`: its start
    (Unix seconds, for tariffs by time of day), energy and length."""

STOP_SEQ: Final = 2**31 - 1
"""The seq of an OCPP 1.6 StopTransaction (2.0.1 seqNo values stay below it in practice)."""
MAX_SEQ: Final = 2**53
"""The largest seq accepted (a 1.6 sample's key, `SAMPLE_SLOTS` per ms, fits well below)."""
SAMPLE_SLOTS: Final = 16
"""Distinct readings a 1.6 transaction may have stamped with one millisecond."""
MIN_SAMPLE_MS: Final = 2 * 86_400_000
"""The earliest 1.6 sample time taken, 1970-01-03 (Unix ms): every key from it on lies above
`STOP_SEQ`."""
MAX_REGISTER_WH: Final = 10**15
"""The largest meter register reading accepted (a petawatt-hour)."""
MAX_ID_LENGTH: Final = 64
"""Charge point ids, transaction ids and id tokens: at most 64 characters."""
MAX_SIGNED_LENGTH: Final = 8192
"""The longest `signedMeterValue` kept."""
MAX_EVENTS_PER_SESSION: Final = 100_000
"""Events kept per session (a 15-minute charger runs for three years before reaching it)."""
MAX_SESSIONS_PER_CHARGE_POINT: Final = 64
MAX_SESSIONS: Final = 100_000


class EventKind(Enum):
    """Where in the transaction an event sits."""

    STARTED = "Started"
    UPDATED = "Updated"
    ENDED = "Ended"


class StopReason(Enum):
    """Why the core asks for a session to stop."""

    PAYMENT_LAG = "payment-lag"
    PREPAID_ENERGY = "prepaid-energy"
    PREPAID_TIME = "prepaid-time"


def _check_id(name: str, value: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
        raise MalformedEventError(name, f"must be 1-{MAX_ID_LENGTH} characters")


def _check_int(name: str, value: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise MalformedEventError(name, f"must be an integer in 0..{maximum}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionEvent:
    """One transaction event of a charger, in either protocol version."""

    charge_point: str
    """The station's id (the last path segment of its WebSocket URL)."""
    transaction_id: str
    """The transaction's id (1.6: the CSMS-assigned integer, as text)."""
    seq_no: int
    """The event's key within the transaction (see the module docstring)."""
    kind: EventKind
    """Started, Updated or Ended."""
    timestamp_s: int
    """When the charger took the event (Unix seconds)."""
    register_wh: int | None = None
    """The energy import register (Wh), if the event carries a reading."""
    signed_meter_value: str | None = None
    """The charger's signed reading (2.0.1 `signedMeterValue.signedMeterData`), kept verbatim."""
    offline: bool = False
    """True if the charger queued the event while offline."""
    id_token: str | None = None
    """The driver's token, on Started events."""

    def __post_init__(self) -> None:
        _check_id("charge_point", self.charge_point)
        _check_id("transaction_id", self.transaction_id)
        _check_int("seq_no", self.seq_no, MAX_SEQ)
        if not isinstance(self.kind, EventKind):
            raise MalformedEventError("kind", "must be an EventKind")
        _check_int("timestamp_s", self.timestamp_s, 2**40)
        if self.register_wh is not None:
            _check_int("register_wh", self.register_wh, MAX_REGISTER_WH)
        if self.signed_meter_value is not None and not (
            isinstance(self.signed_meter_value, str)
            and len(self.signed_meter_value) <= MAX_SIGNED_LENGTH
        ):
            raise MalformedEventError("signed_meter_value", f"at most {MAX_SIGNED_LENGTH} chars")
        if self.id_token is not None:
            _check_id("id_token", self.id_token)

    @property
    def key(self) -> tuple[str, str]:
        """The session this event belongs to."""
        return (self.charge_point, self.transaction_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionLimits:
    """When the core asks to stop a session."""

    margin: int | None = None
    """Pay as you charge: the most the driver may owe before the session is stopped (None: no
    payment is expected, e.g. a roaming contract driver billed by CDR)."""
    energy_wh: int | None = None
    """Prepaid: stop once this much energy is delivered."""
    duration_s: int | None = None
    """Prepaid: stop once the session has lasted this long."""

    def __post_init__(self) -> None:
        for name in ("margin", "energy_wh", "duration_s"):
            value = getattr(self, name)
            if value is not None:
                _check_int(f"SessionLimits.{name}", value, MAX_REGISTER_WH)


@dataclass(frozen=True, slots=True, kw_only=True)
class StopSession:
    """A decision: ask the charger to stop this transaction (1.6 RemoteStopTransaction, 2.0.1
    RequestStopTransaction)."""

    charge_point: str
    """The station."""
    transaction_id: str
    """The transaction."""
    reason: StopReason
    """Why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedReading:
    """A signed meter value kept with its session."""

    seq_no: int
    """The event it came with."""
    register_wh: int | None
    """The reading it signs, as the charger reported it."""
    data: str
    """The signed data, verbatim."""


@dataclass(slots=True)
class ChargingSession:
    """One transaction's state. Changed only by `apply`, `credit` and `tick`."""

    key: tuple[str, str]
    pricing: Pricing
    limits: SessionLimits = field(default_factory=SessionLimits)
    id_token: str | None = None
    seen: dict[int, int | None] = field(default_factory=dict)
    """The seq of each event applied, with its register reading."""
    start_wh: int | None = None
    low_wh: int | None = None
    high_wh: int | None = None
    start_s: int | None = None
    first_s: int | None = None
    last_s: int | None = None
    end_s: int | None = None
    started_seq: int | None = None
    ended_seq: int | None = None
    paid: int = 0
    step_wh: int = 0
    stopped_for: StopReason | None = None
    """Why the core asked to stop the session (it asks once)."""
    signed: list[SignedReading] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return self.ended_seq is not None

    @property
    def energy_wh(self) -> int:
        """Energy delivered so far: highest reading minus the start register."""
        start = self.start_wh if self.start_wh is not None else self.low_wh
        if start is None or self.high_wh is None:
            return 0
        return self.high_wh - start

    @property
    def start_time_s(self) -> int:
        """When the session started (the Started event, or the earliest one; 0 before any)."""
        start = self.start_s if self.start_s is not None else self.first_s
        return 0 if start is None else start

    @property
    def duration_s(self) -> int:
        """Seconds from the start (or earliest event) to the end (or latest event)."""
        start = self.start_s if self.start_s is not None else self.first_s
        end = self.end_s if self.end_s is not None else self.last_s
        if start is None or end is None:
            return 0
        return max(0, end - start)

    def billed(self) -> int:
        """What the session costs so far."""
        return self.pricing(self.start_time_s, self.energy_wh, self.duration_s)

    def due(self) -> int:
        """What the driver owes now."""
        return max(0, self.billed() - self.paid)

    def sample_seq(self, ms: int, register_wh: int | None) -> int:
        """The seq of a 1.6 sample stamped `ms` (Unix ms) with `register_wh`: `ms *
        SAMPLE_SLOTS` plus the slot of an applied sample with the same reading (a resend), else
        the first free slot; a sample without a reading takes the first slot (a repeat when one
        is applied: it adds only a time already known). `MalformedEventError` for a time before
        `MIN_SAMPLE_MS` (its key could be seq 0 or `STOP_SEQ`, the start's and the stop's), or
        for more than `SAMPLE_SLOTS` readings stamped with one ms."""
        if ms < MIN_SAMPLE_MS:
            raise MalformedEventError("meter_value.timestamp", "before 1970-01-03")
        base = ms * SAMPLE_SLOTS
        for seq in range(base, base + SAMPLE_SLOTS):
            if seq not in self.seen or register_wh is None or self.seen[seq] == register_wh:
                return seq
        raise MalformedEventError(
            "meter_value", f"more than {SAMPLE_SLOTS} readings stamped at {ms} ms"
        )

    def repeated(self, event: TransactionEvent) -> bool:
        """Whether `event` was applied already; `EventConflictError` if its seq was applied
        with another register reading (a resent message carries the same one: a second reading
        under one key is not a repeat, and dropping it silently would lose it). A missing
        reading on either side is no conflict."""
        if event.seq_no not in self.seen:
            return False
        held = self.seen[event.seq_no]
        if held is not None and event.register_wh is not None and held != event.register_wh:
            raise EventConflictError(
                self.key,
                f"seq {event.seq_no} again with register {event.register_wh} "
                f"(was {self.seen[event.seq_no]})",
            )
        return True

    def check(self, event: TransactionEvent) -> None:
        """Every refusal of `apply`, before anything changes."""
        if event.key != self.key:
            raise EventConflictError(self.key, f"event for {event.key}")
        if len(self.seen) >= MAX_EVENTS_PER_SESSION:
            raise EventConflictError(self.key, "too many events")
        if event.kind is EventKind.STARTED and self.started_seq is not None:
            raise EventConflictError(self.key, f"second Started (seq {event.seq_no})")
        if event.kind is EventKind.ENDED and self.ended_seq is not None:
            raise EventConflictError(self.key, f"second Ended (seq {event.seq_no})")
        reading = event.register_wh
        if event.kind is EventKind.STARTED and reading is not None:
            if self.low_wh is not None and self.low_wh < reading:
                raise EventConflictError(self.key, "meterStart above a reading already seen")
        elif reading is not None and self.start_wh is not None and reading < self.start_wh:
            raise EventConflictError(self.key, f"register {reading} below start {self.start_wh}")

    def apply(self, event: TransactionEvent) -> bool:
        """Apply `event` once; False (and nothing changes) if it was applied already
        (`repeated`)."""
        if self.repeated(event):
            return False
        self.check(event)
        self.seen[event.seq_no] = event.register_wh
        t, reading = event.timestamp_s, event.register_wh
        self.first_s = t if self.first_s is None else min(self.first_s, t)
        self.last_s = t if self.last_s is None else max(self.last_s, t)
        if reading is not None:
            if self.high_wh is not None and reading > self.high_wh:
                self.step_wh = reading - self.high_wh
            self.low_wh = reading if self.low_wh is None else min(self.low_wh, reading)
            self.high_wh = reading if self.high_wh is None else max(self.high_wh, reading)
        if event.kind is EventKind.STARTED:
            self.started_seq = event.seq_no
            self.start_s = t
            self.start_wh = reading
            self.id_token = event.id_token or self.id_token
        elif event.kind is EventKind.ENDED:
            self.ended_seq = event.seq_no
            self.end_s = t
        if event.signed_meter_value is not None:
            self.signed.append(
                SignedReading(
                    seq_no=event.seq_no, register_wh=reading, data=event.signed_meter_value
                )
            )
        return True

    def credit(self, amount: int) -> None:
        """Count `amount` paid by the driver."""
        _check_int("amount", amount, 2**64 - 1)
        self.paid += amount

    def decide(self, now_s: int | None = None) -> StopSession | None:
        """A `StopSession` the first time a limit is passed while the session runs; `now_s`, if
        given, extends the duration for the time limit (a clock tick between meter values)."""
        if self.ended or self.stopped_for is not None:
            return None
        reason = self._reason(now_s)
        if reason is None:
            return None
        self.stopped_for = reason
        return StopSession(charge_point=self.key[0], transaction_id=self.key[1], reason=reason)

    def _reason(self, now_s: int | None) -> StopReason | None:
        limits = self.limits
        if limits.margin is not None:
            # stop when the driver would owe more than the margin one meter interval from now
            # (the charger stops within one interval): the last step's energy again, unpaid
            next_wh = self.energy_wh + self.step_wh
            projected = self.pricing(self.start_time_s, next_wh, self.duration_s) - self.paid
            if projected > limits.margin:
                return StopReason.PAYMENT_LAG
        if limits.energy_wh is not None and self.energy_wh >= limits.energy_wh:
            return StopReason.PREPAID_ENERGY
        if limits.duration_s is not None:
            start = self.start_s if self.start_s is not None else self.first_s
            elapsed = self.duration_s
            if now_s is not None and start is not None:
                elapsed = max(elapsed, now_s - start)
            if elapsed >= limits.duration_s:
                return StopReason.PREPAID_TIME
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """What applying one event did."""

    session: ChargingSession
    """The session it belongs to."""
    new: bool
    """False for an event applied before (a resent or replayed one)."""
    stop: StopSession | None
    """A stop decision it triggered, if any."""


class SessionBook:
    """Every session of a CSMS, bounded per charge point and in total."""

    __slots__ = ("_by_station", "_default_limits", "pricing", "sessions")

    def __init__(self, pricing: Pricing, limits: SessionLimits | None = None) -> None:
        self.pricing = pricing
        self._default_limits = limits or SessionLimits()
        self.sessions: dict[tuple[str, str], ChargingSession] = {}
        self._by_station: dict[str, dict[str, ChargingSession]] = {}
        """charge point -> transaction id -> its session (`at`: a charge point's sessions
        without a walk over every session's)."""

    def open(
        self,
        key: tuple[str, str],
        limits: SessionLimits | None = None,
        *,
        pricing: Pricing | None = None,
    ) -> ChargingSession:
        """The session `key`, created if new; `limits` and `pricing`, if given, replace the
        book's defaults (a session first seen through a late event is bound when its Started
        event arrives). `SessionLimitError` beyond the bounds."""
        found = self.sessions.get(key)
        if found is not None:
            if limits is not None:
                found.limits = limits
            if pricing is not None:
                found.pricing = pricing
            return found
        _check_id("charge_point", key[0])
        _check_id("transaction_id", key[1])
        if len(self.sessions) >= MAX_SESSIONS:
            raise SessionLimitError("in total", MAX_SESSIONS)
        station = self._by_station.get(key[0], {})
        if len(station) >= MAX_SESSIONS_PER_CHARGE_POINT:
            raise SessionLimitError(f"charge point {key[0]}", MAX_SESSIONS_PER_CHARGE_POINT)
        session = ChargingSession(
            key=key, pricing=pricing or self.pricing, limits=limits or self._default_limits
        )
        self.sessions[key] = session
        self._by_station[key[0]] = station
        station[key[1]] = session
        return session

    def apply(self, event: TransactionEvent) -> Applied:
        """Apply `event` to its session (created if new) and decide."""
        session = self.open(event.key)
        new = session.apply(event)
        return Applied(session=session, new=new, stop=session.decide() if new else None)

    def close(self, key: tuple[str, str]) -> None:
        """Forget an ended, billed session (its record stays in the store)."""
        if self.sessions.pop(key, None) is not None:
            station = self._by_station[key[0]]
            del station[key[1]]
            if not station:
                del self._by_station[key[0]]

    def at(self, charge_point: str) -> list[ChargingSession]:
        """The sessions of `charge_point` (at most `MAX_SESSIONS_PER_CHARGE_POINT`)."""
        return list(self._by_station.get(charge_point, {}).values())
