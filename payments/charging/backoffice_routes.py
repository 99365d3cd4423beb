"""The back office's routes (`backoffice.backoffice_app`): the route table (`Operation`), what its
handlers share (a JSON body read within `MAX_BODY`, `BadRequestError`, the error answer) and its
OpenAPI 3.1 document (`openapi_document`), built from the same table the app serves, so the
document names every route served and no other."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request
    from starlette.responses import Response

    Handler = Callable[[Request], Awaitable[Response]]

MAX_BODY: Final = 16 * 1024
"""The largest request body read."""

_CONVERTER: Final = re.compile(r"\{(\w+):\w+\}")
"""A path parameter with a Starlette converter (`{id:path}`): `{id}` in the document."""


class BadRequestError(Exception):
    """A request body or parameter the API cannot use."""


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """An error answer: `{"error": {"code", "message"}}`."""
    return JSONResponse({"error": {"code": code, "message": message}}, status)


async def json_body(request: Request) -> dict[str, Any]:
    """The request's body, a JSON object of at most `MAX_BODY` bytes (`BadRequestError`)."""
    body = b""
    async for chunk in request.stream():  # read no more than the limit allows
        body += chunk
        if len(body) > MAX_BODY:
            raise BadRequestError(f"body over {MAX_BODY} bytes")
    try:
        doc = json.loads(body)
    except ValueError:
        raise BadRequestError("body is not JSON") from None
    if not isinstance(doc, dict):
        raise BadRequestError("body must be a JSON object")
    return doc


@dataclass(frozen=True, slots=True)
class Operation:
    """One route: method, path, summary, whether it needs the operator token, its handler; the
    query parameters and request headers it reads, the headers its success answers with, and
    the answers it gives beyond the common ones (status, its description) for the document."""

    method: str
    path: str
    summary: str
    operator: bool
    handler: Handler
    query: tuple[str, ...] = ()
    answers: tuple[tuple[str, str], ...] = ()
    headers_in: tuple[str, ...] = ()
    headers_out: tuple[str, ...] = ()


def openapi_document(table: list[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `table`."""
    paths: dict[str, dict[str, Any]] = {}
    for op in table:
        path = _CONVERTER.sub(r"{\1}", op.path)
        params = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in path.split("/")
            if part.startswith("{")
        ]
        params += [
            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
            for name in op.query
        ]
        responses: dict[str, Any] = {
            "200": {"description": "success"},
            "400": {"description": "bad_request, or a refused payment"},
            "404": {"description": "not_found"},
        }
        responses.update({status: {"description": text} for status, text in op.answers})
        entry: dict[str, Any] = {"summary": op.summary, "responses": responses}
        if op.operator:
            entry["security"] = [{"bearer": []}]
            responses["401"] = {"description": "unauthorized"}
        params += [{"name": name, "in": "header", "required": True} for name in op.headers_in]
        if params:
            entry["parameters"] = params
        if op.headers_out:
            responses["200"]["headers"] = {
                h: {"schema": {"type": "string"}} for h in op.headers_out
            }
        paths.setdefault(path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "tanglepay CSMS back office", "version": "1.0.0"},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
