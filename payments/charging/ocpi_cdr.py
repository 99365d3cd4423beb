"""The OCPI 2.2.1 CDR: the only billing-relevant object between a CPO and an eMSP.

`build_cdr` makes one from a finished `Session`, what it used (`Usage`) and its tariff, priced
by `tariff_pricing.price`. A CDR is immutable once sent; a wrong one is corrected by a credit
CDR (`credit_cdr`: the same volumes, every amount negated, `credit_reference_id` naming it) and
a new CDR. `cdr_hash` is BLAKE2b-256 over the canonical JSON (`ocpi_json.dumps`): the
commitment put on the ledger. `usage_from_cdr` reads a CDR's periods back into a `Usage`, so a
CDR received can be re-priced against its own tariffs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, replace

from . import ocpi_json as j
from .errors import CurrencyMismatchError, InvalidUsageError, OcpiFieldError
from .ocpi_location import CdrLocation, cdr_location_to_json, parse_cdr_location
from .ocpi_session import (
    VOLUME_DIGITS,
    AuthMethod,
    CdrChargingPeriod,
    CdrDimension,
    CdrDimensionType,
    CdrToken,
    Session,
    cdr_token_to_json,
    charging_period_to_json,
    parse_cdr_token,
    parse_charging_period,
)
from .ocpi_tariff import parse_price, parse_tariff, price_to_json, tariff_to_json
from .tariff import ChargingPeriod, PeriodKind, Price, Tariff, Usage
from .tariff_pricing import price

_HOUR = 10_000
"""One hour (one kWh, one A) in 10**-VOLUME_DIGITS units."""
_COSTS = ("fixed", "energy", "time", "parking", "reservation")


@dataclass(frozen=True, slots=True, kw_only=True)
class Cdr:
    """An OCPI Charge Detail Record; amounts in minor units of `currency`, volumes in
    10**-VOLUME_DIGITS kWh or hours."""

    country_code: str
    party_id: str
    id: str
    start_date_time: dt.datetime
    end_date_time: dt.datetime
    cdr_token: CdrToken
    auth_method: AuthMethod
    cdr_location: CdrLocation
    currency: str
    charging_periods: tuple[CdrChargingPeriod, ...]
    total_cost: Price
    total_energy: int
    total_time: int
    last_updated: dt.datetime
    session_id: str | None = None
    authorization_reference: str | None = None
    meter_id: str | None = None
    tariffs: tuple[Tariff, ...] = ()
    total_fixed_cost: Price | None = None
    total_energy_cost: Price | None = None
    total_time_cost: Price | None = None
    total_parking_time: int | None = None
    total_parking_cost: Price | None = None
    total_reservation_cost: Price | None = None
    remark: str | None = None
    invoice_reference_id: str | None = None
    credit: bool = False
    """A credit CDR: every amount negative, cancelling `credit_reference_id`."""
    credit_reference_id: str | None = None
    home_charging_compensation: bool | None = None


def _hours(seconds: int) -> int:
    return (2 * seconds * _HOUR + 3600) // 7200


def build_cdr(
    session: Session,
    usage: Usage,
    tariff: Tariff,
    location: CdrLocation,
    *,
    cdr_id: str,
    now: dt.datetime,
) -> Cdr:
    """The CDR of a finished session that used `usage`, priced by `tariff`."""
    if session.currency != tariff.currency:
        raise CurrencyMismatchError(session.currency, tariff.currency)
    if session.end_date_time is None:
        raise InvalidUsageError("end", "the session has not ended")
    cost = price(tariff, usage)
    bounds = [p.start for p in usage.periods[1:]] + [usage.end]
    periods = []
    time = parking = 0
    for period, end in zip(usage.periods, bounds, strict=True):
        seconds = int((end - period.start).total_seconds())
        dimensions = []
        if period.kind == PeriodKind.CHARGING:
            dimensions.append(
                CdrDimension(type=CdrDimensionType.ENERGY, volume=period.energy_wh * 10)
            )
            time += seconds
        elif period.kind == PeriodKind.PARKING:
            parking += seconds
        kind = {
            PeriodKind.CHARGING: CdrDimensionType.TIME,
            PeriodKind.PARKING: CdrDimensionType.PARKING_TIME,
            PeriodKind.RESERVATION: CdrDimensionType.RESERVATION_TIME,
        }[period.kind]
        dimensions.append(CdrDimension(type=kind, volume=_hours(seconds)))
        if period.current_ma is not None:
            dimensions.append(
                CdrDimension(type=CdrDimensionType.CURRENT, volume=period.current_ma * 10)
            )
        if period.power_w is not None:
            dimensions.append(CdrDimension(type=CdrDimensionType.POWER, volume=period.power_w * 10))
        periods.append(
            CdrChargingPeriod(
                start_date_time=period.start, dimensions=tuple(dimensions), tariff_id=tariff.id
            )
        )
    return Cdr(
        country_code=session.country_code,
        party_id=session.party_id,
        id=cdr_id,
        start_date_time=usage.start,
        end_date_time=usage.end,
        session_id=session.id,
        cdr_token=session.cdr_token,
        auth_method=session.auth_method,
        authorization_reference=session.authorization_reference,
        cdr_location=location,
        meter_id=session.meter_id,
        currency=tariff.currency,
        tariffs=(tariff,),
        charging_periods=tuple(periods),
        total_cost=cost.total,
        total_fixed_cost=cost.fixed,
        total_energy=usage.energy_wh * 10,
        total_energy_cost=cost.energy,
        total_time=_hours(time + parking),
        total_time_cost=cost.time,
        total_parking_time=_hours(parking),
        total_parking_cost=cost.parking,
        total_reservation_cost=cost.reservation,
        last_updated=now,
    )


def _negated(amount: Price) -> Price:
    incl = None if amount.incl_vat is None else -amount.incl_vat
    return Price(excl_vat=-amount.excl_vat, incl_vat=incl)


def credit_cdr(original: Cdr, *, cdr_id: str, now: dt.datetime) -> Cdr:
    """The credit CDR that cancels `original`: same volumes, every amount negated."""
    if original.credit:
        raise OcpiFieldError("credit", f"CDR {original.id!r} is itself a credit CDR")
    costs: dict[str, Price | None] = {}
    for name in (f"total_{c}_cost" for c in _COSTS):
        amount: Price | None = getattr(original, name)
        costs[name] = None if amount is None else _negated(amount)
    return replace(
        original,
        id=cdr_id,
        total_cost=_negated(original.total_cost),
        credit=True,
        credit_reference_id=original.id,
        invoice_reference_id=None,
        last_updated=now,
        **costs,  # type: ignore[arg-type]
    )


def cdr_hash(cdr: Cdr) -> bytes:
    """BLAKE2b-256 of the CDR's canonical JSON: what the ledger commits to."""
    return hashlib.blake2b(j.dumps(cdr_to_json(cdr)).encode(), digest_size=32).digest()


