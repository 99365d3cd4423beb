"""Simulated charge points on the `ocpp` library, for the example, the benchmark and the tests.

A `Charger16` or `Charger201` connects to a CSMS as a real station would (`connect_charger`:
WebSocket subprotocol `ocpp1.6` / `ocpp2.0.1`, HTTP Basic with its password) and drives a
session with the library's own `call` messages. It answers the CSMS's stop requests by recording
them (`stop_requested`), so a caller sees when the CSMS asked it to stop. A charger made with
`check_schemas=False` (the benchmark's) skips the library's schema validation of its own calls and
of the CSMS's answers, which a load generator need not repeat.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import itertools
from typing import TYPE_CHECKING, Any

from ocpp.charge_point import (  # type: ignore[import-untyped]
    camel_to_snake_case,
    snake_to_camel_case,
)
from ocpp.exceptions import OCPPError  # type: ignore[import-untyped]
from ocpp.messages import Call, MessageType, unpack  # type: ignore[import-untyped]
from ocpp.v16 import call as call16  # type: ignore[import-untyped]
from ocpp.v16 import call_result as result16
from ocpp.v201 import call as call201  # type: ignore[import-untyped]
from ocpp.v201 import call_result as result201
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from .station import LibChargePoint, now_iso, on

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def _reading(register_wh: int, at: float, signed: str | None = None) -> dict[str, Any]:
    """A 2.0.1 meter value (1.6 carries the value as a string)."""
    sample: dict[str, Any] = {
        "value": register_wh,
        "measurand": "Energy.Active.Import.Register",
    }
    if signed is not None:
        sample["signedMeterValue"] = {
            "signedMeterData": signed,
            "signingMethod": "ECDSA-secp256r1-SHA256",
            "encodingMethod": "OCMF",
            "publicKey": "",
        }
    return {"timestamp": now_iso(at), "sampledValue": [sample]}


class _Charger(LibChargePoint):  # type: ignore[misc]
    """What both versions' simulated chargers share."""

    def __init__(self, station: str, connection: Any, *, check_schemas: bool = True) -> None:
        super().__init__(station, connection, response_timeout=10)
        self.stop_requested: asyncio.Event = asyncio.Event()
        self.check_schemas = check_schemas
        self._unique_id_generator = itertools.count(1).__next__  # unique per connection
        self._waiting: tuple[str, asyncio.Future[Any]] | None = None
        """The unique id `send` waits for an answer to, and its future."""

    async def send(self, payload: Any) -> Any:
        """`call(payload)`, or with `check_schemas` off (the load generator) the same exchange
        without the library's schema validation and its generic dataclass-to-JSON walk: these
        payloads carry their nested values camel-cased already, so only the top-level field
        names are converted (once per class, by the library's own function). The answer is
        handed over by `route_message` through a future for its unique id (the library's
        response queue takes a task and a timer per call: `asyncio.wait_for`). A CALLERROR
        answer returns None, as `call` does."""
        if self.check_schemas:
            return await self.call(payload)
        action = type(payload).__name__
        body = {
            camel: value
            for name, camel in _camel_fields(type(payload))
            if (value := getattr(payload, name)) is not None
        }
        request = Call(unique_id=str(self._unique_id_generator()), action=action, payload=body)
        async with self._call_lock:
            answer = asyncio.get_running_loop().create_future()
            self._waiting = (request.unique_id, answer)
            try:
                await self._send(request.to_json())
                async with asyncio.timeout(self._response_timeout):
                    response = await answer
            finally:
                self._waiting = None
        if response.message_type_id == MessageType.CallError:
            return None
        return getattr(self._call_result, action)(**camel_to_snake_case(response.payload))

    async def route_message(self, raw_msg: str) -> None:
        """The library's routing; with `check_schemas` off, an answer goes to the call `send`
        waits for (one that answers no such call is dropped, as the library would do)."""
        if not self.check_schemas:
            try:
                msg = unpack(raw_msg)
            except OCPPError:
                msg = None  # the library logs it below
            if msg is not None and msg.message_type_id != MessageType.Call:
                waiting = self._waiting
                if waiting is not None and waiting[0] == msg.unique_id and not waiting[1].done():
                    waiting[1].set_result(msg)
                return
        await super().route_message(raw_msg)


_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {}


def _camel_fields(kind: type) -> tuple[tuple[str, str], ...]:
    """(field, camelCase key) of a payload dataclass, as the library names them (each of the
    library's payload classes once)."""
    key = f"{kind.__module__}.{kind.__qualname__}"
    found = _FIELDS.get(key)
    if found is None:
        found = tuple(
            (f.name, next(iter(snake_to_camel_case({f.name: None}))))
            for f in dataclasses.fields(kind)
        )
        _FIELDS[key] = found
    return found


