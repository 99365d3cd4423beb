"""A CPO and an eMSP, each an `ocpi_app`, talking OCPI 2.2.1 through `OcpiClient`: in process
over `httpx.ASGITransport`, and once over real loopback sockets (hypercorn on trio)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest
import trio

from payments.charging import ocpi_json
from payments.charging.errors import OcpiPartnerError
from payments.charging.ocpi_app import ocpi_app
from payments.charging.ocpi_cdr import Cdr, build_cdr, parse_cdr
from payments.charging.ocpi_client import OcpiClient, authorization
from payments.charging.ocpi_credentials import (
    Credentials,
    CredentialsRole,
    InterfaceRole,
    Party,
    Registry,
    Role,
    credentials_to_json,
    parse_credentials,
)
from payments.charging.ocpi_session import SessionStatus, parse_session, parse_token
from payments.charging.ocpi_store import OcpiStore
from payments.charging.ocpi_tariff import parse_tariff
from payments.charging.tariff import PeriodKind
from tangle.http.api import serve_api

from .vectors import at, load, usage

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.applications import Starlette

NOW = dt.datetime(2026, 3, 6, 12, tzinfo=dt.UTC)


def _credentials(role: Role, party_id: str, url: str) -> Credentials:
    return Credentials(
        token="unset",
        url=url,
        roles=(
            CredentialsRole(
                role=role, party_id=party_id, country_code="NL", business_name=party_id
            ),
        ),
    )


@dataclass
class Side:
    registry: Registry
    store: OcpiStore
    client: OcpiClient


@dataclass
class World:
    cpo: Side
    emsp: Side
    cpo_url: str
    emsp_url: str

    async def register(self) -> Party:
        """The eMSP registers with the CPO: Token A from the CPO, the eMSP's Token B."""
        self.cpo.registry.issue("token-A")
        self.emsp.registry.issue("token-B")
        ours = dataclasses.replace(self.emsp.registry.ours, token="token-B")
        party = await self.emsp.client.register(f"{self.cpo_url}/ocpi/versions", "token-A", ours)
        self.emsp.registry.bind(party)
        return party


def _apps(
    http: httpx.AsyncClient, cpo_url: str, emsp_url: str
) -> tuple[World, Starlette, Starlette]:
    tokens = (f"token-C{n}" for n in itertools.count())
    sides = {}
    apps = {}
    for role, name, url in ((Role.CPO, "CPO", cpo_url), (Role.EMSP, "MSP", emsp_url)):
        side = Side(
            registry=Registry(ours=_credentials(role, name, f"{url}/ocpi/versions")),
            store=OcpiStore(limit=50),
            client=OcpiClient(http),
        )
        sides[role] = side
        apps[role] = ocpi_app(
            role=role,
            registry=side.registry,
            store=side.store,
            client=side.client,
            now=lambda: NOW,
            new_token=lambda: next(tokens),
            max_page=2,
        )
    world = World(cpo=sides[Role.CPO], emsp=sides[Role.EMSP], cpo_url=cpo_url, emsp_url=emsp_url)
    return world, apps[Role.CPO], apps[Role.EMSP]


@asynccontextmanager
async def in_process() -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    """Both apps behind one ASGI transport that routes by host name."""
    routes: dict[str, Starlette] = {}

    async def by_host(scope, receive, send):  # type: ignore[no-untyped-def]
        host = dict(scope["headers"])[b"host"].decode()
        await routes[host](scope, receive, send)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=by_host)) as http:
        world, cpo, emsp = _apps(http, "http://cpo.test", "http://emsp.test")
        routes.update({"cpo.test": cpo, "emsp.test": emsp})
        yield world, http


def _cdr(cdr_id: str = "CDR-1", minutes: int = 120) -> Cdr:
    tariff = parse_tariff(load("tariff_10_025kwh_parking_start.json"))
    session = dataclasses.replace(
        parse_session(load("session_example_1_simple_start.json")),
        status=SessionStatus.COMPLETED,
        end_date_time=at(13),
    )
    location = parse_cdr(load("cdr_example.json")).cdr_location
    used = usage(at(10), (PeriodKind.CHARGING, minutes, 20_000), (PeriodKind.PARKING, 40, 0))
    return build_cdr(session, used, tariff, location, cdr_id=cdr_id, now=at(13, minutes % 60))


