"""OCPI Sessions, Tokens and CDRs: the official examples parse strictly and round-trip; a CDR
built from a finished session carries the tariff's price; a credit CDR cancels it; the CDR hash
is BLAKE2b-256 of the canonical JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import pytest

from payments.charging import ocpi_json
from payments.charging.errors import (
    CurrencyMismatchError,
    InvalidUsageError,
    OcpiFieldError,
    UnknownEnumError,
)
from payments.charging.ocpi_cdr import (
    Cdr,
    build_cdr,
    cdr_hash,
    cdr_to_json,
    credit_cdr,
    parse_cdr,
    usage_from_cdr,
)
from payments.charging.ocpi_location import parse_cdr_location
from payments.charging.ocpi_session import (
    CdrDimensionType,
    Session,
    SessionStatus,
    parse_session,
    parse_token,
    patch_session,
    patch_token,
    session_to_json,
    token_to_json,
)
from payments.charging.ocpi_tariff import parse_tariff
from payments.charging.tariff import PeriodKind, Price
from payments.charging.tariff_pricing import price

from .vectors import at, load, names, usage


def _cdr_example() -> Cdr:
    return parse_cdr(load("cdr_example.json"))


def test_the_cdr_example_round_trips_and_reprices_to_its_own_totals() -> None:
    raw = load("cdr_example.json")
    cdr = parse_cdr(raw)
    assert ocpi_json.loads(ocpi_json.dumps(cdr_to_json(cdr))) == raw
    assert cdr.total_cost == Price(excl_vat=400, incl_vat=440)
    assert cdr.total_time == 19_730  # 1.973 h
    assert price(cdr.tariffs[0], usage_from_cdr(cdr)).total == cdr.total_cost


@pytest.mark.parametrize("name", names("session_example") or ["absent"])
def test_every_session_example_round_trips(name: str) -> None:
    raw = load(name)
    assert ocpi_json.loads(ocpi_json.dumps(session_to_json(parse_session(raw)))) == raw


@pytest.mark.parametrize("name", names("token_example") + names("token_put") or ["absent"])
def test_every_token_example_round_trips(name: str) -> None:
    raw = load(name)
    assert ocpi_json.loads(ocpi_json.dumps(token_to_json(parse_token(raw)))) == raw


def test_the_patch_examples_apply() -> None:
    session = parse_session(load("session_example_1_simple_start.json"))
    patched = patch_session(session, load("session_patch_example_charging_period.json"))
    assert patched.kwh == 150_000
    assert patched.charging_periods[0].dimensions[0].type == CdrDimensionType.ENERGY
    patched = patch_session(patched, load("session_patch_example_total_cost.json"))
    assert patched.total_cost == Price(excl_vat=60, incl_vat=66)
    token = parse_token(load("token_example_2_full_rfid.json"))
    assert not patch_token(token, load("token_patch_example.json")).valid
    with pytest.raises(UnknownEnumError):
        patch_session(session, {"status": "DONE"})


def _finished_session() -> Session:
    session = parse_session(load("session_example_1_simple_start.json"))
    return dataclasses.replace(
        session, status=SessionStatus.COMPLETED, end_date_time=at(12, day=29), kwh=200_000
    )


def _built() -> Cdr:
    tariff = parse_tariff(load("tariff_10_025kwh_parking_start.json"))
    location = _cdr_example().cdr_location
    session = usage(at(10), (PeriodKind.CHARGING, 120, 20_000), (PeriodKind.PARKING, 40, 0))
    return build_cdr(_finished_session(), session, tariff, location, cdr_id="CDR-1", now=at(13))


def test_a_cdr_built_from_a_session_carries_the_tariffs_price() -> None:
    cdr = _built()
    assert cdr.total_cost == Price(excl_vat=700, incl_vat=790)  # the spec's figures
    assert cdr.total_energy_cost == Price(excl_vat=500, incl_vat=550)
    assert cdr.total_parking_cost == Price(excl_vat=150, incl_vat=180)
    assert cdr.total_energy == 200_000  # 20 kWh
    assert cdr.total_time == 26_667  # 160 min in hours, 4 decimals
    assert cdr.total_parking_time == 6_667
    assert [p.dimensions[-1].type for p in cdr.charging_periods] == [
        CdrDimensionType.TIME,
        CdrDimensionType.PARKING_TIME,
    ]
    again = parse_cdr(ocpi_json.loads(ocpi_json.dumps(cdr_to_json(cdr))))
    assert again == cdr
    assert price(again.tariffs[0], usage_from_cdr(again)).total == cdr.total_cost


def test_build_refuses_an_unfinished_session_or_another_currency() -> None:
    tariff = parse_tariff(load("tariff_8_simple_025kwh.json"))
    location = _cdr_example().cdr_location
    session = usage(at(10), (PeriodKind.CHARGING, 60, 1_000))
    running = dataclasses.replace(_finished_session(), end_date_time=None)
    with pytest.raises(InvalidUsageError, match="not ended"):
        build_cdr(running, session, tariff, location, cdr_id="x", now=at(13))
    with pytest.raises(CurrencyMismatchError):
        build_cdr(
            dataclasses.replace(_finished_session(), currency="USD"),
            session,
            tariff,
            location,
            cdr_id="x",
            now=at(13),
        )


def test_a_credit_cdr_negates_every_amount_and_names_the_original() -> None:
    cdr = _built()
    credit = credit_cdr(cdr, cdr_id="CDR-1-C", now=at(14))
    assert credit.credit
    assert credit.credit_reference_id == "CDR-1"
    assert credit.total_cost == Price(excl_vat=-700, incl_vat=-790)
    assert credit.total_parking_cost == Price(excl_vat=-150, incl_vat=-180)
    assert credit.total_energy == cdr.total_energy
    assert parse_cdr(ocpi_json.loads(ocpi_json.dumps(cdr_to_json(credit)))) == credit
    with pytest.raises(OcpiFieldError, match="credit"):
        credit_cdr(credit, cdr_id="again", now=at(15))


def test_negative_amounts_only_on_a_credit_cdr() -> None:
    doc = dict(cdr_to_json(credit_cdr(_built(), cdr_id="C", now=at(14))))
    del doc["credit"]
    with pytest.raises(OcpiFieldError, match="negative"):
        parse_cdr(ocpi_json.loads(ocpi_json.dumps(doc)))
    doc = dict(cdr_to_json(_built())) | {"credit": True}
    with pytest.raises(OcpiFieldError, match="credit_reference_id"):
        parse_cdr(ocpi_json.loads(ocpi_json.dumps(doc)))


def test_the_cdr_hash_is_blake2b_256_of_the_canonical_json() -> None:
    cdr = _built()
    text = ocpi_json.dumps(cdr_to_json(cdr))
    assert cdr_hash(cdr) == hashlib.blake2b(text.encode(), digest_size=32).digest()
    assert " " not in text.replace("Gent Zuid", "").replace("F.Rooseveltlaan 3A", "")
    reparsed = parse_cdr(ocpi_json.loads(text))
    assert cdr_hash(reparsed) == cdr_hash(cdr)
    assert cdr_hash(dataclasses.replace(cdr, total_energy=cdr.total_energy + 1)) != cdr_hash(cdr)


def test_an_unknown_connector_standard_is_refused() -> None:
    raw = load("cdr_example.json")
    assert isinstance(raw, dict)
    location = dict(raw["cdr_location"]) | {"connector_standard": "USB_C"}
    with pytest.raises(UnknownEnumError, match="ConnectorType"):
        parse_cdr_location(location, "cdr_location")


def test_a_usage_read_from_a_cdr_keeps_its_period_kinds() -> None:
    cdr = _built()
    read = usage_from_cdr(cdr, time_zone=dt.UTC)
    assert [p.kind for p in read.periods] == [PeriodKind.CHARGING, PeriodKind.PARKING]
    assert read.energy_wh == 20_000
