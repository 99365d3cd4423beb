"""Statements: one period of one carrier pair, per direction, service and day, with disputes,
credits and payments; canonical JSON (what both carriers sign), CSV and a readable HTML page.

A `StatementBuilder` takes the acknowledged batches (only the records an acknowledgement
accepted count, and only those that started within the period), the disputes with their
resolutions, and the channel payments of the period, and builds the `Statement`. Per direction
(VPMN -> HPMN) it states what was charged, the credits granted, what was paid, and what is
still outstanding: `charged - credits - paid`. Both carriers build it from their own data; equal
hashes mean they agree, and `SignedStatement` holds both signatures.
"""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from tangle.protocol.ids import Signature, blake2b_256
from tangle.protocol.signature import is_valid

from .acknowledgement import Severity
from .errors import StatementError
from .record import EventType

if TYPE_CHECKING:
    from .acknowledgement import SignedAcknowledgement
    from .agreement import Agreement
    from .batch import Batch
    from .disputes import SignedDispute, SignedResolution

STATEMENT_DOMAIN: Final = b"tanglepay/roaming/statement/v1"
DAY_S: Final = 86_400
MAX_LINES: Final = 1_000_000

Key = tuple[str, str, int, int]
"""(sender, recipient, event type, day since the epoch)."""


