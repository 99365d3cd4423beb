"""OCPP 1.6J: one station's connection, its handlers and the CSMS's calls to it.

StartTransaction is the session's seq 0 and gets its transaction id from the store, by its
connector, time, meterStart and idTag (the same id for a resent start, another for another start
in the same second, and for one alike in every field that comes after its session's stop:
`event_rows`); each MeterValues sample becomes an Updated event keyed by its time and reading
(`session.ChargingSession.sample_seq`); StopTransaction is the Ended event at `STOP_SEQ`, after
its `transactionData` samples (a refused sample is logged: the stop is applied, and the session
billed, all the same).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Final

from ocpp.v16 import call, call_result  # type: ignore[import-untyped]

from .errors import SessionError
from .session import STOP_SEQ, EventKind, TransactionEvent
from .station import (
    StationConnection,
    authorization_status,
    on,
    parse_time,
    parse_time_ms,
    register_wh,
)

LOG: Final = logging.getLogger(__name__)
_ACCEPTED = {"status": "Accepted"}
_INVALID = {"status": "Invalid"}


class Station16(StationConnection):
    """A 1.6J station (see the module docstring)."""

    _call = call
    _call_result = call_result
    _ocpp_version = "1.6"
    renamed_errors: ClassVar[dict[str, str]] = {"FormatViolation": "FormationViolation"}
    """OCPP 1.6 section 4.2.3 names the code FormationViolation (the library sends the 2.0.1
    name, FormatViolation)."""

    @on("Authorize")
    async def on_authorize(self, id_tag: str, **_: Any) -> Any:
        return call_result.Authorize(
            id_tag_info=await authorization_status(self.csms, self.id, id_tag)
        )

    @on("StartTransaction")
    async def on_start(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any
    ) -> Any:
        async def work() -> Any:
            at = parse_time("timestamp", timestamp)
            tx = await self.csms.store.transaction_id_16(
                self.id, connector_id, at, meter_start, id_tag
            )
            accepted = await self.csms.start(
                TransactionEvent(
                    charge_point=self.id,
                    transaction_id=str(tx),
                    seq_no=0,
                    kind=EventKind.STARTED,
                    timestamp_s=at,
                    register_wh=meter_start,
                    id_token=id_tag,
                )
            )
            return call_result.StartTransaction(
                transaction_id=tx, id_tag_info=_ACCEPTED if accepted else _INVALID
            )

        return await self.guarded(work)

    async def _apply_samples(
        self, transaction_id: int, meter_value: list[Any]
    ) -> SessionError | None:
        """Apply each sample as an Updated event, keyed by its time and reading
        (`Csms.sample_seq`), in turn: a refused one keeps none of the others out. Returns the
        first refusal, if any."""
        key = (self.id, str(transaction_id))
        refused: SessionError | None = None
        for sample in meter_value:
            try:
                wh, signed = register_wh([sample])
                ms = parse_time_ms("meter_value.timestamp", sample.get("timestamp"))
                event = TransactionEvent(
                    charge_point=self.id,
                    transaction_id=key[1],
                    seq_no=self.csms.sample_seq(key, ms, wh),
                    kind=EventKind.UPDATED,
                    timestamp_s=ms // 1000,
                    register_wh=wh,
                    signed_meter_value=signed,
                )
                await self.csms.event(event)
            except SessionError as e:
                refused = refused or e
        return refused

    @on("MeterValues")
    async def on_meter_values(
        self, connector_id: int, meter_value: list[Any], transaction_id: int | None = None, **_: Any
    ) -> Any:
        async def work() -> Any:
            if transaction_id is not None:
                refused = await self._apply_samples(transaction_id, meter_value)
                if refused is not None:  # the others are applied: a resend finds them repeats
                    raise refused
            return call_result.MeterValues()

        return await self.guarded(work)

    @on("StopTransaction")
    async def on_stop(
        self,
        meter_stop: int,
        timestamp: str,
        transaction_id: int,
        transaction_data: list[Any] | None = None,
        **_: Any,
    ) -> Any:
        async def work() -> Any:
            refused = await self._apply_samples(transaction_id, transaction_data or [])
            if refused is not None:  # the stop itself stands: the session is billed all the same
                self.csms.log_limit.log(
                    LOG,
                    logging.WARNING,
                    self.id,
                    "stop sample refused",
                    "%s: a sample of stopped transaction %s refused: %s",
                    self.id,
                    transaction_id,
                    refused,
                )
            await self.csms.event(
                TransactionEvent(
                    charge_point=self.id,
                    transaction_id=str(transaction_id),
                    seq_no=STOP_SEQ,
                    kind=EventKind.ENDED,
                    timestamp_s=parse_time("timestamp", timestamp),
                    register_wh=meter_stop,
                )
            )
            return call_result.StopTransaction(id_tag_info=_ACCEPTED)

        return await self.guarded(work)

    # -- calls to the station ------------------------------------------------------------------

    async def request_stop(self, transaction_id: str) -> bool:
        result = await self.call(call.RemoteStopTransaction(transaction_id=int(transaction_id)))
        return result is not None and result.status == "Accepted"

    async def request_start(self, id_token: str, connector: int) -> bool:
        result = await self.call(
            call.RemoteStartTransaction(id_tag=id_token, connector_id=connector),
            suppress=False,  # a CALLERROR raises (`Csms._ask` names it), not None
        )
        return bool(result.status == "Accepted")

    async def set_power_limit(self, connector: int, limit_w: int) -> bool:
        profile = {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_w}],
            },
        }
        result = await self.call(
            call.SetChargingProfile(connector_id=connector, cs_charging_profiles=profile),
            suppress=False,
        )
        return bool(result.status == "Accepted")
