"""The CSMS's OCPI side as a service: `serve_roaming` serves the CPO's OCPI modules (versions,
credentials, tariffs, sessions, CDRs, tokens: `ocpi_app`) on asyncio beside the CSMS, and joins
a `RoamingCpo` to the CSMS, so an eMSP that registers with the Token A the operator handed it
(the credentials handshake) gets its tokens authorized, its drivers' Sessions and CDRs, and CDRs
pushed to it with the Token C it issued.

With `persist`, the registered parties, unspent Token As, the tokens pushed and the CDRs sent
survive a restart as rows of the CSMS's sqlite store (`roaming_state.py`): what an OCPI request
that is not a GET changed is written before its successful response is sent (a refused request
writes nothing), and after every CDR push; restored at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
from typing import TYPE_CHECKING

import httpx

from .backoffice import serve_backoffice
from .ocpi_app import ocpi_app
from .ocpi_client import OcpiClient
from .ocpi_credentials import Credentials, CredentialsRole, Registry, Role
from .ocpi_store import OcpiStore
from .roaming_cpo import RoamingCpo
from .roaming_state import RoamingRows

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from starlette.types import Message, Receive, Scope, Send

    from wallet.client import NodeClient

    from .csms import Csms
    from .ocpi_location import CdrLocation
    from .tariff import Tariff


@contextlib.asynccontextmanager
async def serve_roaming(
    csms: Csms,
    *,
    tariff: Tariff,
    locations: Mapping[str, CdrLocation],
    country_code: str,
    party_id: str,
    token_a: str,
    host: str,
    port: int,
    node: NodeClient | None = None,
    retry_s: float = 60.0,
    persist: bool = False,
) -> AsyncIterator[tuple[RoamingCpo, str]]:
    """Serve the CPO's OCPI modules on `host:port` until the context exits; yields the roaming
    side (already hooked into `csms`: tried before its authorizer) and the versions URL. A CDR
    whose push failed is pushed again every `retry_s` seconds."""
    role = CredentialsRole(
        role=Role.CPO, party_id=party_id, country_code=country_code, business_name=party_id
    )
    registry = Registry(ours=Credentials(token="unset", url="", roles=(role,)))
    store = OcpiStore()
    rows = RoamingRows(
        csms.store.db, registry, store, lock=csms.store.write_lock, broken=csms.store.mark_broken
    )
    if not persist or not await rows.restore():
        registry.issue(token_a)
    store.put_tariff(tariff)

    async def save() -> None:
        if persist:
            await rows.save()

    async with httpx.AsyncClient(timeout=30) as http:
        client = OcpiClient(http)
        roaming = RoamingCpo(
            csms=csms,
            ocpi=store,
            registry=registry,
            client=client,
            tariff=tariff,
            locations=locations,
            country_code=country_code,
            party_id=party_id,
            node=node,
        )
        store.guard = roaming.refuse_local_uid  # a local driver's uid is not an eMSP's
        served = ocpi_app(
            role=Role.CPO,
            registry=registry,
            store=store,
            client=client,
            now=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0),
            new_token=lambda: secrets.token_urlsafe(32),
        )

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["method"] == "GET":
                await served(scope, receive, send)
                return

            async def saved_then(message: Message) -> None:  # the state before the answer
                if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                    await save()
                await send(message)

            await served(scope, receive, saved_then)

        async with serve_backoffice(app, host, port) as bound:
            versions = f"http://{host}:{bound}/ocpi/versions"
            registry.ours = Credentials(token="unset", url=versions, roles=(role,))
            csms.authorize = roaming.before(csms.authorize)
            csms.on_event.append(roaming.on_event)
            csms.on_bill.append(roaming.on_bill)
            roaming.after_push = save
            retry = asyncio.create_task(_push_unsent_forever(roaming, retry_s))
            try:
                yield roaming, versions
            finally:
                retry.cancel()
                await asyncio.gather(retry, return_exceptions=True)


async def _push_unsent_forever(roaming: RoamingCpo, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        await roaming.push_unsent()