async def test_handshake_then_cdr_push_and_paginated_lists() -> None:
    async with in_process() as (world, http):
        party = await world.register()
        assert party.credentials.token == "token-C0"
        assert party.credentials.roles[0].role == Role.CPO
        assert world.cpo.registry.pending == set()  # Token A is spent
        cpo_view = world.cpo.registry.authenticate("token-C0")
        assert cpo_view is not None
        assert cpo_view.credentials.token == "token-B"
        assert cpo_view.endpoint("cdrs", InterfaceRole.RECEIVER) == (
            "http://emsp.test/ocpi/emsp/2.2.1/cdrs"
        )
        # Token A no longer works
        with pytest.raises(OcpiPartnerError) as refused:
            await world.emsp.client.call("GET", f"{world.cpo_url}/ocpi/versions", "token-A")
        assert refused.value.http_status == 401

        # the CPO pushes three CDRs; the eMSP keeps them, a repeat is accepted once
        cdrs = [_cdr(f"CDR-{n}", 60 + n) for n in range(3)]
        for cdr in cdrs:
            world.cpo.store.add_cdr(cdr)
            await world.cpo.client.push_cdr(cpo_view, cdr)
            world.cpo.store.mark_sent(cdr.id)
        await world.cpo.client.push_cdr(cpo_view, cdrs[0])
        assert world.emsp.store.cdrs.rows == {c.id: c for c in cdrs}

        # the eMSP pages through the CPO's CDRs, 2 at a time, following Link
        url: str | None = party.endpoint("cdrs", InterfaceRole.SENDER)
        seen = []
        for _ in range(5):
            if url is None:
                break
            response = await http.get(
                url,
                headers={
                    "Authorization": authorization("token-C0"),
                    "X-Request-ID": "r1",
                    "X-Correlation-ID": "c1",
                },
            )
            assert response.headers["X-Total-Count"] == "3"
            assert response.headers["X-Limit"] == "2"
            assert response.headers["X-Request-ID"] == "r1"
            assert response.headers["X-Correlation-ID"] == "c1"
            body = ocpi_json.loads(response.content)
            assert isinstance(body, dict)
            assert body["status_code"] == 1000
            seen += [parse_cdr(c).id for c in body["data"]]
            link = response.headers.get("Link")
            url = None if link is None else link.split(">")[0].removeprefix("<")
        assert seen == ["CDR-0", "CDR-1", "CDR-2"]

        # tariffs and sessions are served as the CPO holds them
        tariff = parse_tariff(load("tariff_4_complex.json"))
        world.cpo.store.put_tariff(tariff)
        session = parse_session(load("session_example_2_short_finished.json"))
        world.cpo.store.put_session(session)
        base = f"{world.cpo_url}/ocpi/cpo/2.2.1"
        served = await world.emsp.client.call("GET", f"{base}/tariffs", "token-C0")
        assert [parse_tariff(t) for t in served] == [tariff]  # type: ignore[attr-defined]
        served = await world.emsp.client.call("GET", f"{base}/sessions", "token-C0")
        assert [parse_session(t) for t in served] == [session]  # type: ignore[attr-defined]
        with pytest.raises(OcpiPartnerError) as refused:
            await world.emsp.client.call("GET", f"{base}/cdrs?limit=-1", "token-C0")
        assert refused.value.status_code == 2001

        # the eMSP pushes a token to the CPO's tokens receiver, then revokes it by PATCH
        token = parse_token(load("token_example_2_full_rfid.json"))
        mine = dataclasses.replace(token, country_code="NL", party_id="MSP")
        await world.emsp.client.push_token(party, mine)
        assert world.cpo.store.tokens.get(mine.uid) == mine
        patch_url = f"{base}/tokens/NL/MSP/{mine.uid}"
        await world.emsp.client.call("PATCH", patch_url, "token-C0", body={"valid": False})
        assert not world.cpo.store.tokens.get(mine.uid).valid
        with pytest.raises(OcpiPartnerError) as refused:  # not this eMSP's party id
            await world.emsp.client.push_token(party, token)
        assert refused.value.http_status == 401

        # a date window
        window = await world.emsp.client.call(
            "GET",
            f"{world.cpo_url}/ocpi/cpo/2.2.1/cdrs?date_from=2015-06-29T13:01:00Z",
            "token-C0",
        )
        assert [parse_cdr(c).id for c in window] == ["CDR-1", "CDR-2"]  # type: ignore[attr-defined]


