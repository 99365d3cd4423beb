"""The back-office HTTP API of one carrier: its fraud alerts as a long-poll stream and its
metrics for Prometheus. For the carrier's own staff and monitoring, never for partners: serve it
on loopback or behind the carrier's gateway, and give it a bearer token where others can reach
the host.

```
GET /roaming/backoffice/v1/alerts?after=N&limit=L&wait=S
    200  {"alerts": [alert, ...], "next": N', "published": P, "dropped": D}
         the alerts numbered above N (at most L, up to 1000), oldest first; with none yet, the
         request waits up to S seconds (at most 30) for one. Read on with after=next (a
         reader ahead of the log, which numbers from 1 again after a restart, is put back). An
         alert: {"number", "rule", "partner", "imsi_hash", "evidence", "at", "value", "limit"}
GET /roaming/backoffice/v1/metrics
    200  Prometheus text (0.0.4): alerts per rule and partner, alerts dropped from the buffer,
         open exposure per pair (unacknowledged batches, minor units), fraud table sizes
GET /roaming/backoffice/v1/openapi.json   this API's OpenAPI 3.1 document
errors: {"error": name, "detail": text} with 400 a query that is not a bounded integer,
        401 no or a wrong bearer token, 503 the store failed
```

The log (`alerts.AlertLog`) is bounded: a reader that fell more than its capacity behind gets
the oldest kept alert next (the numbers show the gap, `dropped` counts all such). The exposure
is read from the carrier's store: pass this app a connection of its own (WAL lets it read while
the desk writes). The app runs on anyio (Starlette); store reads go to a worker thread.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .alerts import MAX_READ
from .errors import RoamingError

if TYPE_CHECKING:
    from starlette.requests import Request

    from .alerts import FraudWatch
    from .store import RoamingStore

PREFIX: Final = "/roaming/backoffice/v1"
ALERTS: Final = f"{PREFIX}/alerts"
METRICS: Final = f"{PREFIX}/metrics"
MAX_WAIT_S: Final = 30
POLL_S: Final = 0.2
"""How often a waiting long-poll looks at the log again."""
PROMETHEUS: Final = "text/plain; version=0.0.4; charset=utf-8"


class _QueryError(Exception):
    pass


def _integer(request: Request, name: str, default: int, high: int) -> int:
    text = request.query_params.get(name, str(default))
    if not text.isdigit() or len(text) > 19 or int(text) > high:
        raise _QueryError(f"{name} is an integer in [0, {high}]")
    return int(text)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(watch: FraudWatch, exposure: dict[tuple[str, str], int]) -> str:
    """The Prometheus text exposition of `watch`'s counts and `exposure` (per VPMN, HPMN)."""
    lines = [
        "# HELP tanglepay_roaming_alerts_total Fraud alerts raised, per rule and partner.",
        "# TYPE tanglepay_roaming_alerts_total counter",
    ]
    for (rule, partner), n in watch.log.counts().items():
        lines.append(
            f'tanglepay_roaming_alerts_total{{rule="{_label(rule)}",partner="{_label(partner)}"}}'
            f" {n}"
        )
    lines += [
        "# HELP tanglepay_roaming_alerts_dropped_total Alerts pushed out of the stream buffer.",
        "# TYPE tanglepay_roaming_alerts_dropped_total counter",
        f"tanglepay_roaming_alerts_dropped_total {watch.log.dropped}",
        "# HELP tanglepay_roaming_open_exposure Charges of sealed batches no accepted"
        " acknowledgement answers yet (minor units).",
        "# TYPE tanglepay_roaming_open_exposure gauge",
    ]
    for (vpmn, hpmn), amount in exposure.items():
        lines.append(
            f'tanglepay_roaming_open_exposure{{vpmn="{_label(vpmn)}",hpmn="{_label(hpmn)}"}}'
            f" {amount}"
        )
    lines += [
        "# HELP tanglepay_roaming_fraud_table_entries Entries in the fraud monitor's tables.",
        "# TYPE tanglepay_roaming_fraud_table_entries gauge",
    ]
    for table, n in sorted(watch.sizes().items()):
        lines.append(f'tanglepay_roaming_fraud_table_entries{{table="{_label(table)}"}} {n}')
    return "\n".join(lines) + "\n"


