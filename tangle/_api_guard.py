"""The outermost layer of the HTTP API: errors raised on purpose become their JSON answers, and
anything unexpected a logged 500 that never stops the node."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from ._api_request import ApiError, error_response
from ._api_schema import tangle_error_code, tangle_error_status
from .errors import TangleError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ._api_metrics import Telemetry

logger = logging.getLogger("tangle.api")


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