async def test_refusals_carry_ocpi_status_codes_and_change_nothing() -> None:
    async with in_process() as (world, http):
        # no token, unknown token, Token A beyond versions/credentials
        world.cpo.registry.issue("token-A")
        base = f"{world.cpo_url}/ocpi"
        assert (await http.get(f"{base}/versions")).status_code == 401
        assert (
            await http.get(f"{base}/versions", headers={"Authorization": "Token eA=="})
        ).status_code == 401
        with pytest.raises(OcpiPartnerError) as refused:
            await world.emsp.client.call("GET", f"{base}/cpo/2.2.1/tariffs", "token-A")
        assert refused.value.http_status == 401
        # a credentials body that breaks a rule: 400 / 2001, Token A still pending
        with pytest.raises(OcpiPartnerError) as refused:
            await world.emsp.client.call(
                "POST", f"{base}/2.2.1/credentials", "token-A", body={"token": 1}
            )
        assert (refused.value.http_status, refused.value.status_code) == (400, 2001)
        # credentials whose versions URL cannot be used: 3001
        bad = {
            "token": "B",
            "url": "http://emsp.test/nowhere",
            "roles": [
                {
                    "role": "EMSP",
                    "party_id": "MSP",
                    "country_code": "NL",
                    "business_details": {"name": "x"},
                }
            ],
        }
        with pytest.raises(OcpiPartnerError) as refused:
            await world.emsp.client.call("POST", f"{base}/2.2.1/credentials", "token-A", body=bad)
        assert refused.value.status_code == 3001
        assert world.cpo.registry.pending == {"token-A"}
        assert world.cpo.registry.parties == {}
        # a hostile body on the eMSP's CDR receiver, once registered
        party = await world.register()
        cpo_view = world.cpo.registry.authenticate(party.credentials.token)
        assert cpo_view is not None
        with pytest.raises(OcpiPartnerError) as refused:
            await world.cpo.client.call(
                "POST", f"{world.emsp_url}/ocpi/emsp/2.2.1/cdrs", "token-B", body={"id": "x"}
            )
        assert refused.value.status_code == 2001
        oversized = await http.post(
            f"{world.emsp_url}/ocpi/emsp/2.2.1/cdrs",
            content=b" " * (ocpi_json.MAX_DOCUMENT_BYTES + 10),
            headers={"Authorization": authorization("token-B")},
        )
        assert oversized.status_code == 400
        # a changed CDR under a used id is refused
        await world.cpo.client.push_cdr(cpo_view, _cdr("CDR-9"))
        with pytest.raises(OcpiPartnerError):
            await world.cpo.client.push_cdr(cpo_view, _cdr("CDR-9", minutes=61))
        assert world.emsp.store.cdrs.rows["CDR-9"] == _cdr("CDR-9")
        # registering again with POST is not allowed; PUT rotates Token C; DELETE unregisters
        with pytest.raises(OcpiPartnerError) as refused:
            await world.emsp.client.call("POST", f"{base}/2.2.1/credentials", "token-C0", body=bad)
        assert refused.value.http_status == 405
        ours = dataclasses.replace(world.emsp.registry.ours, token="token-B")
        updated = parse_credentials(
            await world.emsp.client.call(
                "PUT", f"{base}/2.2.1/credentials", "token-C0", body=credentials_to_json(ours)
            )
        )
        assert updated.token == "token-C1"
        with pytest.raises(OcpiPartnerError):
            await world.emsp.client.call("GET", f"{base}/2.2.1/credentials", "token-C0")
        await world.emsp.client.call("DELETE", f"{base}/2.2.1/credentials", "token-C1")
        assert world.cpo.registry.parties == {}


async def test_over_real_loopback_sockets() -> None:
    """The same handshake and CDR push, both apps served by hypercorn on 127.0.0.1."""
    async with httpx.AsyncClient() as http, trio.open_nursery() as nursery:
        world, cpo, emsp = _apps(http, "unbound", "unbound")
        cpo_port = await nursery.start(serve_api, cpo, "127.0.0.1", 0)
        emsp_port = await nursery.start(serve_api, emsp, "127.0.0.1", 0)
        world.cpo_url, world.emsp_url = (f"http://127.0.0.1:{p}" for p in (cpo_port, emsp_port))
        for side, url in ((world.cpo, world.cpo_url), (world.emsp, world.emsp_url)):
            side.registry.ours = dataclasses.replace(side.registry.ours, url=f"{url}/ocpi/versions")
        party = await world.register()
        cpo_view = world.cpo.registry.authenticate(party.credentials.token)
        assert cpo_view is not None
        await world.cpo.client.push_cdr(cpo_view, _cdr())
        assert list(world.emsp.store.cdrs.rows) == ["CDR-1"]
        # a party whose versions URL refuses connections: 3001, nothing registered
        world.cpo.registry.issue("token-A2")
        gone = credentials_to_json(
            dataclasses.replace(
                world.emsp.registry.ours, token="token-B2", url="http://127.0.0.1:1/ocpi/versions"
            )
        )
        with pytest.raises(OcpiPartnerError) as refused:
            await world.emsp.client.call(
                "POST", f"{world.cpo_url}/ocpi/2.2.1/credentials", "token-A2", body=gone
            )
        assert refused.value.status_code == 3001
        assert "token-A2" in world.cpo.registry.pending
        nursery.cancel_scope.cancel()
