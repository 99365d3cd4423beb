"""What both OCPP versions' station connections share: idempotent answers to repeated messages,
a typed view of the `ocpp` library's `@on`, and the parsing of charger timestamps and readings.

The `ocpp` library ships no type information, so its names are taken here once, typed, and the
rest of the package imports them from this module.

A charger that did not see an answer sends the same CALL again with the same unique id; the
connection then answers with the reply it sent before, without running the handler again. The
last `MAX_ANSWERS` replies per connection are kept.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
from collections import OrderedDict
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol, TypeVar, cast

from ocpp import charge_point as _lib  # type: ignore[import-untyped]
from ocpp.exceptions import (  # type: ignore[import-untyped]
    FormatViolationError,
    InternalError,
    OCPPError,
)
from ocpp.exceptions import NotImplementedError as OcppNotImplementedError
from ocpp.exceptions import (
    PropertyConstraintViolationError as _PropertyConstraintViolation,
)
from ocpp.messages import MessageType, unpack  # type: ignore[import-untyped]
from ocpp.routing import create_route_map as _create_route_map  # type: ignore[import-untyped]
from ocpp.routing import on as _lib_on

from .errors import MalformedEventError, SessionError, TokenRefusedError
from .log_limit import LimitedLogger
from .schemas import check_payload, compiled_check

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .log_limit import LogLimiter
    from .session import ChargingSession, TransactionEvent
    from .store import Binding, CsmsStore

F = TypeVar("F", bound="Callable[..., Any]")

MAX_ANSWERS: Final = 256
"""Replies kept per connection for repeated unique ids."""
MAX_KEYS: Final = 4096
"""Payload keys whose snake-cased form is remembered (the schemas' keys, and a bound)."""
LOG: Final = logging.getLogger(__name__)
ENERGY_REGISTER: Final = "Energy.Active.Import.Register"
LibChargePoint: type[Any] = _lib.ChargePoint
PropertyConstraintViolation: Any = _PropertyConstraintViolation
_camel_to_snake: Callable[[object], Any] = _lib.camel_to_snake_case
_snake_to_camel: Callable[[object], Any] = _lib.snake_to_camel_case
_remove_nones: Callable[[object], Any] = _lib.remove_nones
_serialize: Callable[[object], Any] = _lib.serialize_as_dict
_SNAKE: dict[str, str] = {}
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS: Final = dt.timedelta(milliseconds=1)
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


class StationService(Protocol):
    """What a station's connection asks of the CSMS (`csms.Csms`)."""

    @property
    def store(self) -> CsmsStore: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    @property
    def authorize(self) -> Callable[[str], Awaitable[Binding | None]]: ...

    @property
    def log_limit(self) -> LogLimiter: ...

    def sample_seq(self, key: tuple[str, str], ms: int, register_wh: int | None) -> int: ...

    async def start(self, event: TransactionEvent) -> bool: ...

    async def event(self, event: TransactionEvent) -> ChargingSession | None: ...


def on(action: str) -> Callable[[F], F]:
    """The `ocpp` library's `@on(action)`, typed."""
    return cast("Callable[[F], F]", _lib_on(action))


def parse_time(field: str, value: object) -> int:
    """An OCPP date-time as Unix seconds; `MalformedEventError` for anything else."""
    return parse_time_ms(field, value) // 1000


def parse_time_ms(field: str, value: object) -> int:
    """An OCPP date-time as Unix milliseconds (finer digits dropped); `MalformedEventError`
    for anything else."""
    if not isinstance(value, str) or len(value) > 40:
        raise MalformedEventError(field, "must be an RFC 3339 date-time")
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise MalformedEventError(field, "must be an RFC 3339 date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    ms = (when - _EPOCH) // _MS
    if ms < 0:
        raise MalformedEventError(field, "before 1970")
    return ms


async def authorization_status(csms: StationService, station: str, id_token: str) -> dict[str, str]:
    """The idTokenInfo/idTagInfo of an Authorize from `station`: Accepted, Invalid, or the
    status a refusal names (Blocked for a quarantined device: `TokenRefusedError.status`). A
    refusal is logged within `station`'s bound (`StationService.log_limit`)."""
    try:
        binding = await csms.authorize(id_token)
    except TokenRefusedError as e:
        csms.log_limit.log(LOG, logging.INFO, station, "token refused", "%s", e)
        return {"status": e.status}
    return {"status": "Accepted" if binding is not None else "Invalid"}


def now_iso(seconds: float) -> str:
    """`seconds` (Unix) as an OCPP date-time."""
    return _iso(int(seconds))


@functools.lru_cache(maxsize=8)
def _iso(seconds: int) -> str:
    """Formatted once per second (a charger sends many messages in one)."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_WH_PER: Final = {"Wh": 1, "kWh": 1000}
_MAX_VALUE: Final = 10**15
"""The largest sample value accepted (in its own unit)."""


def _whole_wh(raw: object, per: int, multiplier: int) -> int:
    """A sample's value in whole Wh: `raw` (a JSON number, or a 1.6 decimal string) times
    `per` (the unit's Wh) times 10 to the `multiplier`, rounded toward zero. A plain integer
    (what chargers send) is read as one; anything else through `Decimal`, with the same
    result."""
    if multiplier >= 0 and (
        type(raw) is int or (type(raw) is str and raw.isascii() and raw.isdigit() and len(raw) < 17)
    ):
        number = int(raw)
        if not 0 <= number <= _MAX_VALUE:
            raise MalformedEventError("sampled_value.value", "out of range")
        return int(number * per * 10**multiplier)
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise MalformedEventError("sampled_value.value", "not a number") from None
    if not value.is_finite() or value < 0 or value > _MAX_VALUE:
        raise MalformedEventError("sampled_value.value", "out of range")
    return int(value * per * Decimal(10) ** multiplier)


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
            wh = _whole_wh(sample.get("value"), _WH_PER[unit], multiplier)
            if best is None or wh > best:
                best = wh
                data = sample.get("signed_meter_value")
                signed = data.get("signed_meter_data") if isinstance(data, dict) else None
    return best, signed


class StationConnection(LibChargePoint):  # type: ignore[misc]
    """An `ocpp` ChargePoint for one station's WebSocket that answers repeated unique ids
    idempotently and turns `SessionError`s into the CALLERROR OCPP names for them.

    It routes the station's CALLs itself, once per frame: the payload is checked with the
    schema check compiled once per action (`schemas.check_payload`, the library's own errors
    for an invalid one), its keys are snake-cased through a bounded cache, and the answer is
    checked the same way before it is sent. Frames are not logged (the library logs each at
    INFO), and what is logged about one is within the station's bound (`Csms.log_limit`: the
    station decides how many frames it sends).

    A CALLRESULT or CALLERROR reaches the library's `call` only if it is the first answer to the
    call in flight (the library sends one call at a time, under its call lock); any other is
    dropped and counted (`dropped_answers`), not logged. The library's wait for an answer calls
    itself once for every answer with another unique id, so a station flooding such answers
    exhausted the stack of the call (RecursionError); nothing else may grow its response queue
    either, which holds at most the one answer.
    """

    renamed_errors: ClassVar[dict[str, str]] = {}
    """CALLERROR codes the library spells otherwise than this version's spec."""

    @classmethod
    def compile_checks(cls) -> None:
        """Compile the payload checks of every action this CSMS answers: the chargers' requests
        (CALL) and its answers (CALLRESULT) (`schemas.compiled_check`: 1-13 ms each), so that
        the first charger to send each is not held up by it, nor every charger answered on the
        same loop meanwhile."""
        for action in _create_route_map(cls):
            compiled_check(cls._ocpp_version, MessageType.Call, action)
            compiled_check(cls._ocpp_version, MessageType.CallResult, action)

    def __init__(self, station: str, connection: Any, csms: StationService) -> None:
        library_log = LimitedLogger(logging.getLogger("ocpp"), csms.log_limit, station)
        super().__init__(station, connection, response_timeout=10, logger=library_log)
        self.csms = csms
        self._answers: OrderedDict[str, str] = OrderedDict()
        self._awaited: str | None = None
        """The unique id of the call in flight, until its first answer arrives."""
        self.dropped_answers = 0
        """CALLRESULTs and CALLERRORs dropped: no call waited for them."""

    # The answers 1.6 and 2.0.1 share: the subclass's `_call_result` module builds them.

    @on("BootNotification")
    async def on_boot(self, **_: Any) -> Any:
        return self._call_result.BootNotification(
            current_time=now_iso(self.csms.clock()), interval=300, status="Accepted"
        )

    @on("Heartbeat")
    async def on_heartbeat(self, **_: Any) -> Any:
        return self._call_result.Heartbeat(current_time=now_iso(self.csms.clock()))

    @on("StatusNotification")
    async def on_status(self, **_: Any) -> Any:
        return self._call_result.StatusNotification()

    async def start(self) -> None:
        while True:
            await self.route_message(await self._connection.recv())

    async def route_message(self, raw_msg: str) -> None:
        try:
            msg = unpack(raw_msg)
        except (OCPPError, RecursionError, ValueError) as e:  # not an OCPP-J frame: the spec
            # gives no answer. Each would end the connection's task: RecursionError, JSON nested
            # deeper than Python's reader goes (a frame's 64 KiB allow tens of thousands of
            # levels); ValueError, an integer over Python's 4,300 digits (`sys.int_info`)
            self.csms.log_limit.log(
                LOG,
                logging.DEBUG,
                self.id,
                "unreadable frame",
                "%s: unreadable frame: %r",
                self.id,
                e,
            )
            return
        if msg.message_type_id != MessageType.Call:
            awaited = self._awaited  # None once answered: a null unique id matches no call
            if awaited is not None and msg.unique_id == awaited and self._call_lock.locked():
                self._awaited = None  # a repeat of the answer is not queued for the next call
                self._response_queue.put_nowait(msg)
            else:
                self.dropped_answers += 1
            return
        unique_id = msg.unique_id if isinstance(msg.unique_id, str) else None
        if unique_id is not None and unique_id in self._answers:
            await self._connection.send(self._answers[unique_id])
            return
        try:
            answer = await self._answer(msg)
        except OCPPError as e:
            error = msg.create_call_error(e)
            error.error_code = self.renamed_errors.get(error.error_code, error.error_code)
            answer = error.to_json()
        if unique_id is not None:
            self._answers[unique_id] = answer
            while len(self._answers) > MAX_ANSWERS:
                self._answers.popitem(last=False)
        await self._connection.send(answer)

    async def _answer(self, msg: Any) -> str:
        """The CALLRESULT for `msg`, or an `OCPPError` for its CALLERROR."""
        if not isinstance(msg.action, str):
            raise FormatViolationError(details={"cause": "the action must be a string"})
        handler = self.route_map.get(msg.action, {}).get("_on_action")
        if handler is None:  # the library names the error (NotImplemented / NotSupported)
            await super()._handle_call(msg)
            raise OcppNotImplementedError(details={"cause": f"no handler for {msg.action}"})
        await check_payload(msg, self._ocpp_version)
        try:
            response = await handler(**snake_case(msg.payload))
        except OCPPError:
            raise
        except Exception as e:  # a key per action and error class: one does not hide another
            self.csms.log_limit.log(
                LOG,
                logging.ERROR,
                self.id,
                f"{msg.action} failed ({type(e).__name__})",
                "%s: %s failed",
                self.id,
                msg.action,
                exc_info=True,
            )
            raise InternalError(description="An unexpected error occurred.") from None
        result = msg.create_call_result(_payload(response))
        await check_payload(result, self._ocpp_version)
        return str(result.to_json())

    async def _send(self, message: str) -> None:
        """Send a CALL of the library's `call`, the only caller (this class sends its answers
        itself), with the call lock held, right before it waits for the answer: from now on
        the answer with its unique id is the one awaited. An answer left in the queue (one that
        came as the previous call timed out) is dropped."""
        self._awaited = str(json.loads(message)[1])
        while not self._response_queue.empty():
            self._response_queue.get_nowait()
            self.dropped_answers += 1
        await self._connection.send(message)

    async def close(self) -> None:
        """Close the station's WebSocket (it reconnected on another one)."""
        await self._connection.close()

    async def guarded(self, work: Callable[[], Any]) -> Any:
        """`await work()`, with a refused event answered as a PropertyConstraintViolation."""
        try:
            return await work()
        except SessionError as e:
            raise PropertyConstraintViolation(description=str(e)) from None


def _payload(response: Any) -> Any:
    """The camel-cased JSON payload of a handler's answer (a library dataclass), as the library
    builds it; an answer with no field set (a MeterValues or an Updated TransactionEvent
    answer) is `{}` at once, without the library's walk over a deep copy."""
    names = _FIELD_NAMES.get(type(response))
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(response))
        _FIELD_NAMES[type(response)] = names  # one per library class
    if all(getattr(response, name) is None for name in names):
        return {}
    return _snake_to_camel(_remove_nones(_serialize(response)))


def snake_case(data: object) -> Any:
    """`data` with every object key snake-cased as the library does (`camel_to_snake_case`),
    each distinct key converted once (the first `MAX_KEYS` are remembered)."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            name = _SNAKE.get(key)
            if name is None:
                name = next(iter(_camel_to_snake({key: None})))
                if len(_SNAKE) < MAX_KEYS:
                    _SNAKE[key] = name
            out[name] = snake_case(value) if isinstance(value, dict | list) else value
        return out
    if isinstance(data, list):
        return [snake_case(v) if isinstance(v, dict | list) else v for v in data]
    return data
