"""The driver's end of the payment stream (`pay_stream`): the wallet's WebSocket to the CSMS.

Runs under trio and asyncio alike (anyio streams): the WebSocket is websockets' sans-I/O
`ClientProtocol`, fed from and flushed to an anyio TCP stream. One `pay()` sends the invoice
the wallet computed from the car's meter with the proof that pays it (`DriverWallet.pay_seen`)
and reads one answer:

* a receipt: checked (`DriverWallet.check`: the CPO's signature, the amounts, the units no more
  than the car measured) and returned;
* the CSMS's own invoice (it has not metered that far yet, or bills otherwise): checked against
  the car's meter (`OverchargeError` for an overbilling CPO); the payment stays pending and is
  sent again on the next `pay()`; returns None;
* `stale_proof` (409): the CSMS already holds this proof, the newest the wallet signed, so it
  took the payment and lost the answer (it restarted since; a live session's last answer is
  kept only in memory): counted as paid without a receipt (`DriverWallet.taken_unreceipted`),
  the next `pay()` goes on from it; returns None;
* any other refusal: `PaymentRejectedError` with the back office's status and code.

Every answer is bounded (`MAX_ANSWER`) and each `pay()` by `timeout_s`; a closed or broken
connection raises `ConnectionClosedError`, and so does every `pay()` after one whose answer
never came or could not be read (the pending payment is sent again on a new stream; if the
CSMS had taken it, it answers with the same receipt: `ChargePayments.pay`; after a restart,
`stale_proof`, below).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final, Self

import anyio
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidURI
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from ..errors import ConnectionClosedError, PaymentRejectedError
from ..payperuse.metering import Invoice
from .pay_frames import MAX_ANSWER, PAY_PATH, PAY_SUBPROTOCOL, Refusal, decode_answer, encode_pay

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyio.abc import ByteStream
    from websockets.protocol import Event

    from ..payperuse.receipt import Receipt
    from .payment import DriverWallet

READ_SIZE: Final = 4096
STALE_PROOF: Final = "stale_proof"
"""The refusal code of a proof the CSMS already holds (`payperuse.paywall`'s table)."""
TIMEOUT_S: Final = 10.0


class PaymentStream:
    """One driver's open payment stream (see the module docstring); `connect` opens it."""

    __slots__ = ("_broken", "_protocol", "_stream", "timeout_s", "wallet")

    def __init__(
        self, stream: ByteStream, protocol: ClientProtocol, wallet: DriverWallet, timeout_s: float
    ) -> None:
        self._stream = stream
        self._protocol = protocol
        self.wallet = wallet
        self.timeout_s = timeout_s
        self._broken = False

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, csms: str, token: str, wallet: DriverWallet, timeout_s: float = TIMEOUT_S
    ) -> AsyncIterator[Self]:
        """Open `ws://<host:port of csms>/pay/<token>` and yield the stream; closed on exit."""
        try:
            where = parse_uri(csms)
        except InvalidURI as e:
            raise ConnectionClosedError(f"not a ws:// URL: {e}") from None
        if where.secure:
            raise ConnectionClosedError("wss:// is not supported by this client")
        uri = parse_uri(f"ws://{where.host}:{where.port}{PAY_PATH}{token}")
        protocol = ClientProtocol(uri, subprotocols=[PAY_SUBPROTOCOL], max_size=MAX_ANSWER)
        try:
            with anyio.fail_after(timeout_s):
                stream = await anyio.connect_tcp(uri.host, uri.port)
        except (OSError, TimeoutError) as e:
            raise ConnectionClosedError(f"cannot reach the CSMS: {e!r}") from None
        async with stream:
            paying = cls(stream, protocol, wallet, timeout_s)
            with anyio.fail_after(timeout_s):
                await paying._handshake()
            try:
                yield paying
            finally:
                with contextlib.suppress(Exception), anyio.move_on_after(1):
                    protocol.send_close(1000)
                    await paying._flush()

    async def _handshake(self) -> None:
        self._protocol.send_request(self._protocol.connect())
        await self._flush()
        while True:
            for event in await self._events():
                if isinstance(event, Response):
                    if self._protocol.handshake_exc is not None:
                        error = self._protocol.handshake_exc
                        raise ConnectionClosedError(f"the CSMS refused the stream: {error}")
                    return

    async def _flush(self) -> None:
        for data in self._protocol.data_to_send():
            if data:
                await self._stream.send(data)

    async def _events(self) -> list[Event]:
        """The next events the connection gives (reading as needed)."""
        while True:
            try:
                data = await self._stream.receive(READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                self._protocol.receive_eof()
                raise ConnectionClosedError("the CSMS closed the payment stream") from None
            self._protocol.receive_data(data)
            await self._flush()  # pongs and close answers
            events = self._protocol.events_received()
            if events:
                return events
            if self._protocol.close_expected() or self._protocol.parser_exc is not None:
                raise ConnectionClosedError(f"the payment stream broke: {self._close_reason()}")

    def _close_reason(self) -> str:
        close = self._protocol.close_rcvd
        if close is not None:
            return f"{close.code} {close.reason}"
        return repr(self._protocol.parser_exc)

    async def _answer(self) -> bytes:
        while True:
            for event in await self._events():
                if isinstance(event, Frame):
                    if event.opcode is Opcode.BINARY and event.fin:
                        return bytes(event.data)
                    if event.opcode is Opcode.CLOSE:
                        raise ConnectionClosedError(f"the CSMS closed: {self._close_reason()}")
                    if event.opcode not in (Opcode.PING, Opcode.PONG):
                        raise ConnectionClosedError(f"an unexpected {event.opcode.name} frame")

    async def pay(self) -> Receipt | None:
        """Pay what the car's meter shows is due (see the module docstring): the checked
        receipt, or None when nothing was due or the CSMS answered with its own invoice."""
        due = self.wallet.pay_seen()
        if due is None:
            return None
        invoice, proof = due
        if self._broken:
            raise ConnectionClosedError("an earlier answer never came: open a new stream")
        self._broken = True  # until the answer is read: a late one would answer the next frame
        with anyio.fail_after(self.timeout_s):
            self._protocol.send_binary(encode_pay(invoice, proof))
            await self._flush()
            answer = decode_answer(await self._answer(), invoice.channel_id)
        self._broken = False
        if isinstance(answer, Invoice):
            self.wallet.disputed(answer)
            return None
        if isinstance(answer, Refusal):
            if answer.code == STALE_PROOF:  # the CSMS holds our pending proof: taken
                self.wallet.taken_unreceipted()
                return None
            raise PaymentRejectedError(answer.status, answer.code, answer.message)
        self.wallet.check(answer)
        return answer
