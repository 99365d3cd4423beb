"""Reading HTTP requests for the API: bodies under a size limit, JSON fields, hex, ids and
parameters, each refused with an `ApiError` naming one of `API_ERROR_CODES`."""

from __future__ import annotations

import contextlib
import json
import re
from typing import TYPE_CHECKING, Any, Final

from starlette.responses import JSONResponse, Response

from tangle.errors import AddressError, InvalidFieldError, MalformedError
from tangle.protocol.bech32 import decode_address
from tangle.protocol.codec import Reader
from tangle.protocol.ids import Address, MessageId, OutputId
from tangle.protocol.message import MAX_MESSAGE_SIZE
from tangle.protocol.payload import Payload, decode_payload

from ._schema import API_ERROR_CODES, error_body

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request

    from tangle.protocol.bech32 import Network

JSON_BODY_LIMIT: Final = 2 * MAX_MESSAGE_SIZE + 1024
"""Largest JSON body: a maximal message in hex, and room for the keys."""
HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
ID = re.compile(r"[0-9a-fA-F]{64}")
OUTPUT_ID = re.compile(r"[0-9a-fA-F]{68}")
DIGITS = re.compile(r"[0-9]{1,20}")


class ApiError(Exception):
    """A request the API refuses, with one of `API_ERROR_CODES`."""

    def __init__(self, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = API_ERROR_CODES[code][0]
        self.headers = dict(headers or {})


def error_response(
    code: str, message: str, status: int, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    length = request.headers.get("content-length")
    if length is not None:
        if not DIGITS.fullmatch(length):
            raise ApiError("invalid_header", "Content-Length is not a number")
        if int(length) > limit:
            raise ApiError("body_too_large", f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async with contextlib.aclosing(request.stream()) as stream:
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                raise ApiError("body_too_large", f"the body is over {limit} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int = JSON_BODY_LIMIT) -> dict[str, Any]:
    raw = await read_body(request, limit)
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError("invalid_json", "the body is not JSON") from None
    if not isinstance(doc, dict):
        raise ApiError("invalid_body", "the body must be a JSON object")
    return doc


def json_field(doc: Mapping[str, Any], name: str, kind: type) -> Any:
    value = doc.get(name)
    if kind is int and isinstance(value, bool):
        value = None
    if not isinstance(value, kind):
        expected = {int: "an integer", str: "a string"}.get(kind, kind.__name__)
        raise ApiError("invalid_body", f"{name!r} must be {expected}")
    return value


def hex_field(text: str, name: str) -> bytes:
    if not HEX.fullmatch(text):
        raise ApiError("invalid_hex", f"{name!r} is not hex of whole bytes")
    return bytes.fromhex(text)


def path_message_id(text: str) -> MessageId:
    if not ID.fullmatch(text):
        raise ApiError("invalid_id", "a message id is 64 hex digits")
    return MessageId.from_hex(text)


def path_output_id(text: str) -> OutputId:
    """An output id: 68 hex digits (the transaction id, then the index as a little-endian
    u16)."""
    if not OUTPUT_ID.fullmatch(text):
        raise ApiError("invalid_id", "an output id is 68 hex digits")
    return OutputId.from_hex(text)


def path_id(text: str) -> Address:
    """A channel id (or another 32-byte id indexed like an address): 64 hex digits."""
    if not ID.fullmatch(text):
        raise ApiError("invalid_id", "an id is 64 hex digits")
    return Address.from_hex(text)


def path_address(text: str, network: Network) -> Address:
    """An address in hex (64 digits) or in bech32m with `network`'s prefix."""
    if ID.fullmatch(text):
        return Address.from_hex(text)
    try:
        return decode_address(text, network)
    except AddressError as exc:
        raise ApiError(
            "invalid_address", f"not 64 hex digits nor a {network.hrp}1... address: {exc}"
        ) from None


def query_uint(text: str, name: str, minimum: int, maximum: int) -> int:
    if not DIGITS.fullmatch(text) or not minimum <= int(text) <= maximum:
        raise ApiError("invalid_parameter", f"{name} must be an integer in {minimum}..{maximum}")
    return int(text)


def client_of(request: Request) -> str:
    """The client's address: what per-client limits count by."""
    return request.client.host if request.client is not None else "unknown"


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def decode_payload_bytes(data: bytes) -> Payload:
    reader = Reader(data, "payload")
    try:
        payload = decode_payload(reader)
    except InvalidFieldError as exc:
        raise MalformedError(str(exc)) from exc
    reader.finish()
    return payload


def jsonable(value: object, depth: int = 0) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.hex()
    if depth < 8 and isinstance(value, dict | list | tuple):
        if isinstance(value, dict):
            return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
        return [jsonable(v, depth + 1) for v in value]
    return str(value)
