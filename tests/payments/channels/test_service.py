"""The one payee path (`payments.channels.service.PayeeService`): trial, durable save, then
adoption; a price; the expiry; one channel served by TCP, HTTP and the 402 paywall in one
process."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import TYPE_CHECKING

import httpx
import pytest
import trio
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from payments import (
    ChannelClosedError,
    ChannelExpiringError,
    ChannelState,
    ChannelStore,
    CounterpartyRejectedError,
    InsufficientPaymentError,
    InvalidAmountError,
    InvalidProofError,
    InvalidTermsError,
    PayeeService,
    PayerChannel,
    Paywall,
    RejectCode,
    StaleProofError,
    StoreError,
    Tariff,
    UnknownChannelError,
    encode_signed_proof,
    open_payer,
    payee_app,
    post_proof,
    read_records,
    serve_payee,
)
from tangle.protocol.channel import BalanceProof, SignedBalanceProof
from tangle.protocol.ids import ChannelId, blake2b_256
from tests.payments_support import CHANNEL, MALLORY, NETWORK, PAYEE, PAYER, signed, terms
from tests.unit_test_funder import UnitTestOnlyFunder

if TYPE_CHECKING:
    from pathlib import Path

    from starlette.requests import Request

# terms(): challenge period 100, expiry 10_000: the last safe index is 9_899
LAST_SAFE_INDEX = 9_899


def durable(path: Path) -> tuple[int, int]:
    (record,) = read_records(path)
    return record.sequence, 0 if record.latest is None else record.latest.proof.payee_balance


async def test_a_refused_proof_changes_nothing(tmp_path: Path) -> None:
    async with ChannelStore(tmp_path / "payee.db") as store:
        service = PayeeService(store)
        await service.open_channel(terms())
        payer = PayerChannel(terms(), PAYER)
        credit = await service.receive(payer.pay(5))
        assert (credit.sequence, credit.payee_balance, credit.credited) == (1, 5, 5)
        before = service.held(CHANNEL)
        refusals = [
            (payer.latest, StaleProofError, 0),
            (signed(MALLORY, 2, 9), InvalidProofError, 0),
            (payer.pay(3), InsufficientPaymentError, 4),  # credits 3, the price is 4
        ]
        for proof, error, price in refusals:
            assert proof is not None
            with pytest.raises(error):
                await service.receive(proof, price=price)
            assert service.held(CHANNEL) is before
            assert durable(tmp_path / "payee.db") == (1, 5)
        # the underpaying proof was not adopted: a later one credits both payments
        assert (await service.receive(payer.pay(4), price=4)).credited == 7


async def test_a_proof_is_adopted_only_after_its_save(tmp_path: Path) -> None:
    store = ChannelStore(tmp_path / "payee.db")
    service = PayeeService(store)
    await service.open_channel(terms())
    payer = PayerChannel(terms(), PAYER)
    await service.receive(payer.pay(5))
    await store.aclose()  # every save fails from now on
    with pytest.raises(StoreError):
        await service.receive(payer.pay(5))
    with pytest.raises(StoreError):
        await service.receive_batch(CHANNEL, [payer.pay(1), payer.pay(1)])
    held = service.held(CHANNEL)
    assert held is not None
    assert (held.sequence, held.payee_balance) == (1, 5)


async def test_batches_take_the_good_proofs_and_report_the_bad(tmp_path: Path) -> None:
    async with ChannelStore(tmp_path / "payee.db") as store:
        service = PayeeService(store)
        await service.open_channel(terms())
        payer = PayerChannel(terms(), PAYER)
        good = [payer.pay(2) for _ in range(3)]
        taken = await service.receive_batch(CHANNEL, [good[0], signed(MALLORY, 2, 90), *good[1:]])
        assert taken.sequence == 3
        assert [(s, type(e)) for s, e in taken.refused] == [(2, InvalidProofError)]
        assert durable(tmp_path / "payee.db") == (3, 6)


async def test_the_ledger_index_stops_payments_near_the_expiry(tmp_path: Path) -> None:
    async with ChannelStore(tmp_path / "payee.db") as store:
        service = PayeeService(store)
        await service.open_channel(terms())
        payer = PayerChannel(terms(), PAYER)
        service.observe_index(LAST_SAFE_INDEX)
        await service.receive(payer.pay(1))
        service.observe_index(LAST_SAFE_INDEX - 50)  # an older index changes nothing
        assert service.index == LAST_SAFE_INDEX
        for bad in (-1, True, 1 << 64, "9"):
            with pytest.raises(InvalidAmountError):
                service.observe_index(bad)  # type: ignore[arg-type]
        assert service.index == LAST_SAFE_INDEX
        service.observe_index(LAST_SAFE_INDEX + 1)
        late = payer.pay(1)
        with pytest.raises(ChannelExpiringError) as info:
            await service.receive(late)
        assert (info.value.index, info.value.expiry) == (LAST_SAFE_INDEX + 1, 10_000)
        taken = await service.receive_batch(CHANNEL, [late])
        assert [type(e) for _, e in taken.refused] == [ChannelExpiringError]
        assert durable(tmp_path / "payee.db") == (1, 1)
        # a top-up that moves the expiry makes the channel safe again
        await service.refresh(replace(terms(), deposit=2_000_000, expiry=20_000))
        assert (await service.receive(late)).credited == 1


async def test_a_closing_channel_takes_no_payments(tmp_path: Path) -> None:
    async with ChannelStore(tmp_path / "payee.db") as store:
        service = PayeeService(store)
        await service.open_channel(terms())
        await service.advance(CHANNEL, ChannelState.CLOSING)
        with pytest.raises(ChannelClosedError):
            await service.receive(PayerChannel(terms(), PAYER).pay(1))
        (record,) = read_records(tmp_path / "payee.db")
        assert (record.state, record.sequence) == (ChannelState.CLOSING, 0)


async def test_refresh_refuses_another_channels_terms(tmp_path: Path) -> None:
    async with ChannelStore(tmp_path / "payee.db") as store:
        service = PayeeService(store)
        await service.open_channel(terms())
        with pytest.raises(InvalidTermsError):
            await service.refresh(replace(terms(), payer=MALLORY.public_key, deposit=5))
        held = service.held(CHANNEL)
        assert held is not None
        assert held.terms == terms()


async def test_tcp_rejects_payments_near_the_expiry(tmp_path: Path) -> None:
    async with ChannelStore(tmp_path / "payee.db") as store, trio.open_nursery() as nursery:
        service = PayeeService(store)
        await service.open_channel(terms())
        port = await nursery.start(serve_payee, service)

        async def pay_past_the_limit() -> None:
            async with open_payer(PayerChannel(terms(), PAYER), "127.0.0.1", port) as client:
                assert await client.pay(3) == 1
                service.observe_index(LAST_SAFE_INDEX + 1)  # the operator's node says so
                await client.pay(3)

        with pytest.raises(CounterpartyRejectedError) as info:
            await pay_past_the_limit()
        assert (info.value.code, info.value.sequence) == (RejectCode.CHANNEL_EXPIRING, 2)
        assert "challenge period" in info.value.reason
        assert durable(tmp_path / "payee.db") == (1, 3)
        nursery.cancel_scope.cancel()


async def test_one_channel_over_tcp_http_and_the_paywall_has_one_state(tmp_path: Path) -> None:
    """One process serves one channel on three transports; the payer uses them in turn and
    replays each proof on another transport: every replay is refused, nothing diverges."""
    price = 10
    directory = UnitTestOnlyFunder(network_id=NETWORK, payer=PAYER.public_key)
    directory.channels[CHANNEL] = terms()

    async def reading(request: Request) -> JSONResponse:
        return JSONResponse({"celsius": 21.5})

    async with ChannelStore(tmp_path / "payee.db") as store, trio.open_nursery() as nursery:
        service = PayeeService(store)
        await service.open_channel(terms())
        paywall = Paywall(
            Starlette(routes=[Route("/reading", reading)]),
            signer=PAYEE,
            network_id=NETWORK,
            tariff=Tariff.per_request(price),
            directory=directory,
            service=service,
        )
        app = Starlette(routes=[Mount("/pay", payee_app(service)), Mount("/", paywall)])
        port = await nursery.start(serve_payee, service)
        payer = PayerChannel(terms(), PAYER)
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://payee") as http:

            async def paywall_pays(proof_sequence: int) -> int:
                proof = payer.latest
                assert proof is not None
                assert proof.proof.sequence == proof_sequence
                value = base64.urlsafe_b64encode(encode_signed_proof(proof)).rstrip(b"=")
                response = await http.get("/reading", headers={"Payment-Proof": value.decode()})
                return response.status_code

            async with open_payer(payer, "127.0.0.1", port) as client:
                for _ in range(3):
                    await client.pay(price)
            credit = await post_proof(http, "http://payee/pay", payer.pay(price))
            assert (credit.sequence, credit.payee_balance) == (4, 4 * price)
            payer.pay(price)
            assert await paywall_pays(5) == 200
            assert await paywall_pays(5) == 409  # the paywall's own replay
            with pytest.raises(CounterpartyRejectedError) as info:
                await post_proof(http, "http://payee/pay", payer.latest)  # type: ignore[arg-type]
            assert info.value.code == RejectCode.STALE_PROOF
            async with open_payer(payer, "127.0.0.1", port) as client:
                assert client.acked == 5  # the TCP HELLO answer carries the paywall's payment
                await client.pay(price)
        held = service.held(CHANNEL)
        assert held is not None
        assert (held.sequence, held.payee_balance) == (6, 6 * price)
        assert durable(tmp_path / "payee.db") == (6, 6 * price)
        nursery.cancel_scope.cancel()


async def test_unknown_channel_ids_leave_nothing_behind(tmp_path: Path) -> None:
    async with ChannelStore(tmp_path / "payee.db") as store:
        service = PayeeService(store)
        await service.open_channel(terms())
        signature = PAYER.sign(b"unchecked: the channel is unknown")
        for i in range(10_000):
            channel_id = ChannelId(blake2b_256(b"unknown", i.to_bytes(4)))
            proof = BalanceProof(
                network_id=NETWORK, channel_id=channel_id, sequence=1, payee_balance=1
            )
            unknown = SignedBalanceProof(proof=proof, payer_signature=signature)
            with pytest.raises(UnknownChannelError):
                await service.receive(unknown)
            with pytest.raises(UnknownChannelError):
                await service.receive_batch(channel_id, [unknown])
            with pytest.raises(UnknownChannelError):
                await service.advance(channel_id, ChannelState.CLOSING)
        assert list(service._locks) == [CHANNEL]  # only the channel the service holds
        assert service.held(CHANNEL) is not None
