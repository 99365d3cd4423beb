"""Roaming contract drivers at the CSMS (`payments.charging.roaming_cpo`): real `ocpp` chargers
(1.6J and 2.0.1 over loopback WebSockets) at a CSMS whose CPO side and an eMSP are real
`ocpi_app`s talking through `OcpiClient` (in process over `httpx.ASGITransport`, after the
Token A/B/C handshake). The eMSP's tokens are authorized by whitelist or in real time, a
charging session shows as an ACTIVE OCPI Session, the CDR is pushed to the eMSP with the bill's
exact total, its hash is in the session record the back office serves, a correction reaches
the eMSP as a credit CDR and a new CDR, and the month's net is settled over a two-way channel."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import socket
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import pytest

from payments.channels.twoway import TwoWayChannel
from payments.charging import ocpi_json
from payments.charging.backoffice import backoffice_app
from payments.charging.cdr_settlement import CdrSettlement, by_month
from payments.charging.commitment import parse_session_record
from payments.charging.csms import Csms, accept_every_token, serve_csms
from payments.charging.errors import OcpiPartnerError, RoamingTokenRefusedError
from payments.charging.ocpi_cdr import cdr_hash
from payments.charging.ocpi_client import OcpiClient
from payments.charging.ocpi_location import CdrLocation
from payments.charging.ocpi_session import (
    AuthMethod,
    SessionStatus,
    Token,
    TokenType,
    WhitelistType,
)
from payments.charging.ocpi_tariff import parse_tariff
from payments.charging.pricing import ocpi_pricing
from payments.charging.roaming_cpo import RoamingCpo
from payments.charging.simulator import Charger16, Charger201, connect_charger
from payments.charging.store import CsmsStore
from tests.payments_support import PAYEE, PAYER, terms

from .test_ocpi_app import World, in_process

if TYPE_CHECKING:
    from pathlib import Path

T0 = 1_780_000_000.0
PASSWORD = "pw"
CHANNEL_TERMS = terms(deposit=10_000, bidirectional=True)
TARIFF = parse_tariff(
    ocpi_json.loads(
        b'{"country_code": "NL", "party_id": "CPO", "id": "T-ENERGY", "currency": "EUR",'
        b' "elements": [{"price_components": [{"type": "ENERGY", "price": 0.25,'
        b' "step_size": 1}]}], "last_updated": "2026-01-01T00:00:00Z"}'
    )
)
LOCATION = CdrLocation(
    id="LOC1",
    address="Stationsplein 1",
    city="Utrecht",
    country="NLD",
    latitude="52.089",
    longitude="5.110",
    evse_uid="EVSE-1",
    evse_id="NL*CPO*E1",
    connector_id="1",
    connector_standard="IEC_62196_T2",
    connector_format="SOCKET",
    connector_power_type="AC_3_PHASE",
)


def token(uid: str, whitelist: WhitelistType, *, valid: bool = True) -> Token:
    return Token(
        country_code="NL",
        party_id="MSP",
        uid=uid,
        type=TokenType.RFID,
        contract_id=f"NL-MSP-C{uid[-3:]}",
        issuer="MSP",
        valid=valid,
        whitelist=whitelist,
        last_updated=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


async def _until(check: object, what: str) -> None:
    for _ in range(200):
        if callable(check) and check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(what)


def test_an_emsp_driver_charges_and_the_cdr_reaches_the_emsp(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            in_process() as (world, _),
            CsmsStore(tmp_path / "csms.sqlite") as store,
        ):
            await world.register()
            await _push_tokens(world)
            for station in ("CP16", "CP201"):
                await store.add_station(station, PASSWORD)
            csms = Csms(store=store, pricing=ocpi_pricing(TARIFF), clock=lambda: T0 + 7200)
            roaming = RoamingCpo(
                csms=csms,
                ocpi=world.cpo.store,
                registry=world.cpo.registry,
                client=world.cpo.client,
                tariff=TARIFF,
                locations={"CP16": LOCATION, "CP201": LOCATION},
                country_code="NL",
                party_id="CPO",
            )
            csms.authorize = roaming.authorize
            csms.on_event.append(roaming.on_event)
            csms.on_bill.append(roaming.on_bill)
            unsent_at_save: list[set[str]] = []

            async def save() -> None:  # what the service would save: here, what is unsent then
                unsent_at_save.append(set(world.cpo.store.cdrs.rows) - world.cpo.store.sent)

            roaming.after_push = save
            async with serve_csms(csms) as server:
                url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/ocpp"
                await asyncio.wait_for(_sessions(world, csms, roaming, url), 20)
            # a bill's CDR is saved once built, before its push (a failed push loses nothing)
            assert unsent_at_save[0], unsent_at_save

    asyncio.run(main())


async def _push_tokens(world: World) -> None:
    party = next(iter(world.emsp.registry.parties.values()))
    tokens = [
        token("RFID-001", WhitelistType.ALWAYS),
        token("RFID-002", WhitelistType.NEVER),  # real-time authorization only
        token("RFID-003", WhitelistType.ALWAYS, valid=False),
        token("RFID-004", WhitelistType.NEVER),  # the eMSP blocks it in real time
    ]
    for t in tokens:
        await world.emsp.client.push_token(party, t)
        world.emsp.store.put_token(t)
    world.emsp.store.put_token(dataclasses.replace(tokens[3], valid=False))


async def _sessions(world: World, csms: Csms, roaming: RoamingCpo, url: str) -> None:
    from ocpp.v16 import call as call16  # type: ignore[import-untyped]

    async with (
        connect_charger(url, "CP201", PASSWORD, "2.0.1") as c201,
        connect_charger(url, "CP16", PASSWORD, "1.6") as c16,
    ):
        assert isinstance(c201, Charger201)
        assert isinstance(c16, Charger16)
        statuses = {
            uid: (await c16.call(call16.Authorize(id_tag=uid))).id_tag_info["status"]
            for uid in ("RFID-001", "RFID-002", "RFID-003", "RFID-004", "RFID-999")
        }
        assert statuses == {
            "RFID-001": "Accepted",  # whitelist ALWAYS
            "RFID-002": "Accepted",  # allowed by the eMSP in real time
            "RFID-003": "Blocked",  # invalidated by the eMSP
            "RFID-004": "Blocked",  # blocked by the eMSP in real time
            "RFID-999": "Invalid",  # no eMSP's
        }
        # a 2.0.1 session with a whitelisted token
        await c201.event("Started", "R-1", 0, 10_000, T0, id_token="RFID-001")
        await c201.event("Updated", "R-1", 1, 12_345, T0 + 900)
        [live] = world.cpo.store.sessions.rows.values()
        assert (live.status, live.kwh, live.auth_method) == (
            SessionStatus.ACTIVE,
            2_345 * 10,
            AuthMethod.WHITELIST,
        )
        served = await world.emsp.client.call(
            "GET", f"{world.cpo_url}/ocpi/cpo/2.2.1/sessions", "token-C0"
        )
        assert isinstance(served, list)
        assert served[0]["kwh"] == Decimal("2.345")
        await c201.event("Ended", "R-1", 2, 14_500, T0 + 1800)
        # a 1.6 session authorized in real time
        tx, status = await c16.start_session("RFID-002", 500, T0)
        assert status == "Accepted"
        await c16.stop_session(tx, 3_500, T0 + 600)
    await _until(lambda: len(world.emsp.store.cdrs.rows) == 2, "both CDRs pushed")
    bills = {(b.charge_point, b.transaction_id): b for b in await csms.store.bills()}
    received = {c.cdr_token.uid: c for c in world.emsp.store.cdrs.rows.values()}
    bill201, bill16 = bills[("CP201", "R-1")], bills[("CP16", str(tx))]
    cdr201, cdr16 = received["RFID-001"], received["RFID-002"]
    assert (bill201.energy_wh, bill201.amount) == (4_500, 113)  # 4.5 kWh at 0.25
    assert cdr201.total_energy == 4_500 * 10
    assert cdr201.total_cost.excl_vat == bill201.amount
    assert cdr16.total_cost.excl_vat == bill16.amount == 75
    assert cdr16.auth_method is AuthMethod.AUTH_REQUEST
    assert cdr16.authorization_reference is not None
    assert world.cpo.store.sent == {cdr201.id, cdr16.id}
    # the session record the back office serves (and the CSMS commits) carries the CDR hash
    app = backoffice_app(csms, None, "op", cdr_hash=roaming.cdr_hash_of)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://csms"
    ) as http:
        doc = (await http.get("/api/sessions/CP201/R-1/commitment")).json()
    record = parse_session_record(bytes.fromhex(doc["record"]))
    assert record.cdr_hash == cdr_hash(cdr201)
    # a correction: the eMSP receives a credit CDR and the corrected CDR
    credit, corrected = await roaming.correct(bill201, energy_wh=4_000, duration_s=1800)
    assert world.emsp.store.cdrs.get(credit.id).credit
    assert world.emsp.store.cdrs.get(credit.id).credit_reference_id == cdr201.id
    assert world.emsp.store.cdrs.get(credit.id).total_cost.excl_vat == -113
    assert world.emsp.store.cdrs.get(corrected.id).total_cost.excl_vat == 100
    # a repeated bill builds and pushes the same CDR: nothing changes at the eMSP
    await roaming.on_bill(bill201)
    assert len(world.emsp.store.cdrs.rows) == 4
    # the month is settled over the pair's two-way channel from the CDRs each side holds
    [(month, received_cdrs)] = by_month(world.emsp.store.cdrs.rows.values()).items()
    [(_, sent_cdrs)] = by_month(world.cpo.store.cdrs.rows.values()).items()
    emsp_side = CdrSettlement(TwoWayChannel(CHANNEL_TERMS, PAYER))  # the eMSP pays
    cpo_side = CdrSettlement(TwoWayChannel(CHANNEL_TERMS, PAYEE))
    assert emsp_side.record(month, PAYEE.public_key, received_cdrs)
    assert cpo_side.record(month, PAYEE.public_key, sent_cdrs)
    assert emsp_side.due == 113 + 75 - 113 + 100
    proposal = emsp_side.pay()
    assert proposal is not None
    cpo_side.channel.countersign(proposal)
    assert cpo_side.channel.payee_balance == 175
    assert cpo_side.due == 0


def _closed_port_url() -> str:
    """A loopback URL nothing listens on (a port the OS gave and took back)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_an_emsp_refusal_or_a_malformed_answer_refuses_even_offline_tokens(
    tmp_path: Path,
) -> None:
    """Only a transport failure or an HTTP 5xx is 'cannot be reached': the eMSP's OCPI 2004
    (Unknown Token, HTTP 404), an HTTP 401 and an answer that is not OCPI refuse ALLOWED and
    ALLOWED_OFFLINE tokens."""

    async def main() -> None:
        async with in_process() as (world, _), CsmsStore(tmp_path / "csms.sqlite") as store:
            await world.register()
            party = next(iter(world.emsp.registry.parties.values()))
            for uid, whitelist in (
                ("RFID-201", WhitelistType.ALLOWED_OFFLINE),
                ("RFID-202", WhitelistType.ALLOWED),
            ):  # pushed to the CPO, unknown to the eMSP: it answers 2004
                await world.emsp.client.push_token(party, token(uid, whitelist))
            roaming = RoamingCpo(
                csms=Csms(store=store, pricing=ocpi_pricing(TARIFF)),
                ocpi=world.cpo.store,
                registry=world.cpo.registry,
                client=world.cpo.client,
                tariff=TARIFF,
                locations={"*": LOCATION},
                country_code="NL",
                party_id="CPO",
            )
            for uid in ("RFID-201", "RFID-202"):
                with pytest.raises(RoamingTokenRefusedError, match="OCPI 2004"):
                    await roaming.authorize(uid)
            [(held, emsp)] = world.cpo.registry.parties.items()
            world.emsp.store.put_token(token("RFID-201", WhitelistType.ALLOWED_OFFLINE))
            stale = dataclasses.replace(emsp.credentials, token="no-longer-valid")
            world.cpo.registry.parties[held] = dataclasses.replace(emsp, credentials=stale)
            with pytest.raises(RoamingTokenRefusedError, match="HTTP 401"):
                await roaming.authorize("RFID-201")  # the eMSP answered: not "unreachable"
            garbled = tuple(  # a URL whose answer is Starlette's plain-text 404, not OCPI
                dataclasses.replace(e, url=f"{world.cpo_url}/nowhere") for e in emsp.endpoints
            )
            world.cpo.registry.parties[held] = dataclasses.replace(emsp, endpoints=garbled)
            with pytest.raises(RoamingTokenRefusedError, match="not an OCPI response"):
                await roaming.authorize("RFID-201")

    asyncio.run(main())


