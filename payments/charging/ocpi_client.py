"""An OCPI 2.2.1 client over an `httpx.AsyncClient` (anyio: runs under asyncio or trio).

It speaks the transport rules: `Authorization: Token <base64 of the token>`, a fresh
`X-Request-ID` per request and an `X-Correlation-ID` per exchange, the response envelope
(`data`, `status_code`, `status_message`, `timestamp`) read strictly; an HTTP client error or an
OCPI `status_code` outside 1xxx raises `OcpiPartnerError`, and so does an answer over
`MAX_RESPONSE_BYTES` (read no further); a transport failure, a timeout or an HTTP server error
(5xx: a gateway in front of the partner, or its server, failed, so the question went
unanswered) raises its subclass `OcpiUnreachableError`. It registers with a party (the client
side of the Token A/B/C handshake), reads versions, pushes CDRs to an eMSP and tokens to a CPO,
and asks an eMSP for real-time authorization of a token.
"""

from __future__ import annotations

import base64
import uuid
from typing import TYPE_CHECKING

import httpx

from . import ocpi_json as j
from .errors import HandshakeError, OcpiFieldError, OcpiPartnerError, OcpiUnreachableError
from .ocpi_cdr import cdr_to_json
from .ocpi_credentials import (
    VERSION,
    Credentials,
    Endpoint,
    InterfaceRole,
    Party,
    credentials_to_json,
    parse_credentials,
    parse_endpoints,
    parse_versions,
)
from .ocpi_session import token_to_json

if TYPE_CHECKING:
    from .ocpi_cdr import Cdr
    from .ocpi_session import Token

MAX_RESPONSE_BYTES = j.MAX_DOCUMENT_BYTES
SERVER_ERROR = 500
"""HTTP statuses from here up: the partner did not answer (`OcpiUnreachableError`)."""
AUTHORIZATION_ALLOWED = frozenset({"ALLOWED", "BLOCKED", "EXPIRED", "NO_CREDIT", "NOT_ALLOWED"})
"""OCPI 2.2.1 AllowedType."""


def authorization(token: str) -> str:
    """The Authorization header value for `token` (OCPI 2.2: base64 of the token)."""
    return "Token " + base64.b64encode(token.encode()).decode()


class OcpiClient:
    """Calls one party's OCPI endpoints with the token it gave us."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def call(
        self,
        method: str,
        url: str,
        token: str,
        *,
        body: object = None,
        correlation_id: str | None = None,
    ) -> object:
        """One request; returns the envelope's `data`."""
        headers = {
            "Authorization": authorization(token),
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": correlation_id or str(uuid.uuid4()),
        }
        content = None
        if body is not None:
            content = j.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            async with self._http.stream(method, url, headers=headers, content=content) as response:
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > MAX_RESPONSE_BYTES:
                        break
        except httpx.HTTPError as error:
            raise OcpiUnreachableError(f"{method} {url}: {error!r}") from None
        if response.status_code >= SERVER_ERROR:  # a gateway or the partner's server failed
            raise OcpiUnreachableError(f"{method} {url}: HTTP {response.status_code}")
        try:
            envelope = j.obj(j.loads(bytes(raw)), "response")
            status = j.integer(envelope, "status_code", "response")
        except OcpiFieldError as error:
            raise OcpiPartnerError(
                response.status_code, 0, f"not an OCPI response: {error}"
            ) from None
        message = j.text(envelope, "status_message", "response", max_len=512, required=False)
        if response.status_code >= 400 or status is None or not 1000 <= status < 2000:
            raise OcpiPartnerError(response.status_code, status or 0, message or "")
        return envelope.get("data")

    async def versions(self, url: str, token: str) -> dict[str, str]:
        return parse_versions(await self.call("GET", url, token))

    async def endpoints(self, versions_url: str, token: str) -> tuple[Endpoint, ...]:
        """The endpoints of version 2.2.1 from a party's versions URL."""
        details = (await self.versions(versions_url, token)).get(VERSION)
        if details is None:
            raise HandshakeError(f"the party does not offer OCPI {VERSION}")
        version, endpoints = parse_endpoints(await self.call("GET", details, token))
        if version != VERSION:
            raise HandshakeError(f"version details for {version}, asked for {VERSION}")
        return endpoints

    async def register(self, versions_url: str, token_a: str, ours: Credentials) -> Party:
        """The client side of registration: with Token A, POST `ours` (carrying our Token B)
        to the party's credentials endpoint; returns the party with its Token C."""
        endpoints = await self.endpoints(versions_url, token_a)
        url = next((e.url for e in endpoints if e.identifier == "credentials"), None)
        if url is None:
            raise HandshakeError("the party has no credentials endpoint")
        theirs = parse_credentials(
            await self.call("POST", url, token_a, body=credentials_to_json(ours))
        )
        return Party(credentials=theirs, endpoints=endpoints, token=ours.token)

    async def push_cdr(self, party: Party, cdr: Cdr) -> None:
        """POST `cdr` to the party's CDRs receiver endpoint, with the token it gave us."""
        url = party.endpoint("cdrs", InterfaceRole.RECEIVER)
        if url is None:
            raise HandshakeError("the party has no CDRs receiver endpoint")
        await self.call("POST", url, party.credentials.token, body=cdr_to_json(cdr))

    async def authorize_token(
        self, party: Party, uid: str, token_type: str
    ) -> tuple[str, str | None]:
        """Real-time authorization of one of the party's (an eMSP's) tokens: its AuthorizationInfo
        `allowed` (ALLOWED, BLOCKED, EXPIRED, NO_CREDIT, NOT_ALLOWED) and its
        `authorization_reference`, if any."""
        url = party.endpoint("tokens", InterfaceRole.SENDER)
        if url is None:
            raise HandshakeError("the party has no tokens sender endpoint")
        where = f"{url}/{uid}/authorize?type={token_type}"
        info = j.obj(await self.call("POST", where, party.credentials.token), "authorization")
        allowed = j.need_text(info, "allowed", "authorization", max_len=16)
        if allowed not in AUTHORIZATION_ALLOWED:
            raise OcpiFieldError("authorization.allowed", f"{allowed!r} is not an AllowedType")
        reference = j.text(
            info, "authorization_reference", "authorization", max_len=36, required=False
        )
        return allowed, reference

    async def push_token(self, party: Party, token: Token) -> None:
        """PUT `token` to the party's (a CPO's) tokens receiver endpoint."""
        url = party.endpoint("tokens", InterfaceRole.RECEIVER)
        if url is None:
            raise HandshakeError("the party has no tokens receiver endpoint")
        where = f"{url}/{token.country_code}/{token.party_id}/{token.uid}"
        await self.call("PUT", where, party.credentials.token, body=token_to_json(token))
