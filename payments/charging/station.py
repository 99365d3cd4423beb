"""What both OCPP versions' station connections share: idempotent answers to repeated messages,
a typed view of the `ocpp` library's `@on`, and the parsing of charger timestamps and readings.

The `ocpp` library ships no type information, so its names are taken here once, typed, and the
rest of the package imports them from this module.

A charger that did not see an answer sends the same CALL again with the same unique id; the
connection then answers with the reply it sent before, without running the handler again. The
last `MAX_ANSWERS` replies per connection are kept.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import OrderedDict
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar, cast

from ocpp.charge_point import ChargePoint as _LibChargePoint  # type: ignore[import-untyped]
from ocpp.exceptions import (  # type: ignore[import-untyped]
    PropertyConstraintViolationError as _PropertyConstraintViolation,
)
from ocpp.messages import validate_payload  # type: ignore[import-untyped]
from ocpp.routing import on as _lib_on  # type: ignore[import-untyped]

from .errors import MalformedEventError, SessionError, TokenRefusedError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .csms import Csms

F = TypeVar("F", bound="Callable[..., Any]")

MAX_ANSWERS: Final = 256
"""Replies kept per connection for repeated unique ids."""
ENERGY_REGISTER: Final = "Energy.Active.Import.Register"
LOG: Final = logging.getLogger(__name__)
LibChargePoint: type[Any] = _LibChargePoint
PropertyConstraintViolation: Any = _PropertyConstraintViolation


def on(action: str, *, request_only: bool = False) -> Callable[[F], F]:
    """The `ocpp` library's `@on(action)`, typed. With `request_only`, the request is checked
    against its JSON schema (by `StationConnection`) but our answer is not: the meter value
    routes answer a constant shape, and a schema check costs as much as the rest of the
    handling."""
    return cast("Callable[[F], F]", _lib_on(action, skip_schema_validation=request_only))


def parse_time(field: str, value: object) -> int:
    """An OCPP date-time as Unix seconds; `MalformedEventError` for anything else."""
    if not isinstance(value, str) or len(value) > 40:
        raise MalformedEventError(field, "must be an RFC 3339 date-time")
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise MalformedEventError(field, "must be an RFC 3339 date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    seconds = int(when.timestamp())
    if seconds < 0:
        raise MalformedEventError(field, "before 1970")
    return seconds


async def authorization_status(csms: Csms, id_token: str) -> dict[str, str]:
    """The idTokenInfo/idTagInfo of an Authorize: Accepted, Invalid, or the status a refusal
    names (Blocked for a quarantined device: `TokenRefusedError.status`)."""
    try:
        binding = await csms.authorize(id_token)
    except TokenRefusedError as e:
        LOG.info("%s", e)
        return {"status": e.status}
    return {"status": "Accepted" if binding is not None else "Invalid"}


def now_iso(seconds: float) -> str:
    """`seconds` (Unix) as an OCPP date-time."""
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_WH_PER: Final = {"Wh": 1, "kWh": 1000}


def register_wh(meter_values: object) -> tuple[int | None, str | None]:
    """The highest energy import register reading (Wh) among `meter_values` and its signed
    value, if any (OCPP 1.6 and 2.0.1 shapes, snake-cased by the library)."""
    best: int | None = None
    signed: str | None = None
    if not isinstance(meter_values, list):
        return None, None
    for meter_value in meter_values:
        for sample in meter_value.get("sampled_value", []) if isinstance(meter_value, dict) else []:
            if not isinstance(sample, dict):
                continue
            if sample.get("measurand", ENERGY_REGISTER) != ENERGY_REGISTER:
                continue
            unit = sample.get("unit") or (sample.get("unit_of_measure") or {}).get("unit", "Wh")
            multiplier = (sample.get("unit_of_measure") or {}).get("multiplier", 0)
            if unit not in _WH_PER or not isinstance(multiplier, int) or not -3 <= multiplier <= 3:
                raise MalformedEventError("sampled_value.unit", f"unsupported unit {unit!r}")
            try:
                value = Decimal(str(sample.get("value")))
            except InvalidOperation:
                raise MalformedEventError("sampled_value.value", "not a number") from None
            if not value.is_finite() or value < 0 or value > Decimal(10) ** 15:
                raise MalformedEventError("sampled_value.value", "out of range")
            wh = int(value * _WH_PER[unit] * Decimal(10) ** multiplier)
            if best is None or wh > best:
                best = wh
                data = sample.get("signed_meter_value")
                signed = data.get("signed_meter_data") if isinstance(data, dict) else None
    return best, signed


class StationConnection(LibChargePoint):  # type: ignore[misc]
    """An `ocpp` ChargePoint for one station's WebSocket that answers repeated unique ids
    idempotently and turns `SessionError`s into the CALLERROR OCPP names for them."""

    renamed_errors: ClassVar[dict[str, str]] = {}
    """CALLERROR codes the library spells otherwise than this version's spec."""

    def __init__(self, station: str, connection: Any, csms: Csms) -> None:
        super().__init__(station, connection, response_timeout=10)
        self.csms = csms
        self._answers: OrderedDict[str, str] = OrderedDict()
        self._answering: str | None = None

    async def route_message(self, raw_msg: str) -> None:
        unique_id = _call_id(raw_msg)
        if unique_id is not None and unique_id in self._answers:
            await self._connection.send(self._answers[unique_id])
            return
        self._answering = unique_id
        try:
            await super().route_message(raw_msg)
        finally:
            self._answering = None

    async def _send(self, message: str) -> None:
        frame = _frame(message)
        if frame is not None and frame[0] == 4 and frame[2] in self.renamed_errors:
            frame[2] = self.renamed_errors[frame[2]]
            message = json.dumps(frame, separators=(",", ":"))
        if frame is not None and frame[0] in (3, 4) and frame[1] == self._answering:
            self._answers[frame[1]] = message
            while len(self._answers) > MAX_ANSWERS:
                self._answers.popitem(last=False)
        await self._connection.send(message)

    async def _handle_call(self, msg: Any) -> Any:
        handlers = self.route_map.get(msg.action, {})
        if handlers.get("_skip_schema_validation", False):  # `on(..., request_only=True)`
            await validate_payload(msg, self._ocpp_version)
        return await super()._handle_call(msg)

    async def close(self) -> None:
        """Close the station's WebSocket (it reconnected on another one)."""
        await self._connection.close()

    async def guarded(self, work: Callable[[], Any]) -> Any:
        """`await work()`, with a refused event answered as a PropertyConstraintViolation."""
        try:
            return await work()
        except SessionError as e:
            raise PropertyConstraintViolation(description=str(e)) from None


def _frame(raw: str) -> list[Any] | None:
    """An OCPP-J frame (a JSON array with a message type and a string unique id), or None."""
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if isinstance(frame, list) and len(frame) >= 3 and isinstance(frame[1], str):
        return frame
    return None


def _call_id(raw: str) -> str | None:
    """The unique id of a CALL frame, None for anything else."""
    frame = _frame(raw)
    return frame[1] if frame is not None and frame[0] == 2 and len(frame) == 4 else None
