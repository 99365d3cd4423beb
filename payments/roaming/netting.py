"""Multilateral netting: N carriers' obligations for a period reduced to at most N-1 transfers.

Each carrier's net position is what it is owed minus what it owes, over every obligation (an
accepted amount of the period, HPMN -> VPMN). The positions sum to zero. `transfers` settles them
greedily, in a fixed order: the largest debtor pays the largest creditor the smaller of the two
amounts (ties broken by TADIG), which brings at least one of them to zero; the last transfer
brings two to zero, so N carriers need at most N-1 transfers. Every participant signs the
`ClearingStatement` (canonical JSON, its hash signed); `check_signatures` refuses a statement
unless all of them did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from tangle.errors import TangleError
from tangle.protocol.codec import U64_MAX
from tangle.protocol.ids import PublicKey, Signature, blake2b_256
from tangle.protocol.signature import is_valid

from .errors import NettingError
from .record import is_tadig

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from tangle.protocol.signature import Signer

CLEARING_DOMAIN: Final = b"tanglepay/roaming/clearing/v1"
MAX_PARTICIPANTS: Final = 1_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Obligation:
    """`debtor` (an HPMN) owes `creditor` (a VPMN) `amount` minor units."""

    debtor: str
    creditor: str
    amount: int

    def __post_init__(self) -> None:
        if not is_tadig(self.debtor) or not is_tadig(self.creditor):
            raise NettingError("debtor and creditor are TADIG codes")
        if self.debtor == self.creditor:
            raise NettingError("a carrier does not owe itself")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise NettingError("an amount is an integer")
        if not 0 <= self.amount <= U64_MAX:
            raise NettingError(f"amount {self.amount} outside [0, u64]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """One ledger transfer of the clearing: `payer` pays `payee` `amount`."""

    payer: str
    payee: str
    amount: int


def net_positions(obligations: Iterable[Obligation]) -> dict[str, int]:
    """Each carrier's position (positive: it receives), every carrier named in an obligation."""
    positions: dict[str, int] = {}
    for o in obligations:
        positions[o.debtor] = positions.get(o.debtor, 0) - o.amount
        positions[o.creditor] = positions.get(o.creditor, 0) + o.amount
    if len(positions) > MAX_PARTICIPANTS:
        raise NettingError(f"more than {MAX_PARTICIPANTS} participants")
    return dict(sorted(positions.items()))


def transfers(positions: Mapping[str, int]) -> tuple[Transfer, ...]:
    """The transfers that settle `positions` (which must sum to zero), at most N-1."""
    if sum(positions.values()) != 0:
        raise NettingError("positions do not sum to zero")
    debtors = {t: -p for t, p in positions.items() if p < 0}
    creditors = {t: p for t, p in positions.items() if p > 0}
    result: list[Transfer] = []
    while debtors:
        payer = min(debtors, key=lambda t: (-debtors[t], t))
        payee = min(creditors, key=lambda t: (-creditors[t], t))
        amount = min(debtors[payer], creditors[payee])
        result.append(Transfer(payer=payer, payee=payee, amount=amount))
        for side, tadig in ((debtors, payer), (creditors, payee)):
            side[tadig] -= amount
            if side[tadig] == 0:
                del side[tadig]
    return tuple(result)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClearingStatement:
    """The netting of one period among its participants."""

    period_start: int
    period_end: int
    currency: str
    participants: tuple[tuple[str, PublicKey], ...]
    """(TADIG, operator key) of every carrier, in TADIG order."""
    positions: tuple[tuple[str, int], ...]
    transfers: tuple[Transfer, ...]

    @classmethod
    def of(
        cls,
        obligations: Iterable[Obligation],
        keys: Mapping[str, PublicKey],
        *,
        period_start: int,
        period_end: int,
        currency: str,
    ) -> ClearingStatement:
        """Net `obligations` among the carriers of `keys` (each obligation's carriers in it)."""
        positions = net_positions(obligations)
        if not set(positions) <= set(keys):
            raise NettingError(f"no key for {sorted(set(positions) - set(keys))}")
        if period_end <= period_start:
            raise NettingError("the period ends after it starts")
        everyone = {t: positions.get(t, 0) for t in sorted(keys)}
        return cls(
            period_start=period_start,
            period_end=period_end,
            currency=currency,
            participants=tuple(sorted(keys.items())),
            positions=tuple(everyone.items()),
            transfers=transfers(everyone),
        )

    def encode(self) -> bytes:
        """Canonical JSON: keys sorted, no whitespace, ASCII."""
        doc = {
            "currency": self.currency,
            "participants": [[t, k.hex()] for t, k in self.participants],
            "period_end": self.period_end,
            "period_start": self.period_start,
            "positions": [list(p) for p in self.positions],
            "transfers": [[t.payer, t.payee, t.amount] for t in self.transfers],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> ClearingStatement:
        """The statement `encode` wrote; `NettingError` for anything else (not canonical, a
        field out of range, transfers that are not the plan of the positions)."""
        try:
            doc = json.loads(data)
            participants = tuple(
                (str(t), PublicKey.from_hex(str(k))) for t, k in doc["participants"]
            )
            made = cls(
                period_start=int(doc["period_start"]), period_end=int(doc["period_end"]),
                currency=str(doc["currency"]), participants=participants,
                positions=tuple((str(t), int(p)) for t, p in doc["positions"]),
                transfers=tuple(
                    Transfer(payer=str(a), payee=str(b), amount=int(n))
                    for a, b, n in doc["transfers"]
                ),
            )  # fmt: skip
        except (ValueError, TypeError, KeyError, TangleError, RecursionError) as e:
            raise NettingError(f"not a clearing statement: {e}") from None
        if made.encode() != data:
            raise NettingError("not a canonical clearing statement")
        if made.transfers != transfers(dict(made.positions)):
            raise NettingError("the transfers are not the plan of the positions")
        if [t for t, _ in made.participants] != [t for t, _ in made.positions]:
            raise NettingError("positions and participants differ")
        return made

    @property
    def hash(self) -> bytes:
        return blake2b_256(CLEARING_DOMAIN, self.encode())

    def signing_message(self) -> bytes:
        return CLEARING_DOMAIN + b"/sign" + self.hash

    def sign(self, signer: Signer) -> tuple[str, Signature]:
        """`signer`'s signature, with its TADIG (`NettingError` if it is no participant)."""
        for tadig, key in self.participants:
            if key == signer.public_key:
                return tadig, signer.sign(self.signing_message())
        raise NettingError("the signer is not a participant")

    def check_signatures(self, signatures: Mapping[str, Signature]) -> None:
        """Raise `NettingError` unless every participant, and only they, signed."""
        names = {t for t, _ in self.participants}
        if set(signatures) != names:
            raise NettingError(f"signatures of {sorted(signatures)}, participants {sorted(names)}")
        message = self.signing_message()
        for tadig, key in self.participants:
            if not is_valid(key, message, signatures[tadig]):
                raise NettingError(f"the signature of {tadig} does not verify")
