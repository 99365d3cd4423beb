"""The sans-I/O session core (`payments.charging.session`): events applied once in any order,
energy from register readings, and the stop decisions of pay as you charge and prepaid."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from payments.charging.errors import EventConflictError, MalformedEventError, SessionLimitError
from payments.charging.session import (
    MAX_SESSIONS_PER_CHARGE_POINT,
    MIN_SAMPLE_MS,
    SAMPLE_SLOTS,
    STOP_SEQ,
    ChargingSession,
    EventKind,
    SessionBook,
    SessionLimits,
    StopReason,
    TransactionEvent,
)


def per_kwh(start_s: int, energy_wh: int, duration_s: int) -> int:
    """300 minor units per kWh, rounded up."""
    del start_s, duration_s
    return -(-energy_wh * 300 // 1000)


def event(seq: int, kind: EventKind, t: int, wh: int | None, **extra: object) -> TransactionEvent:
    return TransactionEvent(
        charge_point="CP1",
        transaction_id="tx1",
        seq_no=seq,
        kind=kind,
        timestamp_s=t,
        register_wh=wh,
        **extra,  # type: ignore[arg-type]
    )


SESSION = [
    event(0, EventKind.STARTED, 1000, 5000, id_token="TOKEN"),
    *(event(i, EventKind.UPDATED, 1000 + 60 * i, 5000 + 250 * i) for i in range(1, 9)),
    event(9, EventKind.ENDED, 1600, 7300, signed_meter_value="OCMF|{...}"),
]


def test_in_order_session_bills_the_register_difference() -> None:
    book = SessionBook(per_kwh)
    for e in SESSION:
        assert book.apply(e).new
    session = book.sessions[("CP1", "tx1")]
    assert session.ended
    assert session.energy_wh == 2300
    assert session.duration_s == 600
    assert session.billed() == per_kwh(0, 2300, 600) == 690
    assert session.id_token == "TOKEN"
    assert [s.data for s in session.signed] == ["OCMF|{...}"]


@given(st.permutations(SESSION), st.lists(st.sampled_from(SESSION), max_size=10))
def test_any_order_with_repeats_gives_the_same_session(
    order: list[TransactionEvent], repeats: list[TransactionEvent]
) -> None:
    book = SessionBook(per_kwh)
    news = [book.apply(e).new for e in [*order, *repeats]]
    assert sum(news) == len(SESSION)
    session = book.sessions[("CP1", "tx1")]
    assert (session.energy_wh, session.duration_s, session.billed()) == (2300, 600, 690)
    assert session.start_wh == 5000


def test_a_repeated_seq_changes_nothing_and_another_reading_under_it_is_refused() -> None:
    book = SessionBook(per_kwh)
    book.apply(SESSION[0])
    book.apply(SESSION[1])
    again = book.apply(SESSION[1])
    assert not again.new
    with pytest.raises(EventConflictError, match="seq 1 again with register 9999999"):
        book.apply(event(1, EventKind.UPDATED, 9999, 9_999_999))
    assert again.session.energy_wh == 250
    assert again.session.seen == {0: SESSION[0].register_wh, 1: SESSION[1].register_wh}


def test_a_16_sample_takes_the_slot_of_its_reading_at_its_millisecond() -> None:
    session = ChargingSession(("CP1", "tx1"), per_kwh)
    ms = 1_780_000_000_123
    base = ms * SAMPLE_SLOTS

    def apply(wh: int | None) -> int:
        seq = session.sample_seq(ms, wh)
        session.apply(event(seq, EventKind.UPDATED, ms // 1000, wh))
        return seq

    assert apply(None) == base  # a time alone
    assert apply(1_000) == base + 1  # a reading: not the slot of the time alone
    assert apply(1_004) == base + 2
    assert session.sample_seq(ms, 1_000) == base + 1  # resent: its slot again, a repeat
    assert session.sample_seq(ms, None) == base  # a time alone again adds nothing
    for wh in range(2_000, 2_000 + SAMPLE_SLOTS - 3):
        apply(wh)
    with pytest.raises(MalformedEventError, match=f"more than {SAMPLE_SLOTS} readings"):
        session.sample_seq(ms, 9_999)
    assert session.sample_seq(ms, 2_000) == base + 3  # a resend still finds its slot


def test_a_16_sample_key_never_reaches_the_start_or_the_stop() -> None:
    session = ChargingSession(("CP1", "tx1"), per_kwh)
    for ms in (0, STOP_SEQ // SAMPLE_SLOTS, MIN_SAMPLE_MS - 1):
        with pytest.raises(MalformedEventError, match="before 1970-01-03"):
            session.sample_seq(ms, 1)
    assert session.sample_seq(MIN_SAMPLE_MS, 1) > STOP_SEQ


def test_conflicting_events_are_refused_and_change_nothing() -> None:
    book = SessionBook(per_kwh)
    book.apply(SESSION[0])
    with pytest.raises(EventConflictError):
        book.apply(event(5, EventKind.STARTED, 1000, 5000))
    with pytest.raises(EventConflictError):
        book.apply(event(6, EventKind.UPDATED, 1100, 4999))
    book.apply(SESSION[-1])
    with pytest.raises(EventConflictError):
        book.apply(event(10, EventKind.ENDED, 1700, 8000))
    session = book.sessions[("CP1", "tx1")]
    assert set(session.seen) == {0, 9}
    assert session.energy_wh == 2300


def test_a_late_start_above_a_reading_is_refused() -> None:
    book = SessionBook(per_kwh)
    book.apply(SESSION[3])
    with pytest.raises(EventConflictError):
        book.apply(event(0, EventKind.STARTED, 1000, 6000))


@pytest.mark.parametrize(
    "fields",
    [
        {"seq_no": -1},
        {"seq_no": True},
        {"register_wh": 10**16},
        {"transaction_id": ""},
        {"charge_point": "x" * 65},
        {"signed_meter_value": "x" * 9000},
        {"timestamp_s": -5},
    ],
)
def test_malformed_events_are_refused(fields: dict[str, object]) -> None:
    base: dict[str, object] = {
        "charge_point": "CP1",
        "transaction_id": "tx",
        "seq_no": 1,
        "kind": EventKind.UPDATED,
        "timestamp_s": 1,
        "register_wh": 1,
    }
    with pytest.raises(MalformedEventError):
        TransactionEvent(**{**base, **fields})  # type: ignore[arg-type]


def test_payment_lag_beyond_the_margin_stops_once() -> None:
    book = SessionBook(per_kwh, SessionLimits(margin=200))
    for e in SESSION[:4]:
        applied = book.apply(e)
        applied.session.credit(applied.session.due())  # the driver keeps up
        assert applied.stop is None
    stops = [book.apply(e).stop for e in SESSION[4:]]
    # paid 225 for 750 Wh at seq 3; 75 per 250 Wh step: 75 due at seq 4 (150 by the next step),
    # 150 due at seq 5 and 225 > 200 by the next step: the stop comes at seq 5, while the driver
    # owes less than the margin
    assert stops[0] is None
    assert stops[1] is not None
    assert stops[1].reason is StopReason.PAYMENT_LAG
    assert stops[2:] == [None] * (len(stops) - 2)


def test_prepaid_energy_and_time() -> None:
    book = SessionBook(per_kwh)
    book.open(("CP1", "tx1"), SessionLimits(energy_wh=1000))
    reasons = [a.stop.reason for e in SESSION if (a := book.apply(e)).stop is not None]
    assert reasons == [StopReason.PREPAID_ENERGY]
    book = SessionBook(per_kwh)
    session = book.open(("CP1", "tx1"), SessionLimits(duration_s=300))
    book.apply(SESSION[0])
    assert session.decide(1299) is None  # the clock between meter values (`Csms.tick`)
    stop = session.decide(1300)
    assert stop is not None
    assert stop.reason is StopReason.PREPAID_TIME
    assert session.decide(1400) is None


def test_sessions_are_bounded_per_charge_point() -> None:
    book = SessionBook(per_kwh)
    for i in range(MAX_SESSIONS_PER_CHARGE_POINT):
        book.open(("CP1", f"t{i}"))
    with pytest.raises(SessionLimitError):
        book.open(("CP1", "one-more"))
    book.close(("CP1", "t0"))
    book.open(("CP1", "one-more"))
    book.open(("CP2", "t0"))


@given(st.lists(st.tuples(st.booleans(), st.sampled_from("AB"), st.sampled_from("xyz"))))
def test_a_charge_points_sessions_are_those_opened_there_and_not_closed(
    steps: list[tuple[bool, str, str]],
) -> None:
    """`SessionBook.at` (what a reconnecting station's stops are resent from) agrees with the
    book's sessions after any sequence of opens and closes."""
    book = SessionBook(per_kwh)
    for opening, station, tx in steps:
        if opening:
            book.open((station, tx))
        else:
            book.close((station, tx))
    for station in "AB":
        at = {s.key for s in book.at(station)}
        assert at == {key for key in book.sessions if key[0] == station}


def test_the_session_core_is_sans_io() -> None:
    """`session.py` imports no event loop, socket, database or clock."""
    import ast
    from pathlib import Path

    import payments.charging.session as core

    banned = {"asyncio", "trio", "anyio", "socket", "sqlite3", "aiosqlite", "time", "websockets"}
    tree = ast.parse(Path(core.__file__).read_text())
    imported = {
        (alias.name if isinstance(node, ast.Import) else (node.module or "")).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not imported & banned


@given(
    margin=st.integers(0, 2_000),
    step_wh=st.integers(1, 2_000),
    paid_steps=st.integers(0, 10),
    price=st.integers(1, 1_000),
)
def test_a_driver_who_stops_paying_is_stopped_owing_at_most_the_margin(
    margin: int, step_wh: int, paid_steps: int, price: int
) -> None:
    """At a steady power, the stop comes at the first meter value after which one more step
    unpaid would pass the margin: when it comes the driver owes at most the margin (unless a
    single step already costs more than the margin allows)."""
    assume(step_wh * price >= 1000)  # every step costs at least one unit: the debt grows

    def pricing(start_s: int, energy_wh: int, duration_s: int) -> int:
        del start_s, duration_s
        return -(-energy_wh * price // 1000)

    book = SessionBook(pricing, SessionLimits(margin=margin))
    book.apply(event(0, EventKind.STARTED, 0, 0))
    stop = None
    for i in range(1, 10_000):
        applied = book.apply(event(i, EventKind.UPDATED, 60 * i, step_wh * i))
        session = applied.session
        if applied.stop is not None:
            stop = applied.stop
            break
        if i <= paid_steps:
            session.credit(session.due())
    assert stop is not None
    assert stop.reason is StopReason.PAYMENT_LAG
    assert session.due() <= margin or i <= paid_steps + 1  # a first step dearer than the margin


def test_the_session_record_is_canonical_and_binds_every_reading() -> None:
    """`commitment.session_record`: the same bill and readings in any order give the same bytes;
    a changed register or signed value gives another digest."""
    import random

    from payments.charging.commitment import session_digest, session_record
    from payments.charging.store import Bill

    bill = Bill(charge_point="CP1", transaction_id="tx1", energy_wh=2300, duration_s=600, amount=1)
    shuffled = list(SESSION)
    random.Random(7).shuffle(shuffled)
    record = session_record(bill, SESSION)
    assert session_record(bill, shuffled) == record
    assert (
        len(record)
        == 2 + 3 + 2 + 3 + 8 * 3 + 4 + len(SESSION) * (8 + 1 + 8 + 2) + len(b"OCMF|{...}") + 1
    )  # has_cdr = 0: no CDR hash
    from payments.charging.commitment import parse_session_record

    assert session_record(bill, SESSION, b"\x05" * 32) == record[:-1] + b"\x01" + b"\x05" * 32
    assert parse_session_record(record).readings[-1].signed_meter_value == "OCMF|{...}"
    tampered = [
        *SESSION[:-1],
        event(9, EventKind.ENDED, 1600, 7300, signed_meter_value="OCMF|{..}"),
    ]
    assert session_digest(session_record(bill, tampered)) != session_digest(record)
    fewer_wh = [
        *SESSION[:-1],
        event(9, EventKind.ENDED, 1600, 7299, signed_meter_value="OCMF|{...}"),
    ]
    assert session_digest(session_record(bill, fewer_wh)) != session_digest(record)
