"""Roaming contract drivers at the CSMS: an eMSP's tokens authorized, OCPI Sessions while they
charge, the CDR at the end pushed to the eMSP and committed to the ledger, credit CDRs.

`RoamingCpo` joins the CSMS (`csms.Csms`) to the OCPI pieces:

* *Authorize* (`authorize`, an authorizer the CSMS chains before its own): a token the eMSP
  pushed to our tokens receiver (`OcpiStore.tokens`) is decided as OCPI 2.2.1 Tokens says by its
  `whitelist`: ALWAYS is accepted locally while `valid` (real-time authorization is not
  allowed); ALLOWED (the CPO's choice: we ask) and ALLOWED_OFFLINE ask the eMSP in real time
  (`POST {tokens}/{uid}/authorize`) and accept locally only when the eMSP cannot be reached
  (a transport failure, a timeout or an HTTP 5xx, `OcpiUnreachableError`; an HTTP client
  error, an OCPI status outside 1xxx or an answer that is not an authorization refuses the
  token);
  NEVER must be allowed by the eMSP in real time. A token invalidated by the eMSP is
  refused (`RoamingTokenRefusedError`, status Blocked or Invalid). A token no eMSP pushed is
  not ours to decide: `None`, and the next authorizer is asked.
* *Session* (`on_event`, a `Csms.on_event` hook): while a roaming session charges, its OCPI
  Session (status ACTIVE, kWh so far) is kept in the OCPI store, which the Sessions module serves.
* *CDR* (`on_bill`, a `Csms.on_bill` hook): the session's CDR, priced by the OCPI tariff (the same
  tariff that prices the session, so its total is the bill's), is stored, PUSHED to the eMSP's
  CDRs receiver with the Token C the credentials handshake gave us, marked sent, and its
  `cdr_hash` is part of the session record committed to the ledger (`cdr_hash_of`, given to the
  `LedgerCommitter`). The CDR is a function of the bill and the token (its ids are derived from
  the session key, its `last_updated` is the session's end), so a repeated bill or a restarted
  CSMS builds the same CDR and the eMSP accepts it once.
* *Corrections* (`correct`): a credit CDR cancelling a sent CDR and the corrected CDR, both
  pushed, their hashes committed (`CORRECTION_TAG`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from tangle.errors import TangleError
from tangle.protocol.payload import TaggedData
from wallet.errors import WalletError

from .errors import (
    ChargingError,
    HandshakeError,
    OcpiFieldError,
    OcpiPartnerError,
    OcpiUnreachableError,
    RoamingError,
    RoamingTokenRefusedError,
    TokenClashError,
)
from .ocpi_cdr import build_cdr, cdr_hash
from .ocpi_credentials import Role
from .ocpi_session import AuthMethod, CdrToken, Session, SessionStatus, WhitelistType
from .pricing import session_usage
from .session import EventKind, SessionLimits
from .store import Binding

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from wallet.client import NodeClient

    from .csms import Csms
    from .ocpi_cdr import Cdr
    from .ocpi_client import OcpiClient
    from .ocpi_credentials import Party, Registry
    from .ocpi_location import CdrLocation
    from .ocpi_session import Token
    from .ocpi_store import OcpiStore
    from .session import ChargingSession
    from .store import Bill
    from .tariff import Tariff

    Authorizer = Callable[[str], Awaitable[Binding | None]]

CORRECTION_TAG: Final = b"tanglepay/charging/cdr-correction/v1"
MAX_ROAMING_SESSIONS: Final = 100_000
LOG: Final = logging.getLogger(__name__)


def object_id(key: tuple[str, str], kind: str) -> str:
    """The OCPI id (at most 36 characters) of a session's Session or CDR."""
    return kind + hashlib.blake2b(f"{key[0]}\0{key[1]}".encode(), digest_size=16).hexdigest()


