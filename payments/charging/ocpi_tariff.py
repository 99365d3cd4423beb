"""The OCPI 2.2.1 Tariff object in JSON: strict parsing into `Tariff`, and back.

Prices become integers of 1/PRICE_SUBUNITS minor units of the tariff's currency (so 0.25 EUR/kWh
is 250,000), VAT basis points, kWh Wh, A mA, kW W. A value finer than its unit, an unknown enum
member, a negative price or a tariff that cannot be priced is refused with a named error.
`tariff_to_json(parse_tariff(o))` gives back `o`'s OCPI fields with the same values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import ocpi_json as j
from .errors import InvalidTariffError, OcpiFieldError
from .tariff import (
    PRICE_SUBUNITS,
    DayOfWeek,
    DisplayText,
    Price,
    PriceComponent,
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
    TariffType,
)

if TYPE_CHECKING:
    import datetime as dt

MAX_ELEMENTS = 100
"""The most elements one tariff may have."""
MAX_COMPONENTS = 8
"""The most price components one element may have."""
_PRICE_DIGITS = len(str(PRICE_SUBUNITS)) - 1
_RESERVATION_DIMENSIONS = frozenset({TariffDimensionType.FLAT, TariffDimensionType.TIME})


def parse_price(value: object, path: str, currency: str, *, signed: bool = False) -> Price:
    """An OCPI Price in exact minor units of `currency` (negative only if `signed`)."""
    o = j.obj(value, path)
    digits = j.currency_digits(currency)
    excl = j.need_scaled(o, "excl_vat", path, digits, signed=signed)
    incl = j.scaled(o, "incl_vat", path, digits, required=False, signed=signed)
    return Price(excl_vat=excl, incl_vat=incl)


def price_to_json(price: Price, currency: str) -> dict[str, object]:
    digits = j.currency_digits(currency)
    out: dict[str, object] = {"excl_vat": j.decimal(price.excl_vat, digits)}
    if price.incl_vat is not None:
        out["incl_vat"] = j.decimal(price.incl_vat, digits)
    return out


def parse_display_text(value: object, path: str) -> DisplayText:
    o = j.obj(value, path)
    return DisplayText(
        language=j.need_text(o, "language", path, max_len=2),
        text=j.need_text(o, "text", path, max_len=512),
    )


def _component(value: object, path: str, digits: int) -> PriceComponent:
    o = j.obj(value, path)
    kind = j.need_member(TariffDimensionType, o, "type", path)
    price = j.need_scaled(o, "price", path, digits + _PRICE_DIGITS)
    vat = j.scaled(o, "vat", path, 2, required=False)
    step = j.integer(o, "step_size", path) or 0
    if step < 0:
        raise OcpiFieldError(f"{path}.step_size", "negative")
    return PriceComponent(type=kind, price=price, vat=vat, step_size=step)


def _restrictions(value: object, path: str) -> TariffRestrictions:
    o = j.obj(value, path)
    days = tuple(
        j.member(DayOfWeek, {"day": d}, "day", f"{path}.day_of_week[{n}]")
        for n, d in enumerate(j.items(o.get("day_of_week"), f"{path}.day_of_week", required=False))
    )
    if len(set(days)) != len(days):
        raise OcpiFieldError(f"{path}.day_of_week", "a day given twice")
    restrictions = TariffRestrictions(
        start_time=j.time_of_day(o, "start_time", path),
        end_time=j.time_of_day(o, "end_time", path),
        start_date=j.date(o, "start_date", path),
        end_date=j.date(o, "end_date", path),
        min_wh=j.scaled(o, "min_kwh", path, 3, required=False),
        max_wh=j.scaled(o, "max_kwh", path, 3, required=False),
        min_current_ma=j.scaled(o, "min_current", path, 3, required=False),
        max_current_ma=j.scaled(o, "max_current", path, 3, required=False),
        min_power_w=j.scaled(o, "min_power", path, 3, required=False),
        max_power_w=j.scaled(o, "max_power", path, 3, required=False),
        min_duration_s=j.integer(o, "min_duration", path, required=False),
        max_duration_s=j.integer(o, "max_duration", path, required=False),
        day_of_week=tuple(d for d in days if d is not None),
        reservation=j.member(ReservationRestrictionType, o, "reservation", path, required=False),
    )
    for name in ("min_duration_s", "max_duration_s"):
        if (getattr(restrictions, name) or 0) < 0:
            raise OcpiFieldError(f"{path}.{name.removesuffix('_s')}", "negative")
    return restrictions


def _element(value: object, path: str, digits: int, tariff_id: str) -> TariffElement:
    o = j.obj(value, path)
    raw = j.items(o.get("price_components"), f"{path}.price_components")
    if not raw or len(raw) > MAX_COMPONENTS:
        raise OcpiFieldError(f"{path}.price_components", f"not 1 to {MAX_COMPONENTS} entries")
    components = tuple(
        _component(c, f"{path}.price_components[{n}]", digits) for n, c in enumerate(raw)
    )
    restrictions = None if o.get("restrictions") is None else _restrictions(o["restrictions"], path)
    reservation = restrictions is not None and restrictions.reservation is not None
    if reservation and any(c.type not in _RESERVATION_DIMENSIONS for c in components):
        raise InvalidTariffError(tariff_id, f"{path}: a reservation prices only FLAT, TIME")
    return TariffElement(price_components=components, restrictions=restrictions)


def parse_tariff(value: object, path: str = "tariff") -> Tariff:
    """A Tariff object (already parsed by `ocpi_json.loads`), strictly."""
    o = j.obj(value, path)
    tariff_id = j.need_text(o, "id", path, max_len=36)
    currency = j.need_text(o, "currency", path, max_len=3)
    digits = j.currency_digits(currency)
    raw = j.items(o.get("elements"), f"{path}.elements")
    if not raw or len(raw) > MAX_ELEMENTS:
        raise OcpiFieldError(f"{path}.elements", f"not 1 to {MAX_ELEMENTS} entries")
    elements = tuple(
        _element(e, f"{path}.elements[{n}]", digits, tariff_id) for n, e in enumerate(raw)
    )
    alt = j.items(o.get("tariff_alt_text"), f"{path}.tariff_alt_text", required=False)
    mix = o.get("energy_mix")
    last_updated = j.need_timestamp(o, "last_updated", path)
    tariff = Tariff(
        country_code=j.need_text(o, "country_code", path, max_len=2),
        party_id=j.need_text(o, "party_id", path, max_len=3),
        id=tariff_id,
        currency=currency,
        elements=elements,
        last_updated=last_updated,
        type=j.member(TariffType, o, "type", path, required=False),
        tariff_alt_text=tuple(
            parse_display_text(t, f"{path}.tariff_alt_text[{n}]") for n, t in enumerate(alt)
        ),
        tariff_alt_url=j.text(o, "tariff_alt_url", path, max_len=2048, required=False),
        min_price=None
        if o.get("min_price") is None
        else parse_price(o["min_price"], f"{path}.min_price", currency),
        max_price=None
        if o.get("max_price") is None
        else parse_price(o["max_price"], f"{path}.max_price", currency),
        start_date_time=j.timestamp(o, "start_date_time", path, required=False),
        end_date_time=j.timestamp(o, "end_date_time", path, required=False),
        energy_mix=None if mix is None else tuple(sorted(j.obj(mix, "energy_mix").items())),
    )
    low, high = tariff.min_price, tariff.max_price
    if low is not None and high is not None and low.excl_vat > high.excl_vat:
        raise InvalidTariffError(tariff_id, "min_price is above max_price")
    return tariff


def _restrictions_to_json(r: TariffRestrictions) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, minutes in (("start_time", r.start_time), ("end_time", r.end_time)):
        if minutes is not None:
            out[key] = f"{minutes // 60:02d}:{minutes % 60:02d}"
    for key, day in (("start_date", r.start_date), ("end_date", r.end_date)):
        if day is not None:
            out[key] = day.isoformat()
    scaled: tuple[tuple[str, int | None], ...] = (
        ("min_kwh", r.min_wh),
        ("max_kwh", r.max_wh),
        ("min_current", r.min_current_ma),
        ("max_current", r.max_current_ma),
        ("min_power", r.min_power_w),
        ("max_power", r.max_power_w),
    )
    out.update((key, j.decimal(v, 3)) for key, v in scaled if v is not None)
    durations = (("min_duration", r.min_duration_s), ("max_duration", r.max_duration_s))
    out.update((key, seconds) for key, seconds in durations if seconds is not None)
    if r.day_of_week:
        out["day_of_week"] = [d.name for d in r.day_of_week]
    if r.reservation is not None:
        out["reservation"] = r.reservation.name
    return out


def tariff_to_json(tariff: Tariff) -> dict[str, object]:
    """The OCPI JSON object of `tariff` (numbers as `Decimal`; write it with `ocpi_json.dumps`)."""
    digits = j.currency_digits(tariff.currency) + _PRICE_DIGITS
    elements = []
    for element in tariff.elements:
        components: list[dict[str, object]] = []
        for c in element.price_components:
            component: dict[str, object] = {
                "type": c.type.name,
                "price": j.decimal(c.price, digits),
                "step_size": c.step_size,
            }
            if c.vat is not None:
                component["vat"] = j.decimal(c.vat, 2)
            components.append(component)
        entry: dict[str, object] = {"price_components": components}
        if element.restrictions is not None:
            entry["restrictions"] = _restrictions_to_json(element.restrictions)
        elements.append(entry)
    out: dict[str, object] = {
        "country_code": tariff.country_code,
        "party_id": tariff.party_id,
        "id": tariff.id,
        "currency": tariff.currency,
        "elements": elements,
        "last_updated": j.format_timestamp(tariff.last_updated),
    }
    optional: dict[str, object | None] = {
        "type": None if tariff.type is None else tariff.type.name,
        "tariff_alt_url": tariff.tariff_alt_url,
        "min_price": _price_or_none(tariff.min_price, tariff.currency),
        "max_price": _price_or_none(tariff.max_price, tariff.currency),
        "start_date_time": _time_or_none(tariff.start_date_time),
        "end_date_time": _time_or_none(tariff.end_date_time),
        "energy_mix": None if tariff.energy_mix is None else dict(tariff.energy_mix),
    }
    out.update((k, v) for k, v in optional.items() if v is not None)
    if tariff.tariff_alt_text:
        out["tariff_alt_text"] = [
            {"language": t.language, "text": t.text} for t in tariff.tariff_alt_text
        ]
    return out


def _price_or_none(price: Price | None, currency: str) -> dict[str, object] | None:
    return None if price is None else price_to_json(price, currency)


def _time_or_none(when: dt.datetime | None) -> str | None:
    return None if when is None else j.format_timestamp(when)
