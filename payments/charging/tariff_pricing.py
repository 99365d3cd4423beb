"""`price(tariff, usage) -> Cost`: an OCPI 2.2.1 tariff applied to what a session used, in exact
integer arithmetic.

The rules, as OCPI 2.2.1 `mod_tariffs` states them:

- The usage is cut into segments wherever a restriction could change its answer: at the period
  boundaries, at every local start/end time of day and midnight, where the session duration
  crosses a `min_duration`/`max_duration`, and where the energy used so far crosses a
  `min_kwh`/`max_kwh` (energy is spread evenly over its period). Within a segment every
  restriction has one answer, taken at the segment's start.
- Per dimension, the first element that is active and has a component of that dimension prices
  the segment; with none, the dimension is free there. Reservation periods are priced by the
  elements restricted to RESERVATION (and, for an expired reservation, first by those restricted
  to RESERVATION_EXPIRES); charging and parking periods by the other elements.
- `step_size` rounds up only at the end of a run of one dimension: the total volume of the run
  is rounded up to the step of its last component and the extra is billed at that component's
  price; a run ends when the session does, or when the dimension turns unpriced. Parking after
  the last charging that lies wholly within the extra charging time billed is not billed (the
  spec's step_size example #1: 2 parked minutes within 5 extra minutes of charging); longer
  parking is billed in full (its complex example: 42 minutes after 3 extra minutes bill 45).
- FLAT is billed once for the charging session and once for the reservation, from the first
  active element with a FLAT component at their start.
- Money is summed exactly and rounded half up to minor units only at the end (per dimension for
  the breakdown, once for the total); VAT is summed exactly over all components too.
- `min_price` and `max_price` bound the total excluding and including VAT, each on its own;
  where a bound gives no `incl_vat`, the amount including VAT scales with the bounded amount.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from .tariff import (
    PRICE_SUBUNITS,
    VAT_SUBUNITS,
    ChargingPeriod,
    Cost,
    PeriodKind,
    Price,
    PriceComponent,
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
    TariffType,
    Usage,
)

_UNIT = 3_600_000
"""Exact cost is counted in 1/(PRICE_SUBUNITS * _UNIT) minor units: per kWh prices times Wh
times 3600, per hour prices times seconds times 1000, flat prices times _UNIT."""
_FACTOR = {
    TariffDimensionType.ENERGY: 3600,
    TariffDimensionType.TIME: 1000,
    TariffDimensionType.PARKING_TIME: 1000,
    TariffDimensionType.FLAT: _UNIT,
}
_DENOMINATOR = PRICE_SUBUNITS * _UNIT


@dataclass(frozen=True, slots=True, kw_only=True)
class _Segment:
    start: int
    end: int
    period: ChargingPeriod
    energy_wh: int
    energy_before_wh: int
    """Energy used in the session before the segment."""
    elapsed_s: int
    """Seconds since the start of the session (of the reservation, for reservation periods)."""


@dataclass(slots=True)
class _Bucket:
    excl: int = 0
    vat: int = 0
    vat_known: bool = True

    def add(self, component: PriceComponent, volume: int) -> None:
        amount = component.price * volume * _FACTOR[component.type]
        self.excl += amount
        if component.vat is None:
            self.vat_known = self.vat_known and amount == 0
        else:
            self.vat += amount * component.vat

    def merge(self, other: _Bucket) -> None:
        self.excl += other.excl
        self.vat += other.vat
        self.vat_known = self.vat_known and other.vat_known

    def incl_exact(self) -> int:
        """Including VAT, in 1/(_DENOMINATOR * VAT_SUBUNITS) minor units."""
        return self.excl * VAT_SUBUNITS + self.vat

    def price(self) -> Price:
        incl = _round(self.incl_exact(), _DENOMINATOR * VAT_SUBUNITS) if self.vat_known else None
        return Price(excl_vat=_round(self.excl, _DENOMINATOR), incl_vat=incl)


def _round(numerator: int, denominator: int) -> int:
    """Half up, for non-negative amounts."""
    return (2 * numerator + denominator) // (2 * denominator)


def _epoch(when: dt.datetime) -> int:
    return int(when.timestamp())


def _cut_points(tariff: Tariff, usage: Usage, start: int, end: int) -> set[int]:
    """Local midnights and the start/end times of day of every restriction in (start, end)."""
    minutes = {0}
    for element in tariff.elements:
        if element.restrictions is not None:
            minutes.update(
                m
                for m in (element.restrictions.start_time, element.restrictions.end_time)
                if m is not None
            )
    zone = usage.time_zone
    day = dt.datetime.fromtimestamp(start, zone).date()
    last = dt.datetime.fromtimestamp(end, zone).date()
    points = set()
    while day <= last:
        for minute in minutes:
            local = dt.datetime.combine(day, dt.time(minute // 60, minute % 60), tzinfo=zone)
            point = _epoch(local)
            if start < point < end:
                points.add(point)
        day += dt.timedelta(days=1)
    return points


def _thresholds(tariff: Tariff) -> tuple[set[int], set[int]]:
    """The energy (Wh) and duration (s) bounds of every restriction."""
    energy: set[int] = set()
    duration: set[int] = set()
    for element in tariff.elements:
        r = element.restrictions
        if r is not None:
            energy.update(v for v in (r.min_wh, r.max_wh) if v is not None)
            duration.update(v for v in (r.min_duration_s, r.max_duration_s) if v is not None)
    return energy, duration


def _segments(tariff: Tariff, usage: Usage) -> list[_Segment]:
    energy_bounds, duration_bounds = _thresholds(tariff)
    session_end = _epoch(usage.end)
    charging_start = next(
        (_epoch(p.start) for p in usage.periods if p.kind != PeriodKind.RESERVATION), None
    )
    segments = []
    energy_before = 0
    for number, period in enumerate(usage.periods):
        start = _epoch(period.start)
        end = (
            _epoch(usage.periods[number + 1].start)
            if number + 1 < len(usage.periods)
            else (session_end)
        )
        reserving = period.kind == PeriodKind.RESERVATION
        origin = _epoch(usage.start) if reserving or charging_start is None else charging_start
        length = end - start
        points = _cut_points(tariff, usage, start, end)
        points.update(origin + d for d in duration_bounds if start < origin + d < end)
        if period.energy_wh and length:
            for bound in energy_bounds:
                needed = bound - energy_before
                if 0 < needed < period.energy_wh:
                    offset = -(-needed * length // period.energy_wh)
                    if 0 < offset < length:
                        points.add(start + offset)
        edges = [start, *sorted(points), end]
        used = 0
        for a, b in itertools.pairwise(edges):
            upto = period.energy_wh if b == end else period.energy_wh * (b - start) // length
            segments.append(
                _Segment(
                    start=a,
                    end=b,
                    period=period,
                    energy_wh=upto - used,
                    energy_before_wh=energy_before + used,
                    elapsed_s=a - origin,
                )
            )
            used = upto
        energy_before += period.energy_wh
    return segments


def _time_of_day_holds(r: TariffRestrictions, minute: int) -> bool:
    if r.start_time is None and r.end_time is None:
        return True
    begin = 0 if r.start_time is None else r.start_time
    finish = 24 * 60 if r.end_time is None or r.end_time == 0 else r.end_time
    if begin == finish:
        return True
    if begin < finish:
        return begin <= minute < finish
    return minute >= begin or minute < finish


def _within(value: int | None, low: int | None, high: int | None) -> bool:
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value < high)


def _active(r: TariffRestrictions | None, segment: _Segment, zone: dt.tzinfo) -> bool:
    if r is None:
        return True
    local = dt.datetime.fromtimestamp(segment.start, zone)
    charging = segment.period.kind == PeriodKind.CHARGING
    current = segment.period.current_ma if charging else 0
    power = segment.period.power_w if charging else 0
    return (
        _time_of_day_holds(r, local.hour * 60 + local.minute)
        and (r.start_date is None or local.date() >= r.start_date)
        and (r.end_date is None or local.date() < r.end_date)
        and (not r.day_of_week or any(d.value == local.weekday() for d in r.day_of_week))
        and _within(segment.energy_before_wh, r.min_wh, r.max_wh)
        and _within(current, r.min_current_ma, r.max_current_ma)
        and _within(power, r.min_power_w, r.max_power_w)
        and _within(segment.elapsed_s, r.min_duration_s, r.max_duration_s)
    )


def _candidates(tariff: Tariff, usage: Usage, kind: PeriodKind) -> list[TariffElement]:
    """The elements that may price a period of `kind`, in the order they are tried."""

    def reservation(element: TariffElement) -> ReservationRestrictionType | None:
        return None if element.restrictions is None else element.restrictions.reservation

    if kind != PeriodKind.RESERVATION:
        return [e for e in tariff.elements if reservation(e) is None]
    kinds = [ReservationRestrictionType.RESERVATION]
    if usage.reservation_expired:
        kinds.insert(0, ReservationRestrictionType.RESERVATION_EXPIRES)
    return [e for k in kinds for e in tariff.elements if reservation(e) == k]


def _component(
    elements: list[TariffElement], dimension: TariffDimensionType, segment: _Segment, usage: Usage
) -> PriceComponent | None:
    for element in elements:
        found = next((c for c in element.price_components if c.type == dimension), None)
        if found is not None and _active(element.restrictions, segment, usage.time_zone):
            return found
    return None


def _bill_runs(pieces: list[tuple[PriceComponent | None, int]]) -> tuple[_Bucket, int, int]:
    """Bill one dimension's (component, volume) pieces in session order: round each run up at
    its end. Returns the bucket, the volume billed, and the extra billed on the last run if it
    was still open at the session's end."""
    bucket = _Bucket()
    billed = extra = run_volume = 0
    last: PriceComponent | None = None
    for component, volume in [*pieces, (None, 0)]:
        if component is None:
            if last is not None:
                step = max(last.step_size, 1)
                extra = -(-run_volume // step) * step - run_volume
                bucket.add(last, extra)
                billed += run_volume + extra
            last, run_volume = None, 0
            continue
        bucket.add(component, volume)
        last, run_volume = component, run_volume + volume
    return bucket, billed, extra if pieces and pieces[-1][0] is not None else 0


def price(tariff: Tariff, usage: Usage) -> Cost:
    """What `usage` costs under `tariff`."""
    segments = _segments(tariff, usage)
    energy: list[tuple[PriceComponent | None, int]] = []
    time: list[tuple[PriceComponent | None, int]] = []
    parking: list[tuple[PriceComponent | None, int]] = []
    reserved: list[tuple[PriceComponent | None, int]] = []
    fixed = _Bucket()
    reservation = _Bucket()
    flat_done: set[bool] = set()
    for segment in segments:
        kind = segment.period.kind
        elements = _candidates(tariff, usage, kind)
        is_reservation = kind == PeriodKind.RESERVATION
        if is_reservation not in flat_done:
            flat_done.add(is_reservation)
            flat = _component(elements, TariffDimensionType.FLAT, segment, usage)
            if flat is not None:
                (reservation if is_reservation else fixed).add(flat, 1)
        seconds = segment.end - segment.start
        if is_reservation:
            found = _component(elements, TariffDimensionType.TIME, segment, usage)
            reserved.append((found, seconds))
        elif kind == PeriodKind.PARKING:
            found = _component(elements, TariffDimensionType.PARKING_TIME, segment, usage)
            parking.append((found, seconds))
        else:
            found = _component(elements, TariffDimensionType.TIME, segment, usage)
            time.append((found, seconds))
            found = _component(elements, TariffDimensionType.ENERGY, segment, usage)
            energy.append((found, segment.energy_wh))
    time_bucket, time_s, cover = _bill_runs(time)
    if cover:
        parking = _covered(segments, parking, cover)
    energy_bucket, energy_wh, _ = _bill_runs(energy)
    parking_bucket, parking_s, _ = _bill_runs(parking)
    reserved_bucket, reserved_s, _ = _bill_runs(reserved)
    reservation.merge(reserved_bucket)
    total = _Bucket()
    for bucket in (fixed, energy_bucket, time_bucket, parking_bucket, reservation):
        total.merge(bucket)
    return Cost(
        currency=tariff.currency,
        total=_bounded(tariff, total),
        fixed=fixed.price(),
        energy=energy_bucket.price(),
        time=time_bucket.price(),
        parking=parking_bucket.price(),
        reservation=reservation.price(),
        billed_energy_wh=energy_wh,
        billed_time_s=time_s,
        billed_parking_s=parking_s,
        billed_reservation_s=reserved_s,
    )


def _covered(
    segments: list[_Segment], parking: list[tuple[PriceComponent | None, int]], cover: int
) -> list[tuple[PriceComponent | None, int]]:
    """`parking`, with the parking after the last charging segment left out when all of it
    falls within the `cover` seconds of charging billed beyond the time charged."""
    kinds = [s.period.kind for s in segments if s.period.kind != PeriodKind.RESERVATION]
    last_charging = max(i for i, k in enumerate(kinds) if k == PeriodKind.CHARGING)
    parked_before = sum(1 for k in kinds[:last_charging] if k == PeriodKind.PARKING)
    after = parking[parked_before:]
    if sum(seconds for _, seconds in after) > cover:
        return parking
    return [*parking[:parked_before], *((component, 0) for component, _ in after)]


def _bounded(tariff: Tariff, total: _Bucket) -> Price:
    """The total, within the tariff's `min_price` and `max_price`."""
    exact = total.price()
    excl, incl = exact.excl_vat, exact.incl_vat
    for bound, below in ((tariff.min_price, True), (tariff.max_price, False)):
        if bound is None:
            continue
        if (excl < bound.excl_vat) if below else (excl > bound.excl_vat):
            if incl is not None and bound.incl_vat is None:
                incl = (
                    _round(total.incl_exact() * bound.excl_vat, total.excl * VAT_SUBUNITS)
                    if total.excl
                    else None
                )
            excl = bound.excl_vat
        if incl is not None and bound.incl_vat is not None:
            incl = max(incl, bound.incl_vat) if below else min(incl, bound.incl_vat)
    return Price(excl_vat=excl, incl_vat=incl)


def tariff_in_force(
    tariffs: tuple[Tariff, ...], when: dt.datetime, profile: TariffType | None = None
) -> Tariff | None:
    """The tariff a session starting at `when` is priced by: the first of a connector's
    `tariffs` valid then (`start_date_time` inclusive, `end_date_time` exclusive) whose `type`
    is `profile` or absent (valid for every session). OCPI leaves the order to the CPO; the
    driver accepts the tariff in force when the session starts."""
    for tariff in tariffs:
        if tariff.start_date_time is not None and when < tariff.start_date_time:
            continue
        if tariff.end_date_time is not None and when >= tariff.end_date_time:
            continue
        if tariff.type is None or tariff.type == profile:
            return tariff
    return None
