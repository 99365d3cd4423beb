"""The CSMS (`payments.charging.csms`) with real `ocpp` charge points over real WebSockets on
loopback, both protocol versions: authentication before the socket opens, full sessions billed
from the register difference, offline events out of order, repeated unique ids, schema-invalid
payloads, stop requests. Plain sync tests running `asyncio.run` (the CSMS is on asyncio)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gc
import json
import logging
import sys
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import pytest
from ocpp.charge_point import (  # type: ignore[import-untyped]
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.v16 import call_result  # type: ignore[import-untyped]
from ocpp.v201 import call_result as result201  # type: ignore[import-untyped]
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from payments.charging import ocpi_json
from payments.charging.csms import (
    GC_YOUNG_THRESHOLD,
    SWITCH_INTERVAL_S,
    TICK_SLICE,
    Csms,
    run_process,
    serve_csms,
    tune_process,
)
from payments.charging.errors import MalformedEventError
from payments.charging.ocpi_tariff import parse_tariff
from payments.charging.pricing import ocpi_pricing, session_usage
from payments.charging.session import (
    SAMPLE_SLOTS,
    EventKind,
    SessionLimits,
    StopReason,
    TransactionEvent,
)
from payments.charging.simulator import Charger16, Charger201, connect_charger
from payments.charging.station import _payload, now_iso, register_wh
from payments.charging.store import Binding, CsmsStore
from payments.charging.tariff_pricing import price
from tests._programs import run_python

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

T0 = 1_780_000_000.0
PASSWORD = "s3cret-password"


def per_kwh(start_s: int, energy_wh: int, duration_s: int) -> int:
    """250 minor units per kWh, rounded up."""
    del start_s, duration_s
    return -(-energy_wh * 250 // 1000)


def run(tmp_path: Path, body: Callable[[Csms, str], Awaitable[None]], **csms: Any) -> None:
    async def main() -> None:
        async with CsmsStore(tmp_path / "csms.sqlite") as store:
            for station in ("CP16", "CP201"):
                await store.add_station(station, PASSWORD)
            csms.setdefault("pricing", per_kwh)
            service = Csms(store=store, clock=lambda: T0, **csms)
            await service.restore()
            async with serve_csms(service) as server:
                port = next(iter(server.sockets)).getsockname()[1]
                await asyncio.wait_for(body(service, f"ws://127.0.0.1:{port}/ocpp"), 20)

    asyncio.run(main())


def test_a_16_session_is_billed_the_register_difference(tmp_path: Path) -> None:
    async def body(csms: Csms, url: str) -> None:
        async with connect_charger(url, "CP16", PASSWORD, "1.6") as charger:
            assert isinstance(charger, Charger16)
            await charger.boot()
            tx, status = await charger.start_session("DRIVER1", 10_000, T0)
            assert status == "Accepted"
            for i in range(1, 5):
                await charger.meter(tx, 10_000 + 1_500 * i, T0 + 60 * i)
            await charger.stop_session(tx, 17_345, T0 + 300)
        [bill] = await csms.store.bills()
        assert (bill.energy_wh, bill.duration_s) == (7_345, 300)
        assert bill.amount == per_kwh(0, 7_345, 300) == 1837
        assert len(await csms.store.events(("CP16", str(tx)))) == 6

    run(tmp_path, body)


def test_a_201_session_with_offline_events_out_of_order(tmp_path: Path) -> None:
    async def body(csms: Csms, url: str) -> None:
        async with connect_charger(url, "CP201", PASSWORD, "2.0.1") as charger:
            assert isinstance(charger, Charger201)
            await charger.boot()
            answer = await charger.event("Started", "T-1", 0, 2_000, T0, id_token="TOK")
            assert answer.id_token_info["status"] == "Accepted"
            # seq 1..3 were queued offline; 3 arrives first, 2 twice, then the Ended event
            await charger.event("Updated", "T-1", 3, 5_000, T0 + 180, offline=True, signed="S3")
            await charger.event("Updated", "T-1", 2, 4_000, T0 + 120, offline=True)
            await charger.event("Updated", "T-1", 2, 4_000, T0 + 120, offline=True)
            await charger.event("Ended", "T-1", 4, 6_000, T0 + 240)
            await charger.event("Updated", "T-1", 1, 3_000, T0 + 60, offline=True)
        [bill] = await csms.store.bills()
        assert (bill.energy_wh, bill.duration_s, bill.amount) == (4_000, 240, 1000)
        assert ("CP201", "T-1") not in csms.book.sessions  # billed, nothing more expected
        events = await csms.store.events(("CP201", "T-1"))
        assert [e.seq_no for e in events] == [0, 1, 2, 3, 4]
        assert [e.signed_meter_value for e in events if e.signed_meter_value] == ["S3"]

    run(tmp_path, body)


@pytest.mark.parametrize(
    ("station", "password", "protocol"),
    [("CP16", "wrong", "ocpp1.6"), ("NOPE", PASSWORD, "ocpp1.6"), ("CP16", None, "ocpp1.6")],
)
def test_unknown_or_wrong_stations_get_401_before_the_socket_opens(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    station: str,
    password: str | None,
    protocol: str,
) -> None:
    """And a WARNING line (`websockets` logs the refusal at INFO only): an operator sees a
    station's password guessed."""

    async def body(csms: Csms, url: str) -> None:
        headers = {}
        if password is not None:
            token = base64.b64encode(f"{station}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                f"{url}/{station}",
                subprotocols=[Subprotocol(protocol)],
                additional_headers=headers,
            ):
                pass
        assert refused.value.response.status_code == 401
        assert csms.stations == {}

    with caplog.at_level(logging.WARNING, logger="payments.charging.csms"):
        run(tmp_path, body)
    [line] = [r.getMessage() for r in caplog.records if r.name == "payments.charging.csms"]
    assert line.startswith(f"station {station!r} not logged in from 127.0.0.1: ")


