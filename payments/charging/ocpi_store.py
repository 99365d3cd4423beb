"""The OCPI objects one party holds, in memory and bounded: tariffs, sessions, CDRs, tokens.

A CPO puts its tariffs and sessions, adds CDRs and marks them sent; a sent CDR can no longer be
replaced (`CdrSentError`), only corrected (`correct`: a credit CDR plus a new CDR). An eMSP
receives CDRs: the same CDR twice is accepted once, a different one under a used id refused.
`page` answers a paginated GET: objects by `last_updated` (then id) within
`[date_from, date_to)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from .errors import CdrSentError, OcpiFieldError, UnknownObjectError
from .ocpi_cdr import credit_cdr

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Awaitable, Callable

    from .ocpi_cdr import Cdr
    from .ocpi_session import Session, Token
    from .tariff import Tariff

MAX_OBJECTS = 100_000
"""The most objects of one kind held."""

T = TypeVar("T", "Tariff", "Session", "Cdr", "Token")


@dataclass(slots=True)
class _Table(Generic[T]):
    kind: str
    limit: int
    rows: dict[str, T] = field(default_factory=dict)

    def put(self, key: str, value: T) -> None:
        if key not in self.rows and len(self.rows) >= self.limit:
            raise OcpiFieldError(self.kind, f"more than {self.limit} held")
        self.rows[key] = value

    def get(self, key: str) -> T:
        if key not in self.rows:
            raise UnknownObjectError(self.kind, key)
        return self.rows[key]


@dataclass(slots=True)
class OcpiStore:
    """The tariffs, sessions, CDRs and tokens of one party."""

    limit: int = MAX_OBJECTS
    tariffs: _Table[Tariff] = field(init=False)
    sessions: _Table[Session] = field(init=False)
    cdrs: _Table[Cdr] = field(init=False)
    tokens: _Table[Token] = field(init=False)
    sent: set[str] = field(default_factory=set)
    """Ids of CDRs sent to the eMSP (or, at an eMSP, received)."""
    guard: Callable[[Token], Awaitable[None]] | None = None
    """Checks a token a partner pushes before it is held (`admit`); raises to refuse it (a CPO
    refuses a uid its CSMS binds to a local driver: `RoamingCpo.refuse_local_uid`)."""

    def __post_init__(self) -> None:
        self.tariffs = _Table("tariff", self.limit)
        self.sessions = _Table("session", self.limit)
        self.cdrs = _Table("CDR", self.limit)
        self.tokens = _Table("token", self.limit)

    def put_tariff(self, tariff: Tariff) -> None:
        self.tariffs.put(tariff.id, tariff)

    def put_session(self, session: Session) -> None:
        self.sessions.put(session.id, session)

    def put_token(self, token: Token) -> None:
        """Add or replace a token; a uid held for another eMSP is refused."""
        held = self.tokens.rows.get(token.uid)
        if held is not None and (held.country_code, held.party_id) != (
            token.country_code,
            token.party_id,
        ):
            raise OcpiFieldError("token", f"uid {token.uid!r} belongs to another party")
        self.tokens.put(token.uid, token)

    async def admit(self, token: Token) -> None:
        """A token a partner pushed: `guard` it, then `put_token`."""
        if self.guard is not None:
            await self.guard(token)
        self.put_token(token)

    def add_cdr(self, cdr: Cdr) -> None:
        """Add a CDR, or replace one not yet sent."""
        if cdr.id in self.sent:
            raise CdrSentError(cdr.id)
        self.cdrs.put(cdr.id, cdr)

    def mark_sent(self, cdr_id: str) -> None:
        self.cdrs.get(cdr_id)
        self.sent.add(cdr_id)

    def receive_cdr(self, cdr: Cdr) -> bool:
        """An eMSP receiving `cdr`: True if new, False if the same CDR came again."""
        if cdr.id in self.sent:
            if self.cdrs.get(cdr.id) != cdr:
                raise CdrSentError(cdr.id)
            return False
        self.cdrs.put(cdr.id, cdr)
        self.sent.add(cdr.id)
        return True

    def correct(
        self, cdr_id: str, corrected: Cdr, *, credit_id: str, now: dt.datetime
    ) -> tuple[Cdr, Cdr]:
        """Correct a sent CDR: add a credit CDR cancelling it and the corrected CDR (a new id)."""
        original = self.cdrs.get(cdr_id)
        if cdr_id not in self.sent:
            raise OcpiFieldError("cdr", f"{cdr_id!r} was not sent: replace it instead")
        if corrected.id in self.cdrs.rows or credit_id in self.cdrs.rows:
            raise OcpiFieldError("cdr", "the credit and corrected CDRs need new ids")
        credit = credit_cdr(original, cdr_id=credit_id, now=now)
        self.add_cdr(credit)
        self.add_cdr(corrected)
        return credit, corrected


def page(
    rows: dict[str, T],
    *,
    date_from: dt.datetime | None,
    date_to: dt.datetime | None,
    offset: int,
    limit: int,
) -> tuple[list[T], int]:
    """One page of `rows` by `last_updated` then id, and how many match in all."""
    matching = sorted(
        (
            (row.last_updated, key, row)
            for key, row in rows.items()
            if (date_from is None or row.last_updated >= date_from)
            and (date_to is None or row.last_updated < date_to)
        ),
        key=lambda entry: (entry[0], entry[1]),
    )
    return [row for _, _, row in matching[offset : offset + limit]], len(matching)
