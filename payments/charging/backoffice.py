"""The CSMS's back-office HTTP API (Starlette on the CSMS's asyncio loop), with its OpenAPI 3.1
document at `GET /openapi.json`, built from the same route table the app serves.

Operators (bearer token) manage stations, act on them and unbind tokens; drivers bind their token
to a payment channel (a token bound to another channel is refused until the operator unbinds it),
read their session's bill and prepay: the prepay route carries a balance proof in the
`Payment-Proof` header and answers with the CPO's signed receipt in `Payment-Receipt`, as the
pay-per-use paywall does. A live session is paid only over the driver's payment stream on the
CSMS's OCPP server (`pay_stream`, `pay_client`). Errors are `{"error": {"code", "message"}}` with
the status of the paywall's refusal table for payment errors, 400 for a refused event or request,
401 without the operator token, 403 for a token bound to another channel, 404 for an unknown
session, station or token, and 409 `prepayment_owed_back` (with its `amount`) for a prepayment
taken while the operator unbound or rebound its token: taken, and owed back to the channel's
payer.

Operators see the refunds owed to drivers and retry, hold or settle one (`backoffice_refunds`):
400 `bad_refund`, 400 `bad_note`, 404 `refund_not_found`, 409 `refund_not_held`, 409
`refund_transfer_live` (a settlement while the CPO wallet's transfer may still confirm or
apply, or confirmed), 503 `refund_wallet_unreadable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
from typing import TYPE_CHECKING, Any, Final

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tangle.errors import TangleError
from tangle.protocol.ids import ChannelId

from ..channels.wire import decode_signed_proof
from ..errors import PaymentError
from ..payperuse.offer import PROOF_HEADER, RECEIPT_HEADER
from ..payperuse.paywall import refusal_of
from ..payperuse.receipt import b64url_decode, receipt_to_header
from . import ocpi_json
from .backoffice_refunds import refund_operations
from .backoffice_routes import (
    BadRequestError,
    Operation,
    error_response,
    json_body,
    openapi_document,
)
from .commitment import session_digest, session_record
from .errors import (
    PrepaymentOwedBackError,
    RefundNoteError,
    RefundNotHeldError,
    RefundRefError,
    RefundTransferLiveError,
    RefundWalletError,
    StationAuthError,
    StationCallError,
    StationTimeoutError,
    TokenBindingError,
    UnknownRefundError,
    UnknownSessionError,
)
from .ocpi_tariff import tariff_to_json

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from starlette.requests import Request
    from starlette.types import ASGIApp

    from .backoffice_routes import Handler
    from .csms import Csms
    from .payment import ChargePayments
    from .refund_attempts import TransferRecords
    from .store import Bill
    from .tariff import Tariff

KEEP_ALIVE_S: Final = 75
"""How long an idle client connection is kept."""


def _proof(request: Request) -> Any:
    values = request.headers.getlist(PROOF_HEADER)
    if len(values) != 1:
        raise BadRequestError(f"exactly one {PROOF_HEADER} header")
    return decode_signed_proof(b64url_decode(values[0], BadRequestError))


_ANSWERS: Final[dict[type[PaymentError], tuple[int, str]]] = {
    UnknownSessionError: (404, "not_found"),
    StationAuthError: (404, "not_found"),
    StationTimeoutError: (504, "station_timeout"),
    StationCallError: (502, "station_call_failed"),
    TokenBindingError: (403, "token_binding"),
    UnknownRefundError: (404, "refund_not_found"),
    RefundNotHeldError: (409, "refund_not_held"),
    RefundRefError: (400, "bad_refund"),
    RefundNoteError: (400, "bad_note"),
    RefundTransferLiveError: (409, "refund_transfer_live"),
    RefundWalletError: (503, "refund_wallet_unreadable"),
}
"""The status and code of each refusal the back office names itself (the nearest class)."""
STATION_CALL: Final = (
    ("404", "not_found: the station is not connected"),
    ("502", "station_call_failed: a CALLERROR, an answer outside the schema, or a disconnect"),
    ("504", "station_timeout: no answer in time (the station may still carry the call out)"),
)
"""The answers a route that calls a station adds to the document."""


def _answer_of(error: PaymentError) -> tuple[int, str]:
    """A refused call's status and code: the back office's own (`_ANSWERS`), else the
    paywall's for a refused payment (`refusal_of`)."""
    for cls in type(error).__mro__:
        if cls in _ANSWERS:
            return _ANSWERS[cls]
    return refusal_of(error)