def _day(day: int) -> str:
    return datetime.fromtimestamp(day * DAY_S, UTC).date().isoformat()


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """One period of one pair (see the module docstring); amounts in minor units."""

    agreement: bytes
    currency: str
    decimal_places: int
    period_start: int
    period_end: int
    lines: tuple[tuple[str, str, str, str, int, int], ...]
    """(sender, recipient, service, day, events, charge), by pair, day, service."""
    disputes: tuple[tuple[str, str, int, str, int], ...]
    """(dispute id hex, raised by, claimed, status, credit granted), in the order raised."""
    payments: tuple[tuple[str, str, int, int], ...]
    """(payer, payee, channel sequence, amount), by sequence."""
    directions: tuple[tuple[str, str, int, int, int, int], ...]
    """(sender, recipient, charged, credits, paid, outstanding) for both directions."""

    def to_json_object(self) -> dict[str, object]:
        return {
            "agreement": self.agreement.hex(),
            "currency": self.currency,
            "decimal_places": self.decimal_places,
            "directions": [list(d) for d in self.directions],
            "disputes": [list(d) for d in self.disputes],
            "lines": [list(x) for x in self.lines],
            "payments": [list(p) for p in self.payments],
            "period_end": self.period_end,
            "period_start": self.period_start,
        }

    def encode(self) -> bytes:
        """Canonical JSON: keys sorted, no whitespace, ASCII."""
        return json.dumps(self.to_json_object(), sort_keys=True, separators=(",", ":")).encode()

    @property
    def hash(self) -> bytes:
        return blake2b_256(STATEMENT_DOMAIN, self.encode())

    def signing_message(self) -> bytes:
        return STATEMENT_DOMAIN + b"/sign" + self.hash

    def amount(self, minor: int) -> str:
        """`minor` units as a decimal string in the currency (`12.34500`)."""
        if self.decimal_places == 0:
            return str(minor)
        sign = "-" if minor < 0 else ""
        whole, frac = divmod(abs(minor), 10**self.decimal_places)
        return f"{sign}{whole}.{frac:0{self.decimal_places}d}"

    def csv(self) -> str:
        """One row per direction, service and day, then the direction totals."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["sender", "recipient", "service", "day", "events", "charge"])
        for s, r, service, day, events, charge in self.lines:
            writer.writerow([s, r, service, day, events, self.amount(charge)])
        writer.writerow([])
        writer.writerow(["sender", "recipient", "charged", "credits", "paid", "outstanding"])
        for s, r, *amounts in self.directions:
            writer.writerow([s, r, *(self.amount(a) for a in amounts)])
        return out.getvalue()

    def html(self) -> str:
        """A self-contained page a finance team can read."""
        e = html.escape
        start, end = (_day(t // DAY_S) for t in (self.period_start, self.period_end - 1))

        def table(head: list[str], rows: list[list[str]]) -> str:
            th = "".join(f"<th>{e(h)}</th>" for h in head)
            body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
            return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"

        totals = [[s, r, *(self.amount(a) for a in rest)] for s, r, *rest in self.directions]
        lines = [[s, r, v, d, str(n), self.amount(c)] for s, r, v, d, n, c in self.lines]
        disputes = [
            [i[:16], by, self.amount(c), st, self.amount(g)] for i, by, c, st, g in self.disputes
        ]
        payments = [[p, q, str(seq), self.amount(a)] for p, q, seq, a in self.payments]
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>Roaming statement {e(start)} to {e(end)}</title>"
            "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border:1px solid #999;padding:2px 8px}td{text-align:right}</style></head><body>"
            f"<h1>Roaming statement {e(start)} to {e(end)}</h1>"
            f"<p>Currency {e(self.currency)}; agreement {e(self.agreement.hex())}; "
            f"statement {e(self.hash.hex())}</p>"
            "<h2>Totals</h2>"
            + table(["VPMN", "HPMN", "charged", "credits", "paid", "outstanding"], totals)
            + "<h2>Usage by service and day</h2>"
            + table(["VPMN", "HPMN", "service", "day", "events", "charge"], lines)
            + "<h2>Disputes</h2>"
            + table(["dispute", "raised by", "claimed", "status", "credit"], disputes)
            + "<h2>Payments</h2>"
            + table(["payer", "payee", "channel state", "amount"], payments)
            + "</body></html>"
        )


class StatementBuilder:
    """Collects one period's data of one pair, then `build`s the statement."""

    __slots__ = ("_agreement", "_disputes", "_end", "_lines", "_payments", "_start")

    def __init__(self, agreement: Agreement, *, period_start: int, period_end: int) -> None:
        if period_end <= period_start:
            raise StatementError("the period ends after it starts")
        self._agreement = agreement
        self._start, self._end = period_start, period_end
        self._lines: dict[Key, list[int]] = {}
        self._disputes: list[tuple[str, str, int, str, int]] = []
        self._payments: dict[int, tuple[str, str, int, int]] = {}

    def add_usage(
        self, sender: str, recipient: str, service: int, start_utc: int, charge: int
    ) -> None:
        """Count one accepted event (ignored if it started outside the period)."""
        if not self._start <= start_utc < self._end:
            return
        key = (sender, recipient, service, start_utc // DAY_S)
        line = self._lines.get(key)
        if line is None:
            if len(self._lines) >= MAX_LINES:
                raise StatementError(f"more than {MAX_LINES} lines")
            self._lines[key] = [1, charge]
        else:
            line[0] += 1
            line[1] += charge

    def add_batch(self, batch: Batch, signed: SignedAcknowledgement) -> None:
        """Count the records of `batch` its acknowledgement accepted."""
        ack = signed.ack
        if ack.batch != batch.signed.header.hash:
            raise StatementError("the acknowledgement is of another batch")
        if not ack.accepted:
            return
        severe = {r.index for r in ack.returns if r.severity is Severity.SEVERE}
        for index, r in enumerate(batch.records):
            if index not in severe:
                self.add_usage(r.sender, r.recipient, r.event_type, r.start_utc, r.charge)

    def add_dispute(self, dispute: SignedDispute, resolution: SignedResolution | None) -> None:
        d = dispute.body
        if resolution is None:
            status, credit = "open", 0
        else:
            status = "accepted" if resolution.body.accepted else "rejected"
            credit = resolution.body.credit
        self._disputes.append((d.id.hex(), d.raised_by, d.amount, status, credit))

    def add_payment(self, payer: str, payee: str, sequence: int, amount: int) -> None:
        """A co-signed channel state of the period that moved `amount` from `payer` to `payee`."""
        self._payments[sequence] = (payer, payee, sequence, amount)

    def build(self) -> Statement:
        a, b = (p.tadig for p in self._agreement.parties)
        lines = tuple(
            (s, r, EventType(t).name, _day(day), n, c)
            for (s, r, t, day), (n, c) in sorted(
                self._lines.items(),
                key=lambda item: (item[0][0], item[0][1], item[0][3], item[0][2]),
            )
        )
        directions = []
        for sender, recipient in ((a, b), (b, a)):
            charged = sum(c for s, r, t, d, n, c in lines if (s, r) == (sender, recipient))
            credited = sum(
                g for _, by, _, st, g in self._disputes if st == "accepted" and by == recipient
            )
            paid = sum(x for p, q, _, x in self._payments.values() if (p, q) == (recipient, sender))
            directions.append(
                (sender, recipient, charged, credited, paid, charged - credited - paid)
            )
        return Statement(
            agreement=self._agreement.hash,
            currency=self._agreement.currency,
            decimal_places=self._agreement.decimal_places,
            period_start=self._start,
            period_end=self._end,
            lines=lines,
            disputes=tuple(self._disputes),
            payments=tuple(self._payments[s] for s in sorted(self._payments)),
            directions=tuple(directions),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedStatement:
    """A statement both carriers signed (in the agreement's party order)."""

    statement: Statement
    signatures: tuple[Signature, Signature]

    def verify(self, agreement: Agreement) -> None:
        """Raise `StatementError` unless both parties of `agreement` signed this statement."""
        if self.statement.agreement != agreement.hash:
            raise StatementError("the statement is of another agreement")
        message = self.statement.signing_message()
        for party, signature in zip(agreement.parties, self.signatures, strict=True):
            if not is_valid(party.key, message, signature):
                raise StatementError(f"the signature of {party.tadig} does not verify")