def test_an_emsp_token_cannot_take_over_a_local_drivers_uid(tmp_path: Path) -> None:
    async def main() -> None:
        async with in_process() as (world, _), CsmsStore(tmp_path / "csms.sqlite") as store:
            await world.register()
            party = next(iter(world.emsp.registry.parties.values()))
            csms = Csms(store=store, pricing=ocpi_pricing(TARIFF))
            roaming = RoamingCpo(
                csms=csms,
                ocpi=world.cpo.store,
                registry=world.cpo.registry,
                client=world.cpo.client,
                tariff=TARIFF,
                locations={"*": LOCATION},
                country_code="NL",
                party_id="CPO",
            )
            world.cpo.store.guard = roaming.refuse_local_uid
            local = b"\x07" * 32
            await store.save_token("RFID-301", local, 0)  # a local driver's token
            with pytest.raises(OcpiPartnerError, match="local driver's token") as refused:
                await world.emsp.client.push_token(party, token("RFID-301", WhitelistType.ALWAYS))
            assert refused.value.status_code == 2001
            assert "RFID-301" not in world.cpo.store.tokens.rows
            # held before the driver bound it (or restored): the local binding still decides
            world.cpo.store.put_token(token("RFID-302", WhitelistType.ALWAYS))
            await store.save_token("RFID-302", local, 0)
            for uid in ("RFID-301", "RFID-302"):
                assert await roaming.authorize(uid) is None
                assert await store.token(uid) == (local, 0)
            assert await roaming.before(accept_every_token)("RFID-302") is not None

    asyncio.run(main())


