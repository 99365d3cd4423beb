"""OCPP payload checks compiled once per action from the `ocpp` library's own JSON schemas.

The library validates each message by walking its schema with `jsonschema`'s Draft 4 validator
(about 1 ms a meter value, the largest cost of the CSMS per message). `check_payload` first runs
a plain Python predicate compiled once per (version, message type, action) from the very schema
dict the library loaded (`ocpp.messages.get_validator(...).schema`): a payload it accepts is one
the library accepts. Anything else, and every action whose schema this compiler does not fully
understand, goes to the library's own validation, which raises the CALLERROR it always raised
(so the codes the spec names for an invalid payload stay exactly the library's).

The compiler covers the Draft 4 keywords the OCPP 1.6 and 2.0.1 schemas use, with Draft 4's
meaning: `type` (where `integer` excludes floats and no number is a boolean), `properties`,
`required`, `additionalProperties` (false or a schema), `enum` (of strings), `maxLength`,
`items` (one schema), `additionalItems` (ignored with one `items` schema, as Draft 4 says),
`minItems`, `maxItems`, `minimum`, `maximum`, local `$ref` (its siblings ignored, as Draft 4
says), and annotations (`format` is not checked: the library's validator has no format checker).
A subschema with any other keyword compiles to a check that never accepts, so its payloads take
the library's path: the fast check may refuse more than the library, never less.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ocpp import messages as _messages  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from collections.abc import Callable

    Check = Callable[[object], bool]

_ANNOTATIONS: Final = frozenset(
    {"$schema", "$id", "id", "title", "description", "comment", "javaType", "default", "format"}
    | {"tsEnumNames", "definitions"}
)
_UNCOMPILED: Final = frozenset(
    # the 1.6 actions the library validates with Decimal floats (see ocpp.messages)
    {("1.6", 2, "SetChargingProfile"), ("1.6", 2, "RemoteStartTransaction")}
    | {("1.6", 3, "GetCompositeSchedule")}
)
_checks: dict[tuple[str, int, str], Check | None] = {}


def _never(_: object) -> bool:
    return False


def _is_type(name: str, value: object) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return name == "null" and value is None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Compiler:
    """Turns one schema document into nested predicates (see the module docstring)."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def ref(self, pointer: object) -> Check:
        if not isinstance(pointer, str) or not pointer.startswith("#/definitions/"):
            return _never
        name = pointer.removeprefix("#/definitions/")
        found = self.refs.get(name)
        if found is not None:
            return found
        target = self.root.get("definitions", {}).get(name)
        if not isinstance(target, dict):
            return _never
        compiled: list[Check] = []
        self.refs[name] = lambda value: compiled[0](value)  # a recursive reference waits
        compiled.append(self.schema(target))
        self.refs[name] = compiled[0]
        return compiled[0]

    def schema(self, schema: object) -> Check:
        if not isinstance(schema, dict):
            return _never
        if "$ref" in schema:
            return self.ref(schema["$ref"])
        checks: list[Check] = []
        for keyword, arg in schema.items():
            if keyword in _ANNOTATIONS or keyword == "additionalItems":
                continue
            if keyword == "type":
                checks.append(self.type(arg))
            elif keyword == "properties":
                checks.append(self.properties(arg))
            elif keyword == "required":
                checks.append(self.required(arg))
            elif keyword == "additionalProperties":
                checks.append(self.additional(arg, schema.get("properties", {})))
            elif keyword == "enum":
                checks.append(self.enum(arg))
            elif keyword == "maxLength" and _is_count(arg):
                checks.append(_max_length(arg))
            elif keyword == "items" and isinstance(arg, dict):
                checks.append(_items(self.schema(arg)))
            elif keyword in ("minItems", "maxItems") and _is_count(arg):
                checks.append(_item_count(arg, keyword == "minItems"))
            elif keyword in ("minimum", "maximum") and _is_number(arg):
                if "exclusiveMinimum" in schema or "exclusiveMaximum" in schema:
                    return _never
                checks.append(_bound(arg, keyword == "minimum"))
            else:
                return _never
        return _all(checks)

    def type(self, arg: object) -> Check:
        names = [arg] if isinstance(arg, str) else arg
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return _never
        return lambda v: any(_is_type(n, v) for n in names)

    def properties(self, arg: object) -> Check:
        if not isinstance(arg, dict):
            return _never
        fields = [(name, self.schema(sub)) for name, sub in arg.items()]

        def check(value: object) -> bool:
            if not isinstance(value, dict):
                return True
            return all(sub(value[name]) for name, sub in fields if name in value)

        return check

    def required(self, arg: object) -> Check:
        if not isinstance(arg, list) or not all(isinstance(n, str) for n in arg):
            return _never
        names = tuple(arg)
        return lambda v: not isinstance(v, dict) or all(n in v for n in names)

    def additional(self, arg: object, properties: object) -> Check:
        known = frozenset(properties) if isinstance(properties, dict) else frozenset()
        if arg is True:
            return lambda v: True
        if arg is False:
            return lambda v: not isinstance(v, dict) or known.issuperset(v)
        extra = self.schema(arg)
        return lambda v: (
            not isinstance(v, dict)
            or all(extra(item) for name, item in v.items() if name not in known)
        )

    def enum(self, arg: object) -> Check:
        if not isinstance(arg, list) or not all(isinstance(n, str) for n in arg):
            return _never
        allowed = frozenset(arg)
        return lambda v: isinstance(v, str) and v in allowed


def _max_length(n: int) -> Check:
    return lambda v: not isinstance(v, str) or len(v) <= n


def _items(item: Check) -> Check:
    return lambda v: not isinstance(v, list) or all(map(item, v))


def _item_count(n: int, at_least: bool) -> Check:
    if at_least:
        return lambda v: not isinstance(v, list) or len(v) >= n
    return lambda v: not isinstance(v, list) or len(v) <= n


def _bound(n: float, lower: bool) -> Check:
    if lower:
        return lambda v: not _is_number(v) or v >= n  # type: ignore[operator]
    return lambda v: not _is_number(v) or v <= n  # type: ignore[operator]


def _is_count(arg: object) -> bool:
    return isinstance(arg, int) and not isinstance(arg, bool) and arg >= 0


def _all(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)


def compile_schema(schema: dict[str, Any]) -> Check:
    """A predicate that accepts only instances Draft 4 accepts under `schema` (it may refuse
    some that Draft 4 accepts; see the module docstring)."""
    return _Compiler(schema).schema(schema)


def compiled_check(version: str, message_type_id: int, action: str) -> Check | None:
    """The compiled check of this message's payload, made once; None where the library's own
    validation must run (an unknown action, or one validated with Decimal floats)."""
    key = (version, message_type_id, action)
    if key in _checks:
        return _checks[key]
    check: Check | None = None
    if key not in _UNCOMPILED:
        try:
            validator = _messages.get_validator(message_type_id, action, version)
        except (OSError, ValueError):  # no schema: the library names the error
            validator = None
        if validator is not None and isinstance(validator.schema, dict):
            check = compile_schema(validator.schema)
    if len(_checks) < 4096:  # actions are a fixed set; a hostile stream of names is not cached
        _checks[key] = check
    return check


async def check_payload(message: Any, version: str) -> None:
    """Return if `message` (an `ocpp` Call or CallResult with its action) is valid for its
    action's schema; else the library's exception for it (the CALLERROR the spec names)."""
    check = compiled_check(version, message.message_type_id, message.action)
    if check is not None and check(message.payload):
        return
    await _messages.validate_payload(message, version)  # the library's own errors
