"""The outer layer of the HTTP API: routes that answer `OPTIONS` and refuse other methods with
an `Allow` header naming every method of the path, errors raised on purpose turned into their
JSON answers, and anything unexpected into a logged 500 that never stops the node."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Route

from tangle.errors import TangleError

from ._request import ApiError, error_response
from ._schema import tangle_error_code, tangle_error_status

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ._metrics import Telemetry

logger = logging.getLogger("tangle.http.api")


class MessageIdConvertor(Convertor[str]):
    """A `{message_id:message_id}` path segment: anything but the names of the sibling routes
    (`/messages/pow`, `/messages/batch`), so that a GET of those is a 405, not a bad id."""

    regex = "(?!(?:pow|batch)$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("message_id", MessageIdConvertor())


def route(path: str, **handlers: Callable[[Request], Awaitable[Response]]) -> Route:
    """One route per path: `handlers` by lower-case method (`get=...`, `post=...`); HEAD where
    there is GET, and OPTIONS, which answers 204 with `Allow`. Any other method is a 405 whose
    `Allow` names them all."""
    methods = sorted(m.upper() for m in handlers)
    allow = ", ".join([*methods, *(["HEAD"] if "GET" in methods else []), "OPTIONS"])

    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": allow})
        method = "get" if request.method == "HEAD" else request.method.lower()
        return await handlers[method](request)

    return Route(path, endpoint, methods=[*methods, "OPTIONS"])


async def refusal(request: Request, exc: Exception) -> Response:
    """The response to an error a route raised on purpose."""
    if isinstance(exc, ApiError):
        return error_response(exc.code, str(exc), exc.status, exc.headers)
    if isinstance(exc, TangleError):
        return error_response(tangle_error_code(exc), str(exc), tangle_error_status(exc))
    if isinstance(exc, HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        status = exc.status_code if 400 <= exc.status_code < 500 else 400
        return error_response(code, exc.detail, status, exc.headers)
    raise exc


class Guard:
    """Outermost of our middleware: counts responses by status and turns any exception that
    escapes a route into a logged 500 (or, once the response has started, a closed stream)."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self._app = app
        self._telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status: int | None = None

        async def tracked(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, tracked)
        except ClientDisconnect:
            pass
        except Exception:
            logger.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if status is None:
                response = error_response("internal_error", "the node failed to answer", 500)
                await response(scope, receive, tracked)
        finally:
            self._telemetry.responded(status)
