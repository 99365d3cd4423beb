"""OCPP payload checks compiled once per action, with `fastjsonschema`, from the `ocpp` library's
own JSON schemas.

The library validates each message by walking its schema with `jsonschema`'s Draft 4 validator
(the largest cost of the CSMS per message). `check_payload` first runs a validator that
`fastjsonschema` compiled to Python code, once per (version, message type, action), from the very
schema dict the library loaded (`ocpp.messages.get_validator(...).schema`). A payload it accepts
is accepted; anything it refuses goes to the library's own validation, which raises the CALLERROR
it always raised (so the codes the spec names for an invalid payload stay exactly the library's).

It is compiled with the library's meaning of the schemas:
- Draft 4 always, as the library validates every schema with `Draft4Validator` (the 2.0.1
  schemas name draft 06, under which `fastjsonschema` would take 1.0 for an integer);
- no `format` checks, as the library's validator has no format checker (checking them would only
  send a payload with, say, a timestamp without a zone to the library, which accepts it);
- no `default` filling (`fastjsonschema` would otherwise write defaults into the payload).
One difference is left: `fastjsonschema` takes a tuple for an array, `jsonschema` does not. A
charger's payload is parsed JSON, which has lists only; a tuple can only come from our own
answer's dataclass, where it is sent as the JSON array the schema asks for.

The three OCPP 1.6 actions the library validates with `Decimal` floats (it re-parses their
payloads, see `ocpp.messages`) keep the library's path alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import fastjsonschema
from ocpp import messages as _messages  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from collections.abc import Callable

    Check = Callable[[object], bool]

_DRAFT4: Final = "http://json-schema.org/draft-04/schema#"
_UNCOMPILED: Final = frozenset(
    # the 1.6 actions the library validates with Decimal floats (see ocpp.messages)
    {("1.6", 2, "SetChargingProfile"), ("1.6", 2, "RemoteStartTransaction")}
    | {("1.6", 3, "GetCompositeSchedule")}
)
_checks: dict[tuple[str, int, str], Check | None] = {}


def compile_schema(schema: dict[str, Any]) -> Check:
    """A predicate that accepts an instance iff Draft 4 accepts it under `schema`, formats not
    checked (see the module docstring for the one difference, tuples). Besides its own refusal,
    `fastjsonschema`'s `multipleOf` raises ValueError or OverflowError on NaN and infinities:
    those are refusals too, left to the library."""
    validate = fastjsonschema.compile(
        {**schema, "$schema": _DRAFT4},
        use_default=False,
        use_formats=False,
        detailed_exceptions=False,
    )

    def check(instance: object) -> bool:
        try:
            validate(instance)
        except (ValueError, ArithmeticError):  # a refusal (JsonSchemaException is a ValueError)
            return False
        return True

    return check


def compiled_check(version: str, message_type_id: int, action: str) -> Check | None:
    """The compiled check of this message's payload, made once; None where the library's own
    validation must run (an unknown action, or one validated with Decimal floats)."""
    key = (version, message_type_id, action)
    if key in _checks:
        return _checks[key]
    check: Check | None = None
    known = key in _UNCOMPILED  # an action with a schema (junk names have none)
    if not known:
        try:
            validator = _messages.get_validator(message_type_id, action, version)
        except (OSError, ValueError):  # no schema: the library names the error
            validator = None
        known = validator is not None
        if validator is not None and isinstance(validator.schema, dict):
            try:
                check = compile_schema(validator.schema)
            except fastjsonschema.JsonSchemaDefinitionException:  # the library decides alone
                check = None
    if known and len(_checks) < 4096:  # only actions with a schema: junk names fill nothing
        _checks[key] = check
    return check


async def check_payload(message: Any, version: str) -> None:
    """Return if `message` (an `ocpp` Call or CallResult with its action) is valid for its
    action's schema; else the library's exception for it (the CALLERROR the spec names)."""
    check = compiled_check(version, message.message_type_id, message.action)
    if check is not None and check(message.payload):
        return
    await _messages.validate_payload(message, version)  # the library's own errors
