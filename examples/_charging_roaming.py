"""The example's roaming driver: an eMSP registers with the CSMS over OCPI 2.2.1, its driver
charges, the eMSP receives the CDR, and CPO and eMSP settle the month over a two-way channel.

The eMSP is an `ocpi_app` of its own on loopback: it registers with the Token A the CPO handed
it (the credentials handshake: Token B, Token C), pushes its driver's token, and receives the
CDR the CSMS pushes when the session is billed. Both then hold the same CDR; they open a two-way
channel on the devnet (the eMSP funds it), and the eMSP's `CdrSettlement` proposes the month's
net, which the CPO's countersigns.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import secrets
from typing import TYPE_CHECKING, Any

import httpx

from payments.channels.twoway import TwoWayChannel
from payments.charging import ocpi_json
from payments.charging.backoffice import serve_backoffice
from payments.charging.cdr_settlement import CdrSettlement, SettlementPeriods, by_month
from payments.charging.ocpi_app import ocpi_app
from payments.charging.ocpi_client import OcpiClient
from payments.charging.ocpi_credentials import Credentials, CredentialsRole, Registry, Role
from payments.charging.ocpi_location import CdrLocation, cdr_location_to_json
from payments.charging.ocpi_session import Token, TokenType, WhitelistType
from payments.charging.ocpi_store import OcpiStore
from payments.charging.simulator import Charger201, connect_charger
from payments.ledger.funder import ChannelPolicy

if TYPE_CHECKING:
    from pathlib import Path

    from tangle.protocol.signature import Signer

TOKEN_A = "example-token-a"
EMSP_TOKEN = Token(
    country_code="NL",
    party_id="EMP",
    uid="EMSP-RFID-1",
    type=TokenType.RFID,
    contract_id="NL-EMP-C00001-1",
    issuer="Example eMSP",
    valid=True,
    whitelist=WhitelistType.ALLOWED,
    last_updated=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
)


TARIFF_JSON = (
    b'{"country_code": "NL", "party_id": "TPY", "id": "EXAMPLE-ENERGY", "currency": "EUR",'
    b' "elements": [{"price_components": [{"type": "ENERGY", "price": 0.30, "step_size": 1}]}],'
    b' "last_updated": "2026-01-01T00:00:00Z"}'
)
LOCATION = CdrLocation(
    id="EXAMPLE-LOC",
    address="Example Street 1",
    city="Arnhem",
    country="NLD",
    latitude="51.985",
    longitude="5.899",
    evse_uid="EXAMPLE-EVSE",
    evse_id="NL*TPY*E1",
    connector_id="1",
    connector_standard="IEC_62196_T2",
    connector_format="SOCKET",
    connector_power_type="AC_3_PHASE",
)


def roaming_files(work: Path) -> list[str]:
    """The CSMS's roaming arguments: its OCPI tariff and location, written under `work`."""
    (work / "tariff.json").write_bytes(TARIFF_JSON)
    (work / "location.json").write_text(ocpi_json.dumps(cdr_location_to_json(LOCATION)))
    return [
        "--ocpi-port",
        "0",
        "--tariff",
        str(work / "tariff.json"),
        "--location",
        str(work / "location.json"),
    ]


async def roam(
    devnet: Path, work: Path, csms: dict[str, Any], cpo: Signer, t0: float, password: str
) -> dict[str, Any]:
    """The roaming session and the settlement (see the module docstring)."""
    role = CredentialsRole(role=Role.EMSP, party_id="EMP", country_code="NL", business_name="EMP")
    registry = Registry(ours=Credentials(token="unset", url="", roles=(role,)))
    store = OcpiStore()
    tokens = (f"emsp-token-c-{n}-{secrets.token_hex(8)}" for n in itertools.count())
    async with httpx.AsyncClient(timeout=30) as http:
        client = OcpiClient(http)
        app = ocpi_app(
            role=Role.EMSP,
            registry=registry,
            store=store,
            client=client,
            now=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0),
            new_token=lambda: next(tokens),
        )
        async with serve_backoffice(app, "127.0.0.1", 0) as port:
            versions = f"http://127.0.0.1:{port}/ocpi/versions"
            token_b = secrets.token_hex(16)
            registry.issue(token_b)
            ours = Credentials(token=token_b, url=versions, roles=(role,))
            party = await client.register(csms["ocpi"], TOKEN_A, ours)
            registry.bind(party)
            await client.push_token(party, EMSP_TOKEN)
            store.put_token(EMSP_TOKEN)  # the eMSP allows it in real time
            async with connect_charger(csms["url"], "CP-201", password, "2.0.1") as charger:
                assert isinstance(charger, Charger201)
                tx, at = f"R-{int(t0)}", t0 + 80_000
                answer = await charger.event("Started", tx, 0, 10_000, at, id_token=EMSP_TOKEN.uid)
                await charger.event("Updated", tx, 1, 12_000, at + 600)
                await charger.event("Ended", tx, 2, 14_250, at + 1_200)
            for _ in range(240):  # the CSMS pushes the CDR once the session is billed
                if store.cdrs.rows:
                    break
                await asyncio.sleep(0.25)
    cdrs = list(store.cdrs.rows.values())
    settled = await _settle(devnet, work, cpo, cdrs)
    return {
        "start_status": answer.id_token_info["status"],
        "cdrs_received_by_emsp": [
            {"id": c.id, "energy_wh": c.total_energy // 10, "total": c.total_cost.excl_vat}
            for c in cdrs
        ],
        **settled,
    }


async def _settle(devnet: Path, work: Path, cpo: Signer, cdrs: list[Any]) -> dict[str, Any]:
    from ._devnet import devnet_payer

    policy = ChannelPolicy(bidirectional=True)
    async with devnet_payer(devnet, work / "emsp", 30_000, faucet_key=True, policy=policy) as p:
        funder, emsp_key, _, min_output = p
        terms = await funder.open(cpo.public_key, max(10_000, min_output))
        emsp = CdrSettlement(TwoWayChannel(terms, emsp_key))
        cpo_side = CdrSettlement(TwoWayChannel(terms, cpo))
        async with (  # each side's periods survive a restart
            SettlementPeriods(work / "emsp-periods.sqlite") as emsp_periods,
            SettlementPeriods(work / "cpo-periods.sqlite") as cpo_periods,
        ):
            for month, held in by_month(cdrs).items():
                await emsp_periods.record(emsp, month, cpo.public_key, held)
                await cpo_periods.record(cpo_side, month, cpo.public_key, held)
        due = emsp.due
        proposal = emsp.pay()
        if proposal is not None:
            signed = cpo_side.channel.countersign(proposal)
            assert signed.payee_signature is not None
            emsp.channel.complete(proposal.proof.sequence, signed.payee_signature)
        return {
            "settled_over_two_way_channel": due,
            "channel_payee_balance": emsp.channel.payee_balance,
            "settlement_due_after": emsp.due,
        }