@dataclass(slots=True, kw_only=True)
class RoamingCpo:
    """The CPO's roaming side of one CSMS (see the module docstring)."""

    csms: Csms
    ocpi: OcpiStore
    registry: Registry
    client: OcpiClient
    tariff: Tariff
    """The OCPI tariff pricing roaming sessions (the CSMS's `pricing` must be this tariff's)."""
    locations: Mapping[str, CdrLocation]
    """Each charge point's location, frozen into its CDRs (key "*": every other one's)."""
    country_code: str
    party_id: str
    node: NodeClient | None = None
    """Commits corrections' CDR hashes (a bill's CDR hash goes into its session record)."""
    auth: dict[tuple[str, str], tuple[str, AuthMethod, str | None]] = field(default_factory=dict)
    """Per roaming session: its token uid, how it was authorized, the eMSP's reference."""
    after_push: Callable[[], Awaitable[None]] | None = None
    """Called once a CDR was added, and once one was pushed and marked sent (the service saves
    its state)."""
    _pending: dict[str, tuple[AuthMethod, str | None]] = field(default_factory=dict)

    # -- authorization ---------------------------------------------------------------------

    def party_of(self, token: Token) -> Party | None:
        """The eMSP that issued `token`, among the parties registered with us."""
        for party in self.registry.parties.values():
            for role in party.credentials.roles:
                if role.role == Role.EMSP and (role.country_code, role.party_id) == (
                    token.country_code,
                    token.party_id,
                ):
                    return party
        return None

    async def authorize(self, id_token: str) -> Binding | None:
        """How a session with an eMSP's token is paid (by the eMSP, through its CDRs), or None
        if no eMSP pushed the token or a local driver's token has its uid."""
        token = self.ocpi.tokens.rows.get(id_token)
        if token is None or await self.csms.store.token(id_token) is not None:
            return None  # not an eMSP's, or the uid is a local driver's: the local one decides
        if not token.valid:
            raise RoamingTokenRefusedError(id_token, "invalidated by its eMSP", "Blocked")
        method, reference = AuthMethod.WHITELIST, None
        if token.whitelist is not WhitelistType.ALWAYS:
            party = self.party_of(token)
            try:
                if party is None:
                    raise RoamingError(id_token, "its eMSP is not registered with us")
                allowed, reference = await self.client.authorize_token(
                    party, token.uid, token.type.value
                )
            except OcpiUnreachableError as e:  # no answer at all: the whitelist decides
                if token.whitelist is WhitelistType.NEVER:
                    raise RoamingTokenRefusedError(
                        id_token, f"real-time authorization failed: {e}", "Invalid"
                    ) from None
                self.csms.log_limit.log(  # a line per Authorize, the eMSP's bound
                    LOG,
                    logging.INFO,
                    f"eMSP {token.country_code}*{token.party_id}",
                    "allowed by whitelist",
                    "token %s allowed by its whitelist: %s",
                    id_token,
                    e,
                )
            except (OcpiPartnerError, OcpiFieldError, RoamingError, HandshakeError) as e:
                # the eMSP said no (an HTTP error, an OCPI status outside 1xxx), or its answer
                # is not an authorization: a refusal, never a local accept
                raise RoamingTokenRefusedError(
                    id_token, f"real-time authorization refused: {e}", "Invalid"
                ) from None
            else:
                if allowed != "ALLOWED":
                    status = "Blocked" if allowed == "BLOCKED" else "Invalid"
                    raise RoamingTokenRefusedError(id_token, f"the eMSP says {allowed}", status)
                method = AuthMethod.AUTH_REQUEST
        if len(self._pending) >= MAX_ROAMING_SESSIONS:
            self._pending.pop(next(iter(self._pending)))
        self._pending[id_token] = (method, reference)
        return Binding(id_token=id_token, channel_id=None, limits=SessionLimits(), paid=0)

    async def refuse_local_uid(self, token: Token) -> None:
        """`TokenClashError` if a local driver's token (bound at the CSMS) has `token`'s uid: an
        eMSP cannot take it over (`OcpiStore.guard`)."""
        if await self.csms.store.token(token.uid) is not None:
            raise TokenClashError(token.uid)

    def before(self, other: Authorizer) -> Authorizer:
        """An authorizer asking this one first, then `other` for tokens no eMSP pushed."""

        async def either(id_token: str) -> Binding | None:
            binding = await self.authorize(id_token)
            return binding if binding is not None else await other(id_token)

        return either

    # -- sessions and CDRs -----------------------------------------------------------------

    def _auth_of(self, key: tuple[str, str], id_token: str | None) -> tuple[AuthMethod, str | None]:
        held = self.auth.get(key)
        if held is not None:
            return held[1], held[2]
        if id_token is None or id_token not in self.ocpi.tokens.rows:
            raise RoamingError(f"session {key[0]}/{key[1]}", "not a roaming token's")
        method, reference = self._pending.get(id_token, (AuthMethod.WHITELIST, None))
        if len(self.auth) >= MAX_ROAMING_SESSIONS:
            self.auth.pop(next(iter(self.auth)))
        self.auth[key] = (id_token, method, reference)
        return method, reference

    def session_of(
        self, key: tuple[str, str], id_token: str, start_s: int, energy_wh: int, end_s: int | None
    ) -> Session:
        """The OCPI Session of a roaming session (COMPLETED once `end_s` is known)."""
        token = self.ocpi.tokens.get(id_token)
        location = self._location(key[0])
        method, reference = self._auth_of(key, id_token)
        start = dt.datetime.fromtimestamp(start_s, dt.UTC)
        end = None if end_s is None else dt.datetime.fromtimestamp(end_s, dt.UTC)
        return Session(
            country_code=self.country_code,
            party_id=self.party_id,
            id=object_id(key, "S"),
            start_date_time=start,
            end_date_time=end,
            kwh=energy_wh * 10,
            cdr_token=CdrToken(
                country_code=token.country_code,
                party_id=token.party_id,
                uid=token.uid,
                type=token.type,
                contract_id=token.contract_id,
            ),
            auth_method=method,
            authorization_reference=reference,
            location_id=location.id,
            evse_uid=location.evse_uid,
            connector_id=location.connector_id,
            currency=self.tariff.currency,
            status=SessionStatus.ACTIVE if end is None else SessionStatus.COMPLETED,
            last_updated=end or start,
        )

    def _location(self, charge_point: str) -> CdrLocation:
        location = self.locations.get(charge_point) or self.locations.get("*")
        if location is None:
            raise RoamingError(charge_point, "no location is configured for this charge point")
        return location

    def on_event(self, session: ChargingSession) -> None:
        """Keep a roaming session's OCPI Session up to date while it charges."""
        token = session.id_token or self._token_of(session.key)
        if token is None or token not in self.ocpi.tokens.rows:
            return
        end = session.end_s if session.ended else None
        try:
            self.ocpi.put_session(
                self.session_of(session.key, token, session.start_time_s, session.energy_wh, end)
            )
        except ChargingError as e:
            self.csms.log_limit.log(  # a line per event, its station's bound
                LOG,
                logging.WARNING,
                session.key[0],
                "no OCPI session",
                "no OCPI session for %s/%s: %s",
                *session.key,
                e,
            )

    def _token_of(self, key: tuple[str, str]) -> str | None:
        binding = self.csms.bindings.get(key)
        return None if binding is None else binding.id_token

    async def cdr_of(self, bill: Bill) -> Cdr | None:
        """The CDR of a billed roaming session (None if it is not one): built once, then the
        one held."""
        key = (bill.charge_point, bill.transaction_id)
        cdr_id = object_id(key, "C")
        held = self.ocpi.cdrs.rows.get(cdr_id)
        if held is not None:
            return held
        binding = await self.csms.store.binding(key)
        if binding is None or binding.id_token not in self.ocpi.tokens.rows:
            return None
        events = await self.csms.store.events(key)
        if not events:
            return None
        starts = [e.timestamp_s for e in events if e.kind is EventKind.STARTED]
        start_s = starts[0] if starts else min(e.timestamp_s for e in events)
        end_s = start_s + bill.duration_s
        session = self.session_of(key, binding.id_token, start_s, bill.energy_wh, end_s)
        usage = session_usage(start_s, bill.energy_wh, bill.duration_s)
        location = self._location(key[0])
        cdr = build_cdr(
            session, usage, self.tariff, location, cdr_id=cdr_id, now=session.last_updated
        )
        held = self.ocpi.cdrs.rows.get(cdr_id)  # built by a concurrent hook meanwhile
        if held is not None:
            return held
        self.ocpi.put_session(session)
        self.ocpi.add_cdr(cdr)
        if self.after_push is not None:  # saved now, not only once a push succeeds
            await self.after_push()
        return cdr

    async def cdr_hash_of(self, bill: Bill) -> bytes | None:
        """The hash of the bill's CDR, for the session record (None if not roaming)."""
        cdr = await self.cdr_of(bill)
        return None if cdr is None else cdr_hash(cdr)

    async def on_bill(self, bill: Bill) -> None:
        """Push the bill's CDR to its eMSP (once; a failure is logged and `push_unsent`
        retries it)."""
        try:
            cdr = await self.cdr_of(bill)
            if cdr is not None:
                await self.push(cdr)
        except ChargingError as e:
            LOG.warning("CDR of %s/%s not pushed: %s", bill.charge_point, bill.transaction_id, e)

    async def push(self, cdr: Cdr) -> None:
        """PUSH `cdr` to the eMSP that issued its token, and mark it sent."""
        if cdr.id in self.ocpi.sent:
            return
        token = self.ocpi.tokens.get(cdr.cdr_token.uid)
        party = self.party_of(token)
        if party is None:
            raise RoamingError(cdr.id, "its eMSP is not registered with us")
        await self.client.push_cdr(party, cdr)
        self.ocpi.mark_sent(cdr.id)
        if self.after_push is not None:
            await self.after_push()

    async def push_unsent(self) -> int:
        """Push every CDR not yet sent (after a failed push); returns how many went."""
        pushed = 0
        for cdr in list(self.ocpi.cdrs.rows.values()):
            if cdr.id not in self.ocpi.sent:
                try:
                    await self.push(cdr)
                    pushed += 1
                except (OcpiPartnerError, RoamingError) as e:
                    LOG.warning("CDR %s not pushed: %s", cdr.id, e)
        return pushed

    async def correct(self, bill: Bill, energy_wh: int, duration_s: int) -> tuple[Cdr, Cdr]:
        """Correct a sent CDR: a credit CDR cancelling it and the CDR of the corrected
        session, both pushed to the eMSP and their hashes committed."""
        original = await self.cdr_of(bill)
        if original is None:
            raise RoamingError(f"{bill.charge_point}/{bill.transaction_id}", "no CDR to correct")
        fixed = replace(bill, energy_wh=energy_wh, duration_s=duration_s)
        key = (bill.charge_point, bill.transaction_id)
        serial = sum(1 for c in self.ocpi.cdrs.rows.values() if c.session_id == original.session_id)
        start_s = int(original.start_date_time.timestamp())
        usage = session_usage(start_s, fixed.energy_wh, fixed.duration_s)
        session = self.session_of(
            key, original.cdr_token.uid, start_s, energy_wh, start_s + duration_s
        )
        corrected = build_cdr(
            session,
            usage,
            self.tariff,
            original.cdr_location,
            cdr_id=f"{original.id[:30]}-{serial + 1}",
            now=dt.datetime.fromtimestamp(int(self.csms.clock()), dt.UTC),
        )
        credit, corrected = self.ocpi.correct(
            original.id,
            corrected,
            credit_id=f"{original.id[:30]}-{serial}",
            now=corrected.last_updated,
        )
        for cdr in (credit, corrected):
            await self.push(cdr)
        if self.node is not None:
            data = cdr_hash(original) + cdr_hash(credit) + cdr_hash(corrected)
            try:
                await self.node.submit_pow(TaggedData(tag=CORRECTION_TAG, data=data))
            except (WalletError, TangleError) as e:
                LOG.warning("correction of %s not committed: %r", original.id, e)
        return credit, corrected
