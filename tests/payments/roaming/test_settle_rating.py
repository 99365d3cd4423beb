"""Rating: worked examples of each service and plan kind, and a property test that both carriers
(each decoding the shared agreement and the record from bytes) compute the same charge as an
independent rational-arithmetic reference, for random records and random plans."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.roaming.agreement import Agreement, Party, SignedAgreement
from payments.roaming.errors import AgreementError, RecordOutsideAgreementError
from payments.roaming.rating import (
    Plan,
    PlanKind,
    RatingTable,
    Rounding,
    Tier,
    period_charge,
    rate,
)
from payments.roaming.record import EventType, UsageRecord
from tests.payments.roaming.settle_support import (
    HOME,
    HOME_KEY,
    VISITED,
    VISITED_KEY,
    agreement,
    record,
    records,
    signed,
    standard_plans,
)


def test_worked_examples() -> None:
    a = agreement(tax_bp=1_900)
    # 1 MiB + 1 byte of data at 5000/MiB, whole KiB rounded up: 1025 KiB -> 5004.88 -> 5005
    r = rate(a, record(up=1_048_576, down=1))
    assert (r.billed, r.charge, r.tax) == (1_049_600, 5_005, 951)  # 5005 * 19% = 950.95 -> 951
    # a 61 s call billed in 30 s steps: 90 s at 12000/min = 18000
    assert rate(a, record(kind=EventType.MOC, duration=61)).charge == 18_000
    # a 5 s call is billed the 60 s minimum
    assert rate(a, record(kind=EventType.MTC, duration=5)).charge == 2_000
    assert rate(a, record(kind=EventType.SMS_MO)).charge == 4_000
    assert rate(a, record(kind=EventType.SMS_MT)).charge == 0


def test_records_the_agreement_does_not_cover_are_refused_by_name() -> None:
    a = agreement()
    with pytest.raises(RecordOutsideAgreementError, match="pair"):
        rate(a, record(sender="GBRXX"))
    with pytest.raises(RecordOutsideAgreementError, match="validity"):
        rate(a, record(start=a.valid_until))
    table = RatingTable(a)
    with pytest.raises(RecordOutsideAgreementError, match="pair"):
        table.charge(record(sender="GBRXX"))
    with pytest.raises(RecordOutsideAgreementError, match="validity"):
        table.charge(record(start=a.valid_from - 1))


def _plan(kind: PlanKind, tiers: tuple[Tier, ...], commitment: int = 0) -> Plan:
    return replace(standard_plans()[0], kind=kind, tiers=tiers, commitment=commitment)


def test_period_plans_flat_tiered_threshold_and_commitment() -> None:
    mib = 1_048_576
    tiers = (Tier(from_units=0, price=5_000), Tier(from_units=10 * mib, price=2_000))
    assert period_charge(_plan(PlanKind.FLAT, ()), 15 * mib, 75_123) == 75_123
    # tiered: 10 MiB at 5000, 5 MiB at 2000
    assert period_charge(_plan(PlanKind.TIERED, tiers), 15 * mib, 0) == 60_000
    # threshold: past 10 MiB every MiB costs 2000
    assert period_charge(_plan(PlanKind.THRESHOLD, tiers), 15 * mib, 0) == 30_000
    assert period_charge(_plan(PlanKind.THRESHOLD, tiers), 5 * mib, 0) == 25_000
    # a commitment of 100000 is the least the period costs
    assert period_charge(_plan(PlanKind.TIERED, tiers, 100_000), 15 * mib, 0) == 100_000
    with pytest.raises(AgreementError, match="tiers"):
        _plan(PlanKind.TIERED, (Tier(from_units=5, price=1),))
    with pytest.raises(AgreementError, match="tiers"):
        _plan(PlanKind.FLAT, tiers)


def _reference(a: Agreement, r: UsageRecord) -> tuple[int, int]:
    """Charge and tax with exact rationals and math.ceil/floor, independent of `divide`."""
    plan = a.party(r.sender).plan(r.event_type)

    def rnd(x: Fraction) -> int:
        if plan.rounding is Rounding.UP:
            return math.ceil(x)
        if plan.rounding is Rounding.DOWN:
            return math.floor(x)
        return math.floor(x + Fraction(1, 2))

    if r.event_type is EventType.DATA:
        q = r.volume_up + r.volume_down
    elif r.event_type in (EventType.MOC, EventType.MTC):
        q = r.duration_s
    else:
        q = 1
    billed = max(plan.minimum, rnd(Fraction(q, plan.increment)) * plan.increment)
    charge = rnd(Fraction(billed * plan.price, plan.per))
    return charge, rnd(Fraction(charge * a.tax_bp, 10_000))


@st.composite
def plans(draw: st.DrawFn, service: EventType) -> Plan:
    return Plan(
        service=service,
        price=draw(st.integers(0, 10**12)),
        per=draw(st.integers(1, 10**12)),
        increment=draw(st.integers(1, 10**9)),
        minimum=draw(st.integers(0, 10**9)),
        rounding=draw(st.sampled_from(Rounding)),
        kind=PlanKind.FLAT,
        tiers=(),
        commitment=0,
    )


@st.composite
def agreements(draw: st.DrawFn) -> SignedAgreement:
    def party(tadig: str, key: bytes) -> Party:
        return Party(
            tadig=tadig,
            key=key,
            plans=tuple(draw(plans(s)) for s in EventType),  # type: ignore[arg-type]
        )

    a = agreement(
        parties=(party(HOME, HOME_KEY.public_key), party(VISITED, VISITED_KEY.public_key)),
        tax_bp=draw(st.integers(0, 10_000)),
    )
    return signed(a)


@given(agreements(), st.lists(records(), min_size=1, max_size=5), st.booleans())
def test_both_carriers_rate_every_record_identically(
    shared: SignedAgreement, batch: list[UsageRecord], home_visits: bool
) -> None:
    wire = shared.encode()
    vpmn_side = SignedAgreement.decode(wire).agreement
    hpmn_side = SignedAgreement.decode(wire).agreement
    table = RatingTable(hpmn_side)  # one table for the whole batch, as the validator holds it
    for r in batch:
        if home_visits:
            r = replace(r, sender=HOME, recipient=VISITED, serving_network=HOME)
        at_vpmn = rate(vpmn_side, r)
        at_hpmn = rate(hpmn_side, UsageRecord.decode(r.encode()))
        assert at_vpmn == at_hpmn == table.rate(r)
        assert table.charge(r) == at_vpmn.charge
        assert (at_vpmn.charge, at_vpmn.tax) == _reference(vpmn_side, r)


@given(
    st.integers(0, 10**12),
    st.lists(st.tuples(st.integers(1, 10**10), st.integers(0, 10**6)), min_size=1, max_size=6),
)
def test_tiered_never_costs_more_than_its_first_tier_and_threshold_is_monotone_per_tier(
    total: int, bands: list[tuple[int, int]]
) -> None:
    starts = sorted({0, *(b for b, _ in bands)})[:16]
    prices = sorted((p for _, p in bands), reverse=True)
    tiers = tuple(
        Tier(from_units=s, price=prices[min(i, len(prices) - 1)]) for i, s in enumerate(starts)
    )
    tiered = period_charge(_plan(PlanKind.TIERED, tiers), total, 0)
    flat_first = period_charge(_plan(PlanKind.THRESHOLD, tiers[:1]), total, 0)
    assert tiered <= flat_first
    assert period_charge(_plan(PlanKind.THRESHOLD, tiers), total, 0) <= tiered


@given(st.lists(records(), max_size=20))
def test_charges_of_a_batch_are_each_records_charge(rs: list[UsageRecord]) -> None:
    table = RatingTable(agreement())
    assert table.charges(rs, (VISITED, HOME)) == [table.charge(r) for r in rs]


def test_charges_refuse_a_record_of_another_pair_or_outside_validity() -> None:
    a = agreement()
    table = RatingTable(a)
    good = record()
    for bad, reason in (
        (record(sender=HOME, recipient=VISITED), "in a batch of"),
        (record(sender="ITAXX"), "in a batch of"),
        (record(start=a.valid_until), "validity"),
        (record(start=a.valid_from - 1), "validity"),
    ):
        with pytest.raises(RecordOutsideAgreementError, match=reason):
            table.charges([good, bad], (VISITED, HOME))
    with pytest.raises(RecordOutsideAgreementError, match="party pair"):
        table.charges([], (VISITED, "ITAXX"))


@given(
    agreements(),
    st.lists(records(), max_size=12),
    st.lists(st.integers(0, 10**13), max_size=12),
)
def test_charges_and_prices_are_the_per_record_arithmetic_under_any_plan(
    shared: SignedAgreement, rs: list[UsageRecord], quantities: list[int]
) -> None:
    """`charges` (one service or several in a batch) and `Plan.prices` (each rounding written
    out) agree with `charge` and `price_of(billed(q))` under random plans."""
    a = shared.agreement
    table = RatingTable(a)
    assert table.charges(rs, (VISITED, HOME)) == [table.charge(r) for r in rs]
    one_service = [r for r in rs if r.event_type is EventType.DATA]
    assert table.charges(one_service, (VISITED, HOME)) == [table.charge(r) for r in one_service]
    for plan in a.party(VISITED).plans:
        assert plan.prices(quantities) == [plan.price_of(plan.billed(q)) for q in quantities]
