"""The OCPP payload checks `fastjsonschema` compiles accept exactly what the library's Draft 4
validation accepts on any JSON (so they never accept what it refuses, and the payloads chargers send
take the fast path), and leave every refusal's CALLERROR to the library."""

from __future__ import annotations

import asyncio
import copy
import decimal
import json
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator
from ocpp import messages  # type: ignore[import-untyped]
from ocpp.exceptions import (  # type: ignore[import-untyped]
    FormatViolationError,
    ProtocolError,
    TypeConstraintViolationError,
)

from payments.charging.schemas import check_payload, compile_schema, compiled_check

T = "2026-12-03T04:00:00Z"
SAMPLE = {"value": "1"}
VALID: list[tuple[str, int, str, dict[str, Any]]] = [
    ("1.6", 2, "BootNotification", {"chargePointVendor": "tp", "chargePointModel": "sim"}),
    (
        "1.6",
        2,
        "StartTransaction",
        {"connectorId": 1, "idTag": "TOKEN1", "meterStart": 0, "timestamp": T},
    ),
    (
        "1.6",
        2,
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": 3,
            "meterValue": [{"timestamp": T, "sampledValue": [{"value": "250", "unit": "Wh"}]}],
        },
    ),
    (
        "1.6",
        2,
        "StopTransaction",
        {"meterStop": 900, "timestamp": T, "transactionId": 3, "reason": "Local"},
    ),
    ("1.6", 3, "StartTransaction", {"transactionId": 3, "idTagInfo": {"status": "Accepted"}}),
    ("1.6", 3, "MeterValues", {}),
    (
        "2.0.1",
        2,
        "TransactionEvent",
        {
            "eventType": "Updated",
            "timestamp": T,
            "triggerReason": "MeterValuePeriodic",
            "seqNo": 5,
            "offline": True,
            "transactionInfo": {"transactionId": "B1", "chargingState": "Charging"},
            "idToken": {"idToken": "TOKEN1", "type": "ISO14443"},
            "meterValue": [
                {
                    "timestamp": T,
                    "sampledValue": [
                        {
                            "value": 250.5,
                            "measurand": "Energy.Active.Import.Register",
                            "unitOfMeasure": {"unit": "Wh", "multiplier": 0},
                            "signedMeterValue": {
                                "signedMeterData": "OCMF|{}",
                                "signingMethod": "ECDSA-secp256r1-SHA256",
                                "encodingMethod": "OCMF",
                                "publicKey": "",
                            },
                        }
                    ],
                }
            ],
        },
    ),
    (
        "2.0.1",
        2,
        "StatusNotification",
        {"timestamp": T, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1},
    ),
    ("2.0.1", 3, "TransactionEvent", {"idTokenInfo": {"status": "Accepted"}}),
    ("2.0.1", 3, "Heartbeat", {"currentTime": T}),
]
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats()  # json.loads takes NaN and Infinity too
    | st.text(max_size=30)
    | st.sampled_from(["Accepted", "Wh", "Updated", "Energy.Active.Import.Register", T, 1.0]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=8,
)


def _library_accepts(version: str, type_id: int, action: str, payload: object) -> bool:
    return bool(messages.get_validator(type_id, action, version).is_valid(payload))