def test_when_the_emsp_cannot_answer_only_offline_allowed_tokens_charge(tmp_path: Path) -> None:
    async def main() -> None:
        async with in_process() as (world, _), CsmsStore(tmp_path / "csms.sqlite") as store:
            await world.register()
            party = next(iter(world.emsp.registry.parties.values()))
            for uid, whitelist in (
                ("RFID-101", WhitelistType.ALLOWED_OFFLINE),
                ("RFID-102", WhitelistType.NEVER),
            ):
                await world.emsp.client.push_token(party, token(uid, whitelist))
                world.emsp.store.put_token(token(uid, whitelist))
            roaming = RoamingCpo(
                csms=Csms(store=store, pricing=ocpi_pricing(TARIFF)),
                ocpi=world.cpo.store,
                registry=world.cpo.registry,
                client=world.cpo.client,
                tariff=TARIFF,
                locations={"*": LOCATION},
                country_code="NL",
                party_id="CPO",
            )
            online = await roaming.authorize("RFID-101")  # asked in real time
            assert online is not None
            assert roaming._pending["RFID-101"][0] is AuthMethod.AUTH_REQUEST
            [(held, emsp)] = world.cpo.registry.parties.items()
            dead = _closed_port_url()  # nothing listens: the eMSP cannot be reached
            gone = tuple(dataclasses.replace(e, url=dead + "/tokens") for e in emsp.endpoints)
            world.cpo.registry.parties[held] = dataclasses.replace(emsp, endpoints=gone)
            async with httpx.AsyncClient(timeout=5) as http:
                roaming.client = OcpiClient(http)
                assert await roaming.authorize("RFID-101") is not None  # offline: allowed
                assert roaming._pending["RFID-101"][0] is AuthMethod.WHITELIST
                with pytest.raises(RoamingTokenRefusedError) as refused:
                    await roaming.authorize("RFID-102")  # real-time only
                assert refused.value.status == "Invalid"
            for status in (500, 502, 503, 504):  # the eMSP's gateway or server failed
                failing = httpx.MockTransport(lambda _, status=status: httpx.Response(status))
                async with httpx.AsyncClient(transport=failing) as http:
                    roaming.client = OcpiClient(http)
                    assert await roaming.authorize("RFID-101") is not None
                    assert roaming._pending["RFID-101"][0] is AuthMethod.WHITELIST
                    with pytest.raises(RoamingTokenRefusedError, match=f"HTTP {status}"):
                        await roaming.authorize("RFID-102")
            assert await roaming.before(accept_every_token)("RFID-NOT-ROAMING") is not None

    asyncio.run(main())
