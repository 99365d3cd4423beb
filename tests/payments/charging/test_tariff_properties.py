"""Properties of `price` over generated tariffs and sessions: cost never decreases with energy or
time, `min_price` and `max_price` hold, and `step_size` rounds up only the last run."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from payments.charging.tariff import (
    ChargingPeriod,
    DayOfWeek,
    PeriodKind,
    Price,
    PriceComponent,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
    Usage,
)
from payments.charging.tariff_pricing import price

from .vectors import usage

ENERGY, FLAT = TariffDimensionType.ENERGY, TariffDimensionType.FLAT
TIME, PARKING_TIME = TariffDimensionType.TIME, TariffDimensionType.PARKING_TIME
START = dt.datetime(2026, 3, 6, 9, 0, tzinfo=dt.UTC)
SETTINGS = settings(max_examples=150, deadline=None)


def component(kind: TariffDimensionType, *, steps: bool) -> st.SearchStrategy[PriceComponent]:
    return st.builds(
        PriceComponent,
        type=st.just(kind),
        price=st.integers(0, 5_000_000),
        vat=st.none() | st.integers(0, 2_500),
        step_size=st.integers(0, 3_600) if steps else st.just(1),
    )


def components(*, steps: bool) -> st.SearchStrategy[tuple[PriceComponent, ...]]:
    kinds = st.lists(st.sampled_from([ENERGY, FLAT, TIME, PARKING_TIME]), min_size=1, max_size=4)
    return kinds.flatmap(
        lambda ks: st.tuples(*(component(k, steps=steps) for k in dict.fromkeys(ks)))
    )


restrictions = st.builds(
    TariffRestrictions,
    start_time=st.none() | st.integers(0, 1439),
    end_time=st.none() | st.integers(0, 1439),
    day_of_week=st.lists(st.sampled_from(list(DayOfWeek)), unique=True, max_size=3).map(tuple),
    min_duration_s=st.none() | st.integers(0, 7200),
    max_duration_s=st.none() | st.integers(0, 7200),
    min_power_w=st.none() | st.integers(0, 30_000),
    max_power_w=st.none() | st.integers(0, 30_000),
)


def tariff(elements: tuple[TariffElement, ...], low: Price | None, high: Price | None) -> Tariff:
    return Tariff(
        country_code="NL",
        party_id="TNM",
        id="t",
        currency="EUR",
        elements=elements,
        last_updated=START,
        min_price=low,
        max_price=high,
    )


bounds = st.tuples(st.integers(0, 3_000), st.integers(0, 3_000)).map(sorted)
prices = st.builds(
    lambda b, vat: Price(excl_vat=b, incl_vat=b + b * vat // 100),
    st.integers(0, 3_000),
    st.integers(0, 25),
)

# one unrestricted element with any step sizes, or restricted elements billed per unit
single_tariffs = st.builds(
    lambda cs, low, high: tariff((TariffElement(price_components=cs),), low, high),
    components(steps=True),
    st.none() | prices,
    st.none(),
)
restricted_tariffs = st.builds(
    lambda es: tariff(tuple(es), None, None),
    st.lists(
        st.builds(
            TariffElement,
            price_components=components(steps=False),
            restrictions=st.none() | restrictions,
        ),
        min_size=1,
        max_size=4,
    ),
)
stretch = st.tuples(
    st.sampled_from([PeriodKind.CHARGING, PeriodKind.PARKING]),
    st.integers(1, 180),
    st.integers(0, 40_000),
).map(lambda s: (s[0], s[1], s[2] if s[0] == PeriodKind.CHARGING else 0))
usages = st.builds(
    lambda stretches, power: usage(START, *stretches, power_w=power),
    st.lists(stretch, min_size=1, max_size=4),
    st.none() | st.integers(0, 40_000),
)


def _not_less(a: Price, b: Price) -> bool:
    """`a` costs at least `b`, including VAT when both know it."""
    incl = a.incl_vat is None or b.incl_vat is None or a.incl_vat >= b.incl_vat
    return a.excl_vat >= b.excl_vat and incl


@SETTINGS
@given(single_tariffs | restricted_tariffs, usages, st.integers(1, 7200))
def test_cost_never_decreases_with_time(t: Tariff, u: Usage, seconds: int) -> None:
    longer = dataclasses.replace(u, end=u.end + dt.timedelta(seconds=seconds))
    assert _not_less(price(t, longer).total, price(t, u).total)


@SETTINGS
@given(single_tariffs | restricted_tariffs, usages, st.integers(1, 40_000), st.data())
def test_cost_never_decreases_with_energy(
    t: Tariff, u: Usage, wh: int, data: st.DataObject
) -> None:
    charging = [n for n, p in enumerate(u.periods) if p.kind == PeriodKind.CHARGING]
    assume(charging)
    number = data.draw(st.sampled_from(charging))
    more = dataclasses.replace(u.periods[number], energy_wh=u.periods[number].energy_wh + wh)
    periods = (*u.periods[:number], more, *u.periods[number + 1 :])
    assert _not_less(price(t, dataclasses.replace(u, periods=periods)).total, price(t, u).total)


@SETTINGS
@given(
    st.lists(
        st.builds(
            TariffElement,
            price_components=components(steps=True),
            restrictions=st.none() | restrictions,
        ),
        min_size=1,
        max_size=4,
    ),
    bounds,
    st.integers(0, 25),
    usages,
)
def test_min_and_max_price_hold(
    elements: list[TariffElement], limits: list[int], vat: int, u: Usage
) -> None:
    low, high = (Price(excl_vat=b, incl_vat=b + b * vat // 100) for b in limits)
    total = price(tariff(tuple(elements), low, high), u).total
    assert low.excl_vat <= total.excl_vat <= high.excl_vat
    if total.incl_vat is not None:
        assert low.incl_vat is not None
        assert high.incl_vat is not None
        assert low.incl_vat <= total.incl_vat <= high.incl_vat


@SETTINGS
@given(
    st.integers(1, 5_000_000),
    st.integers(1, 5_000_000),
    st.integers(1, 3_600),
    st.integers(1, 3_600),
    st.integers(1, 7_200),
    st.integers(0, 7_200),
)
def test_step_size_rounds_the_last_run_only(
    price_a: int, price_b: int, step_a: int, step_b: int, before: int, after: int
) -> None:
    """TIME at price_a/step_a before 12:00 and price_b/step_b after: the time before the switch
    is billed exactly, the total is rounded up to step_b and the rest billed at price_b."""
    noon = dt.datetime(2026, 3, 6, 12, tzinfo=dt.UTC)

    def element(p: int, step: int, start: int, end: int) -> TariffElement:
        return TariffElement(
            price_components=(PriceComponent(type=TIME, price=p, vat=None, step_size=step),),
            restrictions=TariffRestrictions(start_time=start, end_time=end),
        )

    t = tariff((element(price_a, step_a, 0, 720), element(price_b, step_b, 720, 0)), None, None)
    start = noon - dt.timedelta(seconds=before)
    end = noon + dt.timedelta(seconds=after)
    periods = (ChargingPeriod(start=start, kind=PeriodKind.CHARGING),)
    cost = price(t, Usage(start=start, end=end, periods=periods))
    if after:
        billed = -(-(before + after) // step_b) * step_b
        exact = price_a * before + price_b * (billed - before)
    else:
        billed = -(-before // step_a) * step_a
        exact = price_a * billed
    assert cost.billed_time_s == billed
    denominator = 10_000 * 3_600
    assert cost.total.excl_vat == (2 * exact + denominator) // (2 * denominator)


def test_the_spec_step_rule_can_bill_a_longer_session_less() -> None:
    """Why the monotonicity properties use one element per dimension or step_size 1: under the
    spec's rule a session that runs into a cheaper element with a smaller step pays less than
    a shorter one rounded up at the dearer price (from 09:35, switching at 10:00: 24 min bill
    30 min at 2.00/h, 1.00; 26 min bill 25 min at 2.00/h and 1 min at 0.50/h, 0.84)."""

    def element(p: int, step: int, start: int, end: int) -> TariffElement:
        return TariffElement(
            price_components=(PriceComponent(type=TIME, price=p, vat=None, step_size=step),),
            restrictions=TariffRestrictions(start_time=start, end_time=end),
        )

    t = tariff((element(2_000_000, 1_800, 0, 600), element(500_000, 60, 600, 0)), None, None)
    start = dt.datetime(2026, 3, 6, 9, 35, tzinfo=dt.UTC)

    def cost(minutes: int) -> int:
        return price(t, usage(start, (PeriodKind.CHARGING, minutes, 0))).total.excl_vat

    assert cost(24) == 100
    assert cost(26) == 84
