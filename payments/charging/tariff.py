"""OCPI 2.2.1 tariffs as value objects, and what a session used, in exact integer units.

A `Tariff` is what the CPO publishes (parsed from and written to OCPI JSON by
`payments.charging.ocpi_tariff`); a `Usage` is what one session used, as a timeline of
`ChargingPeriod`s; `payments.charging.tariff_pricing.price` turns the two into a `Cost`.

Units, all integers: money in minor units of the currency (cents for EUR), unit prices in
1/10,000 of a minor unit (`PRICE_SUBUNITS`) so a price of 0.2345 EUR/kWh is exact; VAT in basis
points (1/100 of a percent, 10.0 % is 1000); energy in Wh; current in mA; power in W; time in
whole seconds (timestamps are timezone-aware and carry no fraction of a second).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from .errors import InvalidUsageError

PRICE_SUBUNITS = 10_000
"""A unit price is stored in 1/PRICE_SUBUNITS of the currency's minor unit."""
VAT_SUBUNITS = 10_000
"""VAT is stored in basis points: 1/VAT_SUBUNITS of the amount is one unit (100 % is 10,000)."""
MAX_PERIODS = 10_000
"""The most charging periods one `Usage` may have."""
MAX_SESSION_SECONDS = 62 * 24 * 3600
"""The longest `Usage` (reservation included) that is priced: two months."""


class TariffDimensionType(enum.Enum):
    """What a price component bills: per kWh, per session, per hour parked, per hour charging."""

    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class TariffType(enum.Enum):
    """Which sessions a tariff is for (OCPI `TariffType`); absent means all of them."""

    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


class DayOfWeek(enum.Enum):
    """A day of the week; the value is Python's `date.weekday()`."""

    MONDAY = 0
    TUESDAY = 1
    WEDNESDAY = 2
    THURSDAY = 3
    FRIDAY = 4
    SATURDAY = 5
    SUNDAY = 6


