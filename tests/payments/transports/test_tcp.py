"""The TCP and HTTP transports on loopback, and SIGKILLed payee and payer processes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import trio

from payments import (
    NEED_DATA,
    Ack,
    ChannelStore,
    Connection,
    CounterpartyRejectedError,
    Hello,
    HttpPayer,
    Pay,
    PayeeService,
    PayerChannel,
    Reject,
    RejectCode,
    Role,
    encode_signed_proof,
    open_payer,
    payee_app,
    post_proof,
    read_records,
    serve_payee,
)
from payments.channels.wire import MAX_BODY
from tangle.protocol.ids import ChannelId
from tests.payments_support import CHANNEL, MALLORY, NETWORK, PAYEE, PAYER, signed, terms

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ROOT = Path(__file__).resolve().parents[3]


async def _payee(tmp_path: Path, nursery: trio.Nursery) -> tuple[ChannelStore, int]:
    store = ChannelStore(tmp_path / "payee.db")
    service = PayeeService(store)
    await service.open_channel(terms())
    port: int = await nursery.start(serve_payee, service)
    return store, port


async def test_pipelined_payments_are_acknowledged_and_durable(tmp_path: Path) -> None:
    acks: list[int] = []
    async with trio.open_nursery() as nursery:
        _, port = await _payee(tmp_path, nursery)
        payer_store = ChannelStore(tmp_path / "payer.db")
        channel = PayerChannel(terms(), PAYER)
        async with open_payer(
            channel, "127.0.0.1", port, store=payer_store, window=16, on_ack=acks.append
        ) as client:
            for _ in range(500):
                sequence = await client.send(2)
                assert sequence - client.acked <= 16
            await client.pay(1)
        assert client.acked == 501
        assert acks == sorted(acks)
        nursery.cancel_scope.cancel()
    (payee,) = read_records(tmp_path / "payee.db")
    assert (payee.sequence, payee.latest and payee.latest.proof.payee_balance) == (501, 1001)
    (payer,) = read_records(tmp_path / "payer.db")
    assert payer.latest == payee.latest


async def test_lost_payer_database_is_recovered_from_the_payee(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        _, port = await _payee(tmp_path, nursery)
        async with open_payer(PayerChannel(terms(), PAYER), "127.0.0.1", port) as client:
            for _ in range(20):
                await client.send(5)
        fresh = PayerChannel(terms(), PAYER)
        async with open_payer(fresh, "127.0.0.1", port) as client:
            assert (fresh.sequence, fresh.payee_balance) == (20, 100)
            assert await client.pay(1) == 21
        nursery.cancel_scope.cancel()


async def test_payments_the_payee_missed_are_sent_again(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        store, port = await _payee(tmp_path, nursery)
        channel = PayerChannel(terms(), PAYER)
        for _ in range(7):
            channel.pay(3)  # signed, never delivered (the connection died)
        async with open_payer(channel, "127.0.0.1", port) as client:
            assert client.acked == 7
        (record,) = await store.records()
        assert (record.sequence, record.latest and record.latest.proof.payee_balance) == (7, 21)
        nursery.cancel_scope.cancel()


async def test_unknown_channel_is_rejected(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        _, port = await _payee(tmp_path, nursery)
        other = PayerChannel(terms(channel=ChannelId(b"\x44" * 32)), PAYER)
        with pytest.raises(CounterpartyRejectedError) as info:
            async with open_payer(other, "127.0.0.1", port):
                pass
        assert info.value.code == RejectCode.UNKNOWN_CHANNEL
        nursery.cancel_scope.cancel()


async def test_forged_payment_is_rejected_and_the_session_goes_on(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        store, port = await _payee(tmp_path, nursery)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        conn = Connection(Role.PAYER)

        async def events(count: int) -> list[object]:
            out: list[object] = []
            while len(out) < count:
                event = conn.next_event()
                if event is NEED_DATA:
                    conn.receive_data(await stream.receive_some(4096))
                else:
                    out.append(event)
            return out

        await stream.send_all(conn.send(Hello(network_id=NETWORK, channel_id=CHANNEL)))
        assert await events(1) == [Hello(network_id=NETWORK, channel_id=CHANNEL)]
        await stream.send_all(conn.send(Pay.of(signed(MALLORY, 1, 50))))
        (reject,) = await events(1)
        assert isinstance(reject, Reject)
        assert (reject.sequence, reject.code) == (1, RejectCode.INVALID_PROOF)
        await stream.send_all(conn.send(Pay.of(signed(PAYER, 1, 5))))
        assert await events(1) == [Ack(sequence=1)]
        await stream.aclose()
        (record,) = await store.records()
        assert record.sequence == 1
        nursery.cancel_scope.cancel()


async def test_http_transport(tmp_path: Path) -> None:
    async with ChannelStore(tmp_path / "payee.db") as store:
        service = PayeeService(store)
        await service.open_channel(terms())
        transport = httpx.ASGITransport(app=payee_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://payee") as client:
            payer = HttpPayer(PayerChannel(terms(), PAYER), client, "http://payee")
            receipts = [await payer.pay(amount) for amount in (4, 6)]
            assert [(r.sequence, r.payee_balance, r.credited) for r in receipts] == [
                (1, 4, 4),
                (2, 10, 6),
            ]
            refusals = [
                (payer.channel.latest, RejectCode.STALE_PROOF),  # a replay
                (signed(MALLORY, 3, 20), RejectCode.INVALID_PROOF),
                (signed(PAYER, 3, 20, network=NETWORK + 1), RejectCode.WRONG_CHANNEL),
                (signed(PAYER, 3, 20, channel=ChannelId(b"\x55" * 32)), RejectCode.UNKNOWN_CHANNEL),
            ]
            for proof, code in refusals:
                assert proof is not None
                with pytest.raises(CounterpartyRejectedError) as info:
                    await post_proof(client, "http://payee", proof)
                assert info.value.code == code
            wrong_path = await client.post(
                f"/channels/{'66' * 32}/payments", content=encode_signed_proof(signed(PAYER, 3, 20))
            )
            assert wrong_path.status_code == 400
            garbage = await client.post(f"/channels/{CHANNEL.hex()}/payments", content=b"\x01" * 9)
            assert garbage.json()["code"] == RejectCode.PROTOCOL
        (record,) = await store.records()
        assert record.sequence == 2


# -- processes killed with SIGKILL -----------------------------------------------------------


class _Child:
    """A `tests.payments_child` process whose stdout lines are collected by a thread."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.payments_child", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def values(self, prefix: str) -> list[int]:
        return [int(line.split()[1]) for line in list(self.lines) if line.startswith(prefix)]

    def wait_for(self, prefix: str, at_least: int, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.values(prefix)
            if found and found[-1] >= at_least:
                return found[-1]
            if self.process.poll() is not None:
                break
            time.sleep(0.01)
        err = self.process.stderr.read() if self.process.stderr and self.process.poll() else ""
        pytest.fail(f"no '{prefix}' >= {at_least} (last lines {self.lines[-3:]}): {err[-2000:]}")

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.close()

    def close(self) -> None:
        self.process.wait(30)
        self._reader.join(10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill()
        else:
            self.close()


def _start_payee(directory: Path) -> tuple[_Child, int]:
    (directory / "port").unlink(missing_ok=True)
    child = _Child("payee", str(directory))
    deadline = time.monotonic() + 60
    while not (directory / "port").exists():
        if child.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail("the payee did not start")
        time.sleep(0.01)
    return child, int((directory / "port").read_text())


def _wait_exit(child: _Child) -> None:
    child.process.wait(30)
    child._reader.join(10)


@pytest.mark.slow
def test_sigkill_payee_keeps_every_acknowledged_payment(tmp_path: Path) -> None:
    chooser = random.Random(6)
    acked = 0
    for _ in range(4):
        payee, port = _start_payee(tmp_path)
        payer = _Child("payer", str(tmp_path), str(port))
        try:
            assert payer.wait_for("hello", acked) >= acked  # resumes where the payee is
            payer.wait_for("ack", acked + chooser.randint(200, 3000))
            payee.kill()
            _wait_exit(payer)  # the payer sees the connection break and stops
            acked = max(payer.values("ack"))
            (record,) = read_records(tmp_path / "payee.db")
            assert record.sequence >= acked
            assert record.latest is not None
            assert record.latest.verify(PAYER.public_key, PAYEE.public_key, bidirectional=False)
        finally:
            payer.stop()
            payee.stop()


@pytest.mark.slow
def test_sigkill_payer_recovers_every_acknowledged_payment(tmp_path: Path) -> None:
    chooser = random.Random(7)
    payee, port = _start_payee(tmp_path)
    try:
        acked = 0
        for fresh in (False, True, False, True):
            args = ["payer", str(tmp_path), str(port)] + (["fresh"] if fresh else [])
            payer = _Child(*args)
            try:
                resumed = payer.wait_for("hello", acked)
                assert resumed >= acked  # from its own store, or from the payee's HELLO
                payer.wait_for("ack", resumed + chooser.randint(200, 3000))
            finally:
                payer.stop()
            acked = max(payer.values("ack"))
            payer_records = read_records(tmp_path / "payer.db")
            assert len(payer_records) == 1
    finally:
        payee.stop()
    (record,) = read_records(tmp_path / "payee.db")
    assert record.sequence >= acked


async def test_a_refused_hello_proof_does_not_refuse_the_session(tmp_path: Path) -> None:
    # the payer counts a top-up the payee has not seen yet: its newest proof is beyond the
    # payee's deposit, and the payee refuses it after its own HELLO, not the session
    topped_up = terms(deposit=2_000_000)
    channel = PayerChannel(topped_up, PAYER)
    beyond = channel.pay(1_500_000)
    opened = False

    async def session(port: int) -> None:
        nonlocal opened
        async with open_payer(channel, "127.0.0.1", port) as client:
            opened = True
            with pytest.raises(CounterpartyRejectedError) as refused:
                await client.wait_acked(beyond.proof.sequence)
            assert refused.value.code == RejectCode.INSUFFICIENT_DEPOSIT
            assert client.acked == 0

    async with trio.open_nursery() as nursery:
        _, port = await _payee(tmp_path, nursery)
        with pytest.raises(
            CounterpartyRejectedError
        ) as info:  # on leaving: the refused payment is unacked
            await session(port)
        assert opened
        assert (info.value.sequence, info.value.code) == (1, RejectCode.INSUFFICIENT_DEPOSIT)
        nursery.cancel_scope.cancel()
    (payee,) = read_records(tmp_path / "payee.db")
    assert payee.latest is None


async def test_http_refuses_an_oversized_body_without_reading_it_all(tmp_path: Path) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(10_000):
            sent += 1
            yield b"\x00" * 1024

    async with ChannelStore(tmp_path / "payee.db") as store:
        service = PayeeService(store)
        await service.open_channel(terms())
        transport = httpx.ASGITransport(app=payee_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://payee") as client:
            url = f"/channels/{CHANNEL.hex()}/payments"
            declared = await client.post(
                url, content=b"", headers={"content-length": str(MAX_BODY + 1)}
            )
            assert declared.status_code == 400
            assert declared.json()["error"] == "ChannelFrameError"
            streamed = await client.post(url, content=endless())
            assert streamed.status_code == 400
            assert streamed.json()["error"] == "ChannelFrameError"
            assert sent <= MAX_BODY // 1024 + 2  # stopped once it was too long


async def test_http_answers_a_failed_store_with_503_and_retry_after(tmp_path: Path) -> None:
    store = ChannelStore(tmp_path / "payee.db")
    service = PayeeService(store)
    await service.open_channel(terms())
    await store.aclose()  # every save fails from now on
    transport = httpx.ASGITransport(app=payee_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://payee") as client:
        response = await client.post(
            f"/channels/{CHANNEL.hex()}/payments",
            content=encode_signed_proof(PayerChannel(terms(), PAYER).pay(5)),
        )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "StoreError"
    assert service.held(CHANNEL) is not None
    assert service.held(CHANNEL).sequence == 0  # type: ignore[union-attr]
