"""The 402 paywall (`payments.payperuse.paywall`) and the paying httpx auth flow
(`payments.payperuse.auth`), over a real Starlette app, the real channel cores and a real sqlite
`ChannelStore`. Channels come from `UnitTestOnlyFunder` (valid terms, no ledger)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from coordinator.signers import KeySigner
from payments.channels.core import ChannelTerms, PayerChannel
from payments.channels.service import PayeeService
from payments.channels.state import ChannelState, Role
from payments.channels.store import ChannelStore, read_records
from payments.channels.wire import encode_signed_proof
from payments.errors import (
    BudgetExceededError,
    OfferError,
    PaymentRejectedError,
    ReceiptMismatchError,
    ReceiptSignatureError,
)
from payments.payperuse.auth import PaymentAuth
from payments.payperuse.budget import Budget, FundingPolicy
from payments.payperuse.metering import Tariff
from payments.payperuse.offer import ChannelRequirements, parse_offer, request_tag
from payments.payperuse.paywall import REFUSALS, Paywall
from payments.payperuse.receipt import ReceiptKind, receipt_from_header
from tangle.http.api import serve_api
from tangle.protocol.channel import BalanceProof, SignedBalanceProof
from tangle.protocol.ids import ChannelId, PublicKey
from tests.unit_test_funder import UnitTestOnlyFunder
from wallet.errors import NodeUnavailableError

if TYPE_CHECKING:
    from pathlib import Path

    from starlette.requests import Request
    from starlette.responses import Response

NET = 7
PRICE = 10
PAYER = KeySigner(b"\x11" * 32)
PAYEE = KeySigner(b"\x22" * 32)
OTHER_PAYEE = KeySigner(b"\x33" * 32)
MALLORY = KeySigner(b"\x44" * 32)
BASE = "http://sensor.test"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header_of(proof: SignedBalanceProof) -> dict[str, str]:
    return {"Payment-Proof": b64(encode_signed_proof(proof))}


class Service:
    """A sensor-style app behind the paywall, recording what reached it."""

    def __init__(self, tmp_path: Path, *, tariff: Tariff | None = None, **paywall: Any) -> None:
        self.funder = UnitTestOnlyFunder(network_id=NET, payer=PAYER.public_key)
        self.path = tmp_path / "payee.sqlite"
        self.store = ChannelStore(self.path)
        self.calls: list[tuple[str, int]] = []
        """(path, sequence durable on disk when the app saw the request)."""

        async def reading(request: Request) -> Response:
            durable = max((r.sequence for r in read_records(self.path)), default=0)
            self.calls.append((request.url.path, durable))
            return JSONResponse({"celsius": 21.5})

        app = Starlette(routes=[Route("/reading", reading), Route("/readings", reading)])
        self.paywall = Paywall(
            app,
            signer=PAYEE,
            network_id=NET,
            tariff=tariff or Tariff.per_request(PRICE),
            directory=self.funder,
            service=PayeeService(self.store),
            **paywall,
        )

    def client(self, auth: httpx.Auth | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(self.paywall), base_url=BASE, auth=auth
        )

    def auth(
        self,
        *,
        budget: Budget | None = None,
        funding: FundingPolicy | None = None,
        **kwargs: Any,
    ) -> PaymentAuth:
        return PaymentAuth(
            signer=PAYER,
            network_id=NET,
            funder=self.funder,
            budget=budget or Budget(total=10_000, per_request=100),
            funding=funding or FundingPolicy(deposit=1_000, top_up=1_000),
            **kwargs,
        )

    def durable(self) -> dict[bytes, tuple[int, int]]:
        """channel id -> (sequence, payee balance) as committed in the payee's database."""
        return {
            r.terms.channel_id: (
                r.sequence,
                0 if r.latest is None else r.latest.proof.payee_balance,
            )
            for r in read_records(self.path)
            if r.role is Role.PAYEE
        }

    def in_memory(self) -> dict[bytes, tuple[int, int, int]]:
        """channel id -> (sequence, payee balance, deposit) as the paywall holds it."""
        found = {}
        for channel_id in self.funder.channels:
            channel = self.paywall.service.held(ChannelId(channel_id))
            if channel is not None:
                found[channel_id] = (channel.sequence, channel.payee_balance, channel.terms.deposit)
        return found

    async def channel(self, payee: KeySigner = PAYEE, deposit: int = 1_000) -> PayerChannel:
        """A funded channel from PAYER to `payee`, known to the directory."""
        return PayerChannel(await self.funder.open(payee.public_key, deposit), PAYER)