class ReservationRestrictionType(enum.Enum):
    """An element that prices a reservation, or a reservation that expired unused."""

    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class PeriodKind(enum.Enum):
    """What the car did during a charging period: which time dimension it is billed in."""

    RESERVATION = "RESERVATION"
    """The EVSE was reserved; the session had not started (TIME of reservation elements)."""
    CHARGING = "CHARGING"
    """The car was charging (TIME, ENERGY)."""
    PARKING = "PARKING"
    """The car was plugged in or parked, not charging (PARKING_TIME)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    """An amount in minor units, excluding and (when known) including VAT (OCPI `Price`)."""

    excl_vat: int
    """Minor units, excluding VAT."""
    incl_vat: int | None = None
    """Minor units, including VAT; None when it is not known."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DisplayText:
    """A text in one language (OCPI `DisplayText`)."""

    language: str
    """ISO 639-1 code."""
    text: str
    """The text, at most 512 characters."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceComponent:
    """One priced dimension of a tariff element."""

    type: TariffDimensionType
    """What it bills."""
    price: int
    """Excluding VAT, in 1/PRICE_SUBUNITS minor units per kWh (ENERGY), per hour (TIME,
    PARKING_TIME) or per session (FLAT)."""
    vat: int | None
    """VAT in basis points; None means no VAT is given (unlike 0, a known 0 %)."""
    step_size: int
    """Billing block in Wh (ENERGY) or seconds (TIME, PARKING_TIME); unused for FLAT."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TariffRestrictions:
    """When a tariff element is active. Every bound present must hold; lower bounds are
    inclusive, upper bounds exclusive. Times of day and dates are local to the location."""

    start_time: int | None = None
    """Minute of the day (0-1439) from which the element is active."""
    end_time: int | None = None
    """Minute of the day until which it is active; below `start_time` it runs past midnight."""
    start_date: dt.date | None = None
    """First local date it is active."""
    end_date: dt.date | None = None
    """First local date it is no longer active."""
    min_wh: int | None = None
    """Energy used so far in the session from which it is active."""
    max_wh: int | None = None
    """Energy used so far until which it is active."""
    min_current_ma: int | None = None
    """Charging current (all phases) from which it is active."""
    max_current_ma: int | None = None
    """Charging current below which it is active."""
    min_power_w: int | None = None
    """Charging power from which it is active."""
    max_power_w: int | None = None
    """Charging power below which it is active."""
    min_duration_s: int | None = None
    """Session duration from which it is active."""
    max_duration_s: int | None = None
    """Session duration below which it is active."""
    day_of_week: tuple[DayOfWeek, ...] = ()
    """Local days it is active on; empty means every day."""
    reservation: ReservationRestrictionType | None = None
    """Present: the element prices reservations (only FLAT and TIME), never charging."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TariffElement:
    """Price components that apply together while the restrictions hold."""

    price_components: tuple[PriceComponent, ...]
    """At least one."""
    restrictions: TariffRestrictions | None = None
    """None: always active (for non-reservation periods)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Tariff:
    """An OCPI 2.2.1 Tariff. Per dimension, the first active element with a component of that
    dimension prices it; no active element means that dimension is free."""

    country_code: str
    """ISO 3166 alpha-2 country of the CPO that owns the tariff."""
    party_id: str
    """The owning CPO's party id (3 characters)."""
    id: str
    """Unique within the CPO's platform (at most 36 characters)."""
    currency: str
    """ISO 4217 code."""
    elements: tuple[TariffElement, ...]
    """At least one."""
    last_updated: dt.datetime
    """When the tariff was last changed (UTC)."""
    type: TariffType | None = None
    """Which sessions the tariff is for; None: all."""
    tariff_alt_text: tuple[DisplayText, ...] = ()
    """Human-readable explanation, per language."""
    tariff_alt_url: str | None = None
    """A web page explaining the tariff."""
    min_price: Price | None = None
    """A session costs at least this (excl. and, if given, incl. VAT, each on its own)."""
    max_price: Price | None = None
    """A session costs at most this."""
    start_date_time: dt.datetime | None = None
    """When the tariff becomes valid."""
    end_date_time: dt.datetime | None = None
    """When it stops being valid."""
    energy_mix: tuple[tuple[str, object], ...] | None = None
    """The OCPI EnergyMix object, kept as its sorted (key, value) pairs; not priced."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingPeriod:
    """A stretch of a session with constant kind, current and power; it lasts until the next
    period's start (or the session's end)."""

    start: dt.datetime
    """When the period starts (timezone-aware, whole seconds)."""
    kind: PeriodKind
    """Reserved, charging or parking."""
    energy_wh: int = 0
    """Energy delivered during the period, spread evenly over it; 0 unless CHARGING."""
    current_ma: int | None = None
    """Charging current over all phases; None when unknown (current restrictions fail)."""
    power_w: int | None = None
    """Charging power; None when unknown (power restrictions fail)."""


def _check_instant(name: str, when: dt.datetime) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidUsageError(name, "a timestamp without a time zone")
    if when.microsecond:
        raise InvalidUsageError(name, "timestamps are whole seconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """What one session used: a timeline of periods from `start` to `end`. Reservation periods
    come first; the charging session starts with the first other period."""

    start: dt.datetime
    """Start of the first period (of the reservation, if there was one)."""
    end: dt.datetime
    """End of the last period."""
    periods: tuple[ChargingPeriod, ...]
    """In order, the first starting at `start`, each before `end`."""
    time_zone: dt.tzinfo = dt.UTC
    """The location's time zone, for times of day, days of week and dates."""
    reservation_expired: bool = False
    """The reservation expired unused: every period is RESERVATION."""
    energy_wh: int = field(init=False)
    """Total energy delivered."""

    def __post_init__(self) -> None:
        _check_instant("start", self.start)
        _check_instant("end", self.end)
        if self.end < self.start:
            raise InvalidUsageError("end", "before the start")
        if (self.end - self.start).total_seconds() > MAX_SESSION_SECONDS:
            raise InvalidUsageError("end", f"longer than {MAX_SESSION_SECONDS} s")
        if not self.periods:
            raise InvalidUsageError("periods", "none")
        if len(self.periods) > MAX_PERIODS:
            raise InvalidUsageError("periods", f"more than {MAX_PERIODS}")
        if self.periods[0].start != self.start:
            raise InvalidUsageError("periods", "the first does not start at the session start")
        previous: ChargingPeriod | None = None
        for number, period in enumerate(self.periods):
            name = f"periods[{number}]"
            _check_instant(name, period.start)
            if previous is not None and period.start <= previous.start:
                raise InvalidUsageError(name, "does not start after the previous period")
            if period.start >= self.end and self.start != self.end:
                raise InvalidUsageError(name, "starts at or after the session end")
            if period.energy_wh < 0 or (period.energy_wh and period.kind != PeriodKind.CHARGING):
                raise InvalidUsageError(name, "energy is negative or outside charging")
            if (period.current_ma or 0) < 0 or (period.power_w or 0) < 0:
                raise InvalidUsageError(name, "negative current or power")
            if (
                previous is not None
                and previous.kind != PeriodKind.RESERVATION
                and (period.kind == PeriodKind.RESERVATION)
            ):
                raise InvalidUsageError(name, "a reservation after the session started")
            if self.reservation_expired and period.kind != PeriodKind.RESERVATION:
                raise InvalidUsageError(name, "charging after an expired reservation")
            previous = period
        object.__setattr__(self, "energy_wh", sum(p.energy_wh for p in self.periods))


@dataclass(frozen=True, slots=True, kw_only=True)
class Cost:
    """What a session costs under a tariff, in minor units of `currency`, with the volumes
    billed (after `step_size` rounding) and the cost per dimension (before min/max price)."""

    currency: str
    """ISO 4217 code of the tariff."""
    total: Price
    """The session's cost after `min_price` and `max_price`; `incl_vat` None when a priced
    component gives no VAT."""
    fixed: Price
    """FLAT components of the charging session."""
    energy: Price
    """ENERGY components."""
    time: Price
    """TIME components of the charging session."""
    parking: Price
    """PARKING_TIME components."""
    reservation: Price
    """FLAT and TIME components of reservation elements."""
    billed_energy_wh: int
    """Energy billed, rounded up by the step size."""
    billed_time_s: int
    """Charging time billed."""
    billed_parking_s: int
    """Parking time billed."""
    billed_reservation_s: int
    """Reservation time billed."""
