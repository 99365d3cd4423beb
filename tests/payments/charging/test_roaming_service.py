"""The CSMS's OCPI service over real loopback sockets (`payments.charging.roaming_service`, what
`tanglepay charging serve --ocpi-port` runs): an eMSP (its own `ocpi_app`, served the same way)
registers with the Token A the operator handed it, pushes a token, and a real 1.6J charger's
session with that token ends in a CDR pushed to the eMSP over HTTP; other tokens still reach the
CSMS's own authorizer; a restarted service still knows the partner, its token and the CDR sent."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import TYPE_CHECKING

import httpx

from payments.charging.backoffice import serve_backoffice
from payments.charging.csms import Csms, serve_csms
from payments.charging.ocpi_app import ocpi_app
from payments.charging.ocpi_client import OcpiClient, authorization
from payments.charging.ocpi_credentials import Credentials, CredentialsRole, Registry, Role
from payments.charging.ocpi_session import WhitelistType
from payments.charging.ocpi_store import OcpiStore
from payments.charging.pricing import ocpi_pricing
from payments.charging.roaming_service import serve_roaming
from payments.charging.roaming_state import RoamingRows
from payments.charging.simulator import Charger16, connect_charger
from payments.charging.store import CsmsStore

from .test_ocpi_app import NOW
from .test_roaming_cpo import LOCATION, TARIFF, token

if TYPE_CHECKING:
    from pathlib import Path

T0 = 1_780_000_000.0


def _fresh_cpo() -> tuple[Registry, OcpiStore]:
    role = CredentialsRole(role=Role.CPO, party_id="CPO", country_code="NL", business_name="CPO")
    return Registry(ours=Credentials(token="unset", url="", roles=(role,))), OcpiStore()


def test_an_emsp_registers_pushes_a_token_and_receives_the_cdr(tmp_path: Path) -> None:
    async def main() -> None:
        async with CsmsStore(tmp_path / "csms.sqlite") as store:
            await store.add_station("CP16", "pw")
            csms = Csms(store=store, pricing=ocpi_pricing(TARIFF))
            async with (
                serve_roaming(
                    csms,
                    tariff=TARIFF,
                    locations={"*": LOCATION},
                    country_code="NL",
                    party_id="CPO",
                    token_a="token-A",
                    host="127.0.0.1",
                    port=0,
                    persist=True,
                ) as (_, versions),
                httpx.AsyncClient(timeout=10) as http,
            ):
                emsp_store = OcpiStore()
                role = CredentialsRole(
                    role=Role.EMSP, party_id="MSP", country_code="NL", business_name="MSP"
                )
                registry = Registry(ours=Credentials(token="unset", url="", roles=(role,)))
                tokens = (f"emsp-C{n}" for n in itertools.count())
                app = ocpi_app(
                    role=Role.EMSP,
                    registry=registry,
                    store=emsp_store,
                    client=OcpiClient(http),
                    now=lambda: NOW,
                    new_token=lambda: next(tokens),
                )
                async with serve_backoffice(app, "127.0.0.1", 0) as port:
                    url = f"http://127.0.0.1:{port}/ocpi/versions"
                    registry.issue("token-B")
                    ours = Credentials(token="token-B", url=url, roles=(role,))
                    party = await OcpiClient(http).register(versions, "token-A", ours)
                    registry.bind(party)
                    # the handshake is in the CSMS's store as soon as the eMSP has its answer
                    saved = RoamingRows(store.db, *_fresh_cpo())
                    assert await saved.restore()
                    [held] = saved.registry.parties.values()
                    assert held.credentials.token == "token-B"
                    before = store.db.total_changes  # a refused request writes nothing
                    refused = await http.put(
                        versions.replace("/versions", "/cpo/2.2.1/tokens/NL/MSP/RFID-9"),
                        headers={"Authorization": authorization("not-a-token")},
                        json={},
                    )
                    assert refused.status_code == 401
                    assert store.db.total_changes == before
                    rfid = token("RFID-777", WhitelistType.ALLOWED)
                    await OcpiClient(http).push_token(party, rfid)
                    emsp_store.put_token(rfid)  # the eMSP allows it in real time
                    assert (await csms.authorize("ANY-CARD")) is not None  # the CSMS's own
                    async with serve_csms(csms) as server:
                        ws = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/ocpp"
                        async with connect_charger(ws, "CP16", "pw", "1.6") as charger:
                            assert isinstance(charger, Charger16)
                            tx, status = await charger.start_session("RFID-777", 1_000, T0)
                            assert status == "Accepted"
                            await charger.stop_session(tx, 5_000, T0 + 1200)
                        kept = _fresh_cpo()  # the CDR reached the eMSP and its mark is saved
                        for _ in range(300):
                            if await RoamingRows(store.db, *kept).restore() and kept[1].sent:
                                break
                            await asyncio.sleep(0.01)
            [cdr] = emsp_store.cdrs.rows.values()
            [bill] = await store.bills()
            assert cdr.cdr_token.uid == "RFID-777"
            assert cdr.total_energy == 4_000 * 10
            assert cdr.total_cost.excl_vat == bill.amount == 100
            assert dataclasses.asdict(cdr.cdr_location) == dataclasses.asdict(LOCATION)
            # restarted: the partner, its token and the CDR sent are still known
            async with serve_roaming(
                Csms(store=store, pricing=ocpi_pricing(TARIFF)),
                tariff=TARIFF,
                locations={"*": LOCATION},
                country_code="NL",
                party_id="CPO",
                token_a="token-A",
                host="127.0.0.1",
                port=0,
                persist=True,
            ) as (again, _):
                assert not again.registry.pending  # Token A stays spent
                [emsp] = again.registry.parties.values()
                assert emsp.credentials.token == "token-B"
                assert again.ocpi.tokens.get("RFID-777") == rfid
                assert again.ocpi.cdrs.get(cdr.id) == cdr
                assert cdr.id in again.ocpi.sent
                assert await again.push_unsent() == 0  # never sent twice

    asyncio.run(main())
