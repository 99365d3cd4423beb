"""The channel protocol over HTTP: a Starlette endpoint for the payee and an httpx client.

```
POST /channels/{channel_id hex}/payments
    body: encode_signed_proof(proof)       (application/octet-stream)
200 {"sequence": n, "payee_balance": b, "credited": c}   the proof is durable at the payee
4xx {"code": RejectCode, "error": name, "detail": text}  refused; nothing changed
503 {"code": RejectCode, "error": "StoreError", ...}     the store failed; nothing changed,
                                                         send it again after Retry-After
```

A body over `MAX_BODY` bytes is refused (400, `ChannelFrameError`) from its Content-Length, or as
soon as more than that has arrived, without reading the rest.

The same `PayeeService` as the TCP server checks the proof and makes it durable before the
answer. This is a transport for the channel core, not pay-per-use: the 402 flow lives elsewhere.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tangle.errors import InvalidFieldError
from tangle.protocol.ids import ChannelId

from ..channels.service import Credit, reject_code
from ..channels.wire import MAX_BODY, RejectCode, decode_signed_proof, encode_signed_proof
from ..errors import (
    ChannelFrameError,
    CounterpartyRejectedError,
    PaymentError,
    StaleProofError,
    StoreError,
    UnknownChannelError,
    WrongChannelError,
)

if TYPE_CHECKING:
    import httpx
    from starlette.requests import Request

    from tangle.protocol.channel import SignedBalanceProof

    from ..channels.core import PayerChannel
    from ..channels.service import PayeeService

CONTENT_TYPE: Final = "application/octet-stream"
RETRY_AFTER_S: Final = 1
"""The `Retry-After` of a 503 (a failed store)."""


def _status(error: PaymentError) -> int:
    if isinstance(error, UnknownChannelError):
        return 404
    if isinstance(error, StaleProofError):
        return 409
    if isinstance(error, StoreError):
        return 503
    return 400


def _refusal(error: PaymentError) -> JSONResponse:
    code = reject_code(error)
    body = {"code": int(code), "error": type(error).__name__, "detail": str(error)}
    status = _status(error)
    headers = {"retry-after": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def _read_body(request: Request) -> bytes:
    """The request's body; `ChannelFrameError` once it is known to exceed `MAX_BODY`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ChannelFrameError("signed proof", f"{declared} bytes is oversized")
    body = bytearray()
    async with contextlib.aclosing(request.stream()) as chunks:
        async for chunk in chunks:
            body += chunk
            if len(body) > MAX_BODY:
                raise ChannelFrameError("signed proof", f"more than {MAX_BODY} bytes is oversized")
    return bytes(body)


def payee_app(service: PayeeService) -> Starlette:
    """An ASGI app serving `POST /channels/{id}/payments` for the channels of `service`."""

    async def payments(request: Request) -> JSONResponse:
        try:
            channel_id = ChannelId.from_hex(request.path_params["channel_id"])
        except InvalidFieldError as e:
            return _refusal(ChannelFrameError("channel id", str(e)))
        try:
            proof = decode_signed_proof(await _read_body(request))
            if proof.proof.channel_id != channel_id:
                raise WrongChannelError(
                    "channel_id", channel_id.hex(), proof.proof.channel_id.hex()
                )
            credit = await service.receive(proof)
        except PaymentError as e:
            return _refusal(e)
        return JSONResponse(
            {
                "sequence": credit.sequence,
                "payee_balance": credit.payee_balance,
                "credited": credit.credited,
            }
        )

    return Starlette(routes=[Route("/channels/{channel_id}/payments", payments, methods=["POST"])])


async def post_proof(client: httpx.AsyncClient, url: str, proof: SignedBalanceProof) -> Credit:
    """Send `proof` to the payee at base `url`; the `Credit` the payee made durable, or
    `CounterpartyRejectedError`."""
    channel = proof.proof.channel_id.hex()
    response = await client.post(
        f"{url.rstrip('/')}/channels/{channel}/payments",
        content=encode_signed_proof(proof),
        headers={"content-type": CONTENT_TYPE},
    )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise CounterpartyRejectedError(
            RejectCode.PROTOCOL, proof.proof.sequence, "answer is not JSON"
        )
    if response.status_code != 200:
        code = body.get("code")
        code = code if isinstance(code, int) else int(RejectCode.PROTOCOL)
        raise CounterpartyRejectedError(
            code, proof.proof.sequence, str(body.get("detail", ""))[:200]
        )
    values = [body.get(key) for key in ("sequence", "payee_balance", "credited")]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise CounterpartyRejectedError(
            RejectCode.PROTOCOL, proof.proof.sequence, "malformed receipt"
        )
    sequence, balance, credited = (int(v) for v in values)  # type: ignore[arg-type]
    if (sequence, balance) != (proof.proof.sequence, proof.proof.payee_balance):
        raise CounterpartyRejectedError(
            RejectCode.PROTOCOL, proof.proof.sequence, "answer for another proof"
        )
    return Credit(proof=proof, credited=credited)


class HttpPayer:
    """Pays over HTTP, one request per payment, on a `PayerChannel`."""

    __slots__ = ("_client", "_url", "channel")

    def __init__(self, channel: PayerChannel, client: httpx.AsyncClient, url: str) -> None:
        self.channel = channel
        self._client = client
        self._url = url

    async def pay(self, amount: int) -> Credit:
        """Sign the next proof and post it; returns once the payee made it durable."""
        return await post_proof(self._client, self._url, self.channel.pay(amount))
