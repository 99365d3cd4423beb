"""The OCPI object store: a CDR is replaceable until sent, immutable after, corrected by a credit
CDR and a new CDR; an eMSP accepts the same CDR twice once; tables and pages are bounded; and
the tariff in force is chosen by validity window and profile."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from payments.charging.errors import CdrSentError, OcpiFieldError, UnknownObjectError
from payments.charging.ocpi_cdr import parse_cdr
from payments.charging.ocpi_store import OcpiStore, page
from payments.charging.ocpi_tariff import parse_tariff
from payments.charging.tariff import Price, TariffType
from payments.charging.tariff_pricing import tariff_in_force

from .vectors import at, load

NOW = dt.datetime(2026, 3, 6, 12, tzinfo=dt.UTC)


def test_a_sent_cdr_is_immutable_and_corrected_by_a_credit_cdr() -> None:
    store = OcpiStore()
    cdr = parse_cdr(load("cdr_example.json"))
    store.add_cdr(cdr)
    cheaper = dataclasses.replace(cdr, total_cost=Price(excl_vat=300, incl_vat=330))
    store.add_cdr(cheaper)  # not sent yet: replaced
    store.mark_sent(cdr.id)
    with pytest.raises(CdrSentError):
        store.add_cdr(cdr)
    corrected = dataclasses.replace(cdr, id="12345-2")
    credit, new = store.correct(cdr.id, corrected, credit_id="12345-C", now=NOW)
    assert credit.credit_reference_id == cdr.id
    assert credit.total_cost == Price(excl_vat=-300, incl_vat=-330)
    assert new == corrected
    assert list(store.cdrs.rows) == ["12345", "12345-C", "12345-2"]
    assert store.cdrs.get("12345") == cheaper
    with pytest.raises(OcpiFieldError, match="new ids"):
        store.correct(cdr.id, corrected, credit_id="12345-C2", now=NOW)
    with pytest.raises(UnknownObjectError):
        store.mark_sent("nope")


def test_an_emsp_accepts_the_same_cdr_once_and_refuses_another_under_its_id() -> None:
    store = OcpiStore()
    cdr = parse_cdr(load("cdr_example.json"))
    assert store.receive_cdr(cdr)
    assert not store.receive_cdr(cdr)
    with pytest.raises(CdrSentError):
        store.receive_cdr(dataclasses.replace(cdr, remark="changed"))
    assert store.cdrs.get(cdr.id) == cdr


def test_tables_and_pages_are_bounded() -> None:
    store = OcpiStore(limit=2)
    tariff = parse_tariff(load("tariff_1_simple_2hour.json"))
    for n in range(2):
        store.put_tariff(dataclasses.replace(tariff, id=str(n), last_updated=at(10, n)))
    store.put_tariff(dataclasses.replace(tariff, id="1"))  # replacing is not growing
    with pytest.raises(OcpiFieldError, match="more than 2"):
        store.put_tariff(dataclasses.replace(tariff, id="2"))
    rows, total = page(store.tariffs.rows, date_from=None, date_to=None, offset=1, limit=5)
    assert (total, [t.id for t in rows]) == (2, ["1"])


def test_the_tariff_in_force_follows_validity_and_profile() -> None:
    old = parse_tariff(load("tariff_6_025kwh_start_max_price.json"))  # ends 2019-06-30T23:59:59
    new = dataclasses.replace(
        parse_tariff(load("tariff_9_025kwh_start.json")),
        start_date_time=dt.datetime(2019, 6, 30, 23, 59, 59, tzinfo=dt.UTC),
    )
    cheap = parse_tariff(load("tariff_3_alt_url.json"))  # PROFILE_CHEAP
    tariffs = (cheap, old, new)
    before = dt.datetime(2019, 6, 1, tzinfo=dt.UTC)
    after = dt.datetime(2019, 7, 1, tzinfo=dt.UTC)
    assert tariff_in_force(tariffs, before) == old
    assert tariff_in_force(tariffs, after) == new
    assert tariff_in_force(tariffs, after, TariffType.PROFILE_CHEAP) == cheap
    assert tariff_in_force((cheap,), after) is None
