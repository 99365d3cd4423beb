"""OCPP 2.0.1: one station's connection, its handlers and the CSMS's calls to it.

Each TransactionEvent is one event of the session core, keyed by the charger's `seqNo`; events
the charger queued while offline (`offline: true`) arrive late and out of order and are applied
once all the same. The energy is the highest `Energy.Active.Import.Register` reading of the
event, and a sample's `signedMeterValue.signedMeterData` is kept with the session.
"""

from __future__ import annotations

import itertools
from typing import Any

from ocpp.v201 import call, call_result  # type: ignore[import-untyped]

from .session import EventKind, TransactionEvent
from .station import StationConnection, authorization_status, on, parse_time, register_wh

_ACCEPTED = {"status": "Accepted"}
_INVALID = {"status": "Invalid"}
_REMOTE_START_IDS = itertools.count(1)


class Station201(StationConnection):
    """A 2.0.1 station (see the module docstring)."""

    _call = call
    _call_result = call_result
    _ocpp_version = "2.0.1"

    @on("Authorize")
    async def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        token = str(id_token.get("id_token", ""))
        return call_result.Authorize(
            id_token_info=await authorization_status(self.csms, self.id, token)
        )

    @on("TransactionEvent")
    async def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        meter_value: list[Any] | None = None,
        offline: bool = False,
        id_token: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        async def work() -> Any:
            wh, signed = register_wh(meter_value or [])
            token = str(id_token.get("id_token", "")) if id_token else None
            event = TransactionEvent(
                charge_point=self.id,
                transaction_id=str(transaction_info.get("transaction_id", "")),
                seq_no=seq_no,
                kind=EventKind(event_type),
                timestamp_s=parse_time("timestamp", timestamp),
                register_wh=wh,
                signed_meter_value=signed,
                offline=offline,
                id_token=token or None,
            )
            if event.kind is EventKind.STARTED and event.id_token is not None:
                accepted = await self.csms.start(event)
                return call_result.TransactionEvent(
                    id_token_info=_ACCEPTED if accepted else _INVALID
                )
            await self.csms.event(event)
            return call_result.TransactionEvent()

        return await self.guarded(work)

    # -- calls to the station ------------------------------------------------------------------

    async def request_stop(self, transaction_id: str) -> bool:
        result = await self.call(call.RequestStopTransaction(transaction_id=transaction_id))
        return result is not None and result.status == "Accepted"

    async def request_start(self, id_token: str, connector: int) -> bool:
        result = await self.call(
            call.RequestStartTransaction(
                id_token={"idToken": id_token, "type": "Central"},
                remote_start_id=next(_REMOTE_START_IDS),
                evse_id=connector,
            ),
            suppress=False,  # a CALLERROR raises (`Csms._ask` names it), not None
        )
        return bool(result.status == "Accepted")

    async def set_power_limit(self, connector: int, limit_w: int) -> bool:
        profile = {
            "id": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [
                {
                    "id": 1,
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_w}],
                }
            ],
        }
        result = await self.call(
            call.SetChargingProfile(evse_id=connector, charging_profile=profile),
            suppress=False,
        )
        return bool(result.status == "Accepted")
