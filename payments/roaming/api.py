"""The operator-to-operator HTTP API: records go VPMN -> HPMN in batches, acknowledgements come
back; every request is signed by the sending carrier's operator key (`request_auth.py`).

```
POST /roaming/v1/batches                      body: encode_batch(batch) (octet-stream)
     200  the signed acknowledgement (octet-stream; accepted, or returned as fatal)
GET  /roaming/v1/acks/{sender}/{recipient}/{sequence}
     200  the stored acknowledgement (octet-stream)   404 none stored
POST /roaming/v1/bars                         body: SignedBar.encode() (octet-stream), HPMN -> VPMN
     200  {"new": bool}: kept; the subscriber's later usage is refused at this VPMN
GET  /roaming/v1/openapi.json                 this API's OpenAPI 3.1 document (unsigned)
errors: {"error": class name, "detail": text} with 400 malformed, 401 not signed by a partner,
        stale or replayed, 403 forged or wrongly signed batch or bar, 409 a batch already
        acknowledged with other content, 413 body too large, 421 a request addressed to another
        carrier, 422 a record outside the agreement, 503 the store failed
```

The app runs on anyio (Starlette): the desk's blocking work goes to a worker thread, at most
`WORKERS` at once (a `CapacityLimiter` the app takes, shared by all its desks). The batch
(or bar) must come from the operator that signed the request, and the request must be addressed
to this carrier (`request_auth.py`). `post_batch` is the VPMN's client, `post_bar` the HPMN's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .acknowledgement import SignedAcknowledgement
from .bars import SignedBar
from .batch import decode_batch, encode_batch
from .desk import CarrierDesk
from .errors import (
    BarError,
    BatchError,
    ForgedHeaderError,
    MalformedBatchError,
    MisaddressedRequestError,
    RecordOutsideAgreementError,
    ReplayedBatchError,
    RequestAuthError,
    RoamingError,
    RoamingStoreError,
    WrongSignerError,
)
from .request_auth import sign_request

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import httpx
    from starlette.requests import Request

    from tangle.protocol.signature import Signer

    from .batch import Batch
    from .request_auth import RequestVerifier

OCTETS: Final = "application/octet-stream"
MAX_BODY: Final = 64 * 1024 * 1024
BATCHES: Final = "/roaming/v1/batches"
BARS: Final = "/roaming/v1/bars"
MAX_BAR_BODY: Final = 1024
WORKERS: Final = 2
"""Worker threads a carrier process runs its CPU-bound desk work in at once (the cores it is
sized for): two, so one validates while another waits for its fsync. More only take turns at
the interpreter lock, each holding a batch's records (some 5 MB) that push the others' out of
the shared caches (anyio's default pool would run 40)."""


def _status(error: RoamingError) -> int:
    if isinstance(error, MisaddressedRequestError):
        return 421
    if isinstance(error, RequestAuthError):
        return 401
    if isinstance(error, (ForgedHeaderError, WrongSignerError)):
        return 403
    if isinstance(error, ReplayedBatchError):
        return 409
    if isinstance(error, RecordOutsideAgreementError):
        return 422
    if isinstance(error, RoamingStoreError):
        return 503
    return 400


def _refuse(error: RoamingError) -> JSONResponse:
    body = {"error": type(error).__name__, "detail": str(error)}
    return JSONResponse(body, status_code=_status(error))


async def _body(request: Request, limit: int = MAX_BODY) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLargeError
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


class _TooLargeError(Exception):
    pass


def _receive(desk: CarrierDesk, operator: str, body: bytes, now: int) -> SignedAcknowledgement:
    """Decode a batch `operator` sent (in a worker: the decode is the CPU-bound part), check
    that `operator` signed it, and hand it to `desk`; its acknowledgement."""
    batch = decode_batch(body)
    if batch.signed.header.sender != operator:
        raise WrongSignerError(f"a batch of {batch.signed.header.sender} sent by {operator}")
    return desk.receive_batch(batch, now)


def roaming_app(
    desk: CarrierDesk | Mapping[str, CarrierDesk],
    verifier: RequestVerifier,
    clock: Callable[[], int],
    *,
    on_ack: Callable[[SignedAcknowledgement], None] | None = None,
    workers: anyio.CapacityLimiter | None = None,
) -> Starlette:
    """The carrier's API over `desk`, or over one desk per partner (keyed by the partner's
    TADIG: a request goes to the desk of the partner that signed it); `verifier` knows the
    partners' keys, `clock` gives seconds. `on_ack` (it must not block) hears of every
    acknowledgement the API answers with, before the answer goes out. The desks' work runs in
    worker threads of `workers` (default: a limiter of `WORKERS` for this app)."""
    desks = {desk.partner: desk} if isinstance(desk, CarrierDesk) else dict(desk)
    limiter = anyio.CapacityLimiter(WORKERS) if workers is None else workers

    def desk_of(operator: str) -> CarrierDesk:
        found = desks.get(operator)
        if found is None:
            raise WrongSignerError(f"no agreement with {operator} here")
        return found

    async def batches(request: Request) -> Response:
        try:
            body = await _body(request)
        except _TooLargeError:
            return JSONResponse({"error": "TooLarge", "detail": f"over {MAX_BODY}"}, 413)
        try:
            operator = verifier.verify("POST", request.url.path, request.headers, body, clock())
            desk = desk_of(operator)
            ack = await anyio.to_thread.run_sync(
                _receive, desk, operator, body, clock(), limiter=limiter
            )
        except RoamingError as e:
            return _refuse(e)
        if on_ack is not None:
            on_ack(ack)
        return Response(ack.encode(), media_type=OCTETS)

    async def acks(request: Request) -> Response:
        p = request.path_params
        try:
            operator = verifier.verify("GET", request.url.path, request.headers, b"", clock())
            if operator not in (p["sender"], p["recipient"]):
                raise WrongSignerError(
                    f"{operator} asked for an acknowledgement between {p['sender']} and "
                    f"{p['recipient']}"
                )
            held = await anyio.to_thread.run_sync(
                desk_of(operator).store.ack,
                p["sender"],
                p["recipient"],
                int(p["sequence"]),
                limiter=limiter,
            )
        except RoamingError as e:
            return _refuse(e)
        if held is None:
            return JSONResponse({"error": "NotFound", "detail": "no such acknowledgement"}, 404)
        return Response(held.encode(), media_type=OCTETS)

    async def bars(request: Request) -> Response:
        try:
            body = await _body(request, MAX_BAR_BODY)
        except _TooLargeError:
            return JSONResponse({"error": "TooLarge", "detail": f"over {MAX_BAR_BODY}"}, 413)
        try:
            operator = verifier.verify("POST", request.url.path, request.headers, body, clock())
            signed = SignedBar.decode(body)
            if signed.bar.hpmn != operator:
                raise WrongSignerError(f"a bar of {signed.bar.hpmn} sent by {operator}")
            new = await anyio.to_thread.run_sync(
                desk_of(operator).bar, signed, clock(), limiter=limiter
            )
        except RoamingError as e:
            return _refuse(e)
        return JSONResponse({"new": new})

    async def openapi(_: Request) -> JSONResponse:
        return JSONResponse(openapi_document())

    return Starlette(
        routes=[
            Route(BATCHES, batches, methods=["POST"]),
            Route(BARS, bars, methods=["POST"]),
            Route("/roaming/v1/acks/{sender}/{recipient}/{sequence:int}", acks, methods=["GET"]),
            Route("/roaming/v1/openapi.json", openapi, methods=["GET"]),
        ]
    )


async def post_batch(
    client: httpx.AsyncClient, signer: Signer, operator: str, batch: Batch, now: int
) -> SignedAcknowledgement:
    """Send `batch` to the HPMN at `client`'s base URL; its signed acknowledgement (not yet
    verified: `verify_ack`). A refusal raises `BatchError` with the HPMN's reason."""
    body = encode_batch(batch)
    recipient = batch.signed.header.recipient
    headers = sign_request(signer, operator, "POST", BATCHES, body, now, recipient=recipient)
    headers["content-type"] = OCTETS
    response = await client.post(BATCHES, content=body, headers=headers)
    if response.status_code != 200:
        raise BatchError(f"HPMN refused the batch ({response.status_code}): {response.text[:300]}")
    try:
        return SignedAcknowledgement.decode(response.content)
    except MalformedBatchError as e:
        raise BatchError(f"the HPMN's answer is not an acknowledgement: {e}") from None


async def post_bar(
    client: httpx.AsyncClient,
    signer: Signer,
    operator: str,
    recipient: str,
    bar: SignedBar,
    now: int,
) -> bool:
    """The HPMN `operator` sends its signed `bar` to the VPMN `recipient` at `client`'s base
    URL; whether it was new there. A refusal raises `BarError` with the VPMN's reason."""
    body = bar.encode()
    headers = sign_request(signer, operator, "POST", BARS, body, now, recipient=recipient)
    headers["content-type"] = OCTETS
    response = await client.post(BARS, content=body, headers=headers)
    if response.status_code != 200:
        raise BarError(f"the VPMN refused the bar ({response.status_code}): {response.text[:300]}")
    return bool(response.json().get("new"))


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of this API."""
    octets = {"content": {OCTETS: {"schema": {"type": "string", "format": "binary"}}}}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    signed: list[dict[str, list[str]]] = [{"operatorSignature": []}]

    def responses(ok: str, *codes: int) -> dict[str, object]:
        out: dict[str, object] = {"200": {"description": ok, **octets}}
        out.update({str(c): {"description": _REASONS[c], **error} for c in codes})
        return out

    return {
        "openapi": "3.1.0",
        "info": {"title": "tanglepay roaming operator API", "version": "1"},
        "paths": {
            BATCHES: {
                "post": {
                    "summary": "Send a signed batch of usage records to the HPMN",
                    "security": signed,
                    "requestBody": {"required": True, **octets},
                    "responses": responses(
                        "The signed acknowledgement", 400, 401, 403, 409, 413, 421, 422, 503
                    ),
                }
            },
            BARS: {
                "post": {
                    "summary": "The HPMN bars a subscriber (keyed IMSI hash) at the VPMN",
                    "security": signed,
                    "requestBody": {"required": True, **octets},
                    "responses": {
                        "200": {
                            "description": "Kept: later usage of the subscriber is refused",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["new"],
                                        "properties": {"new": {"type": "boolean"}},
                                    }
                                }
                            },
                        },
                        **{
                            str(c): {"description": _REASONS[c], **error}
                            for c in (400, 401, 403, 413, 421, 503)
                        },
                    },
                }
            },
            "/roaming/v1/acks/{sender}/{recipient}/{sequence}": {
                "get": {
                    "summary": "A stored acknowledgement (catch-up after a lost answer)",
                    "security": signed,
                    "parameters": [
                        {"name": n, "in": "path", "required": True, "schema": {"type": t}}
                        for n, t in (
                            ("sender", "string"),
                            ("recipient", "string"),
                            ("sequence", "integer"),
                        )
                    ],
                    "responses": responses("The signed acknowledgement", 401, 404, 421, 503),
                }
            },
            "/roaming/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI"}},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "operatorSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-roaming-signature",
                    "description": "ed25519 signature by the operator key over method, path, "
                    "operator, recipient, timestamp, nonce and the body's BLAKE2b-256, with "
                    "x-roaming-operator, x-roaming-recipient, x-roaming-timestamp and "
                    "x-roaming-nonce (see request_auth.py)",
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
                }
            },
        },
    }


_REASONS: Final = {
    400: "Malformed batch or bar",
    401: "Not signed by a partner, stale or replayed",
    403: "Forged or wrongly signed batch or bar",
    404: "No such acknowledgement",
    409: "Already acknowledged with other content",
    413: "Body too large",
    421: "Addressed to another carrier",
    422: "A record outside the agreement",
    503: "The store failed",
}