def backoffice_app(
    csms: Csms,
    payments: ChargePayments | None,
    operator_token: str,
    tariff: Tariff | None = None,
    cdr_hash: Callable[[Bill], Awaitable[bytes | None]] | None = None,
    refund_wallet: TransferRecords | None = None,
) -> Starlette:
    """The API of `csms` (payment routes answer 404 when `payments` is None); `tariff` is the
    OCPI tariff sessions not paid by channel are priced with, if any; `cdr_hash` gives a
    roaming session's CDR hash for its record (`RoamingCpo.cdr_hash_of`); `refund_wallet` is
    the CPO wallet refunds are paid from, whose records the refund routes show and settling
    checks (None: no wallet, so no refund was ever sent)."""

    def payments_of() -> ChargePayments:
        if payments is None:
            raise UnknownSessionError(("payments", "not configured"))
        return payments

    def session_key(request: Request) -> tuple[str, str]:
        token = request.path_params["token"]
        key = csms.by_token.get(token)
        if key is None:
            raise UnknownSessionError((token, "no session"))
        return key

    async def tariffs(request: Request) -> Response:
        offered: list[dict[str, object]] = []
        if payments is not None:
            t = payments.tariff
            offered.append({"channel_tariff": {"price": t.price, "per": t.per, "unit": t.unit}})
        if tariff is not None:
            offered.append({"ocpi": tariff_to_json(tariff)})
        return Response(ocpi_json.dumps(offered), media_type="application/json")

    async def stations(request: Request) -> Response:
        connected = set(csms.stations)
        rows = [{"id": s, "connected": s in connected} for s in await csms.store.stations()]
        return JSONResponse(rows)

    async def add_station(request: Request) -> Response:
        doc = await json_body(request)
        station, password = doc.get("id"), doc.get("password")
        if not isinstance(station, str) or not 0 < len(station) <= 48:
            raise BadRequestError("id must be 1-48 characters")
        if not isinstance(password, str) or not 16 <= len(password) <= 64:
            raise BadRequestError("password must be 16-64 characters")
        await csms.store.add_station(station, password)
        return JSONResponse({"id": station}, 201)

    async def remote_start(request: Request) -> Response:
        doc = await json_body(request)
        token, connector = doc.get("id_token"), doc.get("connector", 1)
        if not isinstance(token, str) or not isinstance(connector, int):
            raise BadRequestError("id_token (string) and connector (integer)")
        accepted = await csms.remote_start(request.path_params["station"], token, connector)
        return JSONResponse({"accepted": accepted})

    async def charging_profile(request: Request) -> Response:
        doc = await json_body(request)
        connector, limit = doc.get("connector", 1), doc.get("limit_w")
        if not isinstance(connector, int) or not isinstance(limit, int) or limit < 0:
            raise BadRequestError("connector and limit_w must be non-negative integers")
        station = request.path_params["station"]
        accepted = await csms.set_charging_profile(station, connector, limit)
        return JSONResponse({"accepted": accepted})

    async def sessions(request: Request) -> Response:
        return JSONResponse(await csms.store.sessions())

    async def session(request: Request) -> Response:
        key = (request.path_params["station"], request.path_params["transaction"])
        found = csms.book.sessions.get(key)
        if found is None:
            raise UnknownSessionError(key)
        return JSONResponse(
            {
                "charge_point": key[0],
                "transaction_id": key[1],
                "id_token": found.id_token,
                "energy_wh": found.energy_wh,
                "duration_s": found.duration_s,
                "billed": found.billed(),
                "paid": found.paid,
                "ended": found.ended,
                "signed_meter_values": [
                    {"seq_no": s.seq_no, "register_wh": s.register_wh, "data": s.data}
                    for s in found.signed
                ],
            }
        )

    async def commitment(request: Request) -> Response:
        key = (request.path_params["station"], request.path_params["transaction"])
        bill = await csms.store.bill_of(key)
        if bill is None:
            raise UnknownSessionError(key)
        cdr = None if cdr_hash is None else await cdr_hash(bill)
        record = session_record(bill, await csms.store.events(key), cdr)
        committed = await csms.store.commitment(key)
        return JSONResponse(
            {
                "record": record.hex(),
                "digest": session_digest(record).hex(),
                "message_id": None if committed is None else committed[1].hex(),
            }
        )

    async def cdrs(request: Request) -> Response:
        bills = await csms.store.bills()
        return JSONResponse(
            [
                {
                    "charge_point": b.charge_point,
                    "transaction_id": b.transaction_id,
                    "energy_wh": b.energy_wh,
                    "duration_s": b.duration_s,
                    "amount": b.amount,
                }
                for b in bills
            ]
        )

    async def bind(request: Request) -> Response:
        doc = await json_body(request)
        try:
            channel_id = ChannelId.from_hex(str(doc.get("channel_id", "")))
            signature = bytes.fromhex(str(doc.get("signature", "")))
        except (ValueError, TangleError):
            raise BadRequestError("channel_id and signature must be hex") from None
        await payments_of().bind(request.path_params["token"], channel_id, signature)
        return JSONResponse({"bound": True})

    async def unbind(request: Request) -> Response:
        prepaid = await payments_of().unbind(request.path_params["token"])
        if prepaid is None:
            raise UnknownSessionError((request.path_params["token"], "not bound"))
        return JSONResponse({"unbound": True, "prepaid": prepaid})

    async def invoice(request: Request) -> Response:
        bill = await payments_of().invoice(session_key(request))
        return JSONResponse({"units": bill.units, "amount": bill.amount, "paid": bill.paid})

    async def prepay(request: Request) -> Response:
        receipt = await payments_of().prepay(request.path_params["token"], _proof(request))
        return Response(status_code=200, headers={RECEIPT_HEADER: receipt_to_header(receipt)})

    table = [
        Operation("GET", "/api/tariffs", "The tariffs sessions are priced with", False, tariffs),
        Operation("GET", "/api/stations", "Registered stations", True, stations),
        Operation("POST", "/api/stations", "Register a station", True, add_station),
        Operation(
            "POST",
            "/api/stations/{station}/remote-start",
            "Start",
            True,
            remote_start,
            answers=STATION_CALL,
        ),
        Operation(
            "POST",
            "/api/stations/{station}/charging-profile",
            "Cap",
            True,
            charging_profile,
            answers=STATION_CALL,
        ),
        Operation("GET", "/api/sessions", "Sessions, newest first", True, sessions),
        Operation("GET", "/api/sessions/{station}/{transaction}", "A session", True, session),
        Operation("GET", "/api/cdrs", "Bills of ended sessions", True, cdrs),
        Operation(
            "GET",
            "/api/sessions/{station}/{transaction}/commitment",
            "A billed session's meter record and its message on the ledger",
            False,
            commitment,
        ),
        Operation("PUT", "/api/tokens/{token}", "Bind a token to a channel", False, bind),
        Operation("DELETE", "/api/tokens/{token}", "Unbind a token", True, unbind),
        Operation("GET", "/api/tokens/{token}/invoice", "The session's bill", False, invoice),
        Operation(
            "POST",
            "/api/tokens/{token}/prepay",
            "Pay up front",
            False,
            prepay,
            answers=(
                (
                    "409",
                    "prepayment_owed_back: taken while the operator unbound or rebound the "
                    "token; `amount` is owed back to the channel's payer",
                ),
            ),
            headers_in=(PROOF_HEADER,),
            headers_out=(RECEIPT_HEADER,),
        ),
        *refund_operations(csms.store.refunds, refund_wallet),
    ]

    def guarded(op: Operation) -> Handler:
        async def handle(request: Request) -> Response:
            if op.operator:
                given = request.headers.get("authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {operator_token}".encode()):
                    return error_response(401, "unauthorized", "operator token required")
            try:
                return await op.handler(request)
            except PrepaymentOwedBackError as e:
                owed = {"code": "prepayment_owed_back", "message": str(e), "amount": e.amount}
                return JSONResponse({"error": owed}, 409)
            except PaymentError as e:
                status, code = _answer_of(e)
                return error_response(status, code, str(e))
            except (BadRequestError, TangleError) as e:
                return error_response(400, "bad_request", str(e))

        return handle

    document = openapi_document(table)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes = [Route(op.path, guarded(op), methods=[op.method]) for op in table]
    return Starlette(routes=[*routes, Route("/openapi.json", openapi)])


@contextlib.asynccontextmanager
async def serve_backoffice(app: ASGIApp, host: str, port: int) -> AsyncIterator[int]:
    """Serve `app` with hypercorn on the running asyncio loop; yields the bound port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(1024)
    config = HypercornConfig()
    config.bind = [f"fd://{listener.fileno()}"]
    config.accesslog = None
    config.errorlog = logging.getLogger(f"{__name__}.server")
    config.include_server_header = False
    config.keep_alive_timeout = KEEP_ALIVE_S
    stop = asyncio.Event()
    task = asyncio.create_task(
        hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    )
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(OSError):  # hypercorn closes the descriptor it was given
            listener.close()