@pytest.fixture
async def service(tmp_path: Path) -> Any:
    svc = Service(tmp_path)
    yield svc
    await svc.store.aclose()


# -- the 402 ---------------------------------------------------------------------------------


async def test_an_unpaid_request_gets_402_with_the_terms(service: Service) -> None:
    async with service.client() as client:
        response = await client.get("/reading")
    assert response.status_code == 402
    offer = parse_offer(response.headers)
    assert offer.price == PRICE
    assert offer.units == 1
    assert offer.payee == PAYEE.public_key
    assert offer.network_id == NET
    assert response.headers["payment-tariff"] == "10/1 request"
    body = response.json()
    assert body["error"]["code"] == "payment_required"
    assert body["payment"]["price"] == "10"
    assert body["payment"]["payee"] == PAYEE.public_key.hex()
    assert body["payment"]["channel"]["bidirectional"] is False
    assert service.calls == []


async def test_units_price_each_request(tmp_path: Path) -> None:
    def count(scope: Any) -> int:
        query = dict(part.split("=") for part in scope["query_string"].decode().split("&") if part)
        return int(query.get("count", "1"))

    svc = Service(tmp_path, tariff=Tariff(price=3, per=2, unit="reading"), units=count)
    try:
        async with svc.client() as client:
            response = await client.get("/readings?count=5")
        assert response.headers["payment-price"] == "8"
        assert response.headers["payment-units"] == "5"
        auth = svc.auth()
        async with svc.client(auth) as client:
            response = await client.get("/readings?count=5")
        assert response.status_code == 200
        assert auth.receipts[-1].units == 5
        assert auth.receipts[-1].credited == 8
    finally:
        await svc.store.aclose()


# -- paying ----------------------------------------------------------------------------------


async def test_the_auth_flow_pays_each_request_durably(service: Service) -> None:
    auth = service.auth()
    async with service.client(auth) as client:
        for n in range(1, 6):
            response = await client.get("/reading", params={"n": n})
            assert response.status_code == 200
            assert response.json() == {"celsius": 21.5}
            receipt = receipt_from_header(response.headers["payment-receipt"])
            receipt.verify(PAYEE.public_key)
            assert receipt.kind is ReceiptKind.REQUEST
            assert receipt.sequence == n
            assert receipt.credited == PRICE
            assert receipt.cumulative_amount == n * PRICE
            assert receipt.tag == request_tag("GET", b"/reading", f"n={n}".encode())
    assert auth.spent == 5 * PRICE
    assert len(auth.receipts) == 5
    assert service.funder.opens == [(PAYEE.public_key, 1_000)]
    # Each request reached the app only after its payment was committed to disk.
    assert service.calls == [("/reading", n) for n in range(1, 6)]
    [(sequence, balance)] = service.durable().values()
    assert (sequence, balance) == (5, 5 * PRICE)


def test_the_paywall_and_auth_flow_run_under_asyncio(tmp_path: Path) -> None:
    async def main() -> None:
        svc = Service(tmp_path)
        auth = svc.auth()
        async with svc.client(auth) as client:
            for _ in range(3):
                assert (await client.get("/reading")).status_code == 200
        await svc.store.aclose()
        assert auth.spent == 3 * PRICE
        [(sequence, balance)] = svc.durable().values()
        assert (sequence, balance) == (3, 3 * PRICE)

    anyio.run(main, backend="asyncio")


