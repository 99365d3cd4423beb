"""The payment stream: a driver's wallet pays its session over one WebSocket on the CSMS's OCPP
server (`serve_csms(..., pay=payment_stream(payments))`), one binary frame each way per payment.

The driver's app opens `ws://<csms>/pay/<id token>` once (subprotocol `PAY_SUBPROTOCOL`, no Basic
auth: a payment is only taken with a proof signed by the payer of the channel the token is bound
to) and, every time it wants to pay, sends the invoice it computed from the car's own meter and
the proof that pays it; the CSMS answers with the receipt, or with its own invoice if it bills
otherwise (the pay-per-use `402`), or with a refusal. The frames are `pay_frames`' (shared with
the driver's end, `pay_client`).

A PAY frame is taken as `ChargePayments.pay(key, proof, invoice)` takes it: checked (PyNaCl),
saved durably (the channel store's commit) before the receipt is sent. Bounds: a frame longer
than `MAX_PAY_FRAME` or a text frame closes the connection (1009, 1003); a stream opens only
for an id token bound to a channel (else 1008); at most `MAX_STREAMS` streams are open at once
and `MAX_PER_TOKEN` for one id token (more are closed with 1013); a stream with no frame for
`IDLE_S` is closed (1000); and one frame is answered at a time per stream. This is the one way
to pay a live session (the back office serves its bill, the binding and prepayment).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from websockets.exceptions import ConnectionClosed

from tangle.errors import TangleError

from ..errors import ChannelFrameError, PaymentError
from ..payperuse.metering import Invoice
from ..payperuse.paywall import refusal_of
from .errors import InvoiceDisagreesError, TokenBindingError, UnknownSessionError
from .pay_frames import (
    MAX_PAY_FRAME,
    PAY_PATH,
    PAY_SUBPROTOCOL,
    Refusal,
    decode_pay,
    encode_answer,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from websockets.asyncio.server import ServerConnection

    from ..payperuse.receipt import Receipt
    from .payment import ChargePayments

MAX_TOKEN: Final = 64
"""The longest id token in a stream's path (OCPP's idToken is at most 36 characters)."""
MAX_STREAMS: Final = 8192
MAX_PER_TOKEN: Final = 4
"""Streams open at once for one id token (a driver's app reconnecting, a second phone); not per
remote host, since a CSMS behind a proxy sees every driver from one address."""
IDLE_S: Final = 900.0
"""A stream that sends no payment for this long is closed (a session pays every interval)."""


def token_of(path: str) -> str | None:
    """The id token of a stream's path `/pay/<token>`, or None if it is not one."""
    if not path.startswith(PAY_PATH):
        return None
    token = path[len(PAY_PATH) :]
    if not 0 < len(token) <= MAX_TOKEN or not token.isascii() or not token.isprintable():
        return None
    if "/" in token or "?" in token:
        return None
    return token


async def take(payments: ChargePayments, token: str, data: bytes) -> Receipt | Invoice | Refusal:
    """The answer to one PAY frame for the session of `token` (see the module docstring)."""
    try:
        frame = decode_pay(data)
    except ChannelFrameError as e:
        return Refusal(status=400, code="malformed_payment", message=str(e))
    try:
        key = payments.csms.by_token.get(token)
        if key is None:
            raise UnknownSessionError((token, "no session"))
        billed = Invoice(
            channel_id=frame.signed.proof.channel_id,
            units=frame.units,
            amount=frame.amount,
            paid=0,
        )
        return await payments.pay(key, frame.signed, billed)
    except InvoiceDisagreesError as e:
        channel = frame.signed.proof.channel_id
        return Invoice(channel_id=channel, units=e.units, amount=e.amount, paid=e.paid)
    except UnknownSessionError as e:
        return Refusal(status=404, code="not_found", message=str(e))
    except TokenBindingError as e:
        return Refusal(status=403, code="token_binding", message=str(e))
    except PaymentError as e:
        status, code = refusal_of(e)
        return Refusal(status=status, code=code, message=str(e))
    except TangleError as e:
        return Refusal(status=400, code="bad_request", message=str(e))


def payment_stream(
    payments: ChargePayments, *, idle_s: float = IDLE_S
) -> Callable[[ServerConnection], Awaitable[None]]:
    """The handler of `/pay/<token>` connections for `serve_csms(..., pay=...)`."""
    open_streams: dict[str, int] = {}  # id token -> its open streams
    total = 0

    async def handle(connection: ServerConnection) -> None:
        nonlocal total
        request = connection.request
        token = token_of(request.path if request is not None else "")
        if token is None or connection.subprotocol != PAY_SUBPROTOCOL:
            await connection.close(1008, f"not a /pay/<id token> path with {PAY_SUBPROTOCOL}")
            return
        held = open_streams.get(token, 0)
        if held >= MAX_PER_TOKEN or total >= MAX_STREAMS:
            await connection.close(1013, "too many payment streams")
            return
        open_streams[token] = held + 1
        total += 1
        try:
            if await payments.csms.store.token(token) is None:
                await connection.close(1008, "no channel is bound to this id token")
                return
            while True:
                async with asyncio.timeout(idle_s):
                    message = await connection.recv()
                if isinstance(message, str):
                    await connection.close(1003, "binary frames only")
                    return
                if len(message) > MAX_PAY_FRAME:
                    await connection.close(1009, f"a frame over {MAX_PAY_FRAME} bytes")
                    return
                await connection.send(encode_answer(await take(payments, token, message)))
        except TimeoutError:
            await connection.close(1000, f"no payment for {idle_s:g} s")
        except ConnectionClosed:  # the driver's app went away; a payment taken stays taken
            pass
        finally:
            total -= 1
            left = open_streams[token] - 1
            if left:
                open_streams[token] = left
            else:
                del open_streams[token]

    return handle