def backoffice_app(
    watch: FraudWatch, store: RoamingStore, *, token: str | None = None
) -> Starlette:
    """The back-office API over `watch` and `store` (see the module docstring); with `token`,
    every request must carry `Authorization: Bearer <token>`."""
    expected = None if token is None else f"Bearer {token}".encode()

    def refused(request: Request) -> Response | None:
        if expected is None:
            return None
        given = request.headers.get("authorization", "").encode()
        if hmac.compare_digest(given, expected):
            return None
        return JSONResponse({"error": "Unauthorized", "detail": "bearer token"}, 401)

    async def alerts(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        try:
            after = _integer(request, "after", 0, 2**63 - 1)
            limit = _integer(request, "limit", MAX_READ, MAX_READ)
            wait = _integer(request, "wait", 0, MAX_WAIT_S)
        except _QueryError as e:
            return JSONResponse({"error": "BadQuery", "detail": str(e)}, 400)
        log = watch.log
        found = log.after(after, limit)
        with anyio.move_on_after(wait):
            while not found and wait:
                await anyio.sleep(POLL_S)
                found = log.after(after, limit)
        # none new: a reader ahead of the log (it restarted, numbering from 1) is put back
        next_ = found[-1].number if found else min(after, log.published)
        return JSONResponse(
            {
                "alerts": [a.to_json_object() for a in found],
                "next": next_,
                "published": log.published,
                "dropped": log.dropped,
            }
        )

    async def metrics(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        try:
            exposure = await anyio.to_thread.run_sync(store.open_exposure)
        except RoamingError as e:
            return JSONResponse({"error": type(e).__name__, "detail": str(e)}, 503)
        return PlainTextResponse(metrics_text(watch, exposure), media_type=PROMETHEUS)

    async def openapi(_: Request) -> JSONResponse:
        return JSONResponse(openapi_document())

    return Starlette(
        routes=[
            Route(ALERTS, alerts, methods=["GET"]),
            Route(METRICS, metrics, methods=["GET"]),
            Route(f"{PREFIX}/openapi.json", openapi, methods=["GET"]),
        ]
    )


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the back-office API."""
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]

    def query(name: str, high: int, text: str) -> dict[str, object]:
        schema = {"type": "integer", "minimum": 0, "maximum": high}
        return {
            "name": name,
            "in": "query",
            "required": False,
            "schema": schema,
            "description": text,
        }

    alert = {
        "type": "object",
        "required": ["number", "rule", "partner", "imsi_hash", "evidence", "at", "value", "limit"],
        "properties": {
            "number": {"type": "integer", "description": "1, 2, ... in publishing order"},
            "rule": {
                "type": "string",
                "enum": [
                    "high-usage",
                    "cloned-sim",
                    "usage-after-bar",
                    "unknown-imsi-range",
                    "imsi-spend-cap",
                    "partner-spend-cap",
                ],
            },
            "partner": {"type": "string", "description": "TADIG of the sending VPMN"},
            "imsi_hash": {"type": ["string", "null"], "description": "keyed IMSI hash, hex"},
            "evidence": {"type": "array", "items": {"type": "string"}},
            "at": {"type": "integer", "description": "UTC seconds when it fired"},
            "value": {"type": "integer"},
            "limit": {"type": "integer"},
        },
    }
    page = {
        "type": "object",
        "required": ["alerts", "next", "published", "dropped"],
        "properties": {
            "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
            "next": {"type": "integer", "description": "pass as after= to read on"},
            "published": {"type": "integer"},
            "dropped": {"type": "integer", "description": "alerts pushed out of the buffer"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "tanglepay roaming back-office API", "version": "1"},
        "paths": {
            ALERTS: {
                "get": {
                    "summary": "Fraud alerts after a number (long poll)",
                    "security": bearer,
                    "parameters": [
                        query("after", 2**63 - 1, "the last number read (0: from the oldest)"),
                        query("limit", MAX_READ, "at most this many"),
                        query("wait", MAX_WAIT_S, "seconds to wait for one when none is new"),
                    ],
                    "responses": {
                        "200": {
                            "description": "The alerts, oldest first",
                            "content": {"application/json": {"schema": page}},
                        },
                        "400": {"description": "A query out of range", **error},
                        "401": {"description": "No or a wrong bearer token", **error},
                    },
                }
            },
            METRICS: {
                "get": {
                    "summary": "Metrics in the Prometheus text format",
                    "security": bearer,
                    "responses": {
                        "200": {
                            "description": "alerts per rule and partner, open exposure",
                            "content": {PROMETHEUS: {"schema": {"type": "string"}}},
                        },
                        "401": {"description": "No or a wrong bearer token", **error},
                        "503": {"description": "The store failed", **error},
                    },
                }
            },
            f"{PREFIX}/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI"}},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Alert": alert,
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
                },
            },
        },
    }
