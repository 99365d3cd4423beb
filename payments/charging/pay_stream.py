"""The payment stream: a driver's wallet pays its session over one WebSocket on the CSMS's OCPP
server (`serve_csms(..., pay=payment_stream(payments))`), one binary frame each way per payment.

The driver's app opens `ws://<csms>/pay/<id token>` once (subprotocol `PAY_SUBPROTOCOL`, no Basic
auth: a payment is only taken with a proof signed by the payer of the channel the token is bound
to) and, every time it wants to pay, sends the invoice it computed from the car's own meter and
the proof that pays it; the CSMS answers with the receipt, or with its own invoice if it bills
otherwise (the pay-per-use `402`), or with a refusal. Frames (little-endian, strict: no trailing
bytes):

```
driver -> CSMS   PAY      u8 1 | u64 units | u64 amount | signed proof (121 or 185 bytes,
                          payments.channels.wire.encode_signed_proof)
CSMS -> driver   RECEIPT  u8 1 | receipt (169 bytes, payments.payperuse.receipt)
                 INVOICE  u8 2 | u64 units | u64 amount | u64 paid   the CSMS's own bill (402)
                 REFUSED  u8 3 | u16 status | u8 n | code (n ASCII bytes) | u16 m | message
                          (m UTF-8 bytes, m <= 240): the back office's HTTP status and code
```

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
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Final

from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tangle.errors import TangleError

from ..channels.wire import decode_signed_proof, encode_signed_proof
from ..errors import ChannelFrameError, PaymentError
from ..payperuse.metering import Invoice
from ..payperuse.paywall import refusal_of
from ..payperuse.receipt import RECEIPT_SIZE, decode_receipt, encode_receipt
from .errors import InvoiceDisagreesError, TokenBindingError, UnknownSessionError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from websockets.asyncio.server import ServerConnection

    from tangle.protocol.channel import SignedBalanceProof
    from tangle.protocol.ids import ChannelId

    from ..payperuse.receipt import Receipt
    from .payment import ChargePayments

PAY_PATH: Final = "/pay/"
PAY_SUBPROTOCOL: Final = Subprotocol("tanglepay.charging.pay.v1")
MAX_TOKEN: Final = 64
"""The longest id token in a stream's path (OCPP's idToken is at most 36 characters)."""
MAX_PAY_FRAME: Final = 1 + 8 + 8 + 185
MAX_ANSWER: Final = 1 + 2 + 1 + 32 + 2 + 240
"""The largest answer: a refusal with its longest code and message."""
MAX_STREAMS: Final = 8192
MAX_PER_TOKEN: Final = 4
"""Streams open at once for one id token (a driver's app reconnecting, a second phone); not per
remote host, since a CSMS behind a proxy sees every driver from one address."""
IDLE_S: Final = 900.0
"""A stream that sends no payment for this long is closed (a session pays every interval)."""
_AMOUNTS: Final = struct.Struct("<QQ")
_INVOICE: Final = struct.Struct("<QQQ")
_STATUS: Final = struct.Struct("<HB")


class Answer(IntEnum):
    """The first byte of the CSMS's frames (the driver's only frame is PAY, `PAY`)."""

    RECEIPT = 1
    INVOICE = 2
    REFUSED = 3


PAY: Final = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """A payment the CSMS refused: the back office's HTTP status and error code."""

    status: int
    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PayFrame:
    """A driver's payment: the invoice it computed and the proof that pays it."""

    units: int
    amount: int
    signed: SignedBalanceProof


def encode_pay(invoice: Invoice, signed: SignedBalanceProof) -> bytes:
    """The PAY frame of `signed` with the invoice it pays."""
    return (
        bytes((PAY,)) + _AMOUNTS.pack(invoice.units, invoice.amount) + (encode_signed_proof(signed))
    )


def decode_pay(data: bytes) -> PayFrame:
    """Read a PAY frame; `ChannelFrameError` unless `data` is exactly one."""
    if len(data) > MAX_PAY_FRAME or len(data) < 1 + _AMOUNTS.size:
        raise ChannelFrameError("pay", f"{len(data)} bytes")
    if data[0] != PAY:
        raise ChannelFrameError("pay", f"type {data[0]}, not PAY")
    units, amount = _AMOUNTS.unpack_from(data, 1)
    return PayFrame(units=units, amount=amount, signed=decode_signed_proof(data[17:]))


def encode_answer(answer: Receipt | Invoice | Refusal) -> bytes:
    """The frame answering a PAY frame."""
    if isinstance(answer, Invoice):
        return bytes((Answer.INVOICE,)) + _INVOICE.pack(answer.units, answer.amount, answer.paid)
    if isinstance(answer, Refusal):
        code = answer.code.encode("ascii")[:32]
        message = answer.message.encode()[:240].decode(errors="ignore").encode()  # whole chars
        return b"".join(
            (
                bytes((Answer.REFUSED,)),
                _STATUS.pack(answer.status, len(code)),
                code,
                len(message).to_bytes(2, "little"),
                message,
            )
        )
    return bytes((Answer.RECEIPT,)) + encode_receipt(answer)


def decode_answer(data: bytes, channel_id: ChannelId) -> Receipt | Invoice | Refusal:
    """Read the CSMS's answer (an INVOICE is for `channel_id`, the stream's); anything but one
    canonical answer raises `ChannelFrameError` (or `MalformedReceiptError`)."""
    if not data or len(data) > MAX_ANSWER:
        raise ChannelFrameError("answer", f"{len(data)} bytes")
    kind, body = data[0], data[1:]
    if kind == Answer.RECEIPT and len(body) == RECEIPT_SIZE:
        return decode_receipt(body)
    if kind == Answer.INVOICE and len(body) == _INVOICE.size:
        units, amount, paid = _INVOICE.unpack(body)
        try:
            return Invoice(channel_id=channel_id, units=units, amount=amount, paid=paid)
        except PaymentError as e:
            raise ChannelFrameError("answer", str(e)) from None
    if kind == Answer.REFUSED and len(body) >= _STATUS.size:
        status, n = _STATUS.unpack_from(body)
        rest = body[_STATUS.size :]
        if len(rest) >= n + 2:
            m = int.from_bytes(rest[n : n + 2], "little")
            if len(rest) == n + 2 + m:
                try:
                    code, message = rest[:n].decode("ascii"), rest[n + 2 :].decode()
                except UnicodeDecodeError:
                    raise ChannelFrameError("answer", "a refusal not in ASCII/UTF-8") from None
                return Refusal(status=status, code=code, message=message)
    raise ChannelFrameError("answer", f"type {kind} with {len(body)} bytes")


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
