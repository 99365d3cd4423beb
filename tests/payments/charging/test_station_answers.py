"""A station's answers to the CSMS's calls (CALLRESULT / CALLERROR), sent by a raw WebSocket
station: a flood of answers with unknown unique ids while a call waits, of answers while no call
waits, or of repeats of the right answer, neither breaks a call nor piles up for the next one
(each is dropped and counted); a frame nested too deep to read is dropped as well; a call that
fails on the station's answer is logged, not left as a task's unretrieved exception.

The `ocpp` library waits for the answer of a call by calling itself once for every answer with
another unique id: about 1,500 of them exhausted the interpreter's stack (RecursionError), and
the back office's remote start failed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from .test_csms import _prepaid, _raw, _sample, _start16, run

if TYPE_CHECKING:
    from pathlib import Path

    from payments.charging.csms import Csms

FLOOD = 2_000
"""Answers a hostile station sends in one go (more than the library's recursion took)."""
VERSIONS = [("CP16", "ocpp1.6"), ("CP201", "ocpp2.0.1")]


def _bogus(i: int) -> list[object]:
    """A CALLRESULT or a CALLERROR (alternately) with a unique id no call has."""
    if i % 2:
        return [3, f"bogus-{i}", {"status": "Accepted"}]
    return [4, f"bogus-{i}", "InternalError", "", {}]


async def _heartbeat(ws: Any) -> None:
    """A round trip: the station is connected (`Csms.stations`), and every frame it sent before
    has been routed."""
    await ws.send(json.dumps([2, "hb", "Heartbeat", {}]))
    assert json.loads(await ws.recv())[:2] == [3, "hb"]


async def _call_of(ws: Any) -> str:
    """The unique id of the CSMS's next call to the station."""
    kind, unique_id, _action, _payload = json.loads(await ws.recv())
    assert kind == 2
    return str(unique_id)


@pytest.mark.parametrize(("station", "protocol"), VERSIONS)
def test_a_flood_of_answers_with_unknown_ids_does_not_break_the_call_waiting(
    tmp_path: Path, station: str, protocol: str
) -> None:
    async def body(csms: Csms, url: str) -> None:
        async for ws in _raw(url, station, protocol):
            await _heartbeat(ws)
            started = asyncio.create_task(csms.remote_start(station, "DRIVER"))
            unique_id = await _call_of(ws)
            for i in range(FLOOD):
                await ws.send(json.dumps(_bogus(i)))
            await ws.send(json.dumps([3, unique_id, {"status": "Accepted"}]))
            assert await started
            await _heartbeat(ws)  # the connection is still served
            assert csms.stations[station].dropped_answers == FLOOD

    run(tmp_path, body)


@pytest.mark.parametrize(("station", "protocol"), VERSIONS)
def test_answers_no_call_waits_for_are_dropped_not_kept_for_the_next_call(
    tmp_path: Path, station: str, protocol: str
) -> None:
    async def body(csms: Csms, url: str) -> None:
        async for ws in _raw(url, station, protocol):
            await _heartbeat(ws)
            for i in range(FLOOD):  # before any call
                await ws.send(json.dumps(_bogus(i)))
            await _heartbeat(ws)
            started = asyncio.create_task(csms.remote_start(station, "DRIVER"))
            unique_id = await _call_of(ws)
            for _ in range(FLOOD):  # the right answer, and then again and again
                await ws.send(json.dumps([3, unique_id, {"status": "Accepted"}]))
            assert await started
            for null in ([3, None, {}], [4, None, "InternalError", "", {}]):  # no call's id
                await ws.send(json.dumps(null))
            await _heartbeat(ws)
            dropped = 2 * FLOOD - 1 + 2  # counted as they came, not at the next call
            assert csms.stations[station].dropped_answers == dropped
            limited = asyncio.create_task(csms.set_charging_profile(station, 1, 7_400))
            unique_id = await _call_of(ws)
            await ws.send(json.dumps([3, unique_id, {"status": "Rejected"}]))
            assert not await limited  # its own answer, not one left over
            assert csms.stations[station].dropped_answers == dropped

    run(tmp_path, body)


def test_a_stop_call_failing_on_the_stations_answer_is_logged_not_left_unretrieved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unretrieved: list[dict[str, Any]] = []

    async def body(csms: Csms, url: str) -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, c: unretrieved.append(c))
        async for ws in _raw(url, "CP16", "ocpp1.6"):
            tx = await _start16(ws)  # prepaid 2,000 Wh from 100 Wh
            values = {"connectorId": 1, "transactionId": tx, "meterValue": [_sample("01", 2_200)]}
            await ws.send(json.dumps([2, "m", "MeterValues", values]))
            frames = [json.loads(await ws.recv()) for _ in range(2)]
            [stop] = [f for f in frames if f[0] == 2]
            assert stop[2] == "RemoteStopTransaction"
            await ws.send(json.dumps([3, stop[1], {"status": "Maybe"}]))  # not in the schema
            if csms._tasks:  # the stop call, its exception not retrieved
                await asyncio.wait(list(csms._tasks))
            gc.collect()
            await _heartbeat(ws)

    with caplog.at_level(logging.WARNING, logger="payments.charging.csms"):
        run(tmp_path, body, authorize=_prepaid)
    assert unretrieved == []
    failed = [r for r in caplog.records if r.getMessage().startswith("station call failed: ")]
    assert [r.levelno for r in failed] == [logging.WARNING]  # a station's fault, not a bug


def test_a_frame_too_deep_or_too_long_a_number_to_read_is_dropped_and_the_call_goes_on(
    tmp_path: Path,
) -> None:
    async def body(csms: Csms, url: str) -> None:
        async for ws in _raw(url, "CP16", "ocpp1.6"):
            await _heartbeat(ws)
            started = asyncio.create_task(csms.remote_start("CP16", "DRIVER"))
            unique_id = await _call_of(ws)
            await ws.send("[3," + "[" * 60_000)  # Python's JSON reader gives up (RecursionError)
            await ws.send("[3," + "1" * 5_000 + ",{}]")  # over Python's digits (ValueError)
            await ws.send('[2,"x","Heartbeat",{"n":' + "9" * 5_000 + "}]")
            await ws.send(json.dumps([3, unique_id, {"status": "Accepted"}]))
            assert await started
            await _heartbeat(ws)

    run(tmp_path, body)