class Charger16(_Charger):
    """A 1.6J station (see the module docstring)."""

    _call = call16
    _call_result = result16
    _ocpp_version = "1.6"

    @on("RemoteStopTransaction")
    async def on_remote_stop(self, transaction_id: int, **_: Any) -> Any:
        self.stop_requested.set()
        return result16.RemoteStopTransaction(status="Accepted")

    @on("RemoteStartTransaction")
    async def on_remote_start(self, id_tag: str, **_: Any) -> Any:
        return result16.RemoteStartTransaction(status="Accepted")

    @on("SetChargingProfile")
    async def on_profile(self, **_: Any) -> Any:
        return result16.SetChargingProfile(status="Accepted")

    async def boot(self) -> None:
        await self.send(call16.BootNotification(charge_point_model="sim", charge_point_vendor="tp"))

    async def start_session(self, id_tag: str, meter_start: int, at: float) -> tuple[int, str]:
        """Start a transaction; returns its id and the id tag status."""
        result = await self.send(
            call16.StartTransaction(
                connector_id=1, id_tag=id_tag, meter_start=meter_start, timestamp=now_iso(at)
            )
        )
        return result.transaction_id, result.id_tag_info["status"]

    async def meter(self, transaction_id: int, register_wh: int, at: float) -> None:
        await self.send(
            call16.MeterValues(
                connector_id=1,
                transaction_id=transaction_id,
                meter_value=[
                    {
                        "timestamp": now_iso(at),
                        "sampledValue": [{"value": str(register_wh), "unit": "Wh"}],
                    }
                ],
            )
        )

    async def stop_session(self, transaction_id: int, meter_stop: int, at: float) -> None:
        await self.send(
            call16.StopTransaction(
                meter_stop=meter_stop, timestamp=now_iso(at), transaction_id=transaction_id
            )
        )


class Charger201(_Charger):
    """A 2.0.1 station (see the module docstring)."""

    _call = call201
    _call_result = result201
    _ocpp_version = "2.0.1"

    @on("RequestStopTransaction")
    async def on_request_stop(self, transaction_id: str, **_: Any) -> Any:
        self.stop_requested.set()
        return result201.RequestStopTransaction(status="Accepted")

    @on("RequestStartTransaction")
    async def on_request_start(self, **_: Any) -> Any:
        return result201.RequestStartTransaction(status="Accepted")

    @on("SetChargingProfile")
    async def on_profile(self, **_: Any) -> Any:
        return result201.SetChargingProfile(status="Accepted")

    async def boot(self) -> None:
        await self.send(
            call201.BootNotification(
                charging_station={"model": "sim", "vendorName": "tp"}, reason="PowerUp"
            )
        )

    async def event(
        self,
        kind: str,
        transaction_id: str,
        seq_no: int,
        register_wh: int,
        at: float,
        *,
        id_token: str | None = None,
        offline: bool = False,
        signed: str | None = None,
    ) -> Any:
        """Send one TransactionEvent; returns the CSMS's answer."""
        return await self.send(
            call201.TransactionEvent(
                event_type=kind,
                timestamp=now_iso(at),
                trigger_reason={"Started": "Authorized", "Ended": "StopAuthorized"}.get(
                    kind, "MeterValuePeriodic"
                ),
                seq_no=seq_no,
                transaction_info={"transactionId": transaction_id},
                meter_value=[_reading(register_wh, at, signed)],
                offline=offline or None,
                id_token=None if id_token is None else {"idToken": id_token, "type": "ISO14443"},
            )
        )


@contextlib.asynccontextmanager
async def connect_charger(
    url: str, station: str, password: str, version: str, *, check_schemas: bool = True
) -> AsyncIterator[Charger16 | Charger201]:
    """A charger `station` of `version` ("1.6" or "2.0.1") connected to the CSMS at `url`
    (`ws://host:port/ocpp`), serving its socket until the context exits."""
    token = base64.b64encode(f"{station}:{password}".encode()).decode()
    async with connect(
        f"{url}/{station}",
        subprotocols=[Subprotocol(f"ocpp{version}")],
        additional_headers={"Authorization": f"Basic {token}"},
        ping_interval=None,
        open_timeout=60,
        compression=None,
    ) as ws:
        kind = Charger16 if version == "1.6" else Charger201
        charger = kind(station, ws, check_schemas=check_schemas)
        task = asyncio.create_task(charger.start())
        try:
            yield charger
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