def test_the_sync_flow_pays_through_a_sync_client(tmp_path: Path) -> None:
    """A sync `httpx.Client` over real loopback HTTP (hypercorn on trio in another thread)."""
    svc = Service(tmp_path)
    auth = svc.auth()
    with anyio.from_thread.start_blocking_portal(backend="trio") as portal:
        server, port = portal.start_task(serve_api, svc.paywall, "127.0.0.1", 0)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=auth) as client:
                for _ in range(3):
                    response = client.get("/reading")
                    assert response.status_code == 200
        finally:
            server.cancel()
            portal.call(svc.store.aclose)
    assert auth.spent == 3 * PRICE
    assert [r.sequence for r in auth.receipts] == [1, 2, 3]
    assert svc.funder.opens == [(PAYEE.public_key, 1_000)]


async def test_a_post_body_is_sent_again_with_the_payment(service: Service) -> None:
    seen: list[bytes] = []

    async def echo(request: Request) -> Response:
        seen.append(await request.body())
        return JSONResponse({"ok": True})

    paywall = Paywall(
        Starlette(routes=[Route("/upload", echo, methods=["POST"])]),
        signer=PAYEE,
        network_id=NET,
        tariff=Tariff.per_request(PRICE),
        directory=service.funder,
        service=service.paywall.service,
    )
    auth = service.auth()
    transport = httpx.ASGITransport(paywall)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, auth=auth) as client:
        response = await client.post("/upload", content=b"reading:21.5")
    assert response.status_code == 200
    assert seen == [b"reading:21.5"]


# -- budget and funding ----------------------------------------------------------------------


async def test_a_price_over_the_per_request_budget_pays_nothing(service: Service) -> None:
    auth = service.auth(budget=Budget(total=1_000, per_request=PRICE - 1))
    async with service.client(auth) as client:
        with pytest.raises(BudgetExceededError) as info:
            await client.get("/reading")
    assert info.value.limit == "per-request"
    assert auth.spent == 0
    assert service.funder.opens == []
    assert auth.channels == {}
    assert service.calls == []
    assert service.durable() == {}


async def test_the_total_budget_stops_payments(service: Service) -> None:
    auth = service.auth(budget=Budget(total=3 * PRICE + 5, per_request=PRICE))
    async with service.client(auth) as client:
        for _ in range(3):
            assert (await client.get("/reading")).status_code == 200
        with pytest.raises(BudgetExceededError) as info:
            await client.get("/reading")
    assert info.value.limit == "total"
    assert info.value.allowed == 5
    assert auth.spent == 3 * PRICE
    channel = next(iter(auth.channels.values()))
    assert channel.sequence == 3
    assert len(service.calls) == 3


async def test_the_channel_is_topped_up_when_it_runs_low(service: Service) -> None:
    auth = service.auth(funding=FundingPolicy(deposit=25, top_up=40, low_water=5))
    async with service.client(auth) as client:
        for _ in range(8):
            assert (await client.get("/reading")).status_code == 200
    channel = next(iter(auth.channels.values()))
    # 25: pays 10, 20 (left 5 >= 5); 3rd: left 5 < 10 -> +40 = 65; ... 8 payments = 80.
    assert [amount for _, amount in service.funder.top_ups] == [40, 40]
    assert channel.terms.deposit == 105
    assert channel.payee_balance == 80
    payee_side = service.paywall.service.held(channel.terms.channel_id)
    assert payee_side is not None
    assert payee_side.terms.deposit == 105
    assert service.durable()[channel.terms.channel_id] == (8, 80)


async def test_an_offer_on_another_network_is_refused(service: Service) -> None:
    auth = PaymentAuth(
        signer=PAYER,
        network_id=NET + 1,
        funder=service.funder,
        budget=Budget(total=100, per_request=100),
        funding=FundingPolicy(deposit=100, top_up=100),
    )
    async with service.client(auth) as client:
        with pytest.raises(OfferError):
            await client.get("/reading")
    assert service.funder.opens == []


async def test_a_pinned_payee_is_the_only_one_paid(service: Service) -> None:
    auth = service.auth(payee=OTHER_PAYEE.public_key)
    async with service.client(auth) as client:
        with pytest.raises(OfferError):
            await client.get("/reading")
    assert auth.spent == 0


