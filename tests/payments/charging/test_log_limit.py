"""Log lines hostile input causes are bounded (`payments.charging.log_limit`): the limiter on an
injected clock (lines per window, the suppressed count reported once the window closes, a bounded
key table, a flood that stopped counted), then against a real CSMS: real charge points over real
WebSockets sending refused Authorize calls, TCP clients failing their handshake, a store failing
at a station's login, and a station answering a call with unknown unique ids (the other lines
and the money lines that are never limited: `test_log_lines`)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from ocpp.v16 import call as call16  # type: ignore[import-untyped]
from ocpp.v201 import call as call201  # type: ignore[import-untyped]
from websockets.exceptions import InvalidStatus

from payments.charging.errors import LogLimitError, StationCallError, TokenRefusedError
from payments.charging.log_limit import (
    CLIENTS,
    LINES,
    MAX_LINES,
    OVERFLOW,
    LimitedLogger,
    LogLimiter,
    Suppressed,
    Verdict,
)
from payments.charging.simulator import connect_charger
from payments.charging.store import Binding, CsmsStore
from tests.payments.charging.test_csms import PASSWORD, _raw, run

if TYPE_CHECKING:
    from pathlib import Path

    from payments.charging.csms import Csms


INFO = logging.INFO
NAMES = ("tests.log_limit", "payments.charging.log_limit")
"""The loggers of the lines `log` writes, and of their summaries."""


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(slots=True, kw_only=True)
class CountingLimiter(LogLimiter):
    """A `LogLimiter` a test can wait on: until it was asked about so many lines."""

    admitted: int = 0
    awaited: tuple[int, asyncio.Event] | None = None

    def admit(self, source: str, kind: str, level: int, *, capped: bool = True) -> Verdict:
        self.admitted += 1
        if self.awaited is not None and self.admitted >= self.awaited[0]:
            self.awaited[1].set()
        return LogLimiter.admit(self, source, kind, level, capped=capped)

    async def asked(self, lines: int) -> None:
        """Return once `lines` lines were asked about in all."""
        if self.admitted < lines:
            self.awaited = (lines, asyncio.Event())
            await self.awaited[1].wait()


def test_a_key_writes_its_lines_then_counts_the_rest_until_its_window_closes() -> None:
    clock = Clock()
    limiter = LogLimiter(lines=3, interval_s=60, clock=clock)
    verdicts = [limiter.admit("CP1", "token refused", INFO) for _ in range(10)]
    assert [v.write for v in verdicts] == [True] * 3 + [False] * 7
    assert all(v.summaries == () for v in verdicts)
    clock.now += 59.5
    assert not limiter.admit("CP1", "token refused", INFO).write  # the window is still open
    clock.now += 0.5
    reopened = limiter.admit("CP1", "token refused", INFO)
    assert reopened.write
    assert reopened.summaries == (
        Suppressed(source="CP1", kind="token refused", count=8, level=INFO, seconds=60.0),
    )
    assert [limiter.admit("CP1", "token refused", INFO).write for _ in range(3)] == [
        True,
        True,
        False,
    ]


def test_a_window_with_nothing_suppressed_owes_no_summary() -> None:
    clock = Clock()
    limiter = LogLimiter(lines=3, interval_s=60, clock=clock)
    for _ in range(3):
        limiter.admit("CP1", "token refused", INFO)
    clock.now += 600
    assert limiter.admit("CP1", "token refused", INFO).summaries == ()


def test_keys_are_counted_apart() -> None:
    limiter = LogLimiter(lines=1, interval_s=60, clock=Clock())
    assert limiter.admit("CP1", "token refused", INFO).write
    assert not limiter.admit("CP1", "token refused", INFO).write
    assert limiter.admit("CP2", "token refused", INFO).write
    assert limiter.admit("CP1", "cannot stop", INFO).write


def test_the_key_table_is_bounded_and_a_forgotten_key_reports_its_count() -> None:
    """With every line suppressed (`lines=0`), each new key beyond `max_keys` forgets exactly
    one, whose count comes back as a summary: the table holds `max_keys` keys, however many
    sources flood it; the least recently used goes first."""
    clock = Clock()
    limiter = LogLimiter(lines=0, interval_s=60, max_keys=4, max_lines=10_000, clock=clock)
    summaries = [s for i in range(10_000) for s in limiter.admit(f"10.0.{i}", "x", INFO).summaries]
    assert len(summaries) == 10_000 - 4
    assert summaries[0] == Suppressed(source="10.0.0", kind="x", count=1, level=INFO, seconds=0.0)
    assert [s.source for s in summaries[-2:]] == ["10.0.9994", "10.0.9995"]

    limiter = LogLimiter(lines=1, interval_s=60, max_keys=2, clock=clock)
    for source in ("A", "A", "A", "B", "A"):  # A: one written, three suppressed; B older now
        limiter.admit(source, "x", INFO)
    clock.now += 5
    forgets_b = limiter.admit("C", "x", INFO)
    assert forgets_b.summaries == ()  # B had nothing suppressed
    forgets_a = limiter.admit("D", "x", INFO)
    assert forgets_a.summaries == (
        Suppressed(source="A", kind="x", count=3, level=INFO, seconds=5.0),
    )
    assert limiter.admit("A", "x", INFO).write  # forgotten: a fresh window


def test_more_keys_than_the_table_holds_flooding_in_turn_are_held_to_the_cap_on_all_lines() -> None:
    """The review's case: 2,000 sources taking turns are each forgotten before their next line,
    so every line opens a fresh window of its key; the cap on all lines holds them, and what it
    held back is counted in one summary once its window closes."""
    clock = Clock()
    limiter = LogLimiter(clock=clock)
    verdicts = [limiter.admit(f"10.0.{i}", "x", INFO) for _ in range(LINES) for i in range(2000)]
    assert sum(v.write for v in verdicts) == MAX_LINES
    assert all(v.summaries == () for v in verdicts)  # no key suppressed a line of its own
    clock.now += 60
    [overflow] = limiter.expire()
    assert overflow == Suppressed(
        source=OVERFLOW[0], kind=OVERFLOW[1], count=2000 * LINES - MAX_LINES, level=INFO, seconds=60
    )
    assert limiter.admit("10.0.0", "x", INFO).write  # a fresh window of the cap


def test_summaries_take_places_under_the_cap_and_every_line_is_counted_once() -> None:
    """Keys that each suppress lines, then are forgotten, owe a summary each: those count
    against the cap too, and every line is written or counted by exactly one summary."""
    clock = Clock()
    limiter = LogLimiter(lines=1, interval_s=60, max_keys=4, max_lines=10, clock=clock)
    verdicts = [limiter.admit(f"CP{i}", "x", INFO) for i in range(100) for _ in range(3)]
    summaries = [s for v in verdicts for s in v.summaries]
    written = sum(v.write for v in verdicts)
    assert written + len(summaries) == 10
    clock.now += 60
    summaries += limiter.expire()
    assert written + sum(s.count for s in summaries) == 300
    assert [s.source for s in summaries].count(OVERFLOW[0]) == 1


def test_a_line_outside_the_cap_is_written_when_the_cap_is_used_up() -> None:
    limiter = LogLimiter(lines=2, max_lines=3, clock=Clock())
    assert [limiter.admit(f"CP{i}", "x", INFO).write for i in range(5)] == [True] * 3 + [False] * 2
    ours = [limiter.admit("the CSMS store", "x", logging.ERROR, capped=False) for _ in range(3)]
    assert [v.write for v in ours] == [True, True, False]  # its key's bound still holds


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lines", -1),
        ("interval_s", 0.0),
        ("interval_s", float("nan")),
        ("max_keys", 0),
        ("max_lines", -1),
    ],
)
def test_a_bound_out_of_range_is_refused_by_name(field: str, value: float) -> None:
    with pytest.raises(LogLimitError) as refused:
        LogLimiter(**{field: value})
    assert refused.value.field == field


def test_the_summary_has_the_highest_level_of_the_lines_it_counts() -> None:
    clock = Clock()
    limiter = LogLimiter(lines=1, interval_s=60, clock=clock)
    for level in (logging.ERROR, logging.INFO, logging.WARNING, logging.DEBUG):
        limiter.admit("CP1", "x", level)
    clock.now += 60
    [summary] = limiter.admit("CP1", "x", INFO).summaries
    assert (summary.count, summary.level) == (3, logging.WARNING)


def test_expire_forgets_closed_windows_and_reports_what_they_suppressed() -> None:
    """A flood that stops is counted once its window closes, without a next line."""
    clock = Clock()
    limiter = LogLimiter(lines=1, interval_s=60, clock=clock)
    for _ in range(4):
        limiter.admit("CP1", "x", INFO)
    clock.now += 30
    limiter.admit("CP2", "x", INFO)
    limiter.admit("CP2", "x", INFO)
    assert limiter.expire() == ()
    clock.now += 30
    assert limiter.expire() == (
        Suppressed(source="CP1", kind="x", count=3, level=INFO, seconds=60.0),
    )
    assert limiter.expire() == ()  # reported once
    assert limiter.admit("CP1", "x", INFO).write  # a fresh window
    clock.now += 30
    assert limiter.expire() == (
        Suppressed(source="CP2", kind="x", count=1, level=INFO, seconds=60.0),
    )


def test_log_writes_the_summary_line_before_the_next_one(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limiter = LogLimiter(lines=2, interval_s=30, clock=clock)
    logger = logging.getLogger("tests.log_limit")
    caplog.set_level(INFO)
    for i in range(5):
        limiter.log(logger, INFO, "CP1", "token refused", "token %d refused", i)
    clock.now += 45
    limiter.log(logger, INFO, "CP1", "token refused", "token %d refused", 5)
    for i in range(6, 9):
        limiter.log(logger, INFO, "CP1", "token refused", "token %d refused", i)
    clock.now += 30
    limiter.flush()
    assert [(r.name, r.getMessage()) for r in caplog.records if r.name in NAMES] == [
        ("tests.log_limit", "token 0 refused"),
        ("tests.log_limit", "token 1 refused"),
        (NAMES[1], "suppressed 3 similar lines (token refused) from CP1 in the last 45 s"),
        ("tests.log_limit", "token 5 refused"),
        ("tests.log_limit", "token 6 refused"),
        (NAMES[1], "suppressed 2 similar lines (token refused) from CP1 in the last 30 s"),
    ]


def test_a_line_the_logger_drops_is_not_counted(caplog: pytest.LogCaptureFixture) -> None:
    limiter = LogLimiter(lines=1, interval_s=30, clock=Clock())
    logger = logging.getLogger("tests.log_limit")
    caplog.set_level(logging.WARNING)
    for _ in range(5):
        limiter.log(logger, INFO, "CP1", "token refused", "dropped")
    limiter.log(logger, logging.WARNING, "CP1", "token refused", "written")
    assert [r.getMessage() for r in caplog.records if r.name in NAMES] == ["written"]


async def refuse_every_token(id_token: str) -> Binding | None:
    raise TokenRefusedError(id_token, "not ours")


async def hang_up(url: str, payload: bytes) -> None:
    """A TCP client of the CSMS at `url` that sends `payload` (no HTTP request) and leaves."""
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize(("station", "version"), [("CP16", "1.6"), ("CP201", "2.0.1")])
def test_a_charger_flooding_refused_authorizes_logs_a_bounded_number_of_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, station: str, version: str
) -> None:
    clock = Clock()
    limiter = LogLimiter(lines=5, interval_s=60, clock=clock)

    async def body(csms: Csms, url: str) -> None:
        async with connect_charger(url, station, PASSWORD, version) as charger:
            for i in range(200):
                if version == "1.6":
                    answer = await charger.call(call16.Authorize(id_tag=f"T{i}"))
                    assert answer.id_tag_info["status"] == "Invalid"
                else:
                    token = {"idToken": f"T{i}", "type": "ISO14443"}
                    answer = await charger.call(call201.Authorize(id_token=token))
                    assert answer.id_token_info["status"] == "Invalid"
            clock.now += 61
            await csms.tick()  # the window closed: its count is written without a next line
            assert caplog.records[-1].getMessage().startswith("suppressed 195 similar lines")
            await charger.call(
                call16.Authorize(id_tag="LAST")
                if version == "1.6"
                else call201.Authorize(id_token={"idToken": "LAST", "type": "ISO14443"})
            )

    with caplog.at_level(logging.INFO, logger="payments.charging"):
        run(tmp_path, body, authorize=refuse_every_token, log_limit=limiter)
    names = ("payments.charging.station", "payments.charging.log_limit")
    lines = [r.getMessage() for r in caplog.records if r.name in names]
    assert lines == [
        *(f"token 'T{i}' refused: not ours" for i in range(5)),
        f"suppressed 195 similar lines (token refused) from {station} in the last 61 s",
        "token 'LAST' refused: not ours",
    ]


def test_clients_failing_their_handshake_log_a_bounded_number_of_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A TCP client that sends no HTTP request (or garbage) is an error line with a traceback in
    `websockets`' server per connection; through the CSMS's limiter, a bounded number."""
    clock = Clock()
    limiter = CountingLimiter(lines=3, interval_s=60, clock=clock)

    async def body(csms: Csms, url: str) -> None:
        for i in range(30):
            await hang_up(url, b"garbage\r\n\r\n" if i % 2 else b"")
        await limiter.asked(30)  # the server read each and gave up
        clock.now += 60
        await hang_up(url, b"garbage\r\n\r\n")
        await limiter.asked(31)

    with caplog.at_level(logging.WARNING, logger="websockets"):
        run(tmp_path, body, log_limit=limiter)
    names = ("websockets.server", "payments.charging.log_limit")
    lines = [r.getMessage() for r in caplog.records if r.name in names]
    assert lines == [
        *["opening handshake failed (client 127.0.0.1)"] * 3,
        "suppressed 27 similar lines (opening handshake failed (InvalidMessage)) from websocket "
        "clients in the last 60 s",
        "opening handshake failed (client 127.0.0.1)",
    ]


