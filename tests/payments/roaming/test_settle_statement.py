"""Statements: per direction, service and day from acknowledged batches (returned records left
out), with disputes, credits and payments; both carriers build the same canonical JSON
independently and both sign it; CSV and HTML carry the same figures."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser

import pytest

from payments.roaming.batch import seal
from payments.roaming.disputes import Dispute, Resolution, sign_dispute, sign_resolution
from payments.roaming.errors import StatementError
from payments.roaming.record import EventType
from payments.roaming.statement import SignedStatement, StatementBuilder
from payments.roaming.validation import Validator
from tests.payments.roaming.settle_support import (
    AGREEMENT,
    HOME,
    HOME_KEY,
    NOW,
    T0,
    VISITED,
    VISITED_KEY,
    rated,
    record,
)

DAY = 86_400


def _period_data() -> tuple[list[object], ...]:
    v = Validator(AGREEMENT, HOME_KEY)
    day1 = [rated(record(kind=EventType.SMS_MO, start=T0 + i)) for i in range(3)]
    day2 = [rated(record(kind=EventType.MOC, duration=61, start=T0 + DAY + i)) for i in range(2)]
    wrong = record(kind=EventType.SMS_MO, start=T0 + DAY + 9, charge=1)  # returned: not counted
    outside = rated(record(kind=EventType.SMS_MO, start=T0 + 40 * DAY))  # another period
    b1 = seal(AGREEMENT, VISITED_KEY, (*day1, wrong), sequence=1, now=NOW)
    b2 = seal(AGREEMENT, VISITED_KEY, (*day2, outside), sequence=2, now=T0 + 41 * DAY)
    acks = [v.validate(b1, NOW), v.validate(b2, T0 + 41 * DAY)]
    d = sign_dispute(
        Dispute(
            agreement=AGREEMENT.hash, batch=acks[0].ack.batch, raised_by=HOME, indices=(0,),
            amount=4_000, reason="duplicate of a test SIM", raised_utc=NOW,
        ),
        HOME_KEY,
    )  # fmt: skip
    answer = Resolution(
        dispute=d.body.id, accepted=True, credit=4_000, reason="ok", resolved_utc=NOW
    )
    return [b1, b2], acks, [(d, sign_resolution(answer, VISITED_KEY))]


def _build() -> StatementBuilder:
    batches, acks, disputes = _period_data()
    builder = StatementBuilder(
        AGREEMENT, period_start=T0 - T0 % DAY, period_end=T0 - T0 % DAY + 30 * DAY
    )
    for b, a in zip(batches, acks, strict=True):
        builder.add_batch(b, a)  # type: ignore[arg-type]
    for d, r in disputes:
        builder.add_dispute(d, r)  # type: ignore[arg-type]
    builder.add_payment(HOME, VISITED, 1, 12_000)
    return builder


def test_lines_per_service_and_day_and_direction_totals() -> None:
    s = _build().build()
    assert s.lines == (
        (VISITED, HOME, "SMS_MO", "2026-09-21", 3, 12_000),
        (VISITED, HOME, "MOC", "2026-09-22", 2, 36_000),
    )
    totals = {(d[0], d[1]): d[2:] for d in s.directions}
    assert totals[(VISITED, HOME)] == (48_000, 4_000, 12_000, 32_000)
    assert totals[(HOME, VISITED)] == (0, 0, 0, 0)
    assert s.disputes[0][1:] == (HOME, 4_000, "accepted", 4_000)


def test_both_carriers_build_the_same_statement_and_both_sign_it() -> None:
    at_home, at_visited = _build().build(), _build().build()
    assert at_home.encode() == at_visited.encode()
    sigs = (
        HOME_KEY.sign(at_home.signing_message()),
        VISITED_KEY.sign(at_visited.signing_message()),
    )
    SignedStatement(statement=at_home, signatures=sigs).verify(AGREEMENT)
    with pytest.raises(StatementError, match=VISITED):
        SignedStatement(statement=at_home, signatures=(sigs[0], sigs[0])).verify(AGREEMENT)


def test_csv_and_html_carry_the_figures() -> None:
    s = _build().build()
    rows = list(csv.reader(io.StringIO(s.csv())))
    assert rows[0] == ["sender", "recipient", "service", "day", "events", "charge"]
    assert ["FRAVV", "DEUAA", "SMS_MO", s.lines[0][3], "3", "0.12000"] in rows
    assert ["FRAVV", "DEUAA", "0.48000", "0.04000", "0.12000", "0.32000"] in rows
    page = s.html()
    cells: list[str] = []

    class Cells(HTMLParser):
        def handle_data(self, data: str) -> None:
            cells.append(data)

    Cells().feed(page)
    assert "0.32000" in cells
    assert s.hash.hex() in page


def test_a_mismatched_ack_is_refused() -> None:
    batches, acks, _ = _period_data()
    builder = StatementBuilder(AGREEMENT, period_start=T0, period_end=T0 + DAY)
    with pytest.raises(StatementError):
        builder.add_batch(batches[0], acks[1])  # type: ignore[arg-type]