async def _raw(url: str, station: str, protocol: str) -> AsyncIterator[Any]:
    token = base64.b64encode(f"{station}:{PASSWORD}".encode()).decode()
    async with connect(
        f"{url}/{station}",
        subprotocols=[Subprotocol(protocol)],
        additional_headers={"Authorization": f"Basic {token}"},
    ) as ws:
        yield ws


def test_schema_invalid_payloads_get_the_named_callerror_and_the_socket_survives(
    tmp_path: Path,
) -> None:
    async def body(csms: Csms, url: str) -> None:
        async for ws in _raw(url, "CP16", "ocpp1.6"):
            assert ws.subprotocol == "ocpp1.6"
            await ws.send(json.dumps([2, "bad-1", "BootNotification", {"chargePointVendor": "x"}]))
            error = json.loads(await ws.recv())
            assert error[:3] == [4, "bad-1", "ProtocolError"]  # a required field is missing
            await ws.send(json.dumps([2, "bad-2", "Heartbeat", {"extra": 1}]))
            error = json.loads(await ws.recv())
            assert error[:3] == [4, "bad-2", "FormationViolation"]
            values = {"connectorId": 1, "transactionId": 5, "meterValue": [{"sampledValue": []}]}
            await ws.send(json.dumps([2, "bad-3", "MeterValues", values]))
            error = json.loads(await ws.recv())
            assert error[:3] == [4, "bad-3", "FormationViolation"]  # the request schema refuses
            await ws.send(json.dumps([2, "bad-4", ["Heartbeat"], {}]))
            error = json.loads(await ws.recv())
            assert error[:3] == [4, "bad-4", "FormationViolation"]  # the action is no string
            assert csms.book.sessions == {}
            await ws.send(json.dumps([2, "ok-1", "Heartbeat", {}]))
            answer = json.loads(await ws.recv())
            assert answer[:2] == [3, "ok-1"]

    run(tmp_path, body)


def test_schema_invalid_201_payloads_get_the_named_callerror_and_the_socket_survives(
    tmp_path: Path,
) -> None:
    async def body(csms: Csms, url: str) -> None:
        async for ws in _raw(url, "CP201", "ocpp2.0.1"):
            assert ws.subprotocol == "ocpp2.0.1"
            await ws.send(json.dumps([2, "bad-1", "Heartbeat", {"extra": 1}]))
            error = json.loads(await ws.recv())
            assert error[:3] == [4, "bad-1", "FormatViolation"]  # OCPP 2.0.1 spells it so
            status: dict[str, object] = {"timestamp": "2026-06-01T00:00:00Z"}
            status |= {"connectorStatus": "Available"}
            status |= {"evseId": "one", "connectorId": 1}
            await ws.send(json.dumps([2, "bad-2", "StatusNotification", status]))
            error = json.loads(await ws.recv())
            assert error[:3] == [4, "bad-2", "TypeConstraintViolation"]
            event: dict[str, object] = {"eventType": "Updated"}
            event |= {"timestamp": "2026-06-01T00:00:00Z"}
            event |= {"triggerReason": "MeterValuePeriodic", "seqNo": "7"}
            event |= {"transactionInfo": {"transactionId": "T"}}
            await ws.send(json.dumps([2, "bad-3", "TransactionEvent", event]))
            error = json.loads(await ws.recv())
            assert error[:3] == [4, "bad-3", "TypeConstraintViolation"]  # seqNo is a string
            assert csms.book.sessions == {}
            await ws.send(json.dumps([2, "ok-1", "Heartbeat", {}]))
            answer = json.loads(await ws.recv())
            assert answer[:2] == [3, "ok-1"]

    run(tmp_path, body)


