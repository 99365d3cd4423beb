"""Metering (`payments.payperuse.metering`) and receipts (`payments.payperuse.receipt`): tariff
arithmetic, the payee's meter and the payer's checks, over the real one-way channel cores."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.channels.core import PayeeChannel, PayerChannel
from payments.errors import (
    InvalidAmountError,
    MalformedReceiptError,
    MeterOverflowError,
    OverchargeError,
    ReceiptMismatchError,
    ReceiptSignatureError,
    TariffError,
)
from payments.payperuse.metering import Invoice, Meter, PayerMeter, Tariff
from payments.payperuse.receipt import (
    RECEIPT_SIZE,
    Receipt,
    ReceiptKind,
    decode_receipt,
    encode_receipt,
    issue_receipt,
    receipt_from_header,
    receipt_to_header,
)
from tangle.protocol.codec import U64_MAX
from tangle.protocol.ids import ChannelId, Signature
from tests.payments_support import CHANNEL, MALLORY, NETWORK, PAYEE, PAYER, terms

TERMS = terms(deposit=10**12)
SESSION = b"\x5e" * 32

u64s = st.integers(0, U64_MAX)
tariffs = st.builds(
    Tariff, price=st.integers(1, U64_MAX), per=st.integers(1, U64_MAX), unit=st.just("byte")
)
small_tariffs = st.builds(
    Tariff, price=st.integers(1, 10_000), per=st.integers(1, 10**7), unit=st.just("byte")
)


# -- tariffs -----------------------------------------------------------------------------------


@given(tariffs, u64s)
def test_cost_rounds_up_tightly(tariff: Tariff, units: int) -> None:
    exact = units * tariff.price
    if exact // tariff.per > U64_MAX or -(-exact // tariff.per) > U64_MAX:
        with pytest.raises(MeterOverflowError):
            tariff.cost(units)
        return
    cost = tariff.cost(units)
    assert cost * tariff.per >= exact
    assert cost == 0 or (cost - 1) * tariff.per < exact


@given(small_tariffs, st.integers(0, 10**12), st.integers(0, 10**12))
def test_cost_is_monotone_and_subadditive(tariff: Tariff, a: int, b: int) -> None:
    assert tariff.cost(a) <= tariff.cost(a + b)
    assert tariff.cost(a + b) <= tariff.cost(a) + tariff.cost(b)


@given(small_tariffs, st.lists(st.integers(0, 10**6), max_size=50))
def test_cumulative_billing_never_exceeds_step_billing(tariff: Tariff, steps: list[int]) -> None:
    total = 0
    stepwise = 0
    for step in steps:
        stepwise += tariff.cost(step)
        total += step
    assert tariff.cost(total) <= stepwise
    assert tariff.cost(total) * tariff.per >= total * tariff.price


@given(tariffs, u64s)
def test_units_for_is_the_inverse_of_cost(tariff: Tariff, amount: int) -> None:
    units = tariff.units_for(amount)
    assert tariff.cost(units) <= amount
    if units < U64_MAX:
        cost_of_next = (units + 1) * tariff.price
        assert -(-cost_of_next // tariff.per) > amount


def test_cost_refuses_overflow_and_bad_inputs() -> None:
    tariff = Tariff(price=2, per=1, unit="byte")
    assert tariff.cost(U64_MAX // 2) == U64_MAX - 1
    with pytest.raises(MeterOverflowError):
        tariff.cost(U64_MAX // 2 + 1)
    with pytest.raises(MeterOverflowError):
        Tariff.per_request(1).cost(U64_MAX + 1)
    for bad in (-1, True, 1.5):
        with pytest.raises(InvalidAmountError):
            tariff.cost(bad)  # type: ignore[arg-type]


def test_named_tariffs() -> None:
    assert Tariff.per_mb(7).cost(1) == 1
    assert Tariff.per_mb(7).cost(1_000_000) == 7
    assert Tariff.per_mb(7).cost(1_000_001) == 8
    assert Tariff.per_second(3).cost(1500) == 5
    assert Tariff.per_kwh(250).cost(4) == 1
    assert Tariff.per_kwh(250).cost(4000) == 1000
    assert Tariff.per_request(9).cost(3) == 27


@pytest.mark.parametrize(
    ("price", "per", "unit"),
    [
        (0, 1, "byte"),
        (1, 0, "byte"),
        (U64_MAX + 1, 1, "byte"),
        (1, 1, ""),
        (1, 1, "a b"),
        (True, 1, "byte"),
        (1, 1, "x" * 17),
    ],
)
def test_tariff_refuses_bad_values(price: int, per: int, unit: str) -> None:
    with pytest.raises(TariffError):
        Tariff(price=price, per=per, unit=unit)


# -- receipts ----------------------------------------------------------------------------------


def a_receipt(**changes: object) -> Receipt:
    fields: dict[str, object] = {
        "kind": ReceiptKind.METERED,
        "network_id": NETWORK,
        "channel_id": CHANNEL,
        "sequence": 3,
        "cumulative_amount": 30,
        "credited": 10,
        "units": 3_000_000,
        "tag": SESSION,
    }
    fields.update(changes)
    return issue_receipt(PAYEE, **fields)  # type: ignore[arg-type]


@given(
    kind=st.sampled_from(ReceiptKind),
    network_id=u64s,
    sequence=u64s,
    amounts=st.tuples(u64s, u64s).map(sorted),
    units=u64s,
    tag=st.binary(min_size=32, max_size=32),
)
def test_receipt_round_trips_and_verifies(
    kind: ReceiptKind, network_id: int, sequence: int, amounts: list[int], units: int, tag: bytes
) -> None:
    receipt = a_receipt(
        kind=kind,
        network_id=network_id,
        sequence=sequence,
        credited=amounts[0],
        cumulative_amount=amounts[1],
        units=units,
        tag=tag,
    )
    raw = encode_receipt(receipt)
    assert len(raw) == RECEIPT_SIZE
    assert decode_receipt(raw) == receipt
    assert receipt_from_header(receipt_to_header(receipt)) == receipt
    receipt.verify(PAYEE.public_key)
    with pytest.raises(ReceiptSignatureError):
        receipt.verify(MALLORY.public_key)


@pytest.mark.parametrize(
    "change",
    [
        {"sequence": 4},
        {"cumulative_amount": 31},
        {"credited": 11},
        {"units": 3_000_001},
        {"tag": b"\x00" * 32},
        {"network_id": NETWORK + 1},
        {"channel_id": ChannelId(b"\xc2" * 32)},
        {"kind": ReceiptKind.REQUEST},
    ],
)
def test_any_changed_field_breaks_the_signature(change: dict[str, object]) -> None:
    forged = dataclasses.replace(a_receipt(), **change)  # type: ignore[arg-type]
    with pytest.raises(ReceiptSignatureError):
        forged.verify(PAYEE.public_key)


def test_malformed_receipts_are_refused() -> None:
    raw = encode_receipt(a_receipt())
    for bad in (raw[:-1], raw + b"\x00", b"\x02" + raw[1:], b""):
        with pytest.raises(MalformedReceiptError):
            decode_receipt(bad)
    header = receipt_to_header(a_receipt())
    for bad_header in (header + "!", header[:-1] + "=", "é" + header, header + "A"):
        with pytest.raises(MalformedReceiptError):
            receipt_from_header(bad_header)
    with pytest.raises(MalformedReceiptError):
        a_receipt(credited=31)
    with pytest.raises(MalformedReceiptError):
        dataclasses.replace(a_receipt(), signature=Signature(bytes(64)), tag=b"short")


# -- a metered session over the real channel cores ---------------------------------------------


def session(
    tariff: Tariff, *, credit_limit: int = 0, tolerance: int = 0
) -> tuple[PayerChannel, PayeeChannel, Meter, PayerMeter]:
    payer = PayerChannel(TERMS, PAYER)
    payee = PayeeChannel(TERMS)
    meter = Meter(
        tariff,
        signer=PAYEE,
        network_id=NETWORK,
        channel_id=CHANNEL,
        session=SESSION,
        credit_limit=credit_limit,
    )
    payer_meter = PayerMeter(
        tariff,
        payee=PAYEE.public_key,
        network_id=NETWORK,
        channel_id=CHANNEL,
        session=SESSION,
        tolerance=tolerance,
    )
    return payer, payee, meter, payer_meter


def settle(payer: PayerChannel, payee: PayeeChannel, meter: Meter, payer_meter: PayerMeter) -> int:
    invoice = meter.invoice()
    amount = payer_meter.accept(invoice)
    if amount == 0:
        return 0
    proof = payer.pay(amount)
    payer_meter.paying(proof.proof, amount, invoice)
    credited = payee.receive(proof)
    receipt = meter.credit(proof.proof, credited)
    payer_meter.check_receipt(receipt)
    return amount


@given(small_tariffs, st.lists(st.integers(0, 5_000_000), min_size=1, max_size=30))
def test_a_metered_session_pays_exactly_the_rounded_up_usage(
    tariff: Tariff, deliveries: list[int]
) -> None:
    payer, payee, meter, payer_meter = session(tariff)
    for chunk in deliveries:
        meter.record(chunk)
        payer_meter.observe(chunk)
        settle(payer, payee, meter, payer_meter)
        assert meter.due() == 0
        assert payer_meter.paid == meter.paid == payee.payee_balance
        assert payer_meter.paid == tariff.cost(payer_meter.units)
    assert payee.payee_balance + payer.payer_balance == TERMS.deposit


def test_credit_limit_gates_delivery() -> None:
    tariff = Tariff.per_mb(10)
    _, _, meter, _ = session(tariff, credit_limit=20)
    assert meter.may_deliver(2_000_000)
    assert not meter.may_deliver(2_000_001)
    meter.record(2_000_000)
    assert meter.due() == 20
    assert not meter.may_deliver(1)


@given(
    small_tariffs,
    st.integers(0, 10**9),
    st.integers(0, 10**6),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
)
def test_deliverable_is_the_most_the_credit_limit_allows(
    tariff: Tariff, limit: int, paid: int, used: int, wanted: int
) -> None:
    meter = Meter(tariff, signer=PAYEE, network_id=NETWORK, channel_id=CHANNEL, credit_limit=limit)
    meter.record(used)
    meter.paid = paid
    n = meter.deliverable(wanted)
    assert 0 <= n <= wanted
    if n > 0:
        assert meter.may_deliver(n)
    if n < wanted:
        assert not meter.may_deliver(n + 1)


def test_payer_refuses_to_pay_for_units_it_did_not_receive() -> None:
    tariff = Tariff.per_mb(10)
    _payer, _payee, meter, payer_meter = session(tariff, tolerance=1000)
    meter.record(1_001_001)
    payer_meter.observe(1_000_000)
    with pytest.raises(OverchargeError) as info:
        payer_meter.accept(meter.invoice())
    assert info.value.what == "units"
    assert payer_meter.paid == 0
    payer_meter.observe(1)
    assert payer_meter.accept(meter.invoice()) == 11


def test_payer_refuses_a_bill_above_the_tariff() -> None:
    tariff = Tariff.per_mb(10)
    *_, payer_meter = session(tariff)
    payer_meter.observe(1_000_000)
    padded = Invoice(channel_id=CHANNEL, units=1_000_000, amount=11, paid=0)
    with pytest.raises(OverchargeError) as info:
        payer_meter.accept(padded)
    assert info.value.what == "amount"


def test_receipts_that_differ_from_the_payment_are_refused() -> None:
    tariff = Tariff.per_mb(10)
    payer, payee, meter, payer_meter = session(tariff)
    meter.record(1_000_000)
    payer_meter.observe(1_000_000)
    invoice = meter.invoice()
    amount = payer_meter.accept(invoice)
    proof = payer.pay(amount)
    payer_meter.paying(proof.proof, amount, invoice)
    payee.receive(proof)
    good = meter.credit(proof.proof, amount)
    bad_receipts = {
        "sequence": a_receipt(sequence=2, cumulative_amount=10, credited=10, units=1_000_000),
        "credited": a_receipt(sequence=1, cumulative_amount=10, credited=9, units=1_000_000),
        "tag": a_receipt(
            sequence=1, cumulative_amount=10, credited=10, units=1_000_000, tag=bytes(32)
        ),
    }
    for field, receipt in bad_receipts.items():
        with pytest.raises(ReceiptMismatchError) as info:
            payer_meter.check_receipt(receipt)
        assert info.value.field == field
    overbilled = a_receipt(sequence=1, cumulative_amount=10, credited=10, units=1_000_001)
    with pytest.raises(OverchargeError):
        payer_meter.check_receipt(overbilled)
    forged = issue_receipt(
        MALLORY,
        kind=good.kind,
        network_id=NETWORK,
        channel_id=CHANNEL,
        sequence=good.sequence,
        cumulative_amount=good.cumulative_amount,
        credited=good.credited,
        units=good.units,
        tag=good.tag,
    )
    with pytest.raises(ReceiptSignatureError):
        payer_meter.check_receipt(forged)
    payer_meter.check_receipt(good)
    with pytest.raises(ReceiptMismatchError):  # only one receipt per payment
        payer_meter.check_receipt(good)


def test_meter_refuses_overflow_without_changing() -> None:
    _, _, meter, payer_meter = session(Tariff(price=2, per=1, unit="byte"))
    meter.record(U64_MAX // 2)
    with pytest.raises(MeterOverflowError):
        meter.record(1)
    assert meter.units == U64_MAX // 2
    payer_meter.observe(U64_MAX)
    with pytest.raises(MeterOverflowError):
        payer_meter.observe(1)
    assert payer_meter.units == U64_MAX
