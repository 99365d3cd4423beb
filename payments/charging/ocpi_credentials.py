"""The OCPI 2.2.1 credentials handshake (Token A/B/C) and the versions objects, sans-I/O.

Registration, as the spec's credentials module lays it out: the server party hands a
*Token A* to the client party out of band; the client calls the server's versions with A and
POSTs its credentials carrying *Token B* (what the server shall use to call it); the server
fetches the client's versions with B, answers with its own credentials carrying *Token C* (what
the client shall use from then on), and A is spent. PUT replaces the credentials (a new B, a new
C), DELETE unregisters. `Registry` keeps the parties and tokens and decides each step; the HTTP
calls are made by `ocpi_app` and `ocpi_client`. Tokens are compared in constant time, and the
table is bounded.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass, field, replace

from . import ocpi_json as j
from .errors import HandshakeError, OcpiAuthError, OcpiFieldError

VERSION = "2.2.1"
MAX_PARTIES = 256
"""The most registered parties plus outstanding Token As."""
MAX_ROLES = 16


class Role(enum.Enum):
    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"


class InterfaceRole(enum.Enum):
    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """One module endpoint of a version."""

    identifier: str
    """The module: credentials, tariffs, sessions, cdrs, ..."""
    role: InterfaceRole
    url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialsRole:
    """One role a party plays, with its identity."""

    role: Role
    party_id: str
    country_code: str
    business_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """What one party tells the other: the token to call it with, its versions URL, roles."""

    token: str
    url: str
    roles: tuple[CredentialsRole, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Party:
    """A registered partner, as the registry keeps it."""

    credentials: Credentials
    """Theirs: `token` is what we call them with (their Token B)."""
    endpoints: tuple[Endpoint, ...]
    """Their endpoints of the version both speak."""
    token: str
    """What they call us with (the Token C we issued)."""

    def endpoint(self, identifier: str, role: InterfaceRole) -> str | None:
        return next(
            (e.url for e in self.endpoints if e.identifier == identifier and e.role == role), None
        )


def parse_endpoints(
    value: object, path: str = "version_details"
) -> tuple[str, tuple[Endpoint, ...]]:
    """An OCPI VersionDetails object: (version, endpoints)."""
    o = j.obj(value, path)
    raw = j.items(o.get("endpoints"), f"{path}.endpoints")
    endpoints = []
    for n, e in enumerate(raw):
        where = f"{path}.endpoints[{n}]"
        oe = j.obj(e, where)
        endpoints.append(
            Endpoint(
                identifier=j.need_text(oe, "identifier", where, max_len=64),
                role=j.need_member(InterfaceRole, oe, "role", where),
                url=j.need_text(oe, "url", where, max_len=2048),
            )
        )
    return j.need_text(o, "version", path, max_len=10), tuple(endpoints)


def endpoints_to_json(version: str, endpoints: tuple[Endpoint, ...]) -> dict[str, object]:
    return {
        "version": version,
        "endpoints": [
            {"identifier": e.identifier, "role": e.role.name, "url": e.url} for e in endpoints
        ],
    }


def parse_versions(value: object, path: str = "versions") -> dict[str, str]:
    """An OCPI versions list: version -> URL of its details."""
    result = {}
    for n, v in enumerate(j.items(value, path)):
        ov = j.obj(v, f"{path}[{n}]")
        result[j.need_text(ov, "version", f"{path}[{n}]", max_len=10)] = j.need_text(
            ov, "url", f"{path}[{n}]", max_len=2048
        )
    return result


def parse_credentials(value: object, path: str = "credentials") -> Credentials:
    o = j.obj(value, path)
    raw = j.items(o.get("roles"), f"{path}.roles")
    if not raw or len(raw) > MAX_ROLES:
        raise OcpiFieldError(f"{path}.roles", f"not 1 to {MAX_ROLES} roles")
    roles = []
    for n, r in enumerate(raw):
        where = f"{path}.roles[{n}]"
        orole = j.obj(r, where)
        business = j.obj(orole.get("business_details"), f"{where}.business_details")
        roles.append(
            CredentialsRole(
                role=j.need_member(Role, orole, "role", where),
                party_id=j.need_text(orole, "party_id", where, max_len=3),
                country_code=j.need_text(orole, "country_code", where, max_len=2),
                business_name=j.need_text(
                    business, "name", f"{where}.business_details", max_len=100
                ),
            )
        )
    token = j.need_text(o, "token", path, max_len=64)
    if not token or not token.isprintable() or " " in token:
        raise OcpiFieldError(f"{path}.token", "empty or not printable")
    return Credentials(
        token=token, url=j.need_text(o, "url", path, max_len=2048), roles=tuple(roles)
    )


def credentials_to_json(credentials: Credentials) -> dict[str, object]:
    return {
        "token": credentials.token,
        "url": credentials.url,
        "roles": [
            {
                "role": r.role.name,
                "party_id": r.party_id,
                "country_code": r.country_code,
                "business_details": {"name": r.business_name},
            }
            for r in credentials.roles
        ],
    }


@dataclass(slots=True)
class Registry:
    """Our side of every credentials handshake: the Token As handed out, the parties registered."""

    ours: Credentials
    """Our credentials (its `token` is replaced by the Token C issued to each party)."""
    pending: set[str] = field(default_factory=set)
    """Tokens handed out and not yet bound to a party: Token As we issued as the server, and
    our own Token B while we register with a server as the client."""
    parties: dict[str, Party] = field(default_factory=dict)
    """By the token they call us with."""

    def issue(self, token: str) -> None:
        """Hand out `token` (fresh randomness from the caller): a Token A for a party to
        register with, or our Token B before we register with a party."""
        if len(self.pending) + len(self.parties) >= MAX_PARTIES:
            raise HandshakeError(f"at most {MAX_PARTIES} parties and pending tokens")
        self.pending.add(token)

    def bind(self, party: Party) -> None:
        """We registered with `party` as the client: it now calls us with our Token B."""
        self.pending.discard(party.token)
        self.parties[party.token] = party

    def _find(self, token: str) -> tuple[str, Party | None]:
        for known in self.pending:
            if hmac.compare_digest(known.encode(), token.encode()):
                return known, None
        for known, party in self.parties.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return known, party
        raise OcpiAuthError("unknown token")

    def authenticate(self, token: str) -> Party | None:
        """The party that `token` belongs to, None for a pending token."""
        return self._find(token)[1]

    def check_registration(self, token: str, theirs: Credentials) -> None:
        """A POST of `theirs` with `token`: allowed only with an unspent Token A."""
        _, party = self._find(token)
        if party is not None:
            raise HandshakeError("already registered: use PUT to update")
        if any(hmac.compare_digest(theirs.token.encode(), t.encode()) for t in self.pending):
            raise HandshakeError("their Token B is a pending token of ours")

    def register(
        self, token: str, theirs: Credentials, endpoints: tuple[Endpoint, ...], token_c: str
    ) -> Credentials:
        """Complete a POST (Token A spent) or a PUT (the old Token C replaced): keep the party,
        return our credentials carrying `token_c`."""
        known, party = self._find(token)
        if party is None:
            self.pending.discard(known)
        else:
            del self.parties[known]
        self.parties[token_c] = Party(credentials=theirs, endpoints=endpoints, token=token_c)
        return replace(self.ours, token=token_c)

    def unregister(self, token: str) -> None:
        known, party = self._find(token)
        if party is None:
            raise HandshakeError("not registered")
        del self.parties[known]