def test_a_repeated_unique_id_gets_the_same_answer_once(tmp_path: Path) -> None:
    async def body(csms: Csms, url: str) -> None:
        async for ws in _raw(url, "CP16", "ocpp1.6"):
            start = {
                "connectorId": 1,
                "idTag": "D",
                "meterStart": 100,
                "timestamp": "2026-06-01T00:00:00Z",
            }
            await ws.send(json.dumps([2, "start-1", "StartTransaction", start]))
            first = await ws.recv()
            await ws.send(json.dumps([2, "start-1", "StartTransaction", start]))
            assert await ws.recv() == first
            tx = json.loads(first)[2]["transactionId"]
            await ws.send(json.dumps([2, "start-2", "StartTransaction", start]))
            assert json.loads(await ws.recv())[2]["transactionId"] == tx  # the same start again
            assert len(await csms.store.events(("CP16", str(tx)))) == 1

    run(tmp_path, body)


def test_a_conflicting_event_is_a_callerror_and_changes_nothing(tmp_path: Path) -> None:
    async def body(csms: Csms, url: str) -> None:
        async with connect_charger(url, "CP201", PASSWORD, "2.0.1") as charger:
            assert isinstance(charger, Charger201)
            await charger.event("Started", "T-9", 0, 5_000, T0, id_token="TOK")
            await charger.event("Updated", "T-9", 1, 4_000, T0 + 60)  # below meterStart
            await charger.event("Updated", "T-9", 2, 6_000, T0 + 120)
        assert set(csms.book.sessions[("CP201", "T-9")].seen) == {0, 2}
        assert len(await csms.store.events(("CP201", "T-9"))) == 2

    run(tmp_path, body)


def _sample(at: str, wh: int | None, power: bool = False) -> dict[str, object]:
    values: list[dict[str, object]] = [] if wh is None else [{"value": str(wh), "unit": "Wh"}]
    if power:
        values.append({"value": "7400", "unit": "W", "measurand": "Power.Active.Import"})
    return {"timestamp": f"2026-06-01T00:00:{at}Z", "sampledValue": values}


async def _start16(ws: Any) -> int:
    start = {"connectorId": 1, "idTag": "D", "meterStart": 100}
    start["timestamp"] = "2026-06-01T00:00:00Z"
    await ws.send(json.dumps([2, "s", "StartTransaction", start]))
    return int(json.loads(await ws.recv())[2]["transactionId"])


async def _meter16(ws: Any, unique_id: str, tx: int, *samples: dict[str, object]) -> Any:
    values = {"connectorId": 1, "transactionId": tx, "meterValue": list(samples)}
    await ws.send(json.dumps([2, unique_id, "MeterValues", values]))
    return json.loads(await ws.recv())


def test_16_samples_are_keyed_by_their_time_and_reading(tmp_path: Path) -> None:
    """1.6 has no seqNo: two samples in one second are two events (their ms), two readings
    stamped with one ms are two events (a clock-aligned and a periodic sample in one whole
    second), a sample resent is a repeat, and one without a reading at a known time adds
    nothing."""
    at_5 = 1_780_272_005_000 * SAMPLE_SLOTS  # 2026-06-01T00:00:05 in ms, its first slot

    async def body(csms: Csms, url: str) -> None:
        async for ws in _raw(url, "CP16", "ocpp1.6"):
            tx = await _start16(ws)
            answers = [
                await _meter16(ws, "m1", tx, _sample("05.250", 1_000)),
                await _meter16(ws, "m2", tx, _sample("05.750", 1_500)),
                await _meter16(ws, "m3", tx, _sample("05.750", 1_500)),  # resent
                await _meter16(ws, "m4", tx, _sample("06", 2_000)),
                await _meter16(ws, "m5", tx, _sample("06", 2_004), _sample("06", None, True)),
            ]
            assert [a[0] for a in answers] == [3] * 5
            session = csms.book.sessions[("CP16", str(tx))]
            at_6 = at_5 + 1000 * SAMPLE_SLOTS
            assert session.seen == {
                0: 100,
                at_5 + 250 * SAMPLE_SLOTS: 1_000,
                at_5 + 750 * SAMPLE_SLOTS: 1_500,
                at_6: 2_000,
                at_6 + 1: 2_004,
            }
            assert session.energy_wh == 1_904
            assert len(await csms.store.events(("CP16", str(tx)))) == 5

    run(tmp_path, body)


