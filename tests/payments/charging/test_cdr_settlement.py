"""CPO-eMSP settlement over their two-way channel (`payments.charging.cdr_settlement`), with the
real two-way channel core on both sides: a period's CDRs (a credit CDR counting negative) are
paid as one net amount, recording a period again pays nothing, a different net for a held
period is refused, and when each party is the other's CPO only the difference moves."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import sqlite3
from typing import TYPE_CHECKING

import pytest

from payments.channels.twoway import TwoWayChannel
from payments.charging.cdr_settlement import (
    CdrSettlement,
    SettlementPeriods,
    by_month,
    cdr_amount,
)
from payments.charging.errors import CurrencyMismatchError, RoamingError
from payments.charging.ocpi_cdr import Cdr, build_cdr, credit_cdr
from payments.charging.ocpi_session import AuthMethod, CdrToken, Session, SessionStatus, TokenType
from payments.charging.pricing import session_usage
from payments.charging.tariff import Price
from tangle.protocol.ids import PublicKey
from tests.payments_support import PAYEE, PAYER, terms

from .test_roaming_cpo import LOCATION, TARIFF

if TYPE_CHECKING:
    from pathlib import Path

TERMS = terms(deposit=10_000, bidirectional=True)
CPO, EMSP = PAYEE, PAYER  # the channel's payee is the CPO, its payer the eMSP
START = dt.datetime(2026, 11, 3, 8, tzinfo=dt.UTC)


def cdr(cdr_id: str, energy_wh: int) -> Cdr:
    session = Session(
        country_code="NL",
        party_id="CPO",
        id=f"S-{cdr_id}",
        start_date_time=START,
        end_date_time=START + dt.timedelta(hours=1),
        kwh=energy_wh * 10,
        cdr_token=CdrToken(
            country_code="NL", party_id="MSP", uid="RFID-1", type=TokenType.RFID, contract_id="C1"
        ),
        auth_method=AuthMethod.WHITELIST,
        location_id=LOCATION.id,
        evse_uid=LOCATION.evse_uid,
        connector_id=LOCATION.connector_id,
        currency="EUR",
        status=SessionStatus.COMPLETED,
        last_updated=START,
    )
    usage = session_usage(int(START.timestamp()), energy_wh, 3600)
    return build_cdr(session, usage, TARIFF, LOCATION, cdr_id=cdr_id, now=START)


def settle(payer_side: CdrSettlement, payee_side: CdrSettlement, who_pays: str) -> int:
    """One payment from the side that owes: proposed, countersigned, completed."""
    paying, paid = (payer_side, payee_side) if who_pays == "payer" else (payee_side, payer_side)
    proposal = paying.pay()
    assert proposal is not None
    countersigned = paid.channel.countersign(proposal)
    theirs = countersigned.payee_signature if who_pays == "payer" else countersigned.payer_signature
    assert theirs is not None
    paying.channel.complete(proposal.proof.sequence, theirs)
    return proposal.proof.payee_balance


def test_a_period_is_paid_once_as_its_net_amount() -> None:
    first, second = cdr("CDR-1", 4_500), cdr("CDR-2", 3_000)
    credit = credit_cdr(first, cdr_id="CDR-1-C", now=START)
    fixed = cdr("CDR-1-2", 4_000)
    november = [first, second, credit, fixed]
    assert [cdr_amount(c) for c in november] == [113, 75, -113, 100]
    emsp = CdrSettlement(TwoWayChannel(TERMS, EMSP))
    cpo = CdrSettlement(TwoWayChannel(TERMS, CPO))
    for side in (emsp, cpo):
        assert side.record("2026-11", CPO.public_key, november)
    assert (emsp.due, cpo.due) == (175, 0)
    assert cpo.pay() is None  # the CPO owes nothing
    assert settle(emsp, cpo, "payer") == 175
    assert emsp.channel.payee_balance == cpo.channel.payee_balance == 175
    # the period again (a retry after a crash): nothing more is due
    assert not emsp.record("2026-11", CPO.public_key, november)
    assert emsp.pay() is None
    with pytest.raises(RoamingError, match="held with net 175"):
        emsp.record("2026-11", CPO.public_key, november[:2])
    # December: each is the other's CPO; only the difference moves, from the CPO this time
    theirs = [dataclasses.replace(cdr("CDR-9", 2_000), total_cost=Price(excl_vat=80))]
    for side in (emsp, cpo):
        assert side.record("2026-12", CPO.public_key, [cdr("CDR-3", 1_200)])  # 30
        assert side.record("2026-12", EMSP.public_key, theirs)  # 80
    assert (emsp.due, cpo.due) == (0, 50)
    assert settle(emsp, cpo, "payee") == 125
    assert emsp.due == cpo.due == 0
    with pytest.raises(RoamingError):
        emsp.record("2026-12", PublicKey(b"\x07" * 32), [])  # not a party


def test_mixed_currencies_in_a_period_are_refused_by_name() -> None:
    side = CdrSettlement(TwoWayChannel(TERMS, EMSP))
    dollars = dataclasses.replace(cdr("CDR-U", 1_000), currency="USD")
    with pytest.raises(CurrencyMismatchError, match="currency USD, expected EUR"):
        side.record("2026-11", CPO.public_key, [cdr("CDR-E", 1_000), dollars])
    assert side.periods == {}


def test_a_correction_is_filed_in_the_month_it_is_issued() -> None:
    original = cdr("CDR-1", 4_500)  # a November session
    issued = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    credit = credit_cdr(original, cdr_id="CDR-1-C", now=issued)
    fixed = dataclasses.replace(cdr("CDR-1-2", 4_000), last_updated=issued)
    assert credit.end_date_time == original.end_date_time  # OCPI: the session's times stay
    months = by_month([original, credit, fixed])
    assert {m: [c.id for c in cs] for m, cs in months.items()} == {
        "2026-11": ["CDR-1"],
        "2026-12": ["CDR-1-C", "CDR-1-2"],
    }
    side = CdrSettlement(TwoWayChannel(TERMS, EMSP))
    for month, cdrs in months.items():  # November closed before the correction came
        assert side.record(month, CPO.public_key, cdrs)
    assert side.target == 100  # 113, then -113 + 100


def test_a_restarted_party_still_knows_its_periods(tmp_path: Path) -> None:
    async def main() -> None:
        emsp = CdrSettlement(TwoWayChannel(TERMS, EMSP))
        cpo = CdrSettlement(TwoWayChannel(TERMS, CPO))
        november = [cdr("CDR-1", 4_500), cdr("CDR-2", 3_000)]
        async with SettlementPeriods(tmp_path / "periods.sqlite") as periods:
            assert await periods.record(cpo, "2026-11", CPO.public_key, november)
            assert not await periods.record(cpo, "2026-11", CPO.public_key, november)
        emsp.record("2026-11", CPO.public_key, november)
        assert settle(emsp, cpo, "payer") == 188
        # the CPO restarts: its channel state survives (the channel store), its periods too
        without = CdrSettlement(cpo.channel)
        assert without.due == 188  # it would propose paying the month back
        again = CdrSettlement(cpo.channel)
        async with SettlementPeriods(tmp_path / "periods.sqlite") as periods:
            assert await periods.restore(again) == 1
        assert again.periods == cpo.periods
        assert again.due == 0
        assert again.pay() is None

    asyncio.run(main())


def test_a_period_whose_commit_fails_is_not_held(tmp_path: Path) -> None:
    async def main() -> None:
        cpo = CdrSettlement(TwoWayChannel(TERMS, CPO))
        november = [cdr("CDR-1", 4_500)]
        async with SettlementPeriods(tmp_path / "periods.sqlite") as periods:
            commit = periods.db.commit

            async def failing() -> None:
                raise sqlite3.OperationalError("disk I/O error")

            periods.db.commit = failing  # type: ignore[method-assign]
            with pytest.raises(sqlite3.OperationalError):
                await periods.record(cpo, "2026-11", CPO.public_key, november)
            assert cpo.periods == {}  # held only once saved
            periods.db.commit = commit  # type: ignore[method-assign]
            assert await periods.record(cpo, "2026-11", CPO.public_key, november)

    asyncio.run(main())
