"""Strict parsing of OCPI tariff JSON: each broken rule raises its named error."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from payments.charging import ocpi_json
from payments.charging.errors import (
    ChargingError,
    ExcessPrecisionError,
    InvalidTariffError,
    InvalidUsageError,
    OcpiFieldError,
    UnknownCurrencyError,
    UnknownEnumError,
)
from payments.charging.ocpi_tariff import parse_tariff
from payments.charging.tariff import ChargingPeriod, PeriodKind, Usage

BASE: dict[str, object] = {
    "country_code": "NL",
    "party_id": "TNM",
    "id": "1",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [{"type": "ENERGY", "price": 0.25, "vat": 10.0, "step_size": 1}],
            "restrictions": {"start_time": "08:00", "day_of_week": ["MONDAY"]},
        }
    ],
    "last_updated": "2020-01-01T00:00:00Z",
}


def _parse(text: str) -> object:
    return parse_tariff(ocpi_json.loads(text))


def _with(path: tuple[object, ...], value: object) -> str:
    doc = copy.deepcopy(BASE)
    target: object = doc
    for key in path[:-1]:
        target = target[key]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    return json.dumps(doc)


COMPONENT = ("elements", 0, "price_components", 0)
RESTRICTIONS = ("elements", 0, "restrictions")


def test_the_base_document_parses() -> None:
    tariff = _parse(json.dumps(BASE))
    assert tariff.elements[0].price_components[0].price == 250_000  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        ((*COMPONENT, "type"), "KWH", UnknownEnumError),
        ((*COMPONENT, "type"), 1, UnknownEnumError),
        ((*RESTRICTIONS, "day_of_week"), ["MONDAY", "FUNDAY"], UnknownEnumError),
        ((*RESTRICTIONS, "reservation"), "MAYBE", UnknownEnumError),
        (("type",), "CHEAPEST", UnknownEnumError),
        ((*COMPONENT, "price"), "0.25", OcpiFieldError),
        ((*COMPONENT, "price"), True, OcpiFieldError),
        ((*COMPONENT, "price"), -1, OcpiFieldError),
        ((*COMPONENT, "step_size"), 1.5, OcpiFieldError),
        ((*COMPONENT, "step_size"), -1, OcpiFieldError),
        ((*RESTRICTIONS, "start_time"), "8:00", OcpiFieldError),
        ((*RESTRICTIONS, "start_time"), "24:00", OcpiFieldError),
        ((*RESTRICTIONS, "start_date"), "2020-02-30", OcpiFieldError),
        ((*RESTRICTIONS, "day_of_week"), ["MONDAY", "MONDAY"], OcpiFieldError),
        ((*RESTRICTIONS, "min_duration"), -5, OcpiFieldError),
        (("elements",), [], OcpiFieldError),
        (("elements",), {}, OcpiFieldError),
        (("id",), "x" * 37, OcpiFieldError),
        (("last_updated",), "2020-01-01 00:00:00", OcpiFieldError),
        (("currency",), "XXX", UnknownCurrencyError),
        ((*COMPONENT, "vat"), 10.001, ExcessPrecisionError),
        ((*RESTRICTIONS, "min_kwh"), 1.0001, ExcessPrecisionError),
        (("min_price",), {"excl_vat": 1.001}, ExcessPrecisionError),
        (("min_price",), {"excl_vat": 2.00}, None),
        (("max_price",), {"excl_vat": 1.00}, None),
    ],
)
def test_a_broken_rule_raises_its_named_error(
    path: tuple[object, ...], value: object, error: type[ChargingError] | None
) -> None:
    if error is None:
        _parse(_with(path, value))
        return
    with pytest.raises(error):
        _parse(_with(path, value))


def test_min_price_above_max_price_cannot_be_priced() -> None:
    doc = json.loads(_with(("min_price",), {"excl_vat": 2.00}))
    doc["max_price"] = {"excl_vat": 1.00}
    with pytest.raises(InvalidTariffError, match="min_price"):
        _parse(json.dumps(doc))


def test_a_reservation_element_prices_only_flat_and_time() -> None:
    with pytest.raises(InvalidTariffError, match="reservation"):
        _parse(_with((*RESTRICTIONS, "reservation"), "RESERVATION"))


@pytest.mark.parametrize(
    "text",
    [
        '{"id": "1", "id": "2"}',
        '{"price": NaN}',
        "[1, 2",
        " " * (ocpi_json.MAX_DOCUMENT_BYTES + 1),
        "[" * 100_000,
    ],
)
def test_hostile_documents_raise_a_field_error(text: str) -> None:
    with pytest.raises(OcpiFieldError):
        ocpi_json.loads(text)


def test_too_many_elements_are_refused() -> None:
    element = BASE["elements"][0]  # type: ignore[index]
    with pytest.raises(OcpiFieldError, match="elements"):
        _parse(_with(("elements",), [element] * 101))


def test_a_usage_that_is_not_a_timeline_is_refused() -> None:
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    charging = ChargingPeriod(start=start, kind=PeriodKind.CHARGING)
    later = start + dt.timedelta(hours=1)
    with pytest.raises(InvalidUsageError, match="before the start"):
        Usage(start=later, end=start, periods=(charging,))
    with pytest.raises(InvalidUsageError, match="time zone"):
        Usage(start=start.replace(tzinfo=None), end=later, periods=(charging,))
    with pytest.raises(InvalidUsageError, match="energy"):
        Usage(
            start=start,
            end=later,
            periods=(ChargingPeriod(start=start, kind=PeriodKind.PARKING, energy_wh=5),),
        )
    with pytest.raises(InvalidUsageError, match="reservation"):
        Usage(
            start=start,
            end=later,
            periods=(
                charging,
                ChargingPeriod(start=start + dt.timedelta(minutes=1), kind=PeriodKind.RESERVATION),
            ),
        )