def test_a_refused_16_sample_keeps_none_of_the_others_out_nor_the_stop(tmp_path: Path) -> None:
    """A MeterValues with a refused sample (stamped before 1970-01-03) between two good ones is
    a CALLERROR, with the good ones applied (its resend: the same answer, nothing twice); a
    StopTransaction whose `transactionData` holds one is applied and billed all the same."""

    async def body(csms: Csms, url: str) -> None:
        async for ws in _raw(url, "CP16", "ocpp1.6"):
            tx = await _start16(ws)
            early = {**_sample("01", 1_200), "timestamp": "1970-01-01T00:00:01Z"}
            samples = (_sample("05", 1_000), early, _sample("07", 1_100))
            for unique_id in ("m1", "m1-again"):
                error = await _meter16(ws, unique_id, tx, *samples)
                assert error[:3] == [4, unique_id, "PropertyConstraintViolation"]
                assert "before 1970-01-03" in error[3]
            key = ("CP16", str(tx))
            assert csms.book.sessions[key].energy_wh == 1_000
            stop = {"meterStop": 1_500, "timestamp": "2026-06-01T00:05:00Z", "transactionId": tx}
            stop["transactionData"] = [early, _sample("10", 1_400)]
            await ws.send(json.dumps([2, "stop", "StopTransaction", stop]))
            assert json.loads(await ws.recv())[0] == 3
        [bill] = await csms.store.bills()
        assert (bill.energy_wh, bill.duration_s) == (1_400, 300)
        assert len(await csms.store.events(key)) == 5  # start, 05, 07, 10, stop

    run(tmp_path, body)


def test_two_readings_racing_under_one_seq_apply_one_and_refuse_the_other(
    tmp_path: Path,
) -> None:
    """The same 2.0.1 seqNo with two readings at once (a charger reconnected mid-send): both
    pass the check before either commits; the first is applied, the second is refused after
    its commit found the seq taken, and the store holds the applied reading."""

    async def body(csms: Csms, url: str) -> None:
        del url
        key = ("CP201", "T-1")
        start = TransactionEvent(
            charge_point=key[0],
            transaction_id=key[1],
            seq_no=0,
            kind=EventKind.STARTED,
            timestamp_s=int(T0),
            register_wh=100,
        )
        await csms.event(start)
        racing = [
            dataclasses.replace(start, seq_no=5, kind=EventKind.UPDATED, register_wh=wh)
            for wh in (500, 700)
        ]
        results = await asyncio.gather(*(csms.event(e) for e in racing), return_exceptions=True)
        assert [type(r).__name__ for r in results] == ["ChargingSession", "EventConflictError"]
        assert csms.book.sessions[key].seen == {0: 100, 5: 500}
        assert [e.register_wh for e in await csms.store.events(key)] == [100, 500]

    run(tmp_path, body)


async def _prepaid(id_token: str) -> Binding | None:
    return Binding(
        id_token=id_token, channel_id=None, limits=SessionLimits(energy_wh=2_000), paid=0
    )


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_the_csms_stops_a_session_at_its_prepaid_energy(tmp_path: Path, version: str) -> None:
    async def body(csms: Csms, url: str) -> None:
        station = "CP16" if version == "1.6" else "CP201"
        async with connect_charger(url, station, PASSWORD, version) as charger:
            if isinstance(charger, Charger16):
                tx, _ = await charger.start_session("PRE", 0, T0)
                await charger.meter(tx, 1_500, T0 + 60)
                assert not charger.stop_requested.is_set()
                await charger.meter(tx, 2_100, T0 + 120)
            else:
                await charger.event("Started", "P", 0, 0, T0, id_token="PRE")
                await charger.event("Updated", "P", 1, 1_500, T0 + 60)
                assert not charger.stop_requested.is_set()
                await charger.event("Updated", "P", 2, 2_100, T0 + 120)
            await asyncio.wait_for(charger.stop_requested.wait(), 5)
        assert [s.reason for s in csms.stops] == [StopReason.PREPAID_ENERGY]

    run(tmp_path, body, authorize=_prepaid)


