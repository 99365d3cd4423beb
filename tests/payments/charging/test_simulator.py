"""A simulated charger sends the same frames whether it validates through the library's `call`
or takes the load generator's path (`check_schemas=False`), and reads the answers the same."""

from __future__ import annotations

import asyncio
import json
from typing import Any

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
