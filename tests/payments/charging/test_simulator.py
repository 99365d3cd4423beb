"""A simulated charger sends the same frames whether it validates through the library's `call`
or takes the load generator's path (`check_schemas=False`), and reads the answers the same."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from ocpp.v16 import call as call16  # type: ignore[import-untyped]
from websockets.asyncio.server import ServerConnection, serve

from payments.charging.csms import SUBPROTOCOLS
from payments.charging.simulator import Charger16, Charger201, connect_charger

T0 = 1_780_000_000
ACCEPTED = {"status": "Accepted"}
ANSWERS: dict[str, dict[str, Any]] = {
    "BootNotification": {"currentTime": "2026-01-01T00:00:00Z", "interval": 300, **ACCEPTED},
    "StartTransaction": {"transactionId": 7, "idTagInfo": ACCEPTED},
    "StopTransaction": {"idTagInfo": ACCEPTED},
    "TransactionEvent": {"idTokenInfo": ACCEPTED},
}


async def _drive(url: str, version: str, check_schemas: bool) -> list[Any]:
    answers: list[Any] = []
    async with connect_charger(url, "CP-1", "pw", version, check_schemas=check_schemas) as cp:
        answers.append(await cp.boot())
        if isinstance(cp, Charger16):
            answers.append(await cp.start_session("TOKEN", 1_000, T0))
            answers.append(await cp.meter(7, 1_500, T0 + 60))
            answers.append(await cp.stop_session(7, 2_000, T0 + 120))
        else:
            assert isinstance(cp, Charger201)
            answers.append(await cp.event("Started", "B1", 0, 1_000, T0, id_token="TOKEN"))
            answers.append(await cp.event("Updated", "B1", 1, 1_500, T0 + 60, signed="S1"))
            answers.append(await cp.event("Ended", "B1", 2, 2_000, T0 + 120, offline=True))
    return answers


def test_the_load_path_sends_what_the_library_sends() -> None:
    frames: list[tuple[str, dict[str, Any]]] = []

    async def answer(connection: ServerConnection) -> None:
        async for raw in connection:
            _, unique_id, action, payload = json.loads(raw)
            frames.append((action, payload))
            result = ANSWERS.get(action, {})
            await connection.send(json.dumps([3, unique_id, result]))

    async def main() -> None:
        async with serve(answer, "127.0.0.1", 0, subprotocols=[*SUBPROTOCOLS]) as server:
            url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/ocpp"
            for version in ("1.6", "2.0.1"):
                frames.clear()
                checked = await _drive(url, version, check_schemas=True)
                library = list(frames)
                frames.clear()
                fast = await _drive(url, version, check_schemas=False)
                assert frames == library
                assert fast == checked
                assert len(library) == 4

    asyncio.run(asyncio.wait_for(main(), 30))


def test_the_load_path_takes_its_own_answer_and_still_serves_the_csms_calls() -> None:
    """While a load-path call waits: an answer to another unique id is dropped, a CALL from the
    CSMS is answered by the library's routing, and the call returns its own answer; a
    CALLERROR answer is None; no answer at all is a TimeoutError."""
    seen: list[Any] = []

    async def answer(connection: ServerConnection) -> None:
        async for raw in connection:
            frame = json.loads(raw)
            seen.append(frame)
            if frame[0] != 2:
                continue
            if frame[2] == "MeterValues":
                await connection.send(json.dumps([3, "stray", {}]))
                await connection.send(
                    json.dumps([2, "s1", "RemoteStopTransaction", {"transactionId": 7}])
                )
                await connection.send(json.dumps([3, frame[1], {}]))
            elif frame[2] == "StopTransaction":
                await connection.send(json.dumps([4, frame[1], "InternalError", "no", {}]))
            # a Heartbeat gets no answer

    async def main() -> None:
        async with serve(answer, "127.0.0.1", 0, subprotocols=[*SUBPROTOCOLS]) as server:
            url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/ocpp"
            async with connect_charger(url, "CP-1", "pw", "1.6", check_schemas=False) as cp:
                assert isinstance(cp, Charger16)
                await cp.meter(7, 1_500, T0)
                await asyncio.wait_for(cp.stop_requested.wait(), 5)
                assert await cp.stop_session(7, 2_000, T0 + 60) is None
                cp._response_timeout = 0.2
                with pytest.raises(TimeoutError):
                    await cp.send(call16.Heartbeat())
                assert cp._waiting is None
                assert cp._response_queue.empty()  # the stray answer went nowhere
        assert [3, "s1", {"status": "Accepted"}] in seen  # the library answered the CSMS

    asyncio.run(asyncio.wait_for(main(), 30))
