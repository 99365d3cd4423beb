"""The operator-to-operator HTTP API: records go VPMN -> HPMN in batches, acknowledgements come
back; every request is signed by the sending carrier's operator key (`request_auth.py`).

```
POST /roaming/v1/batches                      body: encode_batch(batch) (octet-stream)
     200  the signed acknowledgement (octet-stream; accepted, or returned as fatal)
GET  /roaming/v1/acks/{sender}/{recipient}/{sequence}
     200  the stored acknowledgement (octet-stream)   404 none stored
GET  /roaming/v1/openapi.json                 this API's OpenAPI 3.1 document (unsigned)
errors: {"error": class name, "detail": text} with 400 malformed, 401 not signed by a partner,
        stale or replayed, 403 forged or wrongly signed batch, 409 a batch already acknowledged
        with other content, 413 body too large, 422 a record outside the agreement,
        503 the store failed
```

The app runs on anyio (Starlette): the desk's blocking work goes to a worker thread. The batch
must come from the operator that signed the request. `post_batch` is the VPMN's client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import anyio.to_thread
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .acknowledgement import SignedAcknowledgement
from .batch import decode_batch, encode_batch
from .errors import (
    BatchError,
    ForgedHeaderError,
    MalformedBatchError,
    RecordOutsideAgreementError,
    ReplayedBatchError,
    RequestAuthError,
    RoamingError,
    RoamingStoreError,
    WrongSignerError,
)
from .request_auth import sign_request

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx
    from starlette.requests import Request

    from tangle.protocol.signature import Signer

    from .batch import Batch
    from .desk import CarrierDesk
    from .request_auth import RequestVerifier

OCTETS: Final = "application/octet-stream"
MAX_BODY: Final = 64 * 1024 * 1024
BATCHES: Final = "/roaming/v1/batches"


def _status(error: RoamingError) -> int:
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


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise _TooLargeError
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


class _TooLargeError(Exception):
    pass


def roaming_app(
    desk: CarrierDesk, verifier: RequestVerifier, clock: Callable[[], int]
) -> Starlette:
    """The HPMN's API over `desk`; `verifier` knows the partners' keys, `clock` gives seconds."""

    async def batches(request: Request) -> Response:
        try:
            body = await _body(request)
        except _TooLargeError:
            return JSONResponse({"error": "TooLarge", "detail": f"over {MAX_BODY}"}, 413)
        try:
            operator = verifier.verify("POST", request.url.path, request.headers, body, clock())
            batch = decode_batch(body)
            if batch.signed.header.sender != operator:
                raise WrongSignerError(
                    f"a batch of {batch.signed.header.sender} sent by {operator}"
                )
            ack = await anyio.to_thread.run_sync(desk.receive_batch, batch, clock())
        except RoamingError as e:
            return _refuse(e)
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
                desk.store.ack, p["sender"], p["recipient"], int(p["sequence"])
            )
        except RoamingError as e:
            return _refuse(e)
        if held is None:
            return JSONResponse({"error": "NotFound", "detail": "no such acknowledgement"}, 404)
        return Response(held.encode(), media_type=OCTETS)

    async def openapi(_: Request) -> JSONResponse:
        return JSONResponse(openapi_document())

    return Starlette(
        routes=[
            Route(BATCHES, batches, methods=["POST"]),
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
    headers = sign_request(signer, operator, "POST", BATCHES, body, now)
    headers["content-type"] = OCTETS
    response = await client.post(BATCHES, content=body, headers=headers)
    if response.status_code != 200:
        raise BatchError(f"HPMN refused the batch ({response.status_code}): {response.text[:300]}")
    try:
        return SignedAcknowledgement.decode(response.content)
    except MalformedBatchError as e:
        raise BatchError(f"the HPMN's answer is not an acknowledgement: {e}") from None


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
                        "The signed acknowledgement", 400, 401, 403, 409, 413, 422, 503
                    ),
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
                    "responses": responses("The signed acknowledgement", 401, 404, 503),
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
                    "timestamp, nonce and the body's BLAKE2b-256, with x-roaming-operator, "
                    "x-roaming-timestamp and x-roaming-nonce (see request_auth.py)",
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
    400: "Malformed batch",
    401: "Not signed by a partner, stale or replayed",
    403: "Forged or wrongly signed batch",
    404: "No such acknowledgement",
    409: "Already acknowledged with other content",
    413: "Body too large",
    422: "A record outside the agreement",
    503: "The store failed",
}