def test_remote_start_and_charging_profile_reach_both_versions(tmp_path: Path) -> None:
    async def body(csms: Csms, url: str) -> None:
        async with (
            connect_charger(url, "CP16", PASSWORD, "1.6"),
            connect_charger(url, "CP201", PASSWORD, "2.0.1"),
        ):
            await asyncio.sleep(0.05)  # both registered
            for station in ("CP16", "CP201"):
                assert await csms.remote_start(station, "DRIVER")
                assert await csms.set_charging_profile(station, 1, 7_400)

    run(tmp_path, body)


# Our own tariff in OCPI 2.2.1 JSON: 0.25 EUR per kWh, 10 % VAT, billed per Wh.
PER_KWH_TARIFF = """{
    "country_code": "NL", "party_id": "TPY", "id": "E25", "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": 0.25, "vat": 10.0,
                                        "step_size": 1}]}],
    "last_updated": "2026-01-01T00:00:00Z"
}"""


def test_a_session_priced_by_an_ocpi_tariff_bills_the_register_difference(
    tmp_path: Path,
) -> None:
    tariff = parse_tariff(ocpi_json.loads(PER_KWH_TARIFF))

    async def body(csms: Csms, url: str) -> None:
        async with connect_charger(url, "CP201", PASSWORD, "2.0.1") as charger:
            assert isinstance(charger, Charger201)
            await charger.event("Started", "O-1", 0, 1_000, T0, id_token="ROAM")
            await charger.event("Updated", "O-1", 1, 4_000, T0 + 900)
            await charger.event("Ended", "O-1", 2, 8_345, T0 + 1800)
        [bill] = await csms.store.bills()
        assert bill.energy_wh == 7_345
        expected = price(tariff, session_usage(int(T0), 7_345, 1_800)).total
        # 7.345 kWh x 0.25 = 1.83625 EUR; with 10 % VAT 2.019875 EUR: 202 cents, half up
        assert bill.amount == expected.incl_vat == 202

    run(tmp_path, body, pricing=ocpi_pricing(tariff))


async def _for_an_hour(id_token: str) -> Binding | None:
    return Binding(
        id_token=id_token, channel_id=None, limits=SessionLimits(duration_s=3600), paid=0
    )


def test_a_stop_decided_while_the_station_is_offline_reaches_it_when_it_reconnects(
    tmp_path: Path,
) -> None:
    now = [T0]

    async def body(csms: Csms, url: str) -> None:
        csms.clock = lambda: now[0]
        async with connect_charger(url, "CP201", PASSWORD, "2.0.1") as charger:
            assert isinstance(charger, Charger201)
            await charger.event("Started", "H", 0, 0, T0, id_token="HOUR")
        for _ in range(100):  # the CSMS notices the socket closed
            if "CP201" not in csms.stations:
                break
            await asyncio.sleep(0.01)
        now[0] = T0 + 3600
        await csms.tick()  # the hour is up while the station is offline
        assert [s.reason for s in csms.stops] == [StopReason.PREPAID_TIME]
        async with connect_charger(url, "CP201", PASSWORD, "2.0.1") as again:
            await asyncio.wait_for(again.stop_requested.wait(), 5)

    run(tmp_path, body, authorize=_for_an_hour)


def test_the_clock_tick_decides_every_session_a_slice_at_a_time(tmp_path: Path) -> None:
    """Between slices of `TICK_SLICE` sessions the tick lets the loop answer chargers."""

    async def body(csms: Csms, url: str) -> None:
        del url
        csms.clock = lambda: T0 + 3600
        for i in range(3 * TICK_SLICE):
            csms.book.open((f"CP{i}", "t"), SessionLimits(duration_s=3600))
            csms.book.apply(
                TransactionEvent(
                    charge_point=f"CP{i}",
                    transaction_id="t",
                    seq_no=0,
                    kind=EventKind.STARTED,
                    timestamp_s=int(T0),
                    register_wh=0,
                    id_token="HOUR",
                )
            )
        ticking = asyncio.create_task(csms.tick())
        await asyncio.sleep(0)  # the tick's first slice, then this task's turn
        assert not ticking.done()
        assert sum(s.stopped_for is not None for s in csms.book.sessions.values()) == TICK_SLICE
        await ticking
        assert {s.stopped_for for s in csms.book.sessions.values()} == {StopReason.PREPAID_TIME}

    run(tmp_path, body)