def test_a_handlers_failures_are_keyed_by_their_error_class(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A charger's message that fails its handler unexpectedly is an error line with a
    traceback, within the station's bound for that action: a failure of another class is a
    key of its own (a charger that makes one handler fail cannot hide another fault)."""
    errors = iter(
        [RuntimeError("first"), RuntimeError("second"), sqlite3.OperationalError("third")]
    )

    async def failing(id_token: str) -> Binding | None:
        raise next(errors)

    async def body(csms: Csms, url: str) -> None:
        async with connect_charger(url, "CP16", PASSWORD, "1.6") as charger:
            for _ in range(3):
                assert await charger.call(call16.Authorize(id_tag="T")) is None  # a CallError

    with caplog.at_level(logging.ERROR, logger="payments.charging"):
        run(tmp_path, body, authorize=failing, log_limit=LogLimiter(lines=1, clock=Clock()))
    failures = [r for r in caplog.records if r.name == "payments.charging.station"]
    assert [(r.getMessage(), r.exc_info and str(r.exc_info[1])) for r in failures] == [
        ("CP16: Authorize failed", "first"),
        ("CP16: Authorize failed", "third"),
    ]


def test_a_station_refusing_the_csms_calls_logs_a_bounded_number_of_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The `ocpp` library logs a warning for each call a station answers with a CALLERROR (a
    call is made per back office request, per stop decision, per reconnection); through the
    CSMS's limiter, a bounded number, under the station. (Answers with another unique id never
    reach the library: `test_station_answers`.)"""
    clock = Clock()
    limiter = LogLimiter(lines=5, interval_s=60, clock=clock)

    async def remote_starts_refused(csms: Csms, ws: Any, calls: int) -> None:
        for _ in range(calls):
            started = asyncio.create_task(csms.remote_start("CP16", "DRIVER"))
            unique_id = json.loads(await ws.recv())[1]
            await ws.send(json.dumps([4, unique_id, "InternalError", "", {}]))
            with pytest.raises(StationCallError):
                await started

    async def body(csms: Csms, url: str) -> None:
        async for ws in _raw(url, "CP16", "ocpp1.6"):
            await ws.send(json.dumps([2, "hb", "Heartbeat", {}]))
            await ws.recv()  # the station's connection is the CSMS's now
            await remote_starts_refused(csms, ws, 40)
            clock.now += 60
            await remote_starts_refused(csms, ws, 1)

    with caplog.at_level(logging.WARNING, logger="ocpp"):
        run(tmp_path, body, log_limit=limiter)
    lines = [r.getMessage() for r in caplog.records if r.name in ("ocpp", NAMES[1])]
    assert [line.split(": ")[0] for line in lines] == [
        *["Received a CALLError"] * 5,
        "suppressed 35 similar lines (Received a CALLError",
        "Received a CALLError",
    ]
    assert lines[5].endswith(") from CP16 in the last 60 s")


def test_a_library_line_carrying_an_error_is_keyed_by_the_errors_class_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`websockets` writes one message for every failed handshake, a client's garbage or our
    own failure: the error's class keeps them apart."""
    library = LimitedLogger(
        logging.getLogger("tests.log_limit"), LogLimiter(lines=1, clock=Clock()), CLIENTS
    )
    caplog.set_level(logging.ERROR)
    for error in (EOFError("first"), EOFError("second"), OSError("third")):
        try:
            raise error
        except (OSError, EOFError):
            library.error("opening handshake failed", exc_info=True)
    library.error("opening handshake failed", exc_info=EOFError("fourth"))
    library.error("opening handshake failed")
    records = [r for r in caplog.records if r.name == NAMES[0]]
    assert [r.exc_info and str(r.exc_info[1]) for r in records] == ["first", "third", None]


@dataclass(frozen=True, slots=True)
class Connection:
    """What `LimitedLogger` reads of a `websockets` connection."""

    remote_address: tuple[str, int]


def test_a_library_line_names_its_client_and_its_callers_location(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As `websockets` logs: through a stdlib adapter whose `extra` is the connection, a message
    that is no format string ("% sent keepalive ping") included; the record's location is the
    library's call, not `log_limit`'s."""
    library = LimitedLogger(
        logging.getLogger("tests.log_limit"), LogLimiter(clock=Clock()), CLIENTS
    )
    connection = logging.LoggerAdapter(library, {"websocket": Connection(("10.0.0.7", 4242))})
    caplog.set_level(logging.DEBUG, logger="tests.log_limit")
    connection.debug("% sent keepalive ping")
    connection.info("connection rejected (%d %s)", 401, "Unauthorized")
    LogLimiter(clock=Clock()).log(logging.getLogger("tests.log_limit"), INFO, "CP1", "x", "ours")
    records = [r for r in caplog.records if r.name == NAMES[0]]
    assert [r.getMessage() for r in records] == [
        "% sent keepalive ping (client 10.0.0.7)",
        "connection rejected (401 Unauthorized) (client 10.0.0.7)",
        "ours",
    ]
    this = test_a_library_line_names_its_client_and_its_callers_location.__name__
    assert [(r.filename, r.funcName) for r in records] == [("test_log_limit.py", this)] * 3


def test_a_store_failing_at_a_station_login_is_not_hidden_by_clients_that_never_log_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review's case: ten TCP clients that send nothing use up the handshake failures'
    lines, then the store fails while a real station logs in. The station is told 503 (retry),
    and the store's error is written, with its traceback, under its own key."""
    limiter = CountingLimiter(clock=Clock())

    async def disk_failing(store: CsmsStore, station: str, password: str) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    async def body(csms: Csms, url: str) -> None:
        for _ in range(LINES):
            await hang_up(url, b"")
        await limiter.asked(LINES)
        monkeypatch.setattr(CsmsStore, "check_password", disk_failing)
        with pytest.raises(InvalidStatus) as refused:
            async with connect_charger(url, "CP16", PASSWORD, "1.6"):
                pass
        assert refused.value.response.status_code == 503

    with caplog.at_level(logging.WARNING):
        run(tmp_path, body, log_limit=limiter)
    [failed] = [r for r in caplog.records if r.name == "payments.charging.csms"]
    assert failed.levelno == logging.ERROR
    assert failed.getMessage() == (
        "station 'CP16' not logged in: the store failed: OperationalError('disk I/O error')"
    )
    assert failed.exc_info is not None
    assert isinstance(failed.exc_info[1], sqlite3.OperationalError)