def _paths(value: object, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _mutate(payload: dict[str, Any], path: tuple[Any, ...], how: str, new: object) -> object:
    """`payload` with the value at `path` replaced, removed, or given an extra key."""
    if not path:
        return new
    out = copy.deepcopy(payload)
    parent: Any = out
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "drop":
        del parent[last]
    elif how == "extra" and isinstance(parent[last], dict):
        parent[last]["unexpectedKey"] = new
    else:
        parent[last] = new
    return out


@pytest.mark.parametrize(("version", "type_id", "action", "payload"), VALID)
def test_the_payloads_chargers_send_take_the_fast_path(
    version: str, type_id: int, action: str, payload: dict[str, Any]
) -> None:
    check = compiled_check(version, type_id, action)
    assert check is not None
    assert check(payload)
    assert _library_accepts(version, type_id, action, payload)


@settings(max_examples=400, deadline=None)
@given(
    case=st.sampled_from(VALID),
    data=st.data(),
    how=st.sampled_from(["replace", "drop", "extra"]),
    new=JSON,
)
def test_a_mutated_payload_is_accepted_iff_the_library_accepts_it(
    case: tuple[str, int, str, dict[str, Any]], data: st.DataObject, how: str, new: object
) -> None:
    version, type_id, action, payload = case
    mutated = _mutate(payload, data.draw(st.sampled_from(_paths(payload))), how, new)
    check = compiled_check(version, type_id, action)
    assert check is not None
    assert check(mutated) is _library_accepts(version, type_id, action, mutated), mutated


@settings(max_examples=200, deadline=None)
@given(case=st.sampled_from(VALID), instance=JSON)
def test_any_json_is_accepted_iff_the_library_accepts_it(
    case: tuple[str, int, str, dict[str, Any]], instance: object
) -> None:
    version, type_id, action, _ = case
    check = compiled_check(version, type_id, action)
    assert check is not None
    assert check(instance) is _library_accepts(version, type_id, action, instance), instance


def test_every_shipped_schema_compiles_and_agrees_on_an_empty_payload() -> None:
    root = Path(messages.__file__).parent
    for folder in ("v16", "v201"):
        for path in sorted((root / folder / "schemas").glob("*.json")):
            schema = json.loads(path.read_text(encoding="utf-8-sig"))
            check = compile_schema(schema)
            assert check({}) is Draft4Validator(schema).is_valid({}), path.name


def test_it_reads_every_schema_as_draft_4_as_the_library_does() -> None:
    schema = messages.get_validator(2, "StatusNotification", "2.0.1").schema
    assert schema["$schema"] == "http://json-schema.org/draft-06/schema#"
    payload = {**VALID[7][3], "evseId": 1.0}  # an integer under draft 6, not under draft 4
    fastjsonschema.compile(schema, use_default=False, use_formats=False)(payload)
    assert not _library_accepts("2.0.1", 2, "StatusNotification", payload)
    check = compiled_check("2.0.1", 2, "StatusNotification")
    assert check is not None
    assert not check(payload)


def test_formats_are_not_checked_as_the_library_checks_none() -> None:
    payload = {**VALID[1][3], "timestamp": "yesterday"}  # format: date-time
    check = compiled_check("1.6", 2, "StartTransaction")
    assert check is not None
    assert check(payload)
    assert _library_accepts("1.6", 2, "StartTransaction", payload)


def test_no_default_is_written_into_the_payload() -> None:
    payload = copy.deepcopy(VALID[6][3])
    del payload["offline"]  # the schema's default: false
    payload["meterValue"][0]["sampledValue"][0]["unitOfMeasure"] = {}  # defaults: Wh, 0
    before = copy.deepcopy(payload)
    check = compiled_check("2.0.1", 2, "TransactionEvent")
    assert check is not None
    assert check(payload)
    assert payload == before


def test_a_number_fastjsonschema_cannot_divide_is_a_refusal_not_a_crash() -> None:
    check = compile_schema({"type": "number", "multipleOf": 0.1})
    assert check(0.3)
    assert not check(4.11)
    assert not check(float("nan"))  # int(Decimal("NaN")): ValueError
    assert not check(float("inf"))  # int(Decimal("Infinity")): OverflowError


def test_the_decimal_actions_keep_the_library_s_path() -> None:
    """The library re-parses these payloads with Decimal floats (21.4 is a multiple of 0.1,
    4.11 is not); the handler then gets its Decimals, as before."""
    for key in [("1.6", 2, "SetChargingProfile"), ("1.6", 2, "RemoteStartTransaction")]:
        assert compiled_check(*key) is None
    assert compiled_check("1.6", 3, "GetCompositeSchedule") is None

    def profile(limit: float) -> dict[str, Any]:
        period = {"startPeriod": 0, "limit": limit}
        schedule = {"chargingRateUnit": "W", "chargingSchedulePeriod": [period]}
        return {
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": schedule,
            },
        }

    call = _call("SetChargingProfile", profile(21.4))
    messages.ASYNC_VALIDATION = False
    asyncio.run(check_payload(call, "1.6"))
    schedule = call.payload["csChargingProfiles"]["chargingSchedule"]
    assert schedule["chargingSchedulePeriod"][0]["limit"] == decimal.Decimal("21.4")
    with pytest.raises(FormatViolationError):
        asyncio.run(check_payload(_call("SetChargingProfile", profile(4.11)), "1.6"))


def _call(action: str, payload: dict[str, Any]) -> Any:
    return messages.Call(unique_id="1", action=action, payload=payload)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"connectorId": 1, "meterValue": []}, FormatViolationError),  # minItems
        ({"meterValue": [{"timestamp": T, "sampledValue": [{"value": "1"}]}]}, ProtocolError),
        (
            {"connectorId": 1.5, "meterValue": [{"timestamp": T, "sampledValue": [SAMPLE]}]},
            TypeConstraintViolationError,
        ),
    ],
)
def test_a_refused_payload_gets_the_library_s_own_error(
    payload: dict[str, Any], error: type[Exception]
) -> None:
    messages.ASYNC_VALIDATION = False
    with pytest.raises(error):
        asyncio.run(check_payload(_call("MeterValues", payload), "1.6"))


def test_a_valid_payload_passes() -> None:
    asyncio.run(check_payload(_call(*VALID[2][2:]), "1.6"))


def test_junk_action_names_are_not_cached() -> None:
    """A charger sending made-up action names fills no cache slot (the 4096 are kept for real
    actions, which stay compiled once)."""
    from payments.charging import schemas

    before = len(schemas._checks)
    for n in range(100):
        assert compiled_check("2.0.1", 2, f"NoSuchAction{n}") is None
    assert len(schemas._checks) == before
    assert compiled_check("2.0.1", 2, "Heartbeat") is not None
    assert ("2.0.1", 2, "Heartbeat") in schemas._checks
