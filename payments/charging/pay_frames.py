"""The payment stream's frames (`pay_stream` the CSMS's end, `pay_client` the driver's), shared
by both ends: the PAY frame and its answers (little-endian, strict: no trailing bytes).

```
driver -> CSMS   PAY      u8 1 | u64 units | u64 amount | signed proof (121 or 185 bytes,
                          payments.channels.wire.encode_signed_proof)
CSMS -> driver   RECEIPT  u8 1 | receipt (169 bytes, payments.payperuse.receipt)
                 INVOICE  u8 2 | u64 units | u64 amount | u64 paid   the CSMS's own bill (402)
                 REFUSED  u8 3 | u16 status | u8 n | code (n ASCII bytes) | u16 m | message
                          (m UTF-8 bytes, m <= 240): the back office's HTTP status and code
```
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Final

from websockets.typing import Subprotocol

from ..channels.wire import decode_signed_proof, encode_signed_proof
from ..errors import ChannelFrameError, PaymentError
from ..payperuse.metering import Invoice
from ..payperuse.receipt import RECEIPT_SIZE, decode_receipt, encode_receipt

if TYPE_CHECKING:
    from tangle.protocol.channel import SignedBalanceProof
    from tangle.protocol.ids import ChannelId

    from ..payperuse.receipt import Receipt

PAY_PATH: Final = "/pay/"
PAY_SUBPROTOCOL: Final = Subprotocol("tanglepay.charging.pay.v1")
MAX_PAY_FRAME: Final = 1 + 8 + 8 + 185
MAX_ANSWER: Final = 1 + 2 + 1 + 32 + 2 + 240
"""The largest answer: a refusal with its longest code and message."""
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