async def test_a_refused_payment_raises_with_the_payees_code(tmp_path: Path) -> None:
    svc = Service(tmp_path, requirements=ChannelRequirements(min_challenge_period=1))
    svc.funder.channels.clear()
    auth = svc.auth()

    class Forgetful(UnitTestOnlyFunder):
        async def lookup(self, channel_id: ChannelId) -> ChannelTerms | None:
            return None

    svc.paywall.cashier._directory = Forgetful(network_id=NET, payer=PAYER.public_key)
    try:
        async with svc.client(auth) as client:
            with pytest.raises(PaymentRejectedError) as info:
                await client.get("/reading")
        assert (info.value.status, info.value.code) == (403, "unknown_channel")
        assert auth.spent == PRICE  # signed away: the payee holds the proof
        assert svc.calls == []
    finally:
        await svc.store.aclose()


# -- refused payments change nothing ---------------------------------------------------------


async def refused(
    service: Service, headers: Mapping[str, str | bytes] | list[tuple[str, str]]
) -> tuple[int, str, httpx.Response]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    raw = [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in pairs]
    before = service.durable(), service.in_memory()
    async with service.client() as client:
        response = await client.get("/reading", headers=raw)
    assert (service.durable(), service.in_memory()) == before
    assert service.calls == []
    assert "payment-receipt" not in response.headers
    return response.status_code, response.json()["error"]["code"], response


async def test_a_forged_proof_is_refused(service: Service) -> None:
    channel = await service.channel()
    proof = BalanceProof(
        network_id=NET, channel_id=channel.terms.channel_id, sequence=1, payee_balance=PRICE
    )
    forged = SignedBalanceProof(proof=proof, payer_signature=MALLORY.sign(proof.message()))
    status, code, _ = await refused(service, header_of(forged))
    assert (status, code) == (403, "invalid_proof")


async def test_a_replayed_proof_is_refused(service: Service) -> None:
    channel = await service.channel()
    proof = channel.pay(PRICE)
    async with service.client() as client:
        assert (await client.get("/reading", headers=header_of(proof))).status_code == 200
    service.calls.clear()
    status, code, _ = await refused(service, header_of(proof))
    assert (status, code) == (409, "stale_proof")
    assert service.durable()[channel.terms.channel_id] == (1, PRICE)


