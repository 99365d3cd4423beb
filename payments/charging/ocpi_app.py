"""The OCPI 2.2.1 modules a party serves, as a Starlette app (ASGI; runs under any loop).

```
GET                 /ocpi/versions                       versions (any known token, Token A too)
GET                 /ocpi/2.2.1                          version details: our endpoints
GET POST PUT DELETE /ocpi/2.2.1/credentials              the Token A/B/C handshake
GET                 /ocpi/cpo/2.2.1/{tariffs,sessions,cdrs}   CPO, Sender: paginated lists
GET PUT PATCH       /ocpi/cpo/2.2.1/tokens/{cc}/{party}/{uid}   CPO, Receiver: an eMSP's tokens
POST                /ocpi/emsp/2.2.1/cdrs                eMSP, Receiver: a CDR pushed by a CPO
GET                 /ocpi/emsp/2.2.1/cdrs/{id}           eMSP, Receiver: a CDR received
POST                /ocpi/emsp/2.2.1/tokens/{uid}/authorize   eMSP, Sender: real-time
                                                         authorization of one of its tokens
```

Real-time authorization answers an AuthorizationInfo: `allowed` ALLOWED for a valid token of
the eMSP's, BLOCKED for one it invalidated; an unknown token is OCPI status 2004 (Unknown
Token).

Every answer is the OCPI envelope (`data`, `status_code`, `status_message`, `timestamp`) and
echoes `X-Request-ID` and `X-Correlation-ID`. A missing or unknown token gets HTTP 401; a
pending Token A only reaches versions and credentials; a body that breaks a rule gets HTTP 400
with status 2001 and changes nothing; a partner whose API cannot be used during the handshake
gets 3001. Lists take `offset`, `limit` (at most `max_page`), `date_from`, `date_to` and answer
with `X-Total-Count`, `X-Limit` and a `Link: <...>; rel="next"` header while more remain.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from . import ocpi_json as j
from .errors import (
    ChargingError,
    HandshakeError,
    OcpiAuthError,
    OcpiFieldError,
    UnknownObjectError,
)
from .ocpi_cdr import cdr_to_json, parse_cdr
from .ocpi_credentials import (
    VERSION,
    Credentials,
    Endpoint,
    InterfaceRole,
    Party,
    Registry,
    Role,
    credentials_to_json,
    endpoints_to_json,
    parse_credentials,
)
from .ocpi_session import parse_token, patch_token, session_to_json, token_to_json
from .ocpi_store import OcpiStore, page
from .ocpi_tariff import tariff_to_json

if TYPE_CHECKING:
    import datetime as dt

    from starlette.requests import Request

    from .ocpi_client import OcpiClient

Handler = Callable[["Request", "Party | None"], Awaitable[Response]]


class _Refused(Exception):
    def __init__(self, http: int, code: int, message: str) -> None:
        super().__init__(message)
        self.http, self.code, self.message = http, code, message


def ocpi_app(
    *,
    role: Role,
    registry: Registry,
    store: OcpiStore,
    client: OcpiClient,
    now: Callable[[], dt.datetime],
    new_token: Callable[[], str],
    max_page: int = 100,
) -> Starlette:
    """The app of a CPO or an eMSP; `now` and `new_token` (fresh Token Cs) are passed in."""

    def envelope(
        request: Request,
        data: object,
        *,
        http: int = 200,
        code: int = 1000,
        message: str = "Success",
        headers: dict[str, str] | None = None,
    ) -> Response:
        body = {
            "data": data,
            "status_code": code,
            "status_message": message,
            "timestamp": j.format_timestamp(now()),
        }
        echo = {
            "X-Request-ID": request.headers.get("x-request-id") or str(uuid.uuid4()),
            "X-Correlation-ID": request.headers.get("x-correlation-id") or str(uuid.uuid4()),
        }
        return Response(
            j.dumps(body),
            status_code=http,
            media_type="application/json",
            headers=echo | (headers or {}),
        )

    def token_of(request: Request) -> str:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme != "Token" or not value:
            raise OcpiAuthError("no Authorization: Token header")
        try:
            return base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return value  # OCPI 2.1.1 parties send the token as it is

    async def body_of(request: Request) -> object:
        chunks, size = [], 0
        stream = request.stream()
        try:
            async for chunk in stream:
                size += len(chunk)
                if size > j.MAX_DOCUMENT_BYTES:
                    raise OcpiFieldError("body", f"more than {j.MAX_DOCUMENT_BYTES} bytes")
                chunks.append(chunk)
        finally:
            await stream.aclose()
        return j.loads(b"".join(chunks))

    def endpoints(request: Request) -> tuple[Endpoint, ...]:
        base = str(request.base_url).rstrip("/") + "/ocpi"
        found = [
            Endpoint(
                identifier="credentials",
                role=InterfaceRole.SENDER,
                url=f"{base}/{VERSION}/credentials",
            )
        ]
        if role == Role.CPO:
            found += [
                Endpoint(identifier=m, role=InterfaceRole.SENDER, url=f"{base}/cpo/{VERSION}/{m}")
                for m in ("tariffs", "sessions", "cdrs")
            ]
            found.append(
                Endpoint(
                    identifier="tokens",
                    role=InterfaceRole.RECEIVER,
                    url=f"{base}/cpo/{VERSION}/tokens",
                )
            )
        else:
            found.append(
                Endpoint(
                    identifier="cdrs",
                    role=InterfaceRole.RECEIVER,
                    url=f"{base}/emsp/{VERSION}/cdrs",
                )
            )
            found.append(
                Endpoint(
                    identifier="tokens",
                    role=InterfaceRole.SENDER,
                    url=f"{base}/emsp/{VERSION}/tokens",
                )
            )
        return tuple(found)

    def guarded(
        handler: Handler, *, pending_allowed: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                token = token_of(request)
                party = registry.authenticate(token)
                if party is None and not pending_allowed:
                    raise OcpiAuthError("a Token A reaches only versions and credentials")
                return await handler(request, party)
            except OcpiAuthError as error:
                return envelope(request, None, http=401, code=2000, message=str(error))
            except _Refused as error:
                return envelope(
                    request, None, http=error.http, code=error.code, message=error.message
                )
            except UnknownObjectError as error:
                return envelope(request, None, http=404, code=2000, message=str(error))
            except ChargingError as error:
                return envelope(request, None, http=400, code=2001, message=str(error))

        return endpoint

    async def versions(request: Request, party: Party | None) -> Response:
        base = str(request.base_url).rstrip("/")
        return envelope(request, [{"version": VERSION, "url": f"{base}/ocpi/{VERSION}"}])

    async def details(request: Request, party: Party | None) -> Response:
        return envelope(request, endpoints_to_json(VERSION, endpoints(request)))

    async def credentials(request: Request, party: Party | None) -> Response:
        token = token_of(request)
        if request.method == "GET":
            if party is None:
                raise OcpiAuthError("not registered")
            return envelope(request, credentials_to_json(_ours(registry, party)))
        if request.method == "DELETE":
            if party is None:
                raise _Refused(405, 2000, "not registered")
            registry.unregister(token)
            return envelope(request, None)
        if (request.method == "POST") != (party is None):
            raise _Refused(405, 2000, "POST registers with a Token A, PUT updates a registration")
        theirs = parse_credentials(await body_of(request))
        if party is None:
            try:
                registry.check_registration(token, theirs)
            except HandshakeError as error:
                raise _Refused(405, 2000, str(error)) from None
        try:
            found = await client.endpoints(theirs.url, theirs.token)
        except ChargingError as error:
            raise _Refused(400, 3001, f"unable to use the client's API: {error}") from None
        ours = registry.register(token, theirs, found, new_token())
        return envelope(request, credentials_to_json(ours))

    def listing(kind: str) -> Handler:
        async def handler(request: Request, party: Party | None) -> Response:
            query = {
                k: request.query_params.get(k) for k in ("offset", "limit", "date_from", "date_to")
            }
            numbers = {}
            for key, default in (("offset", 0), ("limit", max_page)):
                raw = query[key]
                if raw is not None and not raw.isdigit():
                    raise OcpiFieldError(key, "not a non-negative integer")
                numbers[key] = default if raw is None else int(raw)
            limit = min(numbers["limit"], max_page)
            offset = numbers["offset"]
            window = {
                "date_from": j.timestamp(query, "date_from", "query", required=False),
                "date_to": j.timestamp(query, "date_to", "query", required=False),
                "offset": offset,
                "limit": limit,
            }
            data: list[object]
            if kind == "tariffs":
                tariffs, total = page(store.tariffs.rows, **window)  # type: ignore[arg-type]
                data = [tariff_to_json(t) for t in tariffs]
            elif kind == "sessions":
                sessions, total = page(store.sessions.rows, **window)  # type: ignore[arg-type]
                data = [session_to_json(s) for s in sessions]
            else:
                cdrs, total = page(store.cdrs.rows, **window)  # type: ignore[arg-type]
                data = [cdr_to_json(c) for c in cdrs]
            headers = {"X-Total-Count": str(total), "X-Limit": str(max_page)}
            if offset + len(data) < total:
                following = request.url.include_query_params(offset=offset + len(data), limit=limit)
                headers["Link"] = f'<{following}>; rel="next"'
            return envelope(request, data, headers=headers)

        return handler

    async def receive_cdr(request: Request, party: Party | None) -> Response:
        cdr = parse_cdr(await body_of(request))
        store.receive_cdr(cdr)
        location = str(request.url).rstrip("/") + "/" + cdr.id
        return envelope(request, None, http=201, headers={"Location": location})

    async def get_cdr(request: Request, party: Party | None) -> Response:
        return envelope(request, cdr_to_json(store.cdrs.get(request.path_params["cdr_id"])))

    async def authorize_token(request: Request, party: Party | None) -> Response:
        uid = request.path_params["uid"]
        token = store.tokens.rows.get(uid)
        if token is None:
            raise _Refused(404, 2004, f"unknown token {uid!r}")
        allowed = "ALLOWED" if token.valid else "BLOCKED"
        reference = "AR-" + uuid.uuid4().hex[:32]
        info = {"allowed": allowed, "token": token_to_json(token)}
        if token.valid:
            info["authorization_reference"] = reference
        return envelope(request, info)

    async def token_receiver(request: Request, party: Party | None) -> Response:
        country, owner, uid = (request.path_params[k] for k in ("country_code", "party_id", "uid"))
        roles = () if party is None else party.credentials.roles
        if not any(r.country_code == country and r.party_id == owner for r in roles):
            raise OcpiAuthError(f"the party is not {country}/{owner}")
        if request.method == "GET":
            return envelope(request, token_to_json(store.tokens.get(uid)))
        body = await body_of(request)
        if request.method == "PATCH":
            token = patch_token(store.tokens.get(uid), body)
        else:
            token = parse_token(body)
        if (token.country_code, token.party_id, token.uid) != (country, owner, uid):
            raise OcpiFieldError("token", "country_code, party_id and uid differ from the URL")
        await store.admit(token)
        return envelope(request, None)

    routes = [
        Route("/ocpi/versions", guarded(versions, pending_allowed=True)),
        Route(f"/ocpi/{VERSION}", guarded(details, pending_allowed=True)),
        Route(
            f"/ocpi/{VERSION}/credentials",
            guarded(credentials, pending_allowed=True),
            methods=["GET", "POST", "PUT", "DELETE"],
        ),
    ]
    if role == Role.CPO:
        routes += [
            Route(f"/ocpi/cpo/{VERSION}/{m}", guarded(listing(m)))
            for m in ("tariffs", "sessions", "cdrs")
        ]
        routes.append(
            Route(
                f"/ocpi/cpo/{VERSION}/tokens/{{country_code}}/{{party_id}}/{{uid}}",
                guarded(token_receiver),
                methods=["GET", "PUT", "PATCH"],
            )
        )
    else:
        routes += [
            Route(f"/ocpi/emsp/{VERSION}/cdrs", guarded(receive_cdr), methods=["POST"]),
            Route(f"/ocpi/emsp/{VERSION}/cdrs/{{cdr_id}}", guarded(get_cdr)),
            Route(
                f"/ocpi/emsp/{VERSION}/tokens/{{uid}}/authorize",
                guarded(authorize_token),
                methods=["POST"],
            ),
        ]
    return Starlette(routes=routes)


def _ours(registry: Registry, party: Party) -> Credentials:
    """Our credentials as `party` knows them: with the token it calls us with."""
    return replace(registry.ours, token=party.token)
