"""The payment stream (`payments.charging.pay_stream`, `pay_client`): a driver's wallet paying
its live session over a WebSocket on the CSMS's OCPP server, with real `ocpp` chargers, sockets
on loopback, the real channel cores, cashier and sqlite stores; and hostile frames from either
end (forged and replayed proofs, a driver invoice beyond the CSMS's meter, an overbilling CSMS,
oversize, text and malformed frames)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest
from anyio.abc import SocketAttribute
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from payments.channels.core import ChannelTerms, PayerChannel
from payments.channels.state import Role
from payments.charging.channel_rows import CsmsChannels
from payments.charging.pay_client import PaymentStream
from payments.charging.pay_frames import (
    MAX_PAY_FRAME,
    PAY_SUBPROTOCOL,
    Answer,
    Refusal,
    decode_answer,
    decode_pay,
    encode_answer,
    encode_pay,
)
from payments.charging.pay_stream import MAX_PER_TOKEN, payment_stream, token_of
from payments.charging.payment import DriverWallet
from payments.charging.simulator import connect_charger
from payments.charging.store import CsmsStore
from payments.errors import (
    ChannelFrameError,
    ConnectionClosedError,
    OverchargeError,
    PaymentRejectedError,
)
from payments.payperuse.metering import Invoice
from payments.payperuse.receipt import ReceiptKind, issue_receipt
from tangle.protocol.ids import ChannelId
from tests.payments.charging.test_payment import (
    CPO,
    DRIVER,
    NET,
    PASSWORD,
    TARIFF,
    World,
    _meter,
    _start,
    run,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from anyio.abc import ByteStream


def test_a_driver_pays_each_interval_with_one_frame_and_gets_checked_receipts(
    tmp_path: Path,
) -> None:
    async def body(world: World) -> None:
        async with connect_charger(world.url, "CP201", PASSWORD, "2.0.1") as charger:
            wallet = await world.driver(("CP201", "T1"))
            await world.bind(wallet, "CARD-1")
            key = await _start(charger, "CARD-1", 0)
            async with PaymentStream.connect(world.url, "CARD-1", wallet) as stream:
                assert await stream.pay() is None  # nothing due yet
                for i in range(1, 5):
                    await _meter(charger, key, i, 500 * i)
                    wallet.observe(500 * i, 0)
                    receipt = await stream.pay()
                    assert receipt is not None
                    assert receipt.kind is ReceiptKind.METERED
                    assert (receipt.units, receipt.cumulative_amount) == (500 * i, 150 * i)
            session = world.csms.book.sessions[key]
            assert session.paid == wallet.meter.paid == TARIFF.cost(2_000) == 600
            binding = await world.csms.store.binding(key)  # durable before the receipt
            assert binding is not None
            assert binding.paid == 600
        async with CsmsStore(tmp_path / "csms.sqlite") as again:  # a second reader
            record = await CsmsChannels(again).load(wallet.channel.terms.channel_id, Role.PAYEE)
        assert record is not None
        assert record.latest is not None
        assert record.latest.proof.payee_balance == 600

    run(tmp_path, body)


def test_an_invoice_beyond_the_csms_meter_is_answered_with_its_own_and_paid_later(
    tmp_path: Path,
) -> None:
    async def body(world: World) -> None:
        async with connect_charger(world.url, "CP201", PASSWORD, "2.0.1") as charger:
            wallet = await world.driver(("CP201", "T1"))
            await world.bind(wallet, "CARD-2")
            key = await _start(charger, "CARD-2", 0)
            async with PaymentStream.connect(world.url, "CARD-2", wallet) as stream:
                await _meter(charger, key, 1, 1_000)
                wallet.observe(1_200, 0)  # the car saw more than the station reported
                assert await stream.pay() is None  # 402: the CSMS's own invoice
                assert world.csms.book.sessions[key].paid == 0  # nothing taken
                assert wallet.pending is not None
                await _meter(charger, key, 2, 1_300)  # the station catches up
                receipt = await stream.pay()  # the pending payment, sent again
                assert receipt is not None
                assert receipt.units == 1_200
                assert wallet.pending is None
                assert world.csms.book.sessions[key].paid == TARIFF.cost(1_200) == 360

    run(tmp_path, body)


def test_forged_replayed_malformed_and_oversize_frames_are_refused_by_name(
    tmp_path: Path,
) -> None:
    async def body(world: World) -> None:
        async with connect_charger(world.url, "CP201", PASSWORD, "2.0.1") as charger:
            wallet = await world.driver(("CP201", "T1"))
            await world.bind(wallet, "CARD-3")
            key = await _start(charger, "CARD-3", 0)
            await _meter(charger, key, 1, 1_000)
            wallet.observe(1_000, 0)
            due = wallet.pay_seen()
            assert due is not None
            invoice, proof = due
            frame = encode_pay(invoice, proof)
            forged = bytearray(frame)
            forged[-2] ^= 1  # a bit of the payer's signature
            pay_url = world.url.replace("/ocpp", "/pay/CARD-3")
            async with connect(pay_url, compression=None, subprotocols=[PAY_SUBPROTOCOL]) as ws:
                await ws.send(bytes(forged))
                refused = decode_answer(bytes(await ws.recv()), invoice.channel_id)
                assert isinstance(refused, Refusal)
                assert (refused.status, refused.code) == (403, "invalid_proof")
                assert world.csms.book.sessions[key].paid == 0
                await ws.send(frame)
                taken = decode_answer(bytes(await ws.recv()), invoice.channel_id)
                assert not isinstance(taken, Refusal | Invoice)
                wallet.check(taken)
                await ws.send(frame)  # the last payment again (its answer lost): same receipt
                assert decode_answer(bytes(await ws.recv()), invoice.channel_id) == taken
                assert world.csms.book.sessions[key].paid == 300  # taken once
                await _meter(charger, key, 2, 2_000)
                wallet.observe(2_000, 0)
                second = wallet.pay_seen()
                assert second is not None
                await ws.send(encode_pay(*second))
                later = decode_answer(bytes(await ws.recv()), invoice.channel_id)
                assert not isinstance(later, Refusal | Invoice)
                wallet.check(later)
                forged_last = bytearray(encode_pay(*second))
                forged_last[-2] ^= 1
                for old in (frame, bytes(forged_last)):  # an older payment, a forged last one
                    await ws.send(old)
                    replay = decode_answer(bytes(await ws.recv()), invoice.channel_id)
                    assert isinstance(replay, Refusal)
                    assert replay.code == "stale_proof"
                assert world.csms.book.sessions[key].paid == 600
                await ws.send(b"\x01" + bytes(20))
                bad = decode_answer(bytes(await ws.recv()), invoice.channel_id)
                assert isinstance(bad, Refusal)
                assert bad.code == "malformed_payment"
                await ws.send(bytes(MAX_PAY_FRAME + 1))
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1009
            assert world.csms.book.sessions[key].paid == 600
            async with connect(pay_url, compression=None, subprotocols=[PAY_SUBPROTOCOL]) as ws:
                await ws.send("text")
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1003
            unknown = world.url.replace("/ocpp", "/pay/NOBODY")  # no channel bound to it
            async with connect(unknown, compression=None, subprotocols=[PAY_SUBPROTOCOL]) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1008
            async with connect(
                world.url.replace("/ocpp", "/pay/"),
                compression=None,
                subprotocols=[PAY_SUBPROTOCOL],
            ) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1008

    run(tmp_path, body)


@contextlib.asynccontextmanager
async def _hostile_csms(answer: bytes) -> AsyncIterator[str]:
    """A CSMS that answers every frame with `answer`."""

    async def handle(connection: ServerConnection) -> None:
        async for _ in connection:
            await connection.send(answer)

    async with serve(handle, "127.0.0.1", 0, subprotocols=[PAY_SUBPROTOCOL]) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ocpp"


@contextlib.asynccontextmanager
async def _silent_csms() -> AsyncIterator[str]:
    """A CSMS that accepts the stream and never answers."""

    async def handle(connection: ServerConnection) -> None:
        async for _ in connection:
            pass

    async with serve(handle, "127.0.0.1", 0, subprotocols=[PAY_SUBPROTOCOL]) as server:
        yield f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/ocpp"


def test_the_wallet_refuses_an_overbilling_csms(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        wallet = await world.driver(("CP201", "T1"))
        channel = wallet.channel.terms.channel_id
        wallet.observe(1_000, 0)
        over = encode_answer(Invoice(channel_id=channel, units=1_500, amount=450, paid=0))
        async with _hostile_csms(over) as url, PaymentStream.connect(url, "T", wallet) as stream:
            with pytest.raises(OverchargeError):
                await stream.pay()
        fake = _receipt_for(wallet, units=1_800)  # signed by the CPO, more than the car saw
        async with _hostile_csms(fake) as url, PaymentStream.connect(url, "T", wallet) as stream:
            with pytest.raises(OverchargeError):
                await stream.pay()
        refusal = encode_answer(Refusal(status=503, code="store_unavailable", message="x"))
        async with (
            _hostile_csms(refusal) as url,
            PaymentStream.connect(url, "T", wallet) as stream,
        ):
            with pytest.raises(PaymentRejectedError) as rejected:
                await stream.pay()
            assert rejected.value.code == "store_unavailable"
        async with _hostile_csms(b"\x09junk") as url, PaymentStream.connect(url, "T", wallet) as s:
            with pytest.raises(ChannelFrameError):
                await s.pay()
        assert wallet.meter.paid == 300
        assert wallet.pending is not None

    run(tmp_path, body)


def _receipt_for(wallet: DriverWallet, units: int) -> bytes:
    assert wallet.pending is not None
    proof = wallet.pending[1].proof
    receipt = issue_receipt(
        CPO,
        kind=ReceiptKind.METERED,
        network_id=proof.network_id,
        channel_id=proof.channel_id,
        sequence=proof.sequence,
        cumulative_amount=proof.payee_balance,
        credited=wallet.pending[0].amount,
        units=units,
        tag=wallet.meter.session,
    )
    return encode_answer(receipt)


def test_a_closed_or_unreachable_csms_is_a_named_error(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        wallet = await world.driver(("CP201", "T1"))
        wallet.observe(1_000, 0)
        async with _silent_csms() as url, PaymentStream.connect(url, "T", wallet, 0.2) as stream:
            with pytest.raises(TimeoutError):
                await stream.pay()
            with pytest.raises(ConnectionClosedError):  # a late answer would be misread
                await stream.pay()
        assert wallet.pending is not None
        async with _hostile_csms(b"") as url:
            port = url.split(":")[2].split("/")[0]
        with pytest.raises(ConnectionClosedError):  # nobody listens there any more
            async with PaymentStream.connect(f"ws://127.0.0.1:{port}/ocpp", "T", wallet):
                pass
        with pytest.raises(ConnectionClosedError):
            async with PaymentStream.connect("http://x", "T", wallet):
                pass

    run(tmp_path, body)


def test_frames_are_canonical() -> None:
    channel = ChannelId(bytes(range(32)))
    invoice = Invoice(channel_id=channel, units=7, amount=3, paid=1)
    assert decode_answer(encode_answer(invoice), channel) == invoice
    refusal = Refusal(status=409, code="stale_proof", message="sequence 3 seen")
    assert decode_answer(encode_answer(refusal), channel) == refusal
    for bad in (b"", b"\x02" + bytes(23), b"\x02" + bytes(25), b"\x03\x01", b"\x04"):
        with pytest.raises(ChannelFrameError):
            decode_answer(bad, channel)
    with pytest.raises(ChannelFrameError):
        decode_pay(b"\x02" + bytes(16 + 121))
    assert token_of("/pay/CARD-1") == "CARD-1"
    for path in ("/pay/", "/pay/a/b", "/ocpp/CP1", "/pay/" + "x" * 65, "/pay/a?b=1", "/pay/\x00"):
        assert token_of(path) is None
    assert encode_answer(refusal)[0] == Answer.REFUSED
    long = Refusal(status=400, code="bad_request", message="é" * 200)  # cut on a whole char
    cut = decode_answer(encode_answer(long), channel)
    assert isinstance(cut, Refusal)
    assert cut.message == "é" * 120


async def _answer_every_frame(stream: ByteStream, answer: Callable[[], bytes]) -> None:
    """A CSMS's end of one stream under trio: websockets' sans-I/O server over an anyio stream."""
    protocol = ServerProtocol(subprotocols=[PAY_SUBPROTOCOL])
    async with stream:
        for _ in range(100):
            try:
                protocol.receive_data(await stream.receive())
            except anyio.EndOfStream:
                return
            for event in protocol.events_received():
                if isinstance(event, Request):
                    protocol.send_response(protocol.accept(event))
                elif isinstance(event, Frame) and event.opcode is Opcode.BINARY:
                    protocol.send_binary(answer())
            for data in protocol.data_to_send():
                if data:
                    await stream.send(data)


async def test_the_driver_side_runs_under_trio() -> None:
    terms = ChannelTerms(
        network_id=NET,
        channel_id=ChannelId(bytes(32)),
        payer=DRIVER.public_key,
        payee=CPO.public_key,
        deposit=10_000,
        bidirectional=False,
        challenge_period=10,
        expiry=10**6,
    )
    wallet = DriverWallet(PayerChannel(terms, DRIVER), TARIFF, CPO.public_key, ("CP201", "T1"))
    wallet.observe(1_000, 0)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(
            listener.serve, lambda s: _answer_every_frame(s, lambda: _receipt_for(wallet, 1_000))
        )
        async with PaymentStream.connect(f"ws://127.0.0.1:{port}/ocpp", "T", wallet) as stream:
            receipt = await stream.pay()
        assert receipt is not None
        assert receipt.units == 1_000
        assert wallet.meter.paid == 300
        assert wallet.pending is None
        tasks.cancel_scope.cancel()


def test_streams_are_bounded_per_token_and_an_idle_one_is_closed(tmp_path: Path) -> None:
    """One id token holds at most `MAX_PER_TOKEN` streams (the next is closed with 1013, and a
    slot frees when one closes); a stream that sends nothing for `idle_s` is closed (1000)."""

    async def body(world: World) -> None:
        wallet = await world.driver(("CP201", "T1"))
        await world.bind(wallet, "CARD-1")
        handler = payment_stream(world.payments, idle_s=0.5)
        async with serve(handler, "127.0.0.1", 0, subprotocols=[PAY_SUBPROTOCOL]) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            url = f"ws://127.0.0.1:{port}/pay/CARD-1"
            async with contextlib.AsyncExitStack() as stack:
                held = [
                    await stack.enter_async_context(
                        connect(url, compression=None, subprotocols=[PAY_SUBPROTOCOL])
                    )
                    for _ in range(MAX_PER_TOKEN)
                ]
                async with connect(url, compression=None, subprotocols=[PAY_SUBPROTOCOL]) as ws:
                    with pytest.raises(ConnectionClosed) as closed:
                        await ws.recv()
                    assert closed.value.rcvd is not None
                    assert closed.value.rcvd.code == 1013
                await held[0].close()
                await asyncio.sleep(0.05)  # the server's handler ends and frees the slot
                async with connect(url, compression=None, subprotocols=[PAY_SUBPROTOCOL]) as ws:
                    began = asyncio.get_running_loop().time()
                    with pytest.raises(ConnectionClosed) as closed:
                        await ws.recv()  # nothing sent: closed once idle
                    assert closed.value.rcvd is not None
                    assert closed.value.rcvd.code == 1000
                    assert asyncio.get_running_loop().time() - began >= 0.4

    run(tmp_path, body)


def test_the_drivers_end_does_not_load_the_csms_end() -> None:
    """`pay_client` shares only the frames (`pay_frames`) with the CSMS: importing it loads
    neither `pay_stream` (the CSMS's end, on the pay-per-use paywall) nor websockets' server.
    (Starlette and httpx are still loaded by the `payments` package root's re-exports.)"""
    server = ("payments.charging.pay_stream", "websockets.asyncio.server", "payments.charging.csms")
    code = (
        "import sys, payments.charging.pay_client; "
        f"print(','.join(m for m in {server!r} if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[3]
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    ).stdout.strip()
    assert loaded == ""


def test_a_payment_whose_receipt_the_restarted_csms_lost_counts_as_paid(tmp_path: Path) -> None:
    """Issue #13: the CSMS took a payment, its answer was lost and the CSMS forgot the receipt
    (a restart: `_last` is memory only), so the re-sent proof is refused as stale. The wallet
    counts it as paid without a receipt and the next payment is taken and receipted."""

    async def body(world: World) -> None:
        async with connect_charger(world.url, "CP201", PASSWORD, "2.0.1") as charger:
            wallet = await world.driver(("CP201", "T1"))
            await world.bind(wallet, "CARD-R")
            key = await _start(charger, "CARD-R", 0)
            await _meter(charger, key, 1, 1_000)
            wallet.observe(1_000, 0)
            due = wallet.pay_seen()
            assert due is not None
            pay_url = world.url.replace("/ocpp", "/pay/CARD-R")
            async with connect(pay_url, compression=None, subprotocols=[PAY_SUBPROTOCOL]) as ws:
                await ws.send(encode_pay(*due))  # taken; the driver never reads the answer
                await ws.recv()
            assert world.csms.book.sessions[key].paid == 300
            world.payments._last.clear()  # the CSMS restarted: the receipt is forgotten
            async with PaymentStream.connect(world.url, "CARD-R", wallet) as stream:
                assert await stream.pay() is None  # stale: the CSMS holds it
                assert wallet.pending is None
                assert wallet.meter.paid == 300
                await _meter(charger, key, 2, 2_000)
                wallet.observe(2_000, 0)
                receipt = await stream.pay()
                assert receipt is not None
                assert (receipt.units, receipt.cumulative_amount, receipt.credited) == (
                    2_000,
                    600,
                    300,
                )
            assert world.csms.book.sessions[key].paid == wallet.meter.paid == 600

    run(tmp_path, body)
