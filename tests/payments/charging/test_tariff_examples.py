"""Every official OCPI 2.2.1 tariff example parses strictly and round-trips, and prices to the
figures the spec text (mod_tariffs.asciidoc, 2.2.1) states for it."""

from __future__ import annotations

import datetime as dt

import pytest

from payments.charging import ocpi_json
from payments.charging.errors import OcpiFieldError
from payments.charging.ocpi_tariff import parse_tariff, tariff_to_json
from payments.charging.tariff import ChargingPeriod, PeriodKind, Price, Usage
from payments.charging.tariff_pricing import price

from .vectors import at, load, names, usage

CHARGING, PARKING, RESERVATION = PeriodKind.CHARGING, PeriodKind.PARKING, PeriodKind.RESERVATION


@pytest.mark.parametrize(
    "name", [n for n in names("tariff") if n != "tariff_put_example.json"] or ["absent"]
)
def test_every_tariff_example_parses_and_round_trips(name: str) -> None:
    raw = load(name)
    back = ocpi_json.loads(ocpi_json.dumps(tariff_to_json(parse_tariff(raw))))
    assert back == raw


def test_the_put_example_lacks_last_updated_and_is_refused() -> None:
    """The spec's PUT example omits `last_updated`, which the Tariff object requires."""
    with pytest.raises(OcpiFieldError, match=r"last_updated"):
        parse_tariff(load("tariff_put_example.json"))


def test_the_cdr_example_totals_come_out_exactly() -> None:
    """1.973 h (21:39:09 to 23:37:32) at 2.00/h billed per 300 s, 10 % VAT: 4.00 and 4.40."""
    cdr = load("cdr_example.json")
    assert isinstance(cdr, dict)
    tariff = parse_tariff(cdr["tariffs"][0])
    start, end = at(21, 39, 9), at(23, 37, 32)
    session = Usage(
        start=start,
        end=end,
        periods=(ChargingPeriod(start=start, kind=CHARGING, energy_wh=15342),),
    )
    cost = price(tariff, session)
    assert cost.total == Price(excl_vat=400, incl_vat=440)
    assert cost.time == Price(excl_vat=400, incl_vat=440)
    assert cost.billed_time_s == 7200


def _total(name: str, session: Usage) -> Price:
    return price(parse_tariff(load(name)), session).total


def P(excl: int, incl: int | None = None) -> Price:
    return Price(excl_vat=excl, incl_vat=incl)


@pytest.mark.parametrize(
    ("name", "session", "expected"),
    [
        # 0.25/kWh, 10 % VAT: 20 kWh
        ("tariff_8_simple_025kwh.json", usage(at(10), (CHARGING, 120, 20_000)), P(500, 550)),
        # with a 0.50 start fee at 20 % VAT
        ("tariff_9_025kwh_start.json", usage(at(10), (CHARGING, 120, 20_000)), P(550, 610)),
        # minimum price 0.50 / 0.55: 20 kWh is above it, 1 kWh below
        ("tariff_12_025kwh_min_price.json", usage(at(10), (CHARGING, 90, 20_000)), P(500, 550)),
        ("tariff_12_025kwh_min_price.json", usage(at(10), (CHARGING, 9, 1_000)), P(50, 55)),
        # start fee, energy, and 40 min parking billed per 15 min
        (
            "tariff_10_025kwh_parking_start.json",
            usage(at(10), (CHARGING, 120, 20_000), (PARKING, 40, 0)),
            P(700, 790),
        ),
        # max price 10.00 / 11.00: 50 kWh hits it, 30 kWh does not
        (
            "tariff_6_025kwh_start_max_price.json",
            usage(at(9), (CHARGING, 300, 50_000)),
            P(1000, 1100),
        ),
        (
            "tariff_6_025kwh_start_max_price.json",
            usage(at(9), (CHARGING, 200, 30_000)),
            P(800, 885),
        ),
        # 2.00/h charging for 2.5 h
        ("tariff_1_simple_2hour.json", usage(at(10), (CHARGING, 150, 9_000)), P(500, 550)),
        # 3.00/h charging 150 min, 5.00/h parking 42 min billed per 5 min
        (
            "tariff_13_simple_3hour_5parking.json",
            usage(at(10), (CHARGING, 150, 9_000), (PARKING, 42, 0)),
            P(1125, 1275),
        ),
        # 1.90/h, 5.2 % VAT, 2.5 h
        ("tariff_2_alt_text.json", usage(at(10), (CHARGING, 150, 9_000)), P(475, 500)),
        # the complex tariff: Monday 09:30, 147 min at 16 A, 42 min parking
        (
            "tariff_4_complex.json",
            usage(at(9, 30), (CHARGING, 147, 9_000), (PARKING, 42, 0), current_ma=16_000),
            P(875, 1000),
        ),
        # Saturday 13:30, 114 min at 43 A, 71 min parking
        (
            "tariff_4_complex.json",
            usage(at(13, 30, day=27), (CHARGING, 114, 9_000), (PARKING, 71, 0), current_ma=43_000),
            P(1250, 1413),
        ),
        # reservation 5.00/h for 15 min, then 20 kWh
        (
            "tariff_15_reservation_5_euro_per_hour.json",
            usage(at(10), (RESERVATION, 15, 0), (CHARGING, 90, 20_000)),
            P(675, 760),
        ),
        # reservation fee 2.00 and 5.00/h per 5 min for 13 min, then 20 kWh
        (
            "tariff_16_reservation_2_euro_fee_5_euro_per_hour.json",
            usage(at(10), (RESERVATION, 13, 0), (CHARGING, 90, 20_000)),
            P(875, 1000),
        ),
        # reservation 2.00/h per 10 min for 22 min, then 20 kWh; or expired after 1 h (fee 4.00)
        (
            "tariff_17_reservation_with_expire_fee.json",
            usage(at(10), (RESERVATION, 22, 0), (CHARGING, 90, 20_000)),
            P(650, 730),
        ),
        (
            "tariff_17_reservation_with_expire_fee.json",
            usage(at(10), (RESERVATION, 60, 0), expired=True),
            P(600, 720),
        ),
        # reservation 3.00/h, expired 6.00/h
        (
            "tariff_18_reservation_with_expire_time.json",
            usage(at(10), (RESERVATION, 22, 0), (CHARGING, 90, 20_000)),
            P(700, 790),
        ),
        (
            "tariff_18_reservation_with_expire_time.json",
            usage(at(10), (RESERVATION, 90, 0), expired=True),
            P(900, 1080),
        ),
        # step_size switching elements (no VAT given, so none including VAT)
        (
            "tariff_14_step_size.json",
            usage(at(16, 55), (CHARGING, 10, 0), (PARKING, 2, 0)),
            P(50),
        ),
        ("tariff_14_step_size.json", usage(at(16, 35), (CHARGING, 35, 0)), P(130)),
        (
            "tariff_14_step_size.json",
            usage(at(19, 55), (CHARGING, 10, 0), (PARKING, 2, 0)),
            P(60),
        ),
        # the first 30 min free, then 0.25/kWh: 5 kWh in 30 min, 1.2 kWh in the next 10
        (
            "tariffrestriction_example_max_duration.json",
            usage(at(10), (CHARGING, 30, 5_000), (CHARGING, 10, 1_200)),
            P(30, 36),
        ),
        # by power: 1 kWh at 6 kW, 40 kWh at 48 kW, 0.5 kWh at 4 kW
        (
            "tariffrestriction_example_max_power.json",
            Usage(
                start=at(10),
                end=at(11, 7, 30),
                periods=(
                    ChargingPeriod(start=at(10), kind=CHARGING, energy_wh=1_000, power_w=6_000),
                    ChargingPeriod(
                        start=at(10, 10), kind=CHARGING, energy_wh=40_000, power_w=48_000
                    ),
                    ChargingPeriod(start=at(11), kind=CHARGING, energy_wh=500, power_w=4_000),
                ),
            ),
            P(2030, 2436),
        ),
        # free of charge
        ("tariff_5_free_of_charge.json", usage(at(10), (CHARGING, 60, 11_000)), P(0, 0)),
    ],
)
def test_the_spec_examples_price_as_the_spec_states(
    name: str, session: Usage, expected: Price
) -> None:
    assert _total(name, session) == expected