async def test_concurrent_requests_with_one_proof_are_served_once(service: Service) -> None:
    channel = await service.channel()
    proof = channel.pay(PRICE)
    statuses: list[int] = []
    async with service.client() as client:

        async def send() -> None:
            statuses.append((await client.get("/reading", headers=header_of(proof))).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(send)
    assert sorted(statuses) == [200, 409, 409, 409, 409]
    assert len(service.calls) == 1


async def test_proofs_of_other_channels_are_refused(service: Service) -> None:
    to_other = await service.channel(OTHER_PAYEE)
    status, code, _ = await refused(service, header_of(to_other.pay(PRICE)))
    assert (status, code) == (403, "unknown_channel")

    unknown_terms = ChannelTerms(
        network_id=NET,
        channel_id=ChannelId(b"\x99" * 32),
        payer=PAYER.public_key,
        payee=PAYEE.public_key,
        deposit=1_000,
        bidirectional=False,
        challenge_period=10,
        expiry=1000,
    )
    status, code, _ = await refused(service, header_of(PayerChannel(unknown_terms, PAYER).pay(5)))
    assert (status, code) == (403, "unknown_channel")


async def test_a_proof_for_another_network_is_refused(service: Service) -> None:
    channel = await service.channel()
    proof = BalanceProof(
        network_id=NET + 1, channel_id=channel.terms.channel_id, sequence=1, payee_balance=PRICE
    )
    signed = SignedBalanceProof(proof=proof, payer_signature=PAYER.sign(proof.message()))
    status, code, _ = await refused(service, header_of(signed))
    assert (status, code) == (403, "wrong_channel")
    assert service.funder.lookups == 0


async def test_an_unacceptable_channel_is_refused(tmp_path: Path) -> None:
    svc = Service(tmp_path, requirements=ChannelRequirements(min_deposit=5_000))
    try:
        channel = await svc.channel(deposit=1_000)
        status, code, _ = await refused(svc, header_of(channel.pay(PRICE)))
        assert (status, code) == (403, "unacceptable_channel")
    finally:
        await svc.store.aclose()


@pytest.mark.parametrize(
    "value",
    ["!!!", b64(b"garbage"), b64(b"\x00" * 137) + "A", "é".encode(), ""],
)
async def test_malformed_payment_headers_are_refused(service: Service, value: str | bytes) -> None:
    status, code, _ = await refused(service, {"Payment-Proof": value})
    assert (status, code) == (400, "malformed_payment")


async def test_a_repeated_payment_header_is_refused(service: Service) -> None:
    channel = await service.channel()
    value = header_of(channel.pay(PRICE))["Payment-Proof"]
    status, code, _ = await refused(service, [("Payment-Proof", value), ("Payment-Proof", value)])
    assert (status, code) == (400, "malformed_payment")


async def test_an_underpaying_proof_is_refused_and_a_later_one_credits_all(
    service: Service,
) -> None:
    channel = await service.channel()
    short = channel.pay(PRICE - 1)
    status, code, response = await refused(service, header_of(short))
    assert (status, code) == (402, "insufficient_payment")
    assert parse_offer(response.headers).price == PRICE  # the terms come with every 402
    full = channel.pay(PRICE)
    async with service.client() as client:
        response = await client.get("/reading", headers=header_of(full))
    assert response.status_code == 200
    receipt = receipt_from_header(response.headers["payment-receipt"])
    assert (receipt.sequence, receipt.credited) == (2, 2 * PRICE - 1)


async def test_a_proof_beyond_the_deposit_is_refused(service: Service) -> None:
    channel = await service.channel(deposit=1_000)
    proof = BalanceProof(
        network_id=NET, channel_id=channel.terms.channel_id, sequence=1, payee_balance=1_001
    )
    signed = SignedBalanceProof(proof=proof, payer_signature=PAYER.sign(proof.message()))
    status, code, _ = await refused(service, header_of(signed))
    assert (status, code) == (402, "insufficient_deposit")


async def test_a_forged_proof_beyond_the_deposit_does_not_reach_the_ledger(
    service: Service,
) -> None:
    channel = await service.channel(deposit=1_000)
    async with service.client() as client:
        await client.get("/reading", headers=header_of(channel.pay(PRICE)))
    lookups = service.funder.lookups
    service.calls.clear()
    proof = BalanceProof(
        network_id=NET, channel_id=channel.terms.channel_id, sequence=2, payee_balance=10**9
    )
    forged = SignedBalanceProof(proof=proof, payer_signature=MALLORY.sign(proof.message()))
    status, code, _ = await refused(service, header_of(forged))
    assert (status, code) == (403, "invalid_proof")
    assert service.funder.lookups == lookups


async def test_no_payment_is_taken_within_the_challenge_period_of_the_expiry(
    service: Service,
) -> None:
    channel = await service.channel()
    terms = channel.terms
    service.funder.index = terms.expiry - terms.challenge_period - 1  # the last safe milestone
    async with service.client() as client:
        response = await client.get("/reading", headers=header_of(channel.pay(PRICE)))
    assert response.status_code == 200
    assert service.durable()[terms.channel_id] == (1, PRICE)
    service.calls.clear()
    service.funder.index += 1
    status, code, _ = await refused(service, header_of(channel.pay(PRICE)))
    assert (status, code) == (403, "channel_expiring")


def test_every_refusal_has_a_4xx_or_503_status_and_a_unique_code() -> None:
    codes = [code for _, code in REFUSALS.values()]
    assert len(set(codes)) == len(codes)
    assert all(400 <= status < 500 or status == 503 for status, _ in REFUSALS.values())
    unavailable = {code for status, code in REFUSALS.values() if status == 503}
    assert unavailable == {"store_unavailable", "ledger_unavailable", "ledger_rate_limited"}


async def test_a_failed_store_is_a_503_and_changes_nothing(tmp_path: Path) -> None:
    svc = Service(tmp_path)
    channel = await svc.channel()
    async with svc.client() as client:
        assert (await client.get("/reading", headers=header_of(channel.pay(PRICE)))).is_success
        before = svc.in_memory()
        svc.calls.clear()
        await svc.store.aclose()  # every save fails from now on
        response = await client.get("/reading", headers=header_of(channel.pay(PRICE)))
    assert (response.status_code, response.json()["error"]["code"]) == (503, "store_unavailable")
    assert response.headers["retry-after"] == "1"
    assert svc.calls == []
    assert svc.in_memory() == before


class _FlakyNode(UnitTestOnlyFunder):
    """A directory whose node is unavailable for the first `down` lookups."""

    def __init__(self, *, down: int) -> None:
        super().__init__(network_id=NET, payer=PAYER.public_key)
        self.down = down

    async def lookup(self, channel_id: ChannelId) -> ChannelTerms | None:
        if self.down:
            self.down -= 1
            raise NodeUnavailableError("GET /api/v1/channels", "connection refused")
        return await super().lookup(channel_id)


async def test_an_unavailable_node_is_a_503_and_the_proof_is_sent_again(tmp_path: Path) -> None:
    svc = Service(tmp_path)
    node = _FlakyNode(down=1)
    svc.funder = node
    svc.paywall.cashier._directory = node
    auth = svc.auth()
    try:
        async with svc.client(auth) as client:
            with pytest.raises(PaymentRejectedError) as info:
                await client.get("/reading")
            assert (info.value.status, info.value.code) == (503, "ledger_unavailable")
            assert (await client.get("/reading")).status_code == 200
        assert [(r.sequence, r.credited) for r in auth.receipts] == [(1, PRICE)]
        assert auth.spent == PRICE
    finally:
        await svc.store.aclose()


# -- receipts checked by the payer -----------------------------------------------------------


def _swap_receipt(app: Any, replacement: list[bytes]) -> Any:
    """An ASGI wrapper that replaces each receipt with the previous response's."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def swapping(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = []
                for key, value in message["headers"]:
                    if key == b"payment-receipt":
                        replacement.append(value)
                        value = replacement[0]
                    headers.append((key, value))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, swapping)

    return wrapped


async def test_a_receipt_for_another_payment_is_refused(service: Service) -> None:
    auth = service.auth()
    transport = httpx.ASGITransport(_swap_receipt(service.paywall, []))
    async with httpx.AsyncClient(transport=transport, base_url=BASE, auth=auth) as client:
        assert (await client.get("/reading")).status_code == 200
        with pytest.raises(ReceiptMismatchError) as info:
            await client.get("/reading")
    assert info.value.field == "sequence"


async def test_a_receipt_not_signed_by_the_payee_is_refused(service: Service) -> None:
    async def impostor(scope: Any, receive: Any, send: Any) -> None:
        async def resign(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = []
                for key, value in message["headers"]:
                    if key == b"payment-receipt":
                        raw = bytearray(base64.urlsafe_b64decode(value + b"=" * 3))
                        raw[-1] ^= 1
                        value = b64(bytes(raw)).encode()
                    headers.append((key, value))
                message = {**message, "headers": headers}
            await send(message)

        await service.paywall(scope, receive, resign)

    auth = service.auth()
    transport = httpx.ASGITransport(impostor)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, auth=auth) as client:
        with pytest.raises(ReceiptSignatureError):
            await client.get("/reading")


async def test_the_json_body_matches_the_headers(service: Service) -> None:
    async with service.client() as client:
        response = await client.get("/reading")
    doc = json.loads(response.content)["payment"]
    offer = parse_offer(response.headers)
    assert doc["tariff"] == {"price": "10", "per": "1", "unit": "request"}
    assert int(doc["price"]) == offer.price
    assert int(doc["channel"]["min_deposit"]) == offer.channel.min_deposit


async def test_after_a_restart_the_paywall_continues_from_its_store(tmp_path: Path) -> None:
    first = Service(tmp_path)
    channel = await first.channel()
    proofs = [channel.pay(PRICE) for _ in range(3)]
    async with first.client() as client:
        for proof in proofs:
            assert (await client.get("/reading", headers=header_of(proof))).status_code == 200
    await first.store.aclose()

    second = Service(tmp_path)  # a new process: a fresh paywall over the same database
    second.funder.channels.update(first.funder.channels)
    try:
        async with second.client() as client:
            replay = await client.get("/reading", headers=header_of(proofs[-1]))
            assert (replay.status_code, replay.json()["error"]["code"]) == (409, "stale_proof")
            fresh = await client.get("/reading", headers=header_of(channel.pay(PRICE)))
        assert fresh.status_code == 200
        assert receipt_from_header(fresh.headers["payment-receipt"]).cumulative_amount == 4 * PRICE
        assert second.funder.lookups == 0  # the store knew the channel
    finally:
        await second.store.aclose()


# -- device recovery -------------------------------------------------------------------------


async def _read_with_a_store(service: Service, path: Path, readings: int) -> PaymentAuth:
    """A device (a new process each time) keeping its channels in the store at `path` reads
    `readings` readings; its payment flow."""
    async with ChannelStore(path) as device_store:
        auth = service.auth(store=device_store)
        async with service.client(auth) as client:
            for _ in range(readings):
                assert (await client.get("/reading")).status_code == 200
    return auth


async def test_a_restarted_device_continues_from_its_store(
    service: Service, tmp_path: Path
) -> None:
    await _read_with_a_store(service, tmp_path / "device.sqlite", 3)
    restarted = await _read_with_a_store(service, tmp_path / "device.sqlite", 2)
    assert [r.sequence for r in restarted.receipts] == [4, 5]
    assert restarted.spent == 2 * PRICE
    assert len(service.funder.opens) == 1
    [(sequence, balance)] = service.durable().values()
    assert (sequence, balance) == (5, 5 * PRICE)
    [record] = read_records(tmp_path / "device.sqlite")
    assert (record.role, record.sequence) == (Role.PAYER, 5)


async def test_a_device_that_lost_its_store_recovers_from_the_payee(
    service: Service, tmp_path: Path
) -> None:
    await _read_with_a_store(service, tmp_path / "device.sqlite", 3)
    (tmp_path / "device.sqlite").unlink()  # the device lost its database
    fresh = await _read_with_a_store(service, tmp_path / "device.sqlite", 2)
    # its first proof (sequence 1) was refused as stale; it adopted the payee's sequence 3 and
    # paid the request once, as sequence 4
    assert [(r.sequence, r.credited) for r in fresh.receipts] == [(4, PRICE), (5, PRICE)]
    assert fresh.spent == 2 * PRICE
    assert len(service.funder.opens) == 1
    assert len(service.calls) == 5
    [(sequence, balance)] = service.durable().values()
    assert (sequence, balance) == (5, 5 * PRICE)
    [record] = read_records(tmp_path / "device.sqlite")
    assert record.sequence == 5


async def test_a_stale_refusal_carries_the_latest_proof_only_to_its_payer(
    service: Service,
) -> None:
    channel = await service.channel()
    proofs = [channel.pay(PRICE) for _ in range(2)]
    async with service.client() as client:
        for proof in proofs:
            assert (await client.get("/reading", headers=header_of(proof))).status_code == 200
    service.calls.clear()
    _, code, response = await refused(service, header_of(proofs[0]))
    assert code == "stale_proof"
    latest = response.headers["payment-latest"]
    assert latest == header_of(proofs[1])["Payment-Proof"]
    forged = BalanceProof(
        network_id=NET, channel_id=channel.terms.channel_id, sequence=1, payee_balance=PRICE
    )
    signed = SignedBalanceProof(proof=forged, payer_signature=MALLORY.sign(forged.message()))
    _, code, response = await refused(service, header_of(signed))
    assert code == "stale_proof"
    assert "payment-latest" not in response.headers


# -- refusals the payer gets past ------------------------------------------------------------


class _LaggingLedger(UnitTestOnlyFunder):
    """Opens a new channel each time; the payee's node misses the first `blind` lookups."""

    def __init__(self, *, blind: int) -> None:
        super().__init__(network_id=NET, payer=PAYER.public_key)
        self.blind = blind

    async def open(self, payee: PublicKey, deposit: int) -> ChannelTerms:
        return await super().open(payee, deposit + len(self.opens))  # another id each time

    async def lookup(self, channel_id: ChannelId) -> ChannelTerms | None:
        if self.blind:
            self.blind -= 1
            return None
        return await super().lookup(channel_id)


def _lagging(tmp_path: Path, blind: int) -> tuple[Service, _LaggingLedger]:
    svc = Service(tmp_path)
    ledger = _LaggingLedger(blind=blind)
    svc.funder = ledger
    svc.paywall.cashier._directory = ledger
    return svc, ledger


async def _refused_with(client: httpx.AsyncClient, code: str) -> None:
    with pytest.raises(PaymentRejectedError) as info:
        await client.get("/reading")
    assert info.value.code == code


async def test_a_proof_refused_for_a_channel_the_payee_has_not_seen_is_sent_again(
    tmp_path: Path,
) -> None:
    svc, ledger = _lagging(tmp_path, blind=1)
    auth = svc.auth()
    try:
        async with svc.client(auth) as client:
            await _refused_with(client, "unknown_channel")
            assert (await client.get("/reading")).status_code == 200  # the same proof again
            assert (await client.get("/reading")).status_code == 200
        assert [(r.sequence, r.credited) for r in auth.receipts] == [(1, PRICE), (2, PRICE)]
        assert auth.spent == 2 * PRICE
        assert len(ledger.opens) == 1
        assert svc.durable() == {next(iter(ledger.channels)): (2, 2 * PRICE)}
    finally:
        await svc.store.aclose()


async def test_a_refused_proof_that_paid_less_is_completed_not_doubled(tmp_path: Path) -> None:
    svc, _ = _lagging(tmp_path, blind=1)
    auth = svc.auth()
    try:
        async with svc.client(auth) as client:
            await _refused_with(client, "unknown_channel")
            svc.paywall.tariff = Tariff.per_request(3 * PRICE)
            assert (await client.get("/reading")).status_code == 200
        [receipt] = auth.receipts
        assert (receipt.sequence, receipt.credited, receipt.cumulative_amount) == (
            2,
            3 * PRICE,
            3 * PRICE,
        )
        assert auth.spent == 3 * PRICE
    finally:
        await svc.store.aclose()


async def test_a_channel_unknown_twice_is_retired_and_a_new_one_opened(tmp_path: Path) -> None:
    svc, ledger = _lagging(tmp_path, blind=2)
    try:
        async with ChannelStore(tmp_path / "device.sqlite") as device_store:
            auth = svc.auth(store=device_store)
            async with svc.client(auth) as client:
                await _refused_with(client, "unknown_channel")
                await _refused_with(client, "unknown_channel")
                assert (await client.get("/reading")).status_code == 200
        first, second = ledger.channels
        assert len(ledger.opens) == 2
        assert auth.channels[PAYEE.public_key].terms.channel_id == second
        states = {r.terms.channel_id: r.state for r in read_records(tmp_path / "device.sqlite")}
        assert states == {first: ChannelState.CLOSING, second: ChannelState.OPEN}
        assert [(r.channel_id, r.sequence) for r in auth.receipts] == [(second, 1)]
    finally:
        await svc.store.aclose()


async def test_a_closed_channel_is_retired_at_once(tmp_path: Path) -> None:
    svc, ledger = _lagging(tmp_path, blind=0)
    auth = svc.auth()
    try:
        async with svc.client(auth) as client:
            assert (await client.get("/reading")).status_code == 200
            (first,) = ledger.channels
            await svc.paywall.service.advance(ChannelId(first), ChannelState.CLOSING)
            await _refused_with(client, "channel_closed")
            assert PAYEE.public_key not in auth.channels
            assert (await client.get("/reading")).status_code == 200
        assert len(ledger.opens) == 2
        assert auth.receipts[-1].channel_id != first
    finally:
        await svc.store.aclose()
