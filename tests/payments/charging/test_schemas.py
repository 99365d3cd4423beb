"""The compiled OCPP payload checks never accept what the library's Draft 4 validation refuses,
accept the payloads chargers send (so the fast path is the one taken), and leave every refusal's
CALLERROR to the library."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

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
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["Accepted", "Wh", "Updated", "Energy.Active.Import.Register", T]),
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
def test_a_mutated_payload_is_accepted_only_if_the_library_accepts_it(
    case: tuple[str, int, str, dict[str, Any]], data: st.DataObject, how: str, new: object
) -> None:
    version, type_id, action, payload = case
    mutated = _mutate(payload, data.draw(st.sampled_from(_paths(payload))), how, new)
    check = compiled_check(version, type_id, action)
    assert check is not None
    if check(mutated):
        assert _library_accepts(version, type_id, action, mutated), json.dumps(mutated)


@settings(max_examples=200, deadline=None)
@given(case=st.sampled_from(VALID), instance=JSON)
def test_any_json_is_accepted_only_if_the_library_accepts_it(
    case: tuple[str, int, str, dict[str, Any]], instance: object
) -> None:
    version, type_id, action, _ = case
    check = compiled_check(version, type_id, action)
    assert check is not None
    if check(instance):
        assert _library_accepts(version, type_id, action, instance)


def test_every_shipped_schema_compiles_and_agrees_on_an_empty_payload() -> None:
    root = Path(messages.__file__).parent
    for folder in ("v16", "v201"):
        for path in sorted((root / folder / "schemas").glob("*.json")):
            schema = json.loads(path.read_text(encoding="utf-8-sig"))
            check = compile_schema(schema)
            assert check({}) is Draft4Validator(schema).is_valid({}), path.name


def test_a_keyword_it_does_not_know_refuses_so_the_library_decides() -> None:
    check = compile_schema({"type": "string", "pattern": "^a"})
    assert not check("abc")  # the library would accept it; the fast check leaves it to it
    assert compile_schema({"type": "string", "maxLength": 3})("abc")


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