def usage_from_cdr(cdr: Cdr, *, time_zone: dt.tzinfo = dt.UTC) -> Usage:
    """The usage a CDR's periods describe (energy of a CDR whose periods carry none: its
    `total_energy`, in the first charging period)."""
    periods = []
    for n, period in enumerate(cdr.charging_periods):
        volumes = {d.type: d.volume for d in period.dimensions}
        if CdrDimensionType.RESERVATION_TIME in volumes:
            kind = PeriodKind.RESERVATION
        elif CdrDimensionType.PARKING_TIME in volumes and CdrDimensionType.TIME not in volumes:
            kind = PeriodKind.PARKING
        else:
            kind = PeriodKind.CHARGING
        energy = volumes.get(CdrDimensionType.ENERGY, 0)
        if energy % 10:
            raise InvalidUsageError(f"charging_periods[{n}]", "energy finer than 1 Wh")
        current = volumes.get(CdrDimensionType.CURRENT)
        power = volumes.get(CdrDimensionType.POWER)
        periods.append(
            ChargingPeriod(
                start=period.start_date_time,
                kind=kind,
                energy_wh=energy // 10 if kind == PeriodKind.CHARGING else 0,
                current_ma=None if current is None else current // 10,
                power_w=None if power is None else power // 10,
            )
        )
    if not any(p.energy_wh for p in periods) and cdr.total_energy:
        first = next((n for n, p in enumerate(periods) if p.kind == PeriodKind.CHARGING), None)
        if first is not None:
            periods[first] = replace(periods[first], energy_wh=cdr.total_energy // 10)
    return Usage(
        start=cdr.start_date_time,
        end=cdr.end_date_time,
        periods=tuple(periods),
        time_zone=time_zone,
    )


def parse_cdr(value: object, path: str = "cdr") -> Cdr:
    """A CDR object (already parsed by `ocpi_json.loads`), strictly."""
    o = j.obj(value, path)
    currency = j.need_text(o, "currency", path, max_len=3)
    credit = o.get("credit") is not None and j.boolean(o, "credit", path)
    reference = j.text(o, "credit_reference_id", path, max_len=39, required=False)
    if credit and reference is None:
        raise OcpiFieldError(f"{path}.credit_reference_id", "missing on a credit CDR")

    def money(key: str, *, required: bool = False) -> Price | None:
        if o.get(key) is None and not required:
            return None
        return parse_price(o.get(key), f"{path}.{key}", currency, signed=credit)

    tariffs = j.items(o.get("tariffs"), f"{path}.tariffs", required=False)
    periods = j.items(o.get("charging_periods"), f"{path}.charging_periods")
    if not periods:
        raise OcpiFieldError(f"{path}.charging_periods", "empty")
    total_cost = money("total_cost", required=True)
    if total_cost is None:  # the reader raised already; this narrows the type
        raise OcpiFieldError(f"{path}.total_cost", "missing")
    home = o.get("home_charging_compensation")
    return Cdr(
        country_code=j.need_text(o, "country_code", path, max_len=2),
        party_id=j.need_text(o, "party_id", path, max_len=3),
        id=j.need_text(o, "id", path, max_len=39),
        start_date_time=j.need_timestamp(o, "start_date_time", path),
        end_date_time=j.need_timestamp(o, "end_date_time", path),
        session_id=j.text(o, "session_id", path, max_len=36, required=False),
        cdr_token=parse_cdr_token(o.get("cdr_token"), f"{path}.cdr_token"),
        auth_method=j.need_member(AuthMethod, o, "auth_method", path),
        authorization_reference=j.text(
            o, "authorization_reference", path, max_len=36, required=False
        ),
        cdr_location=parse_cdr_location(o.get("cdr_location"), f"{path}.cdr_location"),
        meter_id=j.text(o, "meter_id", path, max_len=255, required=False),
        currency=currency,
        tariffs=tuple(parse_tariff(t, f"{path}.tariffs[{n}]") for n, t in enumerate(tariffs)),
        charging_periods=tuple(
            parse_charging_period(p, f"{path}.charging_periods[{n}]") for n, p in enumerate(periods)
        ),
        total_cost=total_cost,
        total_fixed_cost=money("total_fixed_cost"),
        total_energy=j.need_scaled(o, "total_energy", path, VOLUME_DIGITS),
        total_energy_cost=money("total_energy_cost"),
        total_time=j.need_scaled(o, "total_time", path, VOLUME_DIGITS),
        total_time_cost=money("total_time_cost"),
        total_parking_time=j.scaled(o, "total_parking_time", path, VOLUME_DIGITS, required=False),
        total_parking_cost=money("total_parking_cost"),
        total_reservation_cost=money("total_reservation_cost"),
        remark=j.text(o, "remark", path, max_len=255, required=False),
        invoice_reference_id=j.text(o, "invoice_reference_id", path, max_len=39, required=False),
        credit=credit,
        credit_reference_id=reference,
        home_charging_compensation=None
        if home is None
        else j.boolean(o, "home_charging_compensation", path),
        last_updated=j.need_timestamp(o, "last_updated", path),
    )


def cdr_to_json(cdr: Cdr) -> dict[str, object]:
    """The OCPI JSON object of `cdr` (write it with `ocpi_json.dumps`)."""
    out: dict[str, object] = {
        "country_code": cdr.country_code,
        "party_id": cdr.party_id,
        "id": cdr.id,
        "start_date_time": j.format_timestamp(cdr.start_date_time),
        "end_date_time": j.format_timestamp(cdr.end_date_time),
        "cdr_token": cdr_token_to_json(cdr.cdr_token),
        "auth_method": cdr.auth_method.name,
        "cdr_location": cdr_location_to_json(cdr.cdr_location),
        "currency": cdr.currency,
        "charging_periods": [charging_period_to_json(p) for p in cdr.charging_periods],
        "total_cost": price_to_json(cdr.total_cost, cdr.currency),
        "total_energy": j.decimal(cdr.total_energy, VOLUME_DIGITS),
        "total_time": j.decimal(cdr.total_time, VOLUME_DIGITS),
        "last_updated": j.format_timestamp(cdr.last_updated),
    }
    if cdr.tariffs:
        out["tariffs"] = [tariff_to_json(t) for t in cdr.tariffs]
    texts = {
        "session_id": cdr.session_id,
        "authorization_reference": cdr.authorization_reference,
        "meter_id": cdr.meter_id,
        "remark": cdr.remark,
        "invoice_reference_id": cdr.invoice_reference_id,
        "credit_reference_id": cdr.credit_reference_id,
    }
    out.update((k, v) for k, v in texts.items() if v is not None)
    for cost in _COSTS:
        amount = getattr(cdr, f"total_{cost}_cost")
        if amount is not None:
            out[f"total_{cost}_cost"] = price_to_json(amount, cdr.currency)
    if cdr.total_parking_time is not None:
        out["total_parking_time"] = j.decimal(cdr.total_parking_time, VOLUME_DIGITS)
    if cdr.credit:
        out["credit"] = True
    if cdr.home_charging_compensation is not None:
        out["home_charging_compensation"] = cdr.home_charging_compensation
    return out