def test_energy_is_billed_in_steps_of_100_wh() -> None:
    """The alt-URL example: 20.45 kWh billed per 0.1 kWh is 20.5 kWh (the spec's prose then
    quotes 5.50 excl. VAT, which omits its own 0.50 start fee: 0.50 + 5.125 rounds to 5.63)."""
    tariff = parse_tariff(load("tariff_3_alt_url.json"))
    cost = price(tariff, usage(at(10), (CHARGING, 120, 20_450)))
    assert cost.billed_energy_wh == 20_500
    assert cost.total.excl_vat == 563


def test_a_period_is_split_where_the_energy_crosses_a_kwh_bound() -> None:
    """0.20/kWh below 1 kWh used, 0.50 from then on (a max_kwh restriction): 3 kWh charged
    evenly in one period costs 0.20 + 2 x 0.50."""
    tariff = parse_tariff(
        ocpi_json.loads(
            '{"country_code": "NL", "party_id": "TNM", "id": "kwh", "currency": "EUR",'
            ' "elements": [{"price_components": [{"type": "ENERGY", "price": 0.20,'
            ' "step_size": 1}], "restrictions": {"max_kwh": 1}}, {"price_components":'
            ' [{"type": "ENERGY", "price": 0.50, "step_size": 1}]}],'
            ' "last_updated": "2020-01-01T00:00:00Z"}'
        )
    )
    assert price(tariff, usage(at(10), (CHARGING, 60, 3_000))).total == P(120)


def test_times_of_day_are_local_to_the_location() -> None:
    """tariff_14 charges 2.40/h from 17:00 local: in Amsterdam (UTC+2 in June) a session from
    14:55 to 15:05 UTC is 16:55 to 17:05 local, the spec's example #1."""
    from zoneinfo import ZoneInfo

    tariff = parse_tariff(load("tariff_14_step_size.json"))
    local = Usage(
        start=at(14, 55),
        end=at(15, 7),
        periods=(
            ChargingPeriod(start=at(14, 55), kind=CHARGING),
            ChargingPeriod(start=at(15, 5), kind=PARKING),
        ),
        time_zone=ZoneInfo("Europe/Amsterdam"),
    )
    assert price(tariff, local).total == P(50)
    in_utc = Usage(start=local.start, end=local.end, periods=local.periods, time_zone=dt.UTC)
    assert price(tariff, in_utc).total == P(60)  # 10 min before 17:00, billed per 30 min
