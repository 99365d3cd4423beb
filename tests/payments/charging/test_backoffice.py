"""The back-office API (`payments.charging.backoffice`): operator routes behind the bearer
token, a driver binding its token over HTTP (not someone else's) and paying a live session
over its payment stream, named errors, and an OpenAPI document naming every route served."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import TYPE_CHECKING

import httpx
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from payments.channels.wire import encode_signed_proof
from payments.charging import ocpi_json
from payments.charging.backoffice import backoffice_app
from payments.charging.ocpi_tariff import parse_tariff
from payments.charging.pay_client import PaymentStream
from payments.charging.pay_frames import PAY_SUBPROTOCOL, decode_answer, encode_pay
from payments.charging.payment import MAX_ID_TOKEN, MAX_TOKENS_PER_CHANNEL
from payments.charging.simulator import Charger201, connect_charger
from payments.payperuse.offer import PROOF_HEADER, RECEIPT_HEADER
from tests.payments.charging.test_csms import PER_KWH_TARIFF
from tests.payments.charging.test_payment import DRIVER, PASSWORD, T0, World, run
from tests.payments.charging.test_prepay_race import during_the_commit

if TYPE_CHECKING:
    from pathlib import Path

    from payments.charging.payment import DriverWallet
    from payments.charging.refund_attempts import TransferRecords

OPERATOR = "operator-token-0123456789"
ADMIN = {"Authorization": f"Bearer {OPERATOR}"}


def client(world: World, refund_wallet: TransferRecords | None = None) -> httpx.AsyncClient:
    app = backoffice_app(world.csms, world.payments, OPERATOR, refund_wallet=refund_wallet)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://csms.test")


def test_operator_routes_need_the_token(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        async with client(world) as http:
            assert (await http.get("/api/stations")).status_code == 401
            refused = await http.get("/api/stations", headers={"Authorization": "Bearer nope"})
            assert refused.json()["error"]["code"] == "unauthorized"
            added = await http.post(
                "/api/stations", json={"id": "CP-NEW", "password": "x" * 20}, headers=ADMIN
            )
            assert added.status_code == 201
            short = await http.post(
                "/api/stations", json={"id": "CP-X", "password": "short"}, headers=ADMIN
            )
            assert short.json()["error"]["code"] == "bad_request"
            listed = (await http.get("/api/stations", headers=ADMIN)).json()
            assert {"id": "CP-NEW", "connected": False} in listed
            missing = await http.get("/api/sessions/CP-NEW/1", headers=ADMIN)
            assert missing.status_code == 404
            garbage = await http.post("/api/stations", content=b"[1", headers=ADMIN)
            assert garbage.status_code == 400
            huge = await http.post("/api/stations", content=b" " * 100_000, headers=ADMIN)
            assert (huge.status_code, huge.json()["error"]["code"]) == (400, "bad_request")

    run(tmp_path, body)


def test_a_driver_binds_over_http_and_pays_a_live_session_over_its_stream(
    tmp_path: Path,
) -> None:
    """The back office binds the token and shows the session (bill, signed meter values); the
    session is paid over the payment stream, the one way to pay a live session."""

    async def body(world: World) -> None:
        async with (
            client(world) as http,
            connect_charger(world.url, "CP201", PASSWORD, "2.0.1") as charger,
        ):
            assert isinstance(charger, Charger201)
            wallet = await world.driver(("CP201", "T1"))
            bound = await http.put(
                "/api/tokens/CARD-9",
                json={
                    "channel_id": wallet.channel.terms.channel_id.hex(),
                    "signature": wallet.bind_signature(DRIVER, "CARD-9").hex(),
                },
            )
            assert bound.json() == {"bound": True}
            await charger.event("Started", "T1", 0, 0, T0, id_token="CARD-9")
            async with PaymentStream.connect(world.url, "CARD-9", wallet) as stream:
                for i in range(1, 4):
                    await charger.event(
                        "Updated", "T1", i, 500 * i, T0 + 60 * i, signed=f"OCMF-{i}"
                    )
                    wallet.observe(500 * i, 0)
                    due = wallet.pay_seen()
                    receipt = await stream.pay()
                    assert receipt is not None
                    doc = (await http.get("/api/tokens/CARD-9/invoice")).json()
                    assert doc == {"units": 500 * i, "amount": 150 * i, "paid": 150 * i}
            assert due is not None
            pay_url = world.url.replace("/ocpp", "/pay/CARD-9")
            async with connect(pay_url, compression=None, subprotocols=[PAY_SUBPROTOCOL]) as ws:
                await ws.send(encode_pay(*due))  # the last payment again (its answer lost)
                again = decode_answer(bytes(await ws.recv()), due[0].channel_id)
                assert again == receipt  # taken once: the same receipt
            view = (await http.get("/api/sessions/CP201/T1", headers=ADMIN)).json()
            assert (view["energy_wh"], view["billed"], view["paid"]) == (1500, 450, 450)
            assert [s["data"] for s in view["signed_meter_values"]] == [
                "OCMF-1",
                "OCMF-2",
                "OCMF-3",
            ]
            unknown = await http.get("/api/tokens/NOBODY/invoice")
            assert unknown.status_code == 404
            gone = await http.post("/api/tokens/CARD-9/payments")
            assert gone.status_code == 404  # no second way to pay

    run(tmp_path, body)


def test_a_bound_token_keeps_its_channel_and_prepaid_until_the_operator_unbinds(
    tmp_path: Path,
) -> None:
    """Issue #13: a driver with a channel of its own cannot rebind someone else's token (nor
    wipe its prepaid credit); binding the same channel again keeps the credit; the operator
    unbinds (answered with the credit owed back), then the token binds anew."""

    async def body(world: World) -> None:
        victim = await world.driver(("CP201", "T1"))
        other = await world.driver(("CP201", "T2"), deposit=90_000)  # another channel

        def binding(wallet: DriverWallet) -> dict[str, str]:
            return {
                "channel_id": wallet.channel.terms.channel_id.hex(),
                "signature": wallet.bind_signature(DRIVER, "CARD-V").hex(),
            }

        async with client(world) as http:
            assert (await http.put("/api/tokens/CARD-V", json=binding(victim))).status_code == 200
            await world.payments.prepay("CARD-V", victim.channel.pay(450))
            stolen = await http.put("/api/tokens/CARD-V", json=binding(other))
            assert (stolen.status_code, stolen.json()["error"]["code"]) == (403, "token_binding")
            again = await http.put("/api/tokens/CARD-V", json=binding(victim))
            assert again.json() == {"bound": True}
            assert await world.csms.store.token("CARD-V") == (
                victim.channel.terms.channel_id,
                450,
            )
            assert (await http.delete("/api/tokens/CARD-V")).status_code == 401
            unbound = await http.delete("/api/tokens/CARD-V", headers=ADMIN)
            assert unbound.json() == {"unbound": True, "prepaid": 450}
            assert (await http.delete("/api/tokens/CARD-V", headers=ADMIN)).status_code == 404
            assert (await http.put("/api/tokens/CARD-V", json=binding(other))).status_code == 200
            assert await world.csms.store.token("CARD-V") == (other.channel.terms.channel_id, 0)

    run(tmp_path, body)


def test_one_channel_binds_at_most_its_share_of_tokens_each_of_an_ocpp_length(
    tmp_path: Path,
) -> None:
    """A driver (anyone with one channel) cannot grow the token table without bound: at most
    `MAX_TOKENS_PER_CHANNEL` tokens per channel, each at most `MAX_ID_TOKEN` characters;
    binding one of them again still works when the channel is full, and once the operator
    unbinds one, another binds. Before, every bind added a row."""

    async def body(world: World) -> None:
        wallet = await world.driver(("CP201", "T1"))

        def binding(token: str) -> dict[str, str]:
            return {
                "channel_id": wallet.channel.terms.channel_id.hex(),
                "signature": wallet.bind_signature(DRIVER, token).hex(),
            }

        async with client(world) as http:
            long = "L" * (MAX_ID_TOKEN + 1)
            refused = await http.put(f"/api/tokens/{long}", json=binding(long))
            assert (refused.status_code, refused.json()["error"]["code"]) == (403, "token_binding")
            tokens = [f"CARD-{i}" for i in range(MAX_TOKENS_PER_CHANNEL)]
            for token in tokens:
                assert (await http.put(f"/api/tokens/{token}", json=binding(token))).is_success
            full = await http.put("/api/tokens/ONE-MORE", json=binding("ONE-MORE"))
            assert (full.status_code, full.json()["error"]["code"]) == (403, "token_binding")
            assert "tokens" in full.json()["error"]["message"]
            again = await http.put(f"/api/tokens/{tokens[0]}", json=binding(tokens[0]))
            assert again.json() == {"bound": True}
            assert (await http.delete(f"/api/tokens/{tokens[0]}", headers=ADMIN)).is_success
            late = await http.put("/api/tokens/ONE-MORE", json=binding("ONE-MORE"))
            assert late.json() == {"bound": True}
        assert await world.csms.store.token(long) is None

    run(tmp_path, body)


def test_a_prepayment_owed_back_is_answered_409_with_its_amount(tmp_path: Path) -> None:
    """The operator unbinds the token while its prepayment is being committed: the proof is
    taken and the amount owed back to the channel's payer, answered 409 `prepayment_owed_back`
    with the amount (before, 403 `token_binding`, the answer of a payment refused with nothing
    taken)."""

    async def body(world: World) -> None:
        wallet = await world.driver(("CP201", "T1"))
        await world.bind(wallet, "CARD-W")
        during_the_commit(world, lambda: world.payments.unbind("CARD-W"))
        proof = encode_signed_proof(wallet.channel.pay(450))
        header = base64.urlsafe_b64encode(proof).rstrip(b"=").decode()
        async with client(world) as http:
            owed = await http.post("/api/tokens/CARD-W/prepay", headers={PROOF_HEADER: header})
        assert owed.status_code == 409
        assert owed.json()["error"]["code"] == "prepayment_owed_back"
        assert owed.json()["error"]["amount"] == 450

    run(tmp_path, body)


def test_the_openapi_document_names_every_route(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        app = backoffice_app(world.csms, world.payments, OPERATOR)
        async with client(world) as http:
            doc = (await http.get("/openapi.json")).json()
        assert doc["openapi"] == "3.1.0"
        served = {
            (method.lower(), re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))  # type: ignore[attr-defined]
            for route in app.routes
            for method in route.methods or ()  # type: ignore[attr-defined]
            if method != "HEAD" and route.path != "/openapi.json"  # type: ignore[attr-defined]
        }
        documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
        assert served == documented
        assert doc["paths"]["/api/tokens/{token}/prepay"]["post"]["parameters"][1]["name"] == (
            PROOF_HEADER
        )
        prepay = doc["paths"]["/api/tokens/{token}/prepay"]["post"]
        assert RECEIPT_HEADER in prepay["responses"]["200"]["headers"]
        assert doc["paths"]["/api/tokens/{token}"]["delete"]["security"] == [{"bearer": []}]
        assert (
            "prepayment_owed_back"
            in (
                doc["paths"]["/api/tokens/{token}/prepay"]["post"]["responses"]["409"][
                    "description"
                ]
            )
        )

    run(tmp_path, body)


def test_the_tariffs_route_shows_the_channel_and_ocpi_tariffs(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        tariff = parse_tariff(ocpi_json.loads(PER_KWH_TARIFF))
        app = backoffice_app(world.csms, world.payments, OPERATOR, tariff=tariff)
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://csms.test") as http:
            offered = (await http.get("/api/tariffs")).json()
        assert offered[0] == {"channel_tariff": {"price": 300, "per": 1000, "unit": "Wh"}}
        assert offered[1]["ocpi"]["id"] == "E25"
        assert parse_tariff(ocpi_json.loads(json.dumps(offered[1]["ocpi"]))) == tariff

    run(tmp_path, body)


def test_a_station_call_that_fails_is_answered_by_name(tmp_path: Path) -> None:
    """A remote start the station answers with a CALLERROR is 502 `station_call_failed`, one
    it leaves unanswered 504 `station_timeout`, one to a station not connected 404."""

    async def body(world: World) -> None:
        token = base64.b64encode(f"CP16:{PASSWORD}".encode()).decode()
        async with (
            client(world) as http,
            connect(
                f"{world.url}/CP16",
                subprotocols=[Subprotocol("ocpp1.6")],
                additional_headers={"Authorization": f"Basic {token}"},
            ) as station,
        ):
            for _ in range(500):  # the CSMS registers the connection
                if "CP16" in world.csms.stations:
                    break
                await asyncio.sleep(0.01)
            world.csms.stations["CP16"]._response_timeout = 0.5  # the library's, 10 s here
            start = "/api/stations/CP16/remote-start"
            for code in ("InternalError", "RpcFrameworkError"):  # one the library has no class of
                asked = asyncio.create_task(http.post(start, json={"id_token": "D"}, headers=ADMIN))
                call = json.loads(await station.recv())
                await station.send(json.dumps([4, call[1], code, "busy", {}]))
                failed = await asked
                assert (failed.status_code, failed.json()["error"]["code"]) == (
                    502,
                    "station_call_failed",
                )
            unanswered = await http.post(start, json={"id_token": "D"}, headers=ADMIN)
            assert (unanswered.status_code, unanswered.json()["error"]["code"]) == (
                504,
                "station_timeout",
            )
            gone = await http.post(
                "/api/stations/CP201/remote-start", json={"id_token": "D"}, headers=ADMIN
            )
            assert gone.status_code == 404

    run(tmp_path, body)
