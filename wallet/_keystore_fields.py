"""Reading a keystore's JSON document field by field: each field of exactly its type, hex in
lower case and of its size, and telling a truncated file from a malformed one
(`wallet.keystore` unseals with these)."""

from __future__ import annotations

from .errors import KeystoreFormatError


def json_object(value: object, fields: frozenset[str], where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise KeystoreFormatError(f"{where or 'the file'} must be a JSON object")
    if set(value) != fields:
        raise KeystoreFormatError(f"{where or 'the file'} must have exactly {sorted(fields)}")
    return value


def json_int(obj: dict[str, object], name: str, where: str) -> int:
    value = obj[name]
    if type(value) is not int:  # bool is a subclass of int, and is refused
        raise KeystoreFormatError(f"{where}{name} must be an integer")
    return value


def json_str(obj: dict[str, object], name: str, where: str) -> str:
    value = obj[name]
    if type(value) is not str:
        raise KeystoreFormatError(f"{where}{name} must be a string")
    return value


def json_hex(obj: dict[str, object], name: str, where: str, size: int | None = None) -> bytes:
    text = json_str(obj, name, where)
    if text != text.lower():
        raise KeystoreFormatError(f"{where}{name} must be lower-case hex")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise KeystoreFormatError(f"{where}{name} is not hex") from None
    if size is not None and len(raw) != size:
        raise KeystoreFormatError(f"{where}{name} must be {size} bytes")
    return raw


def unclosed(text: str) -> bool:
    """True if `text` is empty or ends inside a string or an unclosed object or array: what every
    proper prefix of a JSON object looks like."""
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
    return not text.strip() or in_string or depth > 0