def test_an_answer_payload_is_the_librarys_and_an_empty_answer_is_empty() -> None:
    answers = [
        call_result.MeterValues(),
        result201.TransactionEvent(),
        result201.TransactionEvent(id_token_info={"status": "Accepted"}),
        call_result.StartTransaction(transaction_id=7, id_tag_info={"status": "Invalid"}),
        call_result.BootNotification(
            current_time="2026-01-01T00:00:00Z", interval=300, status="Accepted"
        ),
    ]
    for answer in answers:
        assert _payload(answer) == snake_to_camel_case(remove_nones(serialize_as_dict(answer)))
    assert _payload(call_result.MeterValues()) == {}
    assert _payload(result201.TransactionEvent(id_token_info={"status": "Accepted"})) == {
        "idTokenInfo": {"status": "Accepted"}
    }


def test_ocpp_times_are_formatted_per_whole_second() -> None:
    assert now_iso(T0) == now_iso(T0 + 0.99) == "2026-05-28T20:26:40Z"
    assert now_iso(T0 + 1) == "2026-05-28T20:26:41Z"


def test_a_csms_process_runs_on_uvloops_event_loop() -> None:
    uvloop = pytest.importorskip("uvloop", reason="no uvloop build here: asyncio's own loop")

    async def loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    assert isinstance(run_process(loop()), uvloop.Loop)


def test_the_csms_prepares_what_a_first_message_would_wait_for_before_it_serves(
    tmp_path: Path,
) -> None:
    """In a fresh CSMS process, before the first charger connects: the payload checks of every
    action it answers are compiled (1-13 ms each), and anyio's asyncio backend is imported (at
    anyio's first call, 17-30 ms in which no charger is answered: the first payment)."""
    code = f"""
import asyncio, sys
from pathlib import Path
from payments.charging import schemas
from payments.charging.csms import Csms, serve_csms
from payments.charging.store import CsmsStore

def ready():
    checks = [(v, t, "MeterValues" if v == "1.6" else "TransactionEvent") in schemas._checks
              for v in ("1.6", "2.0.1") for t in (2, 3)]
    return all(checks), "anyio._backends._asyncio" in sys.modules

async def main():
    async with CsmsStore(Path({str(tmp_path / "csms.sqlite")!r})) as store:
        before = ready()
        async with serve_csms(Csms(store=store, pricing=lambda t, wh, s: 0)):
            print(*before, *ready())

asyncio.run(main())
"""
    out = run_python("-c", code, timeout=60)
    assert out.stdout.split() == ["False", "False", "True", "True"]


def test_a_csms_process_collects_less_often_and_hands_the_gil_over_sooner() -> None:
    before, interval = gc.get_threshold(), sys.getswitchinterval()
    try:
        tune_process()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
    finally:
        gc.set_threshold(*before)
        sys.setswitchinterval(interval)


def _decimal_wh(raw: object, unit: str, multiplier: int) -> int | None:
    """What a sample's Wh were before plain integers were read as such (None: refused)."""
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0 or value > Decimal(10) ** 15:
        return None
    return int(value * {"Wh": 1, "kWh": 1000}[unit] * Decimal(10) ** multiplier)


@pytest.mark.parametrize("unit", ["Wh", "kWh"])
@pytest.mark.parametrize("multiplier", [-3, 0, 2])
@pytest.mark.parametrize(
    "raw",
    [
        0,
        1500,
        "1500",
        "0015",
        10**15,
        10**15 + 1,
        "9" * 16,
        "9" * 17,
        -1,
        "-1",
        "1.5",
        1.5,
        "1e3",
        True,
        None,
        "x",
        "١٢",
        "²",
        "NaN",
        "Infinity",
        " 12",
    ],
)
def test_a_sample_reads_as_the_decimal_reading_did(raw: object, unit: str, multiplier: int) -> None:
    sample = {"value": raw, "unit_of_measure": {"unit": unit, "multiplier": multiplier}}
    expected = _decimal_wh(raw, unit, multiplier)
    if expected is None:
        with pytest.raises(MalformedEventError):
            register_wh([{"sampled_value": [sample]}])
    else:
        assert register_wh([{"sampled_value": [sample]}]) == (expected, None)
